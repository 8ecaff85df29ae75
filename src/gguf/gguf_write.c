/* gguf_write.c - the GGUF v3 writer.
 *
 * Metadata entries are encoded as they are added (one growing buffer, in
 * order), tensors are kept as infos with offsets assigned at declare time:
 * declaration order, each tensor starting on the alignment, each padded to it
 * (the layout gguf-py and GGML write). Because the header size is known after
 * the last declaration and nothing depends on tensor bytes, a synthesizer can
 * write the header once and pwrite tensors from many threads.
 *
 * Names and tensor shapes are checked with the reader's own rules
 * (gg_check_name, gg_check_tensor_shape), so the writer cannot produce a file
 * the reader refuses. The first failure is kept and makes header_bytes fail,
 * so a caller that forgets one return code still cannot write a bad file. */
#include "gguf/gguf_internal.h"
#include "quant/quant.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct wtensor {
    gguf_tensor t; /* name owned; data unused */
} wtensor;

struct gguf_writer {
    uint32_t alignment;
    uint8_t *kv;
    uint64_t kv_len, kv_cap;
    char **keys;
    uint64_t n_kv, keys_cap;
    bool has_align_key;
    gguf_vtype align_key_type;
    uint64_t align_key_val;
    wtensor *t;
    uint64_t n_t, t_cap;
    uint64_t infos_len; /* encoded tensor infos */
    uint64_t data_len;  /* data section size, padded */
    bool failed;
    char err[sizeof(((ds4_err *)0)->msg)];
};

static int fail(gguf_writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(gguf_writer *w, const char *fmt, ...) {
    if (!w->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->err, sizeof w->err, fmt, ap);
        va_end(ap);
        w->failed = true;
    }
    return -1;
}

static int fail_err(gguf_writer *w, const ds4_err *e) { return fail(w, "%s", e->msg); }

gguf_writer *gguf_writer_new(uint32_t alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) return NULL;
    gguf_writer *w = calloc(1, sizeof *w);
    if (w) w->alignment = alignment;
    return w;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (uint64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    for (uint64_t i = 0; i < w->n_t; i++) free(w->t[i].t.name);
    free(w->keys);
    free(w->t);
    free(w->kv);
    free(w);
}

const char *gguf_writer_error(const gguf_writer *w) { return w && w->failed ? w->err : NULL; }
int gguf_writer_n_tensors(const gguf_writer *w) { return (int)w->n_t; }

static int reserve(void **p, uint64_t *cap, uint64_t need, size_t elsz) {
    if (need <= *cap) return 0;
    uint64_t nc = *cap ? *cap : 64;
    while (nc < need) {
        if (nc > UINT64_MAX / 2) return -1;
        nc *= 2;
    }
    if (nc > SIZE_MAX / elsz) return -1;
    void *q = realloc(*p, (size_t)(nc * elsz));
    if (!q) return -1;
    *p = q;
    *cap = nc;
    return 0;
}

static int put(gguf_writer *w, const void *b, uint64_t n) {
    if (n > UINT64_MAX - w->kv_len || reserve((void **)&w->kv, &w->kv_cap, w->kv_len + n, 1))
        return fail(w, "gguf writer: metadata: %" PRIu64 " more bytes: out of memory", n);
    if (n) memcpy(w->kv + w->kv_len, b, (size_t)n);
    w->kv_len += n;
    return 0;
}
static int put32(gguf_writer *w, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return put(w, b, 4);
}
static int put64(gguf_writer *w, uint64_t v) { return put32(w, (uint32_t)v) || put32(w, (uint32_t)(v >> 32)); }

/* Checks the key, then writes "key, type"; the caller appends the value. A
 * failure half-way leaves a partial entry, which is harmless: the writer is
 * then failed for good and never emits a header. */
