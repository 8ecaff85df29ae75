/* ds4-steer - build directional-steering vectors from two contrasting prompt
 * sets, and sweep scales to choose a strength (spec/model.md §6). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "gguf/gguf.h"
#include "steer/steer.h"

static void usage(FILE *o) {
    fprintf(o,
            "usage:\n"
            "  ds4-steer build --good FILE --bad FILE [--component ffn_out|attn_out] -o NAME.f32\n"
            "                  [-m MODEL] [--keep-contrast-mean] [--threads N]\n"
            "      Runs both prompt sets (one prompt per line, '#' comments) through the model as\n"
            "      chat turns, averages the chosen sub-layer output per layer over each prompt's\n"
            "      tokens and then over the set, takes good - bad, removes its component along the\n"
            "      bad set's mean (unless --keep-contrast-mean) and normalises each layer. Writes\n"
            "      NAME.f32 (n_layer x n_embd floats) and NAME.json (provenance).\n"
            "      Sign: a NEGATIVE scale amplifies what the good set has; positive suppresses it.\n"
            "  ds4-steer sweep --direction NAME.f32 --prompts FILE [--scales -2,-1,0,1,2]\n"
            "                  [--component ffn_out|attn_out] [-n TOKENS] [--show] [-m MODEL]\n"
            "      Greedy generation per prompt at each scale; prints a table of average tokens,\n"
            "      words and repetition (share of repeated token trigrams).\n"
            "MODEL defaults to ./ds4flash.gguf.\n");
}

static int parse_component(const char *s, int *out) {
    if (!strcmp(s, "ffn_out")) *out = DS4_CAPTURE_FFN_OUT;
    else if (!strcmp(s, "attn_out")) *out = DS4_CAPTURE_ATTN_OUT;
    else return -1;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1], *model = "ds4flash.gguf", *good = NULL, *bad = NULL, *out = NULL, *dirf = NULL,
               *prompts = NULL, *scales_s = "-2,-1,0,1,2";
    int component = DS4_CAPTURE_FFN_OUT, keep = 0, threads = 0, ntok = 64, show = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--keep-contrast-mean")) { keep = 1; continue; }
        if (!strcmp(a, "--show")) { show = 1; continue; }
        if (!v) { fprintf(stderr, "ds4-steer: %s needs a value\n", a); return 2; }
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--good")) good = v;
        else if (!strcmp(a, "--bad")) bad = v;
        else if (!strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--direction")) dirf = v;
        else if (!strcmp(a, "--prompts")) prompts = v;
        else if (!strcmp(a, "--scales")) scales_s = v;
        else if (!strcmp(a, "-n")) ntok = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--component")) {
            if (parse_component(v, &component)) {
                fprintf(stderr, "ds4-steer: --component %s: expected ffn_out or attn_out\n", v);
                return 2;
            }
        } else { fprintf(stderr, "ds4-steer: unknown option %s\n", a); usage(stderr); return 2; }
    }
    const int is_build = !strcmp(cmd, "build"), is_sweep = !strcmp(cmd, "sweep");
    if ((!is_build && !is_sweep) || (is_build && (!good || !bad || !out)) || (is_sweep && (!dirf || !prompts)) ||
        ntok <= 0) {
        usage(stderr);
        return 2;
    }
    ds4_err err = {{0}};
    ds4_model_opts mo = {.n_threads = threads};
    ds4_model *m = ds4_model_load(model, &mo, &err);
    ds4_vocab *v = m ? ds4_vocab_from_gguf((const gguf_file *)ds4_model_gguf(m), &err) : NULL;
    if (!m || !v) {
        fprintf(stderr, "ds4-steer: %s\n", err.msg);
        ds4_model_free(m);
        return 1;
    }
    int rc = 1;
    if (is_build) {
        ds4_prompts pg = {0}, pb = {0};
        ds4_steer_build_opts o = {.component = component, .keep_contrast_mean = keep};
        ds4_steer_build_info info = {0};
        float *dir = malloc(sizeof(float) * (size_t)ds4_model_n_layer(m) * ds4_model_n_embd(m));
        if (dir && !ds4_prompts_read(good, &pg, &err) && !ds4_prompts_read(bad, &pb, &err) &&
            !ds4_steer_build(m, v, &pg, &pb, &o, dir, &info, &err) &&
            !ds4_steer_write(out, m, dir, &pg, &pb, &o, &info, &err)) {
            printf("wrote %s: %d layers; good %d prompts / %ld tokens, bad %d prompts / %ld tokens\n", out,
                   ds4_model_n_layer(m), info.n_good, info.good_tokens, info.n_bad, info.bad_tokens);
            rc = 0;
        } else {
            fprintf(stderr, "ds4-steer: %s\n", err.msg);
        }
        free(info.raw_norm);
        free(dir);
        ds4_prompts_free(&pg);
        ds4_prompts_free(&pb);
    } else {
        float scales[64];
        int ns = 0;
        for (char *s = (char *)scales_s; *s && ns < 64;) {
            char *end;
            scales[ns++] = strtof(s, &end);
            if (end == s) { fprintf(stderr, "ds4-steer: --scales %s: expected numbers separated by commas\n", scales_s); goto done; }
            s = *end == ',' ? end + 1 : end;
        }
        ds4_prompts pp = {0};
        ds4_sweep_row rows[64];
        if (!ds4_model_load_steering(m, dirf, &err) && !ds4_prompts_read(prompts, &pp, &err) &&
            !ds4_steer_sweep(m, v, &pp, scales, ns, component, ntok, show, rows, &err)) {
            printf("%8s %10s %10s %11s %10s\n", "scale", "tokens", "words", "repetition", "eos_stops");
            for (int i = 0; i < ns; i++)
                printf("%8.3g %10.1f %10.1f %11.3f %7d/%d\n", rows[i].scale, rows[i].tokens, rows[i].words,
                       rows[i].repetition, rows[i].eos_stops, pp.n);
            rc = 0;
        } else {
            fprintf(stderr, "ds4-steer: %s\n", err.msg);
        }
        ds4_prompts_free(&pp);
    }
done:
    ds4_vocab_free(v);
    ds4_model_free(m);
    return rc;
}
