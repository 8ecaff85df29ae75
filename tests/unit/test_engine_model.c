/* test_engine_model.c - model loading refuses bad files with one clear line,
 * and session-level behaviour that the goldens do not cover: sync reuse and
 * rewind, snapshot refusal, context limits, sampling rules. Broken models are
 * made by patching a copy of tiny-a byte by byte (key values, tensor types)
 * or truncating it, so each test hits exactly one validation rule. */
#include <math.h>
#include <unistd.h>

#include "engine/engine.h"
#include "harness.h"
#include "session_mark_case.h"

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len);
    if (fread(b, 1, *len, f) != *len) { free(b); b = NULL; }
    fclose(f);
    return b;
}

static const char *tiny(void) { return t_data_path("oracle/tiny-a/ds4-synth-tiny-a.gguf"); }

static char tmp_path[256];

static void write_tmp(const unsigned char *b, size_t len) {
    snprintf(tmp_path, sizeof tmp_path, "/tmp/ds4-test-model-%d.gguf", (int)getpid());
    FILE *f = fopen(tmp_path, "wb");
    CHECK(f && fwrite(b, 1, len, f) == len);
    fclose(f);
}

/* Offset of the value that follows metadata key `key` (after its u32 type). */
static size_t key_value_off(const unsigned char *b, size_t len, const char *key) {
    const size_t kl = strlen(key);
    for (size_t i = 8; i + kl + 4 < len; i++)
        if (!memcmp(b + i, key, kl) && b[i + kl] == 4 && b[i + kl + 1] == 0) /* next: u32 type 4 */
            return i + kl + 4;
    return 0;
}

/* Offset of the type field of tensor info `name`. */
static size_t tensor_type_off(const unsigned char *b, size_t len, const char *name) {
    const size_t nl = strlen(name);
    for (size_t i = 8; i + nl + 8 < len; i++) {
        uint64_t sl;
        memcpy(&sl, b + i - 8, 8);
        if (sl == nl && !memcmp(b + i, name, nl)) {
            uint32_t nd;
            memcpy(&nd, b + i + nl, 4);
            return i + nl + 4 + 8 * (size_t)nd;
        }
    }
    return 0;
}

static void expect_refused(const char *substr) {
    ds4_err err = {{0}};
    ds4_model *m = ds4_model_load(tmp_path, NULL, &err);
    unlink(tmp_path);
    if (m) { ds4_model_free(m); T_FAIL("model loaded, expected refusal containing \"%s\"", substr); }
    CHECKF(strstr(err.msg, substr) != NULL, "error \"%s\" lacks \"%s\"", err.msg, substr);
    CHECKF(strstr(err.msg, "ds4-test-model") != NULL, "error \"%s\" does not name the file", err.msg);
}

TEST(refuses_truncated_file) {
    size_t len;
    unsigned char *b = slurp(tiny(), &len);
    CHECK(b);
    write_tmp(b, len / 2);
    free(b);
    expect_refused("blk.");
}

TEST(refuses_metadata_disagreeing_with_tensors) {
    size_t len;
    unsigned char *b = slurp(tiny(), &len);
    size_t off = key_value_off(b, len, "deepseek4.embedding_length");
    CHECK(off);
    uint32_t v = 512;
    memcpy(b + off, &v, 4);
    write_tmp(b, len);
    free(b);
    expect_refused("token_embd.weight: dims [256, 512]: expected [512, 512]");
}

TEST(refuses_layer_count_beyond_schedule) {
    size_t len;
    unsigned char *b = slurp(tiny(), &len);
    size_t off = key_value_off(b, len, "deepseek4.block_count");
    CHECK(off);
    uint32_t v = 5; /* the per-layer arrays list only 4 layers */
    memcpy(b + off, &v, 4);
    write_tmp(b, len);
    free(b);
    expect_refused("deepseek4.attention.compress_ratios");
}

TEST(refuses_missing_tensor) {
    size_t len;
    unsigned char *b = slurp(tiny(), &len);
    size_t off = tensor_type_off(b, len, "blk.2.attn_kv.weight");
    CHECK(off);
    unsigned char *name = b + off - 4 - 8 * 2 - strlen("blk.2.attn_kv.weight");
    CHECK(!memcmp(name, "blk.2.attn_kv.weight", 20));
    name[11] = 'X'; /* blk.2.attn_kX.weight */
    write_tmp(b, len);
    free(b);
    expect_refused("tensor blk.2.attn_kv.weight: missing");
}

TEST(refuses_wrong_tensor_type) {
    size_t len;
    unsigned char *b = slurp(tiny(), &len);
    size_t off = tensor_type_off(b, len, "blk.1.attn_sinks.weight");
    CHECK(off);
    uint32_t t = 26; /* I32: same size as F32, so only the type check can catch it */
    memcpy(b + off, &t, 4);
    write_tmp(b, len);
    free(b);
    expect_refused("blk.1.attn_sinks.weight: type I32: expected F32");
}

