/* synth.h - ds4-synth: synthetic DeepSeek V4 Flash GGUFs of any shape.
 *
 * The real weights cannot be fetched in CI, so tests and benchmarks run on
 * files written here. They are the real format exactly: the tensor list comes
 * from model/layout.h (the same table the engine binds against) and the
 * metadata follows tests/data/oracle/README.md key for key, type for type.
 * Only the values are synthetic: random, deterministic from the seed, and
 * scaled so activations stay finite and varied through every layer.
 *
 * The pieces: shape presets (shape.c), token tables (vocab_*.c), metadata
 * (meta.c), per-tensor value generators (gen.c) and the parallel writer with
 * its progress line (write.c). */
#ifndef DS4_SYNTH_H
#define DS4_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "common/ds4_err.h"
#include "model/config.h"

typedef enum ds4_synth_vocab { DS4_SYNTH_VOCAB_DEEPSEEK = 0, DS4_SYNTH_VOCAB_BYTES = 1 } ds4_synth_vocab;
typedef enum ds4_synth_recipe { DS4_SYNTH_Q2 = 0, DS4_SYNTH_Q4 = 1 } ds4_synth_recipe;

typedef struct ds4_synth_opts {
    ds4_config shape;          /* shape constants + per-layer ratios/clamps; name = general.name */
    ds4_synth_recipe recipe;
    ds4_synth_vocab vocab;
    const char *tokenizer_json; /* --vocab deepseek source; NULL = search (ds4_synth_find_tokenizer) */
    uint64_t seed;
    bool sparse;               /* header only, tensor data left as holes */
    bool expert_group_keys;    /* also write expert_group_count/_used_count = 0 (tiny-b style) */
    int n_threads;             /* 0 = all cores */
    int progress;              /* 1 = progress line on stderr, 0 = none */
} ds4_synth_opts;

/* Presets. "full": the real model (43 layers, width 4096). "tiny": width 256,
 * 6 layers, every feature (hash and learned routing, ratios 4 and 128, an
 * indexer whose top-k is exceeded after 36 tokens, a 32-token window, HC).
 * "demo": the tiny shape with the real window (128) and top-k 64 (the README's
 * demo model). Fills o with the preset and the defaults (seed 1, q2, deepseek
 * vocabulary of 129280 tokens; callers switching to --vocab bytes pick the
 * byte vocabulary's size, see ds4_synth_bytes_vocab_default). */
int ds4_synth_preset(const char *name, ds4_synth_opts *o, ds4_err *err);
/* Reduce depth to n layers keeping the real schedule of the first n layers
 * (ratios, hash layers = min(n, preset's)). */
int ds4_synth_set_layers(ds4_synth_opts *o, uint32_t n, ds4_err *err);
/* The default schedule for layer il: 0 for il < 2, then 4 on even, 128 on odd. */
uint32_t ds4_synth_default_ratio(uint32_t il);
/* Default --vocab bytes size for a preset: 129280 for full (the real shape,
 * padded with placeholders), 512 for tiny and demo (249 real merges). */
uint32_t ds4_synth_bytes_vocab_default(const char *preset);

/* The routed type of a tensor of the layout under the recipe. */
uint32_t ds4_synth_routed_type(ds4_synth_recipe r, const char *name);

/* Sum of tensor bytes (the data section without alignment padding) for a
 * shape and recipe, computed from the layout alone. */
uint64_t ds4_synth_tensor_bytes(const ds4_synth_opts *o);

/* Result of a write. */
typedef struct ds4_synth_stats {
    uint64_t file_bytes, tensor_bytes, n_tensors;
    double seconds_header, seconds_data, seconds_sync; /* wall time of each phase */
} ds4_synth_stats;

/* Write the model to path (through path.part-PID, renamed at the end; the file is
 * checked by the engine's loader before any tensor data is written). */
int ds4_synth_write(const ds4_synth_opts *o, const char *path, ds4_synth_stats *st, ds4_err *err);

/* Where --vocab deepseek finds tokenizer.json when none is given:
 * $DS4_TOKENIZER_JSON, then tests/data/tokenizer/tokenizer.json next to the
 * executable or one or two levels above it, then ../share/ds4/tokenizer.json
 * beside the executable, then the same under the current directory. Returns a
 * malloc'd path or NULL (err lists where it looked). */
char *ds4_synth_find_tokenizer(ds4_err *err);

/* Default cache path of the demo model: $DS4_CACHE_DIR/demo.gguf, else
 * $XDG_CACHE_HOME/ds4/demo.gguf, else $HOME/.cache/ds4/demo.gguf. */
int ds4_synth_demo_path(char *buf, size_t len, ds4_err *err);

#endif
