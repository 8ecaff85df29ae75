/* respstore.h - bounded in-memory Responses store for previous_response_id
 * (spec/server.md §12.5 REC). Each stored response keeps the conversation as
 * replayable input items: the request's full input followed by the response's
 * own output items. A request naming previous_response_id gets those items
 * prepended to its input, so the text layer renders the same conversation as
 * a full replay would. Oldest entries are dropped beyond the cap. */
#ifndef DS4_SERVER_RESPSTORE_H
#define DS4_SERVER_RESPSTORE_H

#include <jansson.h>
#include <stddef.h>

typedef struct ds4s_respstore ds4s_respstore;

ds4s_respstore *ds4s_respstore_new(size_t max_entries);
void ds4s_respstore_free(ds4s_respstore *r);
/* Takes ownership of items (a JSON array). */
void ds4s_respstore_put(ds4s_respstore *r, const char *id, json_t *items);
/* A deep copy of the stored items, or NULL if unknown/evicted. */
json_t *ds4s_respstore_get(ds4s_respstore *r, const char *id);

#endif
