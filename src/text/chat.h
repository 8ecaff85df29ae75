/* chat.h - the normalized conversation model, the four API request parsers that
 * fill it, and the chat-template renderer (spec/text.md §2, server.md §3.3, §4).
 *
 * Pipeline: request body text --ds4_request_parse--> ds4_request (messages,
 * tool-schema text, resolved think mode) --ds4_render--> prompt bytes, which
 * the caller tokenizes with ds4_encode_rendered. The parser reads the body
 * text itself (not a re-serialization) because tool schemas and non-string
 * tool-call arguments are copied into the prompt byte for byte.
 *
 * Only what the prompt needs is parsed here; sampling knobs, stop strings,
 * max_tokens and the like belong to the server's API adapters. */
#ifndef DS4_TEXT_CHAT_H
#define DS4_TEXT_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ds4_err.h"
#include "text/sbuf.h"

typedef enum ds4_api {
    DS4_API_OPENAI_CHAT = 0,     /* POST /v1/chat/completions */
    DS4_API_ANTHROPIC_MESSAGES,  /* POST /v1/messages */
    DS4_API_OPENAI_RESPONSES,    /* POST /v1/responses */
    DS4_API_OPENAI_COMPLETIONS,  /* POST /v1/completions */
    DS4_API_COUNT
} ds4_api;

typedef enum ds4_think_mode { DS4_THINK_NONE = 0, DS4_THINK_HIGH, DS4_THINK_MAX } ds4_think_mode;

/* Context size below which a "max" request is served as "high" (§2.2). */
#define DS4_THINK_MAX_MIN_CTX 393216u

/* Names used by the goldens and the CLI: "openai_chat"/"chat",
 * "anthropic_messages"/"anthropic", "openai_responses"/"responses",
 * "openai_completions"/"completions". Returns -1 if unknown. */
int ds4_api_from_name(const char *name);
const char *ds4_think_mode_name(ds4_think_mode m); /* "none" "high" "max" */

/* All strings below are owned by the request, NUL-terminated, and may contain
 * NUL only where a length says so (the JSON decoder rejects \u0000). */
typedef struct ds4_tool_call {
    char *id;          /* client id (call_..., toolu_...), NULL if none */
    char *name;
    char *arguments;   /* JSON object text as the client sent it, or raw text */
    size_t arguments_len;
    char *name_space;  /* Responses namespace, NULL if none (name is unprefixed) */
} ds4_tool_call;

typedef struct ds4_message {
    char *role;        /* "system" "developer" "user" "assistant" "tool" "function" or other */
    char *content;     /* never NULL ("" for null content) */
    size_t content_len;
    char *reasoning;   /* NULL = none */
    size_t reasoning_len;
    ds4_tool_call *calls;
    size_t n_calls;
    char **result_ids; /* tool_call_id / tool_use_id / call_id of the results it carries */
    size_t n_result_ids;
} ds4_message;

/* A declared tool as the client names it, for mapping model output back
 * (Responses namespaces and the hosted tool_search, server.md §11.3). */
typedef struct ds4_tool_decl {
    char *prompt_name; /* the name the model sees (namespace + name) */
    char *name;        /* client-facing name */
    char *name_space;  /* NULL if none */
    bool hosted_tool_search;
} ds4_tool_decl;

typedef struct ds4_request {
    ds4_api api;
    ds4_message *msgs;
    size_t n_msgs;
    /* Tool schemas, one per line (spec §3.1 "T"); empty when there are no
     * tools or tool_choice disabled them. tools_active == (tools_len > 0). */
    char *tools;
    size_t tools_len;
    bool tools_active;
    ds4_tool_decl *decls;
    size_t n_decls;
    /* Thinking (§2.2): think_requested is what the body asked for; think is
     * the mode actually used after the context gate. */
    ds4_think_mode think_requested;
    ds4_think_mode think;
    char *model;       /* "deepseek-v4-flash" if absent */
    /* openai_completions only: the prompt text. */
    char *prompt;
    size_t prompt_len;
} ds4_request;

/* Parse a request body of the given API. ctx_size gates Think Max. On error
 * returns -1; err holds a one-line reason that the server answers with HTTP
 * 400 ("invalid JSON request" family). */
int ds4_request_parse(ds4_api api, const char *body, size_t len, uint32_t ctx_size,
                      ds4_request *out, ds4_err *err);
void ds4_request_free(ds4_request *r);

/* Exact replay lookup (spec §3.7.1): returns the remembered DSML bytes of a
 * tool-call id (and their length) or NULL. The pointer must stay valid until
 * ds4_render returns. NULL callback = replay disabled (canonical only). */
typedef const char *(*ds4_replay_lookup_fn)(void *ctx, const char *call_id, size_t *len);

typedef struct ds4_render_opts {
    ds4_replay_lookup_fn replay;
    void *replay_ctx;
} ds4_render_opts;

/* Render the prompt (spec §2.3, or the completions wrapper §2.5) and append
 * it to out. opts may be NULL. */
int ds4_render(const ds4_request *r, const ds4_render_opts *opts, ds4_sbuf *out, ds4_err *err);

/* Body -> prompt in one call; *mode (may be NULL) receives the resolved mode. */
int ds4_render_body(ds4_api api, const char *body, size_t len, uint32_t ctx_size,
                    const ds4_render_opts *opts, ds4_sbuf *out, ds4_think_mode *mode, ds4_err *err);

/* The fixed texts, exposed for tests and for the server's continuation keys. */
extern const char DS4_MAX_PREFIX[];      /* Think-Max preamble (§2.2) */
extern const char DS4_TOOLS_HEAD[];      /* TOOLS_BLOCK head (§3.1) */
extern const char DS4_TOOLS_TAIL[];
extern const char DS4_COMPLETIONS_SYSTEM[]; /* "You are a helpful assistant" */

/* escape_tool_result (§2.3): appends s with every "</tool_result>" written as
 * "&lt;/tool_result>". */
void ds4_escape_tool_result(ds4_sbuf *out, const char *s, size_t n);

#endif