static int begin_kv(gguf_writer *w, const char *key, gguf_vtype type) {
    ds4_err e;
    gg_cur c = {.name = "gguf writer", .err = &e};
    snprintf(c.where, sizeof c.where, "kv[%" PRIu64 "]", w->n_kv);
    if (!key) return fail(w, "gguf writer: kv[%" PRIu64 "] key: NULL: expected a name", w->n_kv);
    gguf_str k = {key, strlen(key)};
    if (gg_check_name(&c, "key", k, 0)) return fail_err(w, &e);
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0)
            return fail(w, "gguf writer: kv[%" PRIu64 "] key \"%s\": duplicate of kv[%" PRIu64 "]: expected unique keys",
                        w->n_kv, key, i);
    if (reserve((void **)&w->keys, &w->keys_cap, w->n_kv + 1, sizeof *w->keys))
        return fail(w, "gguf writer: key \"%s\": out of memory", key);
    return put64(w, k.len) || put(w, key, k.len) || put32(w, type);
}

static int end_kv(gguf_writer *w, const char *key, gguf_vtype type, uint64_t value) {
    char *k = strdup(key);
    if (!k) return fail(w, "gguf writer: key \"%s\": out of memory", key);
    w->keys[w->n_kv++] = k;
    if (strcmp(key, "general.alignment") == 0) {
        w->has_align_key = true;
        w->align_key_type = type;
        w->align_key_val = value;
    }
    return 0;
}

static int kv_scalar(gguf_writer *w, const char *key, gguf_vtype type, uint64_t bits) {
    if (begin_kv(w, key, type)) return -1;
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(bits >> (8 * i));
    if (put(w, b, gg_scalar_size(type))) return -1;
    return end_kv(w, key, type, bits);
}

int gguf_writer_kv_u8(gguf_writer *w, const char *key, uint8_t v) { return kv_scalar(w, key, GGUF_U8, v); }
int gguf_writer_kv_i8(gguf_writer *w, const char *key, int8_t v) { return kv_scalar(w, key, GGUF_I8, (uint8_t)v); }
int gguf_writer_kv_u16(gguf_writer *w, const char *key, uint16_t v) { return kv_scalar(w, key, GGUF_U16, v); }
int gguf_writer_kv_i16(gguf_writer *w, const char *key, int16_t v) { return kv_scalar(w, key, GGUF_I16, (uint16_t)v); }
int gguf_writer_kv_u32(gguf_writer *w, const char *key, uint32_t v) { return kv_scalar(w, key, GGUF_U32, v); }
int gguf_writer_kv_i32(gguf_writer *w, const char *key, int32_t v) { return kv_scalar(w, key, GGUF_I32, (uint32_t)v); }
int gguf_writer_kv_u64(gguf_writer *w, const char *key, uint64_t v) { return kv_scalar(w, key, GGUF_U64, v); }
int gguf_writer_kv_i64(gguf_writer *w, const char *key, int64_t v) { return kv_scalar(w, key, GGUF_I64, (uint64_t)v); }
int gguf_writer_kv_bool(gguf_writer *w, const char *key, bool v) { return kv_scalar(w, key, GGUF_BOOL, v ? 1 : 0); }
int gguf_writer_kv_f32(gguf_writer *w, const char *key, float v) {
    uint32_t b;
    memcpy(&b, &v, 4);
    return kv_scalar(w, key, GGUF_F32, b);
}
int gguf_writer_kv_f64(gguf_writer *w, const char *key, double v) {
    uint64_t b;
    memcpy(&b, &v, 8);
    return kv_scalar(w, key, GGUF_F64, b);
}

static int kv_strn(gguf_writer *w, const char *key, const char *s, uint64_t len) {
    if (!s && len) return fail(w, "gguf writer: key \"%s\": NULL string: expected a value", key ? key : "");
    if (begin_kv(w, key, GGUF_STRING) || put64(w, len) || put(w, s, len)) return -1;
    return end_kv(w, key, GGUF_STRING, 0);
}

