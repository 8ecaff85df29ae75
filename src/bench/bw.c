/* bw.c - the memory bandwidth the decode speed is judged against, measured in
 * the same run (design.md "Measuring speed").
 *
 * A streaming read is what decode does with the weights: each thread folds a
 * contiguous slice of a buffer far larger than the caches with the widest
 * loads the CPU has (AVX-512, AVX2, else 8 scalar lanes), so the loop is
 * bound by memory, not by instructions (a scalar loop reads about half the
 * bandwidth on the team's Xeon). The buffer is written first so that page faults and
 * zero-page sharing are not part of the timing; the best of several passes
 * is kept, as for any peak. */
#include <pthread.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"

typedef struct job {
    const uint64_t *p;
    size_t n;          /* uint64 words */
    uint64_t sum;
    int *go;           /* 0: wait, 1: run, -1: give up */
    double t0, t1;
} job;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#if defined(__x86_64__)
#include <immintrin.h>
/* Wide loads folded with xor: one load per 32/64 bytes, nothing else on the
 * critical path, so the loop runs at the memory system's pace. */
__attribute__((target("avx512f"))) static uint64_t read_avx512(const uint64_t *p, size_t n) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_xor_si512(a0, _mm512_load_si512((const void *)(p + i)));
        a1 = _mm512_xor_si512(a1, _mm512_load_si512((const void *)(p + i + 8)));
        a2 = _mm512_xor_si512(a2, _mm512_load_si512((const void *)(p + i + 16)));
        a3 = _mm512_xor_si512(a3, _mm512_load_si512((const void *)(p + i + 24)));
    }
    a0 = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
    uint64_t r = (uint64_t)_mm_cvtsi128_si64(_mm512_castsi512_si128(a0));
    for (; i < n; i++) r ^= p[i];
    return r;
}
__attribute__((target("avx2"))) static uint64_t read_avx2(const uint64_t *p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_xor_si256(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256((const __m256i *)(p + i + 4)));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256((const __m256i *)(p + i + 8)));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256((const __m256i *)(p + i + 12)));
    }
    a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    uint64_t r = (uint64_t)_mm256_extract_epi64(a0, 0) ^ (uint64_t)_mm256_extract_epi64(a0, 3);
    for (; i < n; i++) r ^= p[i];
    return r;
}
#endif

static uint64_t read_words(const uint64_t *p, size_t n) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) return read_avx512(p, n);
    if (__builtin_cpu_supports("avx2")) return read_avx2(p, n);
#endif
    uint64_t s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) s[k] ^= p[i + k];
    for (; i < n; i++) s[0] ^= p[i];
    return s[0] ^ s[1] ^ s[2] ^ s[3] ^ s[4] ^ s[5] ^ s[6] ^ s[7];
}

static void *reader(void *ud) {
    job *j = ud;
    int g;
    while ((g = __atomic_load_n(j->go, __ATOMIC_ACQUIRE)) == 0) {}
    if (g < 0) return NULL;
    j->t0 = now_s();
    j->sum = read_words(j->p, j->n);
    j->t1 = now_s();
    return NULL;
}

double ds4_bench_bandwidth(size_t buf_bytes, int n_threads, int passes) {
    if (n_threads < 1) n_threads = 1;
    if (passes < 1) passes = 1;
    size_t words = buf_bytes / 8;
    if (words < (size_t)n_threads * 8) return -1;
    /* 2 MiB aligned with huge pages where the kernel allows: the weights are
     * read through few TLB entries too (mmap'd file pages aside). */
    const size_t huge = (size_t)1 << 21;
    words = (words * 8 + huge - 1) / huge * huge / 8;
    uint64_t *buf = NULL;
    if (posix_memalign((void **)&buf, huge, words * 8)) return -1;
    madvise(buf, words * 8, MADV_HUGEPAGE);
    for (size_t i = 0; i < words; i++) buf[i] = i * 0x9E3779B97F4A7C15ull;
    job *jobs = calloc((size_t)n_threads, sizeof *jobs);
    pthread_t *th = calloc((size_t)n_threads, sizeof *th);
    double best = -1;
    volatile uint64_t sink = 0;
    if (!jobs || !th) goto out;
    for (int pass = 0; pass < passes; pass++) {
        /* Threads spin on `go` until all exist, so the pass times them together. */
        int go = 0;
        size_t per = words / (size_t)n_threads / 32 * 32; /* slices start 256-byte aligned */
        int started = 0;
        for (int t = 0; t < n_threads; t++) {
            jobs[t] = (job){buf + (size_t)t * per, t == n_threads - 1 ? words - (size_t)t * per : per, 0, &go, 0, 0};
            if (pthread_create(&th[t], NULL, reader, &jobs[t])) break;
            started++;
        }
        __atomic_store_n(&go, started == n_threads ? 1 : -1, __ATOMIC_RELEASE);
        if (started < n_threads) {
            for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
            break;
        }
        double t0 = 1e300, t1 = 0;
        for (int t = 0; t < n_threads; t++) {
            pthread_join(th[t], NULL);
            if (jobs[t].t0 < t0) t0 = jobs[t].t0;
            if (jobs[t].t1 > t1) t1 = jobs[t].t1;
            sink += jobs[t].sum;
        }
        if (t1 > t0) {
            double bw = (double)words * 8 / (t1 - t0);
            if (bw > best) best = bw;
        }
    }
out:
    (void)sink;
    free(jobs);
    free(th);
    free(buf);
    return best;
}
