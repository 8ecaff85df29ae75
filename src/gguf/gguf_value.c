/* gguf_value.c - the bounded cursor and the metadata value walker.
 *
 * Owns the rules for one encoded GGUF value: the 13 value types, their sizes,
 * strings (u64 length + bytes) and arrays (u32 element type, u64 count,
 * elements; nested up to GGUF_MAX_ARRAY_DEPTH). Counts and lengths are checked
 * against the bytes left *before* anything is walked or allocated, so a
 * hostile count costs nothing, and recursion is bounded by the depth limit.
 * String values are not UTF-8-checked here (gguf_str_is_utf8 is for callers
 * that need it); names are checked by the parser. */
#include "gguf/gguf_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int gg_need(gg_cur *c, uint64_t n, const char *what) {
    if (n <= gg_left(c)) return 0;
    return ds4_errf(c->err, "%s: %s%s%s: %" PRIu64 " bytes left at offset %" PRIu64 ": expected %" PRIu64
                    " (file truncated)",
                    c->name, c->where, c->where[0] ? " " : "", what, gg_left(c), c->pos, n);
}

int gg_u8(gg_cur *c, const char *what, uint8_t *out) {
    if (gg_need(c, 1, what)) return -1;
    *out = c->p[c->pos];
    c->pos += 1;
    return 0;
}

int gg_u32(gg_cur *c, const char *what, uint32_t *out) {
    if (gg_need(c, 4, what)) return -1;
    *out = gg_le32(c->p + c->pos);
    c->pos += 4;
    return 0;
}

int gg_u64(gg_cur *c, const char *what, uint64_t *out) {
    if (gg_need(c, 8, what)) return -1;
    *out = gg_le64(c->p + c->pos);
    c->pos += 8;
    return 0;
}

int gg_str(gg_cur *c, const char *what, gguf_str *out) {
    uint64_t len;
    char lw[96];
    snprintf(lw, sizeof lw, "%s length", what);
    if (gg_u64(c, lw, &len)) return -1;
    if (len > gg_left(c))
        return ds4_errf(c->err, "%s: %s%s%s: length %" PRIu64 " at offset %" PRIu64
                        ": expected at most %" PRIu64 " (bytes left in file)",
                        c->name, c->where, c->where[0] ? " " : "", what, len, c->pos - 8, gg_left(c));
    out->ptr = (const char *)(c->p + c->pos);
    out->len = len;
    c->pos += len;
    return 0;
}

uint32_t gg_scalar_size(uint32_t t) {
    switch (t) {
    case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
    case GGUF_U16: case GGUF_I16: return 2;
    case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
    case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
    default: return 0;
    }
}

uint32_t gg_min_size(uint32_t t) {
    if (t == GGUF_STRING) return 8;
    if (t == GGUF_ARRAY) return 12;
    return gg_scalar_size(t);
}

void gg_decode_scalar(uint32_t type, const uint8_t *p, gguf_value *out) {
    out->type = (gguf_vtype)type;
    switch (type) {
    case GGUF_U8: out->v.u = p[0]; break;
    case GGUF_BOOL: out->v.u = p[0] != 0; break; /* spec: nonzero = true */
    case GGUF_I8: out->v.i = (int8_t)p[0]; break;
    case GGUF_U16: out->v.u = gg_le16(p); break;
    case GGUF_I16: out->v.i = (int16_t)gg_le16(p); break;
    case GGUF_U32: out->v.u = gg_le32(p); break;
    case GGUF_I32: out->v.i = (int32_t)gg_le32(p); break;
    case GGUF_U64: out->v.u = gg_le64(p); break;
    case GGUF_I64: out->v.i = (int64_t)gg_le64(p); break;
    case GGUF_F32: {
        uint32_t b = gg_le32(p);
        float f;
        memcpy(&f, &b, 4);
        out->v.f = f;
        break;
    }
    case GGUF_F64: {
        uint64_t b = gg_le64(p);
        memcpy(&out->v.f, &b, 8);
        break;
    }
    default: break;
    }
}

