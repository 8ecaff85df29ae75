/* vocab_bytes.c - the compact byte-level vocabulary of `--vocab bytes`.
 *
 * Laid out like the oracle's tiny models (tests/data/oracle/README.md): id 0
 * BOS, id 1 EOS, ids 2..257 the 256 byte tokens in byte order (GPT-2 byte
 * alphabet), then one token per merge, then placeholders if the requested
 * size is larger, and the last five ids <｜User｜>, <｜Assistant｜>, <think>,
 * </think>, ｜DSML｜ - the same strings as the real vocabulary, so chat
 * rendering and DSML work unchanged. The merges are the first merges of the
 * real DeepSeek V3/V4 tokenizer (rank order kept, a merge used only once both
 * of its halves exist), so common English pieces still encode as the real
 * model would and the file needs no tokenizer.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth/synth_internal.h"
#include "text/tokenizer.h"

/* The first 400 merges of the DeepSeek V3 tokenizer.json, byte-level spelling. */
static const char *const real_merges[] = {
    "\xc4\xa0 t", "\xc4\xa0 a", "i n", "\xc4\xa0 \xc4\xa0", "h e", "e r", "o n", "r e", "e n", "a t",
    "\xc4\xa0 s", "\xc4\xa0t he", "\xc4\x8a \xc4\x8a", "o r", "e s", "\xc4\xa0 c", "\xc3\xa4 \xc2\xb8", "a n",
    "\xc4\xa0 o", "i s", "i t", "\xc4\xa0 p", "\xc4\xa0 w", "a l", "\xc4\xa0 d", "e d", "\xc4\xa0 f",
    "\xc3\xaf \xc2\xbc", "a r", "in g", "n d", "\xc4\xa0\xc4\xa0 \xc4\xa0\xc4\xa0", "\xc4\xa0 b", "\xc4\xa0 m",
    "o u", "\xc4\xa0o f", "\xc4\xa0 in", "i on", "i c", "\xc3\xa3 \xc4\xa2", "\xc3\xa7 \xc4\xbc",
    "\xc3\xa2 \xc4\xa2", "\xc3\xa7\xc4\xbc \xc4\xa6", "l e", "\xc3\xaf\xc2\xbc \xc4\xae", "\xc4\xa0t o",
    "\xc4\xa0""a nd", "a s", "r o", "\xc3\xa4 \xc2\xba", "en t", "\xc4\xa0 h", "c t", "\xc4\xa0 e",
    "\xc4\xa0 n", "\xc4\xa0 l", "\xc4\xa0t h", "o m", "e l", "s t", "e t", "\xc3\xa3\xc4\xa2 \xc4\xa4", "i l",
    "\xc4\xa0 re", "\xc3\xa4 \xc2\xbb", "\xc3\xa5 \xc4\xb1", "\xc3\xa6 \xc4\xbe", "\xc3\xa0 \xc2\xb8",
    "\xc4\xa0 S", "i m", "i d", "\xc4\xa0 T", "o l", "\xc4\xa0 \xc3\x90", "u t", "\xc4\xa0 A",
    "\xc3\xa5 \xc4\xa7", "\xc4\xa0 g", "r a", "\xc3\xa5 \xc2\xa4", ". \xc4\x8a\xc4\x8a", "i v", "at ion",
    "\xc4\xa0 I", "\xc4\xa0 (", "\xc4\xa0 is", "\xc4\xa0 C", "u r", "o t", "c h", "u s", "i g",
    "\xc3\xa8 \xc2\xbf", "\xc3\xa5 \xc4\xaa", "c e", "\xc3\xa6 \xc4\xba", "\xc3\x90 \xc2\xbe", "a m",
    "\xc3\xa4 \xc2\xbd", "\xc3\xa5 \xc2\xae", "o w", "a d", "\xc4\xa0\xc4\xa0 \xc4\xa0", "\xc4\xa0""f or",
    "u l", "\xc3\xa5 \xc4\xb2", "\xc3\xa5 \xc4\xbe", "\xc4\xa0""b e", "l y", "\xc3\x90 \xc2\xb5", "\xc4\xa0 |",
    "\xc4\xa0s t", "u n", "# #", "\xc4\xa0 M", "\xc4\xa0 v", "\xc3\xa4 \xc2\xb9", "o s", "\xc4\xa0 on",
    "\xc3\xa4\xc2\xb8 \xc4\xa2", "\xc3\x90 \xc2\xb0", "\xc4\xa0 P", "e m", "\xc3\xa7 \xc4\xb6", "\xc4\xa0 y",
    "\xc3\xa6 \xc4\xaa", "\xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0 \xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0", "a y", "er s",
    "i r", "\xc3\xa6\xc4\xba \xc2\xaf", "\xc3\xa0 \xc2\xa6", "\xc3\x98 \xc2\xa7", "\xc4\xa0""d e",
    "\xc3\x90 \xc2\xb8", "i f", "u m", "\xc4\xa0th at", "2 0", "\xc3\xa5 \xc2\xb0", "\xc4\xa0""c on", "it h",
    "o d", "t er", "q u", "\xc3\xa7 \xc2\xbb", "\xc3\xa5 \xc4\xac", "\xc4\xa0 B", "\xc3\x91 \xc4\xa4",
    "\xc3\xa8 \xc2\xaf", "a g", "\xc3\xa3\xc4\xa2 \xc4\xa3", "\xc4\xa0""a n", "\xc4\xa0""a s", "\xc4\xa0p ro",
    "he r", "\xc3\xa3 \xc4\xa3", "es t", "\xc3\xa6 \xc4\xb8", "\xc4\xa0w ith", "\xc3\x90 \xc2\xbd",
    "\xc4\xa0 D", "\xc3\xa5 \xc5\x83", "\xc3\xa4\xc2\xb8 \xc4\xaf", "\xc4\xa0""a l", "\xc3\xa5 \xc4\xbd", "a b",
    ". .", "v e", "\xc3\xa2\xc4\xa2 \xc4\xbe", "\xc3\xa4\xc2\xba \xc4\xa8", "\xc3\xa2\xc4\xa2 \xc4\xbf",
    "\xc3\xa6 \xc4\xb9", "v er", "\xc4\xa0 R", "at e", "is t", "\xc4\xa0 it", "\xc4\xa0 H", "\xc4\xa0 =", "a c",
    "\xc4\xa0y ou", "\xc3\xa6 \xc4\xbf", "\xc3\xa2\xc4\xa2 \xc4\xbb", "re s", "\xc3\x91 \xc4\xa3",
    "\xc3\xa5\xc4\xbe \xc2\xa8", "\xc4\xa0 E", "\xc4\xa0 F", "\xc4\xa0 W", "es s", "\xc3\xa6\xc4\xbe \xc4\xab",
    "\xc3\xa8 \xc2\xae", "\xc3\x91 \xc4\xa2", "\xc3\xa5 \xc4\xaf", "e ct", "\xc4\xa0T he", "p p",
    "\xc3\xa4 \xc2\xbc", "an d", "\xc4\xa0w h", "r i", "\xc3\xa6 \xc4\xab", "\xc4\xa0 L", "t h",
    "\xc3\xa5 \xc2\xb9", "\xc4\xa0""c om", "\xc3\x90\xc2\xbe \xc3\x90", "s e", "\xc4\xa0 he", "\xc4\xa0 or",
    "\xc3\xa4\xc2\xba \xc2\xba", "\xc4\xa0 N", "\xc4\xa0""e x", "\xc4\xa0 k", "\xc3\xa5 \xc2\xbe", "il l",
    "o p", "\xc4\xa0""a re", "\xc3\xa3\xc4\xa2\xc4\xa4 \xc4\x8a\xc4\x8a", "an t", "a k", "it y", "or t",
    "\xc3\xa5 \xc2\xb7", "o c", "\xc3\xa9 \xc4\xa9", "\xc3\xa5 \xc4\xa9", "\xc3\xa5 \xc2\xbc", "\xc4\xa0s e",
    "\xc4\xa0 G", "m ent", "h t", "o re", "\xc3\xa8 \xc4\xa2", "\xc4\xa0 r", "\xc3\x99 \xc4\xa6", "ro m",
    "\xc3\xa5 \xc2\xba", "\xc4\xa0s u", "a in", "i e", "\xc3\xa8 \xc2\xa1", "\xc3\xa6 \xc4\xb7",
    "\xc3\xa9 \xc4\xa2", "0 0", "iv e", "\xc3\xa5 \xc4\xa8", "\xc3\xa5 \xc2\xb8", "\xc4\xa0 \xc3\x98",
    "\xc4\xa0""a t", "; \xc4\x8a", "1 9", "\xc3\xa5 \xc2\xaf", "\xc4\xa0""b y", "l d", "\xc4\xa0w as",
    "\xc3\xa5 \xc2\xa5", "i es", "\xc4\xa5 \xc2\xbd", "u d", "o g", "ar t", "\xc4\xa0n e", "en d",
    "\xc3\xa6 \xc4\xa2", "\xc3\xa4\xc2\xb8 \xc5\x83", "\xc3\xa7 \xc4\xbd", "\xc3\xa5 \xc4\xb4",
    "\xc4\xa0\xc4\xa0\xc4\xa0\xc4\xa0 \xc4\xa0\xc4\xa0\xc4\xa0", "p t", "\xc3\xa8 \xc2\xa7",
    "\xc3\xa6\xc4\xaa \xc4\xb3", "\xc4\xa0 le", "n t", "u re", "\xc4\xa0h a", "i al", "\xc4\xa0""c h",
    "\xc4\xa0""f rom", "\xc4\xa0 \xc4\x8a", "p l", "\xc4\xa0 O", "\xc3\xa5 \xc4\xae", "\xc3\xa6 \xc5\x82",
    "\xc4\xa0 \xc3\x99", "\xc3\xa4\xc2\xb8 \xc2\xba", "\xc3\xa5 \xc2\xbf", "\xc3\xa5\xc2\xa4 \xc2\xa7",
    "\xc3\xa5\xc4\xb4 \xc4\xae", "\xc4\xa0 u", "\xc4\xa0 us", "ou r", "\xc4\xa0 J", "1 0", "\xc4\xa0n ot",
    "an g", "\xc3\xa8\xc2\xbf \xc4\xbb", "\xc3\xa6 \xc4\xac", "\xc3\xa4\xc2\xb8 \xc2\xaa", "p e", "in e",
    "\xc3\xa8 \xc2\xa6", "\xc3\xa8 \xc2\xb5", "\xc3\xa6 \xc5\x83", "ig ht", "\xc4\xa0 -", "\xc4\xa0th is",
    "p er", "\xc4\xa0s h", "\xc3\xa7 \xc4\xb0", "\xc3\xa5 \xc4\xb0", "i z", "\xc3\xa4\xc2\xb8 \xc4\xac",
    "\xc3\xa7 \xc2\xa7", "el l", "\xc3\x90 \xc2\xbb", "\xc4\xa0 en", "ct ion", "al l", "\xc4\xa0w e",
    "\xc3\xa4\xc2\xbb \xc2\xa5", "b er", "\xc4\xa0 \x22", "u st", "\xc3\xa7 \xc4\xbe", "\xc3\xa6 \xc2\xb0",
    "\xc3\xa9 \xc4\xb9", "\xc3\xa8 \xc4\xa9", "\xc4\xa0""c an", "\xc3\xa8\xc2\xa6 \xc4\xa3",
    "\xc3\xa5 \xc2\xb1", "a re", "t e", "ar d", "\xc3\xa9 \xc4\xbf", "ic al", "\xc3\xa5 \xc2\xbd", "\xc4\xa0 j",
    "\xc3\xa6 \xc4\xb6", "\xc3\xa6 \xc2\xb3", "\xc3\xa8 \xc2\xb4", "i a", "o st", ". \xc4\x8a", "u b",
    "\xc3\xa7 \xc4\xab", "ou t", "ul t", "\xc3\xa0 \xc2\xb9", "\xc3\xa6 \xc2\xb2", "- -", "\xc4\xa0ha ve",
    "\xc4\xa0 un", "\xc3\xa7\xc4\xb6 \xc5\x81", "u e", "ag e", "ic h", "f f", "\xc3\xa5 \xc4\xb3",
    "\xc3\x83 \xc2\xa9", "r ou", "\xc3\xa5\xc4\xaa \xc2\xb0", "\xc3\xa6 \xc4\xa5", "\xc3\x98 \xc2\xb1", "as s",
    "\xc3\xa6\xc4\xb9 \xc2\xb6", "\xc3\xa4\xc2\xbb \xc4\xb8", "\xc3\xa9 \xc4\xbb", "\xc4\xa0 U",
    "\xc3\xa6 \xc5\x80", "a p", "ou ld", "i p", "o k", "an s", "i k", "\xc3\x99 \xc4\xa8",
    "\xc3\xa6\xc4\xbf \xc2\xa5", "at ed", "\xc4\xa0""a b", "or m", "\xc4\xa0 im", "\xc3\xa7\xc4\xb6 \xc2\xa8",
    "20 1", "\xc3\xa6 \xc4\xb0", "\xc4\xa0 qu", "\xc4\xa0p l", "\xc4\xa0w or", "as t", "\xc3\x91 \xc4\xa5",
    "in t", "a ct", "\xc3\xa9 \xc4\xa3", "\xc3\xa5\xc4\xb1 \xc2\xaf", "\xc3\xa5\xc4\xa9 \xc2\xba", "in d",
    "\xc3\xa7 \xc2\xba", "\xc4\xa0 K", "\xc3\x90 \xc2\xba",
};

