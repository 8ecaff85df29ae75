/* ctl.h - the ds4ctl lifecycle manager's internal interface (spec/lifecycle.md Part B).
 *
 * ds4ctl owns every lifecycle decision around ds4-server: the lifecycle lock, client
 * leases, spawning the server detached, readiness, the watchdog that stops the server
 * after the last lease, the model download, status and recovery. Each concern lives in
 * its own small file under src/ctl/; this header is the one place they meet.
 *
 * Convention: functions that can fail for a user-visible reason return a ds4ctl exit
 * code (enum ctl_exit, 0 = OK) and write one sentence into a ds4_err; the command line
 * front end (src/bin/ds4ctl.c) prints the sentence and exits with the code. The codes
 * are the stable table of spec §21.2 that the pi extension maps to messages. */
#ifndef DS4_CTL_H
#define DS4_CTL_H

#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/ds4_err.h"

/* Paths and messages are built in fixed buffers sized for PATH_MAX; a truncated
 * path simply fails to open, which is reported. GCC's truncation warning cannot see
 * that and would fire on nearly every snprintf here. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#ifdef __APPLE__
#define st_mtim st_mtimespec /* same timespec, BSD spelling */
#endif

#define CTL_MANAGED_BY "pi-sd4-provider" /* historical spelling, kept for compatibility */
#define CTL_TOOL "ds4ctl"
#define CTL_VERSION "0.1.0"

enum ctl_exit {
    CTL_OK = 0, CTL_ERROR = 1, CTL_USAGE = 2, CTL_LOCK_TIMEOUT = 3, CTL_RAM_TOO_SMALL = 4,
    CTL_CHECKOUT_FAILED = 5, CTL_BUILD_FAILED = 6, CTL_DOWNLOAD_FAILED = 7,
    CTL_DISK_FULL = 8, CTL_INTEGRITY = 9, CTL_PORT_TAKEN = 10, CTL_SERVER_EXITED = 11,
    CTL_READY_TIMEOUT = 12, CTL_IDENTITY = 13, CTL_CANCELLED = 14, CTL_CRASH_LOOP = 15,
};
const char *ctl_exit_name(int code);

/* ---- configuration (env.c) ------------------------------------------------------ */

enum ctl_verify { CTL_VERIFY_NONE, CTL_VERIFY_SIZE, CTL_VERIFY_SHA256 };
enum ctl_foreign { CTL_FOREIGN_USE_DS4, CTL_FOREIGN_USE_ANY, CTL_FOREIGN_REFUSE };

typedef struct ctl_cfg {
    char home[PATH_MAX];          /* state dir: --home, $DS4_HOME, else ~/.pi/ds4 */
    char runtime_env[PATH_MAX];   /* DS4_RUNTIME_DIR as given ("" = use home/support) */
    char support_repo[1024], support_branch[256];
    char server_bin[PATH_MAX];    /* DS4_SERVER_BINARY / DS4_SERVER_BIN ("" = runtime/ds4-server) */
    char download_script[PATH_MAX];
    int mpp_set; char mpp[64];    /* DS4_MPP; default auto on macOS, unset elsewhere */
    int mt_set; char mt[64];      /* DS4_MT: --mt instead of --mpp */
    char steer_file[PATH_MAX], steer_ffn[64], steer_attn[64];
    char host[256];
    long port, ctx, kv_mb;
    char extra_args[4096];
    char model_repo[512], model_file[512], model_url[4096], model_sha256[65];
    int verify;
    long dl_retries, min_ram_gb, disk_reserve_mb;
    char make_args[1024];
    char quant[64];
    long lease_ttl_s, poll_s, shutdown_grace_s, idle_grace_s, lock_timeout_s, log_max_mb;
    long ready_timeout_ms;
    int foreign;
} ctl_cfg;

/* Reads the environment (and home_override when non-NULL). Every number is validated;
 * a bad value returns CTL_USAGE naming the variable. */
int ctl_cfg_load(ctl_cfg *c, const char *home_override, ds4_err *err);
/* "<home>/<rel>" into buf (static-size paths; truncation is reported as an error). */
const char *ctl_path(const ctl_cfg *c, const char *rel, char *buf, size_t n);
/* The resolved runtime dir (DS4_RUNTIME_DIR or home/support, realpath when it exists). */
void ctl_runtime_dir(const ctl_cfg *c, char *buf, size_t n);
/* Absolute path of the executable to spawn. */
void ctl_server_exe(const ctl_cfg *c, char *buf, size_t n);
/* The server argument vector of §10.1 (+ --host/--port when non-default, + extra args).
 * Returns argc; argv entries are malloc'd, NULL-terminated; free with ctl_argv_free. */
