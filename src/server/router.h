/* router.h - maps METHOD + path to an endpoint (spec/server.md §7).
 * Exact, case-sensitive paths; the query string is ignored
 * (/v1/messages?beta=true routes like /v1/messages). */
#ifndef DS4_SERVER_ROUTER_H
#define DS4_SERVER_ROUTER_H

#include "server/errors.h"

typedef enum ds4s_route {
    R_NOT_FOUND = 0,
    R_OPTIONS,
    R_HEALTH,
    R_METRICS,
    R_PROPS,
    R_MODELS,
    R_MODEL_ONE,        /* GET /v1/models/{id} */
    R_CHAT,
    R_COMPLETIONS,
    R_RESPONSES,
    R_MESSAGES,
    R_COUNT_TOKENS,
    R_TOKENIZE,
    R_DETOKENIZE,
    R_METHOD_NOT_ALLOWED,   /* known path, wrong method (answered 404 like REF) */
} ds4s_route;

/* *id_out (may be NULL) points into path for R_MODEL_ONE. */
ds4s_route ds4s_route_match(const char *method, const char *path, const char **id_out);
/* Error envelope family of a path: Anthropic for /v1/messages*, else OpenAI. */
ds4s_family ds4s_route_family(const char *path);
/* Whether the route is open without --api-key (health, model list, OPTIONS). */
int ds4s_route_public(ds4s_route r);
const char *ds4s_route_name(ds4s_route r);

#endif
