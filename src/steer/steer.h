/* steer.h - building and trying directional-steering vectors (spec/model.md
 * §6): capture sub-layer outputs over two contrasting prompt sets, average,
 * subtract, normalise per layer; then sweep scales and measure the effect.
 * Used by the ds4-steer command and its tests. */
#ifndef DS4_STEER_H
#define DS4_STEER_H

#include <stdint.h>

#include "engine/engine.h"
#include "text/tokenizer.h"

/* Prompt list from a text file: one prompt per line; blank lines and lines
 * starting with '#' are skipped. */
typedef struct ds4_prompts {
    char **items;
    int n;
    uint64_t hash_lo, hash_hi; /* XXH3-128 of the file's bytes */
} ds4_prompts;

int ds4_prompts_read(const char *path, ds4_prompts *out, ds4_err *err);
void ds4_prompts_free(ds4_prompts *p);

/* Chat-render a single user prompt (no thinking) and tokenize it. */
int ds4_steer_prompt_tokens(const ds4_vocab *v, const char *prompt, ds4_tokens *out, ds4_err *err);

typedef struct ds4_steer_build_opts {
    int component;              /* DS4_CAPTURE_FFN_OUT (default) or DS4_CAPTURE_ATTN_OUT */
    int keep_contrast_mean;     /* 1: do not remove the component along the contrast mean */
    int ctx;                    /* session context (default 4096) */
} ds4_steer_build_opts;

typedef struct ds4_steer_build_info {
    int n_good, n_bad;
    long good_tokens, bad_tokens;
    double *raw_norm;           /* per layer: |mean(good) − mean(bad)| before normalising */
} ds4_steer_build_info;

/* Fills dir (n_layer × n_embd, unit rows): direction = mean(good) − mean(bad),
 * each prompt weighted equally (its tokens averaged first). A negative scale
 * then amplifies what the good set has and the bad set lacks. */
int ds4_steer_build(ds4_model *m, const ds4_vocab *v, const ds4_prompts *good, const ds4_prompts *bad,
                    const ds4_steer_build_opts *o, float *dir, ds4_steer_build_info *info, ds4_err *err);

/* Writes NAME.f32 (raw floats) and NAME.json (provenance) next to each other. */
int ds4_steer_write(const char *f32_path, const ds4_model *m, const float *dir, const ds4_prompts *good,
                    const ds4_prompts *bad, const ds4_steer_build_opts *o, const ds4_steer_build_info *info,
                    ds4_err *err);

typedef struct ds4_sweep_row {
    float scale;
    double tokens, words, repetition; /* averages over prompts */
    int eos_stops;
} ds4_sweep_row;

/* Greedy generation of up to max_tokens for each prompt at each scale; the
 * model must have its steering file loaded. `show` prints each text. */
int ds4_steer_sweep(ds4_model *m, const ds4_vocab *v, const ds4_prompts *prompts, const float *scales, int n_scales,
                    int component, int max_tokens, int show, ds4_sweep_row *rows, ds4_err *err);

#endif