int gguf_writer_kv_str(gguf_writer *w, const char *key, const char *v) {
    return kv_strn(w, key, v, v ? strlen(v) : 0);
}

int gguf_writer_kv_arr(gguf_writer *w, const char *key, gguf_vtype elem_type, const void *data, uint64_t count) {
    uint32_t sz = gg_scalar_size(elem_type);
    if (!sz)
        return fail(w, "gguf writer: key \"%s\": array element type %s: expected a scalar type "
                    "(use gguf_writer_kv_arr_str or gguf_writer_kv_value)", key ? key : "", gguf_vtype_name(elem_type));
    if (count > UINT64_MAX / sz || (count && !data))
        return fail(w, "gguf writer: key \"%s\": array count %" PRIu64 ": expected data for every element",
                    key ? key : "", count);
    if (begin_kv(w, key, GGUF_ARRAY) || put32(w, elem_type) || put64(w, count) || put(w, data, count * sz))
        return -1;
    return end_kv(w, key, GGUF_ARRAY, 0);
}

int gguf_writer_kv_arr_str(gguf_writer *w, const char *key, const char *const *strs, const uint64_t *lens,
                           uint64_t count) {
    if (count && !strs) return fail(w, "gguf writer: key \"%s\": NULL string array: expected %" PRIu64 " strings",
                                    key ? key : "", count);
    if (begin_kv(w, key, GGUF_ARRAY) || put32(w, GGUF_STRING) || put64(w, count)) return -1;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t len = lens ? lens[i] : (strs[i] ? strlen(strs[i]) : 0);
        if (!strs[i] && len) return fail(w, "gguf writer: key \"%s\": string %" PRIu64 ": NULL: expected a value", key, i);
        if (put64(w, len) || put(w, strs[i], len)) return -1;
    }
    return end_kv(w, key, GGUF_ARRAY, 0);
}

