/* sse.h - Server-Sent Events framing (spec/server.md §9.1).
 * "event: NAME\n" (optional) + "data: <compact JSON>\n\n"; comments ": x\n\n". */
#ifndef DS4_SERVER_SSE_H
#define DS4_SERVER_SSE_H

#include <jansson.h>

/* malloc'd frame; event may be NULL (no event: line). */
char *ds4s_sse_event(const char *event, const json_t *data);
char *ds4s_sse_raw(const char *event, const char *data);     /* data already text */
char *ds4s_sse_comment(const char *text);

#endif
