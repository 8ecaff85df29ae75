/* tokenizer_bench.c - encode throughput of the text layer's tokenizer on one
 * core, over ~1 MB of mixed-script text assembled from the tokenizer goldens
 * (prose, code, CJK, emoji, accents, numbers, whitespace, the long Italian
 * texts; the 126 KB of golden texts repeated to the target size). Prints MB/s and
 * tokens/s for encode_text and decode, best of 5. Each encode runs in a fresh
 * thread, so the per-thread piece cache starts cold every time ("cold"); a
 * second figure encodes again on the same thread ("warm", what a server
 * thread sees for recurring text).
 *
 * Run from the repository root:
 *   make bench && build/bench/tokenizer_bench [tokenizer.json] [target_MB] */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text/text.h"

typedef struct job { const ds4_vocab *v; const char *s; size_t n; ds4_tokens t; double secs, warm_secs; } job;

static double now(void);
static void *encode_job(void *arg) {
    job *j = arg;
    ds4_err e = {{0}};
    double a = now();
    if (ds4_encode_text(j->v, j->s, j->n, &j->t, &e) < 0) { fprintf(stderr, "%s\n", e.msg); exit(1); }
    j->secs = now() - a;
    ds4_tokens w = {0};
    a = now();
    ds4_encode_text(j->v, j->s, j->n, &w, &e);
    j->warm_secs = now() - a;
    ds4_tokens_free(&w);
    return NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    const char *tok = argc > 1 ? argv[1] : "tests/data/tokenizer/tokenizer.json";
    double target_mb = argc > 2 ? atof(argv[2]) : 1.0;
    ds4_err e = {{0}};
    double t0 = now();
    ds4_vocab *v = ds4_vocab_from_hf_json(tok, &e);
    if (!v) { fprintf(stderr, "tokenizer_bench: %s\n", e.msg); return 1; }
    double t_load = now() - t0;
    FILE *f = fopen("tests/data/tokenizer/cases.jsonl", "rb");
    if (!f) { fprintf(stderr, "tokenizer_bench: run from the repository root (tests/data/tokenizer/cases.jsonl)\n"); return 1; }
    ds4_sbuf corpus = {0}, all = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)n, 0, &je);
        json_t *t = o ? json_object_get(o, "text") : NULL;
        if (t) { ds4_sbuf_add(&corpus, json_string_value(t), json_string_length(t)); ds4_sbuf_addc(&corpus, '\n'); }
        json_decref(o);
    }
    free(line);
    fclose(f);
    size_t want = (size_t)(target_mb * 1e6);
    while (all.len < want) ds4_sbuf_add(&all, corpus.p, corpus.len < want - all.len ? corpus.len : want - all.len);
    double best = 1e9, best_warm = 1e9, best_dec = 1e9;
    size_t ntok = 0;
    for (int r = 0; r < 5; r++) {
        job j = {v, all.p, all.len, {0}, 0, 0};
        pthread_t th;
        if (pthread_create(&th, NULL, encode_job, &j) != 0) return 1;
        pthread_join(th, NULL);
        ds4_sbuf d = {0};
        double b = now();
        ds4_decode(v, j.t.ids, j.t.n, &d);
        double c = now();
        if (d.len != all.len || memcmp(d.p, all.p, all.len)) { fprintf(stderr, "round trip failed\n"); return 1; }
        if (j.secs < best) best = j.secs;
        if (j.warm_secs < best_warm) best_warm = j.warm_secs;
        if (c - b < best_dec) best_dec = c - b;
        ntok = j.t.n;
        ds4_sbuf_free(&d);
        ds4_tokens_free(&j.t);
    }
    /* The goldens without repetition: no piece is seen twice by chance of
     * the corpus being repeated, so this is the pessimistic figure. */
    double best_unique = 1e9;
    for (int r = 0; r < 5; r++) {
        job j = {v, corpus.p, corpus.len, {0}, 0, 0};
        pthread_t th;
        if (pthread_create(&th, NULL, encode_job, &j) != 0) return 1;
        pthread_join(th, NULL);
        if (j.secs < best_unique) best_unique = j.secs;
        ds4_tokens_free(&j.t);
    }
    printf("corpus: %.3f MB (%zu tokens, %.2f bytes/token), vocab load %.2f s\n", all.len / 1e6, ntok, (double)all.len / ntok, t_load);
    printf("encode_text cold cache: %.1f MB/s, %.2f M tokens/s (best of 5, one thread)\n", all.len / 1e6 / best, ntok / 1e6 / best);
    printf("encode_text warm cache: %.1f MB/s\n", all.len / 1e6 / best_warm);
    printf("encode_text cold, unique %.3f MB (no repetition): %.1f MB/s\n", corpus.len / 1e6, corpus.len / 1e6 / best_unique);
    printf("decode:      %.1f MB/s\n", all.len / 1e6 / best_dec);
    ds4_sbuf_free(&all);
    ds4_sbuf_free(&corpus);
    ds4_vocab_free(v);
    return 0;
}
