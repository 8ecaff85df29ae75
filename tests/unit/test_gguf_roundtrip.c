/* test_gguf_roundtrip.c - writer -> file -> reader: every value type, nested
 * arrays, every known tensor type, non-default alignment, tensors written in
 * parallel with pwrite, and the writer's own refusals. Also truncates a
 * written file at every byte and checks each prefix is refused. */
/* harness.h's main() trips gcc's -Wclobbered (reported to the lead). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wclobbered"
#endif
#pragma GCC diagnostic ignored "-Wunused-function"
#include "harness.h"

#include "gguf/gguf.h"
#include "quant/quant.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

typedef struct { const char *name; uint32_t type; uint32_t n_dims; uint64_t ne[GGUF_MAX_DIMS]; } tdecl;

static const tdecl TENSORS[] = {
    {"f32.vec", DS4_TYPE_F32, 1, {7}},
    {"f16.mat", DS4_TYPE_F16, 2, {3, 5}},
    {"q8_0.mat", DS4_TYPE_Q8_0, 2, {64, 2}},
    {"q2_k.row", DS4_TYPE_Q2_K, 1, {256}},
    {"q4_k.cube", DS4_TYPE_Q4_K, 3, {256, 1, 2}},
    {"iq2_xxs.row", DS4_TYPE_IQ2_XXS, 1, {512}},
    {"i32.8d", DS4_TYPE_I32, 8, {4, 4, 1, 1, 1, 1, 1, 2}},
    {"bf16.vec", DS4_TYPE_BF16, 1, {3}},
    {"blk.0.\xc3\xa9t\xc3\xa9", DS4_TYPE_F32, 1, {1}}, /* UTF-8 name */
};
#define N_TENSORS (sizeof TENSORS / sizeof TENSORS[0])

/* Tensor i's bytes: a pattern that differs per tensor and per byte. */
static uint8_t pattern(int i, uint64_t j) { return (uint8_t)(i * 37 + j * 11 + (j >> 8)); }

/* Little-endian encoders for hand-built nested arrays. */
static uint8_t *put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) *p++ = (uint8_t)(v >> 8 * i); return p; }
static uint8_t *put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) *p++ = (uint8_t)(v >> 8 * i); return p; }

/* [[1,2],[3]] as i32 arrays, and [["ab"],[]] as string arrays, wrapped once
 * more: depth 3 in all. */
static uint8_t nested[256];
static uint64_t nested_len;
static void build_nested(void) {
    uint8_t *p = nested;
    /* outer elements: 2 arrays of arrays */
    p = put32(p, GGUF_ARRAY); p = put64(p, 2);                   /* [0] array of 2 arrays */
    p = put32(p, GGUF_I32); p = put64(p, 2); p = put32(p, 1); p = put32(p, 2);
    p = put32(p, GGUF_I32); p = put64(p, 1); p = put32(p, 3);
    p = put32(p, GGUF_ARRAY); p = put64(p, 2);                   /* [1] array of 2 arrays */
    p = put32(p, GGUF_STRING); p = put64(p, 1); p = put64(p, 2); *p++ = 'a'; *p++ = 'b';
    p = put32(p, GGUF_STRING); p = put64(p, 0);
    nested_len = (uint64_t)(p - nested);
}

