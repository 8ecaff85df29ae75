/* textexec.c - see textexec.h. A one-slot mailbox: callers take turns under
 * `call` (so one request is in flight), hand it over under `mu`, and wait for
 * `done`. */
#include "server/textexec.h"

#include <pthread.h>

typedef struct req {
    int rendered;
    const ds4_vocab *v;
    const char *s;
    size_t n;
    ds4_tokens *out;
    ds4_err *err;
    int rc;
} req;

static pthread_mutex_t call = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static req *pending;
static int done, running, stopping;
static pthread_t th;

static int run(req *r) {
    return r->rendered ? ds4_encode_rendered(r->v, r->s, r->n, r->out, r->err)
                       : ds4_encode_text(r->v, r->s, r->n, r->out, r->err);
}

static void *loop(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        while (!pending && !stopping) pthread_cond_wait(&cv, &mu);
        if (!pending) break;
        req *r = pending;
        pthread_mutex_unlock(&mu);
        r->rc = run(r);
        pthread_mutex_lock(&mu);
        pending = NULL;
        done = 1;
        pthread_cond_broadcast(&cv);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

int ds4s_textexec_start(void) {
    if (running) return 0;
    stopping = 0;
    if (pthread_create(&th, NULL, loop, NULL)) return -1;
    running = 1;
    return 0;
}

void ds4s_textexec_stop(void) {
    if (!running) return;
    pthread_mutex_lock(&call);
    pthread_mutex_lock(&mu);
    stopping = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(th, NULL);
    running = 0;
    pthread_mutex_unlock(&call);
}

static int submit(req *r) {
    if (!running) return run(r);
    pthread_mutex_lock(&call);
    pthread_mutex_lock(&mu);
    pending = r;
    done = 0;
    pthread_cond_broadcast(&cv);
    while (!done) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    pthread_mutex_unlock(&call);
    return r->rc;
}

int ds4s_encode_rendered(const ds4_vocab *v, const char *s, size_t n, ds4_tokens *out, ds4_err *err) {
    req r = {1, v, s, n, out, err, 0};
    return submit(&r);
}

int ds4s_encode_text(const ds4_vocab *v, const char *s, size_t n, ds4_tokens *out, ds4_err *err) {
    req r = {0, v, s, n, out, err, 0};
    return submit(&r);
}
