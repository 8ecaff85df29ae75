/* kvcache.c - when the server writes and reads disk KV checkpoints
 * (spec/server.md §12.2 steps 8-9, §13.1, §13.2, §13.5; issue 7). The bytes,
 * the index and the budget live in src/kvdisk; this file decides *what* to
 * save and *when*, and how a request resumes from a stored prefix.
 *
 * Saves (a checkpoint is only written when the live session is exactly at
 * the tokens saved; the session is never rolled back to produce one):
 *   evict (3)     before a live miss discards the session (length >= min);
 *   cold (1)      a request with nothing cached: at the chat anchor (the
 *                 last <｜User｜> before the first <｜Assistant｜>: shared
 *                 system prompt + tools), else at the aligned stable length,
 *                 else the whole prompt; prefill stops there, saves, goes on;
 *   continued (2) at every multiple of the continued step, during prefill
 *                 and before decode steps outside tool calls;
 *   shutdown (4)  the live session at clean shutdown.
 * Keys: the cache text is the decoded bytes of the tokens, or, when the
 * visible-transcript binding holds at the live frontier, that transcript (so
 * a client replaying without the hidden reasoning resumes from disk too).
 * The store also matches by token prefix, so a request that re-tokenizes
 * identically never depends on the text key.
 *
 * Restore: when the longest stored prefix beats what the live session can
 * reuse, it is loaded into the session; the effective prompt becomes the
 * loaded tokens + the rendered text after the stored bytes, tokenized on its
 * own (§12.2 rule) - or simply the request's tokens when the stored tokens are
 * a prefix of them. A snapshot the engine refuses is dropped from the store
 * and the job runs as if nothing were stored.
 *
 * Identity: files are keyed to ds4_model_identity plus the steering setup
 * (a checkpoint computed under steering is a different function of the
 * tokens), so a store never serves another model's or another steering's KV. */
#include "server/kvcache.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kvdisk/kvdisk.h"

static struct {
    ds4kv_store *st;
    int prev_tools;        /* the job that produced the live session had tools */
    int prev_api;
    int last_continued;    /* last continued frontier stored (§13.2) */
    int cold_len;          /* planned cold save length for this job, 0 = none */
    int cold_on_frontier;  /* the cold save also counts as the continued one */
} K;
/* /metrics runs on HTTP threads, which outlive the store at shutdown (the
 * HTTP server stops after the worker): this lock orders close against it. */
static pthread_mutex_t metrics_mu = PTHREAD_MUTEX_INITIALIZER;

