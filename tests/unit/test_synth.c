/* test_synth.c - ds4-synth's files: byte-identical for a seed (whatever the
 * thread count), metadata keys in the oracle's order with the oracle's value
 * types, the layout's tensors, valid routing tables, real-shape byte counts
 * (spec/model.md §10), and the engine running a tiny model to finite,
 * non-degenerate logits through both recipes. The shell test
 * tests/synth/test_synth_cli.sh covers the command line (inspect, sparse
 * full-size files, the demo cache). */
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine.h"
#include "gguf/gguf.h"
#include "harness.h"
#include "model/layout.h"
#include "quant/quant.h"
#include "synth/synth.h"
#include "text/tokenizer.h"

static char t_dir[64];
static void rm_tmpdir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t_dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", t_dir);
}

static const char *tmpdir(void) {
    if (!t_dir[0]) {
        snprintf(t_dir, sizeof t_dir, "/tmp/ds4-test-synth-XXXXXX");
        if (!mkdtemp(t_dir)) T_FAIL("mkdtemp failed");
        atexit(rm_tmpdir);
    }
    return t_dir;
}

static const char *tmp(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir(), name);
    return buf[k];
}

static void tiny_opts(ds4_synth_opts *o) {
    ds4_err e = {{0}};
    if (ds4_synth_preset("tiny", o, &e)) T_FAIL("%s", e.msg);
    o->vocab = DS4_SYNTH_VOCAB_BYTES;
    o->shape.n_vocab = ds4_synth_bytes_vocab_default("tiny");
    o->progress = 0;
    o->seed = 7;
}

static void write_or_fail(const ds4_synth_opts *o, const char *path) {
    ds4_synth_stats st;
    ds4_err e = {{0}};
    if (ds4_synth_write(o, path, &st, &e)) T_FAIL("write %s: %s", path, e.msg);
}

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    *len = (size_t)n;
    return b;
}

TEST(same_seed_same_bytes_any_thread_count) {
    ds4_synth_opts o;
    tiny_opts(&o);
    o.n_threads = 1;
    write_or_fail(&o, tmp("a.gguf"));
    o.n_threads = 3;
    write_or_fail(&o, tmp("b.gguf"));
    o.seed = 8;
    write_or_fail(&o, tmp("c.gguf"));
    size_t la, lb, lc;
    uint8_t *a = slurp(tmp("a.gguf"), &la), *b = slurp(tmp("b.gguf"), &lb), *c = slurp(tmp("c.gguf"), &lc);
    CHECK(a && b && c);
    CHECK_EQ_INT(la, lb);
    CHECK(memcmp(a, b, la) == 0);
    CHECK_EQ_INT(la, lc);               /* same layout ... */
    CHECK(memcmp(a, c, la) != 0);       /* ... other values */
    free(a); free(b); free(c);
    unlink(tmp("a.gguf")); unlink(tmp("b.gguf")); unlink(tmp("c.gguf"));
}

/* Metadata: the oracle's keys, in its order, with its value types. */
TEST(metadata_matches_the_oracle_keys_and_types) {
    ds4_synth_opts o;
    tiny_opts(&o);
    write_or_fail(&o, tmp("m.gguf"));
    ds4_err e = {{0}};
    gguf_file *ours = gguf_open(tmp("m.gguf"), &e);
    CHECKF(ours, "%s", e.msg);
    gguf_file *ref = gguf_open(t_data_path("oracle/tiny-a/ds4-synth-tiny-a.gguf"), &e);
    CHECKF(ref, "%s", e.msg);
    CHECK_EQ_INT(ours->n_kv, ref->n_kv);
    for (uint64_t i = 0; i < ref->n_kv; i++) {
        CHECK_EQ_STR(ours->kv[i].key, ref->kv[i].key);
        CHECKF(ours->kv[i].value.type == ref->kv[i].value.type, "%s: type %s, oracle %s", ref->kv[i].key,
               gguf_vtype_name(ours->kv[i].value.type), gguf_vtype_name(ref->kv[i].value.type));
        if (ref->kv[i].value.type == GGUF_ARRAY)
            CHECKF(ours->kv[i].value.v.arr.elem_type == ref->kv[i].value.v.arr.elem_type, "%s: element type %s, oracle %s",
                   ref->kv[i].key, gguf_vtype_name(ours->kv[i].value.v.arr.elem_type),
                   gguf_vtype_name(ref->kv[i].value.v.arr.elem_type));
    }
    const gguf_value *r;
    CHECK(gguf_get_arr(ours, "deepseek4.attention.compress_ratios", &r, &e) == 0);
    CHECK_EQ_INT(r->v.arr.count, 6);
    const int want[6] = {0, 0, 4, 128, 4, 128};
    for (int i = 0; i < 6; i++) {
        int64_t v;
        CHECK(gguf_arr_int(r, (uint64_t)i, &v) == 0);
        CHECK_EQ_INT(v, want[i]);
    }
    uint32_t bos, eos;
    CHECK(gguf_get_u32(ours, "tokenizer.ggml.bos_token_id", &bos, &e) == 0 && bos == 0);
    CHECK(gguf_get_u32(ours, "tokenizer.ggml.eos_token_id", &eos, &e) == 0 && eos == 1);
    gguf_close(ours);
    gguf_close(ref);
    unlink(tmp("m.gguf"));
}

