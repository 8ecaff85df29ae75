/* sse.c - builds SSE frames. One frame per call so the writer can send each
 * event atomically; data never contains a raw newline because it is compact
 * JSON (newlines inside strings are escaped). */
#include "server/sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/jsonu.h"

char *ds4s_sse_raw(const char *event, const char *data) {
    size_t n = strlen(data) + (event ? strlen(event) : 0) + 24;
    char *r = malloc(n);
    if (!r) return NULL;
    if (event) snprintf(r, n, "event: %s\ndata: %s\n\n", event, data);
    else snprintf(r, n, "data: %s\n\n", data);
    return r;
}

char *ds4s_sse_event(const char *event, const json_t *data) {
    char *d = ds4s_jdump(data, 0);
    if (!d) return NULL;
    char *r = ds4s_sse_raw(event, d);
    free(d);
    return r;
}

char *ds4s_sse_comment(const char *text) {
    size_t n = strlen(text) + 8;
    char *r = malloc(n);
    if (r) snprintf(r, n, ": %s\n\n", text);
    return r;
}