static void klog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void klog(const char *fmt, ...) {
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%m%d %H:%M:%S", &tm);
    fprintf(stderr, "%s kv cache: ", ts);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void store_log(void *ud, const char *line) {
    (void)ud;
    klog("%s", line);
}

int ds4s_kvcache_enabled(void) { return K.st != NULL; }

/* ---- tool maps ---- */

typedef struct tm_collect {
    const char *text;
    size_t text_len;
    const char **ids, **dsml;
    size_t *len;
    size_t n, cap;
} tm_collect;

static void tm_pick(void *ud, const char *id, const char *dsml, size_t len) {
    tm_collect *c = ud;
    if (!len || len > c->text_len || !memmem(c->text, c->text_len, dsml, len)) return;
    if (c->n == c->cap) {
        size_t nc = c->cap ? 2 * c->cap : 16;
        const char **ni = realloc(c->ids, nc * sizeof *ni), **nd = NULL;
        if (ni) c->ids = ni;
        nd = ni ? realloc(c->dsml, nc * sizeof *nd) : NULL;
        if (nd) c->dsml = nd;
        size_t *nl = nd ? realloc(c->len, nc * sizeof *nl) : NULL;
        if (!nl) return;
        c->len = nl;
        c->cap = nc;
    }
    /* Copies: the tool memory may evict them once its lock is released. */
    char *i2 = strdup(id), *d2 = malloc(len);
    if (!i2 || !d2) { free(i2); free(d2); return; }
    memcpy(d2, dsml, len);
    c->ids[c->n] = i2;
    c->dsml[c->n] = d2;
    c->len[c->n] = len;
    c->n++;
}

/* The mappings whose DSML block occurs verbatim in text (§11.4
 * persistence), encoded as a KTM blob; NULL when there are none. Only the
 * 4096 most recently used ids are considered: a checkpoint's own calls are
 * recent, and the scan is a memmem per id. */
static uint8_t *toolmap_for(ds4s_server *s, const char *text, size_t text_len, size_t *out_len) {
    *out_len = 0;
    if (!s->toolmem || !text_len) return NULL;
    tm_collect c = {.text = text, .text_len = text_len};
    ds4s_toolmem_each(s->toolmem, 4096, tm_pick, &c);
    uint8_t *blob = NULL;
    if (c.n) ds4kv_toolmap_encode(c.ids, c.dsml, c.len, c.n, &blob, out_len);
    for (size_t i = 0; i < c.n; i++) {
        free((void *)c.ids[i]);
        free((void *)c.dsml[i]);
    }
    free(c.ids);
    free(c.dsml);
    free(c.len);
    return blob;
}

typedef struct tm_put {
    ds4s_server *s;
    size_t n;
} tm_put;

static int tm_put_one(void *ud, const char *id, size_t il, const char *dsml, size_t dl) {
    tm_put *p = ud;
    char idz[300];
    if (il >= sizeof idz) return 0;
    memcpy(idz, id, il);
    idz[il] = 0;
    const char *ids[1] = {idz};
    ds4s_toolmem_put(p->s->toolmem, ids, 1, dsml, dl);
    p->n++;
    return 0;
}

/* ---- saving ---- */

/* Saves the live session (all of it) under text (NULL = its decoded bytes). */
static void save_live(ds4s_server *s, int reason, const char *text, size_t text_len, uint32_t flags) {
    const int n = ds4_session_n_tokens(s->session);
    if (n <= 0 || n < s->cfg.kv_min_tokens) return;
    const int32_t *toks = ds4_session_tokens(s->session);
    ds4_sbuf dec = {0};
    if (!text) {
        if (ds4_decode(s->vocab, toks, (size_t)n, &dec) != 0) {
            klog("not saving %d tokens: they do not decode", n);
            ds4_sbuf_free(&dec);
            return;
        }
        text = dec.p ? dec.p : "";
        text_len = dec.len;
        flags = 0;
    }
    size_t tml = 0;
    uint8_t *tm = toolmap_for(s, text, text_len, &tml);
    ds4kv_entry e;
    /* Same tokens, text and (so) payload already stored: the store only
     * touches it unless the tool map changed, so skip the serialisation. */
    if (ds4kv_contains(K.st, toks, (size_t)n, text, text_len, &e) && !tml) {
        ds4_sbuf_free(&dec);
        return;
    }
    uint8_t *blob = NULL;
    size_t blen = 0;
    ds4_err err = {{0}};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (ds4_session_save(s->session, &blob, &blen, &err) != 0) {
        klog("snapshot of %d tokens failed: %s", n, err.msg);
    } else {
        ds4kv_save_req r = {.tokens = toks, .n_tokens = (uint32_t)n, .text = text, .text_len = text_len,
                            .payload = blob, .payload_len = blen, .toolmap = tm, .toolmap_len = tml,
                            .flags = flags, .reason = (uint8_t)reason};
        int rc = ds4kv_save(K.st, &r, &e, &err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        static const char *names[] = {"unknown", "cold", "continued", "evict", "shutdown"};
        if (rc == DS4KV_OK)
            klog("saved %s checkpoint %s: %d tokens, %llu bytes, %.1f ms%s", reason >= 0 && reason <= 4 ? names[reason] : "other",
                 e.name, n, (unsigned long long)e.file_bytes,
                 (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6,
                 flags & (DS4KV_FLAG_THINKING_VISIBLE | DS4KV_FLAG_RESPONSES_VISIBLE) ? " (visible-transcript key)" : "");
        /* failures were logged by the store; the request goes on uncached */
    }
    free(blob);
    free(tm);
    ds4_sbuf_free(&dec);
}

/* The live session before a miss replaces it: keyed by the visible
 * transcript when the binding holds at this frontier (§13.1). */
static void save_live_keyed(ds4s_server *s, int reason) {
    const int live = ds4_session_n_tokens(s->session);
    if (live <= 0 || live < s->cfg.kv_min_tokens) return;
    if (s->visible.frontier == live) {
        int k = K.prev_tools ? 1 : 0;
        if (!s->visible.text[k]) k = 1 - k;
        if (s->visible.text[k]) {
            uint32_t f = K.prev_api == DS4_API_OPENAI_RESPONSES ? DS4KV_FLAG_RESPONSES_VISIBLE : DS4KV_FLAG_THINKING_VISIBLE;
            save_live(s, reason, s->visible.text[k], s->visible.len[k], f);
            return;
        }
    }
    save_live(s, reason, NULL, 0, 0);
}

/* ---- open / close ---- */

/* TEST ONLY (tests/kvdisk/test_faults.sh): every checkpoint write call first
 * sleeps, so a test can kill -9 the server while a temporary file is half
 * written. Honoured only with DS4_ALLOW_TEST_SCRIPT=1, like --test-script. */
static long test_delay_ms;
static ssize_t slow_write(int fd, const void *b, size_t n) {
    struct timespec ts = {test_delay_ms / 1000, (test_delay_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return write(fd, b, n > 4096 ? n / 2 : n);
}

int ds4s_kvcache_open(ds4s_server *s, ds4_err *err) {
    (void)err;
    if (!s->cfg.kv_disk_dir) return 0;
    char ident[1024];
    const char *mid = ds4_model_identity(s->model);
    if (s->cfg.steer_file) {
        struct stat sb;
        long long sz = 0, mt = 0;
        if (stat(s->cfg.steer_file, &sb) == 0) { sz = (long long)sb.st_size; mt = (long long)sb.st_mtime; }
        snprintf(ident, sizeof ident, "%s|steer=%s:%lld:%lld|ffn=%.9g|attn=%.9g", mid, s->cfg.steer_file, sz, mt,
                 s->cfg.steer_ffn, s->cfg.steer_attn);
    } else {
        snprintf(ident, sizeof ident, "%s", mid);
    }
    ds4kv_config kc = {.dir = s->cfg.kv_disk_dir,
                       .budget_bytes = (uint64_t)s->cfg.kv_disk_space_mb << 20,
                       .model_identity = ident,
                       .ctx = (uint32_t)s->cfg.ctx,
                       .quant_bits = 0,
                       .log = store_log};
    ds4_err e = {{0}};
    ds4kv_store *opened = ds4kv_open(&kc, &e);
    pthread_mutex_lock(&metrics_mu);
    K.st = opened;
    pthread_mutex_unlock(&metrics_mu);
    if (!K.st) {
        klog("disabled: %s", e.msg);
        return 0;
    }
    const char *allow = getenv("DS4_ALLOW_TEST_SCRIPT"), *delay = getenv("DS4_KVDISK_TEST_WRITE_DELAY_MS");
    if (allow && !strcmp(allow, "1") && delay && atol(delay) > 0) {
        test_delay_ms = atol(delay);
        ds4kv_set_write_fn(K.st, slow_write);
        klog("WARNING: TEST MODE, every checkpoint write waits %ld ms", test_delay_ms);
    }
    ds4kv_stats st;
    ds4kv_get_stats(K.st, &st);
    klog("%s: %llu checkpoint files, %.1f of %d MiB", s->cfg.kv_disk_dir, (unsigned long long)st.files,
         st.bytes_used / 1048576.0, s->cfg.kv_disk_space_mb);
    K.last_continued = 0;
    K.prev_api = -1;
    /* Restore before render: every stored mapping goes back into the tool
     * memory (bounded by its own limits), so a replay after a restart renders
     * the sampled DSML and matches the stored text. */
    if (s->toolmem && st.files) {
        tm_put p = {s, 0};
        ds4kv_tools_restore(K.st, NULL, 0, tm_put_one, &p);
        if (p.n) klog("restored %zu tool-call ids for exact DSML replay", p.n);
    }
    return 0;
}

void ds4s_kvcache_close(ds4s_server *s) {
    if (!K.st) return;
    if (s->session) save_live_keyed(s, DS4KV_REASON_SHUTDOWN);
    pthread_mutex_lock(&metrics_mu);
    ds4kv_store *st = K.st;
    K.st = NULL;
    pthread_mutex_unlock(&metrics_mu);
    ds4kv_close(st);
}

/* ---- job start ---- */

static int step_len(const ds4s_config *c) {
    int iv = c->kv_continued_interval, al = c->kv_align_tokens;
    if (iv <= 0) return 0;
    if (al > 0) iv = (iv + al - 1) / al * al;
    return iv;
}

/* §13.2 cold length: chat anchor, else aligned stable length, else all. */
static int cold_length(ds4s_server *s, const int32_t *t, int n) {
    const ds4s_config *c = &s->cfg;
    int32_t user = ds4_vocab_special(s->vocab, DS4_SP_USER), asst = ds4_vocab_special(s->vocab, DS4_SP_ASSISTANT);
    int first_asst = -1, anchor = -1;
    for (int i = 0; i < n; i++)
        if (t[i] == asst) { first_asst = i; break; }
    for (int i = 0; first_asst >= 0 && i < first_asst; i++)
        if (t[i] == user) anchor = i;
    if (anchor >= c->kv_min_tokens && anchor > 0) return anchor;
    int trim = c->kv_trim_tokens > 0 ? c->kv_trim_tokens : 0;
    if (n > c->kv_min_tokens + trim) {
        int stable = n - trim;
        if (c->kv_align_tokens > 0) stable = stable / c->kv_align_tokens * c->kv_align_tokens;
        if (stable >= c->kv_min_tokens && stable > 0) return stable;
    }
    return n;
}

static int is_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return na <= nb && !memcmp(a, b, na * sizeof *a);
}

void ds4s_kvcache_prepare(ds4s_server *s, ds4s_job *j, ds4_tokens *eff) {
    K.cold_len = 0;
    K.cold_on_frontier = 0;
    if (!K.st) return;
    const int live = ds4_session_n_tokens(s->session);
    const int common = ds4_session_common_prefix(s->session, eff->ids, (int)eff->n);
    int reuse = common == live ? live : 0;   /* the engine rebuilds on any rewind */

    if (live > 0 && reuse < live) {           /* live miss: §12.2 step 8 */
        save_live_keyed(s, DS4KV_REASON_EVICT);
        K.last_continued = 0;
    }
    K.prev_tools = j->req.tools_active;
    K.prev_api = (int)j->api;

    /* §12.2 step 9: a stored prefix longer than the live reuse. */
    int min = s->cfg.kv_min_tokens > reuse + 1 ? s->cfg.kv_min_tokens : reuse + 1;
    ds4kv_query q = {.tokens = j->toks.ids, .n_tokens = j->toks.n, .text = j->prompt, .text_len = j->prompt_len,
                     .min_tokens = (uint32_t)(min > 0 ? min : 1), .max_tokens = (uint32_t)(s->cfg.ctx - 1),
                     .quiet = live > 0 && reuse == live};
    ds4kv_entry hit;
    int restored = 0;
    /* A file that fails its checks is removed by the store, so the next
     * lookup offers the next-longest candidate. */
    for (int tries = 0; !restored && tries < 3 && ds4kv_lookup(K.st, &q, &hit); tries++) {
        ds4kv_loaded l;
        ds4_err err = {{0}};
        if (ds4kv_load(K.st, hit.name, &l, &err) == DS4KV_OK) {
            if (ds4_session_load(s->session, l.payload, l.payload_len, &err) != 0) {
                klog("checkpoint %s refused by the engine (%s); removed, continuing without it", hit.name, err.msg);
                ds4kv_remove(K.st, hit.name, 0);
                /* A refused blob leaves the session as it was: snapshot.c
                 * validates the whole blob before touching the session. */
            } else {
                ds4_tokens ne = {0};
                int ok = 1;
                if (is_prefix(l.tokens, l.entry.n_tokens, j->toks.ids, j->toks.n)) {
                    for (size_t i = 0; i < j->toks.n; i++) ds4_tokens_push(&ne, j->toks.ids[i]);
                } else {
                    for (uint32_t i = 0; i < l.entry.n_tokens; i++) ds4_tokens_push(&ne, l.tokens[i]);
                    ok = ds4_encode_rendered(s->vocab, j->prompt + l.entry.text_len, j->prompt_len - l.entry.text_len,
                                             &ne, &err) == 0;
                }
                if (ok && (int)ne.n < s->cfg.ctx) {
                    ds4_tokens_free(eff);
                    *eff = ne;
                    restored = 1;
                    reuse = (int)l.entry.n_tokens;
                    K.last_continued = reuse;
                    s->visible.frontier = -1;   /* the session moved */
                    klog("restored %u tokens from %s (%s match), prefilling %zu", l.entry.n_tokens, hit.name,
                         is_prefix(l.tokens, l.entry.n_tokens, j->toks.ids, j->toks.n) ? "token" : "text",
                         eff->n - l.entry.n_tokens);
                    if (s->cfg.kv_cold_max_tokens > 0 && l.entry.n_tokens > (uint32_t)s->cfg.kv_cold_max_tokens)
                        ds4kv_remove(K.st, hit.name, 1);  /* large snapshots are single-use (§13.5 step 6) */
                } else {
                    ds4_tokens_free(&ne);
                }
            }
            if (l.toolmap && s->toolmem) {
                tm_put p = {s, 0};
                ds4kv_toolmap_decode(l.toolmap, l.toolmap_len, 4u * (uint32_t)s->cfg.tool_memory_max_ids, tm_put_one, &p);
            }
            ds4kv_loaded_free(&l);
        }
    }

    /* §13.2 cold: nothing cached at all. */
    if (!restored && reuse == 0 && s->cfg.kv_cold_max_tokens > 0 && (int)eff->n >= s->cfg.kv_min_tokens &&
        (int)eff->n <= s->cfg.kv_cold_max_tokens) {
        K.cold_len = cold_length(s, eff->ids, (int)eff->n);
        int step = step_len(&s->cfg);
        K.cold_on_frontier = step > 0 && K.cold_len % step == 0;
    }
}

/* ---- prefill with checkpoints on the way ---- */

static void save_prefix(ds4s_server *s, int reason) {
    save_live(s, reason, NULL, 0, 0);
}

int ds4s_kvcache_sync(ds4s_server *s, const int32_t *tokens, int n, int *reused, ds4_progress_fn progress, void *ud,
                      ds4_err *err) {
    if (!K.st) return ds4_session_sync(s->session, tokens, n, reused, progress, ud, err);
    const int step = step_len(&s->cfg);
    int first = 1, rc = 0;
    int pos = ds4_session_common_prefix(s->session, tokens, n);
    if (pos < ds4_session_n_tokens(s->session)) pos = 0;   /* rewind = rebuild */
    for (;;) {
        /* Next stop: the cold length or the next continued frontier. */
        int stop = n, reason = 0;
        if (K.cold_len > pos && K.cold_len <= n) { stop = K.cold_len; reason = DS4KV_REASON_COLD; }
        if (step > 0) {
            int base = pos > K.last_continued ? pos : K.last_continued;
            int f = (base / step + 1) * step;
            if (f < s->cfg.kv_min_tokens) f = (s->cfg.kv_min_tokens + step - 1) / step * step;
            if (f <= n && f < stop) { stop = f; reason = DS4KV_REASON_CONTINUED; }
            else if (f == stop && reason == DS4KV_REASON_COLD) K.cold_on_frontier = 1;
        }
        rc = ds4_session_sync(s->session, tokens, stop, first ? reused : NULL, progress, ud, err);
        first = 0;
        if (rc != 0) return rc;
        if (reason == DS4KV_REASON_COLD) {
            save_prefix(s, DS4KV_REASON_COLD);
            if (K.cold_on_frontier) K.last_continued = stop;
            K.cold_len = 0;
        } else if (reason == DS4KV_REASON_CONTINUED) {
            save_prefix(s, DS4KV_REASON_CONTINUED);
            K.last_continued = stop;
        }
        pos = stop;
        if (stop >= n) return 0;
    }
}

void ds4s_kvcache_decode_point(ds4s_server *s) {
    if (!K.st) return;
    const int step = step_len(&s->cfg), n = ds4_session_n_tokens(s->session);
    if (step <= 0 || n <= 0 || n % step || n < s->cfg.kv_min_tokens || n <= K.last_continued) return;
    save_prefix(s, DS4KV_REASON_CONTINUED);
    K.last_continued = n;
}

/* ---- metrics ---- */

void ds4s_kvcache_metrics(FILE *f) {
    ds4kv_stats st;
    pthread_mutex_lock(&metrics_mu);
    int on = K.st != NULL;
    if (on) ds4kv_get_stats(K.st, &st);
    pthread_mutex_unlock(&metrics_mu);
    if (!on) return;
    struct { const char *name, *help, *type; uint64_t v; } c[] = {
        {"ds4_kvdisk_hits_total", "Disk KV checkpoints restored into the session.", "counter", st.hits},
        {"ds4_kvdisk_misses_total", "Disk lookups that found no usable checkpoint.", "counter", st.misses},
        {"ds4_kvdisk_tokens_restored_total", "Prompt tokens restored from disk instead of prefilled.", "counter", st.tokens_restored},
        {"ds4_kvdisk_saves_total", "Checkpoint files written.", "counter", st.saves},
        {"ds4_kvdisk_bytes_written_total", "Bytes of checkpoint files written.", "counter", st.bytes_written},
        {"ds4_kvdisk_files_evicted_total", "Checkpoint files removed to hold the budget (or consumed).", "counter", st.files_evicted},
        {"ds4_kvdisk_bytes_evicted_total", "Bytes of checkpoint files removed to hold the budget (or consumed).", "counter", st.bytes_evicted},
        {"ds4_kvdisk_bad_files_total", "Checkpoint files that failed validation (removed, never loaded).", "counter", st.bad_files},
        {"ds4_kvdisk_errors_total", "Failed checkpoint writes, reads or removals (the request went on uncached).", "counter", st.errors},
        {"ds4_kvdisk_files", "Checkpoint files in the cache directory.", "gauge", st.files},
        {"ds4_kvdisk_bytes", "Bytes of checkpoint files in the cache directory.", "gauge", st.bytes_used},
        {"ds4_kvdisk_budget_bytes", "Disk KV cache budget (--kv-disk-space-mb).", "gauge", st.budget_bytes},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", c[i].name, c[i].help, c[i].name, c[i].type, c[i].name,
                (unsigned long long)c[i].v);
}

char *ds4s_kvcache_metrics_append(char *text) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return text;
    if (text) fputs(text, f);
    ds4s_kvcache_metrics(f);
    if (fclose(f) != 0 || !buf) { free(buf); return text; }
    free(text);
    return buf;
}