static gguf_writer *make_writer(uint32_t alignment) {
    gguf_writer *w = gguf_writer_new(alignment);
    CHECK(w != NULL);
    if (alignment != 32) CHECK(gguf_writer_kv_u32(w, "general.alignment", alignment) == 0);
    CHECK(gguf_writer_kv_u8(w, "t.u8", 250) == 0);
    CHECK(gguf_writer_kv_i8(w, "t.i8", -100) == 0);
    CHECK(gguf_writer_kv_u16(w, "t.u16", 65000) == 0);
    CHECK(gguf_writer_kv_i16(w, "t.i16", -32000) == 0);
    CHECK(gguf_writer_kv_u32(w, "t.u32", 4000000000u) == 0);
    CHECK(gguf_writer_kv_i32(w, "t.i32", -2000000000) == 0);
    CHECK(gguf_writer_kv_f32(w, "t.f32", 0.1f) == 0);
    CHECK(gguf_writer_kv_bool(w, "t.bool", true) == 0);
    CHECK(gguf_writer_kv_str(w, "t.string", "h\xc3\xa9llo") == 0);
    CHECK(gguf_writer_kv_str(w, "t.empty_string", "") == 0);
    CHECK(gguf_writer_kv_u64(w, "t.u64", 18000000000000000000ull) == 0);
    CHECK(gguf_writer_kv_i64(w, "t.i64", -9000000000000000000ll) == 0);
    CHECK(gguf_writer_kv_f64(w, "t.f64", 1e300) == 0);
    int32_t ai[3] = {-1, 0, 7};
    CHECK(gguf_writer_kv_arr(w, "t.arr_i32", GGUF_I32, ai, 3) == 0);
    float af[2] = {1.5f, -2.25f};
    CHECK(gguf_writer_kv_arr(w, "t.arr_f32", GGUF_F32, af, 2) == 0);
    uint8_t ab[4] = {0, 1, 1, 0};
    CHECK(gguf_writer_kv_arr(w, "t.arr_bool", GGUF_BOOL, ab, 4) == 0);
    uint64_t au[2] = {1, UINT64_MAX};
    CHECK(gguf_writer_kv_arr(w, "t.arr_u64", GGUF_U64, au, 2) == 0);
    CHECK(gguf_writer_kv_arr(w, "t.arr_empty", GGUF_U8, NULL, 0) == 0);
    const char *strs[3] = {"a", "", "\xe2\x82\xac"};
    CHECK(gguf_writer_kv_arr_str(w, "t.arr_str", strs, NULL, 3) == 0);
    const char *bin[1] = {"x\0y"};
    uint64_t binlen[1] = {3};
    CHECK(gguf_writer_kv_arr_str(w, "t.arr_str_nul", bin, binlen, 1) == 0);
    build_nested();
    gguf_value nv = {.type = GGUF_ARRAY};
    nv.v.arr.elem_type = GGUF_ARRAY;
    nv.v.arr.count = 2;
    nv.v.arr.data = nested;
    nv.v.arr.nbytes = nested_len;
    CHECKF(gguf_writer_kv_value(w, "t.nested", &nv) == 0, "%s", gguf_writer_error(w));
    for (size_t i = 0; i < N_TENSORS; i++)
        CHECKF(gguf_writer_tensor(w, TENSORS[i].name, TENSORS[i].type, TENSORS[i].n_dims, TENSORS[i].ne) == (int)i,
               "%s", gguf_writer_error(w));
    CHECK(gguf_writer_error(w) == NULL);
    return w;
}

static void check_file(const gguf_file *f, uint32_t alignment) {
    ds4_err e;
    CHECK_EQ_INT(f->alignment, alignment);
    CHECK_EQ_INT(f->data_offset % alignment, 0);
    CHECK_EQ_INT(f->n_kv, 21 + (alignment != 32));
    const gguf_kv *kv;
#define SCALAR(key, field, vt, want) do { kv = gguf_find_kv(f, key); CHECK(kv != NULL); \
        CHECK_EQ_INT(kv->value.type, vt); CHECK(kv->value.v.field == (want)); } while (0)
    SCALAR("t.u8", u, GGUF_U8, 250);
    SCALAR("t.i8", i, GGUF_I8, -100);
    SCALAR("t.u16", u, GGUF_U16, 65000);
    SCALAR("t.i16", i, GGUF_I16, -32000);
    SCALAR("t.u32", u, GGUF_U32, 4000000000u);
    SCALAR("t.i32", i, GGUF_I32, -2000000000);
    SCALAR("t.f32", f, GGUF_F32, (double)0.1f);
    SCALAR("t.bool", u, GGUF_BOOL, 1);
    SCALAR("t.u64", u, GGUF_U64, 18000000000000000000ull);
    SCALAR("t.i64", i, GGUF_I64, -9000000000000000000ll);
    SCALAR("t.f64", f, GGUF_F64, 1e300);
