/* test_gguf_broken.c - the reader's refusals.
 *
 * tests/data/gguf-broken/README.md is the list of hand-made broken files and
 * the message each must produce; this test reads that table, so the README
 * cannot drift from what is checked. Then, deterministic hostile inputs: every
 * byte of the fuzz seeds overwritten with a few values, and every prefix of
 * the tiny-a header. Inputs are copied into exactly-sized buffers so that
 * under ASan any read past the end is caught, not just wrong answers. */
/* harness.h's main() trips gcc's -Wclobbered (reported to the lead). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wclobbered"
#endif
#include "harness.h"

#include "gguf/gguf.h"

#include <dirent.h>

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

static char *trim(char *s) {
    while (*s == ' ') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n')) s[--n] = 0;
    if (n >= 2 && s[0] == '`' && s[n - 1] == '`') { s[n - 1] = 0; s++; }
    return s;
}

/* Reads, touches and checks everything a parsed file hands out (the same walk
 * as the fuzz target): values, array elements, tensor bytes. */
static void walk(const gguf_file *f, const uint8_t *buf, uint64_t size) {
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_value *v = &f->kv[i].value;
        CHECK(gguf_find_kv(f, f->kv[i].key) == &f->kv[i]);
        if (v->type == GGUF_STRING) {
            CHECK(v->v.s.len == 0 || ((const uint8_t *)v->v.s.ptr >= buf &&
                                      (const uint8_t *)v->v.s.ptr + v->v.s.len <= buf + size));
        }
        if (v->type == GGUF_ARRAY) {
            CHECK(v->v.arr.data >= buf && v->v.arr.data + v->v.arr.nbytes <= buf + size);
            if (v->v.arr.elem_type == GGUF_STRING) {
                gguf_str *s = malloc((size_t)(v->v.arr.count ? v->v.arr.count : 1) * sizeof *s);
                CHECK(gguf_arr_strings(v, s) == 0);
                free(s);
            }
            int64_t x;
            double d;
            for (uint64_t k = 0; k < v->v.arr.count && k < 64; k++) {
                (void)gguf_arr_int(v, k, &x);
                (void)gguf_arr_float(v, k, &d);
            }
        }
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        CHECK(gguf_find_tensor(f, t->name) == t);
        CHECK(t->data >= buf && t->data + t->nbytes <= buf + size);
    }
}

/* Opens `len` bytes from an exactly-sized copy; a refusal must be one line
 * starting with the name. Returns 1 if accepted. */
static int try_open(const uint8_t *bytes, uint64_t len, const char *name, char *msg_out) {
    uint8_t *copy = malloc((size_t)(len ? len : 1));
    memcpy(copy, bytes, (size_t)len);
    ds4_err e = {{0}};
    gguf_file *f = gguf_open_memory(copy, len, name, &e);
    int ok = f != NULL;
    if (f) {
        walk(f, copy, len);
        gguf_close(f);
    } else {
        size_t nl = strlen(name);
        CHECKF(strncmp(e.msg, name, nl) == 0 && e.msg[nl] == ':' && !strchr(e.msg, '\n') && strlen(e.msg) > nl + 10,
               "bad refusal message: %s", e.msg);
    }
    if (msg_out) memcpy(msg_out, e.msg, sizeof e.msg);
    free(copy);
    return ok;
}

TEST(broken_corpus_from_readme) {
    char path[4096];
    snprintf(path, sizeof path, "%s", t_data_path("gguf-broken/README.md"));
    FILE *fp = fopen(path, "r");
    CHECKF(fp != NULL, "cannot open %.300s", path);
    char line[2048];
    char listed[128][96];
    int n = 0;
    while (fgets(line, sizeof line, fp)) {
        if (strncmp(line, "| `", 3) != 0) continue;
        char *cells[4] = {0};
        int nc = 0;
        for (char *tok = strtok(line + 1, "|"); tok && nc < 4; tok = strtok(NULL, "|")) cells[nc++] = tok;
        CHECKF(nc >= 3, "README row with %d cells", nc);
        char *file = trim(cells[0]), *want = trim(cells[2]);
        CHECK(n < 128 && strlen(file) < sizeof listed[0]);
        snprintf(listed[n++], sizeof listed[0], "%s", file);

        char rel[256], fpath[4096];
        snprintf(rel, sizeof rel, "gguf-broken/%s", file);
        snprintf(fpath, sizeof fpath, "%s", t_data_path(rel));
        ds4_err e = {{0}};
        gguf_file *f = gguf_open(fpath, &e);
        CHECKF(f == NULL, "%s was accepted", file);
        size_t pl = strlen(fpath);
        CHECKF(strncmp(e.msg, fpath, pl) == 0 && e.msg[pl] == ':', "%s: message does not start with the path: %s",
               file, e.msg);
        CHECKF(strstr(e.msg, want) != NULL, "%s: message \"%s\" lacks \"%s\"", file, e.msg, want);
        CHECKF(!strchr(e.msg, '\n'), "%s: message is not one line", file);
        /* the memory reader says the same thing */
        uint64_t len;
        uint8_t *b = slurp(fpath, &len);
        CHECK(b != NULL);
        CHECKF(len < 4096, "%s is %llu bytes, expected < 4096", file, (unsigned long long)len);
        char msg[sizeof e.msg];
        CHECK(try_open(b, len, file, msg) == 0);
        CHECKF(strstr(msg, want) != NULL, "%s (memory): message \"%s\" lacks \"%s\"", file, msg, want);
        free(b);
    }
    fclose(fp);
    CHECKF(n >= 15, "only %d broken files listed", n);
    /* every .gguf in the directory is in the table */
    DIR *d = opendir(t_data_path("gguf-broken"));
    CHECK(d != NULL);
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 5, ".gguf") != 0) continue;
        int found = 0;
        for (int i = 0; i < n; i++) found |= strcmp(listed[i], de->d_name) == 0;
        CHECKF(found, "%s is not listed in gguf-broken/README.md", de->d_name);
    }
    closedir(d);
}

