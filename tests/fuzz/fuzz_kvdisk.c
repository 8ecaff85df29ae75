/* fuzz_kvdisk.c - libFuzzer target for the disk KV store's readers of
 * untrusted bytes (a cache directory is only as trustworthy as the disk):
 * the tool-map decoder, the header decoder, and a whole store scan + lookup +
 * load over one file holding the input. Most random files die at the name or
 * checksum check, so when the first byte is odd the harness first repairs
 * the checksums, the name and the model identity (as a consistent but
 * hostile writer would) to drive the index and load paths with arbitrary
 * header fields, token ids, text and tool maps. Aborts if a load hands back
 * bytes that differ from the file or a tool map entry breaks its limits. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvdisk/kvdisk.h"
#include "kvdisk/kvdisk_internal.h"

static int check_tool(void *ud, const char *id, size_t il, const char *dsml, size_t dl) {
    (void)ud; (void)id; (void)dsml;
    if (il < 1 || il > 256 || dl < 1 || dl > (512u << 20)) abort();
    return 0;
}

static void quiet(void *ud, const char *line) { (void)ud; (void)line; }

static char dir[64];

static void clear_dir(void) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char p[256];
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
}

static void remove_dir(void) {
    clear_dir();
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/fuzz-kvdisk.%d", (int)getpid());
        mkdir(dir, 0700);
        atexit(remove_dir);
    }
    ds4kv_toolmap_decode(data, size, 0, check_tool, NULL);
    ds4kv_toolmap_decode(data, size, 3, check_tool, NULL);
    if (size < 1 + DS4KV_HDR_SIZE) return 0;
    const int fix = data[0] & 1;
    uint8_t *f = malloc(size - 1);
    memcpy(f, data + 1, size - 1);
    size_t n = size - 1;
    ds4kv_hdr h;
    char why[256], name[40] = "0123456789abcdef0123456789abcdef.kv", ident[33];
    static const char hx[] = "0123456789abcdef";
    const int hdr_ok = ds4kv_hdr_decode(f, &h, why, sizeof why) == 0;
    const int repaired = fix && hdr_ok && ds4kv_file_size(&h) == n;
    for (int i = 0; i < 16; i++) { ident[2 * i] = hx[f[16 + i] >> 4]; ident[2 * i + 1] = hx[f[16 + i] & 15]; }
    ident[32] = 0;
    if (repaired) {
        const uint8_t *tok = f + DS4KV_HDR_SIZE;
        const char *text = (const char *)tok + 4ull * h.n_tokens;
        const uint8_t *tm = (const uint8_t *)text + h.text_len;
        const uint8_t *pl = tm + h.toolmap_len;
        if (h.toolmap_len) ds4kv_sum(tm, h.toolmap_len, f + 96);
        ds4kv_sum(pl, h.payload_len, f + 112);
        ds4kv_meta_sum(f, tok, h.n_tokens, text, h.text_len, f + 80);
        ds4kv_name(h.model, tok, h.n_tokens, text, h.text_len, name);
    }
    clear_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (fp) {
        fwrite(f, 1, n, fp);
        fclose(fp);
    }
    ds4kv_config c = {.dir = dir, .budget_bytes = 1ull << 30, .model_identity = ident, .ctx = 4096, .log = quiet};
    ds4kv_store *st = ds4kv_open(&c, NULL);
    if (st) {
        size_t ne = 0;
        ds4kv_entry *all = ds4kv_list(st, &ne);
        if (repaired && ne != 1) abort();  /* the harness must reach the index and load paths */
        for (size_t i = 0; i < ne; i++) {
            ds4kv_loaded l;
            if (ds4kv_load(st, all[i].name, &l, NULL) == DS4KV_OK) {
                /* What comes back is exactly the file's payload. */
                if (l.payload_len != h.payload_len || memcmp(l.payload, f + n - l.payload_len, l.payload_len)) abort();
                if (l.toolmap) ds4kv_toolmap_decode(l.toolmap, l.toolmap_len, 0, check_tool, NULL);
                ds4kv_loaded_free(&l);
            }
        }
        if (ne) {
            const char *ids[1] = {"call_x"};
            ds4kv_tools_restore(st, ids, 1, check_tool, NULL);
            ds4kv_tools_restore(st, NULL, 0, check_tool, NULL);
        }
        free(all);
        ds4kv_close(st);
    }
    free(f);
    return 0;
}
