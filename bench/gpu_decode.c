/* gpu_decode.c - prefill and decode speed of an engine backend on a real
 * model file, decode shown against the card's bandwidth limit.
 *
 * Batch-1 decode reads every weight the token touches once (spec/model.md
 * §10): the non-routed tensors of every layer, 6 of the routed experts, the
 * output head and one embedding row. This bench counts those bytes from the
 * model's own tensor table, measures the device-to-device copy bandwidth in
 * the same run (bytes read + written per second, as vendors quote it), and
 * prints each decode figure as a fraction of the limit bandwidth / bytes.
 * Per-layer time is the decode time divided by the layer count (use it with a
 * reduced-depth `ds4-synth --layers N` model on an 80 GB card).
 *
 * usage: gpu_decode -m MODEL [--backend cuda|cpu] [--gpus LIST] [--ctx 2048,8192,...] [--gen N] [--exact]
 * Prompts are random token ids (the speed does not depend on them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine.h"
#include "engine/internal.h"
#ifdef DS4_HAVE_CUDA
#include "engine/cuda/ops.h"
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Weight bytes one decoded token reads (short context: indexer rows not counted). */
static uint64_t bytes_per_token(const ds4_model *m) {
    const ds4_config *c = &m->cfg;
    const ds4_weights *w = &m->w;
    uint64_t b = w->output.nbytes + w->out_hc_fn.nbytes + w->out_hc_scale.nbytes + w->out_hc_base.nbytes +
                 w->out_norm.nbytes + (uint64_t)c->n_embd * 2;
    for (uint32_t il = 0; il < c->n_layer; il++) {
        const ds4_layer_weights *L = &w->layer[il];
        const ds4_wt *dense[] = {&L->hc_attn_fn, &L->hc_attn_scale, &L->hc_attn_base, &L->attn_norm, &L->q_a,
                                 &L->q_a_norm, &L->q_b, &L->kv, &L->kv_norm, &L->sinks, &L->out_a, &L->out_b,
                                 &L->cmp_ape, &L->cmp_kv, &L->cmp_gate, &L->cmp_norm, &L->idx_q_b, &L->idx_proj,
                                 &L->icmp_ape, &L->icmp_kv, &L->icmp_gate, &L->icmp_norm, &L->hc_ffn_fn,
                                 &L->hc_ffn_scale, &L->hc_ffn_base, &L->ffn_norm, &L->gate_inp, &L->exp_bias,
                                 &L->gate_sh, &L->up_sh, &L->down_sh};
        for (size_t i = 0; i < sizeof dense / sizeof dense[0]; i++)
            if (dense[i]->data) b += dense[i]->nbytes;
        const ds4_wt *ex[] = {&L->gate_exps, &L->up_exps, &L->down_exps};
        for (int i = 0; i < 3; i++) b += ex[i]->nbytes / c->n_expert * c->n_expert_used;
    }
    return b;
}

int main(int argc, char **argv) {
    const char *path = NULL, *backend = "cuda", *ctxs = "2048,8192", *gpus = NULL;
    int gen = 16, exact = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "--backend") && i + 1 < argc) backend = argv[++i];
        else if (!strcmp(argv[i], "--gpus") && i + 1 < argc) gpus = argv[++i];
        else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) ctxs = argv[++i];
        else if (!strcmp(argv[i], "--gen") && i + 1 < argc) gen = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--exact")) exact = 1;
        else {
            fprintf(stderr, "usage: gpu_decode -m MODEL [--backend cuda|cpu] [--gpus LIST] [--ctx 2048,8192] [--gen N] [--exact]\n");
            return 2;
        }
    }
    if (!path || gen < 1) {
        fprintf(stderr, "gpu_decode: -m MODEL is required (and --gen >= 1)\n");
        return 2;
    }
    ds4_err err = {{0}};
    ds4_model_opts mo = {.backend = backend, .exact = exact ? 1 : -1, .gpus = gpus};
    double t0 = now(), t_pick = 0;
    long n_pick = 0;
    ds4_model *m = ds4_model_load(path, &mo, &err);
    if (!m) { fprintf(stderr, "gpu_decode: %s\n", err.msg); return 1; }
    const double t_load = now() - t0;
    const ds4_config *c = &m->cfg;
    const uint64_t bpt = bytes_per_token(m);
    double bw = 0;
    char card[128] = "cpu";
