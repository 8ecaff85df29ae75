/* matvec.c - memory bandwidth and quantized matrix-vector throughput.
 *
 * Decode at batch 1 is memory-bound, so the number that matters for a dot
 * kernel is how close a full matrix-vector product gets to the machine's read
 * bandwidth. This measures both in the same run: first a multi-threaded
 * streaming read of a large buffer (best of several runs), then for each
 * weight format a product over a matrix much larger than the last-level
 * cache, rows split across threads, reporting GB/s of weights read and the
 * fraction of the measured bandwidth. Also with one thread, against the
 * one-thread bandwidth. The engine owns threading; this bench only splits
 * rows the simplest way to see what the per-row kernels can sustain.
 *
 * usage: matvec [--weights-mib N] [--bw-mib N] [--threads N] [--reps N] [--n N] [--clock wall|cpu]
 * DS4_SIMD=scalar|avx2|avx512 caps the kernel level (see quant.h). */
#include "quant/quant.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- streaming read ------------------------------------------------------ */

#if defined(__x86_64__)
__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a0 = _mm256_xor_si256(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    return (uint64_t)_mm256_extract_epi64(a0, 0) ^ (uint64_t)_mm256_extract_epi64(a0, 3);
}

__attribute__((target("avx512f"))) static uint64_t read_avx512(const uint8_t *p, size_t n) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 256 <= n; i += 256) {
        a0 = _mm512_xor_si512(a0, _mm512_load_si512((const void *)(p + i)));
        a1 = _mm512_xor_si512(a1, _mm512_load_si512((const void *)(p + i + 64)));
        a2 = _mm512_xor_si512(a2, _mm512_load_si512((const void *)(p + i + 128)));
        a3 = _mm512_xor_si512(a3, _mm512_load_si512((const void *)(p + i + 192)));
    }
    a0 = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
    return (uint64_t)_mm_cvtsi128_si64(_mm512_castsi512_si128(a0));
}
#endif

static uint64_t read_scalar(const uint8_t *p, size_t n) {
    const uint64_t *q = (const uint64_t *)p;
    uint64_t a[8] = {0};
    for (size_t i = 0; i + 8 <= n / 8; i += 8)
        for (int k = 0; k < 8; k++) a[k] ^= q[i + k];
    return a[0] ^ a[1] ^ a[2] ^ a[3] ^ a[4] ^ a[5] ^ a[6] ^ a[7];
}

static int read_level;   /* 2 = AVX-512, 1 = AVX2, 0 = scalar; --read picks, default best */

static uint64_t read_buf(const uint8_t *p, size_t n) {
#if defined(__x86_64__)
    if (read_level >= 2 && __builtin_cpu_supports("avx512f")) return read_avx512(p, n);
    if (read_level >= 1 && __builtin_cpu_supports("avx2")) return read_avx2(p, n);
#endif
    return read_scalar(p, n);
}

/* ---- a tiny fork/join pool: every worker runs job(tid) once per round ----- */

typedef struct {
    int nthreads, nthreads_all;
    void (*job)(int tid, void *arg);
    void *arg;
    pthread_barrier_t start, done;
    int quit;
} pool_t;
static pool_t P;

/* --clock cpu: a round lasts as long as its busiest thread's CPU time. On a
 * machine shared with other CPU-bound work this approximates the wall time
 * the round would take alone (it cannot remove the others' cache and memory
 * traffic, only the time slices they take). */
static int use_cpu_clock;
static double tcpu[64];

static double thread_cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *worker(void *p) {
    int tid = (int)(intptr_t)p;
    for (;;) {
        pthread_barrier_wait(&P.start);
        if (P.quit) return NULL;
        double c0 = thread_cpu();
        P.job(tid, P.arg);
        tcpu[tid] = thread_cpu() - c0;
        pthread_barrier_wait(&P.done);
    }
}

/* Runs job on every pool thread (the caller is thread 0; jobs ignore the
 * threads they do not need); returns seconds. */
