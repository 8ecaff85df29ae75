/* ds4-bench.c - speed against context: prefill and decode tokens/s at a
 * series of context frontiers, with the fraction of the memory-bandwidth
 * limit the decoder reaches (design.md "Measuring speed").
 *
 *   ds4-bench -m MODEL --prompt-file F --ctx-start A --ctx-max B --step-incr S
 *             --gen-tokens N [--backend B] [--threads T] [--csv OUT.csv] [--svg OUT.svg]
 *
 * The prompt file is tokenized as plain text after a BOS and repeated until it
 * holds B tokens. Bandwidth is measured before and after the sweep (best of
 * both: a busy machine lowers one of them, and says so). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/sweep.h"
#include "engine/engine.h"
#include "text/text.h"

static void usage(FILE *o) {
    fprintf(o,
            "usage: ds4-bench -m MODEL --prompt-file F --ctx-start A --ctx-max B --step-incr S --gen-tokens N\n"
            "                 [--backend cpu|cuda] [--gpus LIST] [--threads T] [--csv OUT.csv] [--svg OUT.svg]\n"
            "                 [--bw-mb MB] [--bw-threads T] [--fast | --quality]\n"
            "       ds4-bench -m MODEL --weight-bytes [--ctx-start A] [--ctx-max B]\n"
            "\n"
            "Prefills the prompt (repeated to B tokens) to each frontier A, A+S, ..., B and there\n"
            "times a greedy generation of N tokens from a snapshot that is then restored.\n"
            "Per frontier: prefill t/s of the interval, decode t/s, KV snapshot bytes, weight bytes\n"
            "read per decoded token (spec/model.md 10.2) and decode t/s x those bytes / the memory\n"
            "bandwidth measured in this run (streaming read of --bw-mb MiB, default 1024, with\n"
            "--bw-threads threads, default all cores).\n"
            "--fast runs the engine with exact = -1 (reassociated F16 sums; Q8_0 stays exact, its\n"
            "multi-row kernel is the faster one), --quality with the exact reference order; the\n"
            "default is the backend's (exact on the CPU, fast on CUDA).\n"
            "The header line says which mode ran.\n"
            "--weight-bytes only prints the weight bytes per decoded token at contexts A and B\n"
            "(default 1 and 1048576) from the file's tensor table, without loading the model.\n");
}

static int parse_int(const char *flag, const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "ds4-bench: %s '%s': expected an integer in %ld..%ld\n", flag, s, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static void print_row(void *ud, const ds4_bench_row *r) {
    (void)ud;
    printf("%9d %12.2f %11.2f %14" PRIu64 " %14" PRIu64 " %9.3f\n", r->frontier, r->prefill_tps, r->decode_tps,
           r->kv_bytes, r->weight_bytes, r->bw_fraction);
    fflush(stdout);
}

/* --weight-bytes: the decode limit's numerator, straight from the tensor table. */
static int weight_bytes_only(const char *model, int a, int b) {
    ds4_err e = {{0}};
    gguf_file *g = gguf_open(model, &e);
    if (!g) { fprintf(stderr, "ds4-bench: %s\n", e.msg); return 1; }
    int rc = 0;
    const int ctxs[2] = {a, b};
    for (int i = 0; i < 2 && rc == 0; i++) {
        uint64_t wb;
        if (ds4_bench_weight_bytes(g, (uint64_t)ctxs[i], &wb, &e)) { fprintf(stderr, "ds4-bench: %s\n", e.msg); rc = 1; }
        else printf("weight_bytes_per_token context=%d %" PRIu64 "\n", ctxs[i], wb);
    }
    gguf_close(g);
    return rc;
}

