/* gguf_get.c - lookups and typed access to a parsed file.
 *
 * Keys and tensor names are found by binary search over the sorted indexes
 * the parser built. Getters are strict about types on purpose: a model file
 * that stores a count as f32 is a broken file, and saying so (key, type found,
 * type expected) beats silently converting. Array elements are read from
 * their validated encoding on demand, so nothing is copied at load time. */
#include "gguf/gguf_internal.h"

#include <stdlib.h>
#include <string.h>

static int cmp_key_kv(const void *key, const void *elem) {
    return strcmp((const char *)key, (*(const gguf_kv *const *)elem)->key);
}
static int cmp_key_tensor(const void *key, const void *elem) {
    return strcmp((const char *)key, (*(const gguf_tensor *const *)elem)->name);
}

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key) {
    const gg_file *g = (const gg_file *)f;
    if (!f || !key || !g->kv_by_key || f->n_kv == 0) return NULL;
    const gguf_kv *const *r = bsearch(key, g->kv_by_key, (size_t)f->n_kv, sizeof *g->kv_by_key, cmp_key_kv);
    return r ? *r : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    const gg_file *g = (const gg_file *)f;
    if (!f || !name || !g->tensor_by_name || f->n_tensors == 0) return NULL;
    const gguf_tensor *const *r =
        bsearch(name, g->tensor_by_name, (size_t)f->n_tensors, sizeof *g->tensor_by_name, cmp_key_tensor);
    return r ? *r : NULL;
}

/* The value of key if its type is one of `ok` (a bit set of gguf_vtype). */
static const gguf_value *typed(const gguf_file *f, const char *key, unsigned ok, const char *expected, ds4_err *err) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) {
        ds4_errf(err, "%s: key \"%s\": missing: expected a %s value", f ? f->path : "(null)", key, expected);
        return NULL;
    }
    if (!(ok >> kv->value.type & 1u)) {
        ds4_errf(err, "%s: key \"%s\": type %s: expected %s", f->path, key, gguf_vtype_name(kv->value.type), expected);
        return NULL;
    }
    return &kv->value;
}

#define BIT(t) (1u << (t))

int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, ds4_err *err) {
    const gguf_value *v = typed(f, key, BIT(GGUF_U32), "u32", err);
    if (!v) return -1;
    *out = (uint32_t)v->v.u;
    return 0;
}

int gguf_get_u64ish(const gguf_file *f, const char *key, uint64_t *out, ds4_err *err) {
    const gguf_value *v = typed(f, key, BIT(GGUF_U32) | BIT(GGUF_U64), "u32 or u64", err);
    if (!v) return -1;
    *out = v->v.u;
    return 0;
}

int gguf_get_f32ish(const gguf_file *f, const char *key, float *out, ds4_err *err) {
    const gguf_value *v =
        typed(f, key, BIT(GGUF_F32) | BIT(GGUF_F64) | BIT(GGUF_U32) | BIT(GGUF_I32), "f32, f64, u32 or i32", err);
    if (!v) return -1;
    switch (v->type) {
    case GGUF_U32: *out = (float)v->v.u; break;
    case GGUF_I32: *out = (float)v->v.i; break;
    default: *out = (float)v->v.f; break;
    }
    return 0;
}

int gguf_get_bool(const gguf_file *f, const char *key, bool *out, ds4_err *err) {
    const gguf_value *v = typed(f, key, BIT(GGUF_BOOL), "bool", err);
    if (!v) return -1;
    *out = v->v.u != 0;
    return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, ds4_err *err) {
    const gguf_value *v = typed(f, key, BIT(GGUF_STRING), "string", err);
    if (!v) return -1;
    *out = v->v.s;
    return 0;
}

int gguf_get_arr(const gguf_file *f, const char *key, const gguf_value **out, ds4_err *err) {
    const gguf_value *v = typed(f, key, BIT(GGUF_ARRAY), "array", err);
    if (!v) return -1;
    *out = v;
    return 0;
}

/* Element i of a scalar array, decoded; -1 for a non-scalar element type or
 * an index out of range. */
static int scalar_elem(const gguf_value *arr, uint64_t i, gguf_value *el) {
    if (!arr || arr->type != GGUF_ARRAY || i >= arr->v.arr.count) return -1;
    uint32_t sz = gg_scalar_size(arr->v.arr.elem_type);
    if (!sz || arr->v.arr.nbytes / sz <= i) return -1;
    gg_decode_scalar(arr->v.arr.elem_type, arr->v.arr.data + i * sz, el);
    return 0;
}

int gguf_arr_int(const gguf_value *arr, uint64_t i, int64_t *out) {
    gguf_value el;
    if (scalar_elem(arr, i, &el)) return -1;
    switch (el.type) {
    case GGUF_U8: case GGUF_U16: case GGUF_U32: case GGUF_U64:
        if (el.v.u > (uint64_t)INT64_MAX) return -1;
        *out = (int64_t)el.v.u;
        return 0;
    case GGUF_I8: case GGUF_I16: case GGUF_I32: case GGUF_I64:
        *out = el.v.i;
        return 0;
    default: return -1;
    }
}

int gguf_arr_float(const gguf_value *arr, uint64_t i, double *out) {
    gguf_value el;
    if (scalar_elem(arr, i, &el)) return -1;
    switch (el.type) {
    case GGUF_F32: case GGUF_F64: *out = el.v.f; return 0;
    case GGUF_U8: case GGUF_U16: case GGUF_U32: case GGUF_U64: *out = (double)el.v.u; return 0;
    case GGUF_I8: case GGUF_I16: case GGUF_I32: case GGUF_I64: *out = (double)el.v.i; return 0;
    default: return -1;
    }
}

int gguf_arr_strings(const gguf_value *arr, gguf_str *out) {
    if (!arr || arr->type != GGUF_ARRAY || arr->v.arr.elem_type != GGUF_STRING) return -1;
    gg_cur c = {.p = arr->v.arr.data, .size = arr->v.arr.nbytes, .name = "array"};
    for (uint64_t i = 0; i < arr->v.arr.count; i++)
        if (gg_str(&c, "string", &out[i])) return -1;
    return 0;
}

int gguf_str_eq(gguf_str s, const char *cstr) {
    size_t n = strlen(cstr);
    return s.len == n && (n == 0 || memcmp(s.ptr, cstr, n) == 0);
}
