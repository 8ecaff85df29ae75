/* gguf_parse.c - the one validating parser behind gguf_open and
 * gguf_open_memory.
 *
 * Order: header, metadata (names checked, values walked by gguf_value.c),
 * general.alignment, tensor infos (type, dims, sizes), data section, then the
 * whole-file checks (duplicate names, tensors inside the file and disjoint).
 * Nothing is trusted before it is checked: every count is compared with the
 * bytes that could hold it before it drives a loop, and arrays grow only as
 * entries actually parse, so a corrupt count in a huge file allocates nothing.
 * Every refusal is one line: "<file>: <field>: <value>: expected <what>". */
#include "gguf/gguf_internal.h"
#include "quant/quant.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Smallest encodings, used to refuse counts that cannot fit in the file:
 * a kv is key length (8) + type (4) + at least 1 value byte; a tensor info
 * is name length (8) + n_dims (4) + one dim (8) + type (4) + offset (8). */
#define MIN_KV_BYTES 13u
#define MIN_TENSOR_INFO_BYTES 32u

/* Names (keys and tensor names) become C strings used for lookups, so they
 * must be non-empty, valid UTF-8 and free of NUL bytes. */
int gg_check_name(gg_cur *c, const char *what, gguf_str s, uint64_t at) {
    if (s.len == 0)
        return ds4_errf(c->err, "%s: %s %s: empty at offset %" PRIu64 ": expected a non-empty name",
                        c->name, c->where, what, at);
    if (memchr(s.ptr, 0, s.len))
        return ds4_errf(c->err, "%s: %s %s: contains a NUL byte at offset %" PRIu64 ": expected a name without NUL",
                        c->name, c->where, what, at);
    if (!gg_utf8_valid(s.ptr, s.len))
        return ds4_errf(c->err, "%s: %s %s: invalid UTF-8 at offset %" PRIu64 ": expected a valid UTF-8 name",
                        c->name, c->where, what, at);
    return 0;
}

#define NAME(buf, cstr) gg_msg_name(buf, sizeof buf, cstr, strlen(cstr))

static char *dup_str(gguf_str s) {
    char *r = malloc(s.len + 1);
    if (!r) return NULL;
    memcpy(r, s.ptr, s.len);
    r[s.len] = 0;
    return r;
}

static void free_file(gg_file *g) {
    if (!g) return;
    for (uint64_t i = 0; i < g->pub.n_kv; i++) free(g->pub.kv[i].key);
    for (uint64_t i = 0; i < g->pub.n_tensors; i++) free(g->pub.tensors[i].name);
    free(g->pub.kv);
    free(g->pub.tensors);
    free(g->kv_by_key);
    free(g->tensor_by_name);
    free(g->pub.path);
    free(g);
}

static int oom(gg_cur *c, const char *what) {
    return ds4_errf(c->err, "%s: %s: out of memory: expected to allocate the metadata tables", c->name, what);
}

/* Grows *arr (elements of size elsz) so that index n fits; cap doubles. */
static int grow(void **arr, uint64_t *cap, uint64_t n, size_t elsz) {
    if (n < *cap) return 0;
    uint64_t nc = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, (size_t)nc * elsz);
    if (!p) return -1;
    memset((char *)p + *cap * elsz, 0, (size_t)(nc - *cap) * elsz);
    *arr = p;
    *cap = nc;
    return 0;
}

static int parse_header(gg_cur *c, gg_file *g, uint64_t *n_kv, uint64_t *n_tensors) {
    if (c->size < 4)
        return ds4_errf(c->err, "%s: magic: file is %" PRIu64 " bytes: expected at least 24 (GGUF header)",
                        c->name, c->size);
    uint32_t magic = gg_le32(c->p);
    if (magic != GGUF_MAGIC) {
        char shown[5];
        for (int i = 0; i < 4; i++) shown[i] = c->p[i] >= 0x20 && c->p[i] < 0x7F ? (char)c->p[i] : '.';
        shown[4] = 0;
        return ds4_errf(c->err, "%s: magic: 0x%08" PRIx32 " (\"%s\"): expected 0x%08x (\"GGUF\")",
                        c->name, magic, shown, GGUF_MAGIC);
    }
    c->pos = 4;
    uint32_t version;
    if (gg_u32(c, "version", &version)) return -1;
    if (version != GGUF_VERSION)
        return ds4_errf(c->err, "%s: version: %" PRIu32 ": expected %u (only GGUF v3 is read)",
                        c->name, version, GGUF_VERSION);
    g->pub.version = version;
    if (gg_u64(c, "n_tensors", n_tensors) || gg_u64(c, "n_kv", n_kv)) return -1;
    if (*n_kv > gg_left(c) / MIN_KV_BYTES)
        return ds4_errf(c->err, "%s: n_kv: %" PRIu64 ": expected at most %" PRIu64
                        " (entries that fit in the %" PRIu64 " bytes left)",
                        c->name, *n_kv, gg_left(c) / MIN_KV_BYTES, gg_left(c));
    uint64_t after_kv = gg_left(c) - *n_kv * MIN_KV_BYTES;
    if (*n_tensors > after_kv / MIN_TENSOR_INFO_BYTES)
        return ds4_errf(c->err, "%s: n_tensors: %" PRIu64 ": expected at most %" PRIu64
                        " (tensor infos that fit in the %" PRIu64 " bytes left after %" PRIu64 " kv entries)",
                        c->name, *n_tensors, after_kv / MIN_TENSOR_INFO_BYTES, after_kv, *n_kv);
    return 0;
}

