/* test_cuda_multi.c - the CUDA backend split across device segments
 * (--gpus): the same oracle cases as test_cuda_golden, computed once on one
 * GPU and again with the layers split ("0,0": two segments on device 0, each
 * with its own weights, scratch, tables and stream, the hidden state handed
 * over between them; "0,0,0"; "0,1" when a second device exists), and the
 * split run must be bit-identical to the one-GPU run: prefill rows, decode
 * (CUDA-graph) rows and greedy tokens. Also: chunked prefill and a snapshot
 * round trip across the split, the hand-over staged through the host instead
 * of a direct copy, the placement (contiguous layer ranges, each segment
 * holding only its own tensors), device 1 alone against device 0 (state a
 * kernel file sets up once per process instead of once per device), and the
 * refusals of bad --gpus values. The refusals that need no device run
 * anywhere (a build without CUDA checks its own refusal); the rest is
 * reported as skipped without a device (or without a second one). */
#include <math.h>

#pragma GCC diagnostic ignored "-Wunused-function" /* harness helpers */
#include "harness.h"

#ifdef DS4_HAVE_CUDA
#include "engine/cuda/cuda.h"
#include "engine/cuda/ops.h"
#include "engine/engine.h"
#include "engine/golden.h"

static int have_gpu(int need) {
    const int n = ds4cu_device_count();
    if (n < need) T_SKIP("needs %d CUDA device%s, %d present", need, need > 1 ? "s" : "", n);
    return 1;
}

static const char *model_path(const char *name) {
    static char path[256];
    snprintf(path, sizeof path, "oracle/%s/ds4-synth-%s.gguf", name, name);
    return t_data_path(path);
}

/* Models by (tiny-a|tiny-b, gpus list); NULL list = the one-GPU default. */
static ds4_model *load(const char *name, const char *gpus) {
    static struct { char name[16], gpus[32]; ds4_model *m; } cache[16];
    static int n;
    const char *g = gpus ? gpus : "";
    for (int i = 0; i < n; i++)
        if (!strcmp(cache[i].name, name) && !strcmp(cache[i].gpus, g)) return cache[i].m;
    if (n == 16) T_FAIL("model cache full");
    ds4_err err = {{0}};
    ds4_model_opts o = {.backend = "cuda", .gpus = gpus, .exact = 1};
    ds4_model *m = ds4_model_load(model_path(name), &o, &err);
    if (!m) T_FAIL("load %s --gpus %s: %s", name, g, err.msg);
    char path[256];
    snprintf(path, sizeof path, "oracle/%s/steering.f32", name);
    if (ds4_model_load_steering(m, t_data_path(path), &err)) T_FAIL("steering %s: %s", name, err.msg);
    snprintf(cache[n].name, sizeof cache[n].name, "%s", name);
    snprintf(cache[n].gpus, sizeof cache[n].gpus, "%s", g);
    cache[n++].m = m;
    return m;
}

static void same_golden(const char *what, const ds4_golden *ref, const ds4_golden *a, const ds4_golden *b, int incr) {
    const size_t rows = (size_t)ref->n_pos * ref->n_vocab;
    for (uint32_t r = 0; r < ref->n_pos; r++) {
        const size_t o = (size_t)r * ref->n_vocab;
        if (memcmp(a->prefill + o, b->prefill + o, sizeof(float) * ref->n_vocab))
            T_FAIL("%s: prefill row %u (position %d) differs from the one-GPU run", what, r, ref->positions[r]);
        if (incr && memcmp(a->incremental + o, b->incremental + o, sizeof(float) * ref->n_vocab))
            T_FAIL("%s: decode row %u (position %d) differs from the one-GPU run", what, r, ref->positions[r]);
    }
    (void)rows;
    for (uint32_t i = 0; i < ref->n_greedy; i++)
        if (a->greedy_tokens[i] != b->greedy_tokens[i])
            T_FAIL("%s: greedy token %u: %d split, %d on one GPU", what, i, b->greedy_tokens[i], a->greedy_tokens[i]);
}

