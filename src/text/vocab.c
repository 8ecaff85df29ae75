/* vocab.c - building a ds4_vocab: token table, string->id map, merge table,
 * byte symbols and the seven protocol specials (spec/text.md §1.1-§1.2, §1.5).
 *
 * All three sources (string arrays, GGUF, tokenizer.json) end in
 * ds4_vocab_new, so there is one place that validates a table. Lookups are
 * open-addressing hashes sized to a power of two at least twice the entry
 * count: a vocabulary is built once per process and read by every request. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <stdlib.h>
#include <string.h>

#include "text/vocab_internal.h"

static const char *const special_strs[DS4_SP_COUNT] = {
    "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
    "<\xef\xbd\x9cUser\xef\xbd\x9c>",
    "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>",
    "<think>",
    "</think>",
    "\xef\xbd\x9c" "DSML\xef\xbd\x9c",
};

const char *ds4_special_str(ds4_special s) {
    return (unsigned)s < DS4_SP_COUNT ? special_strs[s] : "";
}

/* ---- byte alphabet (§1.5) ---- */

static int byte_is_direct(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
}

uint32_t ds4_byte_to_cp(uint8_t b) {
    if (byte_is_direct(b)) return b;
    /* The 68 other bytes in increasing order map to U+0100.. */
    uint32_t k = 0;
    for (unsigned x = 0; x < b; x++) if (!byte_is_direct(x)) k++;
    return 0x100 + k;
}

int ds4_cp_to_byte(uint32_t cp) {
    static int16_t inv[0x144];
    static int init;
    if (!__atomic_load_n(&init, __ATOMIC_ACQUIRE)) {
        int16_t tmp[0x144];
        for (int i = 0; i < 0x144; i++) tmp[i] = -1;
        for (int b = 0; b < 256; b++) tmp[ds4_byte_to_cp((uint8_t)b)] = (int16_t)b;
        memcpy(inv, tmp, sizeof inv);
        __atomic_store_n(&init, 1, __ATOMIC_RELEASE);
    }
    return cp < 0x144 ? inv[cp] : -1;
}

/* Decode one UTF-8 char at s[0..n); returns its length, or 0 if invalid. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    if (!n) return 0;
    unsigned c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    size_t len; uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

/* Bytes of a byte-level token string; -1 if some char is outside the alphabet. */
static int byte_level_decode(const char *s, size_t n, char *out, size_t *out_len) {
    size_t i = 0, k = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (!l) return -1;
        int b = ds4_cp_to_byte(cp);
        if (b < 0) return -1;
        out[k++] = (char)b;
        i += l;
    }
    *out_len = k;
    return 0;
}

/* ---- string map ---- */

static uint32_t str_hash(const char *s, size_t n) { return (uint32_t)XXH3_64bits(s, n); }

int32_t ds4_vocab_find(const ds4_vocab *v, const char *s, size_t len) {
    uint32_t i = str_hash(s, len) & v->map_mask;
    for (;;) {
        int32_t id = v->map[i];
        if (id < 0) return -1;
        if (v->str_len[id] == len && memcmp(v->str_arena + v->str_off[id], s, len) == 0) return id;
        i = (i + 1) & v->map_mask;
    }
}

