/* bw.c - the memory bandwidth the decode speed is judged against, measured in
 * the same run (design.md "Measuring speed").
 *
 * A streaming read is what decode does with the weights: each thread sums a
 * contiguous slice of a buffer far larger than the caches, 8 independent
 * 64-bit lanes so the loop is load-bound rather than add-latency-bound (GCC
 * vectorises it at -O2). The buffer is written first so that page faults and
 * zero-page sharing are not part of the timing; the best of several passes
 * is kept, as for any peak. */
#include <pthread.h>
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

static void *reader(void *ud) {
    job *j = ud;
    int g;
    while ((g = __atomic_load_n(j->go, __ATOMIC_ACQUIRE)) == 0) {}
    if (g < 0) return NULL;
    j->t0 = now_s();
    uint64_t s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= j->n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += j->p[i + k];
    for (; i < j->n; i++) s[0] += j->p[i];
    j->t1 = now_s();
    j->sum = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
    return NULL;
}

double ds4_bench_bandwidth(size_t buf_bytes, int n_threads, int passes) {
    if (n_threads < 1) n_threads = 1;
    if (passes < 1) passes = 1;
    size_t words = buf_bytes / 8;
    if (words < (size_t)n_threads * 8) return -1;
    uint64_t *buf = NULL;
    if (posix_memalign((void **)&buf, 64, words * 8)) return -1;
    for (size_t i = 0; i < words; i++) buf[i] = i * 0x9E3779B97F4A7C15ull;
    job *jobs = calloc((size_t)n_threads, sizeof *jobs);
    pthread_t *th = calloc((size_t)n_threads, sizeof *th);
    double best = -1;
    volatile uint64_t sink = 0;
    if (!jobs || !th) goto out;
    for (int pass = 0; pass < passes; pass++) {
        /* Threads spin on `go` until all exist, so the pass times them together. */
        int go = 0;
        size_t per = words / (size_t)n_threads;
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