#undef SCALAR
    gguf_str s;
    CHECK(gguf_get_str(f, "t.string", &s, &e) == 0 && gguf_str_eq(s, "h\xc3\xa9llo"));
    CHECK(gguf_get_str(f, "t.empty_string", &s, &e) == 0 && s.len == 0);
    const gguf_value *a;
    int64_t iv;
    double dv;
    CHECK(gguf_get_arr(f, "t.arr_i32", &a, &e) == 0 && a->v.arr.count == 3);
    CHECK(gguf_arr_int(a, 0, &iv) == 0 && iv == -1);
    CHECK(gguf_arr_int(a, 2, &iv) == 0 && iv == 7);
    CHECK(gguf_get_arr(f, "t.arr_f32", &a, &e) == 0);
    CHECK(gguf_arr_float(a, 1, &dv) == 0 && dv == -2.25);
    CHECK(gguf_get_arr(f, "t.arr_bool", &a, &e) == 0 && a->v.arr.elem_type == GGUF_BOOL && a->v.arr.count == 4);
    CHECK(gguf_get_arr(f, "t.arr_u64", &a, &e) == 0);
    CHECK(gguf_arr_int(a, 0, &iv) == 0 && iv == 1);
    CHECK(gguf_arr_int(a, 1, &iv) == -1); /* UINT64_MAX does not fit int64 */
    CHECK(gguf_arr_float(a, 1, &dv) == 0 && dv == 18446744073709551615.0);
    CHECK(gguf_get_arr(f, "t.arr_empty", &a, &e) == 0 && a->v.arr.count == 0 && a->v.arr.nbytes == 0);
    CHECK(gguf_get_arr(f, "t.arr_str", &a, &e) == 0 && a->v.arr.count == 3);
    gguf_str ss[3];
    CHECK(gguf_arr_strings(a, ss) == 0);
    CHECK(gguf_str_eq(ss[0], "a") && gguf_str_eq(ss[1], "") && gguf_str_eq(ss[2], "\xe2\x82\xac"));
    CHECK(gguf_get_arr(f, "t.arr_str_nul", &a, &e) == 0);
    CHECK(gguf_arr_strings(a, ss) == 0 && ss[0].len == 3 && memcmp(ss[0].ptr, "x\0y", 3) == 0);
    CHECK(gguf_get_arr(f, "t.nested", &a, &e) == 0);
    CHECK(a->v.arr.elem_type == GGUF_ARRAY && a->v.arr.count == 2);
    CHECK(a->v.arr.nbytes == nested_len && memcmp(a->v.arr.data, nested, (size_t)nested_len) == 0);
    CHECK(gguf_arr_int(a, 0, &iv) == -1);
    CHECK(gguf_arr_strings(a, ss) == -1);

    CHECK_EQ_INT(f->n_tensors, N_TENSORS);
    for (size_t i = 0; i < N_TENSORS; i++) {
        const gguf_tensor *t = gguf_find_tensor(f, TENSORS[i].name);
        CHECK(t == &f->tensors[i]);
        CHECK_EQ_INT(t->type, TENSORS[i].type);
        CHECK_EQ_INT(t->n_dims, TENSORS[i].n_dims);
        uint64_t n = 1;
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
            uint64_t want = d < TENSORS[i].n_dims ? TENSORS[i].ne[d] : 1;
            CHECK_EQ_INT(t->ne[d], want);
            n *= want;
        }
        CHECK_EQ_INT(t->n_elements, n);
        CHECK_EQ_INT(t->nbytes, ds4_row_bytes(t->type, t->ne[0]) * (n / t->ne[0]));
        CHECK_EQ_INT(t->offset % alignment, 0);
        for (uint64_t j = 0; j < t->nbytes; j++) CHECK(t->data[j] == pattern((int)i, j));
    }
}

typedef struct { const gguf_writer *w; int fd; int first, step; int rc; ds4_err e; } job;

static void *write_some(void *arg) {
    job *j = arg;
    for (int i = j->first; i < (int)N_TENSORS; i += j->step) {
        uint64_t n = gguf_writer_tensor_nbytes(j->w, i);
        uint8_t *b = malloc((size_t)n);
        for (uint64_t k = 0; k < n; k++) b[k] = pattern(i, k);
        if (gguf_writer_write_tensor(j->w, j->fd, i, b, &j->e)) j->rc = -1;
        free(b);
    }
    return NULL;
}