int gg_read_value(gg_cur *c, uint32_t type, int depth, gguf_value *out) {
    if (type >= GGUF_VTYPE_COUNT)
        return ds4_errf(c->err, "%s: %s%svalue type: %" PRIu32 ": expected 0..12 (a GGUF value type)",
                        c->name, c->where, c->where[0] ? " " : "", type);
    uint32_t sz = gg_scalar_size(type);
    if (sz) {
        if (gg_need(c, sz, gguf_vtype_name(type))) return -1;
        if (out) gg_decode_scalar(type, c->p + c->pos, out);
        c->pos += sz;
        return 0;
    }
    if (type == GGUF_STRING) {
        gguf_str s;
        if (gg_str(c, "string", &s)) return -1;
        if (out) { out->type = GGUF_STRING; out->v.s = s; }
        return 0;
    }
    /* array */
    if (depth + 1 > GGUF_MAX_ARRAY_DEPTH)
        return ds4_errf(c->err, "%s: %s%sarray nesting depth: %d: expected at most %d",
                        c->name, c->where, c->where[0] ? " " : "", depth + 1, GGUF_MAX_ARRAY_DEPTH);
    uint32_t et;
    uint64_t count;
    if (gg_u32(c, "array element type", &et)) return -1;
    if (et >= GGUF_VTYPE_COUNT)
        return ds4_errf(c->err, "%s: %s%sarray element type: %" PRIu32 " at offset %" PRIu64
                        ": expected 0..12 (a GGUF value type)",
                        c->name, c->where, c->where[0] ? " " : "", et, c->pos - 4);
    if (gg_u64(c, "array count", &count)) return -1;
    uint64_t start = c->pos;
    uint64_t minsz = gg_min_size(et);
    if (count > gg_left(c) / minsz)
        return ds4_errf(c->err, "%s: %s%sarray count: %" PRIu64 " of %s at offset %" PRIu64
                        ": expected at most %" PRIu64 " (elements that fit in the %" PRIu64 " bytes left)",
                        c->name, c->where, c->where[0] ? " " : "", count, gguf_vtype_name(et), c->pos - 8,
                        gg_left(c) / minsz, gg_left(c));
    sz = gg_scalar_size(et);
    if (sz) {
        c->pos += count * sz; /* fits: checked above */
    } else {
        for (uint64_t i = 0; i < count; i++)
            if (gg_read_value(c, et, depth + 1, NULL)) return -1;
    }
    if (out) {
        out->type = GGUF_ARRAY;
        out->v.arr.elem_type = (gguf_vtype)et;
        out->v.arr.count = count;
        out->v.arr.data = c->p + start;
        out->v.arr.nbytes = c->pos - start;
    }
    return 0;
}

int gg_utf8_valid(const char *str, uint64_t len) {
    const unsigned char *s = (const unsigned char *)str;
    uint64_t i = 0;
    while (i < len) {
        unsigned char b = s[i];
        if (b < 0x80) { i++; continue; }
        uint32_t cp;
        int n;
        if (b >= 0xC2 && b <= 0xDF) { cp = b & 0x1F; n = 1; }
        else if (b >= 0xE0 && b <= 0xEF) { cp = b & 0x0F; n = 2; }
        else if (b >= 0xF0 && b <= 0xF4) { cp = b & 0x07; n = 3; }
        else return 0;
        if ((uint64_t)n > len - i - 1) return 0;
        for (int k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += (uint64_t)n + 1;
    }
    return 1;
}

const char *gg_msg_name(char *dst, size_t cap, const char *s, uint64_t len) {
    static const char hex[] = "0123456789abcdef";
    int utf8 = gg_utf8_valid(s, len);
    size_t o = 0;
    for (uint64_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)s[i];
        int esc = b < 0x20 || b == 0x7F || b == '"' || b == '\\' || (b >= 0x80 && !utf8);
        size_t need = esc ? 4 : 1;
        if (utf8 && b >= 0xC0) /* keep a multi-byte character whole */
            need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
        if (o + need + 4 > cap) {
            memcpy(dst + o, "...", 4);
            return dst;
        }
        if (esc) {
            dst[o++] = '\\'; dst[o++] = 'x'; dst[o++] = hex[b >> 4]; dst[o++] = hex[b & 15];
        } else {
            memcpy(dst + o, s + i, need);
            o += need;
            i += need - 1;
        }
    }
    dst[o] = 0;
    return dst;
}

int gguf_str_is_utf8(gguf_str s) { return gg_utf8_valid(s.ptr, s.len); }

const char *gguf_vtype_name(uint32_t t) {
    static const char *names[GGUF_VTYPE_COUNT] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                                  "bool", "string", "array", "u64", "i64", "f64"};
    return t < GGUF_VTYPE_COUNT ? names[t] : "unknown";
}
