/* test_steer.c - directional steering end to end on tiny-a: build a direction
 * from two contrasting prompt sets, check the file (size, unit rows, JSON
 * provenance), then the defining property: with a negative scale the
 * steered sub-layer outputs' projection on the direction grows, with a
 * positive one it shrinks, and with scale 0 the logits are bit-identical to
 * a model with no steering file at all. Also: bad steering files refused. */
#include <math.h>
#include <unistd.h>

#include "engine/engine.h"
#include "gguf/gguf.h"
#include "harness.h"
#include "steer/steer.h"

static const char *tiny(void) { return t_data_path("oracle/tiny-a/ds4-synth-tiny-a.gguf"); }

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f);
    fputs(text, f);
    fclose(f);
}

typedef struct proj_acc {
    const float *dir;
    int E;
    float scale;
    double sum;
    long n;
} proj_acc;

/* Projection of the steered FFN output: v·(y − s(v·y)v) = (1 − s)(v·y). */
static void on_cap(void *ud, int layer, int comp, int pos, const float *y, int n) {
    proj_acc *a = ud;
    (void)pos;
    if (comp != DS4_CAPTURE_FFN_OUT) return;
    double d = 0;
    for (int i = 0; i < n; i++) d += (double)y[i] * a->dir[(size_t)layer * a->E + i];
    a->sum += fabs((1.0 - a->scale) * d);
    a->n++;
}

static double mean_projection(ds4_model *m, const float *dir, const int32_t *toks, int n, float scale) {
    ds4_err err = {{0}};
    ds4_session *s = ds4_session_new(m, 256, &err);
    proj_acc a = {dir, ds4_model_n_embd(m), scale, 0, 0};
    ds4_session_set_steering(s, scale, 0);
    ds4_session_set_capture(s, on_cap, &a);
    CHECK(ds4_session_sync(s, toks, n, NULL, NULL, NULL, &err) == 0);
    ds4_session_free(s);
    return a.sum / (double)a.n;
}

