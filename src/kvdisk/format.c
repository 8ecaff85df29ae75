/* format.c - the bytes of one cache file (issue 7; replaces the "KVC" v1
 * layout of spec/server.md §13.3, which has no model identity and no
 * checksum, so a corrupt or foreign file could only be caught by the engine).
 *
 * All integers little-endian. A file is exactly
 *
 *   offset size  field
 *   0      8     magic "DS4-KVC\n"
 *   8      4     u32 format version = 1
 *   12     4     u32 header size = 144
 *   16     16    model identity (ds4_model_identity as 16 bytes)
 *   32     4     u32 context size the snapshot was written for
 *   36     4     u32 token count n (> 0)
 *   40     4     u32 cache-text bytes T
 *   44     4     u32 flags (bit0 tool map, bit1 Responses-visible key,
 *                bit2 thinking-visible key)
 *   48     1     u8 save reason (spec §13.2 codes)
 *   49     1     u8 routed-expert quant bits (0 = unknown)
 *   50     6     reserved (0)
 *   56     8     u64 payload bytes P
 *   64     8     u64 tool-map bytes M
 *   72     8     u64 creation time (Unix ns)
 *   80     16    XXH3-128 of bytes [0,80) ++ tokens ++ text   ("meta")
 *   96     16    XXH3-128 of the tool map (zeros when M = 0)
 *   112    16    XXH3-128 of the payload
 *   128    4     u32 hit count            } rewritten in place on a hit,
 *   132    4     reserved (0)             } deliberately outside every
 *   136    8     u64 last-used time (ns)  } checksum
 *   144    4n    u32 token ids
 *   ...    T     cache text
 *   ...    M     tool map ("KTM" blob, toolmap.c)
 *   ...    P     engine session payload ("DSV4", spec/model.md §5.5)
 *
 * Why this order: everything the index needs (header, tokens, text, tool-map
 * ids) sits before the payload, so a scan reads a few KB per file and never
 * the payload; the payload checksum is verified when it is actually loaded.
 * The file size must equal 144 + 4n + T + M + P exactly: truncation and
 * trailing garbage are both refused. The name is a hash of the model, the
 * tokens and the text, and is re-checked at scan, so a renamed or copied file
 * cannot answer for a prefix it does not hold. */
#include <string.h>
#include <stdio.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack: hashing never allocates */
#include <xxhash.h>

#include "kvdisk/kvdisk_internal.h"

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void ds4kv_hdr_encode(const ds4kv_hdr *h, uint8_t o[DS4KV_HDR_SIZE]) {
    memset(o, 0, DS4KV_HDR_SIZE);
    memcpy(o, DS4KV_MAGIC, 8);
    put32(o + 8, h->version);
    put32(o + 12, h->hdr_size);
    memcpy(o + 16, h->model, 16);
    put32(o + 32, h->ctx);
    put32(o + 36, h->n_tokens);
    put32(o + 40, h->text_len);
    put32(o + 44, h->flags);
    o[48] = h->reason;
    o[49] = h->quant_bits;
    put64(o + 56, h->payload_len);
    put64(o + 64, h->toolmap_len);
    put64(o + 72, h->created_ns);
    memcpy(o + 80, h->meta_sum, 16);
    memcpy(o + 96, h->toolmap_sum, 16);
    memcpy(o + 112, h->payload_sum, 16);
    put32(o + DS4KV_OFF_HITS, h->hits);
    put64(o + DS4KV_OFF_LAST_USED, h->last_used_ns);
}