/* One case on one GPU and split over `gpus`, with the given golden options. */
static void run_split(const char *model, const char *cs, const char *gpus, float ffn, float attn, int chunk, int snap,
                      int staged) {
    if (!have_gpu(strchr(gpus, '1') ? 2 : 1)) return; /* the lists here name devices 0 and 1 only */
    char path[256], what[256];
    snprintf(path, sizeof path, "oracle/%s/cases/%s.golden", model, cs);
    snprintf(what, sizeof what, "%s/%s --gpus %s%s", model, cs, gpus, staged ? " (staged through the host)" : "");
    ds4_golden ref, one, split;
    ds4_err err = {{0}};
    if (ds4_golden_read(t_data_path(path), &ref, &err)) T_FAIL("%s", err.msg);
    ds4_golden_opts o = {.chunk = chunk, .snapshot_at = snap, .steer_ffn = ffn, .steer_attn = attn,
                         .skip_incremental = snap > 0};
    if (ds4_golden_compute(load(model, NULL), &ref, &o, &one, &err)) T_FAIL("%s: one GPU: %s", what, err.msg);
    ds4_model *m = load(model, gpus);
    if (staged) ds4cu_set_p2p(0);
    const int rc = ds4_golden_compute(m, &ref, &o, &split, &err);
    ds4cu_set_p2p(1);
    if (rc) T_FAIL("%s: %s", what, err.msg);
    same_golden(what, &ref, &one, &split, !o.skip_incremental);
    printf("# %s: %u prefill%s rows and %u greedy tokens bit-identical to one GPU\n", what, ref.n_pos,
           o.skip_incremental ? "" : " + decode", ref.n_greedy);
    ds4_golden_free(&ref);
    ds4_golden_free(&one);
    ds4_golden_free(&split);
}

