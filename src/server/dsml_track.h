/* dsml_track.h - DSML structure tracker for greedy decoding of tool-call
 * syntax (spec/server.md §5.2); see dsml_track.c. */
#ifndef DS4_SERVER_DSML_TRACK_H
#define DS4_SERVER_DSML_TRACK_H

#include <stddef.h>

/* 1 when the next token continues DSML structure after the generated text
 * text[0..n), 0 when it is free text or a parameter payload. thinking: the
 * output starts inside <think> (nothing before the first </think> counts). */
int ds4s_dsml_structural(const char *text, size_t n, int thinking);

/* The same answer kept incrementally, so a long generation costs O(new
 * bytes) per token instead of rescanning the whole text: update after each
 * append of `added` bytes, then ask. */
typedef struct ds4s_dsml_tracker {
    size_t think_end;   /* offset after the last "</think>"; (size_t)-1 while thinking */
    size_t tag_at;      /* offset of the '<' of the last "...tool_calls>" tag after it, or -1 */
} ds4s_dsml_tracker;

void ds4s_dsml_tracker_init(ds4s_dsml_tracker *t, int thinking);
void ds4s_dsml_tracker_update(ds4s_dsml_tracker *t, const char *text, size_t n, size_t added);
int ds4s_dsml_tracker_structural(const ds4s_dsml_tracker *t, const char *text, size_t n);

#endif