int ds4kv_hdr_decode(const uint8_t in[DS4KV_HDR_SIZE], ds4kv_hdr *h, char *why, size_t cap) {
    memset(h, 0, sizeof *h);
    if (memcmp(in, DS4KV_MAGIC, 8) != 0) {
        snprintf(why, cap, "magic %02x%02x%02x%02x%02x%02x%02x%02x, expected \"DS4-KVC\\n\"", in[0], in[1], in[2],
                 in[3], in[4], in[5], in[6], in[7]);
        return -1;
    }
    h->version = get32(in + 8);
    h->hdr_size = get32(in + 12);
    if (h->version != DS4KV_VERSION) {
        snprintf(why, cap, "format version %u, expected %u", h->version, DS4KV_VERSION);
        return -1;
    }
    if (h->hdr_size != DS4KV_HDR_SIZE) {
        snprintf(why, cap, "header size %u, expected %u", h->hdr_size, DS4KV_HDR_SIZE);
        return -1;
    }
    memcpy(h->model, in + 16, 16);
    h->ctx = get32(in + 32);
    h->n_tokens = get32(in + 36);
    h->text_len = get32(in + 40);
    h->flags = get32(in + 44);
    h->reason = in[48];
    h->quant_bits = in[49];
    h->payload_len = get64(in + 56);
    h->toolmap_len = get64(in + 64);
    h->created_ns = get64(in + 72);
    memcpy(h->meta_sum, in + 80, 16);
    memcpy(h->toolmap_sum, in + 96, 16);
    memcpy(h->payload_sum, in + 112, 16);
    h->hits = get32(in + DS4KV_OFF_HITS);
    h->last_used_ns = get64(in + DS4KV_OFF_LAST_USED);
    if (h->n_tokens == 0) {
        snprintf(why, cap, "token count 0, expected > 0");
        return -1;
    }
    /* Sizes beyond 2^48 are not files this store wrote; refusing them keeps
     * the size sum below from overflowing. */
    if (h->payload_len == 0 || h->payload_len >> 48 || h->toolmap_len >> 48) {
        snprintf(why, cap, "payload %llu / tool map %llu bytes, expected 1..2^48",
                 (unsigned long long)h->payload_len, (unsigned long long)h->toolmap_len);
        return -1;
    }
    if (((h->flags & DS4KV_FLAG_TOOLMAP) != 0) != (h->toolmap_len != 0)) {
        snprintf(why, cap, "flags 0x%x disagree with a tool map of %llu bytes", h->flags,
                 (unsigned long long)h->toolmap_len);
        return -1;
    }
    return 0;
}

uint64_t ds4kv_file_size(const ds4kv_hdr *h) {
    return DS4KV_HDR_SIZE + 4ull * h->n_tokens + h->text_len + h->toolmap_len + h->payload_len;
}

static void canon(XXH128_hash_t v, uint8_t out[16]) {
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, v);
    memcpy(out, c.digest, 16);
}

void ds4kv_meta_sum(const uint8_t hdr[DS4KV_HDR_SIZE], const uint8_t *tok_le, size_t n_tokens, const char *text,
                    size_t text_len, uint8_t out[16]) {
    XXH3_state_t s;
    XXH3_INITSTATE(&s);
    XXH3_128bits_reset(&s);
    XXH3_128bits_update(&s, hdr, 80);
    XXH3_128bits_update(&s, tok_le, 4 * n_tokens);
    if (text_len) XXH3_128bits_update(&s, text, text_len);
    canon(XXH3_128bits_digest(&s), out);
}

void ds4kv_sum(const void *p, size_t n, uint8_t out[16]) { canon(XXH3_128bits(p, n), out); }

void ds4kv_name(const uint8_t model[16], const uint8_t *tok_le, size_t n_tokens, const char *text, size_t text_len,
                char out[40]) {
    uint8_t d[16], n4[4];
    XXH3_state_t s;
    XXH3_INITSTATE(&s);
    XXH3_128bits_reset(&s);
    XXH3_128bits_update(&s, model, 16);
    put32(n4, (uint32_t)n_tokens);
    XXH3_128bits_update(&s, n4, 4);
    XXH3_128bits_update(&s, tok_le, 4 * n_tokens);
    if (text_len) XXH3_128bits_update(&s, text, text_len);
    canon(XXH3_128bits_digest(&s), d);
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    memcpy(out + 32, ".kv", 4);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int ds4kv_is_name(const char *s) {
    for (int i = 0; i < 32; i++)
        if (hexval(s[i]) < 0 || (s[i] >= 'A' && s[i] <= 'F')) return 0;
    return strcmp(s + 32, ".kv") == 0;
}

long ds4kv_tmp_pid(const char *s) {
    for (int i = 0; i < 32; i++)
        if (hexval(s[i]) < 0) return 0;
    if (strncmp(s + 32, ".kv.tmp.", 8) != 0) return 0;
    const char *p = s + 40;
    if (!*p) return 0;
    long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || v > 100000000) return 0;
        v = v * 10 + (*p - '0');
    }
    return v;
}

void ds4kv_model_bytes(const char *id, uint8_t out[16]) {
    size_t n = id ? strlen(id) : 0;
    int ok = n == 32;
    for (size_t i = 0; ok && i < 32; i++) ok = hexval(id[i]) >= 0;
    if (ok) {
        for (int i = 0; i < 16; i++) out[i] = (uint8_t)(hexval(id[2 * i]) << 4 | hexval(id[2 * i + 1]));
        return;
    }
    ds4kv_sum(id ? id : "", n, out);
}

void ds4kv_tokens_to_le(const int32_t *t, size_t n, uint8_t *out) {
    for (size_t i = 0; i < n; i++) put32(out + 4 * i, (uint32_t)t[i]);
}

void ds4kv_tokens_from_le(const uint8_t *in, size_t n, int32_t *out) {
    for (size_t i = 0; i < n; i++) out[i] = (int32_t)get32(in + 4 * i);
}
