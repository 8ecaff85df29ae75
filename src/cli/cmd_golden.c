/* cmd_golden.c - `ds4 golden`: recompute a DS4GOLD1 reference with this engine
 * and write the result in the same format, for read_golden.py to compare. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/engine.h"
#include "engine/golden.h"

static void usage(FILE *o) {
    fprintf(o, "usage: ds4 golden -m MODEL --like REF.golden -o OUT.golden [--backend B] [--gpus LIST]\n"
               "                  [--threads N] [--chunk N] [--snapshot-at N] [--fast]\n"
               "                  [--dir-steering-file F --dir-steering-ffn X --dir-steering-attn Y]\n"
               "Reads the tokens, positions and greedy length of REF, computes prefill rows (one\n"
               "layer-major pass in chunks of N, optionally saving and restoring a snapshot after\n"
               "N tokens), incremental rows (single-token decode) and the greedy continuation,\n"
               "and writes OUT. Compare with tests/data/oracle/read_golden.py REF OUT.\n");
}

int ds4_cmd_golden(int argc, char **argv) {
    const char *model = NULL, *like = NULL, *outp = NULL, *steer = NULL;
    ds4_model_opts mo = {.exact = 1}; /* goldens compare the reference order unless --fast */
    ds4_golden_opts go = {0};
    int have_ffn = 0, have_attn = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--fast")) { mo.exact = -1; continue; }
        if (!v) { fprintf(stderr, "ds4 golden: %s needs a value\n", a); return 2; }
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--like")) like = v;
        else if (!strcmp(a, "-o")) outp = v;
        else if (!strcmp(a, "--backend")) mo.backend = v;
        else if (!strcmp(a, "--gpus")) mo.gpus = v;
        else if (!strcmp(a, "--threads")) mo.n_threads = atoi(v);
        else if (!strcmp(a, "--chunk")) go.chunk = atoi(v);
        else if (!strcmp(a, "--snapshot-at")) go.snapshot_at = atoi(v);
        else if (!strcmp(a, "--dir-steering-file")) steer = v;
        else if (!strcmp(a, "--dir-steering-ffn")) { go.steer_ffn = strtof(v, NULL); have_ffn = 1; }
        else if (!strcmp(a, "--dir-steering-attn")) { go.steer_attn = strtof(v, NULL); have_attn = 1; }
        else { fprintf(stderr, "ds4 golden: unknown option %s\n", a); usage(stderr); return 2; }
    }
    if (!model || !like || !outp) { usage(stderr); return 2; }
    if (steer && !have_ffn && !have_attn) go.steer_ffn = 1.0f; /* the reference CLI's default */
    ds4_err err = {{0}};
    ds4_golden ref, out;
    if (ds4_golden_read(like, &ref, &err)) { fprintf(stderr, "ds4 golden: %s\n", err.msg); return 1; }
    ds4_model *m = ds4_model_load(model, &mo, &err);
    if (!m || (steer && ds4_model_load_steering(m, steer, &err))) {
        fprintf(stderr, "ds4 golden: %s\n", err.msg);
        ds4_model_free(m);
        ds4_golden_free(&ref);
        return 1;
    }
    int rc = ds4_golden_compute(m, &ref, &go, &out, &err) || ds4_golden_write(outp, &out, &err);
    if (rc) fprintf(stderr, "ds4 golden: %s\n", err.msg);
    ds4_golden_free(&out);
    ds4_golden_free(&ref);
    ds4_model_free(m);
    return rc ? 1 : 0;
}