/* Writes header then tensors from 3 threads (tensors first on purpose for
 * alignment 64, to show the order does not matter). */
static void write_file(const gguf_writer *w, const char *path, bool tensors_first) {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    ds4_err e;
    if (!tensors_first) CHECKF(gguf_writer_write_header(w, fd, &e) == 0, "%s", e.msg);
    job jobs[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        jobs[i] = (job){.w = w, .fd = fd, .first = i, .step = 3};
        CHECK(pthread_create(&th[i], NULL, write_some, &jobs[i]) == 0);
    }
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++) CHECKF(jobs[i].rc == 0, "%s", jobs[i].e.msg);
    if (tensors_first) CHECKF(gguf_writer_write_header(w, fd, &e) == 0, "%s", e.msg);
    CHECK(close(fd) == 0);
}

static void roundtrip(uint32_t alignment, bool tensors_first) {
    gguf_writer *w = make_writer(alignment);
    char path[] = "/tmp/ds4-gguf-rt-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    write_file(w, path, tensors_first);
    ds4_err e;
    gguf_file *f = gguf_open(path, &e);
    unlink(path);
    CHECKF(f != NULL, "%s", e.msg);
    CHECK_EQ_INT(f->size, gguf_writer_total_size(w));
    for (size_t i = 0; i < N_TENSORS; i++)
        CHECK_EQ_INT(f->data_offset + f->tensors[i].offset, gguf_writer_tensor_file_offset(w, (int)i));
    check_file(f, alignment);
    gguf_close(f);
    gguf_writer_free(w);
}

TEST(roundtrip_every_type_align32) { roundtrip(32, false); }
TEST(roundtrip_every_type_align64_tensors_first) { roundtrip(64, true); }

/* The same file assembled in memory; then every proper prefix is refused. */
TEST(every_truncation_is_refused) {
    gguf_writer *w = make_writer(32);
    uint8_t *hdr;
    uint64_t hlen;
    ds4_err e;
    CHECKF(gguf_writer_header_bytes(w, &hdr, &hlen, &e) == 0, "%s", e.msg);
    uint64_t size = gguf_writer_total_size(w);
    uint8_t *buf = calloc(1, (size_t)size);
    memcpy(buf, hdr, (size_t)hlen);
    for (size_t i = 0; i < N_TENSORS; i++)
        for (uint64_t j = 0; j < gguf_writer_tensor_nbytes(w, (int)i); j++)
            buf[gguf_writer_tensor_file_offset(w, (int)i) + j] = pattern((int)i, j);
    gguf_file *f = gguf_open_memory(buf, size, "rt", &e);
    CHECKF(f != NULL, "%s", e.msg);
    check_file(f, 32);
    gguf_close(f);
    /* The last tensor ends before the final padding; cutting only padding is
     * legal, so prefixes are tried up to the end of the last tensor's bytes. */
    uint64_t end = gguf_writer_tensor_file_offset(w, (int)N_TENSORS - 1) + gguf_writer_tensor_nbytes(w, (int)N_TENSORS - 1);
    for (uint64_t n = 0; n < end; n++) {
        uint8_t *cut = malloc((size_t)(n ? n : 1)); /* exact size: ASan sees any overread */
        memcpy(cut, buf, (size_t)n);
        memset(e.msg, 0, sizeof e.msg);
        f = gguf_open_memory(cut, n, "cut", &e);
        free(cut);
        CHECKF(f == NULL, "prefix of %llu bytes accepted", (unsigned long long)n);
        CHECKF(strncmp(e.msg, "cut: ", 5) == 0 && !strchr(e.msg, '\n') &&
               (strstr(e.msg, "truncated") || strstr(e.msg, "past end") || strstr(e.msg, "expected at most") ||
                strstr(e.msg, "expected at least")),
               "prefix %llu: %s", (unsigned long long)n, e.msg);
    }
    free(buf);
    free(hdr);
    gguf_writer_free(w);
}

