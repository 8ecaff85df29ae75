/* test_gguf.c - the GGUF reader on the real synthetic models (oracle tiny-a,
 * tiny-b), the typed getters and their refusals, and the writer's strongest
 * check: re-serializing a file's metadata and tensor infos reproduces its
 * header bytes exactly. Written-file round trips are in test_gguf_roundtrip.c,
 * refusals of broken files in test_gguf_broken.c. */
/* harness.h's main() trips gcc's -Wclobbered (reported to the lead). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wclobbered"
#endif
#include "harness.h"

#include "gguf/gguf.h"
#include "quant/quant.h"

#include <errno.h>

static const char *TINY_A = "oracle/tiny-a/ds4-synth-tiny-a.gguf";
static const char *TINY_B = "oracle/tiny-b/ds4-synth-tiny-b.gguf";

static uint8_t *slurp(const char *path, uint64_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, fp) != (size_t)n) { free(b); b = NULL; }
    fclose(fp);
    *len = (uint64_t)n;
    return b;
}

static gguf_file *open_data(const char *rel) {
    ds4_err e = {{0}};
    gguf_file *f = gguf_open(t_data_path(rel), &e);
    CHECKF(f != NULL, "gguf_open(%s): %s", rel, e.msg);
    return f;
}

TEST(tiny_a_header_and_keys) {
    gguf_file *f = open_data(TINY_A);
    ds4_err e;
    CHECK_EQ_INT(f->version, 3);
    CHECK_EQ_INT(f->n_kv, 48);
    CHECK_EQ_INT(f->n_tensors, 116);
    CHECK_EQ_INT(f->alignment, 32);
    CHECK_EQ_INT(f->data_offset, 20416); /* infos end at 20393, padded to 32 */
    CHECK_EQ_INT(f->size, 8204480);
    uint32_t u;
    CHECK(gguf_get_u32(f, "deepseek4.block_count", &u, &e) == 0);
    CHECK_EQ_INT(u, 4);
    CHECK(gguf_get_u32(f, "deepseek4.vocab_size", &u, &e) == 0);
    CHECK_EQ_INT(u, 512);
    uint64_t u64;
    CHECK(gguf_get_u64ish(f, "deepseek4.context_length", &u64, &e) == 0); /* stored as u64 */
    CHECK_EQ_INT(u64, 1048576);
    CHECK(gguf_get_u64ish(f, "deepseek4.block_count", &u64, &e) == 0); /* u32 accepted too */
    CHECK_EQ_INT(u64, 4);
    float x;
    CHECK(gguf_get_f32ish(f, "deepseek4.rope.scaling.factor", &x, &e) == 0);
    CHECK_NEAR(x, 16.0, 0);
    CHECK(gguf_get_f32ish(f, "deepseek4.expert_weights_scale", &x, &e) == 0);
    CHECK_NEAR(x, 1.5, 0);
    CHECK(gguf_get_f32ish(f, "deepseek4.hash_layer_count", &x, &e) == 0); /* u32 -> float */
    CHECK_NEAR(x, 3.0, 0);
    bool b;
    CHECK(gguf_get_bool(f, "deepseek4.expert_weights_norm", &b, &e) == 0 && b);
    CHECK(gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &b, &e) == 0 && !b);
    gguf_str s;
    CHECK(gguf_get_str(f, "general.architecture", &s, &e) == 0);
    CHECK(gguf_str_eq(s, "deepseek4"));
    CHECK(gguf_get_str(f, "general.name", &s, &e) == 0);
    CHECK(gguf_str_eq(s, "ds4-synth-tiny-a"));
    CHECK(!gguf_str_eq(s, "ds4-synth-tiny"));

    const gguf_value *arr;
    CHECK(gguf_get_arr(f, "deepseek4.attention.compress_ratios", &arr, &e) == 0);
    CHECK_EQ_INT(arr->v.arr.elem_type, GGUF_I32);
    CHECK_EQ_INT(arr->v.arr.count, 4);
    int64_t want[4] = {0, 0, 4, 128};
    for (int i = 0; i < 4; i++) {
        int64_t v;
        CHECK(gguf_arr_int(arr, (uint64_t)i, &v) == 0);
        CHECK_EQ_INT(v, want[i]);
    }
    int64_t v;
    CHECK(gguf_arr_int(arr, 4, &v) == -1); /* out of range */
    double d;
    CHECK(gguf_arr_float(arr, 2, &d) == 0 && d == 4.0);
    CHECK(gguf_get_arr(f, "deepseek4.swiglu_clamp_exp", &arr, &e) == 0);
    CHECK_EQ_INT(arr->v.arr.elem_type, GGUF_F32);
    CHECK(gguf_arr_float(arr, 0, &d) == 0);
    CHECK(gguf_arr_int(arr, 0, &v) == -1); /* float array is not an int array */

    CHECK(gguf_get_arr(f, "tokenizer.ggml.tokens", &arr, &e) == 0);
    CHECK_EQ_INT(arr->v.arr.elem_type, GGUF_STRING);
    CHECK_EQ_INT(arr->v.arr.count, 512);
    CHECK(gguf_arr_int(arr, 0, &v) == -1);
    gguf_str *toks = calloc(512, sizeof *toks);
    CHECK(gguf_arr_strings(arr, toks) == 0);
    uint64_t total = 0;
    for (int i = 0; i < 512; i++) total += 8 + toks[i].len;
    CHECK_EQ_INT(total, arr->v.arr.nbytes); /* the walk covered exactly the encoding */
    free(toks);
    CHECK(gguf_get_arr(f, "tokenizer.ggml.merges", &arr, &e) == 0);
    CHECK_EQ_INT(arr->v.arr.count, 249);
    gguf_close(f);
}

