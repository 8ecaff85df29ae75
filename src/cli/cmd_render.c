/* cmd_render.c - `ds4 render [-m MODEL] --api chat|anthropic|responses|completions
 * [--ctx N] [--ids]`: a request body on stdin -> the exact prompt bytes the
 * server would feed the model, on stdout (no trailing newline). The resolved
 * thinking mode goes to stderr. With --ids (needs -m) the prompt's token ids
 * are printed instead. --ctx defaults to the server's 32768, which matters
 * only for Think Max (needs >= 393216). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "gguf/gguf.h"
#include "text/text.h"

static void usage(FILE *o) {
    fprintf(o, "usage: ds4 render [-m MODEL] --api chat|anthropic|responses|completions [--ctx N] [--ids] < body.json\n");
}

int ds4_cmd_render(int argc, char **argv) {
    const char *model = NULL, *api_name = NULL;
    unsigned long ctx = 32768;
    int ids = 0;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--api") && i + 1 < argc) api_name = argv[++i];
        else if ((!strcmp(argv[i], "--ctx") || !strcmp(argv[i], "-c")) && i + 1 < argc) {
            char *end;
            ctx = strtoul(argv[++i], &end, 10);
            if (*end || ctx > 0xffffffffUL) { fprintf(stderr, "ds4 render: --ctx '%s' is not a token count\n", argv[i]); return 2; }
        } else if (!strcmp(argv[i], "--ids")) ids = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        else { fprintf(stderr, "ds4 render: unknown argument '%s'\n", argv[i]); usage(stderr); return 2; }
    }
    int api = api_name ? ds4_api_from_name(api_name) : -1;
    if (api < 0) { fprintf(stderr, "ds4 render: --api must be chat, anthropic, responses or completions\n"); usage(stderr); return 2; }
    if (ids && !model) { fprintf(stderr, "ds4 render: --ids needs -m MODEL\n"); return 2; }
    ds4_sbuf in = {0}, out = {0};
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) ds4_sbuf_add(&in, buf, n);
    ds4_err e = {{0}};
    ds4_think_mode mode;
    int rc = 1;
    gguf_file *g = NULL;
    ds4_vocab *v = NULL;
    if (ds4_render_body((ds4_api)api, in.p ? in.p : "", in.len, (uint32_t)ctx, NULL, &out, &mode, &e) < 0) {
        fprintf(stderr, "ds4 render: %s\n", e.msg);
        goto done;
    }
    fprintf(stderr, "think mode: %s\n", ds4_think_mode_name(mode));
    if (ids) {
        size_t ml = strlen(model);
        if (ml > 5 && !strcmp(model + ml - 5, ".json")) v = ds4_vocab_from_hf_json(model, &e);
        else { g = gguf_open(model, &e); v = g ? ds4_vocab_from_gguf(g, &e) : NULL; }
        if (!v) { fprintf(stderr, "ds4 render: %s\n", e.msg); goto done; }
        ds4_tokens t = {0};
        if (ds4_encode_rendered(v, out.p, out.len, &t, &e) < 0) { fprintf(stderr, "ds4 render: %s\n", e.msg); ds4_tokens_free(&t); goto done; }
        for (size_t i = 0; i < t.n; i++) printf(i ? " %d" : "%d", t.ids[i]);
        printf("\n");
        ds4_tokens_free(&t);
    } else {
        fwrite(out.p, 1, out.len, stdout);
    }
    rc = fflush(stdout) == 0 ? 0 : 1;
done:
    ds4_sbuf_free(&in);
    ds4_sbuf_free(&out);
    ds4_vocab_free(v);
    gguf_close(g);
    return rc;
}
