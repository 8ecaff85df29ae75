/* test_cuda_golden.c - the oracle goldens (tests/data/oracle) on the CUDA
 * backend, every case of both tiny models.
 *
 * Tolerance: none beyond the CPU test's 1e-5, i.e. bit-identical logits and
 * greedy tokens. The GPU keeps the CPU's operation order everywhere (block-
 * order quantized dots, index-order F16 dots in the exact mode the engine
 * defaults to, sequential softmax/pooling chains, device twins of glibc's
 * expf/log1pf, host-computed RoPE tables); the one reassociation left,
 * RMSNorm's double sum of squares as a tree, changes a float only when the
 * double lands within ~1e-15 of a rounding boundary. Measured on an H100:
 * all 34 cases bit-identical. Should a future card or compiler break that,
 * each case first checks the oracle README's perturbation rule against the
 * case's own band from index.json (max |d logprob| <= 2·band + 0.05, KL <=
 * 3·band_kl + 1e-3, greedy_agree_prefix tokens), so the failure message says
 * whether the result is merely not bit-exact or actually wrong. The GPU must
 * also agree with itself bit for bit: prefill rows = single-token decode rows,
 * chunked prefill = one batch, and a snapshot round trip changes nothing.
 * Without a CUDA device every case is reported as skipped. */
#include <math.h>

#pragma GCC diagnostic ignored "-Wunused-function" /* harness helpers */
#include "harness.h"

#ifdef DS4_HAVE_CUDA
#include <jansson.h>

#include "engine/cuda/ops.h"
#include "engine/engine.h"
#include "engine/golden.h"

static int have_gpu(void) {
    static int state = -1;
    if (state < 0) state = ds4cu_device_count() > 0;
    if (!state) T_SKIP("no CUDA device"); /* counted as skipped, never as passed */
    return state;
}

static ds4_model *load(const char *name) {
    static ds4_model *cache[2];
    const int i = strcmp(name, "tiny-a") == 0 ? 0 : 1;
    if (!cache[i]) {
        char path[256];
        snprintf(path, sizeof path, "oracle/%s/ds4-synth-%s.gguf", name, name);
        ds4_err err = {{0}};
        ds4_model_opts o = {.backend = "cuda", .exact = 1};
        cache[i] = ds4_model_load(t_data_path(path), &o, &err);
        if (!cache[i]) T_FAIL("load %s: %s", name, err.msg);
        snprintf(path, sizeof path, "oracle/%s/steering.f32", name);
        if (ds4_model_load_steering(cache[i], t_data_path(path), &err)) T_FAIL("steering %s: %s", name, err.msg);
    }
    return cache[i];
}

static json_t *case_entry(const char *id) {
    static json_t *idx;
    if (!idx) {
        json_error_t je;
        idx = json_load_file(t_data_path("oracle/index.json"), 0, &je);
        if (!idx) T_FAIL("index.json: %s", je.text);
    }
    json_t *cases = json_object_get(idx, "cases"), *c;
    size_t i;
    json_array_foreach(cases, i, c) if (!strcmp(json_string_value(json_object_get(c, "id")), id)) return c;
    T_FAIL("index.json: no case %s", id);
}

/* max |Δ log-softmax| and KL(a || b) of two logit rows. */
static void row_stats(const float *a, const float *b, uint32_t V, double *dlp, double *kl, double *dlogit) {
    double ma = -INFINITY, mb = -INFINITY, sa = 0, sb = 0;
    for (uint32_t v = 0; v < V; v++) { if (a[v] > ma) ma = a[v]; if (b[v] > mb) mb = b[v]; }
    for (uint32_t v = 0; v < V; v++) { sa += exp(a[v] - ma); sb += exp(b[v] - mb); }
    const double la = ma + log(sa), lb = mb + log(sb);
    *dlp = 0; *kl = 0; *dlogit = 0;
    for (uint32_t v = 0; v < V; v++) {
        const double pa = a[v] - la, pb = b[v] - lb;
        if (fabs(pa - pb) > *dlp) *dlp = fabs(pa - pb);
        if (fabs((double)a[v] - b[v]) > *dlogit) *dlogit = fabs((double)a[v] - b[v]);
        *kl += exp(pa) * (pa - pb);
    }
}