TEST(refuses_inconsistent_shape) {
    size_t len;
    unsigned char *b = slurp(tiny(), &len);
    size_t off = key_value_off(b, len, "deepseek4.attention.head_count_kv");
    CHECK(off);
    uint32_t v = 2;
    memcpy(b + off, &v, 4);
    write_tmp(b, len);
    free(b);
    expect_refused("head_count_kv: 2: expected 1");
}

TEST(refuses_missing_file_and_non_gguf) {
    ds4_err err = {{0}};
    CHECK(ds4_model_load("/nonexistent/model.gguf", NULL, &err) == NULL);
    CHECKF(strstr(err.msg, "/nonexistent/model.gguf") != NULL, "%s", err.msg);
    write_tmp((const unsigned char *)"not a gguf file at all, really", 30);
    expect_refused("ds4-test-model");
}

static ds4_model *model(void) {
    static ds4_model *m;
    if (!m) {
        ds4_err err = {{0}};
        m = ds4_model_load(tiny(), NULL, &err);
        if (!m) T_FAIL("%s", err.msg);
    }
    return m;
}

static void seq(int32_t *t, int n, int salt) {
    for (int i = 0; i < n; i++) t[i] = (int32_t)((i * 37 + salt * 11 + 5) % 500 + 2);
}

TEST(sync_reuses_prefix_and_rewinds_exactly) {
    ds4_err err = {{0}};
    int32_t a[300], b[300];
    seq(a, 300, 1);
    memcpy(b, a, sizeof a);
    b[250] = 7; /* diverge late */
    ds4_session *s = ds4_session_new(model(), 512, &err), *ref = ds4_session_new(model(), 512, &err);
    CHECK(s && ref);
    int reused = -1;
    CHECK(ds4_session_sync(s, a, 200, &reused, NULL, NULL, &err) == 0 && reused == 0);
    CHECK(ds4_session_sync(s, a, 300, &reused, NULL, NULL, &err) == 0 && reused == 200);
    CHECK(ds4_session_sync(s, b, 300, &reused, NULL, NULL, &err) == 0); /* diverges: rebuild */
    CHECK(ds4_session_sync(ref, b, 300, NULL, NULL, NULL, &err) == 0);
    CHECK(memcmp(ds4_session_logits(s), ds4_session_logits(ref), sizeof(float) * ds4_model_n_vocab(model())) == 0);
    CHECK(ds4_session_sync(s, b, 300, &reused, NULL, NULL, &err) == 0 && reused == 300); /* identical: no work */
    ds4_session_free(s);
    ds4_session_free(ref);
}

/* After a prompt, generation extends the session; a retried or edited-after
 * prompt rewinds to the mark at the prompt's end instead of rebuilding, and
 * the result is bit-identical to a fresh session. */
TEST(sync_rewinds_to_mark) { mark_case(model(), 512, 260, 500); }

static int cancel_after_first(void *ud, int done, int total) {
    (void)total;
    return done > 0 && ++*(int *)ud > 0;
}

TEST(sync_cancel_keeps_a_valid_prefix) {
    ds4_err err = {{0}};
    int32_t a[600];
    seq(a, 600, 2);
    ds4_session *s = ds4_session_new(model(), 1024, &err);
    ds4_session_set_chunk(s, 128);
    int calls = 0;
    CHECK_EQ_INT(ds4_session_sync(s, a, 600, NULL, cancel_after_first, &calls, &err), 1);
    CHECK_EQ_INT(ds4_session_n_tokens(s), 128);
    int reused;
    CHECK(ds4_session_sync(s, a, 600, &reused, NULL, NULL, &err) == 0 && reused == 128);
    ds4_session_free(s);
}

TEST(context_limit_and_bad_tokens) {
    ds4_err err = {{0}};
    int32_t a[40];
    seq(a, 40, 3);
    ds4_session *s = ds4_session_new(model(), 32, &err);
    CHECK(ds4_session_sync(s, a, 40, NULL, NULL, NULL, &err) == -1);
    CHECKF(strstr(err.msg, "context size 32") != NULL, "%s", err.msg);
    a[3] = 100000;
    CHECK(ds4_session_sync(s, a, 10, NULL, NULL, NULL, &err) == -1);
    CHECKF(strstr(err.msg, "token id 100000") != NULL, "%s", err.msg);
    CHECK(ds4_session_eval(s, -1, &err) == -1);
    ds4_session_free(s);
}

