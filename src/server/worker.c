/* worker.c - the single inference worker and its FIFO queue (spec/server.md
 * §1.1, §12.6). One thread owns the session; jobs run to completion in
 * arrival order. The queue is bounded (--max-queue) so a flood of clients
 * gets 503s instead of unbounded memory; its depth is visible in /metrics. */
#include <stdlib.h>

#include "server/server.h"

void ds4s_job_free(ds4s_job *j) {
    if (!j) return;
    ds4_request_free(&j->req);
    ds4s_params_free(&j->params);
    free(j->prompt);
    ds4_tokens_free(&j->toks);
    json_decref(j->resp_input);
    json_decref(j->custom_tools);
    free(j->resp_instructions);
    free(j->body);
    ds4s_chan_unref(j->ch);
    free(j);
}

static void *worker_main(void *arg) {
    ds4s_server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->qmu);
        while (!s->qhead && !s->stopping) pthread_cond_wait(&s->qcv, &s->qmu);
        ds4s_job *j = s->qhead;
        if (!j) {   /* stopping and drained */
            pthread_mutex_unlock(&s->qmu);
            return NULL;
        }
        s->qhead = j->next;
        if (!s->qhead) s->qtail = NULL;
        s->qlen--;
        __atomic_store_n(&s->metrics.queue_depth, s->qlen, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&s->qmu);
        __atomic_store_n(&s->metrics.busy, 1, __ATOMIC_RELAXED);
        ds4s_generate(s, j);
        __atomic_store_n(&s->metrics.busy, 0, __ATOMIC_RELAXED);
        ds4s_job_free(j);
    }
}

int ds4s_worker_start(ds4s_server *s) {
    pthread_mutex_init(&s->qmu, NULL);
    pthread_cond_init(&s->qcv, NULL);
    if (pthread_create(&s->worker, NULL, worker_main, s)) return -1;
    s->worker_started = 1;
    return 0;
}

int ds4s_worker_enqueue(ds4s_server *s, ds4s_job *j) {
    pthread_mutex_lock(&s->qmu);
    if (s->stopping || s->qlen >= s->cfg.max_queue) {
        pthread_mutex_unlock(&s->qmu);
        return -1;
    }
    j->next = NULL;
    if (s->qtail) s->qtail->next = j; else s->qhead = j;
    s->qtail = j;
    s->qlen++;
    __atomic_store_n(&s->metrics.queue_depth, s->qlen, __ATOMIC_RELAXED);
    pthread_cond_signal(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
    return 0;
}

void ds4s_worker_stop(ds4s_server *s) {
    if (!s->worker_started) return;
    pthread_mutex_lock(&s->qmu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
    pthread_join(s->worker, NULL);
    s->worker_started = 0;
}