static void within_band(const char *what, const ds4_golden *ref, const float *gold, const float *got, json_t *pert,
                        int *exact_rows, double *worst) {
    json_t *bl = json_object_get(pert, "dlogprob"), *bk = json_object_get(pert, "kl");
    for (uint32_t r = 0; r < ref->n_pos; r++) {
        const float *a = gold + (size_t)r * ref->n_vocab, *b = got + (size_t)r * ref->n_vocab;
        double dlp, kl, dl;
        row_stats(a, b, ref->n_vocab, &dlp, &kl, &dl);
        if (dl > *worst) *worst = dl;
        if (memcmp(a, b, sizeof(float) * ref->n_vocab) == 0) (*exact_rows)++;
        const double band = json_real_value(json_array_get(bl, r)), band_kl = json_real_value(json_array_get(bk, r));
        if (!(dlp <= 2 * band + 0.05) || !(kl <= 3 * band_kl + 1e-3))
            T_FAIL("%s row %u (position %d): max|dlogprob| %.4f (limit %.4f), KL %.5f (limit %.5f)", what, r,
                   ref->positions[r], dlp, 2 * band + 0.05, kl, 3 * band_kl + 1e-3);
    }
}

static void run_case(const char *model, const char *cs, float ffn, float attn) {
    if (!have_gpu()) return;
    char id[128], path[256];
    snprintf(id, sizeof id, "%s/%s", model, cs);
    snprintf(path, sizeof path, "oracle/%s/cases/%s.golden", model, cs);
    json_t *pert = json_object_get(case_entry(id), "perturbation");
    ds4_golden ref, out;
    ds4_err err = {{0}};
    if (ds4_golden_read(t_data_path(path), &ref, &err)) T_FAIL("%s", err.msg);
    ds4_model *m = load(model);
    ds4_golden_opts o = {.steer_ffn = ffn, .steer_attn = attn};
    if (ds4_golden_compute(m, &ref, &o, &out, &err)) T_FAIL("%s", err.msg);
    int exact = 0;
    double worst = 0;
    within_band("prefill", &ref, ref.prefill, out.prefill, pert, &exact, &worst);
    within_band("incremental", &ref, ref.incremental, out.incremental, pert, &exact, &worst);
    if (memcmp(out.prefill, out.incremental, sizeof(float) * ref.n_pos * ref.n_vocab) != 0)
        T_FAIL("%s: GPU prefill and decode rows differ", id);
    const uint32_t agree = (uint32_t)json_integer_value(json_object_get(pert, "greedy_agree_prefix"));
    uint32_t same = 0;
    while (same < ref.n_greedy && ref.greedy_tokens[same] == out.greedy_tokens[same]) same++;
    printf("# %s: %d/%u rows bit-identical to the CPU, max |dlogit| %.3g, greedy %u/%u agree (need %u)\n", id, exact,
           2 * ref.n_pos, worst, same, ref.n_greedy, agree);
    if (same < agree) T_FAIL("%s: greedy token %u: got %d expected %d", id, same, out.greedy_tokens[same], ref.greedy_tokens[same]);
    /* Within the band: now hold it to bit-exactness (1e-5, as the CPU test). */
    if (worst > 1e-5) T_FAIL("%s: within the perturbation band but not bit-exact: max |dlogit| %.3g", id, worst);
    if (same < ref.n_greedy) T_FAIL("%s: greedy token %u: got %d expected %d", id, same, out.greedy_tokens[same], ref.greedy_tokens[same]);
    ds4_golden_free(&ref);
    ds4_golden_free(&out);
}

/* Chunked prefill and a snapshot round trip reproduce the one-batch GPU rows exactly. */
static void run_variant(const char *model, const char *cs, float ffn, float attn, int chunk, int snap) {
    if (!have_gpu()) return;
    char path[256];
    snprintf(path, sizeof path, "oracle/%s/cases/%s.golden", model, cs);
    ds4_golden ref, one, var;
    ds4_err err = {{0}};
    if (ds4_golden_read(t_data_path(path), &ref, &err)) T_FAIL("%s", err.msg);
    ds4_model *m = load(model);
    ds4_golden_opts o1 = {.steer_ffn = ffn, .steer_attn = attn, .skip_incremental = 1};
    ds4_golden_opts o2 = {.chunk = chunk, .snapshot_at = snap, .steer_ffn = ffn, .steer_attn = attn, .skip_incremental = 1};
    if (ds4_golden_compute(m, &ref, &o1, &one, &err) || ds4_golden_compute(m, &ref, &o2, &var, &err)) T_FAIL("%s", err.msg);
    for (uint32_t r = 0; r < ref.n_pos; r++)
        if (memcmp(one.prefill + (size_t)r * ref.n_vocab, var.prefill + (size_t)r * ref.n_vocab, sizeof(float) * ref.n_vocab))
            T_FAIL("%s/%s chunk %d snapshot %d: row %u differs from the one-batch GPU row", model, cs, chunk, snap, r);
    for (uint32_t i = 0; i < ref.n_greedy; i++) CHECK_EQ_INT(one.greedy_tokens[i], var.greedy_tokens[i]);
    ds4_golden_free(&ref);
    ds4_golden_free(&one);
    ds4_golden_free(&var);
}