static int parse_kvs(gg_cur *c, gg_file *g, uint64_t n_kv) {
    uint64_t cap = 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        snprintf(c->where, sizeof c->where, "kv[%" PRIu64 "]", i);
        uint64_t at = c->pos;
        gguf_str key;
        if (gg_str(c, "key", &key) || gg_check_name(c, "key", key, at)) return -1;
        char nb[200];
        snprintf(c->where, sizeof c->where, "kv[%" PRIu64 "] \"%s\"", i, gg_msg_name(nb, sizeof nb, key.ptr, key.len));
        uint32_t type;
        if (gg_u32(c, "value type", &type)) return -1;
        gguf_value v;
        memset(&v, 0, sizeof v);
        if (gg_read_value(c, type, 0, &v)) return -1;
        if (grow((void **)&g->pub.kv, &cap, i, sizeof(gguf_kv))) return oom(c, "kv");
        g->pub.kv[i].key = dup_str(key);
        if (!g->pub.kv[i].key) return oom(c, "kv");
        g->pub.kv[i].value = v;
        g->pub.n_kv = i + 1;
    }
    c->where[0] = 0;
    return 0;
}

static int cmp_kv(const void *a, const void *b) {
    return strcmp((*(const gguf_kv *const *)a)->key, (*(const gguf_kv *const *)b)->key);
}
static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp((*(const gguf_tensor *const *)a)->name, (*(const gguf_tensor *const *)b)->name);
}
static int cmp_tensor_off(const void *a, const void *b) {
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Sorted key index; duplicates are adjacent after sorting. */
static int index_kvs(gg_cur *c, gg_file *g) {
    uint64_t n = g->pub.n_kv;
    g->kv_by_key = malloc((size_t)(n ? n : 1) * sizeof *g->kv_by_key);
    if (!g->kv_by_key) return oom(c, "kv index");
    for (uint64_t i = 0; i < n; i++) g->kv_by_key[i] = &g->pub.kv[i];
    qsort(g->kv_by_key, (size_t)n, sizeof *g->kv_by_key, cmp_kv);
    for (uint64_t i = 1; i < n; i++) {
        if (strcmp(g->kv_by_key[i - 1]->key, g->kv_by_key[i]->key) != 0) continue;
        uint64_t a = (uint64_t)(g->kv_by_key[i - 1] - g->pub.kv), b = (uint64_t)(g->kv_by_key[i] - g->pub.kv);
        if (a > b) { uint64_t t = a; a = b; b = t; }
        char nb[200];
        return ds4_errf(c->err, "%s: kv[%" PRIu64 "] key \"%s\": duplicate of kv[%" PRIu64 "]: expected unique keys",
                        c->name, b, gg_msg_name(nb, sizeof nb, g->pub.kv[b].key, strlen(g->pub.kv[b].key)), a);
    }
    return 0;
}

static int parse_alignment(gg_cur *c, gg_file *g) {
    g->pub.alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = gguf_find_kv(&g->pub, "general.alignment");
    if (!kv) return 0;
    if (kv->value.type != GGUF_U32)
        return ds4_errf(c->err, "%s: general.alignment: type %s: expected u32",
                        c->name, gguf_vtype_name(kv->value.type));
    uint64_t a = kv->value.v.u;
    if (a == 0 || (a & (a - 1)) != 0)
        return ds4_errf(c->err, "%s: general.alignment: %" PRIu64 ": expected a nonzero power of two",
                        c->name, a);
    g->pub.alignment = (uint32_t)a;
    return 0;
}

/* Type, dims and byte size of one tensor, all overflow-checked. Elements are
 * kept below 2^63 because consumers index with int64_t (as GGML does). */
int gg_check_tensor_shape(gg_cur *c, gguf_tensor *t) {
    if (!ds4_type_known(t->type))
        return ds4_errf(c->err, "%s: %s type: %" PRIu32 ": expected a known GGML type "
                        "(F32 F16 Q8_0 Q2_K Q4_K Q8_K IQ2_XXS I32 BF16)", c->name, c->where, t->type);
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (t->ne[d] == 0 || t->ne[d] > (uint64_t)INT64_MAX)
            return ds4_errf(c->err, "%s: %s dim %" PRIu32 ": %" PRIu64 ": expected 1..2^63-1",
                            c->name, c->where, d, t->ne[d]);
        if (n > (uint64_t)INT64_MAX / t->ne[d])
            return ds4_errf(c->err, "%s: %s dims: element count overflows at dim %" PRIu32
                            " (%" PRIu64 " x %" PRIu64 "): expected fewer than 2^63 elements",
                            c->name, c->where, d, n, t->ne[d]);
        n *= t->ne[d];
    }
    t->n_elements = n;
    uint32_t be = ds4_type_block_elems(t->type);
    if (t->ne[0] % be != 0)
        return ds4_errf(c->err, "%s: %s dim 0: %" PRIu64 " (row length) for type %s: expected a multiple of %" PRIu32
                        " (its block size)", c->name, c->where, t->ne[0], ds4_type_name(t->type), be);
    uint64_t row = ds4_row_bytes(t->type, t->ne[0]);
    uint64_t rows = n / t->ne[0];
    if (row != 0 && rows > UINT64_MAX / row)
        return ds4_errf(c->err, "%s: %s size: %" PRIu64 " rows of %" PRIu64 " bytes: expected a size below 2^64",
                        c->name, c->where, rows, row);
    t->nbytes = row * rows;
    return 0;
}

