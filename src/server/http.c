/* http.c - the HTTP layer on libmicrohttpd (spec/server.md §1.2-§1.4, §7.7).
 *
 * Thread per connection: a connection thread reads the request, answers the
 * cheap endpoints itself, and for generation requests queues a job and then
 * blocks on the job's channel (chan.h), so the worker never blocks on a
 * socket. Streaming replies use MHD_create_response_from_callback: the
 * callback drains the channel as the worker fills it. libmicrohttpd handles
 * keep-alive, chunked request bodies and Expect: 100-continue (§18.17).
 *
 * Limits: body size (--max-body-mb, 413), header block (connection memory
 * limit, MHD answers 431), JSON nesting (submit.c), concurrent connections
 * (--max-connections; extra connections are refused at accept), idle time
 * (--request-timeout). */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/api.h"
#include "server/auth.h"
#include "server/errors.h"
#include "server/jsonu.h"
#include "server/kvcache.h"

typedef struct conn_ctx {
    char *body;
    size_t len, cap;
    int too_big;
    int gen;    /* counted in s->http_gen_open until on_completed */
} conn_ctx;

static void add_common_headers(ds4s_server *s, struct MHD_Response *resp) {
    if (s->cfg.cors) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers", "*");
    }
}

static enum MHD_Result send_reply(ds4s_server *s, struct MHD_Connection *c, ds4s_reply *r) {
    struct MHD_Response *resp =
        r->body ? MHD_create_response_from_buffer(strlen(r->body), r->body, MHD_RESPMEM_MUST_FREE)
                : MHD_create_response_from_buffer(0, (char *)"", MHD_RESPMEM_PERSISTENT);
    r->body = NULL;
    if (!resp) return MHD_NO;
    if (r->status != 204) MHD_add_response_header(resp, "Content-Type", r->ctype ? r->ctype : "application/json");
    add_common_headers(s, resp);
    if (r->status >= 400) ds4s_metrics_add(&s->metrics.errors, 1);
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    long n = ds4s_chan_read(cls, buf, max);
    if (n > 0) return n;
    return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

/* MHD is done with the stream (finished or the client went away). */
static void sse_free(void *cls) {
    ds4s_chan_kill(cls);
    ds4s_chan_unref(cls);
}

static int client_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

static enum MHD_Result generate(ds4s_server *s, struct MHD_Connection *c, ds4s_route route, conn_ctx *cc) {
    if (!cc->gen) {
        cc->gen = 1;
        __atomic_add_fetch(&s->http_gen_open, 1, __ATOMIC_ACQ_REL);
    }
    ds4s_chan *ch = ds4s_chan_new(client_fd(c));
    if (!ch) return MHD_NO;
    ds4s_reply r;
    ds4s_api_generate(s, route, cc->body ? cc->body : "", cc->len, ch, &r);
    if (!r.queued) {
        ds4s_chan_unref(ch);
        return send_reply(s, c, &r);
    }
    int status = ds4s_chan_wait_status(ch);
    if (!status || status == 499) {     /* client gone before anything was decided */
        ds4s_chan_kill(ch);
        ds4s_chan_unref(ch);
        return MHD_NO;
    }
    if (ch->streaming) {
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, sse_reader, ch, sse_free);
        if (!resp) { ds4s_chan_kill(ch); ds4s_chan_unref(ch); return MHD_NO; }
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
        add_common_headers(s, resp);
        enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, resp);
        MHD_destroy_response(resp);   /* sse_free runs when MHD drops it */
        return rc;
    }
    if (!ds4s_chan_wait_closed(ch)) {   /* client left during a non-streaming generation */
        ds4s_chan_kill(ch);
        ds4s_chan_unref(ch);
        return MHD_NO;
    }
    ds4s_reply out = {.status = ch->status};
    pthread_mutex_lock(&ch->mu);
    out.body = malloc(ch->len - ch->off + 1);
    if (out.body) {
        memcpy(out.body, ch->buf + ch->off, ch->len - ch->off);
        out.body[ch->len - ch->off] = 0;
    }
    pthread_mutex_unlock(&ch->mu);
    ds4s_chan_unref(ch);
    return send_reply(s, c, &out);
}

