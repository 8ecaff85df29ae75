/* config.c - ds4-server flag parsing and usage text (spec/server.md §2).
 *
 * A table drives both parsing and --help, so the help can never drift from
 * what is accepted. Values are range-checked here (bad value => exit 2 in the
 * caller); checks that span several flags live in ds4s_config_validate. */
#include "server/config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_STR, K_INT0, K_INT1, K_PORT, K_F, K_FLAG, K_BACKEND_FIXED, K_THINK, K_MB };

typedef struct flag {
    const char *l1, *l2, *l3;   /* spellings */
    enum kind kind;
    size_t off;                 /* offset of the target field */
    double lo, hi;              /* float range */
    const char *fixed;          /* K_BACKEND_FIXED value */
    const char *arg, *help;
} flag;

#define OFF(f) offsetof(ds4s_config, f)

static const flag flags[] = {
    {"-m", "--model", NULL, K_STR, OFF(model), 0, 0, NULL, "FILE", "model GGUF (default ds4flash.gguf)"},
    {"--mtp", NULL, NULL, K_STR, OFF(mtp), 0, 0, NULL, "FILE", "MTP draft GGUF (accepted; speculative decoding not implemented yet)"},
    {"--mtp-draft", NULL, NULL, K_INT1, OFF(mtp_draft), 0, 0, NULL, "N", "max draft tokens per speculative step (default 1)"},
    {"--mtp-margin", NULL, NULL, K_F, OFF(mtp_margin), 0, 1000, NULL, "F", "MTP verifier confidence gate, 0..1000 (default 3)"},
    {"-c", "--ctx", NULL, K_INT1, OFF(ctx), 0, 0, NULL, "N", "context size in tokens (default 32768); prompts must be shorter"},
    {"-n", "--tokens", NULL, K_INT1, OFF(tokens), 0, 0, NULL, "N", "default max output tokens (default 393216), clamped to free context"},
    {"-t", "--threads", NULL, K_INT1, OFF(threads), 0, 0, NULL, "N", "CPU threads (default: all cores)"},
    {"--chdir", NULL, NULL, K_STR, OFF(chdir_to), 0, 0, NULL, "DIR", "chdir to DIR before loading"},
    {"--quality", NULL, NULL, K_FLAG, OFF(quality), 0, 0, NULL, NULL, "exact reference-order kernels (CUDA otherwise uses faster ones)"},
    {"--dir-steering-file", NULL, NULL, K_STR, OFF(steer_file), 0, 0, NULL, "FILE", "directional steering vectors (n_layer x n_embd f32)"},
    {"--dir-steering-ffn", NULL, NULL, K_F, OFF(steer_ffn), -100, 100, NULL, "F", "steering scale after FFN outputs, -100..100 (default 1 with a file, else 0)"},
    {"--dir-steering-attn", NULL, NULL, K_F, OFF(steer_attn), -100, 100, NULL, "F", "steering scale after attention outputs, -100..100 (default 0)"},
    {"--dir-steering-policy", NULL, NULL, K_STR, OFF(steer_policy), 0, 0, NULL, "MODE", "always|decoding|final-answer|off (accepted; steering applies always)"},
    {"--warm-weights", NULL, NULL, K_FLAG, OFF(warm_weights), 0, 0, NULL, NULL, "touch mapped weight pages before serving"},
    {"--backend", NULL, NULL, K_STR, OFF(backend), 0, 0, NULL, "NAME", "cpu|cuda|metal (default: fastest present)"},
    {"--cpu", NULL, NULL, K_BACKEND_FIXED, OFF(backend), 0, 0, "cpu", NULL, "same as --backend cpu"},
    {"--cuda", NULL, NULL, K_BACKEND_FIXED, OFF(backend), 0, 0, "cuda", NULL, "same as --backend cuda"},
    {"--gpus", NULL, NULL, K_STR, OFF(gpus), 0, 0, NULL, "LIST", "CUDA devices to split the layers across, e.g. 0,1 (default 0; implies cuda)"},
    {"--metal", NULL, NULL, K_BACKEND_FIXED, OFF(backend), 0, 0, "metal", NULL, "same as --backend metal (not built on this platform)"},
    {"--host", NULL, NULL, K_STR, OFF(host), 0, 0, NULL, "HOST", "bind address (default 127.0.0.1; localhost = 127.0.0.1)"},
    {"--port", NULL, NULL, K_PORT, OFF(port), 0, 0, NULL, "N", "TCP port (default 8000; 0 = any free port, printed at startup)"},
    {"--cors", NULL, NULL, K_FLAG, OFF(cors), 0, 0, NULL, NULL, "send Access-Control-Allow-* headers"},
    {"--trace", NULL, NULL, K_STR, OFF(trace), 0, 0, NULL, "FILE", "human-readable per-request trace file"},
    {"--api-key", NULL, NULL, K_STR, OFF(api_key), 0, 0, NULL, "KEY", "require Authorization: Bearer KEY or x-api-key: KEY (health and model list stay open)"},
    {"--insecure-public", NULL, NULL, K_FLAG, OFF(insecure_public), 0, 0, NULL, NULL, "allow a non-loopback bind without --api-key"},
    {"--think", NULL, NULL, K_THINK, OFF(think_default), 0, 0, NULL, "MODE", "default thinking mode none|high|max (default high)"},
    {"--alias", NULL, NULL, K_STR, OFF(alias), 0, 0, NULL, "NAME", "extra model id listed and answered by /v1/models/{id}"},
    {"--kv-disk-dir", NULL, NULL, K_STR, OFF(kv_disk_dir), 0, 0, NULL, "DIR", "enable the disk KV checkpoint cache in DIR (created if needed)"},
    {"--kv-disk-space-mb", NULL, NULL, K_INT1, OFF(kv_disk_space_mb), 0, 0, NULL, "N", "disk KV cache budget in MiB (default 4096)"},
    {"--kv-cache-min-tokens", NULL, NULL, K_INT1, OFF(kv_min_tokens), 0, 0, NULL, "N", "never save/load checkpoints shorter than N (default 512)"},
    {"--kv-cache-cold-max-tokens", NULL, NULL, K_INT0, OFF(kv_cold_max_tokens), 0, 0, NULL, "N", "cold checkpoint max length, 0 = off (default 30000)"},
    {"--kv-cache-continued-interval-tokens", NULL, NULL, K_INT0, OFF(kv_continued_interval), 0, 0, NULL, "N", "continued checkpoint interval, 0 = off (default 10000)"},
    {"--kv-cache-boundary-trim-tokens", NULL, NULL, K_INT0, OFF(kv_trim_tokens), 0, 0, NULL, "N", "tokens trimmed before a cold save (default 32)"},
    {"--kv-cache-boundary-align-tokens", NULL, NULL, K_INT0, OFF(kv_align_tokens), 0, 0, NULL, "N", "cold save alignment, 0 = off (default 2048)"},
    {"--kv-cache-reject-different-quant", NULL, NULL, K_FLAG, OFF(kv_reject_diff_quant), 0, 0, NULL, NULL, "refuse checkpoints of another expert quantization"},
    {"--disable-exact-dsml-tool-replay", NULL, NULL, K_FLAG, OFF(disable_exact_replay), 0, 0, NULL, NULL, "always re-render history tool calls canonically"},
    {"--tool-memory-max-ids", NULL, NULL, K_INT1, OFF(tool_memory_max_ids), 0, 0, NULL, "N", "tool ids kept for exact DSML replay (default 100000)"},
    {"-mt", "--mt", "--mpp", K_STR, OFF(mt_mode), 0, 0, NULL, "MODE", "Metal tensor policy auto|on|off (Metal only: ignored here)"},
    {"--max-body-mb", NULL, NULL, K_MB, OFF(max_body_bytes), 0, 0, NULL, "N", "request body limit in MiB (default 64)"},
    {"--max-connections", NULL, NULL, K_INT1, OFF(max_connections), 0, 0, NULL, "N", "concurrent connection limit (default 64)"},
    {"--request-timeout", NULL, NULL, K_INT1, OFF(request_timeout_s), 0, 0, NULL, "SEC", "idle connection timeout in seconds (default 600)"},
    {"--max-queue", NULL, NULL, K_INT1, OFF(max_queue), 0, 0, NULL, "N", "max generation jobs waiting for the worker, else 503 (default 64)"},
    {"--sse-ping-interval", NULL, NULL, K_F, OFF(ping_interval_s), 0.001, 3600, NULL, "SEC", "stream keepalive interval during prefill and silent phases (default 5)"},
    {"--test-script", NULL, NULL, K_STR, OFF(test_script), 0, 0, NULL, "FILE", "TEST ONLY: sampler emits FILE's scripted continuations (needs DS4_ALLOW_TEST_SCRIPT=1)"},
};