static int parse_tensor_infos(gg_cur *c, gg_file *g, uint64_t n_tensors) {
    uint64_t cap = 0;
    for (uint64_t i = 0; i < n_tensors; i++) {
        snprintf(c->where, sizeof c->where, "tensor[%" PRIu64 "]", i);
        uint64_t at = c->pos;
        gguf_str name;
        if (gg_str(c, "name", &name) || gg_check_name(c, "name", name, at)) return -1;
        char nb[200];
        snprintf(c->where, sizeof c->where, "tensor \"%s\"", gg_msg_name(nb, sizeof nb, name.ptr, name.len));
        gguf_tensor t;
        memset(&t, 0, sizeof t);
        if (gg_u32(c, "n_dims", &t.n_dims)) return -1;
        if (t.n_dims < 1 || t.n_dims > GGUF_MAX_DIMS)
            return ds4_errf(c->err, "%s: %s n_dims: %" PRIu32 ": expected 1..%d",
                            c->name, c->where, t.n_dims, GGUF_MAX_DIMS);
        for (int d = 0; d < GGUF_MAX_DIMS; d++) t.ne[d] = 1;
        for (uint32_t d = 0; d < t.n_dims; d++)
            if (gg_u64(c, "dims", &t.ne[d])) return -1;
        if (gg_u32(c, "type", &t.type) || gg_u64(c, "offset", &t.offset)) return -1;
        if (gg_check_tensor_shape(c, &t)) return -1;
        if (grow((void **)&g->pub.tensors, &cap, i, sizeof(gguf_tensor))) return oom(c, "tensors");
        t.name = dup_str(name);
        if (!t.name) return oom(c, "tensors");
        g->pub.tensors[i] = t;
        g->pub.n_tensors = i + 1;
    }
    c->where[0] = 0;
    return 0;
}

/* Every tensor lies inside the file, starts on the alignment (consumers cast
 * tensor data to typed pointers) and overlaps no other tensor. */
