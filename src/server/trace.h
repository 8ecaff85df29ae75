/* trace.h - the human-readable per-request trace of --trace FILE
 * (spec/server.md §15): a numbered header (API, model, stream, tools, think
 * mode, prompt / effective / cached tokens, sampling), the raw request JSON,
 * the rendered prompt, the generated text and the finish. Written by the
 * worker at the end of each job, unbuffered, so a crash leaves complete
 * records up to the last finished request. */
#ifndef DS4_SERVER_TRACE_H
#define DS4_SERVER_TRACE_H

#include "server/gen.h"

int ds4s_trace_open(const char *path, ds4_err *err);
void ds4s_trace_close(void);
int ds4s_trace_on(void);
void ds4s_trace_job(const ds4s_gen *g, const ds4s_sampling *smp);

#endif