#define N_REAL_MERGES (sizeof real_merges / sizeof real_merges[0])

/* GPT-2 byte alphabet: printable bytes stand for themselves, the other 68 map
 * to U+0100.. in byte order. */
static size_t byte_token(unsigned b, char out[4]) {
    const int direct = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    unsigned cp = b;
    if (!direct) {
        cp = 0x100;
        for (unsigned x = 0; x < b; x++)
            if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE)) cp++;
    }
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 63));
    return 2;
}

static int find_tok(const ds4_token_table *t, size_t n, const char *s, size_t len) {
    for (size_t i = 0; i < n; i++)
        if (t->token_lens[i] == len && !memcmp(t->tokens[i], s, len)) return (int)i;
    return -1;
}

static int put(ds4_token_table *t, size_t id, const char *s, size_t len, int32_t type) {
    t->tokens[id] = malloc(len + 1);
    if (!t->tokens[id]) return -1;
    memcpy(t->tokens[id], s, len);
    t->tokens[id][len] = 0;
    t->token_lens[id] = len;
    t->types[id] = type;
    return 0;
}

int ds4_synth_vocab_bytes(size_t n_vocab, ds4_token_table *t, ds4_err *err) {
    const ds4_special tail[5] = {DS4_SP_USER, DS4_SP_ASSISTANT, DS4_SP_THINK, DS4_SP_THINK_END, DS4_SP_DSML};
    memset(t, 0, sizeof *t);
    if (n_vocab < 263 || n_vocab > (1u << 24))
        return ds4_errf(err, "--vocab bytes: vocabulary size %zu: expected 263 (2 + 256 bytes + 5 specials) to 2^24",
                        n_vocab);
    t->n_tokens = n_vocab;
    t->tokens = calloc(n_vocab, sizeof *t->tokens);
    t->token_lens = calloc(n_vocab, sizeof *t->token_lens);
    t->types = calloc(n_vocab, sizeof *t->types);
    t->merges = calloc(N_REAL_MERGES, sizeof *t->merges);
    t->merge_lens = calloc(N_REAL_MERGES, sizeof *t->merge_lens);
    if (!t->tokens || !t->token_lens || !t->types || !t->merges || !t->merge_lens) goto oom;
    size_t id = 0;
    for (int s = DS4_SP_BOS; s <= DS4_SP_EOS; s++, id++)
        if (put(t, id, ds4_special_str((ds4_special)s), strlen(ds4_special_str((ds4_special)s)), DS4_TOKTYPE_CONTROL))
            goto oom;
    for (unsigned b = 0; b < 256; b++, id++) {
        char bt[4];
        if (put(t, id, bt, byte_token(b, bt), DS4_TOKTYPE_NORMAL)) goto oom;
    }
    const size_t end = n_vocab - 5;
    for (size_t k = 0; k < N_REAL_MERGES && id < end; k++) {
        const char *m = real_merges[k], *sp = strchr(m, ' ');
        const size_t ll = (size_t)(sp - m), rl = strlen(sp + 1);
        if (find_tok(t, id, m, ll) < 0 || find_tok(t, id, sp + 1, rl) < 0) continue; /* halves not built yet */
        char cat[128];
        memcpy(cat, m, ll);
        memcpy(cat + ll, sp + 1, rl);
        if (find_tok(t, id, cat, ll + rl) >= 0) continue;
        t->merges[t->n_merges] = strdup(m);
        if (!t->merges[t->n_merges]) goto oom;
        t->merge_lens[t->n_merges++] = ll + 1 + rl;
        if (put(t, id++, cat, ll + rl, DS4_TOKTYPE_NORMAL)) goto oom;
    }
    for (; id < end; id++) {
        char tmp[96];
        snprintf(tmp, sizeof tmp, "<\xef\xbd\x9cplace\xe2\x96\x81holder\xe2\x96\x81no\xe2\x96\x81%zu\xef\xbd\x9c>", id);
        if (put(t, id, tmp, strlen(tmp), DS4_TOKTYPE_CONTROL)) goto oom;
    }
    for (int k = 0; k < 5; k++, id++)
        if (put(t, id, ds4_special_str(tail[k]), strlen(ds4_special_str(tail[k])), DS4_TOKTYPE_CONTROL)) goto oom;
    return 0;
oom:
    ds4_token_table_free(t);
    return ds4_errf(err, "--vocab bytes: out of memory building %zu tokens", n_vocab);
}