#ifdef DS4_HAVE_CUDA
    if (!strcmp(backend, "cuda")) {
        int sms;
        size_t mem;
        ds4cu_device_info(card, sizeof card, &sms, &mem);
        bw = ds4cu_d2d_bandwidth((size_t)1 << 30, 20);
    }
#endif
    printf("model %s: %u layers, width %u, vocab %u, %s weights; loaded in %.1f s\n", path, c->n_layer, c->n_embd,
           c->n_vocab, exact ? "exact-order F16" : "fast F16", t_load);
    if (gpus) printf("layers split across GPUs %s\n", gpus);
    printf("card %s, device-to-device copy %.0f GB/s (read+write); weights per decoded token %.3f GB -> limit %.1f tok/s\n",
           card, bw / 1e9, (double)bpt / 1e9, bw > 0 ? bw / (double)bpt : 0.0);
    printf("%8s %12s %12s %10s %12s %10s\n", "context", "prefill t/s", "decode t/s", "ms/token", "ms/layer", "of limit");
    uint64_t rng = 88172645463325252ull;
    for (const char *p = ctxs; *p;) {
        const int ctx = atoi(p);
        const char *comma = strchr(p, ',');
        p = comma ? comma + 1 : p + strlen(p);
        if (ctx < 1) continue;
        ds4_session *s = ds4_session_new(m, ctx + gen + 1, &err);
        if (!s) { fprintf(stderr, "gpu_decode: %s\n", err.msg); return 1; }
        if (getenv("DS4_BENCH_CHUNK")) ds4_session_set_chunk(s, atoi(getenv("DS4_BENCH_CHUNK"))); /* prefill chunk (default: the backend's, 1024 on CUDA) */
        int32_t *toks = malloc(sizeof(int32_t) * (size_t)ctx);
        for (int i = 0; i < ctx; i++) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            toks[i] = (int32_t)(rng % c->n_vocab);
        }
        t0 = now();
        if (ds4_session_sync(s, toks, ctx, NULL, NULL, NULL, &err)) { fprintf(stderr, "gpu_decode: %s\n", err.msg); return 1; }
        const double t_pre = now() - t0;
        int32_t next = ds4_argmax(ds4_session_logits(s), (int)c->n_vocab);
        if (ds4_session_eval(s, next, &err)) { fprintf(stderr, "gpu_decode: %s\n", err.msg); return 1; } /* warm-up */
#ifdef DS4_HAVE_CUDA
        /* DS4_CUDA_PROFILE=1: the table printed at exit covers decode only (or everything, prefills
         * included, with DS4_BENCH_PROFILE_ALL=1) */
        if (!getenv("DS4_BENCH_PROFILE_ALL")) ds4cu_prof_reset();
#endif
        t0 = now();
        for (int g = 0; g < gen - 1; g++) {
            const double ta = now();
            next = ds4_argmax(ds4_session_logits(s), (int)c->n_vocab);
            t_pick += now() - ta;
            n_pick++;
            if (ds4_session_eval(s, next, &err)) { fprintf(stderr, "gpu_decode: %s\n", err.msg); return 1; }
        }
        const double t_dec = (now() - t0) / (gen > 1 ? gen - 1 : 1);
        const double frac = bw > 0 ? ((double)bpt / bw) / t_dec : 0.0;
        printf("%8d %12.1f %12.2f %10.3f %12.4f %9.1f%%\n", ctx, ctx / t_pre, 1.0 / t_dec, 1e3 * t_dec,
               1e3 * t_dec / c->n_layer, 100.0 * frac);
        fflush(stdout);
        free(toks);
        ds4_session_free(s);
    }
    /* Part of every decoded token's time above: the host picking the token. */
    if (n_pick) printf("host greedy pick (argmax over %u logits): %.1f us per token\n", c->n_vocab, 1e6 * t_pick / n_pick);
    ds4_model_free(m);
    return 0;
}