static uint32_t pow2_at_least(size_t n) {
    uint32_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

void ds4_vocab_free(ds4_vocab *v) {
    if (!v) return;
    free(v->str_arena); free(v->str_off); free(v->str_len);
    free(v->byte_arena); free(v->byte_off); free(v->byte_len);
    free(v->added); free(v->map); free(v->merges);
    ds4_pretok_free(v->pre);
    free(v);
}

ds4_vocab *ds4_vocab_new(const char *const *tokens, const uint64_t *token_lens, size_t n_tokens,
                         const char *const *merges, const uint64_t *merge_lens, size_t n_merges,
                         const int32_t *types, ds4_err *err) {
    if (n_tokens == 0 || n_tokens > 0x7fffffff) {
        ds4_errf(err, "tokenizer: %zu tokens; expected 1 to 2^31-1", n_tokens);
        return NULL;
    }
    ds4_vocab *v = calloc(1, sizeof *v);
    if (!v) { ds4_errf(err, "tokenizer: out of memory"); return NULL; }
    v->n = n_tokens;
    size_t total = 0;
    for (size_t i = 0; i < n_tokens; i++) {
        uint64_t l = token_lens ? token_lens[i] : strlen(tokens[i]);
        if (l > 0xffff) { ds4_errf(err, "tokenizer: token %zu is %llu bytes long; expected at most 65535", i, (unsigned long long)l); goto fail; }
        total += l + 1;
    }
    v->str_arena = malloc(total ? total : 1);
    v->byte_arena = malloc(total ? total : 1);
    v->str_off = malloc(n_tokens * sizeof *v->str_off);
    v->str_len = malloc(n_tokens * sizeof *v->str_len);
    v->byte_off = malloc(n_tokens * sizeof *v->byte_off);
    v->byte_len = malloc(n_tokens * sizeof *v->byte_len);
    v->added = calloc(n_tokens, 1);
    v->map_mask = pow2_at_least(n_tokens * 2) - 1;
    v->map = malloc(((size_t)v->map_mask + 1) * sizeof *v->map);
    if (!v->str_arena || !v->byte_arena || !v->str_off || !v->str_len || !v->byte_off || !v->byte_len || !v->added || !v->map) {
        ds4_errf(err, "tokenizer: out of memory for %zu tokens", n_tokens);
        goto fail;
    }
    memset(v->map, 0xff, ((size_t)v->map_mask + 1) * sizeof *v->map);
    size_t off = 0, boff = 0;
    for (size_t i = 0; i < n_tokens; i++) {
        size_t l = token_lens ? (size_t)token_lens[i] : strlen(tokens[i]);
        memcpy(v->str_arena + off, tokens[i], l);
        v->str_arena[off + l] = 0;
        v->str_off[i] = (uint32_t)off;
        v->str_len[i] = (uint32_t)l;
        size_t bl = 0;
        int is_added = types && (types[i] == DS4_TOKTYPE_CONTROL || types[i] == DS4_TOKTYPE_USER_DEFINED);
        if (!is_added && byte_level_decode(tokens[i], l, v->byte_arena + boff, &bl) < 0) is_added = 1;
        if (is_added) { memcpy(v->byte_arena + boff, tokens[i], l); bl = l; }
        v->added[i] = (uint8_t)is_added;
        v->byte_off[i] = (uint32_t)boff;
        v->byte_len[i] = (uint32_t)bl;
        boff += bl;
        off += l + 1;
        /* First id wins for duplicate strings. */
        uint32_t h = str_hash(tokens[i], l) & v->map_mask;
        for (;;) {
            int32_t id = v->map[h];
            if (id < 0) { v->map[h] = (int32_t)i; break; }
            if (v->str_len[id] == l && memcmp(v->str_arena + v->str_off[id], tokens[i], l) == 0) break;
            h = (h + 1) & v->map_mask;
        }
    }
    for (int s = 0; s < DS4_SP_COUNT; s++) {
        v->special[s] = ds4_vocab_find(v, special_strs[s], strlen(special_strs[s]));
        if (v->special[s] < 0) {
            ds4_errf(err, "tokenizer: special token \"%s\" is not in the token table; expected the DeepSeek V4 protocol tokens", special_strs[s]);
            goto fail;
        }
    }
    for (int b = 0; b < 256; b++) {
        char tmp[4];
        uint32_t cp = ds4_byte_to_cp((uint8_t)b);
        size_t l;
        if (cp < 0x80) { tmp[0] = (char)cp; l = 1; }
        else { tmp[0] = (char)(0xC0 | (cp >> 6)); tmp[1] = (char)(0x80 | (cp & 0x3F)); l = 2; }
        v->byte_id[b] = ds4_vocab_find(v, tmp, l);
        if (v->byte_id[b] < 0) {
            ds4_errf(err, "tokenizer: no token for byte 0x%02X (byte-level symbol U+%04X); expected all 256 byte symbols", b, cp);
            goto fail;
        }
    }
    v->merge_mask = pow2_at_least(n_merges * 2) - 1;
    v->merges = malloc(((size_t)v->merge_mask + 1) * sizeof *v->merges);
    if (!v->merges) { ds4_errf(err, "tokenizer: out of memory for %zu merges", n_merges); goto fail; }
    for (size_t i = 0; i <= v->merge_mask; i++) v->merges[i].rank = -1;
    char *cat = NULL;
    size_t cat_cap = 0;
    for (size_t r = 0; r < n_merges; r++) {
        const char *m = merges[r];
        size_t ml = merge_lens ? (size_t)merge_lens[r] : strlen(m);
        const char *sp = memchr(m, ' ', ml);
        if (!sp || sp == m || sp == m + ml - 1) {
            free(cat);
            ds4_errf(err, "tokenizer: merge %zu \"%.*s\" is not \"LEFT RIGHT\"", r, (int)(ml > 200 ? 200 : ml), m);
            goto fail;
        }
        size_t ll = (size_t)(sp - m), rl = ml - ll - 1;
        int32_t a = ds4_vocab_find(v, m, ll), b = ds4_vocab_find(v, sp + 1, rl);
        if (cat_cap < ll + rl) { cat_cap = (ll + rl) * 2; char *c2 = realloc(cat, cat_cap); if (!c2) { free(cat); ds4_errf(err, "tokenizer: out of memory"); goto fail; } cat = c2; }
        memcpy(cat, m, ll);
        memcpy(cat + ll, sp + 1, rl);
        int32_t c = ds4_vocab_find(v, cat, ll + rl);
        /* A merge whose parts are not tokens can never fire; the reference
         * tolerates it, so do we. */
        if (a < 0 || b < 0 || c < 0) continue;
        uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
        uint64_t h = key * 0x9E3779B97F4A7C15ull;
        uint32_t i = (uint32_t)(h >> 40) & v->merge_mask;
        while (v->merges[i].rank >= 0 && v->merges[i].key != key) i = (i + 1) & v->merge_mask;
        if (v->merges[i].rank >= 0) continue; /* duplicate pair: the first rank wins */
        v->merges[i].key = key;
        v->merges[i].rank = (int32_t)r;
        v->merges[i].id = c;
        v->n_merges++;
    }
    free(cat);
    v->pre = ds4_pretok_new(err);
    if (!v->pre) goto fail;
    static uint64_t serial_counter;
    v->serial = __atomic_add_fetch(&serial_counter, 1, __ATOMIC_RELAXED);
    return v;
fail:
    ds4_vocab_free(v);
    return NULL;
}

size_t ds4_vocab_size(const ds4_vocab *v) { return v->n; }
size_t ds4_vocab_n_merges(const ds4_vocab *v) { return v->n_merges; }
int32_t ds4_vocab_special(const ds4_vocab *v, ds4_special s) { return (unsigned)s < DS4_SP_COUNT ? v->special[s] : -1; }

const char *ds4_vocab_token_str(const ds4_vocab *v, int32_t id, size_t *len) {
    if (id < 0 || (size_t)id >= v->n) { if (len) *len = 0; return NULL; }
    if (len) *len = v->str_len[id];
    return v->str_arena + v->str_off[id];
}

/* ---- GGUF ---- */

ds4_vocab *ds4_vocab_from_gguf(const gguf_file *f, ds4_err *err) {
    const gguf_value *tok, *mer;
    if (gguf_get_arr(f, "tokenizer.ggml.tokens", &tok, err) < 0) return NULL;
    if (gguf_get_arr(f, "tokenizer.ggml.merges", &mer, err) < 0) return NULL;
    if (tok->v.arr.elem_type != GGUF_STRING || mer->v.arr.elem_type != GGUF_STRING) {
        ds4_errf(err, "%s: tokenizer.ggml.tokens/merges hold %s/%s elements; expected arrays of string", f->path,
                 gguf_vtype_name(tok->v.arr.elem_type), gguf_vtype_name(mer->v.arr.elem_type));
        return NULL;
    }
    size_t nt = (size_t)tok->v.arr.count, nm = (size_t)mer->v.arr.count;
    gguf_str *ts = calloc(nt ? nt : 1, sizeof *ts), *ms = calloc(nm ? nm : 1, sizeof *ms);
    const char **tp = calloc(nt ? nt : 1, sizeof *tp), **mp = calloc(nm ? nm : 1, sizeof *mp);
    uint64_t *tl = calloc(nt ? nt : 1, sizeof *tl), *ml = calloc(nm ? nm : 1, sizeof *ml);
    int32_t *types = NULL;
    ds4_vocab *v = NULL;
    if (!ts || !ms || !tp || !mp || !tl || !ml) { ds4_errf(err, "%s: out of memory reading the tokenizer", f->path); goto out; }
    if (gguf_arr_strings(tok, ts) < 0 || gguf_arr_strings(mer, ms) < 0) {
        ds4_errf(err, "%s: cannot read the strings of tokenizer.ggml.tokens/merges", f->path);
        goto out;
    }
    for (size_t i = 0; i < nt; i++) { tp[i] = ts[i].ptr; tl[i] = ts[i].len; }
    for (size_t i = 0; i < nm; i++) { mp[i] = ms[i].ptr; ml[i] = ms[i].len; }
    const gguf_kv *tt = gguf_find_kv(f, "tokenizer.ggml.token_type");
    if (tt && tt->value.type == GGUF_ARRAY && tt->value.v.arr.count == nt) {
        types = malloc(nt * sizeof *types);
        if (!types) { ds4_errf(err, "%s: out of memory", f->path); goto out; }
        for (size_t i = 0; i < nt; i++) {
            int64_t x;
            if (gguf_arr_int(&tt->value, i, &x) < 0) { free(types); types = NULL; break; }
            types[i] = (int32_t)x;
        }
    }
    v = ds4_vocab_new(tp, tl, nt, mp, ml, nm, types, err);
    if (!v) ds4_err_prefix(err, "%s", f->path);
out:
    free(ts); free(ms); free(tp); free(mp); free(tl); free(ml); free(types);
    return v;
}
