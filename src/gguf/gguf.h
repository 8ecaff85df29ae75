/* gguf.h - GGUF v3 container: strict reader over mmap, and a streaming writer.
 *
 * The reader maps the whole file read-only and validates everything before
 * handing out a pointer: header, every metadata value (all 13 value types,
 * nested arrays up to depth 8), every tensor info, alignment, and that each
 * tensor's bytes lie inside the file and do not overlap another tensor. All
 * size arithmetic is overflow-checked. A bad file gives one error line naming
 * the file, the field or tensor, the value and what was expected.
 *
 * Nothing here knows DeepSeek: model/ interprets keys and tensors. */
#ifndef DS4_GGUF_H
#define DS4_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ds4_err.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" */
#define GGUF_VERSION 3u
#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_DIMS 8
#define GGUF_MAX_ARRAY_DEPTH 8

typedef enum gguf_vtype {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5,
    GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_U64 = 10,
    GGUF_I64 = 11, GGUF_F64 = 12,
    GGUF_VTYPE_COUNT
} gguf_vtype;

/* A string inside the mapped file: not NUL-terminated. */
typedef struct gguf_str {
    const char *ptr;
    uint64_t len;
} gguf_str;

/* One metadata value. Scalars are decoded; strings point into the mapping;
 * arrays keep their element type, count and a pointer to the first encoded
 * element (use gguf_arr_* accessors). */
typedef struct gguf_value {
    gguf_vtype type;
    union {
        uint64_t u;   /* U8 U16 U32 U64 BOOL */
        int64_t i;    /* I8 I16 I32 I64 */
        double f;     /* F32 F64 */
        gguf_str s;   /* STRING */
        struct {
            gguf_vtype elem_type;
            uint64_t count;
            const uint8_t *data; /* encoded elements, little-endian */
            uint64_t nbytes;     /* encoded size of all elements */
        } arr;
    } v;
} gguf_value;

typedef struct gguf_kv {
    char *key;          /* NUL-terminated copy, valid UTF-8 */
    gguf_value value;
} gguf_kv;

typedef struct gguf_tensor {
    char *name;          /* NUL-terminated copy */
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] varies fastest; unused dims are 1 */
    uint32_t type;       /* ggml type id (quant/quant.h ds4_type) */
    uint64_t offset;     /* relative to the data section */
    uint64_t n_elements;
    uint64_t nbytes;
    const uint8_t *data; /* inside the mapping */
} gguf_tensor;

typedef struct gguf_file {
    char *path;
    const uint8_t *base; /* mapping */
    uint64_t size;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset; /* start of tensor data section */
    uint64_t n_kv;
    gguf_kv *kv;
    uint64_t n_tensors;
    gguf_tensor *tensors;
} gguf_file;

/* Open and fully validate. Returns NULL and fills err on any problem. */
gguf_file *gguf_open(const char *path, ds4_err *err);
/* Same validation over a caller-owned buffer (fuzzing, tests). The buffer must
 * outlive the returned object; `name` is used in error messages. */
gguf_file *gguf_open_memory(const void *buf, uint64_t size, const char *name, ds4_err *err);
void gguf_close(gguf_file *f);

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* Typed getters. Strict: the stored type must be one of the accepted ones, else
 * an error naming the key, its actual type and the expected one. A missing key
 * is an error too; use gguf_find_kv first for optional keys. */
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, ds4_err *err);      /* U32 only */
int gguf_get_u64ish(const gguf_file *f, const char *key, uint64_t *out, ds4_err *err);   /* U32 or U64 */
int gguf_get_f32ish(const gguf_file *f, const char *key, float *out, ds4_err *err);      /* F32, F64, U32, I32 */
int gguf_get_bool(const gguf_file *f, const char *key, bool *out, ds4_err *err);
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, ds4_err *err);
/* Array accessors: the key must hold an array; element type must be one listed. */
int gguf_get_arr(const gguf_file *f, const char *key, const gguf_value **out, ds4_err *err);
/* Element i of an array value as an integer / float / string. Fail on type mismatch. */
int gguf_arr_int(const gguf_value *arr, uint64_t i, int64_t *out);
int gguf_arr_float(const gguf_value *arr, uint64_t i, double *out);
/* Strings of an array of strings. Arrays of strings are variable-size, so this
 * walks from the start: use gguf_arr_strings() to get all at once (O(n)). */
int gguf_arr_strings(const gguf_value *arr, gguf_str *out /* count entries */);