static double run_round(int nthreads, void (*job)(int, void *), void *arg) {
    P.job = job;
    P.arg = arg;
    P.nthreads = nthreads;
    double t0 = now();
    pthread_barrier_wait(&P.start);
    double c0 = thread_cpu();
    job(0, arg);
    tcpu[0] = thread_cpu() - c0;
    pthread_barrier_wait(&P.done);
    double wall = now() - t0;
    if (!use_cpu_clock) return wall;
    double m = 0;
    for (int t = 0; t < nthreads; t++) if (tcpu[t] > m) m = tcpu[t];
    return m;
}

/* Barriers are sized for all threads; rounds with fewer threads let the extra
 * workers idle through (they check nthreads). */
typedef struct { const uint8_t *buf; size_t bytes; int nthreads; volatile uint64_t sink[64]; } bw_arg;
static void bw_job(int tid, void *p) {
    bw_arg *a = p;
    if (tid >= a->nthreads) return;
    size_t chunk = a->bytes / (size_t)a->nthreads / 256 * 256;
    a->sink[tid] = read_buf(a->buf + chunk * (size_t)tid, chunk);
}

typedef struct {
    uint32_t type;
    const uint8_t *w;
    size_t row_bytes;
    int64_t n, nrows;
    const void *act;          /* ds4_act_q8_0[], ds4_block_q8_K[] or float[] */
    float *out;
    int nthreads;
    int f16_fast;
    int one_row;              /* call the one-row kernel per row instead of the multi-row form */
} mv_arg;

static void mv_job(int tid, void *p) {
    mv_arg *a = p;
    if (tid >= a->nthreads) return;
    int64_t r0 = a->nrows * tid / a->nthreads, r1 = a->nrows * (tid + 1) / a->nthreads;
    const uint8_t *w = a->w + (size_t)r0 * a->row_bytes;
    int64_t nr = r1 - r0;
    if (a->one_row) {
        for (int64_t r = 0; r < nr; r++) {
            const uint8_t *row = w + (size_t)r * a->row_bytes;
            a->out[r0 + r] = a->type == DS4_TYPE_Q8_0 ? ds4_vec_dot_q8_0(a->n, row, a->act)
                                                      : ds4_vec_dot_iq2_xxs_q8_K(a->n, row, a->act);
        }
        return;
    }
    switch (a->type) {
    case DS4_TYPE_Q8_0: ds4_vec_dot_q8_0_rows(a->n, nr, w, a->row_bytes, a->act, a->out + r0); break;
    case DS4_TYPE_IQ2_XXS: ds4_vec_dot_iq2_xxs_q8_K_rows(a->n, nr, w, a->row_bytes, a->act, a->out + r0); break;
    case DS4_TYPE_Q2_K: ds4_vec_dot_q2_K_q8_K_rows(a->n, nr, w, a->row_bytes, a->act, a->out + r0); break;
    case DS4_TYPE_Q4_K: ds4_vec_dot_q4_K_q8_K_rows(a->n, nr, w, a->row_bytes, a->act, a->out + r0); break;
    case DS4_TYPE_F16:
        if (!a->f16_fast) {
            ds4_vec_dot_f16_f32_rows(a->n, nr, (const uint16_t *)w, a->row_bytes, a->act, a->out + r0);
            break;
        }
        for (int64_t r = 0; r < nr; r++)
            a->out[r0 + r] = ds4_vec_dot_f16_f32_fast(a->n, (const uint16_t *)(w + (size_t)r * a->row_bytes), a->act);
        break;
    }
}

/* 2 MiB-aligned and, where the kernel allows, backed by huge pages, so that
 * neither the bandwidth test nor the products pay for TLB misses. */
