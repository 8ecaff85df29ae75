/* router.c - the endpoint table. Unknown method/path pairs answer 404
 * "unknown endpoint" in the path's family envelope. */
#include "server/router.h"

#include <string.h>

static const struct { const char *method, *path; ds4s_route r; } table[] = {
    {"GET", "/health", R_HEALTH},
    {"GET", "/v1/health", R_HEALTH},
    {"GET", "/metrics", R_METRICS},
    {"GET", "/props", R_PROPS},
    {"GET", "/v1/models", R_MODELS},
    {"POST", "/v1/chat/completions", R_CHAT},
    {"POST", "/v1/completions", R_COMPLETIONS},
    {"POST", "/v1/responses", R_RESPONSES},
    {"POST", "/v1/messages", R_MESSAGES},
    {"POST", "/v1/messages/count_tokens", R_COUNT_TOKENS},
    {"POST", "/tokenize", R_TOKENIZE},
    {"POST", "/detokenize", R_DETOKENIZE},
};

static size_t path_len(const char *p) {
    const char *q = strchr(p, '?');
    return q ? (size_t)(q - p) : strlen(p);
}

ds4s_route ds4s_route_match(const char *method, const char *path, const char **id_out) {
    if (id_out) *id_out = NULL;
    if (!method || !path) return R_NOT_FOUND;
    if (!strcmp(method, "OPTIONS")) return R_OPTIONS;
    size_t n = path_len(path);
    int known_path = 0;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strlen(table[i].path) != n || strncmp(table[i].path, path, n)) continue;
        if (!strcmp(table[i].method, method)) return table[i].r;
        known_path = 1;
    }
    static const char pre[] = "/v1/models/";
    if (n > sizeof pre - 1 && !strncmp(path, pre, sizeof pre - 1) && !memchr(path + sizeof pre - 1, '/', n - (sizeof pre - 1))) {
        if (!strcmp(method, "GET")) {
            if (id_out) *id_out = path + sizeof pre - 1;
            return R_MODEL_ONE;
        }
        known_path = 1;
    }
    return known_path ? R_METHOD_NOT_ALLOWED : R_NOT_FOUND;
}

ds4s_family ds4s_route_family(const char *path) {
    return path && !strncmp(path, "/v1/messages", 12) ? DS4S_FAM_ANTHROPIC : DS4S_FAM_OPENAI;
}

int ds4s_route_public(ds4s_route r) {
    return r == R_HEALTH || r == R_OPTIONS || r == R_MODELS || r == R_MODEL_ONE;
}

const char *ds4s_route_name(ds4s_route r) {
    switch (r) {
    case R_OPTIONS: return "options";
    case R_HEALTH: return "health";
    case R_METRICS: return "metrics";
    case R_PROPS: return "props";
    case R_MODELS: return "models";
    case R_MODEL_ONE: return "model";
    case R_CHAT: return "chat";
    case R_COMPLETIONS: return "completions";
    case R_RESPONSES: return "responses";
    case R_MESSAGES: return "messages";
    case R_COUNT_TOKENS: return "count_tokens";
    case R_TOKENIZE: return "tokenize";
    case R_DETOKENIZE: return "detokenize";
    default: return "unknown";
    }
}
