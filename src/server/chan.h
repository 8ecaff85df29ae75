/* chan.h - the byte pipe between the inference worker and one HTTP client.
 *
 * The worker is the producer: it decides the status (ds4s_chan_start), writes
 * bytes (SSE frames or a whole JSON body) and closes. The connection thread is
 * the consumer: it waits for the status, then drains bytes into libmicrohttpd.
 * Either side can mark the channel dead: the consumer when the client hangs up
 * (polled on the socket so even a silent phase notices), the producer's write
 * when the consumer stalls for more than 2 s with a full buffer (§1.2: the one
 * worker must never be blocked by one client). The worker checks dead between
 * tokens and stops generating. Reference counted: worker and HTTP both hold it. */
#ifndef DS4_SERVER_CHAN_H
#define DS4_SERVER_CHAN_H

#include <pthread.h>
#include <stddef.h>

typedef struct ds4s_chan {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    int status;        /* 0 until the producer decides */
    int streaming;     /* SSE: headers now, bytes as they come */
    char *buf;
    size_t off, len, cap;
    size_t limit;      /* buffered bytes before a write waits (stall rule) */
    int closed;
    int dead;
    int fd;            /* client socket, -1 if unknown */
} ds4s_chan;

ds4s_chan *ds4s_chan_new(int fd);
void ds4s_chan_ref(ds4s_chan *c);
void ds4s_chan_unref(ds4s_chan *c);

/* Producer side. start decides status/streaming once (later calls no-op). */
void ds4s_chan_start(ds4s_chan *c, int status, int streaming);
int ds4s_chan_started(ds4s_chan *c);
/* 0, or -1 when the consumer is gone or stalled > stall_ms. */
int ds4s_chan_write(ds4s_chan *c, const char *data, size_t n);
int ds4s_chan_write_str(ds4s_chan *c, char *owned);   /* frees owned; NULL => -1 */
void ds4s_chan_close(ds4s_chan *c);
int ds4s_chan_dead(ds4s_chan *c);
void ds4s_chan_kill(ds4s_chan *c);

/* Consumer side. wait_status blocks until the status is known (or the client
 * hung up: returns 0). read copies up to max bytes, blocking until data, close
 * or death: returns bytes, 0 at a clean end, -1 when dead. wait_closed blocks
 * for the whole body (non-streaming). */
int ds4s_chan_wait_status(ds4s_chan *c);
long ds4s_chan_read(ds4s_chan *c, char *out, size_t max);
int ds4s_chan_wait_closed(ds4s_chan *c);

/* Whether the peer of fd has hung up (EOF / reset), without consuming data. */
int ds4s_fd_hung_up(int fd);

#endif
