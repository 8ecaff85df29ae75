/* pool.c - see pool.h. Workers sleep on a condition variable between loops;
 * a generation counter tells them a new loop has been posted. */
#include "engine/cpu/pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct ds4_pool {
    int n;                 /* threads including the caller */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    uint64_t gen;
    int pending;
    int stop;
    ds4_range_fn fn;
    void *ctx;
    int64_t total, chunk;
};

static void run_part(ds4_pool *p, int idx) {
    const int64_t b = (int64_t)idx * p->chunk;
    int64_t e = b + p->chunk;
    if (e > p->total) e = p->total;
    if (b < e) p->fn(p->ctx, b, e);
}

typedef struct { ds4_pool *p; int idx; } worker_arg;

static void *worker(void *arg) {
    worker_arg *wa = arg;
    ds4_pool *p = wa->p;
    const int idx = wa->idx;
    free(wa);
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->gen == seen) pthread_cond_wait(&p->cv_work, &p->mu);
        if (p->stop) break;
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        run_part(p, idx);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->cv_done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ds4_pool *ds4_pool_new(int n_threads) {
    if (n_threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (int)c : 1;
    }
    if (n_threads > 256) n_threads = 256;
    ds4_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
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
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    free(p->th);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
    free(p);
}

int ds4_pool_size(const ds4_pool *p) { return p ? p->n : 1; }

void ds4_pool_for(ds4_pool *p, int64_t n, int64_t grain, ds4_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int parts = p ? p->n : 1;
    if ((n + grain - 1) / grain < parts) parts = (int)((n + grain - 1) / grain);
    if (parts <= 1) { fn(ctx, 0, n); return; }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->total = n;
    p->chunk = (n + p->n - 1) / p->n;
    if (p->chunk < grain) p->chunk = grain;
    p->pending = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    run_part(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
