/* gen.h - one generation as the API adapters see it (spec/server.md §5, §6).
 *
 * gen.c runs the loop that every API shares: pick the reusable prefix of the
 * live session, prefill the rest, sample/eval token by token, project the
 * bytes into reasoning / text / tool-call events (text/stream_parse.h), stop
 * on EOS, limits, stop strings, a closed tool block or a gone client, then
 * parse the whole output once more (authoritative, text/dsml.h). Each API
 * family supplies three callbacks that turn this into its wire format: begin
 * (first stream events), event (one live projection event), end (terminal
 * events or the whole non-streaming body). */
#ifndef DS4_SERVER_GEN_H
#define DS4_SERVER_GEN_H

#include <jansson.h>

#include "server/server.h"

enum { DS4S_FIN_STOP = 0, DS4S_FIN_LENGTH, DS4S_FIN_TOOLS, DS4S_FIN_ERROR };

typedef struct ds4s_gen {
    ds4s_server *srv;
    ds4s_job *job;
    int stream;
    int thinking;              /* mode high/max (and not completions) */
    char id[96];               /* chatcmpl-N, cmpl-N, msg_..., resp_... */
    long created;
    int n_prompt, n_cached, n_gen;
    int n_reasoning;           /* generated tokens before </think> (thinking modes) */
    int finish;
    const char *error_msg;     /* why finish is error */
    char *stop_hit;            /* the stop string that matched (owned) */
    int write_failed;
    double last_emit;          /* monotonic time of the last write */
    /* live projection */
    int streamed_tools;        /* any TOOL_START was streamed */
    char **stream_ids;         /* ids assigned at TOOL_START, by tool_index */
    size_t n_stream_ids;
    int think_closed;          /* a </think> was generated */
    /* final parse (not for completions) */
    ds4_parse_result pr;
    int have_pr;
    char **call_ids;           /* final ids of pr.calls */
    /* whole generated text (after the stop cut) */
    const char *text;
    size_t text_len;
    /* logprobs: chat-format entries; stream_lp = not yet sent */
    json_t *logprobs;
    json_t *stream_lp;
    void *st;                  /* adapter state */
} ds4s_gen;

typedef struct ds4s_api_ops {
    void (*begin)(ds4s_gen *g);
    void (*event)(ds4s_gen *g, const ds4_stream_event *ev);
    void (*end)(ds4s_gen *g);
    /* Streams only: something an idle-timeout watchdog counts as an event,
     * sent during long prefills and silent phases (§9.1 REC). */
    void (*keepalive)(ds4s_gen *g);
} ds4s_api_ops;

extern const ds4s_api_ops ds4s_ops_chat, ds4s_ops_completions, ds4s_ops_responses, ds4s_ops_anthropic;

/* Write an owned SSE frame / body bytes to the client; remembers failure. */
void ds4s_gen_emit(ds4s_gen *g, char *owned);
void ds4s_gen_emit_json(ds4s_gen *g, const char *event, json_t *data);   /* decrefs data */
/* Non-streaming: whole body with status 200 (decrefs body). */
void ds4s_gen_body(ds4s_gen *g, json_t *body);

/* Tool-call id for call i of the final parse (stream id if one was shown). */
const char *ds4s_gen_call_id(ds4s_gen *g, size_t i);
const char *ds4s_finish_openai(int fin);     /* stop/length/tool_calls/error */

#endif
