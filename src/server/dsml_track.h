/* dsml_track.h - DSML structure tracker for greedy decoding of tool-call
 * syntax (spec/server.md §5.2); see dsml_track.c. */
#ifndef DS4_SERVER_DSML_TRACK_H
#define DS4_SERVER_DSML_TRACK_H

#include <stddef.h>

/* 1 when the next token continues DSML structure after the generated text
 * text[0..n), 0 when it is free text or a parameter payload. thinking: the
 * output starts inside <think> (nothing before the first </think> counts). */
int ds4s_dsml_structural(const char *text, size_t n, int thinking);

#endif
