/* dsml.h - DSML tool calls: rendering calls into history (spec/text.md §3.3)
 * and parsing generated text into reasoning, content and calls (§3.5,
 * server.md §6).
 *
 * Replay bytes. The reference remembers `raw_dsml` (the block from its start
 * tag, or from the "\n\n" before it) and replays it after the right-trimmed
 * content, so a model that wrote a single "\n" (or "\n\n\n") before the block
 * replays with different bytes than it sampled (§3.7.2 [ref-quirk]). We keep
 * raw_dsml for compatibility and also return `replay_dsml`: the whitespace the
 * trim removed + the block, so that content + replay_dsml is exactly what the
 * model generated after its reasoning. Servers should remember replay_dsml.
 * `canonical_dsml` is what ds4_dsml_render_calls produces from the arguments
 * the client receives (the §3.7.3 fix: canonicalize to what the next stateless
 * request will render). */
#ifndef DS4_TEXT_DSML_H
#define DS4_TEXT_DSML_H

#include <stdbool.h>
#include <stddef.h>

#include "text/chat.h"
#include "text/sbuf.h"

/* Canonical DSML block for calls (leading "\n\n", no trailing newline).
 * Appends nothing when n == 0. */
void ds4_dsml_render_calls(const ds4_tool_call *calls, size_t n, ds4_sbuf *out);

typedef struct ds4_parsed_call {
    char *name;
    char *arguments;   /* compact JSON object text for the client ("{}" on the ref quirk) */
    size_t arguments_len;
} ds4_parsed_call;

typedef struct ds4_parse_result {
    bool ok;           /* false: malformed DSML; content = whole text, no calls */
    char *content;     /* never NULL */
    size_t content_len;
    char *reasoning;   /* NULL = none */
    size_t reasoning_len;
    ds4_parsed_call *calls;
    size_t n_calls;
    bool block_started; /* a start tag was found (even if the parse failed) */
    char *raw_dsml;    /* NULL when no block; reference bytes (§3.5.3) */
    size_t raw_dsml_len;
    char *replay_dsml; /* NULL when no block; trimmed whitespace + block */
    size_t replay_dsml_len;
    char *canonical_dsml; /* "" when no calls */
    size_t canonical_dsml_len;
} ds4_parse_result;

/* Parse generated text (the bytes after the prompt). thinking = the request's
 * mode was high/max. Never fails on any input; only allocation can abort. */
void ds4_dsml_parse(const char *text, size_t n, bool thinking, ds4_parse_result *out);
void ds4_parse_result_free(ds4_parse_result *r);

/* Client-facing re-serialization of a JSON object text (§3.5): compact,
 * strings re-escaped (\" \\ \n \r \t, \u00XX below 0x20, the rest literal).
 * Returns -1 (out untouched) if text is not valid JSON. */
int ds4_json_compact(const char *text, size_t n, ds4_sbuf *out);

#endif
