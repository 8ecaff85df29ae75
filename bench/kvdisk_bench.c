/* kvdisk_bench.c - disk KV checkpoints: how big, how fast (issue 7).
 *
 *   make bench && build/bench/kvdisk_bench [--model FILE] [--dir DIR] [--reps N]
 *                                          [--full-tokens N,N,...] [--no-full-io]
 *
 * Three parts:
 *  1. Full model shape (spec/model.md §1, §5.5), computed from the state
 *     layout: the "DSV4" snapshot size at several context lengths and the
 *     marginal bytes per 1k tokens of context. The same formula is checked
 *     against the engine's real snapshot length on the model given (part 2),
 *     so the computed column is not a guess.
 *  2. The given (tiny) model, measured: prefill N tokens, then best-of-reps
 *     times for serialize (ds4_session_save), store (ds4kv_save: write, fsync,
 *     rename, fsync dir), read back (ds4kv_load: read + XXH3-128 checks, page
 *     cache dropped first) and restore (ds4_session_load); bytes per 1k tokens.
 *  3. Store I/O at the full model's sizes: a payload of the exact full-shape
 *     snapshot size (random bytes; serialization is part 2's business) saved
 *     and loaded through the store in DIR, page cache dropped before each load
 *     (posix_fadvise DONTNEED on the fsynced file), giving the disk-side
 *     save/restore time a real conversation would pay. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"
#include "gguf/gguf.h"
#include "kvdisk/kvdisk.h"
#include "model/config.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct shape {
    uint32_t n_layer, n_vocab, head_dim, idx_head_dim, swa;
    uint32_t ratio[256];
} shape;

/* DSV4 payload bytes for p tokens (spec/model.md §5.5; CPU raw capacity). */
static uint64_t snapshot_bytes(const shape *s, uint64_t p, uint64_t ctx) {
    uint64_t win = ctx < s->swa ? ctx : s->swa, raw = p < win ? p : win;
    uint64_t b = 13 * 4 + 4 * p + 4ull * s->n_vocab + 8ull * s->n_layer;
    for (uint32_t il = 0; il < s->n_layer; il++) {
        uint64_t r = s->ratio[il], D = s->head_dim, ID = s->idx_head_dim;
        b += raw * D * 4;
        if (r) {
            uint64_t rows = r == 4 ? 8 : r, lanes = r == 4 ? 2 : 1;
            b += (p / r) * D * 4 + 2 * rows * lanes * D * 4;
        }
        if (r == 4) b += (p / 4) * ID * 4 + 2 * 8 * 2 * ID * 4;
    }
    return b;
}

static void full_shape(shape *s) {
    memset(s, 0, sizeof *s);
    s->n_layer = 43;
    s->n_vocab = 129280;
    s->head_dim = 512;
    s->idx_head_dim = 128;
    s->swa = 128;
    for (uint32_t il = 0; il < 43; il++) s->ratio[il] = il < 2 ? 0 : (il % 2 == 0 ? 4 : 128);
}

static void quiet_log(void *ud, const char *line) { (void)ud; fprintf(stderr, "%s\n", line); }

static void drop_cache(const char *dir, const char *name) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_RDONLY);
    if (fd >= 0) {
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
}

static uint64_t parse_list(const char *s, uint64_t *out, int cap) {
    int n = 0;
    while (*s && n < cap) {
        out[n++] = strtoull(s, (char **)&s, 10);
        if (*s == ',') s++;
        else break;
    }
    return (uint64_t)n;
}

