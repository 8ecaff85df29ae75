/* prompts.c - prompt files for ds4-steer and the chat rendering of one
 * prompt. Rendering goes through the text layer's request renderer (the same
 * code the server uses) so captured activations match real chat prompts. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "steer/steer.h"
#include "text/chat.h"

int ds4_prompts_read(const char *path, ds4_prompts *out, ds4_err *err) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return ds4_errf(err, "%s: cannot open prompt file", path);
    ds4_sbuf all = {0};
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) ds4_sbuf_add(&all, buf, got);
    fclose(f);
    XXH128_hash_t h = XXH3_128bits(all.p ? all.p : "", all.len);
    out->hash_lo = h.low64;
    out->hash_hi = h.high64;
    size_t start = 0;
    for (size_t i = 0; i <= all.len; i++) {
        if (i < all.len && all.p[i] != '\n') continue;
        size_t a = start, b = i;
        start = i + 1;
        while (a < b && (all.p[a] == ' ' || all.p[a] == '\t' || all.p[a] == '\r')) a++;
        while (b > a && (all.p[b - 1] == ' ' || all.p[b - 1] == '\t' || all.p[b - 1] == '\r')) b--;
        if (a == b || all.p[a] == '#') continue;
        char **grown = realloc(out->items, sizeof(char *) * (size_t)(out->n + 1));
        if (!grown) break;
        out->items = grown;
        out->items[out->n] = strndup(all.p + a, b - a);
        out->n++;
    }
    ds4_sbuf_free(&all);
    if (out->n == 0) {
        ds4_prompts_free(out);
        return ds4_errf(err, "%s: no prompts: expected one prompt per line", path);
    }
    return 0;
}

void ds4_prompts_free(ds4_prompts *p) {
    for (int i = 0; i < p->n; i++) free(p->items[i]);
    free(p->items);
    memset(p, 0, sizeof *p);
}

int ds4_steer_prompt_tokens(const ds4_vocab *v, const char *prompt, ds4_tokens *out, ds4_err *err) {
    json_t *body = json_pack("{s:[{s:s,s:s}],s:b}", "messages", "role", "user", "content", prompt, "think", 0);
    if (!body) return ds4_errf(err, "prompt \"%.40s\": not valid UTF-8", prompt);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    ds4_sbuf rendered = {0};
    int rc = ds4_render_body(DS4_API_OPENAI_CHAT, text, strlen(text), 1u << 20, NULL, &rendered, NULL, err);
    free(text);
    if (rc == 0) rc = ds4_encode_rendered(v, rendered.p, rendered.len, out, err);
    ds4_sbuf_free(&rendered);
    return rc;
}
