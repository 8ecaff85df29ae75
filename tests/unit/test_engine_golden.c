/* test_engine_golden.c - the CPU engine against the oracle goldens
 * (tests/data/oracle): every case of both tiny models, prefill rows,
 * incremental rows and greedy continuations, bit-exact; plus chunked prefill
 * with several chunk sizes and a snapshot round trip mid-sequence.
 *
 * Bit-exact is the right bar: the engine follows the reference's evaluation
 * order, and the oracle README shows that any other order drifts far beyond a
 * useful tolerance. On a mismatch the message names the first differing row. */
#include <math.h>

#include "engine/engine.h"
#include "engine/golden.h"
#include "harness.h"

static ds4_model *load(const char *name) {
    static ds4_model *cache[2];
    static const char *names[2] = {"tiny-a", "tiny-b"};
    int i = strcmp(name, "tiny-a") == 0 ? 0 : 1;
    if (!cache[i]) {
        char path[256];
        snprintf(path, sizeof path, "oracle/%s/ds4-synth-%s.gguf", names[i], names[i]);
        ds4_err err = {{0}};
        ds4_model_opts o = {0};
        cache[i] = ds4_model_load(t_data_path(path), &o, &err);
        if (!cache[i]) T_FAIL("load %s: %s", name, err.msg);
        char sp[256];
        snprintf(sp, sizeof sp, "oracle/%s/steering.f32", names[i]);
        if (ds4_model_load_steering(cache[i], t_data_path(sp), &err)) T_FAIL("steering %s: %s", name, err.msg);
    }
    return cache[i];
}

/* Max |a-b| over rows; reports the first row/col that differs. */
static void compare_rows(const char *what, const float *a, const float *b, uint32_t rows, uint32_t V, double tol) {
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t v = 0; v < V; v++) {
            const double d = fabs((double)a[(size_t)r * V + v] - (double)b[(size_t)r * V + v]);
            if (!(d <= tol))
                T_FAIL("%s: row %u token %u: got %.9g expected %.9g", what, r, v, b[(size_t)r * V + v],
                       a[(size_t)r * V + v]);
        }
}

static void run_case(const char *model, const char *cs, float ffn, float attn, int chunk, int snap) {
    char path[256];
    snprintf(path, sizeof path, "oracle/%s/cases/%s.golden", model, cs);
    ds4_golden ref, out;
    ds4_err err = {{0}};
    if (ds4_golden_read(t_data_path(path), &ref, &err)) T_FAIL("%s", err.msg);
    ds4_model *m = load(model);
    ds4_golden_opts o = {.chunk = chunk, .snapshot_at = snap, .steer_ffn = ffn, .steer_attn = attn};
    o.skip_incremental = chunk != 0 || snap != 0; /* variants test the prefill path only */
    if (ds4_golden_compute(m, &ref, &o, &out, &err)) { ds4_golden_free(&ref); T_FAIL("%s", err.msg); }
    const double tol = 1e-5;
    for (uint32_t i = 0; i < ref.n_greedy; i++)
        if (ref.greedy_tokens[i] != out.greedy_tokens[i])
            T_FAIL("%s/%s: greedy token %u: got %d expected %d", model, cs, i, out.greedy_tokens[i], ref.greedy_tokens[i]);
    compare_rows("prefill", ref.prefill, out.prefill, ref.n_pos, ref.n_vocab, tol);
    if (!o.skip_incremental) compare_rows("incremental", ref.incremental, out.incremental, ref.n_pos, ref.n_vocab, tol);
    compare_rows("greedy logits", ref.greedy_logits, out.greedy_logits, ref.n_greedy, ref.n_vocab, tol);
    ds4_golden_free(&ref);
    ds4_golden_free(&out);
}

static int quick(void) { return getenv("DS4_TEST_QUICK") != NULL; }

/* DS4_TEST_QUICK (the sanitizer build) skips the sequences above 600 tokens:
 * they exercise no code path the shorter ones miss, only longer caches. */
#define ORACLE_CASE(model, id, cs, ffn, attn) TEST(id) { run_case(model, cs, ffn, attn, 0, 0); }
#define ORACLE_LONG_CASE(model, id, cs, ffn, attn) TEST(id) { \
        if (quick()) T_SKIP("DS4_TEST_QUICK: long sequence"); \
        run_case(model, cs, ffn, attn, 0, 0); }
#include "oracle_cases.h"

/* Chunked prefill (chunk sizes that straddle windows and compressor slots) and
 * a snapshot round trip mid-sequence give the same rows. */
TEST(a_chunk1) { run_case("tiny-a", "c06_ratio128_edges", 0, 0, 1, 0); }
TEST(a_chunk7) { run_case("tiny-a", "c06_ratio128_edges", 0, 0, 7, 0); }
TEST(b_chunk64) { run_case("tiny-b", "c06_ratio128_edges", 0, 0, 64, 0); }
TEST(b_chunk130_steer) { run_case("tiny-b", "s05_both_ratio128_edges", -2, 1, 130, 0); }
TEST(a_snapshot_261) { run_case("tiny-a", "c06_ratio128_edges", 0, 0, 100, 261); }
TEST(b_snapshot_131) { run_case("tiny-b", "c06_ratio128_edges", 0, 0, 0, 131); }
