/* api_models.c - GET /v1/models and /v1/models/{id} (spec/server.md §7.1).
 * The list also carries "models":[] so Codex's catalog decoder is satisfied
 * without adopting a catalog (§7.1 REC, §18.8). */
#include <string.h>

#include "server/api.h"
#include "server/jsonu.h"

static json_t *model_obj(const ds4s_server *s, const char *id) {
    int ctx = s->cfg.ctx;
    int maxc = s->cfg.tokens < ctx ? s->cfg.tokens : ctx;
    return json_pack("{s:s,s:s,s:i,s:s,s:s,s:i,s:{s:i,s:i,s:b},s:[s,s,s,s,s,s,s,s,s,s,s]}", "id", id, "object", "model",
                     "created", 1767225600, "owned_by", "ds4.c", "name", "DeepSeek V4 Flash", "context_length", ctx,
                     "top_provider", "context_length", ctx, "max_completion_tokens", maxc, "is_moderated", 0,
                     "supported_parameters", "tools", "tool_choice", "max_tokens", "temperature", "top_p", "top_k", "min_p",
                     "stop", "seed", "stream", "reasoning_effort");
}

void ds4s_api_models(const ds4s_server *s, ds4s_reply *r) {
    json_t *data = json_array();
    json_array_append_new(data, model_obj(s, DS4S_MODEL_ID));
    if (s->cfg.alias && strcmp(s->cfg.alias, DS4S_MODEL_ID)) json_array_append_new(data, model_obj(s, s->cfg.alias));
    json_t *o = json_pack("{s:s,s:o,s:[]}", "object", "list", "data", data, "models");
    r->status = 200;
    r->body = ds4s_jdump(o, 1);
    json_decref(o);
}

void ds4s_api_model_one(const ds4s_server *s, const char *id, ds4s_reply *r) {
    if (strcmp(id, DS4S_MODEL_ID) && strcmp(id, "deepseek-chat") && strcmp(id, "deepseek-reasoner") &&
        !(s->cfg.alias && !strcmp(id, s->cfg.alias))) {
        ds4s_reply_error(r, DS4S_FAM_OPENAI, 404, "unknown endpoint");
        return;
    }
    json_t *o = model_obj(s, id);
    r->status = 200;
    r->body = ds4s_jdump(o, 1);
    json_decref(o);
}