typedef struct walk_ctx { gguf_file *f; uint64_t i; const char *bad; } walk_ctx;

static int check_tensor(void *ud, const ds4_tensor_spec *s) {
    walk_ctx *w = ud;
    const gguf_tensor *t = &w->f->tensors[w->i++];
    if (strcmp(t->name, s->name) || t->n_dims != s->n_dims) { w->bad = s->name; return 1; }
    for (uint32_t d = 0; d < s->n_dims; d++)
        if (t->ne[d] != s->ne[d]) { w->bad = s->name; return 1; }
    if (s->type == DS4_TCLASS_ROUTED ? !(t->type == DS4_TYPE_IQ2_XXS || t->type == DS4_TYPE_Q2_K) : t->type != s->type) {
        w->bad = s->name;
        return 1;
    }
    return 0;
}

TEST(tensors_follow_the_layout_and_routing_tables_are_valid) {
    ds4_synth_opts o;
    tiny_opts(&o);
    write_or_fail(&o, tmp("l.gguf"));
    ds4_err e = {{0}};
    gguf_file *f = gguf_open(tmp("l.gguf"), &e);
    CHECKF(f, "%s", e.msg);
    walk_ctx w = {f, 0, NULL};
    CHECKF(ds4_layout_walk(&o.shape, check_tensor, &w) == 0, "tensor %s differs from the layout", w.bad);
    CHECK_EQ_INT(w.i, f->n_tensors);
    for (int il = 0; il < 6; il++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.exp_probs_b.bias", il);
        CHECK((gguf_find_tensor(f, name) != NULL) == (il >= 3));
        snprintf(name, sizeof name, "blk.%d.ffn_gate_tid2eid.weight", il);
        const gguf_tensor *t = gguf_find_tensor(f, name);
        CHECK((t != NULL) == (il < 3));
        if (!t) continue;
        const int32_t *ids = (const int32_t *)(const void *)t->data;
        for (uint64_t row = 0; row < t->ne[1]; row++)
            for (uint64_t a = 0; a < t->ne[0]; a++) {
                const int32_t x = ids[row * t->ne[0] + a];
                CHECKF(x >= 0 && x < 16, "%s row %llu: expert %d", name, (unsigned long long)row, x);
                for (uint64_t b = 0; b < a; b++)
                    CHECKF(ids[row * t->ne[0] + b] != x, "%s row %llu: expert %d twice", name, (unsigned long long)row, x);
            }
    }
    /* Values: finite, and near the intended scale (embedding ~N(0,1), an
     * IQ2_XXS expert tensor ~1/sqrt(256) RMS). */
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    const gguf_tensor *gate = gguf_find_tensor(f, "blk.3.ffn_gate_exps.weight");
    CHECK(emb && gate);
    const gguf_tensor *ts[2] = {emb, gate};
    const double want_rms[2] = {1.0, 1.0 / 16.0};
    for (int k = 0; k < 2; k++) {
        float *x = malloc(ts[k]->n_elements * sizeof(float));
        ds4_dequantize_row(ts[k]->type, ts[k]->data, x, (int64_t)ts[k]->n_elements);
        double ss = 0;
        for (uint64_t i = 0; i < ts[k]->n_elements; i++) { CHECK(isfinite(x[i])); ss += (double)x[i] * x[i]; }
        free(x);
        const double rms = sqrt(ss / (double)ts[k]->n_elements);
        CHECKF(fabs(rms / want_rms[k] - 1.0) < 0.1, "%s: RMS %g, expected ~%g", ts[k]->name, rms, want_rms[k]);
    }
    gguf_close(f);
    unlink(tmp("l.gguf"));
}