int gguf_writer_kv_value(gguf_writer *w, const char *key, const gguf_value *v) {
    if (!v || v->type >= GGUF_VTYPE_COUNT)
        return fail(w, "gguf writer: key \"%s\": value type %d: expected a GGUF value", key ? key : "",
                    v ? (int)v->type : -1);
    if (gg_scalar_size(v->type)) {
        uint64_t bits = 0;
        switch (v->type) {
        case GGUF_F32: { float f = (float)v->v.f; uint32_t b; memcpy(&b, &f, 4); bits = b; break; }
        case GGUF_F64: memcpy(&bits, &v->v.f, 8); break;
        case GGUF_BOOL: bits = v->v.u != 0; break;
        case GGUF_I8: case GGUF_I16: case GGUF_I32: case GGUF_I64: bits = (uint64_t)v->v.i; break;
        default: bits = v->v.u; break;
        }
        return kv_scalar(w, key, v->type, bits);
    }
    if (v->type == GGUF_STRING) return kv_strn(w, key, v->v.s.ptr, v->v.s.len);
    /* Array: re-validate the encoding exactly as the reader would. */
    if (v->v.arr.nbytes && !v->v.arr.data)
        return fail(w, "gguf writer: key \"%s\": array data NULL: expected %" PRIu64 " bytes", key ? key : "",
                    v->v.arr.nbytes);
    if (v->v.arr.elem_type >= GGUF_VTYPE_COUNT)
        return fail(w, "gguf writer: key \"%s\": array element type %u: expected 0..12", key ? key : "",
                    (unsigned)v->v.arr.elem_type);
    ds4_err e;
    gg_cur c = {.p = v->v.arr.data, .size = v->v.arr.nbytes, .name = "gguf writer", .err = &e};
    snprintf(c.where, sizeof c.where, "kv \"%s\"", key ? key : "");
    uint64_t minsz = gg_min_size(v->v.arr.elem_type);
    if (v->v.arr.count > v->v.arr.nbytes / minsz)
        return fail(w, "gguf writer: key \"%s\": array count %" PRIu64 ": expected at most %" PRIu64
                    " for %" PRIu64 " bytes", key ? key : "", v->v.arr.count, v->v.arr.nbytes / minsz, v->v.arr.nbytes);
    for (uint64_t i = 0; i < v->v.arr.count; i++)
        if (gg_read_value(&c, v->v.arr.elem_type, 1, NULL)) return fail_err(w, &e);
    if (c.pos != c.size)
        return fail(w, "gguf writer: key \"%s\": array encoding: %" PRIu64 " bytes for %" PRIu64
                    " elements: expected %" PRIu64, key ? key : "", c.size, v->v.arr.count, c.pos);
    if (begin_kv(w, key, GGUF_ARRAY) || put32(w, v->v.arr.elem_type) || put64(w, v->v.arr.count) ||
        put(w, v->v.arr.data, v->v.arr.nbytes))
        return -1;
    return end_kv(w, key, GGUF_ARRAY, 0);
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

int gguf_writer_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne) {
    ds4_err e;
    gg_cur c = {.name = "gguf writer", .err = &e};
    snprintf(c.where, sizeof c.where, "tensor[%" PRIu64 "]", w->n_t);
    if (!name) return fail(w, "gguf writer: tensor[%" PRIu64 "] name: NULL: expected a name", w->n_t);
    gguf_str n = {name, strlen(name)};
    if (gg_check_name(&c, "name", n, 0)) return fail_err(w, &e);
    char nb[200];
    snprintf(c.where, sizeof c.where, "tensor \"%s\"", gg_msg_name(nb, sizeof nb, name, n.len));
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS || !ne)
        return fail(w, "gguf writer: tensor \"%s\" n_dims: %" PRIu32 ": expected 1..%d", name, n_dims, GGUF_MAX_DIMS);
    for (uint64_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].t.name, name) == 0)
            return fail(w, "gguf writer: tensor[%" PRIu64 "] name \"%s\": duplicate of tensor[%" PRIu64
                        "]: expected unique tensor names", w->n_t, name, i);
    gguf_tensor t;
    memset(&t, 0, sizeof t);
    t.n_dims = n_dims;
    t.type = type;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t.ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
    if (gg_check_tensor_shape(&c, &t)) return fail_err(w, &e);
    uint64_t A = w->alignment;
    uint64_t padded = t.nbytes > UINT64_MAX - (A - 1) ? 0 : align_up(t.nbytes, A);
    if (padded == 0 || padded > UINT64_MAX - w->data_len || w->n_t >= INT32_MAX)
        return fail(w, "gguf writer: tensor \"%s\" size: %" PRIu64 " bytes after %" PRIu64
                    ": expected a data section below 2^64 bytes", name, t.nbytes, w->data_len);
    if (reserve((void **)&w->t, &w->t_cap, w->n_t + 1, sizeof *w->t) || !(t.name = strdup(name)))
        return fail(w, "gguf writer: tensor \"%s\": out of memory", name);
    t.offset = w->data_len;
    w->data_len += padded;
    w->infos_len += 8 + n.len + 4 + 8ull * n_dims + 4 + 8;
    w->t[w->n_t].t = t;
    return (int)w->n_t++;
}

static uint64_t data_offset(const gguf_writer *w) { return align_up(24 + w->kv_len + w->infos_len, w->alignment); }

uint64_t gguf_writer_total_size(const gguf_writer *w) { return data_offset(w) + w->data_len; }

uint64_t gguf_writer_tensor_nbytes(const gguf_writer *w, int idx) {
    return idx >= 0 && (uint64_t)idx < w->n_t ? w->t[idx].t.nbytes : 0;
}

uint64_t gguf_writer_tensor_file_offset(const gguf_writer *w, int idx) {
    return idx >= 0 && (uint64_t)idx < w->n_t ? data_offset(w) + w->t[idx].t.offset : 0;
}

