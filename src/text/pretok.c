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
#include <stdbool.h>
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
} split_ctx;

/* Isolated split of s[0..n) by regex `step`: every match and every gap
 * between matches is passed on to the next step (or to fn after step 2). */
static int split_step(split_ctx *c, int step, const char *s, size_t n) {
    if (n == 0) return 0;
    size_t off = 0, last = 0;
    while (off < n) {
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
    split_ctx c = {p, NULL, fn, ctx, err};
    /* One match-data block fits all three patterns (they have no groups). */
    c.md = pcre2_match_data_create(4, NULL);
    if (!c.md) return ds4_errf(err, "pre-tokenizer: out of memory");
    int rc = split_step(&c, 0, s, n);
    pcre2_match_data_free(c.md);
    return rc;
}
