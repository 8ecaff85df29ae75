/* gguf_internal.h - pieces shared by the GGUF reader and writer, not public.
 *
 * The reader and the writer must agree byte for byte on what a valid encoded
 * value is (the writer re-checks values copied from a file, e.g. nested
 * arrays), so both walk values with the same bounded cursor defined here.
 * Every read goes through gg_need(), which is the one place that compares a
 * length with the bytes left; nothing else does pointer arithmetic on input. */
#ifndef DS4_GGUF_INTERNAL_H
#define DS4_GGUF_INTERNAL_H

#include "gguf/gguf.h"

/* A bounded little-endian cursor over untrusted bytes. `where` names the field
 * being read, so a failure deep inside a value still says which key it was. */
typedef struct gg_cur {
    const uint8_t *p;
    uint64_t size;
    uint64_t pos;
    const char *name; /* file name for messages */
    ds4_err *err;
    char where[320];
} gg_cur;

/* Bytes left after pos. */
static inline uint64_t gg_left(const gg_cur *c) { return c->size - c->pos; }

int gg_need(gg_cur *c, uint64_t n, const char *what);
int gg_u8(gg_cur *c, const char *what, uint8_t *out);
int gg_u32(gg_cur *c, const char *what, uint32_t *out);
int gg_u64(gg_cur *c, const char *what, uint64_t *out);
/* u64 length + bytes; the bytes stay in place. */
int gg_str(gg_cur *c, const char *what, gguf_str *out);

static inline uint16_t gg_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t gg_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t gg_le64(const uint8_t *p) { return (uint64_t)gg_le32(p) | (uint64_t)gg_le32(p + 4) << 32; }

/* Encoded size of a scalar type; 0 for STRING, ARRAY and unknown types. */
uint32_t gg_scalar_size(uint32_t t);
/* Smallest possible encoding of one value of type t (for count sanity checks). */
uint32_t gg_min_size(uint32_t t);

/* Reads and validates one value of type `type` at the cursor (depth: 0 for a
 * metadata value, +1 per enclosing array). Fills *out when non-NULL. */
int gg_read_value(gg_cur *c, uint32_t type, int depth, gguf_value *out);

/* Decodes a scalar from its encoding into out (type already checked). */
void gg_decode_scalar(uint32_t type, const uint8_t *p, gguf_value *out);

/* A name made safe for a one-line message: control characters, quotes and
 * backslashes (and every non-ASCII byte if s is not valid UTF-8) become \xNN;
 * long names are cut at a character boundary and end in "...". */
const char *gg_msg_name(char *dst, size_t cap, const char *s, uint64_t len);

/* Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF). */
int gg_utf8_valid(const char *s, uint64_t len);

/* Name rules shared by reader and writer: non-empty, valid UTF-8, no NUL.
 * `at` is the offset reported in the message. */
int gg_check_name(gg_cur *c, const char *what, gguf_str s, uint64_t at);
/* Checks type and dims of t (n_dims and ne[] set) and fills n_elements and
 * nbytes; refuses unknown types, zero or overflowing dims, partial blocks. */
int gg_check_tensor_shape(gg_cur *c, gguf_tensor *t);

/* What gguf_open / gguf_open_memory hand out: the public struct first, so a
 * gguf_file * is also a gg_file *, plus lookup indexes and the mapping. */
typedef struct gg_file {
    gguf_file pub;
    void *map;       /* non-NULL when gguf_open mapped the file */
    uint64_t map_len;
    const gguf_kv **kv_by_key;          /* sorted by key */
    const gguf_tensor **tensor_by_name; /* sorted by name */
} gg_file;

/* The one validating parser behind both open functions. */
gg_file *gg_parse(const uint8_t *buf, uint64_t size, const char *name, ds4_err *err);
/* Frees what gg_parse allocated (not the mapping). */
void gg_free(gg_file *g);

#endif
