/* api.h - request handlers that answer on the connection thread (no worker):
 * models, health, props, tokenize, detokenize, count_tokens, and the intake
 * of generation requests (parse, render, tokenize, context check, queue).
 * Each fills a ds4s_reply; http.c turns it into a libmicrohttpd response. */
#ifndef DS4_SERVER_API_H
#define DS4_SERVER_API_H

#include "server/server.h"

typedef struct ds4s_reply {
    int status;
    char *body;              /* malloc'd; NULL for 204 */
    const char *ctype;       /* NULL = application/json */
    int queued;              /* generation: the job is queued; the reply comes on its channel */
} ds4s_reply;

#define DS4S_MODEL_ID "deepseek-v4-flash"

void ds4s_reply_error(ds4s_reply *r, ds4s_family fam, int status, const char *msg);

/* api_models.c */
void ds4s_api_models(const ds4s_server *s, ds4s_reply *r);
void ds4s_api_model_one(const ds4s_server *s, const char *id, ds4s_reply *r);
/* api_misc.c */
void ds4s_api_health(const ds4s_server *s, ds4s_reply *r);
void ds4s_api_props(const ds4s_server *s, ds4s_reply *r);
void ds4s_api_tokenize(ds4s_server *s, const char *body, size_t len, ds4s_reply *r);
void ds4s_api_detokenize(ds4s_server *s, const char *body, size_t len, ds4s_reply *r);
void ds4s_api_count_tokens(ds4s_server *s, const char *body, size_t len, ds4s_reply *r);
/* submit.c: on success r->queued is 1 (the job holds its own reference to
 * ch and answers through it); otherwise r is an error reply. */
void ds4s_api_generate(ds4s_server *s, ds4s_route route, const char *body, size_t len, ds4s_chan *ch, ds4s_reply *r);

#endif