static enum MHD_Result dispatch(ds4s_server *s, struct MHD_Connection *c, const char *url, const char *method, conn_ctx *cc) {
    const char *id = NULL;
    ds4s_route route = ds4s_route_match(method, url, &id);
    ds4s_family fam = ds4s_route_family(url);
    ds4s_metrics_count_request(&s->metrics, route);
    ds4s_reply r = {0};
    if (route == R_OPTIONS) {
        r.status = 204;
        return send_reply(s, c, &r);
    }
    if (cc->too_big) {
        char msg[128];
        snprintf(msg, sizeof msg, "request body larger than the %zu MiB limit", s->cfg.max_body_bytes >> 20);
        ds4s_reply_error(&r, fam, 413, msg);
        return send_reply(s, c, &r);
    }
    if (!ds4s_route_public(route) &&
        !ds4s_auth_ok(s->cfg.api_key, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
                      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key"))) {
        ds4s_reply_error(&r, fam, 401, "invalid or missing API key (send Authorization: Bearer KEY or x-api-key: KEY)");
        return send_reply(s, c, &r);
    }
    const char *body = cc->body ? cc->body : "";
    switch (route) {
    case R_HEALTH: ds4s_api_health(s, &r); break;
    case R_METRICS:
        r.status = 200;
        r.body = ds4s_kvcache_metrics_append(ds4s_metrics_text(&s->metrics));
        r.ctype = "text/plain; version=0.0.4";
        break;
    case R_PROPS: ds4s_api_props(s, &r); break;
    case R_MODELS: ds4s_api_models(s, &r); break;
    case R_MODEL_ONE: ds4s_api_model_one(s, id, &r); break;
    case R_TOKENIZE:
    case R_DETOKENIZE:
    case R_COUNT_TOKENS:
        if (!s->ready) { ds4s_reply_error(&r, fam, 503, "Loading model"); break; }
        if (route == R_TOKENIZE) ds4s_api_tokenize(s, body, cc->len, &r);
        else if (route == R_DETOKENIZE) ds4s_api_detokenize(s, body, cc->len, &r);
        else ds4s_api_count_tokens(s, body, cc->len, &r);
        break;
    case R_CHAT:
    case R_COMPLETIONS:
    case R_RESPONSES:
    case R_MESSAGES:
        return generate(s, c, route, cc);
    default:
        ds4s_reply_error(&r, fam, 404, "unknown endpoint");
        break;
    }
    return send_reply(s, c, &r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    ds4s_server *s = cls;
    (void)version;
    conn_ctx *cc = *con_cls;
    if (!cc) {
        cc = calloc(1, sizeof *cc);
        if (!cc) return MHD_NO;
        *con_cls = cc;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->cfg.max_body_bytes) {
            /* Answer before reading the body; MHD then closes the connection. */
            cc->too_big = 1;
            return dispatch(s, c, url, method, cc);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!cc->too_big) {
            if (cc->len + *upload_size > s->cfg.max_body_bytes) {
                cc->too_big = 1;
                free(cc->body);
                cc->body = NULL;
                cc->len = cc->cap = 0;
            } else {
                if (cc->len + *upload_size + 1 > cc->cap) {
                    size_t cap = cc->cap ? cc->cap : 4096;
                    while (cap < cc->len + *upload_size + 1) cap *= 2;
                    char *b = realloc(cc->body, cap);
                    if (!b) return MHD_NO;
                    cc->body = b;
                    cc->cap = cap;
                }
                memcpy(cc->body + cc->len, upload, *upload_size);
                cc->len += *upload_size;
                cc->body[cc->len] = 0;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    return dispatch(s, c, url, method, cc);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    ds4s_server *s = cls;
    (void)c;
    (void)toe;
    conn_ctx *cc = *con_cls;
    if (cc) {
        if (cc->gen) __atomic_sub_fetch(&s->http_gen_open, 1, __ATOMIC_ACQ_REL);
        free(cc->body);
        free(cc);
        *con_cls = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    fprintf(stderr, "ds4-server: http: ");
    vfprintf(stderr, fmt, ap);
}

int ds4s_http_start(ds4s_server *s, ds4_err *err) {
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    char port[16];
    snprintf(port, sizeof port, "%d", s->cfg.port);
    int gai = getaddrinfo(s->cfg.host, port, &hints, &ai);
    if (gai || !ai) return ds4_errf(err, "ds4-server: --host %s: cannot resolve (%s)", s->cfg.host, gai_strerror(gai));
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)s->cfg.port, NULL, NULL, on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->cfg.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->cfg.request_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!d) return ds4_errf(err, "ds4-server: cannot listen on %s:%d (port in use or address not available)", s->cfg.host, s->cfg.port);
    s->mhd = d;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (di && di->port) s->cfg.port = di->port;
    return 0;
}

void ds4s_http_drain(ds4s_server *s, double max_s) {
    for (int i = 0; i < (int)(max_s * 100) && __atomic_load_n(&s->http_gen_open, __ATOMIC_ACQUIRE) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void ds4s_http_stop(ds4s_server *s) {
    if (s->mhd) MHD_stop_daemon(s->mhd);
    s->mhd = NULL;
}