TEST(snapshot_refusals_leave_session_usable) {
    ds4_err err = {{0}};
    int32_t a[200];
    seq(a, 200, 4);
    ds4_session *s = ds4_session_new(model(), 256, &err);
    CHECK(ds4_session_sync(s, a, 150, NULL, NULL, NULL, &err) == 0);
    uint8_t *blob;
    size_t len;
    CHECK(ds4_session_save(s, &blob, &len, &err) == 0);
    ds4_session *t = ds4_session_new(model(), 256, &err);
    CHECK(ds4_session_load(t, blob, len - 1, &err) == -1);          /* truncated */
    CHECKF(strstr(err.msg, "snapshot") != NULL, "%s", err.msg);
    blob[0] ^= 1;
    CHECK(ds4_session_load(t, blob, len, &err) == -1);              /* magic */
    blob[0] ^= 1;
    ds4_session *small = ds4_session_new(model(), 100, &err);
    CHECK(ds4_session_load(small, blob, len, &err) == -1);          /* does not fit */
    CHECK(ds4_session_load(t, blob, len, &err) == 0);
    CHECK_EQ_INT(ds4_session_n_tokens(t), 150);
    CHECK(ds4_session_eval(s, 9, &err) == 0 && ds4_session_eval(t, 9, &err) == 0);
    CHECK(memcmp(ds4_session_logits(s), ds4_session_logits(t), sizeof(float) * ds4_model_n_vocab(model())) == 0);
    free(blob);
    ds4_session_free(s);
    ds4_session_free(t);
    ds4_session_free(small);
}

TEST(sampler_rules) {
    float l[8] = {1, 3, 3, -INFINITY, NAN, 0, 2.9f, -1};
    CHECK_EQ_INT(ds4_argmax(l, 8), 1); /* ties: lowest id; non-finite ignored */
    const float inf_first[5] = {INFINITY, NAN, -5, -INFINITY, -2};
    CHECK_EQ_INT(ds4_argmax(inf_first, 5), 4);
    const float none[3] = {NAN, INFINITY, -INFINITY};
    CHECK_EQ_INT(ds4_argmax(none, 3), 0);
    /* past the vector loop's 16-wide steps: specials everywhere, a tie later,
     * the maximum in the tail, nothing finite at all */
    float big[103];
    for (int i = 0; i < 103; i++) big[i] = i % 3 == 0 ? NAN : i % 3 == 1 ? INFINITY : (float)(i % 7) - 9.0f;
    big[37] = 5.0f;
    big[80] = 5.0f;
    CHECK_EQ_INT(ds4_argmax(big, 103), 37);
    big[101] = 6.0f;
    CHECK_EQ_INT(ds4_argmax(big, 103), 101);
    for (int i = 0; i < 103; i++) big[i] = i % 2 ? -INFINITY : NAN;
    CHECK_EQ_INT(ds4_argmax(big, 103), 0);
    big[50] = -0.0f;
    big[90] = 0.0f;
    CHECK_EQ_INT(ds4_argmax(big, 103), 50);
    ds4_sampler sp;
    ds4_sampler_default(&sp, 42);
    sp.temperature = 0;
    CHECK_EQ_INT(ds4_sample(&sp, l, 8), 1);
    sp.temperature = 1;
    sp.min_p = 0.5f; /* keeps p_i >= 0.5·p_max: ids 1, 2, 6 */
    for (int i = 0; i < 200; i++) {
        int t = ds4_sample(&sp, l, 8);
        CHECKF(t == 1 || t == 2 || t == 6, "sampled %d", t);
    }
    sp.top_k = 1;
    for (int i = 0; i < 20; i++) CHECK_EQ_INT(ds4_sample(&sp, l, 8), 1);
    sp.top_k = 0;
    sp.top_p = 0.3f;
    sp.min_p = 0;
    for (int i = 0; i < 50; i++) {
        int t = ds4_sample(&sp, l, 8);
        CHECKF(t == 1 || t == 2, "sampled %d", t);
    }
    /* same seed, same stream */
    ds4_sampler a, b;
    ds4_sampler_default(&a, 7);
    ds4_sampler_default(&b, 7);
    for (int i = 0; i < 50; i++) CHECK_EQ_INT(ds4_sample(&a, l, 8), ds4_sample(&b, l, 8));
    int ids[3];
    float lp[3];
    CHECK_EQ_INT(ds4_top_logprobs(l, 8, 3, ids, lp), 3);
    CHECK(ids[0] == 1 && ids[1] == 2 && ids[2] == 6);
    CHECK(lp[0] == lp[1] && lp[0] > lp[2]);
    double z = 0;
    for (int i = 0; i < 8; i++) if (isfinite(l[i])) z += exp(ds4_logprob(l, 8, i));
    CHECK_NEAR(z, 1.0, 1e-6);
}