int gguf_writer_header_bytes(const gguf_writer *w, uint8_t **out, uint64_t *len, ds4_err *err) {
    *out = NULL;
    *len = 0;
    if (w->failed) return ds4_errf(err, "%s", w->err);
    if (w->has_align_key && (w->align_key_type != GGUF_U32 || w->align_key_val != w->alignment))
        return ds4_errf(err, "gguf writer: general.alignment: %s %" PRIu64 ": expected u32 %" PRIu32
                        " (the writer's alignment)", gguf_vtype_name(w->align_key_type), w->align_key_val,
                        w->alignment);
    if (!w->has_align_key && w->alignment != GGUF_DEFAULT_ALIGNMENT)
        return ds4_errf(err, "gguf writer: general.alignment: missing: expected a u32 key = %" PRIu32
                        " (readers assume %u without it)", w->alignment, GGUF_DEFAULT_ALIGNMENT);
    uint64_t n = data_offset(w);
    uint8_t *b = calloc(1, (size_t)n);
    if (!b) return ds4_errf(err, "gguf writer: header: %" PRIu64 " bytes: out of memory", n);
    uint64_t p = 0;
#define W32(v) do { uint32_t x_ = (v); for (int i_ = 0; i_ < 4; i_++) b[p++] = (uint8_t)(x_ >> (8 * i_)); } while (0)
#define W64(v) do { uint64_t x_ = (v); for (int i_ = 0; i_ < 8; i_++) b[p++] = (uint8_t)(x_ >> (8 * i_)); } while (0)
    W32(GGUF_MAGIC);
    W32(GGUF_VERSION);
    W64(w->n_t);
    W64(w->n_kv);
    if (w->kv_len) memcpy(b + p, w->kv, (size_t)w->kv_len);
    p += w->kv_len;
    for (uint64_t i = 0; i < w->n_t; i++) {
        const gguf_tensor *t = &w->t[i].t;
        uint64_t nl = strlen(t->name);
        W64(nl);
        memcpy(b + p, t->name, (size_t)nl);
        p += nl;
        W32(t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) W64(t->ne[d]);
        W32(t->type);
        W64(t->offset);
    }
#undef W32
#undef W64
    *out = b;
    *len = n;
    return 0;
}

static int pwrite_all(int fd, const void *buf, uint64_t n, uint64_t off, const char *what, ds4_err *err) {
    const uint8_t *p = buf;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t r = pwrite(fd, p, chunk, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return ds4_errf(err, "gguf writer: %s: write at offset %" PRIu64 ": %s", what, off,
                            r < 0 ? strerror(errno) : "wrote 0 bytes");
        p += r;
        n -= (uint64_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

int gguf_writer_write_header(const gguf_writer *w, int fd, ds4_err *err) {
    uint8_t *b;
    uint64_t n;
    if (gguf_writer_header_bytes(w, &b, &n, err)) return -1;
    int rc = pwrite_all(fd, b, n, 0, "header", err);
    free(b);
    if (rc) return -1;
    if (ftruncate(fd, (off_t)gguf_writer_total_size(w)) != 0)
        return ds4_errf(err, "gguf writer: file size: ftruncate to %" PRIu64 ": %s", gguf_writer_total_size(w),
                        strerror(errno));
    return 0;
}

int gguf_writer_write_tensor(const gguf_writer *w, int fd, int idx, const void *data, ds4_err *err) {
    if (idx < 0 || (uint64_t)idx >= w->n_t)
        return ds4_errf(err, "gguf writer: tensor index: %d: expected 0..%" PRIu64, idx, w->n_t ? w->n_t - 1 : 0);
    char what[256], nb[200];
    const char *name = w->t[idx].t.name;
    snprintf(what, sizeof what, "tensor \"%s\"", gg_msg_name(nb, sizeof nb, name, strlen(name)));
    return pwrite_all(fd, data, w->t[idx].t.nbytes, gguf_writer_tensor_file_offset(w, idx), what, err);
}
