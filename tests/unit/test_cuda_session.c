/* test_cuda_session.c - session rewinds on the CUDA backend: after a prompt,
 * generation extends the session; a retried prompt, or a new turn after the
 * prompt, goes back to the mark at the prompt's end (backend mark_save /
 * mark_restore: raw window, compressor frontiers, row counts, copied on the
 * device) instead of re-prefilling from position 0, and the state is then
 * bit-identical to a fresh session's: logits, the next decode step and the
 * whole snapshot. On one GPU and split across segments ("0,0"). Reported as
 * skipped without a CUDA device. */
#pragma GCC diagnostic ignored "-Wunused-function" /* harness helpers */
#include "harness.h"

#ifdef DS4_HAVE_CUDA
#include "engine/cuda/ops.h"
#include "engine/engine.h"
#include "session_mark_case.h"

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

static void rewinds_to_mark(const char *name, const char *gpus, int prompt) {
    ds4_model *m = load(name, gpus);
    const int V = ds4_model_n_vocab(m);
    mark_case(m, 1024, prompt, (V < 500 ? V : 500) - 2);
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
