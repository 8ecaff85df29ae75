/* text_testutil.h - helpers shared by the test_text_*.c suites: read a JSONL
 * golden file, and load the V4 vocabulary from tests/data/tokenizer once per
 * process (it is 7.8 MB of JSON; every suite needs it). */
#ifndef DS4_TEXT_TESTUTIL_H
#define DS4_TEXT_TESTUTIL_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/text.h"

/* Array of the JSON objects of a .jsonl file (one per non-empty line), or NULL. */
__attribute__((unused)) static json_t *tu_load_jsonl(const char *rel) {
    FILE *f = fopen(t_data_path(rel), "rb");
    if (!f) return NULL;
    json_t *arr = json_array();
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (n <= 1) continue;
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)n, 0, &je);
        if (!o) { json_decref(arr); arr = NULL; break; }
        json_array_append_new(arr, o);
    }
    free(line);
    fclose(f);
    return arr;
}

__attribute__((unused)) static ds4_vocab *tu_vocab(void) {
    static ds4_vocab *v;
    if (!v) {
        ds4_err e = {{0}};
        v = ds4_vocab_from_hf_json(t_data_path("tokenizer/tokenizer.json"), &e);
        if (!v) fprintf(stderr, "vocab: %s\n", e.msg);
    }
    return v;
}

__attribute__((unused)) static int tu_quick(void) {
    const char *q = getenv("DS4_TEST_QUICK");
    return q && *q && strcmp(q, "0") != 0;
}

#endif