int ctl_server_argv(const ctl_cfg *c, char ***argv_out);
void ctl_argv_free(char **argv);
/* "http://host:port/v1" */
void ctl_base_url(const ctl_cfg *c, char *buf, size_t n);
/* Steering scale parse: 1 if the string counts as numeric zero (§10.1 rule). */
int ctl_scale_is_zero(const char *s);

/* ---- small utilities (util.c) --------------------------------------------------- */

extern volatile sig_atomic_t ctl_cancelled;
void ctl_install_cancel_handlers(void);
int64_t ctl_now_ms(void);
int64_t ctl_mono_ms(void);
void ctl_iso_ms(int64_t ms, char *buf, size_t n);   /* 2026-11-26T06:45:10.123Z */
void ctl_iso_s(int64_t ms, char *buf, size_t n);    /* 2026-11-26T06:45:10Z */
void ctl_sleep_ms(long ms);
int ctl_mkdirs(const char *path, mode_t mode);
void ctl_random_hex(char *buf, size_t nbytes);       /* writes 2*nbytes hex + NUL */
/* Append one line to the log: "[<ISO ms>] <text>\n". Failures are ignored (a full
 * disk must not abort a download because its log line could not be written). */
void ctl_log(const ctl_cfg *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Watchdog line shape of Part A: "[<ISO s>] ds4-watchdog: <text>". */
void ctl_log_wd(const ctl_cfg *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Shell-quote argv into one "$ ..." line as Part A §3.5 does. */
void ctl_quote_argv(char *const argv[], char *buf, size_t n);
int ctl_parse_long(const char *s, long lo, long hi, long *out);
int ctl_parse_duration(const char *s, long *seconds); /* 90, 90s, 15m, 8h, 2d */

/* ---- JSON state files (jsonio.c) ----------------------------------------------- */

json_t *ctl_json_read(const char *path);                 /* NULL = absent/unparseable */
/* Atomic pretty write: tmp sibling, fsync, rename, optionally fsync the dir. */
int ctl_json_write(const char *path, json_t *obj, int sync_dir, ds4_err *err);
const char *ctl_json_str(json_t *o, const char *key);    /* NULL unless a string */
int64_t ctl_json_int(json_t *o, const char *key, int64_t dflt);
int ctl_json_bool(json_t *o, const char *key);

/* ---- process identity (ident.c) ------------------------------------------------- */

typedef struct ctl_ident {
    char start[64];     /* ps -o lstart= compatible, local time, C locale */
    char start_id[160]; /* Linux "<boot_id>:<ticks>", macOS "<sec>.<usec>" */
} ctl_ident;

int ctl_alive(pid_t pid);                                /* zombies count as dead */
int ctl_ident_get(pid_t pid, ctl_ident *id);             /* 0 ok, -1 not readable */
/* alive and start id (or, if either side lacks it, the start string) equal. A record
 * with neither is never trusted. */
int ctl_same_process(pid_t pid, const char *start, const char *start_id);
int ctl_exe_path(pid_t pid, char *buf, size_t n);        /* 0 ok */
int ctl_cmdline(pid_t pid, char *buf, size_t n);         /* args joined by spaces */
/* 1 found (value copied), 0 not set, -1 environment unreadable. */
int ctl_proc_env(pid_t pid, const char *name, char *buf, size_t n);
/* Part A §4.2: args contain the word ds4-server (after start, '/' or space). */
int ctl_looks_like_ds4_server(const char *args);

/* ---- network probes (net.c) ---------------------------------------------------- */

/* GET http://host:port/v1/models; returns the HTTP status, 0 when nothing answered.
 * body (optional) receives up to cap-1 bytes. */
int ctl_http_models(const char *host, long port, long timeout_ms, char *body, size_t cap);
int ctl_http_get(const char *host, long port, const char *path, long timeout_ms, char *body, size_t cap);
/* Ready = GET /v1/models answers 2xx and GET /health does not answer 503 (loading). */
int ctl_server_ready(const char *host, long port, long timeout_ms);
/* Listeners on TCP port: fills pids (owners visible to us) and returns how many; sets
 * *any_listener when some socket listens even if its owner is invisible. */
int ctl_port_listeners(long port, pid_t *pids, int max, int *any_listener);
/* Number of ESTABLISHED TCP sockets owned by pid (0 when unknown). */
int ctl_established(pid_t pid);

/* ---- lifecycle lock (lock.c) ---------------------------------------------------- */

typedef struct ctl_lock {
    int fd;
    int held;
    char nonce[40];
    char op[16];
    int64_t created_ms, refreshed_ms;
} ctl_lock;

/* Waits up to timeout_s (emitting "waiting" events). CTL_OK, CTL_LOCK_TIMEOUT or
 * CTL_CANCELLED. */
int ctl_lock_acquire(const ctl_cfg *c, ctl_lock *l, const char *op, double timeout_s,
                     int quiet, ds4_err *err);
void ctl_lock_tick(const ctl_cfg *c, ctl_lock *l);       /* refresh owner.json every 10 s */
void ctl_lock_release(const ctl_cfg *c, ctl_lock *l);
/* Read-only: 1 if some process holds the flock; owner.json copied when present. */
int ctl_lock_probe(const ctl_cfg *c, json_t **owner);

/* ---- leases (lease.c) ----------------------------------------------------------- */

enum ctl_lease_state { CTL_LEASE_VALID, CTL_LEASE_PID_DEAD, CTL_LEASE_START_MISMATCH,
                       CTL_LEASE_EXPIRED, CTL_LEASE_MALFORMED };
const char *ctl_lease_state_name(int st);
int ctl_lease_write(const ctl_cfg *c, pid_t pid, const char *client, int64_t expires_at,
                    ds4_err *err);
int ctl_lease_release(const ctl_cfg *c, pid_t pid, ds4_err *err);
/* Judges one lease file. ignore_age: skip the TTL rule (after a detected sleep). */
int ctl_lease_judge(const ctl_cfg *c, const char *path, int ignore_age, pid_t *pid_out,
                    int64_t *age_ms_out);
typedef void (*ctl_lease_cb)(void *ud, const char *name, pid_t pid, int state, int64_t age_ms);
/* Counts valid leases; when prune, deletes invalid files that did not change since they
 * were judged, logging each with its reason. */
int ctl_leases_count(const ctl_cfg *c, int prune, int ignore_age, ctl_lease_cb cb, void *ud);

/* ---- server record (server_rec.c) ---------------------------------------------- */

typedef struct ctl_server {
    int present;
    json_t *j;                 /* the parsed file (owned) */
    pid_t pid;
    int managed, adopted, stopping;
} ctl_server;

void ctl_server_load(const ctl_cfg *c, ctl_server *s);
void ctl_server_free(ctl_server *s);
/* §21.4: same process, executable matches the recorded binary, spawn token matches
 * where the environment is readable. why receives the failing check. */
int ctl_server_is_ours(const ctl_server *s, char *why, size_t n);
int ctl_server_write(const ctl_cfg *c, json_t *rec, ds4_err *err);
int ctl_server_remove(const ctl_cfg *c);
/* Rewrites the record with stopping flags (all fields kept), or without them. */
int ctl_server_mark_stopping(const ctl_cfg *c, ctl_server *s, int stopping);

/* ---- spawning (spawn.c) --------------------------------------------------------- */

/* Double fork + setsid; stdin /dev/null, stdout/stderr appended to log_path, every
 * other fd closed, HF_TOKEN removed from the environment, env_add ("K=V", NULL-ended)
 * added. *pid_out = the detached grandchild. Exec failure is reported. */
int ctl_spawn_detached(const char *cwd, char *const argv[], const char *log_path,
                       const char *const *env_add, pid_t *pid_out, ds4_err *err);
/* Runs argv in its own process group with output appended to the log, waiting for it;
 * cancellation (SIGINT/SIGTERM) terminates the group. With a phase, each output line
 * (split on CR and LF) is also compacted into a throttled progress event of that phase
 * (§9.3). Returns the exit status, 128+sig when signalled, -1 when it could not start
 * (err filled). */
int ctl_run_logged(const char *cwd, char *const argv[], const char *log_path, const char *phase,
                   ds4_err *err);
/* One child-output line made presentable (§9.3): ANSI and controls removed, blanks
 * collapsed, curl's header lines dropped (returns 0), curl's progress line rewritten
 * as "<received> / <total> (<pct>%, <speed>/s, <left> left)", cut to 160 chars. */
int ctl_compact_line(const char *in, char *out, size_t n);

/* ---- events / output (events.c) ------------------------------------------------- */

enum ctl_out { CTL_OUT_TEXT, CTL_OUT_JSONL };
void ctl_events_init(int mode, int quiet);
/* While set (by the lock holder), progress is also written to this file so that
 * clients waiting for the lock can show it; NULL stops sharing. */
void ctl_events_share_progress(const char *path);
int ctl_events_mode(void);
void ctl_ev_status(const char *phase, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Throttled to one per 750 ms per phase unless final. */
void ctl_ev_progress(const char *phase, int64_t received, int64_t total, double bps,
                     int final);
void ctl_ev_progress_text(const char *phase, const char *message, int final);
void ctl_ev_waiting(const char *phase, pid_t holder, const char *op, int64_t since_ms);
void ctl_ev_ready(const char *base_url, pid_t pid, int managed, int already, int64_t elapsed_ms);
void ctl_ev_error(int code, const char *message, const ctl_cfg *c_for_log_tail);
void ctl_human_bytes(double b, char *buf, size_t n);

/* ---- watchdog (watchdog.c) ------------------------------------------------------ */

int ctl_watchdog_running(const ctl_cfg *c);           /* flock probe */
int ctl_watchdog_ensure(const ctl_cfg *c, ds4_err *err); /* spawn when absent */
int ctl_watch(const ctl_cfg *c);                      /* the loop; returns the exit code */
/* Between two polls the wall clock ran more than 10 s ahead of the clock that stops
 * while the machine sleeps: the machine slept (§21.11). */
int ctl_slept(int64_t prev_wall, int64_t prev_mono, int64_t wall, int64_t mono);

/* ---- stop (stop.c) -------------------------------------------------------------- */

/* With the lock held: SIGTERM a verified managed server, wait the grace, SIGKILL,
 * remove the record. recount: abort (return 1) if a lease appeared after `stopping`
 * was written. Returns CTL_OK, CTL_IDENTITY, or 1 meaning "aborted, leases exist". */
int ctl_stop_locked(const ctl_cfg *c, ctl_lock *l, ctl_server *s, int recount, int watchdog,
                    ds4_err *err);
int ctl_cmd_stop(const ctl_cfg *c, int force, long timeout_s);

/* ---- prepare: RAM, checkout, build, download (prepare.c, download.c) ------------ */

double ctl_total_ram_gb(void);
int ctl_check_quant_ram(const ctl_cfg *c, ds4_err *err);
int ctl_prepare(const ctl_cfg *c, ctl_lock *l, ds4_err *err);
/* Makefile + download_model.sh + (ds4_server.c or src/bin/ds4-server.c), §8.1. */
int ctl_looks_like_checkout(const char *dir);
/* The built-in downloader of §21.8.3 into <runtime>/gguf, then the ds4flash.gguf link. */
int ctl_download(const ctl_cfg *c, ctl_lock *l, const char *runtime, int force_verify,
                 ds4_err *err);

/* SHA-256 (sha256.c) */
typedef struct { uint32_t h[8]; uint64_t len; uint8_t buf[64]; size_t nbuf; } ctl_sha256;
void ctl_sha256_init(ctl_sha256 *s);
void ctl_sha256_update(ctl_sha256 *s, const void *p, size_t n);
void ctl_sha256_final(ctl_sha256 *s, uint8_t out[32]);
void ctl_sha256_hex(const uint8_t d[32], char out[65]);

/* ---- commands (ensure.c, status.c, recover.c, logs.c) --------------------------- */

int ctl_cmd_ensure(const ctl_cfg *c, pid_t client_pid, const char *client, int no_wait);
int ctl_cmd_status(const ctl_cfg *c, int json);
int ctl_cmd_recover(const ctl_cfg *c, int dry_run, int kill, int yes);
int ctl_cmd_logs(const ctl_cfg *c, long lines, int follow, long bytes, int raw);
int ctl_cmd_config(const ctl_cfg *c, int json);
/* Sanitised tail of the log (ANSI removed, CR -> LF), last max_lines lines. */
char *ctl_log_tail(const ctl_cfg *c, long max_bytes, long max_lines);

#endif