TEST(writer_refusals) {
    gguf_writer *w = gguf_writer_new(32);
    uint64_t ne[2] = {32, 2};
    CHECK(gguf_writer_new(0) == NULL);
    CHECK(gguf_writer_new(48) == NULL);
    CHECK(gguf_writer_kv_u32(w, "a", 1) == 0);
    CHECK(gguf_writer_kv_u32(w, "a", 2) == -1); /* duplicate key */
    CHECKF(strstr(gguf_writer_error(w), "\"a\": duplicate of kv[0]"), "%s", gguf_writer_error(w));
    CHECK(gguf_writer_kv_u32(w, "", 2) == -1);
    CHECK(gguf_writer_kv_u32(w, "bad\xff", 2) == -1);
    CHECK(gguf_writer_kv_arr(w, "s", GGUF_STRING, NULL, 0) == -1);
    CHECK(gguf_writer_tensor(w, "t", DS4_TYPE_Q8_0, 2, ne) == 0);
    CHECK(gguf_writer_tensor(w, "t", DS4_TYPE_Q8_0, 2, ne) == -1);
    CHECK(gguf_writer_tensor(w, "u", 99, 2, ne) == -1);
    ne[0] = 33;
    CHECK(gguf_writer_tensor(w, "u", DS4_TYPE_Q8_0, 2, ne) == -1); /* partial block */
    ne[0] = 0;
    CHECK(gguf_writer_tensor(w, "u", DS4_TYPE_F32, 2, ne) == -1);
    CHECK(gguf_writer_tensor(w, "u", DS4_TYPE_F32, 0, ne) == -1);
    CHECK(gguf_writer_tensor(w, "u", DS4_TYPE_F32, 9, ne) == -1);
    uint64_t huge[2] = {UINT64_C(1) << 40, UINT64_C(1) << 40};
    CHECK(gguf_writer_tensor(w, "u", DS4_TYPE_F32, 2, huge) == -1); /* 2^80 elements */
    /* the first error sticks and blocks the header */
    uint8_t *b;
    uint64_t n;
    ds4_err e;
    CHECK(gguf_writer_header_bytes(w, &b, &n, &e) == -1);
    CHECKF(strstr(e.msg, "duplicate of kv[0]"), "%s", e.msg);
    gguf_writer_free(w);

    /* each refusal on a fresh writer names what is wrong */
    struct { int which; const char *want; } cases[] = {
        {0, "invalid UTF-8"}, {1, "empty"}, {2, "expected a multiple of 32"}, {3, "expected a known GGML type"},
        {4, "element count overflows"}, {5, "n_dims: 9"}, {6, "array encoding"}, {7, "array nesting depth"},
        {8, "u32 64: expected u32 32"}, {9, "general.alignment: missing"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        w = gguf_writer_new(cases[c].which == 9 ? 64 : 32);
        uint64_t d1[1] = {33}, d2[2] = {UINT64_C(1) << 40, UINT64_C(1) << 40}, d9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
        uint8_t enc[12 * 9 + 1] = {0};
        gguf_value v = {.type = GGUF_ARRAY};
        int rc = 0;
        switch (cases[c].which) {
        case 0: rc = gguf_writer_kv_u8(w, "k\xc0\x80", 1); break;
        case 1: rc = gguf_writer_tensor(w, "", DS4_TYPE_F32, 1, d1); break;
        case 2: rc = gguf_writer_tensor(w, "q", DS4_TYPE_Q8_0, 1, d1); break;
        case 3: rc = gguf_writer_tensor(w, "q", 7, 1, d1); break;
        case 4: rc = gguf_writer_tensor(w, "q", DS4_TYPE_F32, 2, d2); break;
        case 5: rc = gguf_writer_tensor(w, "q", DS4_TYPE_F32, 9, d9); break;
        case 6: /* one i32 element but 5 bytes of encoding */
            v.v.arr.elem_type = GGUF_I32; v.v.arr.count = 1; v.v.arr.data = enc; v.v.arr.nbytes = 5;
            rc = gguf_writer_kv_value(w, "k", &v);
            break;
        case 7: { /* arrays nested 9 deep (the outer value counts as depth 1) */
            uint8_t *p = enc;
            for (int k = 0; k < 8; k++) { p = put32(p, k < 7 ? GGUF_ARRAY : GGUF_U8); p = put64(p, 1); }
            *p++ = 5;
            v.v.arr.elem_type = GGUF_ARRAY; v.v.arr.count = 1; v.v.arr.data = enc; v.v.arr.nbytes = (uint64_t)(p - enc);
            rc = gguf_writer_kv_value(w, "k", &v);
            break;
        }
        case 8: rc = gguf_writer_kv_u32(w, "general.alignment", 64); break;
        case 9: break;
        }
        if (cases[c].which <= 7) {
            CHECKF(rc == -1, "case %zu accepted", c);
        } else {
            CHECK(rc == 0);
        }
        CHECK(gguf_writer_header_bytes(w, &b, &n, &e) == -1);
        CHECKF(strstr(e.msg, cases[c].want), "case %zu: %s", c, e.msg);
        gguf_writer_free(w);
    }

    /* depth exactly 8 is fine */
    w = gguf_writer_new(32);
    uint8_t enc[12 * 8 + 1];
    uint8_t *p = enc;
    for (int k = 0; k < 7; k++) { p = put32(p, k < 6 ? GGUF_ARRAY : GGUF_U8); p = put64(p, 1); }
    *p++ = 5;
    gguf_value v = {.type = GGUF_ARRAY};
    v.v.arr.elem_type = GGUF_ARRAY; v.v.arr.count = 1; v.v.arr.data = enc; v.v.arr.nbytes = (uint64_t)(p - enc);
    CHECKF(gguf_writer_kv_value(w, "deep8", &v) == 0, "%s", gguf_writer_error(w));
    CHECKF(gguf_writer_header_bytes(w, &b, &n, &e) == 0, "%s", e.msg);
    gguf_file *f = gguf_open_memory(b, n, "deep8", &e);
    CHECKF(f != NULL, "%s", e.msg);
    gguf_close(f);
    free(b);
    gguf_writer_free(w);
}

TEST(writer_io_errors) {
    gguf_writer *w = make_writer(32);
    ds4_err e;
    CHECK(gguf_writer_write_header(w, -1, &e) == -1);
    CHECKF(strstr(e.msg, "header: write at offset 0: Bad file descriptor"), "%s", e.msg);
    uint8_t blob[4096] = {0};
    CHECK(gguf_writer_write_tensor(w, -1, 0, blob, &e) == -1);
    CHECKF(strstr(e.msg, "tensor \"f32.vec\": write at offset"), "%s", e.msg);
    CHECK(gguf_writer_write_tensor(w, -1, (int)N_TENSORS, blob, &e) == -1);
    CHECKF(strstr(e.msg, "tensor index: 9: expected 0..8"), "%s", e.msg);
    CHECK_EQ_INT(gguf_writer_tensor_nbytes(w, -1), 0);
    CHECK_EQ_INT(gguf_writer_tensor_file_offset(w, 99), 0);
    CHECK_EQ_INT(gguf_writer_n_tensors(w), N_TENSORS);
    gguf_writer_free(w);
}

TEST(empty_file_from_writer) {
    gguf_writer *w = gguf_writer_new(32);
    uint8_t *b;
    uint64_t n;
    ds4_err e;
    CHECK(gguf_writer_header_bytes(w, &b, &n, &e) == 0);
    CHECK_EQ_INT(n, 32); /* 24-byte header padded to 32 */
    CHECK_EQ_INT(gguf_writer_total_size(w), 32);
    gguf_file *f = gguf_open_memory(b, n, "empty", &e);
    CHECKF(f != NULL, "%s", e.msg);
    CHECK(f->n_kv == 0 && f->n_tensors == 0 && f->data_offset == 32);
    CHECK(gguf_find_kv(f, "x") == NULL && gguf_find_tensor(f, "x") == NULL);
    gguf_close(f);
    free(b);
    gguf_writer_free(w);
}
