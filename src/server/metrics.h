/* metrics.h - server counters exported as Prometheus text on GET /metrics
 * (spec/server.md §16 REC): requests per endpoint, prompt / cached / generated
 * tokens, prefill and decode throughput, queue depth. Counters are updated
 * with atomics from any thread. */
#ifndef DS4_SERVER_METRICS_H
#define DS4_SERVER_METRICS_H

#include "server/router.h"

#define DS4S_N_ROUTES 16

typedef struct ds4s_metrics {
    unsigned long long requests[DS4S_N_ROUTES];
    unsigned long long errors;            /* 4xx/5xx answers */
    unsigned long long prompt_tokens;     /* P summed */
    unsigned long long cached_tokens;     /* R summed */
    unsigned long long prefilled_tokens;  /* W summed */
    unsigned long long generated_tokens;  /* C summed */
    unsigned long long prefill_us;        /* time spent prefilling */
    unsigned long long decode_us;         /* time spent decoding */
    unsigned long long disconnects;       /* generations stopped by a gone client */
    unsigned long long jobs_done;
    int queue_depth;                      /* jobs waiting */
    int busy;                             /* worker running a job */
    int session_tokens;                   /* live session length */
    double last_prefill_tps, last_decode_tps;
} ds4s_metrics;

void ds4s_metrics_count_request(ds4s_metrics *m, ds4s_route r);
void ds4s_metrics_add(unsigned long long *counter, unsigned long long v);
/* Prometheus exposition text, malloc'd. */
char *ds4s_metrics_text(const ds4s_metrics *m);

#endif
