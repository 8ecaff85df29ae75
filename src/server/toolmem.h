/* toolmem.h - the exact DSML replay map (spec/server.md §11.4), in memory.
 *
 * After a turn with tool calls every call id maps to the turn's sampled DSML
 * block (shared, reference counted). When a later request replays those calls
 * the renderer asks for the block by id and emits it verbatim, so the prompt
 * matches the live KV byte for byte. Bounded by an id count and a byte budget;
 * least recently used ids go first. All calls take the internal lock except
 * lookup, which is meant to run while the caller holds ds4s_toolmem_lock for
 * the whole render (the returned pointer must outlive ds4_render). */
#ifndef DS4_SERVER_TOOLMEM_H
#define DS4_SERVER_TOOLMEM_H

#include <stddef.h>

typedef struct ds4s_toolmem ds4s_toolmem;

ds4s_toolmem *ds4s_toolmem_new(size_t max_ids, size_t max_bytes);
void ds4s_toolmem_free(ds4s_toolmem *t);
/* Remember ids[0..n) -> one shared copy of dsml. */
void ds4s_toolmem_put(ds4s_toolmem *t, const char *const *ids, size_t n, const char *dsml, size_t len);
int ds4s_toolmem_has(ds4s_toolmem *t, const char *id);
size_t ds4s_toolmem_count(ds4s_toolmem *t);
void ds4s_toolmem_lock(ds4s_toolmem *t);
void ds4s_toolmem_unlock(ds4s_toolmem *t);
/* ds4_replay_lookup_fn-compatible; ctx is the ds4s_toolmem. Caller holds the lock. */
const char *ds4s_toolmem_lookup(void *ctx, const char *id, size_t *len);
/* Visits up to max ids, most recently used first, with their DSML block
 * (takes the lock; fn must not call back into the tool memory). For the disk
 * cache (kvcache.c), which stores the mappings a checkpoint's text contains. */
void ds4s_toolmem_each(ds4s_toolmem *t, size_t max, void (*fn)(void *ud, const char *id, const char *dsml, size_t len),
                       void *ud);

#endif
