/* kvcache.h - the server side of the disk KV cache (spec/server.md §13): when
 * the live session is saved to the store (src/kvdisk), when a request
 * resumes from it, and the /metrics counters. All functions except the
 * metrics text run on the worker thread (they touch the live session).
 *
 * The gen.c integration is two calls per job:
 *
 *     effective_prompt(s, j, &eff);
 *     ds4s_kvcache_prepare(s, j, &eff);       // evict save, disk restore, cold plan
 *     ...
 *     rc = ds4s_kvcache_sync(s, eff.ids, eff.n, &reused, on_progress, &pg, &err);
 *                                             // = ds4_session_sync + cold/continued saves
 *
 * plus ds4s_kvcache_open after the session exists, ds4s_kvcache_close (the
 * shutdown save) after the worker stopped, and ds4s_kvcache_metrics appended
 * to the /metrics text. Without --kv-disk-dir every call is a no-op (sync is
 * plain ds4_session_sync). One server per process: the state is file-static. */
#ifndef DS4_SERVER_KVCACHE_H
#define DS4_SERVER_KVCACHE_H

#include <stdio.h>

#include "server/server.h"

/* Opens --kv-disk-dir (if set). A directory that cannot be opened is logged
 * and the server runs uncached (returns 0); -1 is reserved for bad flags. Also
 * preloads every stored tool map into the tool memory, so exact DSML replay
 * survives a restart (§11.4 "restore before render"). */
int ds4s_kvcache_open(ds4s_server *s, ds4_err *err);
/* Shutdown save (reason 4) of the live session, then closes the store. */
void ds4s_kvcache_close(ds4s_server *s);
int ds4s_kvcache_enabled(void);

/* Start of a job, after live matching: saves the live session before a live
 * miss replaces it (reason 3), restores the longest stored prefix when it
 * beats the live reuse (rewriting *eff to loaded tokens + the rest of the
 * prompt tokenized separately, §12.2 step 9), and plans a cold save (§13.2).
 * *eff stays valid in every case; failures only cost the cache. */
void ds4s_kvcache_prepare(ds4s_server *s, ds4s_job *j, ds4_tokens *eff);

/* ds4_session_sync, stopping at the planned cold length and at continued
 * frontiers to save checkpoints on the way. Same contract and return value;
 * *reused is the reuse of the first step (what the job reports as cached). */
int ds4s_kvcache_sync(ds4s_server *s, const int32_t *tokens, int n, int *reused, ds4_progress_fn progress, void *ud,
                      ds4_err *err);

/* Decode loop, before each step while no tool call has started: a
 * continued checkpoint when the live position is a multiple of the continued
 * step (§13.2; fragile tool frontiers are never persisted mid-call). */
void ds4s_kvcache_decode_point(ds4s_server *s);

/* Prometheus text for the ds4_kvdisk_* counters (nothing when disabled). */
void ds4s_kvcache_metrics(FILE *f);
/* The same appended to a malloc'd text (frees it; returns the new one). */
char *ds4s_kvcache_metrics_append(char *text);

#endif
