/* test_cuda_session.c - session rewinds on the CUDA backend: after a prompt,
 * generation extends the session; a retried prompt, or a new turn after the
 * prompt, goes back to the mark at the prompt's end (backend mark_save /
 * mark_restore: raw window, compressor frontiers, row counts, copied on the
 * device) instead of re-prefilling from position 0, and the state is then
 * bit-identical to a fresh session's: logits, the next decode step and the
 * whole snapshot. On one GPU and split across segments ("0,0"). Reported as
 * skipped without a CUDA device. */
#include <string.h>

#pragma GCC diagnostic ignored "-Wunused-function" /* harness helpers */
#include "harness.h"

#ifdef DS4_HAVE_CUDA
#include "engine/cuda/ops.h"
#include "engine/engine.h"

static ds4_model *load(const char *name, const char *gpus) {
    if (ds4cu_device_count() < 1) T_SKIP("no CUDA device");
    char path[256];
    snprintf(path, sizeof path, "oracle/%s/ds4-synth-%s.gguf", name, name);
    ds4_err err = {{0}};
    ds4_model_opts o = {.backend = "cuda", .gpus = gpus, .exact = 1};
    ds4_model *m = ds4_model_load(t_data_path(path), &o, &err);
    if (!m) T_FAIL("load %s (--gpus %s): %s", name, gpus ? gpus : "default", err.msg);
    return m;
}

static void seq(int32_t *t, int n, int salt, int vocab) {
    for (int i = 0; i < n; i++) t[i] = (int32_t)((i * 37 + salt * 11 + 5) % (vocab - 2) + 2);
}

static int same_logits(ds4_session *a, ds4_session *b, int V) {
    return memcmp(ds4_session_logits(a), ds4_session_logits(b), sizeof(float) * (size_t)V) == 0;
}

static void rewinds_to_mark(const char *name, const char *gpus, int prompt) {
    ds4_model *m = load(name, gpus);
    ds4_err err = {{0}};
    const int V = ds4_model_n_vocab(m);
    int32_t a[600], b[600];
    seq(a, 600, 5, V < 500 ? V : 500);
    seq(b, 600, 6, V < 500 ? V : 500);
    ds4_session *s = ds4_session_new(m, 1024, &err), *ref = ds4_session_new(m, 1024, &err);
    if (!s || !ref) T_FAIL("session: %s", err.msg);
    int reused = -1;
    CHECK(ds4_session_sync(s, a, prompt, &reused, NULL, NULL, &err) == 0 && reused == 0);
    for (int i = 0; i < 40; i++) CHECK(ds4_session_eval(s, b[i], &err) == 0); /* "generated" */
    CHECK(ds4_session_sync(s, a, prompt, &reused, NULL, NULL, &err) == 0);     /* retry */
    CHECK_EQ_INT(reused, prompt);
    CHECK(ds4_session_sync(ref, a, prompt, NULL, NULL, NULL, &err) == 0);
    CHECK(same_logits(s, ref, V));
    for (int i = 0; i < 40; i++) CHECK(ds4_session_eval(s, b[i + 50], &err) == 0);
    memcpy(a + prompt, b + 100, sizeof(int32_t) * 70);                       /* a new turn after the prompt */
    CHECK(ds4_session_sync(s, a, prompt + 70, &reused, NULL, NULL, &err) == 0);
    CHECK_EQ_INT(reused, prompt);
    CHECK(ds4_session_sync(ref, a, prompt + 70, NULL, NULL, NULL, &err) == 0);
    CHECK(same_logits(s, ref, V));
    CHECK(ds4_session_eval(s, 11, &err) == 0 && ds4_session_eval(ref, 11, &err) == 0);
    CHECK(same_logits(s, ref, V));
    uint8_t *b1, *b2;
    size_t l1, l2;
    CHECK(ds4_session_save(s, &b1, &l1, &err) == 0 && ds4_session_save(ref, &b2, &l2, &err) == 0);
    CHECK(l1 == l2 && memcmp(b1, b2, l1) == 0); /* the whole state, not just the logits */
    free(b1);
    free(b2);
    a[100] ^= 1;                                                              /* an edit before the mark */
    CHECK(ds4_session_sync(s, a, prompt + 70, &reused, NULL, NULL, &err) == 0);
    CHECK_EQ_INT(reused, 0);
    ds4_session_free(s);
    ds4_session_free(ref);
    ds4_model_free(m);
}

/* 260: past tiny-a's window and a ratio-128 emission; 521: several chunks
 * of the indexer's ratio-4 rows beyond top-k. */
TEST(a_mark_260) { rewinds_to_mark("tiny-a", NULL, 260); }
TEST(b_mark_521) { rewinds_to_mark("tiny-b", NULL, 521); }
TEST(a_mark_260_split_00) { rewinds_to_mark("tiny-a", "0,0", 260); }
TEST(b_mark_521_split_000) { rewinds_to_mark("tiny-b", "0,0,0", 521); }
#else
TEST(cuda_not_built) { T_SKIP("built without nvcc"); }
#endif