void ds4s_config_default(ds4s_config *c) {
    memset(c, 0, sizeof *c);
    c->model = "ds4flash.gguf";
    c->mtp_draft = 1;
    c->mtp_margin = 3;
    c->ctx = 32768;
    c->tokens = 393216;
    c->host = "127.0.0.1";
    c->port = 8000;
    c->kv_disk_space_mb = 4096;
    c->kv_min_tokens = 512;
    c->kv_cold_max_tokens = 30000;
    c->kv_continued_interval = 10000;
    c->kv_trim_tokens = 32;
    c->kv_align_tokens = 2048;
    c->tool_memory_max_ids = 100000;
    c->mt_mode = "auto";
    c->think_default = DS4S_THINK_HIGH;
    c->max_body_bytes = (size_t)64 << 20;
    c->max_connections = 64;
    c->request_timeout_s = 600;
    c->max_queue = 64;
    c->ping_interval_s = 5;
}

void ds4s_usage(FILE *out) {
    fprintf(out, "usage: ds4-server [FLAGS]\n\n"
                 "Serves DeepSeek V4 Flash over the OpenAI (chat, completions, responses) and\n"
                 "Anthropic Messages APIs on http://127.0.0.1:8000 by default.\n\nflags:\n");
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        const flag *f = &flags[i];
        char names[96];
        snprintf(names, sizeof names, "%s%s%s%s%s%s%s", f->l1, f->l2 ? ", " : "", f->l2 ? f->l2 : "",
                 f->l3 ? ", " : "", f->l3 ? f->l3 : "", f->arg ? " " : "", f->arg ? f->arg : "");
        fprintf(out, "  %-40s %s\n", names, f->help);
    }
    fprintf(out, "  %-40s %s\n", "-h, --help", "this text");
    fprintf(out, "\nper-request thinking: default high; Think Max only via reasoning_effort=max /\n"
                 "output_config.effort=max and only with --ctx >= 393216; non-thinking via\n"
                 "thinking={type:disabled}, think=false, reasoning_effort=none or model deepseek-chat.\n"
                 "Sampling defaults T=1, top_p=1, min_p=0.05, no top-k; client knobs are ignored in\n"
                 "thinking mode.\n");
}