static int place_tensors(gg_cur *c, gg_file *g) {
    gguf_file *f = &g->pub;
    uint64_t A = f->alignment;
    uint64_t end_infos = c->pos;
    if (end_infos > UINT64_MAX - (A - 1))
        return ds4_errf(c->err, "%s: data section: offset overflow: expected a file below 2^64 bytes", c->name);
    f->data_offset = (end_infos + A - 1) / A * A;
    if (f->n_tensors == 0) return 0;
    if (f->data_offset > f->size)
        return ds4_errf(c->err, "%s: data section: starts at %" PRIu64 " past end of file (%" PRIu64
                        " bytes): expected the padded data section (file truncated)",
                        c->name, f->data_offset, f->size);
    uint64_t avail = f->size - f->data_offset;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        char nb[200];
        if (t->offset % A != 0)
            return ds4_errf(c->err, "%s: tensor \"%s\" offset: %" PRIu64 ": expected a multiple of the alignment %" PRIu64,
                            c->name, NAME(nb, t->name), t->offset, A);
        if (t->offset > avail || t->nbytes > avail - t->offset)
            return ds4_errf(c->err, "%s: tensor \"%s\" data: %" PRIu64 " bytes at data offset %" PRIu64
                            " end past end of file: expected within the %" PRIu64 " bytes of the data section",
                            c->name, NAME(nb, t->name), t->nbytes, t->offset, avail);
        t->data = f->base + f->data_offset + t->offset;
    }
    const gguf_tensor **by_off = malloc((size_t)f->n_tensors * sizeof *by_off);
    if (!by_off) return oom(c, "tensor index");
    for (uint64_t i = 0; i < f->n_tensors; i++) by_off[i] = &f->tensors[i];
    qsort(by_off, (size_t)f->n_tensors, sizeof *by_off, cmp_tensor_off);
    int rc = 0;
    for (uint64_t i = 1; i < f->n_tensors; i++) {
        const gguf_tensor *a = by_off[i - 1], *b = by_off[i];
        if (a->offset + a->nbytes > b->offset) {
            char na[200], nb[200];
            rc = ds4_errf(c->err, "%s: tensor \"%s\" data: [%" PRIu64 ", %" PRIu64 ") overlaps tensor \"%s\" [%" PRIu64
                          ", %" PRIu64 "): expected disjoint tensors",
                          c->name, NAME(nb, b->name), b->offset, b->offset + b->nbytes, NAME(na, a->name), a->offset,
                          a->offset + a->nbytes);
            break;
        }
    }
    free(by_off);
    return rc;
}

static int index_tensors(gg_cur *c, gg_file *g) {
    uint64_t n = g->pub.n_tensors;
    g->tensor_by_name = malloc((size_t)(n ? n : 1) * sizeof *g->tensor_by_name);
    if (!g->tensor_by_name) return oom(c, "tensor index");
    for (uint64_t i = 0; i < n; i++) g->tensor_by_name[i] = &g->pub.tensors[i];
    qsort(g->tensor_by_name, (size_t)n, sizeof *g->tensor_by_name, cmp_tensor_name);
    for (uint64_t i = 1; i < n; i++) {
        if (strcmp(g->tensor_by_name[i - 1]->name, g->tensor_by_name[i]->name) != 0) continue;
        uint64_t a = (uint64_t)(g->tensor_by_name[i - 1] - g->pub.tensors);
        uint64_t b = (uint64_t)(g->tensor_by_name[i] - g->pub.tensors);
        if (a > b) { uint64_t t = a; a = b; b = t; }
        char nb[200];
        return ds4_errf(c->err, "%s: tensor[%" PRIu64 "] name \"%s\": duplicate of tensor[%" PRIu64
                        "]: expected unique tensor names", c->name, b, NAME(nb, g->pub.tensors[b].name), a);
    }
    return 0;
}

gg_file *gg_parse(const uint8_t *buf, uint64_t size, const char *name, ds4_err *err) {
    if (!name) name = "<memory>";
    gg_cur c = {.p = buf, .size = buf ? size : 0, .pos = 0, .name = name, .err = err};
    gg_file *g = calloc(1, sizeof *g);
    if (!g || !(g->pub.path = strdup(name))) {
        free(g);
        ds4_errf(err, "%s: open: out of memory: expected to allocate the file object", name);
        return NULL;
    }
    g->pub.base = buf;
    g->pub.size = c.size;
    uint64_t n_kv, n_tensors;
    if (parse_header(&c, g, &n_kv, &n_tensors) || parse_kvs(&c, g, n_kv) || index_kvs(&c, g) ||
        parse_alignment(&c, g) || parse_tensor_infos(&c, g, n_tensors) || place_tensors(&c, g) ||
        index_tensors(&c, g)) {
        free_file(g);
        return NULL;
    }
    return g;
}

void gg_free(gg_file *g) { free_file(g); }
