/* cmd_tokenize.c - `ds4 tokenize -m MODEL [--special]`: stdin (UTF-8 bytes)
 * -> token ids on one line, space-separated. Without --special the text is
 * ordinary text (encode_text); with it the seven protocol strings become their
 * special ids (encode_rendered), as for a rendered prompt. MODEL is a GGUF, or
 * a Hugging Face tokenizer.json (extended to the V4 table) for quick checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "gguf/gguf.h"
#include "text/text.h"

static int read_all(FILE *f, ds4_sbuf *out) {
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) ds4_sbuf_add(out, buf, n);
    return ferror(f) ? -1 : 0;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static void usage(FILE *o) {
    fprintf(o, "usage: ds4 tokenize -m MODEL.gguf|tokenizer.json [--special] < text\n"
               "  prints the token ids of stdin on one line; --special recognizes the protocol tokens\n");
}

int ds4_cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    int special = 0;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--special")) special = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        else { fprintf(stderr, "ds4 tokenize: unknown argument '%s'\n", argv[i]); usage(stderr); return 2; }
    }
    if (!model) { usage(stderr); return 2; }
    ds4_err e = {{0}};
    gguf_file *g = NULL;
    ds4_vocab *v;
    if (ends_with(model, ".json")) v = ds4_vocab_from_hf_json(model, &e);
    else {
        g = gguf_open(model, &e);
        v = g ? ds4_vocab_from_gguf(g, &e) : NULL;
    }
    if (!v) { fprintf(stderr, "ds4 tokenize: %s\n", e.msg); gguf_close(g); return 1; }
    ds4_sbuf in = {0};
    int rc = 1;
    if (read_all(stdin, &in) < 0) { fprintf(stderr, "ds4 tokenize: cannot read stdin\n"); goto out; }
    ds4_tokens t = {0};
    int r = special ? ds4_encode_rendered(v, in.p ? in.p : "", in.len, &t, &e) : ds4_encode_text(v, in.p ? in.p : "", in.len, &t, &e);
    if (r < 0) { fprintf(stderr, "ds4 tokenize: %s\n", e.msg); ds4_tokens_free(&t); goto out; }
    for (size_t i = 0; i < t.n; i++) printf(i ? " %d" : "%d", t.ids[i]);
    printf("\n");
    ds4_tokens_free(&t);
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    ds4_sbuf_free(&in);
    ds4_vocab_free(v);
    gguf_close(g);
    return rc;
}
