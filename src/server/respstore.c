/* respstore.c - a ring of (id, items); linear lookup is fine at this size. */
#include "server/respstore.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct slot { char *id; json_t *items; } slot;

struct ds4s_respstore {
    pthread_mutex_t mu;
    slot *slots;
    size_t max, next;
};

ds4s_respstore *ds4s_respstore_new(size_t max_entries) {
    ds4s_respstore *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->max = max_entries ? max_entries : 1;
    r->slots = calloc(r->max, sizeof *r->slots);
    if (!r->slots) { free(r); return NULL; }
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

void ds4s_respstore_free(ds4s_respstore *r) {
    if (!r) return;
    for (size_t i = 0; i < r->max; i++) { free(r->slots[i].id); json_decref(r->slots[i].items); }
    free(r->slots);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

void ds4s_respstore_put(ds4s_respstore *r, const char *id, json_t *items) {
    if (!r || !id) { json_decref(items); return; }
    pthread_mutex_lock(&r->mu);
    slot *s = &r->slots[r->next];
    free(s->id);
    json_decref(s->items);
    s->id = strdup(id);
    s->items = items;
    r->next = (r->next + 1) % r->max;
    pthread_mutex_unlock(&r->mu);
}

json_t *ds4s_respstore_get(ds4s_respstore *r, const char *id) {
    if (!r || !id) return NULL;
    json_t *out = NULL;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->max; i++)
        if (r->slots[i].id && !strcmp(r->slots[i].id, id)) { out = json_deep_copy(r->slots[i].items); break; }
    pthread_mutex_unlock(&r->mu);
    return out;
}
