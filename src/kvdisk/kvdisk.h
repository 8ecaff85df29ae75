/* kvdisk.h - the on-disk KV checkpoint store (spec/server.md §13, issue 7).
 *
 * A directory of self-checking files, each holding one engine session
 * snapshot (the opaque "DSV4" payload, spec/model.md §5.5) together with what
 * is needed to decide, without opening the payload, whether a request may
 * resume from it: the token ids of the checkpoint and its cache text (the
 * rendered bytes those tokens stand for, or a visible transcript), plus an
 * optional tool-id -> raw DSML map so exact tool replay survives a restart.
 *
 * The store knows nothing about HTTP, rendering or the engine: it keeps an
 * in-memory index (built by scanning the directory at open), answers "which
 * stored checkpoint is the longest prefix of this request", hands back
 * verified bytes, writes new files crash-safely and keeps the directory within
 * a byte budget. Every failure is a return code plus one log line: a bad
 * file, a full disk or a read-only directory degrade to "not cached", never
 * to a crash or a wrong answer.
 *
 * File format, crash safety and eviction policy: see format.c and store.c.
 * One store per directory per process: the index is not re-read, so two
 * servers sharing a directory would not see each other's files until restart
 * (they do not corrupt each other: files are written under temporary names
 * and renamed atomically). All functions are thread-safe (one mutex); the
 * counters can be read at any time without waiting for a save in progress. */
#ifndef DS4_KVDISK_H
#define DS4_KVDISK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/ds4_err.h"

typedef struct ds4kv_store ds4kv_store;

/* Return codes. Non-negative: success; negative: the operation did nothing
 * (a save leaves no file behind, a load leaves nothing to use). */
enum {
    DS4KV_OK = 0,
    DS4KV_ERR_IO = -1,        /* read/write/fsync/rename failed (EIO, ...) */
    DS4KV_ERR_NOSPC = -2,     /* ENOSPC / EDQUOT while writing */
    DS4KV_ERR_READONLY = -3,  /* EROFS / EACCES / EPERM: directory not writable */
    DS4KV_ERR_TOO_BIG = -4,   /* the file alone would exceed the budget */
    DS4KV_ERR_CORRUPT = -5,   /* the file failed validation; it was removed */
    DS4KV_ERR_ARG = -6,       /* bad arguments (no tokens, ...) */
    DS4KV_ERR_NOMEM = -7,
    DS4KV_ERR_GONE = -8,      /* no such entry (evicted or never stored) */
};
const char *ds4kv_strerror(int rc);

/* Save reasons (spec/server.md §13.2); stored for statistics only. */
enum { DS4KV_REASON_UNKNOWN = 0, DS4KV_REASON_COLD = 1, DS4KV_REASON_CONTINUED = 2,
       DS4KV_REASON_EVICT = 3, DS4KV_REASON_SHUTDOWN = 4 };

/* Entry flags. */
enum {
    DS4KV_FLAG_TOOLMAP = 1u << 0,           /* a tool-id map is stored */
    DS4KV_FLAG_RESPONSES_VISIBLE = 1u << 1, /* cache text is a Responses visible transcript */
    DS4KV_FLAG_THINKING_VISIBLE = 1u << 2,  /* cache text is a thinking visible transcript */
};

typedef struct ds4kv_config {
    const char *dir;             /* created (one level) if missing */
    uint64_t budget_bytes;       /* total size of cache files never exceeds this */
    const char *model_identity;  /* ds4_model_identity(): files of other models are removed */
    uint32_t ctx;                /* context size recorded in new files */
    uint8_t quant_bits;          /* routed-expert quant bits recorded in new files (0 = unknown) */
    /* One line per event worth a log line (bad file, failed write). NULL = stderr. */
    void (*log)(void *ud, const char *line);
    void *log_ud;
} ds4kv_config;

/* What the index knows about one stored checkpoint (a copy: stays valid after
 * the entry is evicted; load by name then reports DS4KV_ERR_GONE). */
typedef struct ds4kv_entry {
    char name[40];               /* 32 lowercase hex + ".kv" */
    uint32_t n_tokens;
    uint32_t text_len;
    uint32_t ctx;
    uint32_t flags;
    uint32_t hits;
    uint8_t reason;
    uint8_t quant_bits;
    uint64_t file_bytes;
    uint64_t payload_bytes;
    uint64_t created_ns, last_used_ns;
} ds4kv_entry;

typedef struct ds4kv_stats {
    uint64_t hits;               /* successful loads */
    uint64_t misses;             /* lookups that found nothing usable */
    uint64_t tokens_restored;    /* token count of every successful load */
    uint64_t saves;              /* files written */
    uint64_t bytes_written;
    uint64_t files_evicted;      /* removed to keep the budget (or consumed) */
    uint64_t bytes_evicted;
    uint64_t bad_files;          /* files that failed validation (removed when possible) */
    uint64_t errors;             /* failed saves / loads / deletes */
    uint64_t files;              /* gauge: valid files in the index */
    uint64_t bytes_used;         /* gauge: their total size */
    uint64_t budget_bytes;
} ds4kv_stats;

/* Scans the directory: removes orphaned temporary files, validates every
 * cache file (header, model identity, sizes, metadata checksums), removes the
 * bad ones with one log line each, builds the index, then evicts down to the
 * budget. NULL (with err) only when the directory cannot be created or read;
 * a read-only directory opens fine (saves then fail cleanly). */
ds4kv_store *ds4kv_open(const ds4kv_config *cfg, ds4_err *err);
void ds4kv_close(ds4kv_store *st);

