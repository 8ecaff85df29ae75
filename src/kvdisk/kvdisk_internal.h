/* kvdisk_internal.h - the file header as a C struct and the helpers shared by
 * format.c (bytes <-> header, checksums, names) and store.c (directory,
 * index, eviction). Not for use outside src/kvdisk and its unit test. */
#ifndef DS4_KVDISK_INTERNAL_H
#define DS4_KVDISK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kvdisk/kvdisk.h"

#define DS4KV_MAGIC "DS4-KVC\n"
#define DS4KV_VERSION 1u
#define DS4KV_HDR_SIZE 144u
/* Offsets of the fields rewritten in place on a hit (not checksummed). */
#define DS4KV_OFF_HITS 128u
#define DS4KV_OFF_LAST_USED 136u

typedef struct ds4kv_hdr {
    uint32_t version;
    uint32_t hdr_size;
    uint8_t model[16];
    uint32_t ctx;
    uint32_t n_tokens;
    uint32_t text_len;
    uint32_t flags;
    uint8_t reason;
    uint8_t quant_bits;
    uint64_t payload_len;
    uint64_t toolmap_len;
    uint64_t created_ns;
    uint8_t meta_sum[16];     /* XXH3-128: header bytes [0,80) ++ tokens ++ text */
    uint8_t toolmap_sum[16];  /* XXH3-128 of the tool map (zeros when none) */
    uint8_t payload_sum[16];  /* XXH3-128 of the payload */
    uint32_t hits;
    uint64_t last_used_ns;
} ds4kv_hdr;

/* Header bytes <-> struct. decode checks magic, version and header size only
 * and writes the reason for a refusal into why (returns -1). */
void ds4kv_hdr_encode(const ds4kv_hdr *h, uint8_t out[DS4KV_HDR_SIZE]);
int ds4kv_hdr_decode(const uint8_t in[DS4KV_HDR_SIZE], ds4kv_hdr *h, char *why, size_t why_cap);

/* Bytes after the header: tokens (4 n) + text + tool map + payload. */
uint64_t ds4kv_file_size(const ds4kv_hdr *h);

/* Checksums (XXH3-128, canonical big-endian bytes). tok_le = tokens as stored. */
void ds4kv_meta_sum(const uint8_t hdr_bytes[DS4KV_HDR_SIZE], const uint8_t *tok_le, size_t n_tokens,
                    const char *text, size_t text_len, uint8_t out[16]);
void ds4kv_sum(const void *p, size_t n, uint8_t out[16]);

/* File name of an entry: hex of XXH3-128(model ++ tokens ++ text) + ".kv". */
void ds4kv_name(const uint8_t model[16], const uint8_t *tok_le, size_t n_tokens, const char *text, size_t text_len,
                char out[40]);
/* 1 if s is 32 hex digits + ".kv". */
int ds4kv_is_name(const char *s);
/* If s is "<name>.kv.tmp.<pid>", the pid (> 0); else 0. */
long ds4kv_tmp_pid(const char *s);

/* 128-bit model identity from ds4_model_identity's 32 hex digits (any other
 * string is hashed, so an odd identity still separates models). */
void ds4kv_model_bytes(const char *identity, uint8_t out[16]);

/* Little-endian token array <-> int32. */
void ds4kv_tokens_to_le(const int32_t *t, size_t n, uint8_t *out);
void ds4kv_tokens_from_le(const uint8_t *in, size_t n, int32_t *out);

#endif