TEST(build_then_defining_property) {
    char good[64], bad[64], out[64], json[64];
    snprintf(good, sizeof good, "/tmp/ds4-steer-good-%d.txt", (int)getpid());
    snprintf(bad, sizeof bad, "/tmp/ds4-steer-bad-%d.txt", (int)getpid());
    snprintf(out, sizeof out, "/tmp/ds4-steer-dir-%d.f32", (int)getpid());
    snprintf(json, sizeof json, "/tmp/ds4-steer-dir-%d.json", (int)getpid());
    write_file(good, "# short\nyes\nno.\nok\nfine\n");
    write_file(bad, "Explain at great length with many words and examples.\n"
                    "Write a long detailed essay about everything you know.\n");
    ds4_err err = {{0}};
    ds4_model *m = ds4_model_load(tiny(), NULL, &err);
    CHECKF(m, "%s", err.msg);
    ds4_vocab *v = ds4_vocab_from_gguf((const gguf_file *)ds4_model_gguf(m), &err);
    CHECKF(v, "%s", err.msg);
    ds4_prompts pg, pb;
    CHECK(ds4_prompts_read(good, &pg, &err) == 0 && pg.n == 4);
    CHECK(ds4_prompts_read(bad, &pb, &err) == 0 && pb.n == 2);
    const int L = ds4_model_n_layer(m), E = ds4_model_n_embd(m);
    float *dir = malloc(sizeof(float) * (size_t)L * E);
    ds4_steer_build_opts o = {.component = DS4_CAPTURE_FFN_OUT};
    ds4_steer_build_info info = {0};
    CHECKF(ds4_steer_build(m, v, &pg, &pb, &o, dir, &info, &err) == 0, "%s", err.msg);
    CHECK(ds4_steer_write(out, m, dir, &pg, &pb, &o, &info, &err) == 0);
    for (int l = 0; l < L; l++) {
        double n = 0;
        for (int i = 0; i < E; i++) n += (double)dir[(size_t)l * E + i] * dir[(size_t)l * E + i];
        CHECK_NEAR(sqrt(n), 1.0, 1e-5);
    }
    FILE *jf = fopen(json, "r");
    CHECK(jf);
    char jb[4096] = {0};
    CHECK(fread(jb, 1, sizeof jb - 1, jf) > 0);
    fclose(jf);
    CHECK(strstr(jb, ds4_model_identity(m)) && strstr(jb, "\"ffn_out\"") && strstr(jb, "\"prompts\": 4"));

    /* The engine accepts the file it wrote. */
    CHECKF(ds4_model_load_steering(m, out, &err) == 0, "%s", err.msg);
    ds4_tokens t = {0};
    CHECK(ds4_steer_prompt_tokens(v, "Tell me about the sea and the sky.", &t, &err) == 0);
    const double p_neg = mean_projection(m, dir, t.ids, (int)t.n, -2.0f);
    const double p_zero = mean_projection(m, dir, t.ids, (int)t.n, 0.0f);
    const double p_pos = mean_projection(m, dir, t.ids, (int)t.n, 0.5f);
    CHECKF(p_neg > p_zero && p_zero > p_pos, "projections: -2 -> %g, 0 -> %g, +0.5 -> %g", p_neg, p_zero, p_pos);

    /* Scale 0 with the file loaded == no file at all, bit for bit. */
    ds4_model *plain = ds4_model_load(tiny(), NULL, &err);
    ds4_session *a = ds4_session_new(m, 256, &err), *b = ds4_session_new(plain, 256, &err);
    ds4_session_set_steering(a, 0, 0);
    CHECK(ds4_session_sync(a, t.ids, (int)t.n, NULL, NULL, NULL, &err) == 0);
    CHECK(ds4_session_sync(b, t.ids, (int)t.n, NULL, NULL, NULL, &err) == 0);
    CHECK(memcmp(ds4_session_logits(a), ds4_session_logits(b), sizeof(float) * ds4_model_n_vocab(m)) == 0);
    ds4_session_set_steering(a, -2, 0);
    ds4_session_sync(a, NULL, 0, NULL, NULL, NULL, &err);
    CHECK(ds4_session_sync(a, t.ids, (int)t.n, NULL, NULL, NULL, &err) == 0);
    CHECK(memcmp(ds4_session_logits(a), ds4_session_logits(b), sizeof(float) * ds4_model_n_vocab(m)) != 0);

    ds4_session_free(a);
    ds4_session_free(b);
    ds4_model_free(plain);
    ds4_tokens_free(&t);
    free(info.raw_norm);
    free(dir);
    ds4_prompts_free(&pg);
    ds4_prompts_free(&pb);
    ds4_vocab_free(v);
    ds4_model_free(m);
    unlink(good); unlink(bad); unlink(out); unlink(json);
}

TEST(bad_steering_files_refused) {
    ds4_err err = {{0}};
    ds4_model *m = ds4_model_load(tiny(), NULL, &err);
    CHECK(m);
    const int L = ds4_model_n_layer(m), E = ds4_model_n_embd(m);
    char path[64];
    snprintf(path, sizeof path, "/tmp/ds4-steer-bad-%d.f32", (int)getpid());
    float *v = calloc((size_t)L * E, sizeof(float));
    for (int l = 0; l < L; l++) v[(size_t)l * E] = 1.0f;
    FILE *f = fopen(path, "wb");
    fwrite(v, sizeof(float), (size_t)L * E - 1, f); /* one float short */
    fclose(f);
    CHECK(ds4_model_load_steering(m, path, &err) == -1);
    CHECKF(strstr(err.msg, "expected 4096") != NULL, "%s", err.msg);
    v[5] = NAN;
    f = fopen(path, "wb");
    fwrite(v, sizeof(float), (size_t)L * E, f);
    fclose(f);
    CHECK(ds4_model_load_steering(m, path, &err) == -1);
    CHECKF(strstr(err.msg, "finite") != NULL, "%s", err.msg);
    v[5] = 0;
    v[E] = 2.0f; /* layer 1 not unit */
    f = fopen(path, "wb");
    fwrite(v, sizeof(float), (size_t)L * E, f);
    fclose(f);
    CHECK(ds4_model_load_steering(m, path, &err) == -1);
    CHECKF(strstr(err.msg, "layer 1") && strstr(err.msg, "unit"), "%s", err.msg);
    CHECK(!ds4_model_has_steering(m));
    unlink(path);
    free(v);
    ds4_model_free(m);
}
