/* toolmap.c - the tool-id -> raw DSML map stored beside a checkpoint, so that
 * exact tool replay (spec/server.md §11.4) survives a restart. Layout is the
 * spec's "KTM" trailer (§13.3): magic "KTM", version 1, u32 entry count, then
 * per entry u32 id length (1..256), u32 DSML length (1..512 MiB), id bytes,
 * DSML bytes. Decoding stops at the first invalid entry and keeps the ones
 * before it, as the spec asks; the whole blob is also covered by a checksum
 * in the file header, so a damaged map is normally refused before this. */
#include <stdlib.h>
#include <string.h>

#include "kvdisk/kvdisk.h"

#define KTM_MAX_ID 256u
#define KTM_MAX_DSML (512u << 20)

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static int valid_pair(const char *id, size_t dl) {
    size_t il = id ? strlen(id) : 0;
    return il >= 1 && il <= KTM_MAX_ID && dl >= 1 && dl <= KTM_MAX_DSML;
}

int ds4kv_toolmap_encode(const char *const *ids, const char *const *dsml, const size_t *dsml_len, size_t n,
                         uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    size_t total = 8, count = 0;
    for (size_t i = 0; i < n; i++) {
        if (!valid_pair(ids[i], dsml_len[i]) || !dsml[i]) continue;
        total += 8 + strlen(ids[i]) + dsml_len[i];
        count++;
    }
    if (count > UINT32_MAX) return DS4KV_ERR_ARG;
    uint8_t *b = malloc(total), *o = b;
    if (!b) return DS4KV_ERR_NOMEM;
    memcpy(o, "KTM", 3);
    o[3] = 1;
    put32(o + 4, (uint32_t)count);
    o += 8;
    for (size_t i = 0; i < n; i++) {
        if (!valid_pair(ids[i], dsml_len[i]) || !dsml[i]) continue;
        size_t il = strlen(ids[i]);
        put32(o, (uint32_t)il);
        put32(o + 4, (uint32_t)dsml_len[i]);
        memcpy(o + 8, ids[i], il);
        memcpy(o + 8 + il, dsml[i], dsml_len[i]);
        o += 8 + il + dsml_len[i];
    }
    *out = b;
    *out_len = total;
    return DS4KV_OK;
}

int ds4kv_toolmap_decode(const uint8_t *b, size_t len, uint32_t max_entries, ds4kv_tool_fn fn, void *ud) {
    if (!b || len < 8 || memcmp(b, "KTM", 3) != 0 || b[3] != 1) return -1;
    uint32_t count = get32(b + 4);
    if (max_entries && count > max_entries) return -1;
    size_t off = 8;
    int seen = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (len - off < 8) break;
        uint32_t il = get32(b + off), dl = get32(b + off + 4);
        if (il < 1 || il > KTM_MAX_ID || dl < 1 || dl > KTM_MAX_DSML) break;
        if ((uint64_t)len - off - 8 < (uint64_t)il + dl) break;
        const char *id = (const char *)b + off + 8;
        const char *ds = id + il;
        off += 8 + (size_t)il + dl;
        seen++;
        if (fn && fn(ud, id, il, ds, dl)) break;
    }
    return seen;
}
