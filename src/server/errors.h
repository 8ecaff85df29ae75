/* errors.h - error bodies in each API family's envelope (spec/server.md §8).
 *
 * OpenAI routes answer {"error":{"message","type"[,...]}}; Anthropic routes
 * answer {"type":"error","error":{"type","message"[,...]}}. The type names
 * follow the status (400 invalid_request_error, 401 authentication_error,
 * 404 not_found_error, 413 request_too_large, 5xx server_error / api_error /
 * overloaded_error). Bodies are returned as malloc'd JSON text + "\n". */
#ifndef DS4_SERVER_ERRORS_H
#define DS4_SERVER_ERRORS_H

typedef enum ds4s_family { DS4S_FAM_OPENAI = 0, DS4S_FAM_ANTHROPIC = 1 } ds4s_family;

/* Generic error body for `status`. */
char *ds4s_error_body(ds4s_family fam, int status, const char *message);
/* Context-length 400 (§8.2); param is "messages", "prompt" or "input". */
char *ds4s_error_ctx_body(ds4s_family fam, const char *param, int n_prompt, int n_ctx);
/* SSE error event once a stream has started (§8.4), "event: error\ndata: ...\n\n". */
char *ds4s_error_sse(ds4s_family fam, const char *message);
/* The type string used for a status in a family. */
const char *ds4s_error_type(ds4s_family fam, int status);

#endif