/* A request to match. Either or both of tokens / text may be given: an entry
 * matches when its token ids are a prefix of tokens, or when its cache text
 * is a byte prefix of text. The longest match wins (more tokens; ties: longer
 * text, then more recently used). Entries with fewer than min_tokens or more
 * than max_tokens tokens (0 = no limit) are not candidates; neither are
 * entries written for a larger context than ctx (0 = any). */
typedef struct ds4kv_query {
    const int32_t *tokens;
    size_t n_tokens;
    const char *text;
    size_t text_len;
    uint32_t min_tokens;
    uint32_t max_tokens;
    uint32_t ctx;
    int quiet;          /* 1: finding nothing is not counted as a miss (the
                           caller only asked whether disk beats a live match) */
} ds4kv_query;

/* 1 = found (*out filled), 0 = nothing (counted as a miss). */
int ds4kv_lookup(ds4kv_store *st, const ds4kv_query *q, ds4kv_entry *out);
/* 1 if an entry with exactly these tokens and cache text is stored. */
int ds4kv_contains(ds4kv_store *st, const int32_t *tokens, size_t n, const char *text, size_t text_len,
                   ds4kv_entry *out);

/* Verified bytes of one entry. Free with ds4kv_loaded_free. */
typedef struct ds4kv_loaded {
    ds4kv_entry entry;
    int32_t *tokens;
    char *text;                  /* NUL-terminated for convenience; text_len bytes */
    uint8_t *payload;
    size_t payload_len;
    uint8_t *toolmap;            /* NULL when none */
    size_t toolmap_len;
} ds4kv_loaded;

/* Reads and verifies every checksum. On success counts a hit (tokens
 * restored += n) and touches the entry (hit count, last-used time; also in
 * the file, best effort). A file that fails verification is removed from the
 * index and the directory (DS4KV_ERR_CORRUPT, one log line) and counted as a
 * miss. A loaded snapshot the engine then refuses should be dropped with
 * ds4kv_remove. */
int ds4kv_load(ds4kv_store *st, const char *name, ds4kv_loaded *out, ds4_err *err);
void ds4kv_loaded_free(ds4kv_loaded *l);

/* Removes one entry (file and index). consumed = 1 counts it as evicted
 * (a single-use checkpoint now owned by the live session), 0 as bad. */
int ds4kv_remove(ds4kv_store *st, const char *name, int consumed);

typedef struct ds4kv_save_req {
    const int32_t *tokens;
    uint32_t n_tokens;           /* > 0 */
    const char *text;            /* cache text (may be empty) */
    size_t text_len;
    const uint8_t *payload;      /* engine snapshot */
    size_t payload_len;
    const uint8_t *toolmap;      /* ds4kv_toolmap_encode() output, or NULL */
    size_t toolmap_len;
    uint32_t flags;              /* DS4KV_FLAG_*_VISIBLE; TOOLMAP is set from toolmap_len */
    uint8_t reason;
} ds4kv_save_req;

/* Writes <hash>.kv.tmp.<pid>, fsyncs it, renames it over the final name and
 * fsyncs the directory. Room is made first (evicting other entries by the
 * policy in store.c) so the directory never exceeds the budget, not even
 * while the temporary file exists. An identical entry already stored (same
 * tokens, text and tool map) is only touched. On any failure the temporary
 * file is removed and a negative code is returned; the index is unchanged
 * apart from evictions already made. */
int ds4kv_save(ds4kv_store *st, const ds4kv_save_req *req, ds4kv_entry *out, ds4_err *err);

/* Restore before render (spec/server.md §11.4): for every stored tool map
 * that holds any of ids, reads it (checksum verified) and calls fn for each
 * matching (id, dsml). ids = NULL visits every stored mapping (e.g. to
 * refill the tool memory at startup). Returns the number of calls. */
typedef int (*ds4kv_tool_fn)(void *ud, const char *id, size_t id_len, const char *dsml, size_t dsml_len);
int ds4kv_tools_restore(ds4kv_store *st, const char *const *ids, size_t n_ids, ds4kv_tool_fn fn, void *ud);

void ds4kv_get_stats(ds4kv_store *st, ds4kv_stats *out);
/* Snapshot of the index (malloc'd array, *n entries), e.g. for tests and tools. */
ds4kv_entry *ds4kv_list(ds4kv_store *st, size_t *n);

/* ---- tool-id map blob ("KTM", spec/server.md §13.3 trailer layout) ---- */
/* Encodes n (id, dsml) pairs. Ids of 1..256 bytes, DSML of 1 byte..512 MiB;
 * other pairs are skipped. Caller frees *out. */
int ds4kv_toolmap_encode(const char *const *ids, const char *const *dsml, const size_t *dsml_len, size_t n,
                         uint8_t **out, size_t *out_len);
/* Calls fn per entry until the first invalid one (entries before it are kept,
 * as the spec asks) or until fn returns nonzero. Returns the number of valid
 * entries seen, -1 if the blob header itself is bad. max_entries caps the
 * entry count (0 = no cap). */
int ds4kv_toolmap_decode(const uint8_t *blob, size_t len, uint32_t max_entries, ds4kv_tool_fn fn, void *ud);

/* ---- test hooks ---- */
/* Replaces write(2) for this store's file writes (NULL restores it). Lets
 * tests fail a write with any errno, or die half-way. */
typedef ssize_t (*ds4kv_write_fn)(int fd, const void *buf, size_t n);
void ds4kv_set_write_fn(ds4kv_store *st, ds4kv_write_fn fn);

#endif
