/* ds4-synth.c - the `ds4-synth` command: write a synthetic DeepSeek V4 Flash
 * GGUF (src/synth/synth.h). This file only parses flags, applies them on top
 * of a preset, and handles the cached demo model. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "model/config.h"
#include "synth/synth.h"

static void usage(FILE *out) {
    fprintf(out,
"usage: ds4-synth -o FILE [options]\n"
"       ds4-synth --demo [-o FILE] [--force]\n"
"\n"
"Writes a GGUF in the exact DeepSeek V4 Flash layout (spec/model.md §1-§3: the\n"
"engine's own tensor table, the oracle's metadata keys and types) with random,\n"
"seeded weights. The engine loads it like the real file.\n"
"\n"
"model:\n"
"  --preset full|tiny|demo  full: the real 43-layer, 4096-wide model (default;\n"
"                           q2: 86,714,775,900 bytes of tensor data). tiny: width 256,\n"
"                           6 layers (ratios 0,0,4,128,4,128; hash routing on 0-2,\n"
"                           learned top-6-of-16 on 3-5), window 32, indexer top-k 8\n"
"                           (exceeded after 36 tokens), HC 4. demo: tiny with window\n"
"                           128 and top-k 64.\n"
"  --layers N               first N layers of the preset's schedule (full width)\n"
"  --recipe q2|q4           routed experts IQ2_XXS gate/up + Q2_K down (q2, default)\n"
"                           or Q4_K (q4); everything else as the real file\n"
"  --vocab deepseek|bytes   deepseek (default): the real V4 vocabulary, merges and\n"
"                           specials, built from tokenizer.json (--tokenizer PATH,\n"
"                           else $DS4_TOKENIZER_JSON or tests/data/tokenizer/ found\n"
"                           next to this program). bytes: BOS, EOS, 256 byte tokens,\n"
"                           the first real merges, the same special strings; no\n"
"                           tokenizer.json needed (size: --vocab-size, default 512,\n"
"                           129280 for full)\n"
"  --seed N                 weights are a pure function of (seed, tensor name,\n"
"                           index): same seed, same bytes, any thread count\n"
"  --name STR               general.name\n"
"\n"
"shape (override the preset; every one is checked by the engine's loader\n"
"before any data is written):\n"
"  --embd N  --vocab-size N  --heads N  --head-dim N  --rot N  --q-lora N\n"
"  --o-lora N  --o-groups N  --experts N  --experts-used N  --ff N\n"
"  --hash-layers N  --window N  --idx-heads N  --idx-head-dim N  --idx-top-k N\n"
"  --hc N  --sinkhorn N  --ratios R0,R1,...  (one per layer, each 0, 4 or 128)\n"
"  --swiglu-clamp X  --expert-group-keys (also write expert_group_* = 0)\n"
"\n"
"output:\n"
"  -o FILE                  written as FILE.part-PID, renamed when complete\n"
"  --sparse                 header only; tensor data left as holes (layout and\n"
"                           load tests; takes no disk space)\n"
"  --threads N              writer threads (default: all cores)\n"
"  -q, --quiet              no progress line, no summary\n"
"  --demo                   the README's demo model: --preset demo, real vocabulary,\n"
"                           written to $DS4_CACHE_DIR/demo.gguf, else\n"
"                           $XDG_CACHE_HOME/ds4/demo.gguf, else ~/.cache/ds4/demo.gguf\n"
"                           unless -o; reused if already there (--force rewrites).\n"
"                           Prints the path on stdout.\n"
"\n"
"weights: projections ~ N(0, 1/fan_in) with fan_in = the row length, so every\n"
"product keeps unit-RMS activations; norm weights ~ N(1, 0.1) (KV and\n"
"compressed-KV norms N(2.5, 0.1)); router 2/sqrt(fan_in) (logits std ~2),\n"
"output head 3/sqrt(fan_in) (logits std ~3); embedding N(0, 1); HC scales\n"
"U(0.3, 1), HC biases N(0, 0.6); sinks N(0, 1); compressor position biases\n"
"N(0, 0.5); selection bias N(0, 0.3) on learned-routing layers only; hash\n"
"tables: distinct random experts per token. Routed experts are random valid\n"
"blocks (grid indices, signs, sub-block scales, codes) with one super-scale per\n"
"tensor for RMS 1/sqrt(fan_in). Activations stay finite and varied through\n"
"every layer; logits are not degenerate.\n");
}

/* Ctrl-C while writing: remove the partial file (ds4_synth_write builds
 * FILE.part-PID), so an interrupted run leaves nothing behind. */