#define ORACLE_CASE(model, id, cs, ffn, attn) \
    TEST(id##_00) { run_split(model, cs, "0,0", ffn, attn, 0, 0, 0); }
#define ORACLE_LONG_CASE(model, id, cs, ffn, attn) /* the short ones cover the split; c13 below */
#include "oracle_cases.h"

TEST(a_c13_indexer_00) { run_split("tiny-a", "c13_random_4100", "0,0", 0, 0, 300, 2500, 0); }
TEST(b_c09_longrange_000) { run_split("tiny-b", "c09_longrange_a", "0,0,0", 0, 0, 0, 0, 0); }
TEST(a_c06_chunk7_000) { run_split("tiny-a", "c06_ratio128_edges", "0,0,0", 0, 0, 7, 0, 0); }
TEST(b_s05_steer_chunk130_00) { run_split("tiny-b", "s05_both_ratio128_edges", "0,0", -2, 1, 130, 0, 0); }
TEST(a_snapshot_261_00) { run_split("tiny-a", "c06_ratio128_edges", "0,0", 0, 0, 100, 261, 0); }
TEST(b_snapshot_131_000) { run_split("tiny-b", "c09_longrange_a", "0,0,0", 0, 0, 0, 131, 0); }
TEST(a_c05_staged_00) { run_split("tiny-a", "c05_all_positions", "0,0", 0, 0, 0, 0, 1); }
TEST(b_s05_staged_000) { run_split("tiny-b", "s05_both_ratio128_edges", "0,0,0", -2, 1, 50, 0, 1); }
/* Two devices (the x2 machine; skipped on one GPU). */
TEST(a_c06_01) { run_split("tiny-a", "c06_ratio128_edges", "0,1", 0, 0, 0, 0, 0); }
TEST(b_s05_01) { run_split("tiny-b", "s05_both_ratio128_edges", "0,1", -2, 1, 0, 0, 0); }
TEST(a_c13_01) { run_split("tiny-a", "c13_random_4100", "0,1", 0, 0, 300, 2500, 0); }
TEST(b_snapshot_131_01) { run_split("tiny-b", "c09_longrange_a", "0,1", 0, 0, 0, 131, 0); }
TEST(b_c05_staged_01) { run_split("tiny-b", "c05_all_positions", "0,1", 0, 0, 0, 0, 1); }
/* Device 1 alone: any state a kernel file initialises once per process
 * instead of once per device (constant tables, function attributes) shows here. */
TEST(a_c06_device1) { run_split("tiny-a", "c06_ratio128_edges", "1", 0, 0, 0, 0, 0); }
TEST(b_s05_device1) { run_split("tiny-b", "s05_both_ratio128_edges", "1", -2, 1, 0, 0, 0); }
TEST(a_c05_0101) { run_split("tiny-a", "c05_all_positions", "0,1,0,1", 0, 0, 0, 0, 0); }

/* Contiguous ranges covering every layer in order, each segment holding its
 * own tensors only (less than the whole section), the embedding on the
 * first and the head on the last. */
TEST(placement) {
    if (!have_gpu(1)) return;
    ds4_model *m = load("tiny-b", "0,0,0");
    const cu_model *cm = cu_m(m);
    CHECK_EQ_INT(cm->n_dev, 3);
    CHECK_EQ_INT(cm->dev[0].l0, 0);
    CHECK_EQ_INT(cm->dev[2].l1, ds4_model_n_layer(m));
    uint64_t sum = 0;
    for (int k = 0; k < 3; k++) {
        CHECKF(cm->dev[k].l1 > cm->dev[k].l0, "segment %d has no layers (%u-%u)", k, cm->dev[k].l0, cm->dev[k].l1);
        if (k) CHECK_EQ_INT(cm->dev[k].l0, cm->dev[k - 1].l1);
        CHECKF(cm->dev[k].bytes < cm->bytes, "segment %d holds %llu of %llu bytes", k,
               (unsigned long long)cm->dev[k].bytes, (unsigned long long)cm->bytes);
        sum += cm->dev[k].bytes;
        printf("# tiny-b --gpus 0,0,0: segment %d layers %u-%u, %llu bytes in %d ranges\n", k, cm->dev[k].l0,
               cm->dev[k].l1 - 1, (unsigned long long)cm->dev[k].bytes, cm->dev[k].n_r);
    }
    CHECK(sum >= cm->bytes);
    CHECK(sum < cm->bytes + cm->bytes / 2); /* each tensor once, plus slack */
    ((cu_model *)cm)->cur = 0;
    CHECK(cu_w(m, &m->w.embd) != NULL);
    CHECK(cu_w(m, &m->w.output) == NULL); /* not on the first */
    ((cu_model *)cm)->cur = 2;
    CHECK(cu_w(m, &m->w.output) != NULL);
    CHECK(cu_w(m, &m->w.embd) == NULL);
    CHECK(cu_w(m, &m->w.layer[0].q_a) == NULL);
    ((cu_model *)cm)->cur = 0;
    CHECK(cu_w(m, &m->w.layer[0].q_a) != NULL);
}

static void refused(const char *gpus, const char *backend, const char *want) {
    ds4_err err = {{0}};
    ds4_model_opts o = {.backend = backend, .gpus = gpus, .exact = 1};
    ds4_model *m = ds4_model_load(model_path("tiny-a"), &o, &err);
    if (m) {
        ds4_model_free(m);
        T_FAIL("--gpus '%s' was accepted", gpus);
    }
    CHECKF(strstr(err.msg, "--gpus") && strstr(err.msg, want), "--gpus '%s': message '%s' lacks '%s'", gpus, err.msg,
           want);
}

TEST(bad_lists) {
    refused("", NULL, "empty list");
    refused("a", NULL, "'a' is not a device id");
    refused("0,", NULL, "unexpected ','");
    refused(",0", NULL, "',0' is not a device id");
    refused("0;1", NULL, "unexpected ';1'");
    refused("0,,1", NULL, "',1' is not a device id");
    refused("1,-1", NULL, "'-1' is not a device id");
    refused("64", NULL, "device id 64 out of range");
    refused("0,0,0,0,0", NULL, "5 devices for 4 layers");
    refused("0,1", "cpu", "only the CUDA backend");
}

TEST(absent_device) {
    if (!have_gpu(1)) return;
    char list[32];
    snprintf(list, sizeof list, "0,%d", ds4cu_device_count());
    char want[64];
    snprintf(want, sizeof want, "device %d does not exist", ds4cu_device_count());
    refused(list, "cuda", want);
}
#else
#include "engine/engine.h"

/* Without the CUDA backend, naming GPUs is an error, never a silent CPU run. */
TEST(gpus_without_cuda) {
    ds4_err err = {{0}};
    ds4_model_opts o = {.gpus = "0,1"};
    ds4_model *m = ds4_model_load(t_data_path("oracle/tiny-a/ds4-synth-tiny-a.gguf"), &o, &err);
    if (m) {
        ds4_model_free(m);
        T_FAIL("--gpus 0,1 was accepted by a build without CUDA");
    }
    CHECKF(strstr(err.msg, "--gpus 0,1: this build has no CUDA backend"), "message: %s", err.msg);
}
#endif