TEST(tiny_a_tensors) {
    gguf_file *f = open_data(TINY_A);
    const gguf_tensor *t = gguf_find_tensor(f, "token_embd.weight");
    CHECK(t != NULL);
    CHECK_EQ_INT(t->type, DS4_TYPE_F16);
    CHECK_EQ_INT(t->n_dims, 2);
    CHECK_EQ_INT(t->ne[0], 256);
    CHECK_EQ_INT(t->ne[1], 512);
    CHECK_EQ_INT(t->ne[2], 1);
    CHECK_EQ_INT(t->n_elements, 256 * 512);
    CHECK_EQ_INT(t->nbytes, 256 * 512 * 2);
    CHECK_EQ_INT(t->offset, 0);
    CHECK(t->data == f->base + f->data_offset);
    t = gguf_find_tensor(f, "output.weight");
    CHECK(t != NULL);
    CHECK_EQ_INT(t->type, DS4_TYPE_Q8_0);
    CHECK_EQ_INT(t->nbytes, 256 / 32 * 34 * 512);
    CHECK_EQ_INT(t->offset, 8044800);
    CHECK(gguf_find_tensor(f, "output.weigh") == NULL);
    CHECK(gguf_find_tensor(f, "") == NULL);
    CHECK(gguf_find_kv(f, "deepseek4.block_count") != NULL);
    CHECK(gguf_find_kv(f, "deepseek4.block_coun") == NULL);
    /* every tensor is findable by its own name, inside the file, and its
     * bytes are the file's bytes */
    uint64_t len;
    uint8_t *raw = slurp(t_data_path(TINY_A), &len);
    CHECK(raw && len == f->size);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *ti = &f->tensors[i];
        CHECK(gguf_find_tensor(f, ti->name) == ti);
        CHECK(ti->data + ti->nbytes <= f->base + f->size);
        CHECK(memcmp(ti->data, raw + f->data_offset + ti->offset, (size_t)ti->nbytes) == 0);
    }
    for (uint64_t i = 0; i < f->n_kv; i++) CHECK(gguf_find_kv(f, f->kv[i].key) == &f->kv[i]);
    /* the memory reader sees the same file */
    ds4_err e;
    gguf_file *m = gguf_open_memory(raw, len, "tiny-a-mem", &e);
    CHECKF(m != NULL, "%s", e.msg);
    CHECK_EQ_INT(m->n_tensors, f->n_tensors);
    CHECK_EQ_INT(m->data_offset, f->data_offset);
    CHECK_EQ_STR(m->path, "tiny-a-mem");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        CHECK_EQ_STR(m->tensors[i].name, f->tensors[i].name);
        CHECK_EQ_INT(m->tensors[i].offset, f->tensors[i].offset);
        CHECK(m->tensors[i].data == raw + (f->tensors[i].data - f->base));
    }
    gguf_close(m);
    free(raw);
    gguf_close(f);
}

TEST(tiny_b_keys) {
    gguf_file *f = open_data(TINY_B);
    ds4_err e;
    uint32_t u;
    CHECK(gguf_get_u32(f, "deepseek4.block_count", &u, &e) == 0);
    CHECK_EQ_INT(u, 6);
    const gguf_value *arr;
    CHECK(gguf_get_arr(f, "tokenizer.ggml.tokens", &arr, &e) == 0);
    CHECK_EQ_INT(arr->v.arr.count, 640);
    CHECK(gguf_get_arr(f, "deepseek4.attention.compress_ratios", &arr, &e) == 0);
    CHECK_EQ_INT(arr->v.arr.count, 6);
    CHECK_EQ_INT(f->size, 8408992);
    CHECK_EQ_INT(f->n_tensors, 178);
    CHECK_EQ_INT(f->n_kv, 50);
    CHECK(gguf_find_tensor(f, "blk.5.ffn_down_exps.weight") != NULL);
    CHECK(gguf_find_tensor(f, "blk.6.ffn_down_exps.weight") == NULL);
    gguf_close(f);
}

