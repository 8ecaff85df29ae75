/* fuzz_gguf.c - libFuzzer target for the GGUF reader.
 *
 * Parses the input with gguf_open_memory, then touches everything a parsed
 * file hands out: every value (array elements through the accessors, string
 * arrays through gguf_arr_strings), every tensor's first and last byte, and
 * every lookup. libFuzzer's input buffer is exactly sized, so ASan flags any
 * read past the end; the asserts catch pointers the parser should have
 * refused. A refusal must be a non-empty single line. */
#include "gguf/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MUST(c) do { if (!(c)) { fprintf(stderr, "fuzz_gguf: violated: %s\n", #c); abort(); } } while (0)

static volatile uint8_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ds4_err e;
    e.msg[0] = 0;
    gguf_file *f = gguf_open_memory(data, size, "fuzz", &e);
    if (!f) {
        MUST(strncmp(e.msg, "fuzz: ", 6) == 0 && !strchr(e.msg, '\n'));
        return 0;
    }
    const uint8_t *end = data + size;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        MUST(gguf_find_kv(f, kv->key) == kv);
        const gguf_value *v = &kv->value;
        MUST(v->type < GGUF_VTYPE_COUNT);
        if (v->type == GGUF_STRING && v->v.s.len) {
            MUST((const uint8_t *)v->v.s.ptr >= data && v->v.s.len <= (uint64_t)(end - (const uint8_t *)v->v.s.ptr));
            sink ^= (uint8_t)v->v.s.ptr[0] ^ (uint8_t)v->v.s.ptr[v->v.s.len - 1];
            (void)gguf_str_is_utf8(v->v.s);
        }
        if (v->type == GGUF_ARRAY) {
            MUST(v->v.arr.nbytes == 0 || (v->v.arr.data >= data && v->v.arr.nbytes <= (uint64_t)(end - v->v.arr.data)));
            if (v->v.arr.elem_type == GGUF_STRING) {
                gguf_str *s = malloc((size_t)(v->v.arr.count ? v->v.arr.count : 1) * sizeof *s);
                MUST(s && gguf_arr_strings(v, s) == 0);
                for (uint64_t k = 0; k < v->v.arr.count; k++)
                    if (s[k].len) sink ^= (uint8_t)s[k].ptr[s[k].len - 1];
                free(s);
            } else {
                for (uint64_t k = 0; k < v->v.arr.count; k++) {
                    int64_t x;
                    double d;
                    if (gguf_arr_int(v, k, &x) == 0) sink ^= (uint8_t)x;
                    if (gguf_arr_float(v, k, &d) == 0) sink ^= (uint8_t)(d != d);
                }
            }
        }
        /* the typed getters on every key, whatever its type */
        uint32_t u32; uint64_t u64; float fl; bool b; gguf_str s; const gguf_value *a;
        (void)gguf_get_u32(f, kv->key, &u32, &e);
        (void)gguf_get_u64ish(f, kv->key, &u64, &e);
        (void)gguf_get_f32ish(f, kv->key, &fl, &e);
        (void)gguf_get_bool(f, kv->key, &b, &e);
        (void)gguf_get_str(f, kv->key, &s, &e);
        (void)gguf_get_arr(f, kv->key, &a, &e);
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        MUST(gguf_find_tensor(f, t->name) == t);
        MUST(t->n_dims >= 1 && t->n_dims <= GGUF_MAX_DIMS);
        MUST(t->data >= data && t->nbytes <= (uint64_t)(end - t->data));
        if (t->nbytes) sink ^= t->data[0] ^ t->data[t->nbytes - 1];
    }
    gguf_close(f);
    return 0;
}