const char *gguf_vtype_name(uint32_t t);

/* Added by the gguf module (not in the first interface draft): */
/* Reader policy where the spec leaves room, stricter than the reference
 * parser: key and tensor names must be non-empty UTF-8 without NUL;
 * general.alignment must be a u32 power of two; dims must be >= 1 with fewer
 * than 2^63 elements; tensor offsets must be multiples of the alignment
 * (typed loads from tensor data stay aligned). A file without tensors may
 * end before its padded data section. */
/* 1 if s is strict UTF-8 (string values are not checked at load time). */
int gguf_str_is_utf8(gguf_str s);
/* 1 if s equals the C string cstr. */
int gguf_str_eq(gguf_str s, const char *cstr);

/* ---- writer ----
 * Metadata and tensor infos are collected in memory; offsets are computed at
 * declare time (declaration order, each tensor aligned). The header bytes
 * (gguf_writer_header_bytes) are everything before the data section; each
 * tensor's bytes go at gguf_writer_tensor_file_offset (e.g. pwrite), so
 * tensors can be written in parallel. gguf_writer_write_header/_write_tensor
 * do exactly that on a file descriptor.
 * Metadata is written in the order it was added. The alignment given to
 * gguf_writer_new must match a general.alignment u32 key if one is added, and
 * be 32 (the default) if none is. A failed kv/tensor call returns -1 and
 * records a message (gguf_writer_error); header_bytes then refuses too. */
typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_new(uint32_t alignment);
void gguf_writer_free(gguf_writer *w);
int gguf_writer_kv_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_kv_u64(gguf_writer *w, const char *key, uint64_t v);
int gguf_writer_kv_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_writer_kv_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_kv_bool(gguf_writer *w, const char *key, bool v);
int gguf_writer_kv_str(gguf_writer *w, const char *key, const char *v);
/* Array of scalars: elem_type is a scalar gguf_vtype, data holds count encoded
 * little-endian elements of that type. */
int gguf_writer_kv_arr(gguf_writer *w, const char *key, gguf_vtype elem_type, const void *data, uint64_t count);
int gguf_writer_kv_arr_str(gguf_writer *w, const char *key, const char *const *strs, const uint64_t *lens, uint64_t count);
/* Declare a tensor; returns its index. nbytes is derived from type and dims. */
int gguf_writer_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne);
/* Total file size once everything is written. */
uint64_t gguf_writer_total_size(const gguf_writer *w);
uint64_t gguf_writer_tensor_nbytes(const gguf_writer *w, int idx);
uint64_t gguf_writer_tensor_file_offset(const gguf_writer *w, int idx); /* absolute */
/* Serialized header+metadata+tensor infos+padding, i.e. the bytes before the
 * data section. Caller frees *out. */
int gguf_writer_header_bytes(const gguf_writer *w, uint8_t **out, uint64_t *len, ds4_err *err);

/* Added by the gguf module: */
int gguf_writer_kv_u8(gguf_writer *w, const char *key, uint8_t v);
int gguf_writer_kv_i8(gguf_writer *w, const char *key, int8_t v);
int gguf_writer_kv_u16(gguf_writer *w, const char *key, uint16_t v);
int gguf_writer_kv_i16(gguf_writer *w, const char *key, int16_t v);
int gguf_writer_kv_i64(gguf_writer *w, const char *key, int64_t v);
int gguf_writer_kv_f64(gguf_writer *w, const char *key, double v);
/* Any value as the reader returns it (scalars re-encoded, strings and arrays
 * copied from their encoding, which is re-validated: nested arrays included).
 * This is how a file's metadata is copied into a new file. */
int gguf_writer_kv_value(gguf_writer *w, const char *key, const gguf_value *v);
int gguf_writer_n_tensors(const gguf_writer *w);
/* First error recorded by a kv/tensor call, or NULL. */
const char *gguf_writer_error(const gguf_writer *w);
/* Writes the header bytes at offset 0 of fd and sizes the file to
 * gguf_writer_total_size (so all padding reads as zeros). */
int gguf_writer_write_header(const gguf_writer *w, int fd, ds4_err *err);
/* pwrite()s tensor idx's gguf_writer_tensor_nbytes bytes at its offset;
 * safe to call from several threads for different tensors. */
int gguf_writer_write_tensor(const gguf_writer *w, int fd, int idx, const void *data, ds4_err *err);

#endif
