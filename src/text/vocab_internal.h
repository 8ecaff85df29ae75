/* vocab_internal.h - the ds4_vocab layout shared by vocab.c (building),
 * bpe.c (encoding) and detok.c (decoding). Not for use outside src/text. */
#ifndef DS4_TEXT_VOCAB_INTERNAL_H
#define DS4_TEXT_VOCAB_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "text/tokenizer.h"

struct ds4_pretok;

/* Merge table entry: key = (left id << 32 | right id). */
typedef struct ds4_merge_slot {
    uint64_t key;
    int32_t rank;   /* -1 = empty slot */
    int32_t id;     /* id of the merged symbol */
} ds4_merge_slot;

struct ds4_vocab {
    size_t n;                 /* number of tokens */
    char *str_arena;          /* token strings, each NUL-terminated */
    uint32_t *str_off, *str_len;
    char *byte_arena;         /* decoded bytes of each token */
    uint32_t *byte_off, *byte_len;
    uint8_t *added;           /* 1 = literal added token */
    int32_t *map;             /* string -> id hash (open addressing, -1 empty) */
    uint32_t map_mask;
    ds4_merge_slot *merges;
    uint32_t merge_mask;
    size_t n_merges;
    int32_t byte_id[256];     /* id of the single-byte symbol B(b) */
    int32_t special[DS4_SP_COUNT];
    struct ds4_pretok *pre;   /* compiled pre-tokenizer */
    uint64_t serial;          /* unique per built vocab: keys the piece cache */
};

/* Merge lookup: rank or -1; *out_id gets the merged id. */
static inline int32_t ds4_merge_lookup(const struct ds4_vocab *v, int32_t a, int32_t b, int32_t *out_id) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    uint32_t i = (uint32_t)(h >> 40) & v->merge_mask;
    for (;;) {
        const ds4_merge_slot *s = &v->merges[i];
        if (s->rank < 0) return -1;
        if (s->key == key) { *out_id = s->id; return s->rank; }
        i = (i + 1) & v->merge_mask;
    }
}

/* GPT-2 byte alphabet (spec §1.5). */
uint32_t ds4_byte_to_cp(uint8_t b);
int ds4_cp_to_byte(uint32_t cp); /* -1 if cp is outside the alphabet */

/* Pre-tokenizer (pretok.c): compiled once per vocab. */
struct ds4_pretok *ds4_pretok_new(ds4_err *err);
void ds4_pretok_free(struct ds4_pretok *p);
/* Calls fn(ctx, piece, len) for every piece of s (spec §1.4), in order.
 * Returns -1 if matching failed in PCRE2 (never for valid input). */
typedef int (*ds4_piece_fn)(void *ctx, const char *piece, size_t len);
int ds4_pretok_split(const struct ds4_pretok *p, const char *s, size_t n, ds4_piece_fn fn, void *ctx, ds4_err *err);
/* ascii_fast = false forces PCRE2 for every step (tests compare the two). */
int ds4_pretok_split_ex(const struct ds4_pretok *p, const char *s, size_t n, ds4_piece_fn fn, void *ctx, ds4_err *err, bool ascii_fast);

#endif
