/* build.c - ds4-steer build: capture the hook activations of every prompt,
 * average per prompt then per set, take good − bad per layer, remove the
 * component along the normalised contrast mean (unless asked not to), and
 * normalise each layer's vector. Also writes the .f32 and its .json. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "steer/steer.h"

typedef struct cap {
    int component, L, E;
    double *sum;   /* L × E, current prompt */
    long count;    /* tokens of the current prompt */
} cap;

static void on_capture(void *ud, int layer, int component, int pos, const float *vec, int n) {
    cap *c = ud;
    (void)pos;
    if (component != c->component) return;
    double *s = c->sum + (size_t)layer * c->E;
    for (int i = 0; i < n; i++) s[i] += vec[i];
    if (layer == 0) c->count++;
}

/* mean over prompts of (mean over the prompt's tokens) -> out (L × E). */
static int set_mean(ds4_model *m, const ds4_vocab *v, const ds4_prompts *p, const ds4_steer_build_opts *o,
                    double *out, long *tokens, ds4_err *err) {
    const int L = ds4_model_n_layer(m), E = ds4_model_n_embd(m);
    cap c = {o->component, L, E, calloc((size_t)L * E, sizeof(double)), 0};
    ds4_session *s = ds4_session_new(m, o->ctx > 0 ? o->ctx : 4096, err);
    if (!s || !c.sum) { free(c.sum); ds4_session_free(s); return -1; }
    ds4_session_set_capture(s, on_capture, &c);
    memset(out, 0, sizeof(double) * (size_t)L * E);
    *tokens = 0;
    int rc = 0;
    for (int i = 0; i < p->n && rc == 0; i++) {
        ds4_tokens t = {0};
        if ((rc = ds4_steer_prompt_tokens(v, p->items[i], &t, err))) break;
        memset(c.sum, 0, sizeof(double) * (size_t)L * E);
        c.count = 0;
        /* Every prompt from an empty session: a reused chat prefix would
         * otherwise go uncaptured. */
        ds4_session_sync(s, NULL, 0, NULL, NULL, NULL, err);
        rc = ds4_session_sync(s, t.ids, (int)t.n, NULL, NULL, NULL, err);
        ds4_tokens_free(&t);
        if (rc) break;
        if (c.count == 0) continue;
        for (size_t k = 0; k < (size_t)L * E; k++) out[k] += c.sum[k] / (double)c.count;
        *tokens += c.count;
    }
    if (rc == 0)
        for (size_t k = 0; k < (size_t)L * E; k++) out[k] /= p->n;
    ds4_session_free(s);
    free(c.sum);
    return rc;
}

int ds4_steer_build(ds4_model *m, const ds4_vocab *v, const ds4_prompts *good, const ds4_prompts *bad,
                    const ds4_steer_build_opts *o, float *dir, ds4_steer_build_info *info, ds4_err *err) {
    const int L = ds4_model_n_layer(m), E = ds4_model_n_embd(m);
    double *mg = malloc(sizeof(double) * (size_t)L * E), *mb = malloc(sizeof(double) * (size_t)L * E);
    int rc = (!mg || !mb) ? ds4_errf(err, "out of memory") : 0;
    if (rc == 0) rc = set_mean(m, v, good, o, mg, &info->good_tokens, err);
    if (rc == 0) rc = set_mean(m, v, bad, o, mb, &info->bad_tokens, err);
    info->n_good = good->n;
    info->n_bad = bad->n;
    if (rc == 0) info->raw_norm = calloc((size_t)L, sizeof(double));
    double *d = malloc(sizeof(double) * (size_t)E);
    if (rc == 0 && !d) rc = ds4_errf(err, "out of memory");
    for (int l = 0; rc == 0 && l < L; l++) {
        const double *g = mg + (size_t)l * E, *b = mb + (size_t)l * E;
        for (int i = 0; i < E; i++) d[i] = g[i] - b[i];
        if (!o->keep_contrast_mean) {
            double bn = 0, proj = 0;
            for (int i = 0; i < E; i++) bn += b[i] * b[i];
            bn = sqrt(bn);
            if (bn > 0) {
                for (int i = 0; i < E; i++) proj += d[i] * b[i] / bn;
                for (int i = 0; i < E; i++) d[i] -= proj * b[i] / bn;
            }
        }
        double n = 0;
        for (int i = 0; i < E; i++) n += d[i] * d[i];
        n = sqrt(n);
        info->raw_norm[l] = n;
        if (!(n > 0) || !isfinite(n)) {
            rc = ds4_errf(err, "layer %d: the two prompt sets give the same mean activation; expected contrasting sets", l);
            break;
        }
        for (int i = 0; i < E; i++) dir[(size_t)l * E + i] = (float)(d[i] / n);
    }
    free(d);
    free(mg);
    free(mb);
    return rc;
}

int ds4_steer_write(const char *f32_path, const ds4_model *m, const float *dir, const ds4_prompts *good,
                    const ds4_prompts *bad, const ds4_steer_build_opts *o, const ds4_steer_build_info *info,
                    ds4_err *err) {
    const int L = ds4_model_n_layer(m), E = ds4_model_n_embd(m);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", f32_path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return ds4_errf(err, "%s: cannot create", tmp);
    int ok = fwrite(dir, sizeof(float), (size_t)L * E, f) == (size_t)L * E;
    if (fclose(f) != 0 || !ok || rename(tmp, f32_path) != 0) {
        remove(tmp);
        return ds4_errf(err, "%s: write failed", f32_path);
    }
    char jpath[4096];
    snprintf(jpath, sizeof jpath, "%.*s.json",
             (int)(strlen(f32_path) > 4 && !strcmp(f32_path + strlen(f32_path) - 4, ".f32") ? strlen(f32_path) - 4
                                                                                            : strlen(f32_path)),
             f32_path);
    char gh[40], bh[40];
    snprintf(gh, sizeof gh, "%016llx%016llx", (unsigned long long)good->hash_hi, (unsigned long long)good->hash_lo);
    snprintf(bh, sizeof bh, "%016llx%016llx", (unsigned long long)bad->hash_hi, (unsigned long long)bad->hash_lo);
    json_t *norms = json_array();
    for (int l = 0; l < L; l++) json_array_append_new(norms, json_real(info->raw_norm[l]));
    json_t *j = json_pack("{s:s,s:s,s:s,s:i,s:i,s:s,s:b,s:{s:s,s:i,s:I},s:{s:s,s:i,s:I},s:o,s:I}",
                          "format", "ds4-steering-vector", "model_name", ds4_model_name(m), "model_identity",
                          ds4_model_identity(m), "n_layer", L, "n_embd", E, "component",
                          o->component == DS4_CAPTURE_ATTN_OUT ? "attn_out" : "ffn_out", "contrast_mean_removed",
                          !o->keep_contrast_mean, "good", "prompts_xxh128", gh, "prompts", info->n_good, "tokens",
                          (json_int_t)info->good_tokens, "bad", "prompts_xxh128", bh, "prompts", info->n_bad,
                          "tokens", (json_int_t)info->bad_tokens, "raw_norm_per_layer", norms, "created_unix",
                          (json_int_t)time(NULL));
    int rc = json_dump_file(j, jpath, JSON_INDENT(2)) ? ds4_errf(err, "%s: write failed", jpath) : 0;
    json_decref(j);
    return rc;
}
