/* server.h - the state one ds4-server process shares between its HTTP
 * connection threads and its single inference worker (spec/server.md §1.1).
 *
 * Connection threads parse, render and tokenize requests (in parallel), then
 * queue a job. Exactly one worker thread owns the model session and runs jobs
 * in FIFO order, writing each response into the job's channel. Shared mutable
 * state besides the session is the tool memory and the response store, each
 * with its own lock. */
#ifndef DS4_SERVER_SERVER_H
#define DS4_SERVER_SERVER_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#include "engine/engine.h"
#include "server/chan.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/request.h"
#include "server/respstore.h"
#include "server/router.h"
#include "server/test_script.h"
#include "server/toolmem.h"
#include "text/text.h"

typedef struct ds4s_job ds4s_job;

typedef struct ds4s_server {
    ds4s_config cfg;
    ds4_model *model;
    ds4_vocab *vocab;
    ds4_session *session;
    int n_vocab;
    int ready;                  /* model loaded: /health answers 200 */
    volatile int stopping;
    ds4s_metrics metrics;
    ds4s_toolmem *toolmem;      /* NULL with --disable-exact-dsml-tool-replay */
    ds4s_respstore *resp;
    ds4s_script *script;        /* --test-script */
    /* worker queue */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    ds4s_job *qhead, *qtail;
    int qlen;
    pthread_t worker;
    int worker_started;
    unsigned long next_id;      /* chatcmpl-N / cmpl-N counter */
    void *mhd;                  /* struct MHD_Daemon* */
    int http_gen_open;          /* generation requests not yet fully answered (atomic) */
    /* Visible-transcript binding (§12.3, worker only): after a thinking turn
     * the live KV holds reasoning that the client's replay leaves out (old
     * reasoning is not re-rendered, or hidden Responses reasoning is never
     * sent back). These are the texts such a replay starts with; when one is
     * a byte prefix of the next prompt and the session is still at frontier,
     * the next job continues from the live tokens. */
    struct {
        int frontier;           /* session length when set; -1 = none */
        char *text[2];
        size_t len[2];
    } visible;
} ds4s_server;

/* One generation request, built by a connection thread, run by the worker. */
struct ds4s_job {
    ds4s_server *srv;
    ds4s_route route;
    ds4_api api;
    ds4_request req;            /* text layer: messages, tools, think mode */
    ds4s_params params;         /* sampling, stop, limits */
    char *prompt;               /* rendered prompt bytes */
    size_t prompt_len;
    ds4_tokens toks;            /* encode_rendered(prompt) */
    json_t *resp_input;         /* Responses: the full input item list (for the store) */
    char *resp_instructions;    /* Responses: instructions text or NULL */
    json_t *custom_tools;       /* Responses: names of tools declared {"type":"custom"} */
    char *body;                 /* raw request body, kept only for --trace */
    size_t body_len;
    ds4s_chan *ch;
    ds4s_job *next;
};

void ds4s_job_free(ds4s_job *j);

/* Worker (worker.c). enqueue returns -1 when the queue is full or the server
 * is stopping (the caller answers 503). */
int ds4s_worker_start(ds4s_server *s);
int ds4s_worker_enqueue(ds4s_server *s, ds4s_job *j);
void ds4s_worker_stop(ds4s_server *s);

/* Runs one job on the worker thread (gen.c). */
void ds4s_generate(ds4s_server *s, ds4s_job *j);

/* HTTP (http.c). */
int ds4s_http_start(ds4s_server *s, ds4_err *err);
void ds4s_http_stop(ds4s_server *s);
/* Waits (at most max_s seconds) until every generation request has been
 * answered to its client: at shutdown, after the worker has written the
 * last replies, so stopping the daemon does not cut them off. */
void ds4s_http_drain(ds4s_server *s, double max_s);

/* Random lowercase hex of nbytes (2*nbytes chars) after prefix, into out. */
void ds4s_random_id(char *out, size_t cap, const char *prefix, int nbytes);

#endif
