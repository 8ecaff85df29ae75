/* toolmem.c - hash table (chaining) + doubly linked LRU list. */
#include "server/toolmem.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct block { int refs; size_t len; char bytes[]; } block;

typedef struct entry {
    char *id;
    block *b;
    struct entry *hnext;
    struct entry *prev, *next;   /* LRU: head = most recent */
} entry;

struct ds4s_toolmem {
    pthread_mutex_t mu;
    entry **tab;
    size_t nbuckets, count, max_ids, bytes, max_bytes;
    entry *head, *tail;
};

static uint64_t hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

ds4s_toolmem *ds4s_toolmem_new(size_t max_ids, size_t max_bytes) {
    ds4s_toolmem *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    pthread_mutex_init(&t->mu, NULL);
    t->nbuckets = 4096;
    t->tab = calloc(t->nbuckets, sizeof *t->tab);
    t->max_ids = max_ids ? max_ids : 1;
    t->max_bytes = max_bytes;
    if (!t->tab) { free(t); return NULL; }
    return t;
}

static void lru_unlink(ds4s_toolmem *t, entry *e) {
    if (e->prev) e->prev->next = e->next; else t->head = e->next;
    if (e->next) e->next->prev = e->prev; else t->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_front(ds4s_toolmem *t, entry *e) {
    e->next = t->head;
    e->prev = NULL;
    if (t->head) t->head->prev = e;
    t->head = e;
    if (!t->tail) t->tail = e;
}

static void block_unref(ds4s_toolmem *t, block *b) {
    if (--b->refs == 0) {
        t->bytes -= b->len;
        free(b);
    }
}

static void remove_entry(ds4s_toolmem *t, entry *e) {
    entry **pp = &t->tab[hash(e->id) % t->nbuckets];
    while (*pp && *pp != e) pp = &(*pp)->hnext;
    if (*pp) *pp = e->hnext;
    lru_unlink(t, e);
    t->bytes -= strlen(e->id);
    block_unref(t, e->b);
    free(e->id);
    free(e);
    t->count--;
}

static entry *find(ds4s_toolmem *t, const char *id) {
    for (entry *e = t->tab[hash(id) % t->nbuckets]; e; e = e->hnext)
        if (!strcmp(e->id, id)) return e;
    return NULL;
}

void ds4s_toolmem_free(ds4s_toolmem *t) {
    if (!t) return;
    while (t->head) remove_entry(t, t->head);
    free(t->tab);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

void ds4s_toolmem_put(ds4s_toolmem *t, const char *const *ids, size_t n, const char *dsml, size_t len) {
    if (!t || !n || !dsml) return;
    block *b = malloc(sizeof *b + len + 1);
    if (!b) return;
    b->refs = 0;
    b->len = len;
    memcpy(b->bytes, dsml, len);
    b->bytes[len] = 0;
    pthread_mutex_lock(&t->mu);
    t->bytes += len;
    for (size_t i = 0; i < n; i++) {
        if (!ids[i] || !*ids[i]) continue;
        entry *old = find(t, ids[i]);
        if (old) remove_entry(t, old);
        entry *e = calloc(1, sizeof *e);
        if (!e || !(e->id = strdup(ids[i]))) { free(e); continue; }
        e->b = b;
        b->refs++;
        size_t h = hash(e->id) % t->nbuckets;
        e->hnext = t->tab[h];
        t->tab[h] = e;
        lru_front(t, e);
        t->count++;
        t->bytes += strlen(e->id);
    }
    if (b->refs == 0) { t->bytes -= len; free(b); }
    while (t->tail && (t->count > t->max_ids || t->bytes > t->max_bytes)) remove_entry(t, t->tail);
    pthread_mutex_unlock(&t->mu);
}

int ds4s_toolmem_has(ds4s_toolmem *t, const char *id) {
    pthread_mutex_lock(&t->mu);
    int r = find(t, id) != NULL;
    pthread_mutex_unlock(&t->mu);
    return r;
}

size_t ds4s_toolmem_count(ds4s_toolmem *t) {
    pthread_mutex_lock(&t->mu);
    size_t n = t->count;
    pthread_mutex_unlock(&t->mu);
    return n;
}

void ds4s_toolmem_lock(ds4s_toolmem *t) { pthread_mutex_lock(&t->mu); }
void ds4s_toolmem_unlock(ds4s_toolmem *t) { pthread_mutex_unlock(&t->mu); }

const char *ds4s_toolmem_lookup(void *ctx, const char *id, size_t *len) {
    ds4s_toolmem *t = ctx;
    if (!t || !id) return NULL;
    entry *e = find(t, id);
    if (!e) return NULL;
    lru_unlink(t, e);
    lru_front(t, e);
    if (len) *len = e->b->len;
    return e->b->bytes;
}

void ds4s_toolmem_each(ds4s_toolmem *t, size_t max, void (*fn)(void *ud, const char *id, const char *dsml, size_t len),
                       void *ud) {
    if (!t) return;
    pthread_mutex_lock(&t->mu);
    size_t i = 0;
    for (entry *e = t->head; e && i < max; e = e->next, i++) fn(ud, e->id, e->b->bytes, e->b->len);
    pthread_mutex_unlock(&t->mu);
}