int main(int argc, char **argv) {
    const char *model = NULL, *prompt_file = NULL, *csv = NULL, *svg = NULL, *backend = NULL, *gpus = NULL;
    ds4_sweep_opts so = {0, 0, 0, 0};
    int threads = 0, bw_mb = 1024, bw_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int have_a = 0, have_b = 0, have_s = 0, have_n = 0, weights_only = 0, fast = 0, quality = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        if (!strcmp(a, "--weight-bytes")) { weights_only = 1; continue; }
        if (!strcmp(a, "--fast")) { fast = 1; continue; }
        if (!strcmp(a, "--quality")) { quality = 1; continue; }
        if (a[0] == '-' && !v) { fprintf(stderr, "ds4-bench: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = argv[++i];
        else if (!strcmp(a, "--prompt-file")) prompt_file = argv[++i];
        else if (!strcmp(a, "--csv")) csv = argv[++i];
        else if (!strcmp(a, "--svg")) svg = argv[++i];
        else if (!strcmp(a, "--backend")) backend = argv[++i];
        else if (!strcmp(a, "--gpus")) gpus = argv[++i];
        else if (!strcmp(a, "--ctx-start")) { if (parse_int(a, argv[++i], 1, 1 << 30, &so.ctx_start)) return 2; have_a = 1; }
        else if (!strcmp(a, "--ctx-max")) { if (parse_int(a, argv[++i], 1, 1 << 30, &so.ctx_max)) return 2; have_b = 1; }
        else if (!strcmp(a, "--step-incr")) { if (parse_int(a, argv[++i], 1, 1 << 30, &so.step)) return 2; have_s = 1; }
        else if (!strcmp(a, "--gen-tokens")) { if (parse_int(a, argv[++i], 1, 1 << 20, &so.gen_tokens)) return 2; have_n = 1; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { if (parse_int(a, argv[++i], 0, 4096, &threads)) return 2; }
        else if (!strcmp(a, "--bw-mb")) { if (parse_int(a, argv[++i], 1, 1 << 20, &bw_mb)) return 2; }
        else if (!strcmp(a, "--bw-threads")) { if (parse_int(a, argv[++i], 1, 4096, &bw_threads)) return 2; }
        else { fprintf(stderr, "ds4-bench: unknown argument '%s'\n", a); usage(stderr); return 2; }
    }
    if (model && weights_only) return weight_bytes_only(model, have_a ? so.ctx_start : 1, have_b ? so.ctx_max : 1 << 20);
    if (!model || !prompt_file || !have_a || !have_b || !have_s || !have_n) {
        fprintf(stderr, "ds4-bench: -m, --prompt-file, --ctx-start, --ctx-max, --step-incr and --gen-tokens are required\n");
        usage(stderr);
        return 2;
    }
    if (so.ctx_max < so.ctx_start) {
        fprintf(stderr, "ds4-bench: --ctx-max %d is below --ctx-start %d\n", so.ctx_max, so.ctx_start);
        return 2;
    }
    ds4_err e = {{0}};
    ds4_model_opts mo = {.backend = backend, .n_threads = threads, .exact = fast ? -1 : quality ? 1 : 0, .gpus = gpus};
    ds4_model *m = ds4_model_load(model, &mo, &e);
    if (!m) { fprintf(stderr, "ds4-bench: %s\n", e.msg); return 1; }
    int rc = 1;
    ds4_vocab *v = ds4_vocab_from_gguf(ds4_model_gguf(m), &e);
    ds4_sbuf text = {0};
    ds4_tokens one = {0}, all = {0};
    ds4_bench_row *rows = NULL;
    size_t n_rows = 0;
    if (!v) { fprintf(stderr, "ds4-bench: %s: tokenizer: %s\n", model, e.msg); goto out; }
    FILE *pf = fopen(prompt_file, "rb");
    if (!pf) { fprintf(stderr, "ds4-bench: --prompt-file %s: %s\n", prompt_file, strerror(errno)); goto out; }
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, pf)) > 0) ds4_sbuf_add(&text, buf, got);
    fclose(pf);
    if (ds4_encode_text(v, text.p ? text.p : "", text.len, &one, &e)) { fprintf(stderr, "ds4-bench: %s: %s\n", prompt_file, e.msg); goto out; }
    if (one.n == 0) { fprintf(stderr, "ds4-bench: --prompt-file %s: no tokens (empty file)\n", prompt_file); goto out; }
    ds4_tokens_push(&all, ds4_vocab_special(v, DS4_SP_BOS));
    while (all.n < (size_t)so.ctx_max)
        for (size_t i = 0; i < one.n && all.n < (size_t)so.ctx_max; i++) ds4_tokens_push(&all, one.ids[i]);

    double bw0 = ds4_bench_bandwidth((size_t)bw_mb << 20, bw_threads, 3);
    uint64_t wb0 = 0;
    if (ds4_bench_weight_bytes(ds4_model_gguf(m), (uint64_t)so.ctx_start, &wb0, &e)) { fprintf(stderr, "ds4-bench: %s\n", e.msg); goto out; }
    printf("# model %s (%s), %d layers, width %d; backend %s, threads %d, mode %s\n", ds4_model_name(m), model,
           ds4_model_n_layer(m), ds4_model_n_embd(m), ds4_model_backend(m),
           threads ? threads : (int)sysconf(_SC_NPROCESSORS_ONLN), ds4_model_exact(m) ? "exact" : "fast (reassociated F16 sums)");
    printf("# prompt %s: %zu tokens (repeated to %d); %d greedy tokens per frontier\n", prompt_file, one.n, so.ctx_max, so.gen_tokens);
    printf("# bandwidth %.2f GB/s (streaming read, %d MiB, %d threads); weight bytes/token %.4f GB at context %d\n",
           bw0 / 1e9, bw_mb, bw_threads, wb0 / 1e9, so.ctx_start);
    printf("# frontier  prefill_t/s  decode_t/s       kv_bytes   weight_bytes  bw_frac\n");
    fflush(stdout);
    if (ds4_bench_sweep(m, all.ids, (int)all.n, &so, bw0, &rows, &n_rows, print_row, NULL, &e)) {
        fprintf(stderr, "ds4-bench: %s\n", e.msg);
        goto out;
    }
    double bw1 = ds4_bench_bandwidth((size_t)bw_mb << 20, bw_threads, 3);
    if (bw1 > bw0 * 1.2 || bw1 < bw0 / 1.2)
        fprintf(stderr, "ds4-bench: warning: bandwidth %.2f GB/s before the sweep, %.2f GB/s after: the machine was busy\n",
                bw0 / 1e9, bw1 / 1e9);
    if (bw1 > bw0) { /* judge against the better measurement: the limit is the machine's best */
        for (size_t i = 0; i < n_rows; i++) rows[i].bw_fraction = rows[i].decode_tps * (double)rows[i].weight_bytes / bw1;
        printf("# bandwidth after the sweep %.2f GB/s: fractions recomputed against it\n", bw1 / 1e9);
    }
    rc = 0;
    if (csv) {
        FILE *f = fopen(csv, "w");
        int bad = !f || ds4_bench_write_csv(f, rows, n_rows);
        if ((f && fclose(f)) || bad) {
            fprintf(stderr, "ds4-bench: --csv %s: cannot write\n", csv);
            rc = 1;
        }
    }
    if (svg) {
        char title[256], sub[512];
        snprintf(title, sizeof title, "ds4-bench: %s", ds4_model_name(m));
        snprintf(sub, sizeof sub, "%d layers, width %d, backend %s, %d threads, %d greedy tokens per frontier, bandwidth %.1f GB/s",
                 ds4_model_n_layer(m), ds4_model_n_embd(m), ds4_model_backend(m),
                 threads ? threads : (int)sysconf(_SC_NPROCESSORS_ONLN), so.gen_tokens, (bw1 > bw0 ? bw1 : bw0) / 1e9);
        FILE *f = fopen(svg, "w");
        int bad = !f || ds4_bench_write_svg(f, rows, n_rows, title, sub);
        if ((f && fclose(f)) || bad) {
            fprintf(stderr, "ds4-bench: --svg %s: cannot write\n", svg);
            rc = 1;
        }
    }
out:
    free(rows);
    ds4_tokens_free(&one);
    ds4_tokens_free(&all);
    ds4_sbuf_free(&text);
    ds4_vocab_free(v);
    ds4_model_free(m);
    return rc;
}
