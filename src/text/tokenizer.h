/* tokenizer.h - DeepSeek V4 byte-level BPE: vocabulary, encode, decode, and the
 * streaming UTF-8-safe detokenizer (spec/text.md §1).
 *
 * A ds4_vocab is immutable once built and may be shared by any number of
 * threads: encode/decode take it as const and keep all scratch state on the
 * caller's side (plus a bounded per-thread cache of piece -> ids, ~12 MB per
 * encoding thread, keyed by the vocabulary so a rebuilt one never sees stale
 * entries). It is built from
 *   - a GGUF (`tokenizer.ggml.tokens`, `tokenizer.ggml.merges`, optional
 *     `tokenizer.ggml.token_type`), the way the engine loads a model;
 *   - a Hugging Face tokenizer.json (tests, ds4-synth), extended to the V4
 *     table of spec §4 (ds4_v4_tokens_from_hf_json);
 *   - plain string arrays (ds4_vocab_new), e.g. a synthetic model's tables.
 * The seven protocol specials (§1.2) are always looked up by string; a
 * vocabulary lacking any of them is refused. */
#ifndef DS4_TEXT_TOKENIZER_H
#define DS4_TEXT_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ds4_err.h"
#include "gguf/gguf.h"
#include "text/sbuf.h"

/* The protocol specials, in the order encode_rendered tests them (§1.7). */
typedef enum ds4_special {
    DS4_SP_BOS = 0,       /* <｜begin▁of▁sentence｜> */
    DS4_SP_EOS,           /* <｜end▁of▁sentence｜> */
    DS4_SP_USER,          /* <｜User｜> */
    DS4_SP_ASSISTANT,     /* <｜Assistant｜> */
    DS4_SP_THINK,         /* <think> */
    DS4_SP_THINK_END,     /* </think> */
    DS4_SP_DSML,          /* ｜DSML｜ */
    DS4_SP_COUNT
} ds4_special;

/* The literal UTF-8 spelling of a special (NUL-terminated, static). */
const char *ds4_special_str(ds4_special s);

typedef struct ds4_vocab ds4_vocab;

/* A growable id list. Zero it to start; encoders APPEND to it, so a cached
 * token history can be extended with the tokens of new bytes only (§1.7). */
typedef struct ds4_tokens {
    int32_t *ids;
    size_t n, cap;
} ds4_tokens;
void ds4_tokens_push(ds4_tokens *t, int32_t id);
void ds4_tokens_free(ds4_tokens *t);

/* GGUF token types (llama.cpp): used to tell added tokens from BPE tokens. */
enum { DS4_TOKTYPE_NORMAL = 1, DS4_TOKTYPE_UNKNOWN = 2, DS4_TOKTYPE_CONTROL = 3,
       DS4_TOKTYPE_USER_DEFINED = 4, DS4_TOKTYPE_UNUSED = 5, DS4_TOKTYPE_BYTE = 6 };

/* Build from string tables. tokens[i] is id i (lens may be NULL for
 * NUL-terminated strings); merges are "LEFT RIGHT", rank = index; types may be
 * NULL (then a token is "added" iff it has a char outside the byte alphabet). */
ds4_vocab *ds4_vocab_new(const char *const *tokens, const uint64_t *token_lens, size_t n_tokens,
                         const char *const *merges, const uint64_t *merge_lens, size_t n_merges,
                         const int32_t *types, ds4_err *err);
/* From a validated GGUF; errors name the file and the key. */
ds4_vocab *ds4_vocab_from_gguf(const gguf_file *f, ds4_err *err);
/* From a Hugging Face tokenizer.json, extended to the full V4 table. */
ds4_vocab *ds4_vocab_from_hf_json(const char *path, ds4_err *err);
void ds4_vocab_free(ds4_vocab *v);

size_t ds4_vocab_size(const ds4_vocab *v);
size_t ds4_vocab_n_merges(const ds4_vocab *v);
int32_t ds4_vocab_special(const ds4_vocab *v, ds4_special s);
/* Id of an exact token string, or -1. */
int32_t ds4_vocab_find(const ds4_vocab *v, const char *s, size_t len);
/* The stored token string (byte-level alphabet for BPE tokens). */
const char *ds4_vocab_token_str(const ds4_vocab *v, int32_t id, size_t *len);

/* The V4 Flash token table derived from the V3 tokenizer.json (spec §4):
 * ids 0..127999 from model.vocab (byte-level spelling), the 818 V3 added
 * tokens (literal), then ids 128815..129279 with the known V4 specials
 * (<think> 128821, </think> 128822, ｜DSML｜ 128825, ...) and unique
 * placeholders "<｜place▁holder▁no▁N｜>" (N = id - 128000) for the rest.
 * This is what ds4-synth writes into a full-vocabulary GGUF. */
#define DS4_V4_VOCAB_SIZE 129280
typedef struct ds4_token_table {
    size_t n_tokens;
    char **tokens;         /* NUL-terminated */
    uint64_t *token_lens;
    int32_t *types;        /* DS4_TOKTYPE_* */
    size_t n_merges;
    char **merges;         /* "LEFT RIGHT" */
    uint64_t *merge_lens;
} ds4_token_table;
int ds4_v4_tokens_from_hf_json(const char *path, ds4_token_table *out, ds4_err *err);
void ds4_token_table_free(ds4_token_table *t);

/* encode_text (§1.3): no specials recognized, no BOS. Any byte string is
 * accepted: invalid UTF-8 bytes are pre-tokenized as unmatched characters and
 * still byte-encoded, so decode(encode(s)) == s for every input. */
int ds4_encode_text(const ds4_vocab *v, const char *s, size_t n, ds4_tokens *out, ds4_err *err);
/* encode_rendered (§1.7): the seven specials become their ids, the spans
 * between them go through encode_text. No BOS is added (the rendered prompt
 * starts with the BOS string). */
int ds4_encode_rendered(const ds4_vocab *v, const char *s, size_t n, ds4_tokens *out, ds4_err *err);

/* Bytes of one token (§1.8), appended to out. Ids out of range add nothing and
 * return -1. */
int ds4_token_bytes(const ds4_vocab *v, int32_t id, ds4_sbuf *out);
/* Concatenated bytes of ids. Returns -1 (after decoding the rest) if an id was
 * out of range. */
int ds4_decode(const ds4_vocab *v, const int32_t *ids, size_t n, ds4_sbuf *out);

/* Streaming detokenizer: feed ids, get bytes that never end inside a UTF-8
 * sequence (§1.8 hold-back rule); ds4_detok_flush releases the withheld tail
 * (end of generation). The decoder only holds bytes; it does not know about
 * stop strings or DSML (see stream_parse.h). */
typedef struct ds4_detok {
    const ds4_vocab *v;
    ds4_sbuf pend;     /* withheld bytes (at most 3) */
} ds4_detok;
void ds4_detok_init(ds4_detok *d, const ds4_vocab *v);
/* Appends the releasable bytes of token `id` to out. */
int ds4_detok_push(ds4_detok *d, int32_t id, ds4_sbuf *out);
void ds4_detok_flush(ds4_detok *d, ds4_sbuf *out);
void ds4_detok_free(ds4_detok *d);

/* How many trailing bytes of buf[0..n) must be withheld because they may be
 * the start of an incomplete UTF-8 sequence (0..3; §1.8). */
size_t ds4_utf8_holdback(const char *buf, size_t n);

#endif
