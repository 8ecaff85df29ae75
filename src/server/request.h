/* request.h - the generation knobs common to every API family
 * (spec/server.md §3.4-§3.6, §16): sampling, stop strings, output limit,
 * streaming, logprobs, response_format.
 *
 * The text layer (text/chat.h) parses what the prompt needs (messages, tools,
 * thinking mode); this file parses the rest of the same body. Wrong JSON
 * types are 400s, never silently ignored; features the server cannot honour
 * (constrained decoding, n > 1) are refused with a message that says so. */
#ifndef DS4_SERVER_REQUEST_H
#define DS4_SERVER_REQUEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ds4_err.h"
#include "text/chat.h"

#define DS4S_MAX_STOP 16
#define DS4S_MAX_TOP_LOGPROBS 20

typedef struct ds4s_params {
    int stream;
    int include_usage;       /* stream_options.include_usage */
    int max_tokens;          /* -1: server default (--tokens) */
    double temperature;      /* 1.0 */
    double top_p;            /* 1.0 */
    double min_p;            /* 0.05 */
    int top_k;               /* 0 = off */
    uint64_t seed;           /* 0 = random */
    char *stop[DS4S_MAX_STOP];
    size_t n_stop;
    int logprobs;            /* return per-token logprobs */
    int top_logprobs;        /* alternatives per token, 0..20 */
    int summary;             /* Responses reasoning.summary opt-in */
    char *previous_response_id;  /* Responses; NULL if absent/null */
    int steer_set;           /* body "ds4": {"steering": {"ffn": F, "attn": F}} given */
    double steer_ffn, steer_attn; /* NAN = the server's scale for that hook */
} ds4s_params;

/* Fills p from body (a JSON object). Returns -1 with err = the 400 message. */
int ds4s_params_parse(ds4_api api, const json_t *body, ds4s_params *p, ds4_err *err);
void ds4s_params_free(ds4s_params *p);

/* The sampler settings actually used for a request: thinking modes ignore the
 * client knobs (§3.4) and use T=1, top_p=1, top_k=0, min_p=0.05. */
typedef struct ds4s_sampling {
    float temperature, top_p, min_p;
    int top_k;
    uint64_t seed;
} ds4s_sampling;
void ds4s_params_sampling(const ds4s_params *p, int thinking, ds4s_sampling *out);

/* Shape checks the text layer leaves to the server: required field present
 * ("missing messages|input|prompt"), no empty message list. */
int ds4s_body_check(ds4_api api, const json_t *root, ds4_err *err);
/* Unknown roles are a 400 (§18.22), not silently dropped. */
int ds4s_check_roles(const ds4_request *req, ds4_api api, ds4_err *err);
/* Tool-output validation (§12.4): on Responses and Anthropic every tool
 * result must answer a call made earlier in the same request or one this
 * server produced (known(ctx, id) != 0); otherwise the 400 of §8.3 asks the
 * client to replay the full history. Chat and completions are not checked. */
int ds4s_check_tool_results(const ds4_request *req, int (*known)(void *ctx, const char *id), void *ctx, ds4_err *err);

/* --think: the server default applies only when the body has no thinking
 * control and no model alias (§3.3); Think Max still needs ctx >= 393216. */
void ds4s_apply_think_default(ds4_request *req, const json_t *root, int think_default, int ctx);

/* Output-token budget: the request's limit or def, clamped to ctx - prompt. */
int ds4s_params_budget(const ds4s_params *p, int def, int ctx, int n_prompt);

#endif
