/* vocab_hf.c - the V4 token table from a Hugging Face tokenizer.json
 * (spec/text.md §4): the V3 npm tokenizer carries the V4 BPE vocabulary and
 * merges but not the V4-only added tokens, so those are filled in by string
 * at their published ids. Used by tests (a vocabulary without a model file)
 * and by ds4-synth (a full-size token table to write into a GGUF). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/vocab_internal.h"

/* V4 added tokens beyond the V3 table, by id (spec §1.2). Ids not listed get
 * a unique placeholder; the engine never needs their strings. */
static const struct { int id; const char *s; } v4_extra[] = {
    {128815, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81repo\xe2\x96\x81name\xef\xbd\x9c>"},
    {128820, "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81" "file\xef\xbd\x9c>"},
    {128821, "<think>"},
    {128822, "</think>"},
    {128823, "<\xef\xbd\x9cplace\xe2\x96\x81holder\xe2\x96\x81" "for\xe2\x96\x81" "copy\xef\xbd\x9c>"},
    {128824, "<\xef\xbd\x9cplace\xe2\x96\x81holder\xe2\x96\x81" "for\xe2\x96\x81pointer\xe2\x96\x81replace\xef\xbd\x9c>"},
    {128825, "\xef\xbd\x9c" "DSML\xef\xbd\x9c"},
    {128826, "<\xef\xbd\x9c" "begin\xe2\x96\x81sys\xef\xbd\x9c>"},
    {128827, "<\xef\xbd\x9c" "end\xe2\x96\x81sys\xef\xbd\x9c>"},
    {128828, "<\xef\xbd\x9clatest_reminder\xef\xbd\x9c>"},
    {128829, "<\xef\xbd\x9c" "action\xef\xbd\x9c>"},
    {128830, "<\xef\xbd\x9cquery\xef\xbd\x9c>"},
    {128831, "<\xef\xbd\x9c" "authority\xef\xbd\x9c>"},
    {128832, "<\xef\xbd\x9c" "domain\xef\xbd\x9c>"},
    {128836, "<\xef\xbd\x9ctitle\xef\xbd\x9c>"},
    {128845, "<\xef\xbd\x9cread_url\xef\xbd\x9c>"},
};

void ds4_token_table_free(ds4_token_table *t) {
    if (!t) return;
    if (t->tokens) for (size_t i = 0; i < t->n_tokens; i++) free(t->tokens[i]);
    if (t->merges) for (size_t i = 0; i < t->n_merges; i++) free(t->merges[i]);
    free(t->tokens); free(t->token_lens); free(t->types);
    free(t->merges); free(t->merge_lens);
    memset(t, 0, sizeof *t);
}

static char *dup_n(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

int ds4_v4_tokens_from_hf_json(const char *path, ds4_token_table *out, ds4_err *err) {
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) return ds4_errf(err, "%s:%d: cannot parse tokenizer.json: %s", path, je.line, je.text);
    int rc = -1;
    json_t *model = json_object_get(root, "model");
    json_t *vocab = model ? json_object_get(model, "vocab") : NULL;
    json_t *merges = model ? json_object_get(model, "merges") : NULL;
    json_t *added = json_object_get(root, "added_tokens");
    if (!json_is_object(vocab) || !json_is_array(merges)) {
        ds4_errf(err, "%s: model.vocab (object) / model.merges (array) missing; expected a BPE tokenizer.json", path);
        goto done;
    }
    size_t n = DS4_V4_VOCAB_SIZE;
    out->n_tokens = n;
    out->tokens = calloc(n, sizeof *out->tokens);
    out->token_lens = calloc(n, sizeof *out->token_lens);
    out->types = calloc(n, sizeof *out->types);
    if (!out->tokens || !out->token_lens || !out->types) { ds4_errf(err, "%s: out of memory", path); goto done; }
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        json_int_t id = json_is_integer(val) ? json_integer_value(val) : -1;
        if (id < 0 || id >= (json_int_t)n) { ds4_errf(err, "%s: model.vocab[\"%s\"] = %lld; expected an id in 0..%zu", path, key, (long long)id, n - 1); goto done; }
        if (out->tokens[id]) { ds4_errf(err, "%s: model.vocab id %lld used twice", path, (long long)id); goto done; }
        out->tokens[id] = strdup(key);
        out->token_lens[id] = strlen(key);
        out->types[id] = DS4_TOKTYPE_NORMAL;
    }
    size_t i;
    json_array_foreach(added, i, val) {
        json_t *jid = json_object_get(val, "id"), *jc = json_object_get(val, "content");
        if (!json_is_integer(jid) || !json_is_string(jc)) { ds4_errf(err, "%s: added_tokens[%zu] lacks an integer id / string content", path, i); goto done; }
        json_int_t id = json_integer_value(jid);
        if (id < 0 || id >= (json_int_t)n) { ds4_errf(err, "%s: added_tokens[%zu].id = %lld; expected 0..%zu", path, i, (long long)id, n - 1); goto done; }
        free(out->tokens[id]);
        out->tokens[id] = dup_n(json_string_value(jc), json_string_length(jc));
        out->token_lens[id] = json_string_length(jc);
        out->types[id] = json_is_true(json_object_get(val, "special")) ? DS4_TOKTYPE_CONTROL : DS4_TOKTYPE_USER_DEFINED;
        /* V3 marks <｜User｜>/<｜Assistant｜> "special": false; in V4 they are
         * protocol control tokens like BOS/EOS. */
        for (int s = 0; s < DS4_SP_COUNT; s++)
            if (!strcmp(out->tokens[id] ? out->tokens[id] : "", ds4_special_str((ds4_special)s))) out->types[id] = DS4_TOKTYPE_CONTROL;
    }
    for (size_t k = 0; k < sizeof v4_extra / sizeof v4_extra[0]; k++) {
        int id = v4_extra[k].id;
        free(out->tokens[id]);
        out->tokens[id] = strdup(v4_extra[k].s);
        out->token_lens[id] = strlen(v4_extra[k].s);
        out->types[id] = DS4_TOKTYPE_CONTROL;
    }
    for (size_t id = 0; id < n; id++) {
        if (out->tokens[id]) continue;
        char tmp[96];
        snprintf(tmp, sizeof tmp, "<\xef\xbd\x9cplace\xe2\x96\x81holder\xe2\x96\x81no\xe2\x96\x81%zu\xef\xbd\x9c>", id - 128000);
        if (id < 128000) snprintf(tmp, sizeof tmp, "<\xef\xbd\x9cunused\xe2\x96\x81%zu\xef\xbd\x9c>", id);
        out->tokens[id] = strdup(tmp);
        out->token_lens[id] = strlen(tmp);
        out->types[id] = id < 128000 ? DS4_TOKTYPE_UNUSED : DS4_TOKTYPE_CONTROL;
    }
    for (size_t id = 0; id < n; id++) if (!out->tokens[id]) { ds4_errf(err, "%s: out of memory", path); goto done; }
    size_t nm = json_array_size(merges);
    out->merges = calloc(nm ? nm : 1, sizeof *out->merges);
    out->merge_lens = calloc(nm ? nm : 1, sizeof *out->merge_lens);
    if (!out->merges || !out->merge_lens) { ds4_errf(err, "%s: out of memory", path); goto done; }
    json_array_foreach(merges, i, val) {
        if (json_is_string(val)) {
            out->merges[i] = dup_n(json_string_value(val), json_string_length(val));
            out->merge_lens[i] = json_string_length(val);
        } else if (json_is_array(val) && json_array_size(val) == 2 && json_is_string(json_array_get(val, 0)) && json_is_string(json_array_get(val, 1))) {
            /* Newer tokenizers write merges as ["left", "right"]. */
            json_t *a = json_array_get(val, 0), *b = json_array_get(val, 1);
            size_t la = json_string_length(a), lb = json_string_length(b);
            out->merges[i] = malloc(la + lb + 2);
            if (out->merges[i]) {
                memcpy(out->merges[i], json_string_value(a), la);
                out->merges[i][la] = ' ';
                memcpy(out->merges[i] + la + 1, json_string_value(b), lb);
                out->merges[i][la + lb + 1] = 0;
            }
            out->merge_lens[i] = la + lb + 1;
        } else {
            ds4_errf(err, "%s: model.merges[%zu] is neither \"left right\" nor [left, right]", path, i);
            out->n_merges = i;
            goto done;
        }
        if (!out->merges[i]) { out->n_merges = i; ds4_errf(err, "%s: out of memory", path); goto done; }
    }
    out->n_merges = nm;
    rc = 0;
done:
    json_decref(root);
    if (rc < 0) ds4_token_table_free(out);
    return rc;
}

ds4_vocab *ds4_vocab_from_hf_json(const char *path, ds4_err *err) {
    ds4_token_table t;
    if (ds4_v4_tokens_from_hf_json(path, &t, err) < 0) return NULL;
    ds4_vocab *v = ds4_vocab_new((const char *const *)t.tokens, t.token_lens, t.n_tokens,
                                 (const char *const *)t.merges, t.merge_lens, t.n_merges, t.types, err);
    if (!v) ds4_err_prefix(err, "%s", path);
    ds4_token_table_free(&t);
    return v;
}