static void *big_alloc(size_t bytes) {
    void *p = aligned_alloc(1u << 21, (bytes + (1u << 21) - 1) & ~(size_t)((1u << 21) - 1));
    if (p) madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

static uint64_t rs = 88172645463325252ull;
static uint64_t r64(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return rs; }

/* Random weights with sane scales: random code bytes, F16 scales set to
 * ordinary normal values (denormal or NaN scales would time the FPU's slow
 * paths, not the kernel). */
static void fill_weights(uint32_t type, uint8_t *w, size_t bytes) {
    for (size_t i = 0; i + 8 <= bytes; i += 8) { uint64_t v = r64(); memcpy(w + i, &v, 8); }
    size_t bb = ds4_type_block_bytes(type);
    uint16_t d = ds4_f32_to_f16(0.01f), d2 = ds4_f32_to_f16(0.002f);
    for (size_t off = 0; off + bb <= bytes; off += bb) {
        switch (type) {
        case DS4_TYPE_Q8_0: case DS4_TYPE_IQ2_XXS: memcpy(w + off, &d, 2); break;
        case DS4_TYPE_Q2_K: memcpy(w + off + 80, &d, 2); memcpy(w + off + 82, &d2, 2); break;
        case DS4_TYPE_Q4_K: memcpy(w + off, &d, 2); memcpy(w + off + 2, &d2, 2); break;
        case DS4_TYPE_F16: {
            uint16_t h = ds4_f32_to_f16((float)((int)(r64() % 2001) - 1000) * 1e-4f);
            memcpy(w + off, &h, 2);
            break;
        }
        }
    }
}

/* Best streaming-read GB/s for each thread count, folded into bw[]. */
static void measure_bw(const uint8_t *buf, size_t bytes, const int *tcounts, int reps, double *bw) {
    for (int k = 0; k < 2; k++) {
        bw_arg a = {buf, bytes, tcounts[k], {0}};
        size_t per = bytes / (size_t)tcounts[k] / 256 * 256 * (size_t)tcounts[k];
        for (int r = 0; r < reps; r++) {
            double gbs = (double)per / run_round(P.nthreads_all, bw_job, &a) * 1e-9;
            if (gbs > bw[k]) bw[k] = gbs;
        }
    }
}

int main(int argc, char **argv) {
    size_t weights_mib = 1024, bw_mib = 1024;
    read_level = 2;
    int reps = 5, nthreads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int64_t n = 4096;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--weights-mib")) weights_mib = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--bw-mib")) bw_mib = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) nthreads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--n")) n = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--clock")) use_cpu_clock = !strcmp(argv[i + 1], "cpu");
        else if (!strcmp(argv[i], "--read")) read_level = atoi(argv[i + 1]);
        else { fprintf(stderr, "matvec: unknown option %s\n", argv[i]); return 2; }
    }
    if (nthreads < 1 || nthreads > 64 || reps < 1 || n < 256 || n % 256 || weights_mib < 1 || bw_mib < 1) {
        fprintf(stderr, "matvec: need 1..64 threads, reps >= 1, n a multiple of 256, sizes >= 1 MiB\n");
        return 2;
    }
    P.nthreads_all = nthreads;
    pthread_barrier_init(&P.start, NULL, (unsigned)nthreads);
    pthread_barrier_init(&P.done, NULL, (unsigned)nthreads);
    pthread_t th[64];
    for (int t = 1; t < nthreads; t++) pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);

    printf("# ds4 matvec bench: %d threads, simd %s, row length %lld, weights %zu MiB, bandwidth buffer %zu MiB, best of %d, clock %s\n",
           nthreads, ds4_simd_level(), (long long)n, weights_mib, bw_mib, reps, use_cpu_clock ? "thread CPU time" : "wall");
    /* other load on the machine skews both numbers; say how much there was */
    FILE *la = fopen("/proc/loadavg", "r");
    char lbuf[128];
    if (la && fgets(lbuf, sizeof lbuf, la)) printf("# load average at start: %s", lbuf);
    if (la) fclose(la);

    /* bandwidth, measured before and after the products: on a shared machine
     * the higher figure is the closer to what the hardware can do */
    size_t bw_bytes = bw_mib << 20;
    uint8_t *buf = big_alloc(bw_bytes);
    if (!buf) { fprintf(stderr, "matvec: cannot allocate %zu MiB\n", bw_mib); return 1; }
    memset(buf, 1, bw_bytes);
    double bw[2] = {0, 0};
    int tcounts[2] = {nthreads, 1};
    measure_bw(buf, bw_bytes, tcounts, reps, bw);
    for (int k = 0; k < 2; k++)
        printf("read bandwidth, %d thread%s: %.2f GB/s\n", tcounts[k], tcounts[k] > 1 ? "s" : "", bw[k]);

    /* activations */
    float *xf = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) xf[i] = (float)((int)(r64() % 2001) - 1000) * 1e-3f;
    ds4_act_q8_0 *xa = malloc(sizeof *xa * (size_t)(n / 32));
    ds4_block_q8_K *xk = malloc(sizeof *xk * (size_t)(n / 256));
    ds4_quantize_act_q8_0(xf, xa, n);
    ds4_quantize_q8_K(xf, xk, n);

    static const struct { uint32_t type; int fast, one_row; const char *label; } fmts[] = {
        {DS4_TYPE_Q8_0, 0, 0, "Q8_0"}, {DS4_TYPE_Q8_0, 0, 1, "Q8_0 1row"},
        {DS4_TYPE_IQ2_XXS, 0, 0, "IQ2_XXS"}, {DS4_TYPE_IQ2_XXS, 0, 1, "IQ2 1row"},
        {DS4_TYPE_Q2_K, 0, 0, "Q2_K"}, {DS4_TYPE_Q4_K, 0, 0, "Q4_K"},
        {DS4_TYPE_F16, 0, 0, "F16 exact"}, {DS4_TYPE_F16, 1, 0, "F16 fast"},
    };
    printf("%-10s %8s %10s %8s %10s %8s\n", "format", "MiB", "GB/s", "of BW", "GB/s 1t", "of BW 1t");
    size_t wbytes = weights_mib << 20;
    uint8_t *w = big_alloc(wbytes);
    if (!w) { fprintf(stderr, "matvec: cannot allocate %zu MiB of weights\n", weights_mib); return 1; }
    uint32_t filled = 0xffffffffu;
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        size_t row_bytes = ds4_row_bytes(fmts[f].type, (uint64_t)n);
        int64_t nrows = (int64_t)(wbytes / row_bytes);
        if (filled != fmts[f].type) { fill_weights(fmts[f].type, w, (size_t)nrows * row_bytes); filled = fmts[f].type; }
        float *out = malloc(sizeof(float) * (size_t)nrows);
        const void *act = fmts[f].type == DS4_TYPE_Q8_0 ? (const void *)xa
                        : fmts[f].type == DS4_TYPE_F16 ? (const void *)xf : (const void *)xk;
        double gbs[2] = {0, 0};
        for (int k = 0; k < 2; k++) {
            mv_arg a = {fmts[f].type, w, row_bytes, n, nrows, act, out, tcounts[k], fmts[f].fast, fmts[f].one_row};
            for (int r = 0; r < reps; r++) {
                double s = run_round(nthreads, mv_job, &a);
                double g = (double)nrows * (double)row_bytes / s * 1e-9;
                if (g > gbs[k]) gbs[k] = g;
            }
        }
        printf("%-10s %8.0f %10.2f %7.0f%% %10.2f %7.0f%%\n", fmts[f].label,
               (double)nrows * (double)row_bytes / 1048576.0, gbs[0], 100.0 * gbs[0] / bw[0], gbs[1], 100.0 * gbs[1] / bw[1]);
        fflush(stdout);
        free(out);
    }
    double bw_end[2] = {0, 0};
    measure_bw(buf, bw_bytes, tcounts, reps, bw_end);
    printf("read bandwidth again after the products: %.2f GB/s (%d threads), %.2f GB/s (1 thread)%s\n",
           bw_end[0], nthreads, bw_end[1],
           bw_end[0] > 1.1 * bw[0] || bw_end[1] > 1.1 * bw[1] ? "  -- higher than at start: the machine was busy, fractions above are optimistic" : "");
    free(buf); free(w); free(xf); free(xa); free(xk);
    P.quit = 1;
    pthread_barrier_wait(&P.start);
    for (int t = 1; t < nthreads; t++) pthread_join(th[t], NULL);
    return 0;
}