TEST(getter_refusals_name_key_and_types) {
    gguf_file *f = open_data(TINY_A);
    ds4_err e;
    uint32_t u;
    CHECK(gguf_get_u32(f, "general.name", &u, &e) == -1);
    CHECKF(strstr(e.msg, "\"general.name\"") && strstr(e.msg, "type string") && strstr(e.msg, "expected u32") &&
           strstr(e.msg, "ds4-synth-tiny-a.gguf"), "%s", e.msg);
    CHECK(gguf_get_u32(f, "deepseek4.context_length", &u, &e) == -1); /* u64 is not u32 */
    CHECKF(strstr(e.msg, "type u64: expected u32"), "%s", e.msg);
    CHECK(gguf_get_u32(f, "no.such.key", &u, &e) == -1);
    CHECKF(strstr(e.msg, "\"no.such.key\": missing"), "%s", e.msg);
    uint64_t u64;
    CHECK(gguf_get_u64ish(f, "deepseek4.expert_weights_scale", &u64, &e) == -1);
    CHECKF(strstr(e.msg, "type f32: expected u32 or u64"), "%s", e.msg);
    float x;
    CHECK(gguf_get_f32ish(f, "deepseek4.expert_weights_norm", &x, &e) == -1);
    CHECKF(strstr(e.msg, "type bool"), "%s", e.msg);
    bool b;
    CHECK(gguf_get_bool(f, "deepseek4.block_count", &b, &e) == -1);
    CHECKF(strstr(e.msg, "type u32: expected bool"), "%s", e.msg);
    gguf_str s;
    CHECK(gguf_get_str(f, "tokenizer.ggml.tokens", &s, &e) == -1);
    CHECKF(strstr(e.msg, "type array: expected string"), "%s", e.msg);
    const gguf_value *arr;
    CHECK(gguf_get_arr(f, "general.name", &arr, &e) == -1);
    CHECKF(strstr(e.msg, "type string: expected array"), "%s", e.msg);
    CHECK(gguf_arr_strings(&gguf_find_kv(f, "general.name")->value, &s) == -1);
    gguf_close(f);
}

TEST(open_missing_and_non_regular) {
    ds4_err e;
    CHECK(gguf_open("/nonexistent/dir/x.gguf", &e) == NULL);
    CHECKF(strstr(e.msg, "/nonexistent/dir/x.gguf") && strstr(e.msg, "No such file"), "%s", e.msg);
    CHECK(gguf_open(t_data_path("oracle"), &e) == NULL);
    CHECKF(strstr(e.msg, "not a regular file"), "%s", e.msg);
    CHECK(gguf_open_memory(NULL, 0, NULL, &e) == NULL);
    CHECKF(strstr(e.msg, "<memory>: magic"), "%s", e.msg);
    gguf_close(NULL);
}

TEST(utf8_helper) {
    struct { const char *s; int ok; } cases[] = {
        {"", 1}, {"plain", 1}, {"\xc3\xa9t\xc3\xa9", 1}, {"\xe2\x82\xac", 1}, {"\xf0\x9f\x98\x80", 1},
        {"\xc3", 0}, {"\xc0\xaf", 0}, {"\xe0\x80\xaf", 0}, {"\xed\xa0\x80", 0}, {"\xf4\x90\x80\x80", 0},
        {"\xff", 0}, {"\x80", 0}, {"\xe2\x82", 0}, {"a\xf0\x9f\x98", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gguf_str s = {cases[i].s, strlen(cases[i].s)};
        CHECKF(gguf_str_is_utf8(s) == cases[i].ok, "case %zu", i);
    }
}

/* Copies metadata (via gguf_writer_kv_value) and tensor infos of `rel` into a
 * writer and checks the writer reproduces the file's layout byte for byte.
 * This works for the oracle files because their generator uses the same
 * layout rule (declaration order, every tensor padded to the alignment). */
static void check_reserialize(const char *rel) {
    gguf_file *f = open_data(rel);
    gguf_writer *w = gguf_writer_new(f->alignment);
    CHECK(w != NULL);
    for (uint64_t i = 0; i < f->n_kv; i++)
        CHECKF(gguf_writer_kv_value(w, f->kv[i].key, &f->kv[i].value) == 0, "%s", gguf_writer_error(w));
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        CHECK_EQ_INT(gguf_writer_tensor(w, t->name, t->type, t->n_dims, t->ne), (int)i);
        CHECK_EQ_INT(gguf_writer_tensor_nbytes(w, (int)i), t->nbytes);
    }
    uint8_t *hdr;
    uint64_t len;
    ds4_err e;
    CHECKF(gguf_writer_header_bytes(w, &hdr, &len, &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(len, f->data_offset);
    uint64_t first_diff = len;
    for (uint64_t i = 0; i < len; i++)
        if (hdr[i] != f->base[i]) { first_diff = i; break; }
    CHECKF(first_diff == len, "header differs from %s at byte %llu", rel, (unsigned long long)first_diff);
    for (uint64_t i = 0; i < f->n_tensors; i++)
        CHECK_EQ_INT(gguf_writer_tensor_file_offset(w, (int)i), f->data_offset + f->tensors[i].offset);
    CHECK_EQ_INT(gguf_writer_total_size(w), f->size);
    free(hdr);
    gguf_writer_free(w);
    gguf_close(f);
}

TEST(reserialize_tiny_a_header_is_byte_identical) { check_reserialize(TINY_A); }
TEST(reserialize_tiny_b_header_is_byte_identical) { check_reserialize(TINY_B); }
