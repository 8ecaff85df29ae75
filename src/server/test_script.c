/* test_script.c - see test_script.h. */
#include "server/test_script.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct item { char *match; char *text; size_t text_len; } item;
struct ds4s_script { item *items; size_t n; };

ds4s_script *ds4s_script_load(const char *path, ds4_err *err) {
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        ds4_errf(err, "%s: line %d: %s (expected a JSON array of {\"match\",\"text\"} objects)", path, je.line, je.text);
        return NULL;
    }
    if (!json_is_array(j)) {
        json_decref(j);
        ds4_errf(err, "%s: top level is not a JSON array of {\"match\",\"text\"} objects", path);
        return NULL;
    }
    ds4s_script *s = calloc(1, sizeof *s);
    s->items = calloc(json_array_size(j) + 1, sizeof *s->items);
    size_t i;
    json_t *e;
    json_array_foreach(j, i, e) {
        json_t *t = json_object_get(e, "text"), *m = json_object_get(e, "match");
        if (!json_is_object(e) || !json_is_string(t) || (m && !json_is_string(m))) {
            ds4_errf(err, "%s: entry %zu: expected {\"match\": string (optional), \"text\": string}", path, i);
            json_decref(j);
            ds4s_script_free(s);
            return NULL;
        }
        s->items[s->n].text_len = json_string_length(t);
        s->items[s->n].text = strndup(json_string_value(t), json_string_length(t));
        s->items[s->n].match = m ? strdup(json_string_value(m)) : NULL;
        s->n++;
    }
    json_decref(j);
    return s;
}

void ds4s_script_free(ds4s_script *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) { free(s->items[i].match); free(s->items[i].text); }
    free(s->items);
    free(s);
}

const char *ds4s_script_pick(const ds4s_script *s, const char *prompt, size_t prompt_len, size_t *len) {
    if (!s) return NULL;
    for (size_t i = 0; i < s->n; i++) {
        const item *it = &s->items[i];
        if (it->match && !memmem(prompt, prompt_len, it->match, strlen(it->match))) continue;
        *len = it->text_len;
        return it->text;
    }
    return NULL;
}
