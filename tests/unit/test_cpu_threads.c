/* test_cpu_threads.c - the CPU backend's results do not depend on how its
 * work is split: prefill logits and every decode step's logits are
 * bit-identical at 1, 2, 3, 5 and 8 threads, with parts claimed dynamically
 * (the default) and with one fixed part per thread (DS4_POOL_PARTS=1).
 *
 * The pool cuts each loop by the thread count, and the engine's loops cut
 * rows, heads, expert units and quantization blocks into parts; every output
 * value must still come from one call that computes it the same way whoever
 * makes it (the multi-row kernels' lanes are independent rows). The goldens
 * run at one thread count only, so this is the check that the split is
 * invisible. tiny-a: width 256, 8 heads of 192, vocab 512, 16 experts. */
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "harness.h"

enum { N_PROMPT = 150, N_GEN = 12, V = 512 };

/* Prefill logits, then N_GEN greedy steps' logits, into out[(N_GEN + 1) * V]. */
static int run(int threads, float *out) {
    ds4_err e = {{0}};
    ds4_model_opts o = {.backend = "cpu", .n_threads = threads};
    ds4_model *m = ds4_model_load(t_data_path("oracle/tiny-a/ds4-synth-tiny-a.gguf"), &o, &e);
    if (!m) { printf("# load: %s\n", e.msg); return -1; }
    ds4_session *s = ds4_session_new(m, N_PROMPT + N_GEN + 8, &e);
    int32_t toks[N_PROMPT];
    uint32_t r = 12345;
    for (int i = 0; i < N_PROMPT; i++) { r = r * 1103515245u + 12345u; toks[i] = (int32_t)((r >> 8) % V); }
    int rc = s ? ds4_session_sync(s, toks, N_PROMPT, NULL, NULL, NULL, &e) : -1;
    for (int k = 0; rc == 0 && k <= N_GEN; k++) {
        const float *l = ds4_session_logits(s);
        memcpy(out + (size_t)k * V, l, sizeof(float) * V);
        int best = 0;
        for (int i = 1; i < V; i++) if (l[i] > l[best]) best = i;
        if (k < N_GEN) rc = ds4_session_eval(s, best, &e);
    }
    if (rc) printf("# threads %d: %s\n", threads, e.msg);
    ds4_session_free(s);
    ds4_model_free(m);
    return rc;
}

static void compare_thread_counts(const char *label) {
    static float ref[(N_GEN + 1) * V], got[(N_GEN + 1) * V];
    CHECK(run(1, ref) == 0);
    const int counts[] = {2, 3, 5, 8};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        memset(got, 0, sizeof got);
        CHECK(run(counts[c], got) == 0);
        int first = -1;
        for (int i = 0; i < (N_GEN + 1) * V && first < 0; i++)
            if (memcmp(&ref[i], &got[i], sizeof(float)) != 0) first = i;
        CHECKF(first < 0, "%s: %d threads differ from 1 thread at step %d, logit %d (%a vs %a)", label, counts[c],
               first / V, first % V, first >= 0 ? got[first] : 0.0f, first >= 0 ? ref[first] : 0.0f);
    }
}

TEST(logits_identical_across_thread_counts) {
    unsetenv("DS4_POOL_PARTS");
    compare_thread_counts("dynamic parts");
}

TEST(logits_identical_with_fixed_parts) {
    setenv("DS4_POOL_PARTS", "1", 1);
    compare_thread_counts("one part per thread");
    unsetenv("DS4_POOL_PARTS");
}
