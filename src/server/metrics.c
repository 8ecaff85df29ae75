/* metrics.c - see metrics.h. Names follow llama-server's llamacpp:* style
 * under a ds4_ prefix so dashboards can be adapted by renaming. */
#include "server/metrics.h"

#include <stdio.h>
#include <stdlib.h>

void ds4s_metrics_count_request(ds4s_metrics *m, ds4s_route r) {
    if ((int)r >= 0 && (int)r < DS4S_N_ROUTES) __atomic_add_fetch(&m->requests[r], 1, __ATOMIC_RELAXED);
}

void ds4s_metrics_add(unsigned long long *counter, unsigned long long v) {
    __atomic_add_fetch(counter, v, __ATOMIC_RELAXED);
}

#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

char *ds4s_metrics_text(const ds4s_metrics *m) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fprintf(f, "# HELP ds4_requests_total HTTP requests by endpoint.\n# TYPE ds4_requests_total counter\n");
    for (int r = 0; r < DS4S_N_ROUTES; r++) {
        const char *n = ds4s_route_name((ds4s_route)r);
        if (r && !LD(m->requests[r]) && !__builtin_strcmp(n, "unknown")) continue;
        fprintf(f, "ds4_requests_total{endpoint=\"%s\"} %llu\n", n, LD(m->requests[r]));
    }
    struct { const char *name, *help, *type; unsigned long long v; } c[] = {
        {"ds4_errors_total", "Requests answered with an error status.", "counter", LD(m->errors)},
        {"ds4_prompt_tokens_total", "Prompt tokens of generation requests (cached + prefilled).", "counter", LD(m->prompt_tokens)},
        {"ds4_cached_tokens_total", "Prompt tokens reused from the live KV session.", "counter", LD(m->cached_tokens)},
        {"ds4_prefilled_tokens_total", "Prompt tokens evaluated by prefill.", "counter", LD(m->prefilled_tokens)},
        {"ds4_generated_tokens_total", "Generated tokens.", "counter", LD(m->generated_tokens)},
        {"ds4_disconnects_total", "Generations stopped because the client went away.", "counter", LD(m->disconnects)},
        {"ds4_jobs_total", "Generation jobs run by the worker.", "counter", LD(m->jobs_done)},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", c[i].name, c[i].help, c[i].name, c[i].type, c[i].name, c[i].v);
    fprintf(f, "# HELP ds4_prefill_seconds_total Time spent in prefill.\n# TYPE ds4_prefill_seconds_total counter\n"
               "ds4_prefill_seconds_total %.6f\n", LD(m->prefill_us) / 1e6);
    fprintf(f, "# HELP ds4_decode_seconds_total Time spent decoding.\n# TYPE ds4_decode_seconds_total counter\n"
               "ds4_decode_seconds_total %.6f\n", LD(m->decode_us) / 1e6);
    double pu = LD(m->prefill_us) / 1e6, du = LD(m->decode_us) / 1e6;
    fprintf(f, "# HELP ds4_prefill_tokens_per_second Average prefill throughput.\n# TYPE ds4_prefill_tokens_per_second gauge\n"
               "ds4_prefill_tokens_per_second %.3f\n", pu > 0 ? LD(m->prefilled_tokens) / pu : 0.0);
    fprintf(f, "# HELP ds4_decode_tokens_per_second Average decode throughput.\n# TYPE ds4_decode_tokens_per_second gauge\n"
               "ds4_decode_tokens_per_second %.3f\n", du > 0 ? LD(m->generated_tokens) / du : 0.0);
    fprintf(f, "# HELP ds4_queue_depth Generation jobs waiting for the worker.\n# TYPE ds4_queue_depth gauge\n"
               "ds4_queue_depth %d\n", LD(m->queue_depth));
    fprintf(f, "# HELP ds4_requests_processing Jobs the worker is running (0 or 1).\n# TYPE ds4_requests_processing gauge\n"
               "ds4_requests_processing %d\n", LD(m->busy));
    fprintf(f, "# HELP ds4_session_tokens Tokens held by the live KV session.\n# TYPE ds4_session_tokens gauge\n"
               "ds4_session_tokens %d\n", LD(m->session_tokens));
    fclose(f);
    return buf;
}