int main(int argc, char **argv) {
    const char *model = "tests/data/oracle/tiny-a/ds4-synth-tiny-a.gguf";
    const char *dir = "/tmp/ds4-kvdisk-bench";
    int reps = 3, full_io = 1;
    uint64_t full_tok[8] = {1000, 10000, 32768};
    uint64_t n_full = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--full-tokens") && i + 1 < argc) n_full = parse_list(argv[++i], full_tok, 8);
        else if (!strcmp(argv[i], "--no-full-io")) full_io = 0;
        else { fprintf(stderr, "usage: %s [--model FILE] [--dir DIR] [--reps N] [--full-tokens N,..] [--no-full-io]\n", argv[0]); return 2; }
    }
    if (reps < 1) reps = 1;

    /* ---- 1. full shape, computed ---- */
    shape full;
    full_shape(&full);
    printf("## full model shape (43 layers, vocab 129280, head 512, indexer 128), computed from the state layout\n\n");
    printf("| context tokens | snapshot bytes | MiB | bytes per 1k tokens (marginal) |\n|---|---|---|---|\n");
    const uint64_t ctxs[] = {1000, 4096, 10000, 32768, 100000, 262144};
    for (size_t i = 0; i < sizeof ctxs / sizeof ctxs[0]; i++) {
        uint64_t p = ctxs[i], b = snapshot_bytes(&full, p, 1u << 20);
        uint64_t m = snapshot_bytes(&full, p + 1000, 1u << 20) - b;
        printf("| %llu | %llu | %.1f | %llu |\n", (unsigned long long)p, (unsigned long long)b, b / 1048576.0,
               (unsigned long long)m);
    }
    printf("\nfixed part (logits + raw window + frontiers) at >= 128 tokens: %llu bytes\n\n",
           (unsigned long long)(snapshot_bytes(&full, 128, 1u << 20) - 128 * 4 -
                                 (128 / 4) * 21 * (512 + 128) * 4 - (128 / 128) * 20 * 512 * 4));

    /* ---- 2. the given model, measured ---- */
    ds4_err err = {{0}};
    gguf_file *gf = gguf_open(model, &err);
    ds4_config cfg;
    if (!gf || ds4_config_from_gguf(gf, &cfg, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
    gguf_close(gf);
    shape tiny;
    memset(&tiny, 0, sizeof tiny);
    tiny.n_layer = cfg.n_layer;
    tiny.n_vocab = cfg.n_vocab;
    tiny.head_dim = cfg.head_dim;
    tiny.idx_head_dim = cfg.idx_head_dim;
    tiny.swa = cfg.swa;
    for (uint32_t il = 0; il < cfg.n_layer; il++) tiny.ratio[il] = cfg.compress_ratio[il];
    ds4_model_opts mo = {.backend = "cpu", .n_threads = 0, .exact = 0};
    ds4_model *m = ds4_model_load(model, &mo, &err);
    if (!m) { fprintf(stderr, "%s\n", err.msg); return 1; }
    const int ctx = 8192;
    ds4_session *s = ds4_session_new(m, ctx, &err);
    ds4_session *s2 = ds4_session_new(m, ctx, &err);
    if (!s || !s2) { fprintf(stderr, "%s\n", err.msg); return 1; }
    ds4kv_config kc = {.dir = dir, .budget_bytes = 64ull << 30, .model_identity = ds4_model_identity(m), .ctx = ctx,
                       .log = quiet_log};
    ds4kv_store *st = ds4kv_open(&kc, &err);
    if (!st) { fprintf(stderr, "%s\n", err.msg); return 1; }

    printf("## %s (%u layers, vocab %u, head %u, indexer %u), measured, best of %d\n\n", ds4_model_name(m),
           cfg.n_layer, cfg.n_vocab, cfg.head_dim, cfg.idx_head_dim, reps);
    printf("| tokens | snapshot bytes | formula | serialize ms | store ms (write+fsync+rename) | read ms (+checksums) | restore ms | exact |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    const int ns[] = {512, 1024, 2048, 4096};
    uint64_t bytes_at[4] = {0};
    int32_t *toks = malloc(sizeof(int32_t) * 4096);
    for (int i = 0; i < 4096; i++) toks[i] = (int32_t)((i * 2654435761u) % (uint32_t)cfg.n_vocab);
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        int n = ns[k];
        if (ds4_session_sync(s, toks, n, NULL, NULL, NULL, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
        double best[4] = {1e9, 1e9, 1e9, 1e9};
        uint8_t *blob = NULL;
        size_t len = 0;
        int exact = 1;
        for (int r = 0; r < reps; r++) {
            free(blob);
            double t0 = now_s();
            if (ds4_session_save(s, &blob, &len, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
            double t1 = now_s();
            ds4kv_entry e;
            ds4kv_save_req rq = {.tokens = toks, .n_tokens = (uint32_t)n, .payload = blob, .payload_len = len};
            /* a fresh file every rep: vary the text so the name differs */
            char txt[32];
            snprintf(txt, sizeof txt, "rep%d", r);
            rq.text = txt;
            rq.text_len = strlen(txt);
            if (ds4kv_save(st, &rq, &e, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
            double t2 = now_s();
            drop_cache(dir, e.name);
            ds4kv_loaded l;
            double t3 = now_s();
            if (ds4kv_load(st, e.name, &l, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
            double t4 = now_s();
            if (ds4_session_load(s2, l.payload, l.payload_len, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
            double t5 = now_s();
            exact &= ds4_session_n_tokens(s2) == n &&
                     !memcmp(ds4_session_logits(s2), ds4_session_logits(s), sizeof(float) * (size_t)cfg.n_vocab);
            ds4kv_loaded_free(&l);
            ds4kv_remove(st, e.name, 1);
            double d[4] = {t1 - t0, t2 - t1, t4 - t3, t5 - t4};
            for (int q = 0; q < 4; q++) if (d[q] < best[q]) best[q] = d[q];
        }
        bytes_at[k] = len;
        uint64_t f = snapshot_bytes(&tiny, (uint64_t)n, (uint64_t)ctx);
        printf("| %d | %zu | %s | %.2f | %.2f | %.2f | %.2f | %s |\n", n, len, f == len ? "=" : "MISMATCH",
               best[0] * 1e3, best[1] * 1e3, best[2] * 1e3, best[3] * 1e3, exact ? "yes" : "NO");
        free(blob);
    }
    printf("\nbytes per 1k tokens of context (tiny, 2048 -> 4096): %.0f\n\n",
           (double)(bytes_at[3] - bytes_at[2]) / 2.048);

    /* ---- 3. store I/O at full-shape sizes ---- */
    if (full_io) {
        printf("## store I/O at the full model's snapshot sizes (random payload), dir %s, best of %d\n\n", dir, reps);
        printf("| context tokens | file MiB | save s (write+fsync) | save MB/s | load s (cold, +checksums) | load MB/s |\n|---|---|---|---|---|---|\n");
        for (uint64_t k = 0; k < n_full; k++) {
            uint64_t p = full_tok[k], len = snapshot_bytes(&full, p, 1u << 20);
            uint8_t *blob = malloc(len);
            int32_t *ft = malloc(sizeof(int32_t) * p);
            if (!blob || !ft) { fprintf(stderr, "out of memory for %llu bytes\n", (unsigned long long)len); return 1; }
            uint64_t x = 88172645463325252ull;
            for (uint64_t i = 0; i < len / 8; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; memcpy(blob + 8 * i, &x, 8); }
            for (uint64_t i = 0; i < p; i++) ft[i] = (int32_t)(i % 129280);
            double bs = 1e9, bl = 1e9;
            uint64_t fb = 0;
            for (int r = 0; r < reps; r++) {
                char txt[32];
                snprintf(txt, sizeof txt, "full%d", r);
                ds4kv_save_req rq = {.tokens = ft, .n_tokens = (uint32_t)p, .text = txt, .text_len = strlen(txt),
                                     .payload = blob, .payload_len = len};
                ds4kv_entry e;
                double t0 = now_s();
                if (ds4kv_save(st, &rq, &e, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
                double t1 = now_s();
                drop_cache(dir, e.name);
                ds4kv_loaded l;
                double t2 = now_s();
                if (ds4kv_load(st, e.name, &l, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
                double t3 = now_s();
                ds4kv_loaded_free(&l);
                ds4kv_remove(st, e.name, 1);
                fb = e.file_bytes;
                if (t1 - t0 < bs) bs = t1 - t0;
                if (t3 - t2 < bl) bl = t3 - t2;
            }
            printf("| %llu | %.1f | %.3f | %.0f | %.3f | %.0f |\n", (unsigned long long)p, fb / 1048576.0, bs,
                   fb / bs / 1e6, bl, fb / bl / 1e6);
            free(blob);
            free(ft);
        }
    }
    ds4kv_close(st);
    rmdir(dir);
    ds4_session_free(s);
    ds4_session_free(s2);
    ds4_model_free(m);
    free(toks);
    return 0;
}
