/* chan.c - see chan.h. Waits are timed (100 ms) so the consumer can poll the
 * socket for a hang-up while the producer is silent (prefill, hidden
 * reasoning, a non-streaming generation). */
#include "server/chan.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define STALL_MS 2000
#define POLL_MS 100

ds4s_chan *ds4s_chan_new(int fd) {
    ds4s_chan *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &a);
    pthread_condattr_destroy(&a);
    c->refs = 1;
    c->fd = fd;
    c->limit = 4u << 20;
    return c;
}

void ds4s_chan_ref(ds4s_chan *c) {
    pthread_mutex_lock(&c->mu);
    c->refs++;
    pthread_mutex_unlock(&c->mu);
}

void ds4s_chan_unref(ds4s_chan *c) {
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    int last = --c->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (!last) return;
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->buf);
    free(c);
}

static void deadline(struct timespec *ts, int ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

void ds4s_chan_start(ds4s_chan *c, int status, int streaming) {
    pthread_mutex_lock(&c->mu);
    if (!c->status) {
        c->status = status;
        c->streaming = streaming;
        /* A whole body is drained only after close: never stall it. */
        if (!streaming) c->limit = (size_t)-1 / 2;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
}

int ds4s_chan_started(ds4s_chan *c) {
    pthread_mutex_lock(&c->mu);
    int s = c->status;
    pthread_mutex_unlock(&c->mu);
    return s;
}

int ds4s_chan_write(ds4s_chan *c, const char *data, size_t n) {
    pthread_mutex_lock(&c->mu);
    if (!c->dead && c->len - c->off + n > c->limit) {
        struct timespec ts;
        deadline(&ts, STALL_MS);
        while (!c->dead && c->len - c->off + n > c->limit)
            if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT) { c->dead = 1; break; }
    }
    if (c->dead || c->closed) {
        pthread_mutex_unlock(&c->mu);
        return -1;
    }
    if (c->off > 0 && c->off == c->len) c->off = c->len = 0;
    if (c->len + n > c->cap) {
        if (c->off) {
            memmove(c->buf, c->buf + c->off, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        }
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n) cap *= 2;
        char *b = realloc(c->buf, cap);
        if (!b) { c->dead = 1; pthread_mutex_unlock(&c->mu); return -1; }
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

int ds4s_chan_write_str(ds4s_chan *c, char *owned) {
    if (!owned) return -1;
    int r = ds4s_chan_write(c, owned, strlen(owned));
    free(owned);
    return r;
}

void ds4s_chan_close(ds4s_chan *c) {
    pthread_mutex_lock(&c->mu);
    c->closed = 1;
    if (!c->status) c->status = 500;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

int ds4s_chan_dead(ds4s_chan *c) {
    pthread_mutex_lock(&c->mu);
    int d = c->dead;
    pthread_mutex_unlock(&c->mu);
    return d;
}

void ds4s_chan_kill(ds4s_chan *c) {
    pthread_mutex_lock(&c->mu);
    c->dead = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

int ds4s_fd_hung_up(int fd) {
    if (fd < 0) return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return 1;
    if (p.revents & POLLIN) {
        char b;
        ssize_t r = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r == 0) return 1;
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return 1;
    }
    return 0;
}

/* Timed wait that also checks the client socket; returns 1 if it died. */
static int wait_tick(ds4s_chan *c) {
    struct timespec ts;
    deadline(&ts, POLL_MS);
    pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    if (!c->dead && ds4s_fd_hung_up(c->fd)) {
        c->dead = 1;
        pthread_cond_broadcast(&c->cv);
    }
    return c->dead;
}

int ds4s_chan_wait_status(ds4s_chan *c) {
    pthread_mutex_lock(&c->mu);
    while (!c->status && !c->dead) wait_tick(c);
    int s = c->dead && !c->status ? 0 : c->status;
    pthread_mutex_unlock(&c->mu);
    return s;
}

long ds4s_chan_read(ds4s_chan *c, char *out, size_t max) {
    pthread_mutex_lock(&c->mu);
    while (c->off == c->len && !c->closed && !c->dead) wait_tick(c);
    long r;
    if (c->off < c->len && !c->dead) {
        size_t n = c->len - c->off;
        if (n > max) n = max;
        memcpy(out, c->buf + c->off, n);
        c->off += n;
        r = (long)n;
        pthread_cond_broadcast(&c->cv);
    } else {
        r = c->dead ? -1 : 0;
    }
    pthread_mutex_unlock(&c->mu);
    return r;
}

int ds4s_chan_wait_closed(ds4s_chan *c) {
    pthread_mutex_lock(&c->mu);
    while (!c->closed && !c->dead) wait_tick(c);
    int ok = c->closed && !c->dead;
    pthread_mutex_unlock(&c->mu);
    return ok;
}
