/* vocab_src.c - where a synthetic file's token table comes from: the real V4
 * table built from tokenizer.json by the text module (--vocab deepseek), or
 * the compact byte-level table of vocab_bytes.c (--vocab bytes); plus the
 * search for tokenizer.json and the demo model's cache path, both of which
 * depend on where the program is run from rather than on the model. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "synth/synth_internal.h"

char *ds4_synth_find_tokenizer(ds4_err *err) {
    const char *env = getenv("DS4_TOKENIZER_JSON");
    if (env && *env) {
        if (access(env, R_OK) == 0) return strdup(env);
        ds4_errf(err, "DS4_TOKENIZER_JSON=%s: not readable; expected the DeepSeek tokenizer.json", env);
        return NULL;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n < 0) n = 0;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    else snprintf(exe, sizeof exe, ".");
    const char *rel[] = {"/tests/data/tokenizer/tokenizer.json", "/../tests/data/tokenizer/tokenizer.json",
                         "/../../tests/data/tokenizer/tokenizer.json", "/../share/ds4/tokenizer.json"};
    char path[PATH_MAX + 64];
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        snprintf(path, sizeof path, "%s%s", exe, rel[i]);
        if (access(path, R_OK) == 0) return strdup(path);
    }
    if (access("tests/data/tokenizer/tokenizer.json", R_OK) == 0) return strdup("tests/data/tokenizer/tokenizer.json");
    ds4_errf(err, "tokenizer.json not found (looked at $DS4_TOKENIZER_JSON, %s/tests/data/tokenizer/, "
                  "its parents, %s/../share/ds4/ and ./tests/data/tokenizer/); pass --tokenizer PATH or use --vocab bytes",
             exe, exe);
    return NULL;
}

int ds4_synth_vocab_table(const ds4_synth_opts *o, ds4_token_table *t, ds4_err *err) {
    if (o->vocab == DS4_SYNTH_VOCAB_BYTES) return ds4_synth_vocab_bytes(o->shape.n_vocab, t, err);
    if (o->shape.n_vocab != DS4_V4_VOCAB_SIZE)
        return ds4_errf(err, "--vocab deepseek: vocabulary size %u: the real vocabulary has %d tokens; "
                             "use --vocab bytes for another size", o->shape.n_vocab, DS4_V4_VOCAB_SIZE);
    char *path = o->tokenizer_json ? strdup(o->tokenizer_json) : ds4_synth_find_tokenizer(err);
    if (!path) return -1;
    int rc = ds4_v4_tokens_from_hf_json(path, t, err);
    free(path);
    return rc;
}

int ds4_synth_demo_path(char *buf, size_t len, ds4_err *err) {
    const char *d = getenv("DS4_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    int n;
    if (d && *d) n = snprintf(buf, len, "%s/demo.gguf", d);
    else if (x && *x) n = snprintf(buf, len, "%s/ds4/demo.gguf", x);
    else if (h && *h) n = snprintf(buf, len, "%s/.cache/ds4/demo.gguf", h);
    else return ds4_errf(err, "demo model: neither DS4_CACHE_DIR, XDG_CACHE_HOME nor HOME is set; pass -o FILE");
    if (n < 0 || (size_t)n >= len) return ds4_errf(err, "demo model: cache path too long");
    return 0;
}
