/* config.h - ds4-server command-line configuration (spec/server.md §2).
 *
 * One struct holds every flag the server accepts, so parsing can be unit
 * tested without starting anything. Flags for features not built yet (MTP
 * speculative decoding, the Metal tensor policy, the steering policy) are
 * accepted and stored so the handbook's command lines run verbatim; the
 * server says at startup which ones it does not act on. */
#ifndef DS4_SERVER_CONFIG_H
#define DS4_SERVER_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "common/ds4_err.h"

enum { DS4S_THINK_NONE = 0, DS4S_THINK_HIGH = 1, DS4S_THINK_MAX = 2 };

typedef struct ds4s_config {
    const char *model;          /* -m/--model, default "ds4flash.gguf" */
    const char *mtp;            /* --mtp FILE (stored; speculative decode not implemented) */
    int mtp_draft;              /* --mtp-draft N */
    double mtp_margin;          /* --mtp-margin F, 0..1000 */
    int ctx;                    /* -c/--ctx, default 32768 */
    int tokens;                 /* -n/--tokens, default 393216 */
    int threads;                /* -t/--threads, 0 = engine default */
    const char *chdir_to;       /* --chdir */
    int quality;                /* --quality */
    const char *steer_file;     /* --dir-steering-file */
    double steer_ffn;           /* --dir-steering-ffn */
    double steer_attn;          /* --dir-steering-attn */
    int steer_ffn_set, steer_attn_set;
    const char *steer_policy;   /* --dir-steering-policy (FORK) */
    int warm_weights;           /* --warm-weights */
    const char *backend;        /* --backend / --cpu / --cuda / --metal; NULL = fastest */
    const char *gpus;           /* --gpus LIST: CUDA devices the layers are split across; NULL = device 0 */
    const char *host;           /* --host, default 127.0.0.1 */
    int port;                   /* --port, default 8000 */
    int cors;                   /* --cors */
    const char *trace;          /* --trace FILE */
    const char *kv_disk_dir;    /* --kv-disk-dir: disk KV cache (server/kvcache.c) */
    int kv_disk_space_mb;       /* --kv-disk-space-mb, default 4096 */
    int kv_min_tokens;          /* --kv-cache-min-tokens, 512 */
    int kv_cold_max_tokens;     /* --kv-cache-cold-max-tokens, 30000 */
    int kv_continued_interval;  /* --kv-cache-continued-interval-tokens, 10000 */
    int kv_trim_tokens;         /* --kv-cache-boundary-trim-tokens, 32 */
    int kv_align_tokens;        /* --kv-cache-boundary-align-tokens, 2048 */
    int kv_reject_diff_quant;   /* --kv-cache-reject-different-quant */
    int disable_exact_replay;   /* --disable-exact-dsml-tool-replay */
    int tool_memory_max_ids;    /* --tool-memory-max-ids, 100000 */
    const char *mt_mode;        /* -mt/--mt/--mpp (Metal only; ignored) */
    const char *api_key;        /* --api-key KEY */
    int insecure_public;        /* --insecure-public */
    int think_default;          /* --think none|high|max, default high */
    const char *alias;          /* --alias NAME: extra model id answered by /v1/models/{id} */
    /* limits */
    size_t max_body_bytes;      /* --max-body-mb, default 64 MiB */
    int max_connections;        /* --max-connections, default 64 */
    int request_timeout_s;      /* --request-timeout, default 600 (idle connection) */
    int max_queue;              /* --max-queue, default 64 queued jobs */
    double ping_interval_s;     /* --sse-ping-interval SEC, default 5: stream keepalives */
    const char *test_script;    /* --test-script FILE (test only, needs DS4_ALLOW_TEST_SCRIPT=1) */
} ds4s_config;

void ds4s_config_default(ds4s_config *c);

/* Parses argv (argv[0] is the program). Returns 0 to run, 1 when --help was
 * given (usage already printed to stdout), -1 on a bad flag (err filled; the
 * caller prints usage to stderr and exits 2). Strings point into argv. */
int ds4s_config_parse(ds4s_config *c, int argc, char **argv, ds4_err *err);

/* Checks that need the whole command line (bind policy, test-script gate).
 * Returns -1 with err filled when the server must not start. */
int ds4s_config_validate(const ds4s_config *c, ds4_err *err);

/* Whether HOST names a loopback address (127.0.0.0/8, ::1, localhost). */
int ds4s_host_is_loopback(const char *host);

void ds4s_usage(FILE *out);

#endif
