/* trace.c - see trace.h. */
#include "server/trace.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static FILE *tf;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long seq;

int ds4s_trace_open(const char *path, ds4_err *err) {
    tf = fopen(path, "w");
    if (!tf) return ds4_errf(err, "--trace %s: %s", path, strerror(errno));
    setvbuf(tf, NULL, _IONBF, 0);
    return 0;
}

void ds4s_trace_close(void) {
    if (tf) fclose(tf);
    tf = NULL;
}

int ds4s_trace_on(void) { return tf != NULL; }

static const char *api_name(ds4_api a) {
    static const char *n[] = {"chat", "anthropic", "responses", "completions"};
    return (unsigned)a < 4 ? n[a] : "?";
}

void ds4s_trace_job(const ds4s_gen *g, const ds4s_sampling *smp) {
    if (!tf) return;
    const ds4s_job *j = g->job;
    static const char *fin[] = {"stop", "length", "tool_calls", "error"};
    pthread_mutex_lock(&mu);
    time_t t = time(NULL);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", localtime(&t));
    fprintf(tf, "==== #%lu %s %s model=%s stream=%d tools=%d think=%s prompt=%zu effective=%d cached=%d prefilled=%d\n",
            ++seq, ts, api_name(j->api), j->req.model ? j->req.model : "", j->params.stream, j->req.tools_active,
            ds4_think_mode_name(j->req.think), j->toks.n, g->n_prompt, g->n_cached, g->n_prompt - g->n_cached);
    if (smp)
        fprintf(tf, "sampling: temperature=%g top_p=%g top_k=%d min_p=%g seed=%llu%s\n", smp->temperature, smp->top_p,
                smp->top_k, smp->min_p, (unsigned long long)smp->seed, g->thinking ? " (thinking: fixed defaults)" : "");
    if (j->body) fprintf(tf, "---- request\n%.*s\n", (int)j->body_len, j->body);
    fprintf(tf, "---- rendered prompt\n%.*s\n", (int)j->prompt_len, j->prompt);
    fprintf(tf, "---- generated\n%.*s\n", (int)g->text_len, g->text ? g->text : "");
    fprintf(tf, "---- finish=%s gen=%d%s%s%s%s calls=%zu\n\n", fin[g->finish & 3], g->n_gen, g->stop_hit ? " stop=" : "",
            g->stop_hit ? g->stop_hit : "", g->error_msg ? " error=" : "", g->error_msg ? g->error_msg : "",
            g->have_pr ? g->pr.n_calls : 0);
    pthread_mutex_unlock(&mu);
}
