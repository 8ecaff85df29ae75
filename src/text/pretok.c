/* pretok.c - the exact DeepSeek V3/V4 pre-tokenizer (spec/text.md §1.4): three
 * regex Split steps with "Isolated" behaviour, each applied independently to
 * every piece of the previous step, run with PCRE2 (UTF + UCP, JIT).
 *
 * `\s`/`\S` are spelled out as the Unicode White_Space set the oracle
 * (Oniguruma) uses; PCRE2's own \s under UCP differs (it adds U+180E and
 * drops nothing else), so the explicit class is what makes this exact.
 * Invalid UTF-8 is matched with PCRE2_MATCH_INVALID_UTF: malformed bytes never
 * match a pattern character, so they fall into "gap" pieces and are still
 * byte-encoded (encoding is total and round-trips). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/vocab_internal.h"

#define WS "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

static const char *const patterns[3] = {
    "\\p{N}{1,3}",
    "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+"
    "|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
    "| ?[\\p{P}\\p{S}]+[\\r\\n]*"
    "|[" WS "]*[\\r\\n]+"
    "|[" WS "]+(?![^" WS "])"
    "|[" WS "]+",
};

static void init_ascii_class(void);

struct ds4_pretok {
    pcre2_code *re[3];
    bool jit[3];
};

void ds4_pretok_free(struct ds4_pretok *p) {
    if (!p) return;
    for (int i = 0; i < 3; i++) pcre2_code_free(p->re[i]);
    free(p);
}

struct ds4_pretok *ds4_pretok_new(ds4_err *err) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_ascii_class);
    struct ds4_pretok *p = calloc(1, sizeof *p);
    if (!p) { ds4_errf(err, "pre-tokenizer: out of memory"); return NULL; }
    for (int i = 0; i < 3; i++) {
        int ec;
        PCRE2_SIZE eo;
        p->re[i] = pcre2_compile((PCRE2_SPTR)patterns[i], PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
        if (!p->re[i]) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ec, msg, sizeof msg);
            ds4_errf(err, "pre-tokenizer: regex %d does not compile at offset %zu: %s", i, (size_t)eo, (char *)msg);
            ds4_pretok_free(p);
            return NULL;
        }
        /* JIT is an accelerator only: the interpreter gives the same pieces. */
        p->jit[i] = pcre2_jit_compile(p->re[i], PCRE2_JIT_COMPLETE) == 0;
    }
    return p;
}

typedef struct split_ctx {
    const struct ds4_pretok *p;
    pcre2_match_data *md;
    ds4_piece_fn fn;
    void *ctx;
    ds4_err *err;
    bool ascii_fast;
} split_ctx;

/* ---- step C on pure-ASCII pieces ----
 * The deterministic procedure of spec §1.4 (stated there as equivalent to the
 * step-C regex), specialised to ASCII where every class is a table lookup:
 * L = letters, M = none, P∪S = the 32 punctuation characters, White_Space =
 * \t \n \v \f \r and space, X = neither CR/LF nor L/P/S. The Unicode regex
 * costs ~70 instructions per byte in PCRE2's JIT because every character goes
 * through the property tables; this is a few. test_text_tokenizer checks it
 * piece-for-piece against PCRE2 on random ASCII. */
enum { C_L = 1, C_PS = 2, C_WS = 4, C_NL = 8, C_X = 16, C_ALPHA = 32 };
static uint8_t ascii_class[128];

static void init_ascii_class(void) {
    for (int c = 0; c < 128; c++) {
        uint8_t k = 0;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (alpha) k |= C_L | C_ALPHA;
        else if (c >= 0x21 && c <= 0x7E && !(c >= '0' && c <= '9')) k |= C_PS;
        if (c == '\t' || c == '\n' || c == 0x0B || c == '\f' || c == '\r' || c == ' ') k |= C_WS;
        if (c == '\r' || c == '\n') k |= C_NL;
        if (!(k & (C_L | C_PS | C_NL))) k |= C_X;
        ascii_class[c] = k;
    }
}

static size_t run_of(const unsigned char *t, size_t i, size_t n, uint8_t cls) {
    while (i < n && (ascii_class[t[i]] & cls)) i++;
    return i;
}