static char part_path[PATH_MAX + 32];
static void on_signal(int sig) {
    if (part_path[0]) unlink(part_path);
    signal(sig, SIG_DFL);
    raise(sig);
}

static int parse_u32(const char *flag, const char *s, uint32_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || v > UINT32_MAX || s[0] == '-') {
        fprintf(stderr, "ds4-synth: %s %s: expected a non-negative integer\n", flag, s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static int mkdirs(const char *file) {
    char d[PATH_MAX];
    snprintf(d, sizeof d, "%s", file);
    char *slash = strrchr(d, '/');
    if (!slash || slash == d) return 0;
    *slash = 0;
    for (char *p = d + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(d, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(d, 0755) && errno != EEXIST ? -1 : 0;
}

/* A cached demo file is reused when the engine accepts it and it is ours. */
static int demo_is_cached(const char *path) {
    if (access(path, R_OK)) return 0;
    ds4_err e = {{0}};
    gguf_file *f = gguf_open(path, &e);
    if (!f) return 0;
    ds4_config c;
    int ok = ds4_config_from_gguf(f, &c, &e) == 0 && !strcmp(c.name, "ds4-synth-demo");
    gguf_close(f);
    return ok;
}

int main(int argc, char **argv) {
    const char *preset = "full", *out = NULL;
    int demo = 0, force = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        if (!strcmp(argv[i], "--demo")) { demo = 1; preset = "demo"; }
        if (!strcmp(argv[i], "--preset") && i + 1 < argc) preset = argv[i + 1];
    }
    ds4_synth_opts o;
    ds4_err err = {{0}};
    if (ds4_synth_preset(preset, &o, &err)) { fprintf(stderr, "ds4-synth: %s\n", err.msg); return 2; }
    ds4_config *c = &o.shape;
    uint32_t layers = 0, vocab_size = 0, hash_layers = UINT32_MAX, ratios[DS4_MAX_LAYERS];
    uint32_t n_ratios = 0;
    float clamp = 0;
    struct { const char *flag; uint32_t *dst; } u32f[] = {
        {"--embd", &c->n_embd}, {"--heads", &c->n_head}, {"--head-dim", &c->head_dim},
        {"--rot", &c->n_rot}, {"--q-lora", &c->q_lora}, {"--o-lora", &c->o_lora}, {"--o-groups", &c->o_groups},
        {"--experts", &c->n_expert}, {"--experts-used", &c->n_expert_used}, {"--ff", &c->ff_exp},
        {"--window", &c->swa}, {"--idx-heads", &c->idx_head}, {"--idx-head-dim", &c->idx_head_dim},
        {"--idx-top-k", &c->idx_top_k}, {"--hc", &c->n_hc}, {"--sinkhorn", &c->sinkhorn_iter},
        {"--layers", &layers}, {"--vocab-size", &vocab_size}, {"--hash-layers", &hash_layers},
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int used = 0;
        for (size_t k = 0; k < sizeof u32f / sizeof u32f[0]; k++)
            if (!strcmp(a, u32f[k].flag)) {
                if (!v) { fprintf(stderr, "ds4-synth: %s needs a value\n", a); return 2; }
                if (parse_u32(a, v, u32f[k].dst)) return 2;
                used = 1;
            }
        if (used) { i++; continue; }
        if (!strcmp(a, "--demo")) continue;
        if (!strcmp(a, "--force")) { force = 1; continue; }
        if (!strcmp(a, "--sparse")) { o.sparse = true; continue; }
        if (!strcmp(a, "--expert-group-keys")) { o.expert_group_keys = true; continue; }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) { quiet = 1; o.progress = 0; continue; }
        if (!v) { fprintf(stderr, "ds4-synth: unknown option or missing value: %s\n", a); usage(stderr); return 2; }
        i++;
        if (!strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--preset")) continue;
        else if (!strcmp(a, "--name")) snprintf(c->name, sizeof c->name, "%s", v);
        else if (!strcmp(a, "--tokenizer")) o.tokenizer_json = v;
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            o.seed = strtoull(v, &end, 0);
            if (!*v || *end || errno) { fprintf(stderr, "ds4-synth: --seed %s: expected an integer\n", v); return 2; }
        } else if (!strcmp(a, "--threads")) {
            uint32_t n;
            if (parse_u32(a, v, &n)) return 2;
            o.n_threads = (int)(n > 256 ? 256 : n);
        } else if (!strcmp(a, "--recipe")) {
            if (!strcmp(v, "q2")) o.recipe = DS4_SYNTH_Q2;
            else if (!strcmp(v, "q4")) o.recipe = DS4_SYNTH_Q4;
            else { fprintf(stderr, "ds4-synth: --recipe %s: expected q2 or q4\n", v); return 2; }
        } else if (!strcmp(a, "--vocab")) {
            if (!strcmp(v, "deepseek")) o.vocab = DS4_SYNTH_VOCAB_DEEPSEEK;
            else if (!strcmp(v, "bytes")) o.vocab = DS4_SYNTH_VOCAB_BYTES;
            else { fprintf(stderr, "ds4-synth: --vocab %s: expected deepseek or bytes\n", v); return 2; }
        } else if (!strcmp(a, "--ratios")) {
            char *dup = strdup(v), *save = NULL;
            for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                uint32_t r;
                if (n_ratios == DS4_MAX_LAYERS || parse_u32(a, tok, &r)) { free(dup); return 2; }
                if (r != 0 && r != 4 && r != 128) {
                    fprintf(stderr, "ds4-synth: --ratios: %u: expected 0, 4 or 128\n", r);
                    free(dup);
                    return 2;
                }
                ratios[n_ratios++] = r;
            }
            free(dup);
        } else if (!strcmp(a, "--swiglu-clamp")) {
            char *end;
            clamp = strtof(v, &end);
            if (!*v || *end || !(clamp > 0)) { fprintf(stderr, "ds4-synth: --swiglu-clamp %s: expected a positive number\n", v); return 2; }
        } else {
            fprintf(stderr, "ds4-synth: unknown option: %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (layers && ds4_synth_set_layers(&o, layers, &err)) { fprintf(stderr, "ds4-synth: %s\n", err.msg); return 2; }
    if (hash_layers != UINT32_MAX) c->n_hash_layer = hash_layers;
    if (n_ratios) {
        if (n_ratios != c->n_layer) {
            fprintf(stderr, "ds4-synth: --ratios has %u entries; expected one per layer (%u)\n", n_ratios, c->n_layer);
            return 2;
        }
        memcpy(c->compress_ratio, ratios, n_ratios * sizeof ratios[0]);
    }
    if (clamp > 0) for (uint32_t il = 0; il < DS4_MAX_LAYERS; il++) c->swiglu_clamp[il] = clamp;
    if (o.vocab == DS4_SYNTH_VOCAB_BYTES) c->n_vocab = vocab_size ? vocab_size : ds4_synth_bytes_vocab_default(preset);
    else if (vocab_size && vocab_size != c->n_vocab) {
        fprintf(stderr, "ds4-synth: --vocab-size %u: the real vocabulary has %u tokens; add --vocab bytes for another size\n",
                vocab_size, c->n_vocab);
        return 2;
    }

    char demo_path[PATH_MAX];
    if (demo) {
        if (!out) {
            if (ds4_synth_demo_path(demo_path, sizeof demo_path, &err)) { fprintf(stderr, "ds4-synth: %s\n", err.msg); return 1; }
            out = demo_path;
        }
        if (!force && demo_is_cached(out)) { printf("%s\n", out); return 0; }
        if (mkdirs(out)) { fprintf(stderr, "ds4-synth: cannot create the directory of %s: %s\n", out, strerror(errno)); return 1; }
        if (!quiet) fprintf(stderr, "ds4-synth: generating the demo model (first use) at %s\n", out);
    }
    if (!out) { fprintf(stderr, "ds4-synth: -o FILE is required\n"); usage(stderr); return 2; }

    snprintf(part_path, sizeof part_path, "%s.part-%d", out, (int)getpid());
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    ds4_synth_stats st;
    if (ds4_synth_write(&o, out, &st, &err)) { fprintf(stderr, "ds4-synth: %s\n", err.msg); return 1; }
    if (!quiet) {
        const double data_s = st.seconds_data + st.seconds_sync;
        fprintf(stderr, "ds4-synth: wrote %s: %llu tensors, %llu bytes (%.2f GiB), tensor data %llu bytes%s\n", out,
                (unsigned long long)st.n_tensors, (unsigned long long)st.file_bytes,
                (double)st.file_bytes / (1024.0 * 1024 * 1024), (unsigned long long)st.tensor_bytes,
                o.sparse ? " (sparse: holes)" : "");
        if (!o.sparse)
            fprintf(stderr, "ds4-synth: header + check %.2f s, data %.2f s + fsync %.2f s = %.2f GB/s\n", st.seconds_header,
                    st.seconds_data, st.seconds_sync, data_s > 0 ? (double)st.tensor_bytes / data_s / 1e9 : 0.0);
    }
    if (demo) printf("%s\n", out);
    return 0;
}
