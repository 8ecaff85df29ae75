/* cmd_inspect.c - `ds4 inspect FILE.gguf`: what is in a GGUF and whether it is
 * a model ds4 can run. Prints the metadata (arrays summarised), the tensor
 * table by type, parameters and bytes per model component (from the layout
 * table, so the grouping matches spec/model.md §10), and the verdict: the real
 * DeepSeek V4 Flash shape, a valid smaller model of the same architecture, or
 * the first reason it is not loadable. Exit status 0 only for a valid model. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "gguf/gguf.h"
#include "model/config.h"
#include "model/layout.h"
#include "model/weights.h"
#include "quant/quant.h"

static void print_value(const gguf_value *v) {
    switch (v->type) {
    case GGUF_U8: case GGUF_U16: case GGUF_U32: case GGUF_U64: printf("%" PRIu64, v->v.u); break;
    case GGUF_I8: case GGUF_I16: case GGUF_I32: case GGUF_I64: printf("%" PRId64, v->v.i); break;
    case GGUF_F32: case GGUF_F64: printf("%g", v->v.f); break;
    case GGUF_BOOL: printf("%s", v->v.u ? "true" : "false"); break;
    case GGUF_STRING:
        printf("\"%.*s%s\"", (int)(v->v.s.len > 60 ? 60 : v->v.s.len), v->v.s.ptr, v->v.s.len > 60 ? "..." : "");
        break;
    case GGUF_ARRAY: {
        printf("[%s × %" PRIu64 "]", gguf_vtype_name(v->v.arr.elem_type), v->v.arr.count);
        if (v->v.arr.elem_type != GGUF_STRING && v->v.arr.elem_type != GGUF_ARRAY) {
            printf(" ");
            for (uint64_t i = 0; i < v->v.arr.count && i < 8; i++) {
                int64_t iv;
                double fv;
                if (gguf_arr_int(v, i, &iv) == 0) printf("%s%" PRId64, i ? "," : "", iv);
                else if (gguf_arr_float(v, i, &fv) == 0) printf("%s%g", i ? "," : "", fv);
            }
            if (v->v.arr.count > 8) printf(",...");
        }
        break;
    }
    default: printf("?"); break;
    }
}

typedef struct acc {
    const gguf_file *f;
    uint64_t params[DS4_C_COUNT], bytes[DS4_C_COUNT];
} acc;

static int add_component(void *ud, const ds4_tensor_spec *s) {
    acc *a = ud;
    const gguf_tensor *t = gguf_find_tensor(a->f, s->name);
    if (!t) return 0;
    a->params[s->comp] += t->n_elements;
    a->bytes[s->comp] += t->nbytes;
    return 0;
}

int ds4_cmd_inspect(int argc, char **argv) {
    if (argc != 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fprintf(argc == 2 ? stdout : stderr, "usage: ds4 inspect FILE.gguf\n");
        return argc == 2 ? 0 : 2;
    }
    ds4_err err = {{0}};
    gguf_file *f = gguf_open(argv[1], &err);
    if (!f) {
        printf("INVALID: %s\n", err.msg);
        return 1;
    }
    printf("file: %s\nGGUF v%u, %" PRIu64 " bytes, alignment %u, %" PRIu64 " metadata keys, %" PRIu64 " tensors\n\n",
           f->path, f->version, f->size, f->alignment, f->n_kv, f->n_tensors);
    printf("metadata:\n");
    for (uint64_t i = 0; i < f->n_kv; i++) {
        printf("  %-52s ", f->kv[i].key);
        print_value(&f->kv[i].value);
        printf("\n");
    }
    uint64_t cnt[64] = {0}, bytes[64] = {0}, elems[64] = {0}, total = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const uint32_t t = f->tensors[i].type < 64 ? f->tensors[i].type : 63;
        cnt[t]++;
        bytes[t] += f->tensors[i].nbytes;
        elems[t] += f->tensors[i].n_elements;
        total += f->tensors[i].nbytes;
    }
    printf("\ntensors by type:\n");
    for (int t = 0; t < 64; t++)
        if (cnt[t])
            printf("  %-8s %6" PRIu64 " tensors %16" PRIu64 " params %16" PRIu64 " bytes\n", ds4_type_name((uint32_t)t),
                   cnt[t], elems[t], bytes[t]);
    printf("  %-8s %6" PRIu64 " tensors %33" PRIu64 " bytes (%.2f GiB)\n", "total", f->n_tensors, total,
           (double)total / (1024.0 * 1024 * 1024));

    ds4_config c;
    ds4_weights *w = NULL;
    int rc = 1;
    if (ds4_config_from_gguf(f, &c, &err)) {
        printf("\nINVALID: %s\n", err.msg);
        goto out;
    }
    acc a = {.f = f};
    ds4_layout_walk(&c, add_component, &a);
    printf("\ncomponents:\n");
    uint64_t tp = 0, tb = 0;
    for (int i = 0; i < DS4_C_COUNT; i++) {
        if (!a.params[i]) continue;
        printf("  %-24s %16" PRIu64 " params %16" PRIu64 " bytes\n", ds4_component_names[i], a.params[i], a.bytes[i]);
        tp += a.params[i];
        tb += a.bytes[i];
    }
    printf("  %-24s %16" PRIu64 " params %16" PRIu64 " bytes\n", "total", tp, tb);
    static ds4_weights wbuf;
    w = &wbuf;
    if (ds4_weights_bind(f, &c, w, &err)) {
        printf("\nINVALID: %s\n", err.msg);
        goto out;
    }
    if (c.is_real) {
        printf("\nVALID: DeepSeek V4 Flash (the real shape: %u layers, width %u, %u experts)\n", c.n_layer, c.n_embd,
               c.n_expert);
    } else {
        char why[256];
        ds4_config_real_diff(&c, why, sizeof why);
        printf("\nVALID: a smaller model of the DeepSeek V4 Flash architecture (%u layers, width %u, %u experts; %s)\n",
               c.n_layer, c.n_embd, c.n_expert, why);
    }
    rc = 0;
out:
    gguf_close(f);
    return rc;
}