/* A reduced-depth model is the deeper model's prefix, tensor for tensor. */
TEST(fewer_layers_is_a_prefix) {
    ds4_synth_opts o;
    tiny_opts(&o);
    write_or_fail(&o, tmp("p6.gguf"));
    ds4_err e = {{0}};
    CHECK(ds4_synth_set_layers(&o, 4, &e) == 0);
    write_or_fail(&o, tmp("p4.gguf"));
    gguf_file *a = gguf_open(tmp("p6.gguf"), &e), *b = gguf_open(tmp("p4.gguf"), &e);
    CHECK(a && b);
    CHECK(b->n_tensors < a->n_tensors);
    for (uint64_t i = 0; i < b->n_tensors; i++) {
        const gguf_tensor *t = gguf_find_tensor(a, b->tensors[i].name);
        CHECKF(t && t->nbytes == b->tensors[i].nbytes && !memcmp(t->data, b->tensors[i].data, t->nbytes), "%s differs",
               b->tensors[i].name);
    }
    gguf_close(a);
    gguf_close(b);
    unlink(tmp("p6.gguf"));
    unlink(tmp("p4.gguf"));
}

TEST(real_shape_tensor_bytes_match_the_spec) {
    ds4_synth_opts o;
    ds4_err e = {{0}};
    CHECK(ds4_synth_preset("full", &o, &e) == 0);
    CHECK_EQ_INT(ds4_synth_tensor_bytes(&o), 86714775900ll);  /* spec/model.md §10.1 */
    o.recipe = DS4_SYNTH_Q4;
    CHECK_EQ_INT(ds4_synth_tensor_bytes(&o), 164628167004ll);
}

TEST(bad_shapes_are_refused_before_writing) {
    ds4_synth_opts o;
    tiny_opts(&o);
    o.shape.n_embd = 200;   /* not a multiple of 256 */
    ds4_synth_stats st;
    ds4_err e = {{0}};
    CHECK(ds4_synth_write(&o, tmp("bad.gguf"), &st, &e) != 0);
    CHECKF(strstr(e.msg, "embedding_length") || strstr(e.msg, "blocks"), "%s", e.msg);
    CHECK(access(tmp("bad.gguf"), F_OK) != 0);
    tiny_opts(&o);
    o.shape.n_vocab = 100;  /* below 2 + 256 + 5 */
    CHECK(ds4_synth_write(&o, tmp("bad.gguf"), &st, &e) != 0);
    CHECKF(strstr(e.msg, "vocabulary size 100"), "%s", e.msg);
    ds4_err e2 = {{0}};
    CHECK(ds4_synth_preset("huge", &o, &e2) != 0);
    CHECKF(strstr(e2.msg, "huge"), "%s", e2.msg);
}

TEST(bytes_vocabulary_has_the_protocol_specials_and_real_merges) {
    ds4_synth_opts o;
    tiny_opts(&o);
    write_or_fail(&o, tmp("v.gguf"));
    ds4_err e = {{0}};
    gguf_file *f = gguf_open(tmp("v.gguf"), &e);
    CHECK(f);
    ds4_vocab *v = ds4_vocab_from_gguf(f, &e);
    CHECKF(v, "%s", e.msg);
    CHECK_EQ_INT(ds4_vocab_size(v), 512);
    CHECK_EQ_INT(ds4_vocab_special(v, DS4_SP_BOS), 0);
    CHECK_EQ_INT(ds4_vocab_special(v, DS4_SP_EOS), 1);
    CHECK_EQ_INT(ds4_vocab_special(v, DS4_SP_DSML), 511);
    CHECK_EQ_INT(ds4_vocab_special(v, DS4_SP_USER), 507);
    CHECK_EQ_INT(ds4_vocab_n_merges(v), 512 - 263);
    ds4_tokens t = {0};
    CHECK(ds4_encode_text(v, " the cat", 8, &t, &e) == 0);
    CHECK(t.n < 8);   /* merged: " the" is one real merge chain */
    ds4_sbuf s = {0};
    CHECK(ds4_decode(v, t.ids, t.n, &s) == 0);
    CHECK(s.len == 8 && !memcmp(s.p, " the cat", 8));
    ds4_sbuf_free(&s);
    ds4_tokens_free(&t);
    ds4_vocab_free(v);
    gguf_close(f);
    unlink(tmp("v.gguf"));
}

/* The engine runs the model: logits finite, spread (std > 0.5), greedy
 * continuation not stuck on one token; with 48 prompt tokens the window (32)
 * and the indexer top-k (8 rows = 32 tokens) are both exceeded. */