static const char *SEEDS[] = {"every_type.gguf", "align64.gguf", "no_tensors.gguf", "header_only.gguf", "deep8.gguf"};

TEST(fuzz_seeds_are_valid) {
    for (size_t i = 0; i < sizeof SEEDS / sizeof SEEDS[0]; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "../fuzz/seeds/fuzz_gguf/%s", SEEDS[i]);
        uint64_t len;
        uint8_t *b = slurp(t_data_path(rel), &len);
        CHECKF(b != NULL, "missing seed %s", rel);
        char msg[1024];
        CHECKF(try_open(b, len, SEEDS[i], msg), "seed %s refused: %s", SEEDS[i], msg);
        free(b);
    }
    /* spot-check the richest seed's content */
    uint64_t len;
    uint8_t *b = slurp(t_data_path("../fuzz/seeds/fuzz_gguf/every_type.gguf"), &len);
    ds4_err e;
    gguf_file *f = gguf_open_memory(b, len, "every_type", &e);
    CHECKF(f != NULL, "%s", e.msg);
    CHECK_EQ_INT(f->n_kv, 15);
    CHECK_EQ_INT(f->n_tensors, 3);
    bool seen[GGUF_VTYPE_COUNT] = {0};
    for (uint64_t i = 0; i < f->n_kv; i++) seen[f->kv[i].value.type] = true;
    for (int t = 0; t < GGUF_VTYPE_COUNT; t++) CHECKF(seen[t], "seed lacks a %s value", gguf_vtype_name((uint32_t)t));
    gguf_close(f);
    free(b);
}

/* Every byte of every seed overwritten with a few values: never a crash or an
 * overread, and each refusal is a proper one-line message. Some mutations are
 * harmless (tensor data, string contents) and must be accepted. */
TEST(seed_byte_mutations) {
    int accepted = 0, refused = 0;
    for (size_t i = 0; i < sizeof SEEDS / sizeof SEEDS[0]; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "../fuzz/seeds/fuzz_gguf/%s", SEEDS[i]);
        uint64_t len;
        uint8_t *b = slurp(t_data_path(rel), &len);
        CHECK(b != NULL);
        for (uint64_t p = 0; p < len; p++) {
            uint8_t orig = b[p];
            const uint8_t vals[5] = {0x00, 0xFF, 0x80, (uint8_t)(orig ^ 1), (uint8_t)(orig + 1)};
            for (int k = 0; k < 5; k++) {
                b[p] = vals[k];
                if (try_open(b, len, "mutant", NULL)) accepted++;
                else refused++;
            }
            b[p] = orig;
        }
        free(b);
    }
    CHECK(accepted > 0 && refused > 0);
}

/* Every prefix of tiny-a up to the end of its header (plus a stride through
 * its data section) is refused. DS4_TEST_QUICK (ASan builds) strides the
 * header too. */
TEST(tiny_a_every_header_prefix_refused) {
    uint64_t len;
    uint8_t *b = slurp(t_data_path("oracle/tiny-a/ds4-synth-tiny-a.gguf"), &len);
    CHECK(b != NULL);
    ds4_err e;
    gguf_file *f = gguf_open_memory(b, len, "tiny-a", &e);
    CHECKF(f != NULL, "%s", e.msg);
    uint64_t data_offset = f->data_offset;
    uint64_t last_end = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        uint64_t end = f->data_offset + f->tensors[i].offset + f->tensors[i].nbytes;
        if (end > last_end) last_end = end;
    }
    gguf_close(f);
    uint64_t step = getenv("DS4_TEST_QUICK") ? 13 : 1;
    for (uint64_t n = 0; n <= data_offset; n += step) CHECKF(!try_open(b, n, "tiny-a-cut", NULL), "prefix %llu accepted",
                                                           (unsigned long long)n);
    for (uint64_t n = data_offset + 1; n < last_end; n += 99991)
        CHECKF(!try_open(b, n, "tiny-a-cut", NULL), "prefix %llu accepted", (unsigned long long)n);
    CHECK(!try_open(b, last_end - 1, "tiny-a-cut", NULL));
    CHECK(try_open(b, last_end, "tiny-a-cut", NULL)); /* cutting only the final padding is fine */
    free(b);
}
