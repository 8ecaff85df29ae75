/* bpe.c - encode_text and encode_rendered (spec/text.md §1.3, §1.6, §1.7).
 *
 * Per piece: bytes -> byte symbols, then merges by rank. The merge loop keeps
 * the symbols in a doubly linked list and candidate pairs in a binary heap
 * ordered by (rank, position), so equal ranks resolve leftmost first exactly as
 * the spec's "smallest rank, then leftmost" rule; entries made stale by an
 * earlier merge are detected on pop and dropped. That is O(n log n) per piece,
 * which keeps pathological pieces (18 KB of letters) fast. Scratch memory is
 * per call, so a shared vocabulary needs no locking.
 *
 * Pieces repeat a lot (words, indentation, punctuation), and BPE of a piece
 * does not depend on its context (§1.6), so short pieces' ids are memoized in
 * a per-thread cache keyed by the vocabulary's serial number; it is bounded
 * and simply reset when full. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "text/vocab_internal.h"

void ds4_tokens_push(ds4_tokens *t, int32_t id) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        int32_t *p = realloc(t->ids, cap * sizeof *p);
        if (!p) abort();
        t->ids = p;
        t->cap = cap;
    }
    t->ids[t->n++] = id;
}

void ds4_tokens_free(ds4_tokens *t) {
    free(t->ids);
    t->ids = NULL;
    t->n = t->cap = 0;
}

typedef struct sym { int32_t id, prev, next; } sym;
/* A merge candidate is one integer, rank << 32 | left symbol index, so the
 * heap orders by rank and then leftmost with a single compare. The pair's ids
 * are re-read at pop time: ranks are unique per pair, so an equal rank means
 * the same pair is still there (anything else is a stale entry). */
typedef uint64_t cand;

typedef struct bpe_scratch {
    const ds4_vocab *v;
    ds4_tokens *out;
    sym *syms;
    size_t syms_cap;
    cand *heap;
    size_t heap_n, heap_cap;
} bpe_scratch;

/* ---- per-thread piece cache ---- */

#define PC_SLOTS (1u << 16)
#define PC_MAX_PIECE 8192
#define PC_MAX_ENTRIES (PC_SLOTS / 2)
#define PC_ARENA (1u << 21)

typedef struct pc_slot { uint64_t h; uint32_t key_off, ids_off; uint16_t key_len, n_ids; } pc_slot;

typedef struct piece_cache {
    uint64_t serial;
    pc_slot *slots;
    char *keys;
    int32_t *ids;
    uint32_t keys_used, ids_used, entries;
} piece_cache;

/* One cache per thread, freed by the key destructor when the thread exits
 * (HTTP servers may encode on short-lived connection threads). */
static pthread_key_t pc_key;
static pthread_once_t pc_once = PTHREAD_ONCE_INIT;

static void pc_destroy(void *p) {
    piece_cache *c = p;
    free(c->slots);
    free(c->keys);
    free(c->ids);
    free(c);
}

static void pc_key_init(void) {
    if (pthread_key_create(&pc_key, pc_destroy) != 0) abort();
}

static piece_cache *pc_get(void) {
    pthread_once(&pc_once, pc_key_init);
    piece_cache *c = pthread_getspecific(pc_key);
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c || pthread_setspecific(pc_key, c) != 0) abort();
    }
    return c;
}

static void pc_reset(piece_cache *c, uint64_t serial) {
    if (!c->slots) {
        c->slots = malloc(PC_SLOTS * sizeof *c->slots);
        c->keys = malloc(PC_ARENA);
        c->ids = malloc(PC_ARENA * sizeof *c->ids);
        if (!c->slots || !c->keys || !c->ids) abort();
    }
    memset(c->slots, 0, PC_SLOTS * sizeof *c->slots);
    c->serial = serial;
    c->keys_used = c->ids_used = c->entries = 0;
}

/* Slot for piece p (found or the empty one to fill). */
static pc_slot *pc_find(piece_cache *c, const char *p, size_t n, uint64_t h, int *found) {
    uint32_t i = (uint32_t)h & (PC_SLOTS - 1);
    for (;;) {
        pc_slot *s = &c->slots[i];
        if (!s->key_len) { *found = 0; return s; }
        if (s->h == h && s->key_len == n && memcmp(c->keys + s->key_off, p, n) == 0) { *found = 1; return s; }
        i = (i + 1) & (PC_SLOTS - 1);
    }
}

static void sift_down(cand *h, size_t n, size_t i) {
    cand x = h[i];
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n) break;
        size_t m = (l + 1 < n && h[l + 1] < h[l]) ? l + 1 : l;
        if (h[m] >= x) break;
        h[i] = h[m];
        i = m;
    }
    h[i] = x;
}

static void heap_push(bpe_scratch *s, cand c) {
    if (s->heap_n == s->heap_cap) {
        s->heap_cap = s->heap_cap ? s->heap_cap * 2 : 64;
        s->heap = realloc(s->heap, s->heap_cap * sizeof *s->heap);
        if (!s->heap) abort();
    }
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (s->heap[p] <= c) break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = c;
}

static cand heap_pop(bpe_scratch *s) {
    cand top = s->heap[0];
    s->heap[0] = s->heap[--s->heap_n];
    if (s->heap_n) sift_down(s->heap, s->heap_n, 0);
    return top;
}

static inline int32_t pair_rank(const ds4_vocab *v, const sym *syms, int32_t a, int32_t *id) {
    int32_t b = syms[a].next;
    if (b < 0) return -1;
    return ds4_merge_lookup(v, syms[a].id, syms[b].id, id);
}