#define ORACLE_CASE(model, id, cs, ffn, attn) TEST(id) { run_case(model, cs, ffn, attn); }
#define ORACLE_LONG_CASE ORACLE_CASE
#include "oracle_cases.h"

/* The fast mode (m->exact < 0: reassociated F16 sums, and at decode the
 * HC pre-mix's dot scaled after the sum) is not bit-exact by design; it is
 * held to the perturbation band alone, on the short cases (the band was
 * measured with last-bit perturbations; on long sequences the model's chaos
 * can carry any perturbation past it, see the oracle README). */
static ds4_model *load_fast(const char *name) {
    static ds4_model *cache[2];
    const int i = strcmp(name, "tiny-a") == 0 ? 0 : 1;
    if (!cache[i]) {
        char path[256];
        snprintf(path, sizeof path, "oracle/%s/ds4-synth-%s.gguf", name, name);
        ds4_err err = {{0}};
        ds4_model_opts o = {.backend = "cuda", .exact = -1};
        cache[i] = ds4_model_load(t_data_path(path), &o, &err);
        if (!cache[i]) T_FAIL("load %s (fast): %s", name, err.msg);
    }
    return cache[i];
}

static void run_case_fast(const char *model, const char *cs) {
    if (!have_gpu()) return;
    char id[128], path[256];
    snprintf(id, sizeof id, "%s/%s", model, cs);
    snprintf(path, sizeof path, "oracle/%s/cases/%s.golden", model, cs);
    json_t *pert = json_object_get(case_entry(id), "perturbation");
    ds4_golden ref, out;
    ds4_err err = {{0}};
    if (ds4_golden_read(t_data_path(path), &ref, &err)) T_FAIL("%s", err.msg);
    ds4_golden_opts o = {0};
    if (ds4_golden_compute(load_fast(model), &ref, &o, &out, &err)) T_FAIL("%s", err.msg);
    int exact = 0;
    double worst = 0;
    within_band("fast prefill", &ref, ref.prefill, out.prefill, pert, &exact, &worst);
    within_band("fast incremental", &ref, ref.incremental, out.incremental, pert, &exact, &worst);
    const uint32_t agree = (uint32_t)json_integer_value(json_object_get(pert, "greedy_agree_prefix"));
    uint32_t same = 0;
    while (same < ref.n_greedy && ref.greedy_tokens[same] == out.greedy_tokens[same]) same++;
    printf("# fast %s: within the band, %d/%u rows bit-identical, max |dlogit| %.3g, greedy %u/%u agree (need %u)\n",
           id, exact, 2 * ref.n_pos, worst, same, ref.n_greedy, agree);
    if (same < agree) T_FAIL("fast %s: greedy token %u: got %d expected %d", id, same, out.greedy_tokens[same], ref.greedy_tokens[same]);
    ds4_golden_free(&ref);
    ds4_golden_free(&out);
}

TEST(fast_a_c01) { run_case_fast("tiny-a", "c01_single_bos"); }
TEST(fast_a_c02) { run_case_fast("tiny-a", "c02_short_chat"); }
TEST(fast_a_c03) { run_case_fast("tiny-a", "c03_lt_window"); }
TEST(fast_a_c04) { run_case_fast("tiny-a", "c04_window_edge"); }
TEST(fast_a_c06) { run_case_fast("tiny-a", "c06_ratio128_edges"); }
TEST(fast_b_c01) { run_case_fast("tiny-b", "c01_single_bos"); }
TEST(fast_b_c02) { run_case_fast("tiny-b", "c02_short_chat"); }
TEST(fast_b_c03) { run_case_fast("tiny-b", "c03_lt_window"); }
TEST(fast_b_c04) { run_case_fast("tiny-b", "c04_window_edge"); }
TEST(fast_b_c06) { run_case_fast("tiny-b", "c06_ratio128_edges"); }

TEST(a_chunk1) { run_variant("tiny-a", "c06_ratio128_edges", 0, 0, 1, 0); }
TEST(a_chunk7) { run_variant("tiny-a", "c06_ratio128_edges", 0, 0, 7, 0); }
TEST(b_chunk64) { run_variant("tiny-b", "c06_ratio128_edges", 0, 0, 64, 0); }
TEST(b_chunk130_steer) { run_variant("tiny-b", "s05_both_ratio128_edges", -2, 1, 130, 0); }
TEST(a_snapshot_261) { run_variant("tiny-a", "c06_ratio128_edges", 0, 0, 100, 261); }
TEST(b_snapshot_131) { run_variant("tiny-b", "c09_longrange_a", 0, 0, 0, 131); }
TEST(a_c13_chunk300_indexer) { run_variant("tiny-a", "c13_random_4100", 0, 0, 300, 2500); }

#else
TEST(cuda_not_built) { T_SKIP("built without nvcc"); }
#endif