static int ascii_step_c(split_ctx *c, const char *s, size_t n) {
    const unsigned char *t = (const unsigned char *)s;
    size_t i = 0, gap = (size_t)-1;
    while (i < n) {
        uint8_t k = ascii_class[t[i]], kn = i + 1 < n ? ascii_class[t[i + 1]] : 0;
        size_t e = 0;
        if ((k & C_PS) && (kn & C_ALPHA)) e = run_of(t, i + 1, n, C_ALPHA);
        else if ((k & C_X) && (kn & C_L)) e = run_of(t, i + 1, n, C_L);
        else if (k & C_L) e = run_of(t, i, n, C_L);
        else if (t[i] == ' ' && (kn & C_PS)) e = run_of(t, run_of(t, i + 1, n, C_PS), n, C_NL);
        else if (k & C_PS) e = run_of(t, run_of(t, i, n, C_PS), n, C_NL);
        else if (k & C_WS) {
            size_t j = run_of(t, i, n, C_WS), last_nl = 0;
            for (size_t q = i; q < j; q++) if (ascii_class[t[q]] & C_NL) last_nl = q + 1;
            if (last_nl) e = last_nl;
            else if (j == n) e = j;
            else if (j - i >= 2) e = j - 1;
            else e = j;
        }
        if (!e) {
            if (gap == (size_t)-1) gap = i;
            i++;
            continue;
        }
        if (gap != (size_t)-1) {
            if (c->fn(c->ctx, s + gap, i - gap) < 0) return -1;
            gap = (size_t)-1;
        }
        if (c->fn(c->ctx, s + i, e - i) < 0) return -1;
        i = e;
    }
    if (gap != (size_t)-1 && c->fn(c->ctx, s + gap, n - gap) < 0) return -1;
    return 0;
}

static bool all_ascii(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) if ((unsigned char)s[i] >= 0x80) return false;
    return true;
}

/* Isolated split of s[0..n) by regex `step`: every match and every gap
 * between matches is passed on to the next step (or to fn after step 2). */
/* Cheap exact pre-checks: a step's regex cannot match a piece that has none
 * of the bytes its characters are made of, so such pieces skip the regex.
 * Step A (\p{N}) needs an ASCII digit or a non-ASCII byte; step B (kana and
 * the hanzi block, U+3040..U+9FA5) needs a lead byte 0xE3..0xE9. */
static bool may_match(int step, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    if (step == 0) {
        for (size_t i = 0; i < n; i++) if ((u[i] >= '0' && u[i] <= '9') || u[i] >= 0x80) return true;
        return false;
    }
    if (step == 1) {
        for (size_t i = 0; i < n; i++) if (u[i] >= 0xE3 && u[i] <= 0xE9) return true;
        return false;
    }
    return true;
}

static int split_step(split_ctx *c, int step, const char *s, size_t n) {
    if (n == 0) return 0;
    if (step == 2 && c->ascii_fast && all_ascii(s, n)) return ascii_step_c(c, s, n);
    if (c->ascii_fast && !may_match(step, s, n)) return split_step(c, step + 1, s, n);
    size_t off = 0, last = 0;
    while (off < n) {
        if (c->ascii_fast && step < 2) {
            /* no match can start at a byte may_match() rules out: jump */
            const unsigned char *u = (const unsigned char *)s;
            if (step == 0) while (off < n && !((u[off] >= '0' && u[off] <= '9') || u[off] >= 0x80)) off++;
            else while (off < n && !(u[off] >= 0xE3 && u[off] <= 0xE9)) off++;
            if (off >= n) break;
        }
        /* pcre2_jit_match skips the interpreter's option checks: the hot path */
        int rc = c->p->jit[step] ? pcre2_jit_match(c->p->re[step], (PCRE2_SPTR)s, n, off, 0, c->md, NULL)
                                 : pcre2_match(c->p->re[step], (PCRE2_SPTR)s, n, off, 0, c->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return ds4_errf(c->err, "pre-tokenizer: regex %d failed at byte %zu: %s", step, off, (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        size_t ms = ov[0], me = ov[1];
        if (me <= ms) { /* cannot happen: no pattern matches empty; never loop */
            off = ms + 1;
            continue;
        }
        if (ms > last && (step == 2 ? c->fn(c->ctx, s + last, ms - last) : split_step(c, step + 1, s + last, ms - last)) < 0) return -1;
        if ((step == 2 ? c->fn(c->ctx, s + ms, me - ms) : split_step(c, step + 1, s + ms, me - ms)) < 0) return -1;
        last = off = me;
    }
    if (n > last && (step == 2 ? c->fn(c->ctx, s + last, n - last) : split_step(c, step + 1, s + last, n - last)) < 0) return -1;
    return 0;
}

int ds4_pretok_split(const struct ds4_pretok *p, const char *s, size_t n, ds4_piece_fn fn, void *ctx, ds4_err *err) {
    return ds4_pretok_split_ex(p, s, n, fn, ctx, err, true);
}

int ds4_pretok_split_ex(const struct ds4_pretok *p, const char *s, size_t n, ds4_piece_fn fn, void *ctx, ds4_err *err, bool ascii_fast) {
    split_ctx c = {p, NULL, fn, ctx, err, ascii_fast};
    /* One match-data block fits all three patterns (they have no groups). */
    c.md = pcre2_match_data_create(4, NULL);
    if (!c.md) return ds4_errf(err, "pre-tokenizer: out of memory");
    int rc = split_step(&c, 0, s, n);
    pcre2_match_data_free(c.md);
    return rc;
}