static void try_pair(bpe_scratch *s, int32_t a) {
    int32_t id = -1;
    int32_t rank = pair_rank(s->v, s->syms, a, &id);
    if (rank >= 0) heap_push(s, ((uint64_t)(uint32_t)rank << 32) | (uint32_t)a);
}

static void bpe_merge(bpe_scratch *s, const char *p, size_t n);

static int bpe_piece(void *ctx, const char *p, size_t n) {
    bpe_scratch *s = ctx;
    const ds4_vocab *v = s->v;
    if (n == 1) { ds4_tokens_push(s->out, v->byte_id[(uint8_t)p[0]]); return 0; }
    if (n > PC_MAX_PIECE) { bpe_merge(s, p, n); return 0; }
    piece_cache *c = pc_get();
    if (c->serial != v->serial) pc_reset(c, v->serial);
    uint64_t h = XXH3_64bits(p, n);
    int found;
    pc_slot *sl = pc_find(c, p, n, h, &found);
    if (found) {
        for (uint32_t i = 0; i < sl->n_ids; i++) ds4_tokens_push(s->out, c->ids[sl->ids_off + i]);
        return 0;
    }
    size_t before = s->out->n;
    bpe_merge(s, p, n);
    size_t k = s->out->n - before;
    if (c->entries >= PC_MAX_ENTRIES || c->keys_used + n > PC_ARENA || c->ids_used + k > PC_ARENA) {
        pc_reset(c, v->serial);
        sl = pc_find(c, p, n, h, &found);
    }
    sl->h = h;
    sl->key_off = c->keys_used;
    sl->key_len = (uint16_t)n;
    sl->ids_off = c->ids_used;
    sl->n_ids = (uint16_t)k;
    memcpy(c->keys + c->keys_used, p, n);
    memcpy(c->ids + c->ids_used, s->out->ids + before, k * sizeof *c->ids);
    c->keys_used += (uint32_t)n;
    c->ids_used += (uint32_t)k;
    c->entries++;
    return 0;
}

static void bpe_merge(bpe_scratch *s, const char *p, size_t n) {
    const ds4_vocab *v = s->v;
    if (n > s->syms_cap) {
        s->syms_cap = n * 2;
        s->syms = realloc(s->syms, s->syms_cap * sizeof *s->syms);
        if (!s->syms) abort();
    }
    if (n > s->heap_cap) {
        s->heap_cap = n * 2;
        s->heap = realloc(s->heap, s->heap_cap * sizeof *s->heap);
        if (!s->heap) abort();
    }
    for (size_t i = 0; i < n; i++) {
        s->syms[i].id = v->byte_id[(uint8_t)p[i]];
        s->syms[i].prev = (int32_t)i - 1;
        s->syms[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    s->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        int32_t id = -1, rank = pair_rank(v, s->syms, (int32_t)i, &id);
        if (rank >= 0) s->heap[s->heap_n++] = ((uint64_t)(uint32_t)rank << 32) | (uint32_t)i;
    }
    for (size_t i = s->heap_n / 2; i-- > 0;) sift_down(s->heap, s->heap_n, i);
    while (s->heap_n) {
        cand c = heap_pop(s);
        int32_t pos = (int32_t)(uint32_t)c, want = (int32_t)(c >> 32);
        sym *a = &s->syms[pos];
        if (a->id < 0) continue;
        int32_t id = -1;
        if (pair_rank(v, s->syms, pos, &id) != want) continue; /* stale */
        sym *b = &s->syms[a->next];
        a->id = id;
        a->next = b->next;
        if (b->next >= 0) s->syms[b->next].prev = pos;
        b->id = -1;
        b->next = -1;
        if (a->prev >= 0) try_pair(s, a->prev);
        try_pair(s, pos);
    }
    for (int32_t i = 0; i >= 0; i = s->syms[i].next) ds4_tokens_push(s->out, s->syms[i].id);
}

int ds4_encode_text(const ds4_vocab *v, const char *s, size_t n, ds4_tokens *out, ds4_err *err) {
    bpe_scratch sc = {.v = v, .out = out};
    int rc = ds4_pretok_split(v->pre, s, n, bpe_piece, &sc, err);
    free(sc.syms);
    free(sc.heap);
    return rc;
}

int ds4_encode_rendered(const ds4_vocab *v, const char *s, size_t n, ds4_tokens *out, ds4_err *err) {
    size_t sp_len[DS4_SP_COUNT];
    for (int k = 0; k < DS4_SP_COUNT; k++) sp_len[k] = strlen(ds4_special_str((ds4_special)k));
    size_t span = 0, i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        /* Every special starts with '<' or with the first byte of '｜'. */
        if (c != '<' && c != 0xEF) { i++; continue; }
        int hit = -1;
        for (int k = 0; k < DS4_SP_COUNT; k++) {
            if (n - i >= sp_len[k] && memcmp(s + i, ds4_special_str((ds4_special)k), sp_len[k]) == 0) { hit = k; break; }
        }
        if (hit < 0) { i++; continue; }
        if (i > span && ds4_encode_text(v, s + span, i - span, out, err) < 0) return -1;
        ds4_tokens_push(out, v->special[hit]);
        i += sp_len[hit];
        span = i;
    }
    if (n > span && ds4_encode_text(v, s + span, n - span, out, err) < 0) return -1;
    return 0;
}