static int parse_long(const char *s, long long lo, long long hi, long long *out) {
    if (!s || !*s) return -1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out) {
    if (!s || !*s) return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int is_flag(const flag *f, const char *a) {
    return !strcmp(a, f->l1) || (f->l2 && !strcmp(a, f->l2)) || (f->l3 && !strcmp(a, f->l3));
}

int ds4s_config_parse(ds4s_config *c, int argc, char **argv, ds4_err *err) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            ds4s_usage(stdout);
            return 1;
        }
        const flag *f = NULL;
        for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
            if (is_flag(&flags[k], a)) { f = &flags[k]; break; }
        if (!f) return ds4_errf(err, "ds4-server: unknown flag '%s'", a);
        char *field = (char *)c + f->off;
        if (f->kind == K_FLAG) { *(int *)field = 1; continue; }
        if (f->kind == K_BACKEND_FIXED) { *(const char **)field = f->fixed; continue; }
        if (i + 1 >= argc) return ds4_errf(err, "ds4-server: flag %s needs a value (%s)", a, f->arg);
        const char *v = argv[++i];
        long long n;
        switch (f->kind) {
        case K_STR:
            if (!*v) return ds4_errf(err, "ds4-server: %s: empty value, expected %s", a, f->arg);
            *(const char **)field = v;
            break;
        case K_INT0:
        case K_INT1:
            if (parse_long(v, f->kind == K_INT1 ? 1 : 0, INT_MAX, &n))
                return ds4_errf(err, "ds4-server: %s: value '%s' is not a %s decimal integer", a, v,
                                f->kind == K_INT1 ? "positive" : "non-negative");
            *(int *)field = (int)n;
            break;
        case K_PORT:
            if (parse_long(v, 0, 65535, &n))
                return ds4_errf(err, "ds4-server: %s: value '%s' is not a port number 0..65535", a, v);
            *(int *)field = (int)n;
            break;
        case K_MB:
            if (parse_long(v, 1, 1 << 20, &n))
                return ds4_errf(err, "ds4-server: %s: value '%s' is not a positive size in MiB", a, v);
            *(size_t *)field = (size_t)n << 20;
            break;
        case K_F: {
            double d;
            if (parse_double(v, f->lo, f->hi, &d))
                return ds4_errf(err, "ds4-server: %s: value '%s' is not a number in %g..%g", a, v, f->lo, f->hi);
            *(double *)field = d;
            if (f->off == OFF(steer_ffn)) c->steer_ffn_set = 1;
            if (f->off == OFF(steer_attn)) c->steer_attn_set = 1;
            break;
        }
        case K_THINK:
            if (!strcmp(v, "none")) c->think_default = DS4S_THINK_NONE;
            else if (!strcmp(v, "high")) c->think_default = DS4S_THINK_HIGH;
            else if (!strcmp(v, "max")) c->think_default = DS4S_THINK_MAX;
            else return ds4_errf(err, "ds4-server: %s: value '%s' is not one of none|high|max", a, v);
            break;
        default:
            break;
        }
        if (f->off == OFF(backend) && strcmp(v, "cpu") && strcmp(v, "cuda") && strcmp(v, "metal"))
            return ds4_errf(err, "ds4-server: --backend: value '%s' is not one of cpu|cuda|metal", v);
        if (f->off == OFF(mt_mode) && strcmp(v, "auto") && strcmp(v, "on") && strcmp(v, "off"))
            return ds4_errf(err, "ds4-server: %s: value '%s' is not one of auto|on|off", a, v);
        if (f->off == OFF(steer_policy)) {
            static const char *ok[] = {"always", "decoding", "decode", "final-answer", "final", "tool-safe", "off", "none"};
            int good = 0;
            for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) good |= !strcmp(v, ok[k]);
            if (!good) return ds4_errf(err, "ds4-server: %s: value '%s' is not one of always|decoding|final-answer|off", a, v);
        }
    }
    /* Steering: a file with neither scale given means "ffn 1" (§2.1). */
    if (c->steer_file && !c->steer_ffn_set && !c->steer_attn_set) c->steer_ffn = 1;
    if (!strcmp(c->host, "localhost")) c->host = "127.0.0.1";
    if (c->kv_cold_max_tokens != 0 && c->kv_cold_max_tokens < c->kv_min_tokens)
        return ds4_errf(err, "ds4-server: --kv-cache-cold-max-tokens %d must be 0 or >= --kv-cache-min-tokens %d",
                        c->kv_cold_max_tokens, c->kv_min_tokens);
    return 0;
}

int ds4s_host_is_loopback(const char *host) {
    if (!host) return 0;
    if (!strcmp(host, "localhost") || !strcmp(host, "::1")) return 1;
    return !strncmp(host, "127.", 4);
}

int ds4s_config_validate(const ds4s_config *c, ds4_err *err) {
    if (!ds4s_host_is_loopback(c->host) && !c->api_key && !c->insecure_public)
        return ds4_errf(err, "ds4-server: --host %s is not a loopback address; refusing to serve without "
                             "--api-key (or pass --insecure-public to accept the risk)", c->host);
    if (c->test_script) {
        const char *allow = getenv("DS4_ALLOW_TEST_SCRIPT");
        if (!allow || strcmp(allow, "1"))
            return ds4_errf(err, "ds4-server: --test-script %s is a test-only mode that replaces the model's "
                                 "choices with scripted text; refused unless DS4_ALLOW_TEST_SCRIPT=1 is set",
                            c->test_script);
    }
    if (c->backend && !strcmp(c->backend, "metal"))
        return ds4_errf(err, "ds4-server: --backend metal: this build has no Metal backend (use cpu or cuda)");
    return 0;
}
