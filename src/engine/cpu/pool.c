/* pool.c - see pool.h.
 *
 * A decode step runs on the order of a hundred short parallel loops, so the
 * hand-off must be cheap: workers spin on a generation counter for a short
 * while (DS4_POOL_SPIN_US, default 200 µs) before sleeping on a condition
 * variable, and the caller spins on the pending count. An idle pool therefore
 * costs nothing after the spin window, while back-to-back loops never pay a
 * futex wake-up. */
#include "engine/cpu/pool.h"

#include <pthread.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

struct ds4_pool {
    int n;                 /* threads including the caller */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* What idle workers spin on, what finishing workers write and what
     * working ones claim parts from sit on separate cache lines, so that
     * spinning readers do not slow down the writers (false sharing). */
    _Alignas(64) _Atomic uint64_t gen;  /* bumped once per posted loop */
    _Atomic int sleepers;  /* workers blocked (or about to block) on cv */
    _Atomic int stop;
    ds4_range_fn fn;
    void *ctx;
    int64_t total, chunk;
    int parts, parts_per_thread;
    _Alignas(64) _Atomic int pending;   /* workers still running the current loop */
    _Alignas(64) _Atomic int next;      /* next part to claim */
    char pad_[60];
    int64_t spin_ns;
    /* DS4_POOL_STATS=1: loops posted, and the caller's time inside them
     * versus the time from the first loop's start to the last one's end,
     * printed when the pool is freed (what is left is serial work between
     * loops: the part threads cannot speed up). A loop small enough to run
     * as one part on the caller counts as inside, though it is serial too. */
    int stats;
    int64_t n_loops, ns_in_loops, ns_first, ns_last;
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Parts are claimed from a shared counter rather than one fixed part per
 * thread: a loop is cut into up to PARTS_PER_THREAD parts per thread, so a
 * thread slowed by the memory system or the hypervisor leaves its tail to
 * the others. Which thread runs a part never changes a result (each part's
 * outputs are computed by one call, the same whoever makes it). */
#define PARTS_PER_THREAD 4   /* DS4_POOL_PARTS overrides it (1 = one fixed part per thread) */

static void run_parts(ds4_pool *p) {
    for (;;) {
        const int i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (i >= p->parts) return;
        const int64_t b = (int64_t)i * p->chunk;
        int64_t e = b + p->chunk;
        if (e > p->total) e = p->total;
        if (b < e) p->fn(p->ctx, b, e);
    }
}

typedef struct { ds4_pool *p; int idx; } worker_arg;

static void *worker(void *arg) {
    worker_arg *wa = arg;
    ds4_pool *p = wa->p;
    free(wa);
    uint64_t seen = 0;
    for (;;) {
        /* spin, then sleep, until a new generation or stop */
        const int64_t until = now_ns() + p->spin_ns;
        int spins = 0;
        while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen && !atomic_load(&p->stop)) {
            cpu_relax();
            if (++spins % 64 == 0 && now_ns() > until) {
                pthread_mutex_lock(&p->mu);
                atomic_fetch_add(&p->sleepers, 1);
                while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen && !atomic_load(&p->stop))
                    pthread_cond_wait(&p->cv, &p->mu);
                atomic_fetch_sub(&p->sleepers, 1);
                pthread_mutex_unlock(&p->mu);
            }
        }
        if (atomic_load(&p->stop)) break;
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        run_parts(p);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
    return NULL;
}

ds4_pool *ds4_pool_new(int n_threads) {
    if (n_threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (int)c : 1;
    }
    if (n_threads > 256) n_threads = 256;
    ds4_pool *p = aligned_alloc(64, (sizeof *p + 63) / 64 * 64);
    if (!p) return NULL;
    memset(p, 0, sizeof *p);
    p->n = n_threads;
    const char *spin = getenv("DS4_POOL_SPIN_US");
    p->spin_ns = (spin ? atoll(spin) : 200) * 1000;
    const char *pp = getenv("DS4_POOL_PARTS");
    p->parts_per_thread = pp && atoi(pp) >= 1 && atoi(pp) <= 64 ? atoi(pp) : PARTS_PER_THREAD;
    const char *st = getenv("DS4_POOL_STATS");
    p->stats = st && atoi(st) > 0;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->th = calloc((size_t)n_threads, sizeof *p->th);
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        wa->p = p;
        wa->idx = i;
        if (pthread_create(&p->th[i], NULL, worker, wa) != 0) { free(wa); p->n = i; break; }
    }
    return p;
}

void ds4_pool_free(ds4_pool *p) {
    if (!p) return;
    if (p->stats) {
        const double span = (double)(p->ns_last - p->ns_first) * 1e-9, in = (double)p->ns_in_loops * 1e-9;
        fprintf(stderr, "ds4 pool: %d threads, %" PRId64 " parallel loops, %.3f s inside them, %.3f s between them "
                "(serial) from the first loop's start to the last one's end\n", p->n, p->n_loops, in, span - in);
    }
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    free(p->th);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

int ds4_pool_size(const ds4_pool *p) { return p ? p->n : 1; }

void ds4_pool_for(ds4_pool *p, int64_t n, int64_t grain, ds4_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int parts = p ? p->n : 1;
    if ((n + grain - 1) / grain < parts) parts = (int)((n + grain - 1) / grain);
    const int64_t t0 = p && p->stats ? now_ns() : 0;
    if (p && p->stats && p->n_loops++ == 0) p->ns_first = t0;
    if (parts <= 1) {
        fn(ctx, 0, n);
        if (p && p->stats) p->ns_in_loops += (p->ns_last = now_ns()) - t0;
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->total = n;
    int64_t want = (int64_t)p->n * p->parts_per_thread, chunk = (n + want - 1) / want;
    if (chunk < grain) chunk = grain;
    p->chunk = chunk;
    p->parts = (int)((n + chunk - 1) / chunk);
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    run_parts(p);
    int spins = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0)
        if (++spins % 1024 == 0) sched_yield(); else cpu_relax();
    if (p->stats) p->ns_in_loops += (p->ns_last = now_ns()) - t0;
}