static void engine_run(const char *path) {
    ds4_err e = {{0}};
    ds4_model_opts mo = {0};
    mo.backend = "cpu";
    ds4_model *m = ds4_model_load(path, &mo, &e);
    CHECKF(m, "%s", e.msg);
    ds4_session *s = ds4_session_new(m, 256, &e);
    CHECKF(s, "%s", e.msg);
    const int V = ds4_model_n_vocab(m);
    int32_t toks[80];
    for (int i = 0; i < 48; i++) toks[i] = (int32_t)((i * 37 + 11) % V);
    toks[0] = 0;
    CHECKF(ds4_session_sync(s, toks, 48, NULL, NULL, NULL, &e) == 0, "%s", e.msg);
    int greedy[16], distinct = 0;
    double sd0 = 0;
    for (int step = 0; step < 16; step++) {
        const float *l = ds4_session_logits(s);
        double sum = 0, ss = 0;
        for (int i = 0; i < V; i++) {
            CHECKF(isfinite(l[i]), "step %d: logit %d is %g", step, i, l[i]);
            sum += l[i];
            ss += (double)l[i] * l[i];
        }
        const double mean = sum / V, sd = sqrt(ss / V - mean * mean);
        CHECKF(sd > 0.5 && sd < 50, "step %d: logit std %g", step, sd);
        if (step == 0) sd0 = sd;
        greedy[step] = ds4_argmax(l, V);
        int seen = 0;
        for (int k = 0; k < step; k++) seen |= greedy[k] == greedy[step];
        distinct += !seen;
        CHECKF(ds4_session_eval(s, greedy[step], &e) == 0, "%s", e.msg);
    }
    CHECKF(distinct > 1, "greedy continuation is one token (%d) repeated", greedy[0]);
    /* The signal survives the depth: token 1, out of the window by the end of
     * the prompt and seen only through compressed rows, still moves the last
     * logits. */
    float *last = malloc((size_t)V * sizeof(float));
    CHECKF(ds4_session_sync(s, toks, 48, NULL, NULL, NULL, &e) == 0, "%s", e.msg);
    memcpy(last, ds4_session_logits(s), (size_t)V * sizeof(float));
    toks[1] = (toks[1] + 1) % V;
    CHECKF(ds4_session_sync(s, toks, 48, NULL, NULL, NULL, &e) == 0, "%s", e.msg);
    double dmax = 0;
    for (int i = 0; i < V; i++) dmax = fmax(dmax, fabs((double)ds4_session_logits(s)[i] - last[i]));
    free(last);
    CHECKF(dmax > 1e-3, "changing token 1 moved the last logits by only %g", dmax);

    printf("  %s: logit std %.2f after the prompt, %d distinct of 16 greedy tokens, token 1 moves the last logits by up to %.3f\n",
           path, sd0, distinct, dmax);
    ds4_session_free(s);
    ds4_model_free(m);
}

TEST(engine_runs_the_tiny_model_q2) {
    ds4_synth_opts o;
    tiny_opts(&o);
    write_or_fail(&o, tmp("e2.gguf"));
    engine_run(tmp("e2.gguf"));
    unlink(tmp("e2.gguf"));
}

TEST(engine_runs_the_tiny_model_q4_other_seed) {
    ds4_synth_opts o;
    tiny_opts(&o);
    o.recipe = DS4_SYNTH_Q4;
    o.seed = 12345;
    write_or_fail(&o, tmp("e4.gguf"));
    engine_run(tmp("e4.gguf"));
    unlink(tmp("e4.gguf"));
}

/* The demo model: the real vocabulary (skipped without tokenizer.json). */
TEST(demo_model_has_the_real_vocabulary_and_runs) {
    ds4_err e = {{0}};
    char *tj = ds4_synth_find_tokenizer(&e);
    if (!tj && access(t_data_path("tokenizer/tokenizer.json"), R_OK) == 0) tj = strdup(t_data_path("tokenizer/tokenizer.json"));
    CHECKF(tj, "%s", e.msg);
    ds4_synth_opts o;
    CHECK(ds4_synth_preset("demo", &o, &e) == 0);
    o.tokenizer_json = tj;
    o.progress = 0;
    write_or_fail(&o, tmp("demo.gguf"));
    free(tj);
    gguf_file *f = gguf_open(tmp("demo.gguf"), &e);
    CHECKF(f, "%s", e.msg);
    ds4_vocab *v = ds4_vocab_from_gguf(f, &e);
    CHECKF(v, "%s", e.msg);
    CHECK_EQ_INT(ds4_vocab_size(v), 129280);
    CHECK_EQ_INT(ds4_vocab_special(v, DS4_SP_THINK), 128821);
    CHECK_EQ_INT(ds4_vocab_special(v, DS4_SP_DSML), 128825);
    CHECK_EQ_INT(ds4_vocab_special(v, DS4_SP_USER), 128803);
    ds4_vocab_free(v);
    gguf_close(f);
    engine_run(tmp("demo.gguf"));
    unlink(tmp("demo.gguf"));
}
