/* store.c - the checkpoint directory: scan, index, lookup, load, save, evict
 * (spec/server.md §13; issue 7). File layout: format.c.
 *
 * Index. Built once at open by reading each file's header, tokens, text and
 * tool-map ids (never the payload); kept in memory afterwards, so a lookup
 * is a walk over a few hundred entries with memcmp, not a directory scan.
 * A file that fails any check (magic, version, model identity, name, exact
 * size, metadata or tool-map checksum) is removed with one log line; the
 * payload checksum is checked when the payload is loaded, and a mismatch
 * there removes the file the same way. Nothing unverified reaches the engine.
 *
 * Crash safety. A save writes "<name>.tmp.<pid>", fsyncs it, renames it over
 * the final name and fsyncs the directory: after a crash at any point the
 * final name holds either nothing, the previous complete file, or the new
 * complete file. Temporary files whose process is gone are removed at open.
 * Any write error (ENOSPC, EIO, EROFS, ...) removes the temporary file and
 * returns a code: the caller simply continues uncached.
 *
 * Budget. The byte total of indexed files plus the temporary file being
 * written never exceeds budget_bytes: room is made before the write starts.
 * Eviction policy (diverges from the score of spec §13.6, which has no
 * recency term for files that were never hit): least recently used, weighted
 * by prefix length and hits. Each file's value is
 *     value = tokens × (hits + 1) × 2^(−(now − last_used) / 6 h)
 * with last_used = creation time until the first hit; the lowest value is
 * evicted first (ties: least recently used). So among files used at the same
 * time the shorter prefix goes first (a long prefix costs more to rebuild),
 * and a file twice as long as another survives 6 hours more of disuse. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kvdisk/kvdisk_internal.h"

#define HALF_LIFE_NS (6.0 * 3600.0 * 1e9)

typedef struct ent {
    ds4kv_entry e;
    int32_t *tokens;
    char *text;
    char *ids;        /* tool ids, each NUL-terminated, back to back */
    size_t ids_len;
    uint8_t toolmap_sum[16];
    uint64_t seq;     /* in-process recency, breaks equal-time ties */
} ent;

struct ds4kv_store {
    pthread_mutex_t mu;
    char *dir;
    int dfd;
    uint64_t budget;
    uint8_t model[16];
    uint32_t ctx;
    uint8_t quant;
    void (*log)(void *, const char *);
    void *log_ud;
    ds4kv_write_fn wfn;
    ent *v;
    size_t n, cap;
    uint64_t used;
    uint64_t seq;
    ds4kv_stats c;    /* counters, updated with atomics */
};

const char *ds4kv_strerror(int rc) {
    switch (rc) {
    case DS4KV_OK: return "ok";
    case DS4KV_ERR_IO: return "I/O error";
    case DS4KV_ERR_NOSPC: return "no space left on the cache device";
    case DS4KV_ERR_READONLY: return "cache directory is not writable";
    case DS4KV_ERR_TOO_BIG: return "checkpoint larger than the whole cache budget";
    case DS4KV_ERR_CORRUPT: return "cache file failed validation";
    case DS4KV_ERR_ARG: return "invalid argument";
    case DS4KV_ERR_NOMEM: return "out of memory";
    case DS4KV_ERR_GONE: return "no such cache entry";
    default: return "unknown error";
    }
}

#define ADD(field, v) __atomic_add_fetch(&st->c.field, (uint64_t)(v), __ATOMIC_RELAXED)
#define SET(field, v) __atomic_store_n(&st->c.field, (uint64_t)(v), __ATOMIC_RELAXED)

static void logf_(ds4kv_store *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(ds4kv_store *st, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int k = snprintf(line, sizeof line, "kvdisk %s: ", st->dir);
    if (k < 0 || (size_t)k >= sizeof line) k = 0;
    vsnprintf(line + k, sizeof line - (size_t)k, fmt, ap);
    va_end(ap);
    if (st->log) st->log(st->log_ud, line);
    else fprintf(stderr, "%s\n", line);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int code_of(int e) {
    switch (e) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG: return DS4KV_ERR_NOSPC;
    case EROFS:
    case EACCES:
    case EPERM: return DS4KV_ERR_READONLY;
    case ENOMEM: return DS4KV_ERR_NOMEM;
    default: return DS4KV_ERR_IO;
    }
}

static void gauges(ds4kv_store *st) {
    SET(files, st->n);
    SET(bytes_used, st->used);
}

/* ---- plain buffered-size I/O helpers (never mmap: the process already maps
 * a very large model, spec §13.3) ---- */

static int read_full(int fd, void *buf, size_t n) {
    uint8_t *p = buf;
    while (n) {
        size_t k = n > (64u << 20) ? (64u << 20) : n;
        ssize_t r = read(fd, p, k);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) { errno = EIO; return -1; }  /* shorter than its header says */
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_full(ds4kv_store *st, int fd, const void *buf, size_t n) {
    const uint8_t *p = buf;
    while (n) {
        size_t k = n > (64u << 20) ? (64u << 20) : n;
        ssize_t r = st->wfn ? st->wfn(fd, p, k) : write(fd, p, k);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) { errno = EIO; return -1; }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* ---- index ---- */

static void ent_free(ent *x) {
    free(x->tokens);
    free(x->text);
    free(x->ids);
    memset(x, 0, sizeof *x);
}

static ent *find(ds4kv_store *st, const char *name) {
    for (size_t i = 0; i < st->n; i++)
        if (!strcmp(st->v[i].e.name, name)) return &st->v[i];
    return NULL;
}

static void drop(ds4kv_store *st, ent *x) {
    st->used -= x->e.file_bytes;
    ent_free(x);
    size_t i = (size_t)(x - st->v);
    st->v[i] = st->v[--st->n];
    gauges(st);
}

/* Unlinks a file; 0 if it is gone afterwards. */
static int unlink_name(ds4kv_store *st, const char *name) {
    if (unlinkat(st->dfd, name, 0) == 0 || errno == ENOENT) return 0;
    return -1;
}

/* Removes a file that failed validation: one log line, never loaded. */
static void reject(ds4kv_store *st, const char *name, const char *why) {
    ADD(bad_files, 1);
    if (unlink_name(st, name) == 0) {
        logf_(st, "skipping %s: %s; removed", name, why);
    } else {
        int e = errno;
        ADD(errors, 1);
        logf_(st, "skipping %s: %s; could not remove it: %s", name, why, strerror(e));
    }
}

static double value_of(const ent *x, uint64_t now) {
    double age = now > x->e.last_used_ns ? (double)(now - x->e.last_used_ns) : 0.0;
    return (double)x->e.n_tokens * ((double)x->e.hits + 1.0) * exp2(-age / HALF_LIFE_NS);
}

/* Evicts until used + need <= budget. -1 if that is impossible (an unlink
 * failed, or nothing is left to evict). */
static int make_room(ds4kv_store *st, uint64_t need) {
    uint64_t now = now_ns();
    while (st->used + need > st->budget) {
        if (!st->n) return -1;
        ent *victim = NULL;
        double best = 0;
        for (size_t i = 0; i < st->n; i++) {
            ent *x = &st->v[i];
            double val = value_of(x, now);
            if (!victim || val < best ||
                (val == best && (x->e.last_used_ns < victim->e.last_used_ns ||
                                 (x->e.last_used_ns == victim->e.last_used_ns && x->seq < victim->seq)))) {
                victim = x;
                best = val;
            }
        }
        if (unlink_name(st, victim->e.name) != 0) {
            int e = errno;
            ADD(errors, 1);
            logf_(st, "evicting %s failed: %s; eviction stopped", victim->e.name, strerror(e));
            return -1;
        }
        ADD(files_evicted, 1);
        ADD(bytes_evicted, victim->e.file_bytes);
        drop(st, victim);
    }
    return 0;
}

static int push(ds4kv_store *st, ent *x) {
    if (st->n == st->cap) {
        size_t nc = st->cap ? 2 * st->cap : 16;
        ent *nv = realloc(st->v, nc * sizeof *nv);
        if (!nv) return -1;
        st->v = nv;
        st->cap = nc;
    }
    st->v[st->n++] = *x;
    st->used += x->e.file_bytes;
    gauges(st);
    return 0;
}

static void entry_from_hdr(ds4kv_entry *e, const char *name, const ds4kv_hdr *h) {
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->n_tokens = h->n_tokens;
    e->text_len = h->text_len;
    e->ctx = h->ctx;
    e->flags = h->flags;
    e->hits = h->hits;
    e->reason = h->reason;
    e->quant_bits = h->quant_bits;
    e->file_bytes = ds4kv_file_size(h);
    e->payload_bytes = h->payload_len;
    e->created_ns = h->created_ns;
    e->last_used_ns = h->last_used_ns > h->created_ns ? h->last_used_ns : h->created_ns;
}

typedef struct idcollect {
    char *buf;
    size_t len, cap;
    int oom;
} idcollect;

static int collect_id(void *ud, const char *id, size_t il, const char *dsml, size_t dl) {
    (void)dsml;
    (void)dl;
    idcollect *c = ud;
    if (c->len + il + 1 > c->cap) {
        size_t nc = (c->cap ? 2 * c->cap : 256) + il + 1;
        char *nb = realloc(c->buf, nc);
        if (!nb) { c->oom = 1; return 1; }
        c->buf = nb;
        c->cap = nc;
    }
    memcpy(c->buf + c->len, id, il);
    c->buf[c->len + il] = 0;
    c->len += il + 1;
    return 0;
}

/* Validates one file and returns its index entry, or rejects it. */
static void scan_one(ds4kv_store *st, const char *name) {
    char why[256];
    int fd = openat(st->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        ADD(errors, 1);
        logf_(st, "skipping %s: cannot open: %s", name, strerror(errno));
        return;
    }
    struct stat sb;
    uint8_t hb[DS4KV_HDR_SIZE];
    ds4kv_hdr h;
    ent x;
    memset(&x, 0, sizeof x);
    uint8_t *tl = NULL, *tm = NULL;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return;  /* not a regular file: not ours */
    }
    if ((uint64_t)sb.st_size < DS4KV_HDR_SIZE) {
        snprintf(why, sizeof why, "%lld bytes, shorter than the %u-byte header (truncated)", (long long)sb.st_size,
                 DS4KV_HDR_SIZE);
        goto bad;
    }
    if (read_full(fd, hb, sizeof hb) != 0) {
        snprintf(why, sizeof why, "reading the header: %s", strerror(errno));
        goto bad;
    }
    if (ds4kv_hdr_decode(hb, &h, why, sizeof why) != 0) goto bad;
    if (memcmp(h.model, st->model, 16) != 0) {
        snprintf(why, sizeof why, "written by another model (identity differs from this model's)");
        goto bad;
    }
    if ((uint64_t)sb.st_size != ds4kv_file_size(&h)) {
        snprintf(why, sizeof why, "%lld bytes, expected %llu from its header (%s)", (long long)sb.st_size,
                 (unsigned long long)ds4kv_file_size(&h),
                 (uint64_t)sb.st_size < ds4kv_file_size(&h) ? "truncated" : "trailing bytes");
        goto bad;
    }
    tl = malloc(4ull * h.n_tokens);
    x.tokens = malloc(4ull * h.n_tokens);
    x.text = malloc((size_t)h.text_len + 1);
    tm = h.toolmap_len ? malloc(h.toolmap_len) : NULL;
    if (!tl || !x.tokens || !x.text || (h.toolmap_len && !tm)) {
        ADD(errors, 1);
        logf_(st, "skipping %s: out of memory reading its index data", name);
        goto out;
    }
    if (read_full(fd, tl, 4ull * h.n_tokens) != 0 || read_full(fd, x.text, h.text_len) != 0 ||
        (tm && read_full(fd, tm, h.toolmap_len) != 0)) {
        snprintf(why, sizeof why, "reading tokens/text: %s", strerror(errno));
        goto bad;
    }
    x.text[h.text_len] = 0;
    uint8_t sum[16];
    ds4kv_meta_sum(hb, tl, h.n_tokens, x.text, h.text_len, sum);
    if (memcmp(sum, h.meta_sum, 16) != 0) {
        snprintf(why, sizeof why, "metadata checksum mismatch (header, tokens or text damaged)");
        goto bad;
    }
    char want[40];
    ds4kv_name(h.model, tl, h.n_tokens, x.text, h.text_len, want);
    if (strcmp(want, name) != 0) {
        snprintf(why, sizeof why, "name does not match its contents (expected %s)", want);
        goto bad;
    }
    if (tm) {
        ds4kv_sum(tm, h.toolmap_len, sum);
        if (memcmp(sum, h.toolmap_sum, 16) != 0) {
            snprintf(why, sizeof why, "tool-map checksum mismatch");
            goto bad;
        }
        idcollect c = {0};
        ds4kv_toolmap_decode(tm, h.toolmap_len, 0, collect_id, &c);
        if (c.oom) {
            free(c.buf);
            ADD(errors, 1);
            logf_(st, "skipping %s: out of memory reading its tool map", name);
            goto out;
        }
        x.ids = c.buf;
        x.ids_len = c.len;
    }
    memcpy(x.toolmap_sum, h.toolmap_sum, 16);
    ds4kv_tokens_from_le(tl, h.n_tokens, x.tokens);
    entry_from_hdr(&x.e, name, &h);
    x.seq = 0;
    if (push(st, &x) != 0) {
        ADD(errors, 1);
        logf_(st, "skipping %s: out of memory for the index", name);
        goto out;
    }
    memset(&x, 0, sizeof x);
    goto out;
bad:
    reject(st, name, why);
out:
    close(fd);
    free(tl);
    free(tm);
    ent_free(&x);
}

static void scan(ds4kv_store *st) {
    int fd = dup(st->dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        ADD(errors, 1);
        logf_(st, "cannot list the directory: %s", strerror(errno));
        return;
    }
    rewinddir(d);
    /* Collect names first: scan_one may unlink while readdir is walking. */
    char **names = NULL;
    size_t nn = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        long pid = ds4kv_tmp_pid(nm);
        if (pid > 0) {
            int alive = pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
            if (alive) continue;  /* another live process is writing it */
            if (unlink_name(st, nm) == 0) logf_(st, "removed orphaned temporary file %s", nm);
            else { ADD(errors, 1); logf_(st, "cannot remove orphaned temporary file %s: %s", nm, strerror(errno)); }
            continue;
        }
        if (!ds4kv_is_name(nm)) continue;  /* anything else is not ours */
        if (nn == cap) {
            cap = cap ? 2 * cap : 64;
            char **nv = realloc(names, cap * sizeof *nv);
            if (!nv) break;
            names = nv;
        }
        names[nn] = strdup(nm);
        if (names[nn]) nn++;
    }
    closedir(d);
    for (size_t i = 0; i < nn; i++) {
        scan_one(st, names[i]);
        free(names[i]);
    }
    free(names);
}

/* ---- public ---- */

ds4kv_store *ds4kv_open(const ds4kv_config *cfg, ds4_err *err) {
    if (!cfg || !cfg->dir || !*cfg->dir) {
        ds4_errf(err, "kv disk cache: no directory given");
        return NULL;
    }
    if (mkdir(cfg->dir, 0755) != 0 && errno != EEXIST) {
        ds4_errf(err, "kv disk cache %s: cannot create the directory: %s", cfg->dir, strerror(errno));
        return NULL;
    }
    int dfd = open(cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        ds4_errf(err, "kv disk cache %s: cannot open the directory: %s", cfg->dir, strerror(errno));
        return NULL;
    }
    ds4kv_store *st = calloc(1, sizeof *st);
    if (!st || !(st->dir = strdup(cfg->dir))) {
        free(st);
        close(dfd);
        ds4_errf(err, "kv disk cache %s: out of memory", cfg->dir);
        return NULL;
    }
    pthread_mutex_init(&st->mu, NULL);
    st->dfd = dfd;
    st->budget = cfg->budget_bytes;
    st->ctx = cfg->ctx;
    st->quant = cfg->quant_bits;
    st->log = cfg->log;
    st->log_ud = cfg->log_ud;
    ds4kv_model_bytes(cfg->model_identity, st->model);
    SET(budget_bytes, st->budget);
    scan(st);
    if (st->used > st->budget && make_room(st, 0) != 0)
        logf_(st, "directory holds %llu bytes, over the %llu-byte budget", (unsigned long long)st->used,
              (unsigned long long)st->budget);
    gauges(st);
    return st;
}

void ds4kv_close(ds4kv_store *st) {
    if (!st) return;
    for (size_t i = 0; i < st->n; i++) ent_free(&st->v[i]);
    free(st->v);
    close(st->dfd);
    pthread_mutex_destroy(&st->mu);
    free(st->dir);
    free(st);
}

void ds4kv_set_write_fn(ds4kv_store *st, ds4kv_write_fn fn) {
    pthread_mutex_lock(&st->mu);
    st->wfn = fn;
    pthread_mutex_unlock(&st->mu);
}

static int better(const ent *a, const ent *b) {
    if (!b) return 1;
    if (a->e.n_tokens != b->e.n_tokens) return a->e.n_tokens > b->e.n_tokens;
    if (a->e.text_len != b->e.text_len) return a->e.text_len > b->e.text_len;
    if (a->e.last_used_ns != b->e.last_used_ns) return a->e.last_used_ns > b->e.last_used_ns;
    return a->seq > b->seq;
}

int ds4kv_lookup(ds4kv_store *st, const ds4kv_query *q, ds4kv_entry *out) {
    pthread_mutex_lock(&st->mu);
    const ent *best = NULL;
    for (size_t i = 0; i < st->n; i++) {
        const ent *x = &st->v[i];
        if (x->e.n_tokens < q->min_tokens) continue;
        if (q->max_tokens && x->e.n_tokens > q->max_tokens) continue;
        if (q->ctx && x->e.ctx > q->ctx) continue;
        int ok = 0;
        if (q->tokens && x->e.n_tokens <= q->n_tokens &&
            !memcmp(x->tokens, q->tokens, 4 * (size_t)x->e.n_tokens))
            ok = 1;
        if (!ok && q->text && x->e.text_len <= q->text_len && !memcmp(x->text, q->text, x->e.text_len)) ok = 1;
        if (ok && better(x, best)) best = x;
    }
    if (best && out) *out = best->e;
    pthread_mutex_unlock(&st->mu);
    if (!best && !q->quiet) ADD(misses, 1);
    return best != NULL;
}

int ds4kv_contains(ds4kv_store *st, const int32_t *tokens, size_t n, const char *text, size_t text_len,
                   ds4kv_entry *out) {
    int found = 0;
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < st->n && !found; i++) {
        const ent *x = &st->v[i];
        if (x->e.n_tokens == n && x->e.text_len == text_len && !memcmp(x->tokens, tokens, 4 * n) &&
            (!text_len || !memcmp(x->text, text, text_len))) {
            found = 1;
            if (out) *out = x->e;
        }
    }
    pthread_mutex_unlock(&st->mu);
    return found;
}

void ds4kv_loaded_free(ds4kv_loaded *l) {
    if (!l) return;
    free(l->tokens);
    free(l->text);
    free(l->payload);
    free(l->toolmap);
    memset(l, 0, sizeof *l);
}

/* Best effort: the hit count and last-used time live outside the checksums,
 * so a torn write here cannot invalidate the file. */
static void touch_file(ds4kv_store *st, const ent *x) {
    int fd = openat(st->dfd, x->e.name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return;
    uint8_t b[16] = {0};
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(x->e.hits >> (8 * i));
    for (int i = 0; i < 8; i++) b[8 + i] = (uint8_t)(x->e.last_used_ns >> (8 * i));
    if (pwrite(fd, b, sizeof b, DS4KV_OFF_HITS) != (ssize_t)sizeof b) { /* statistics only */ }
    close(fd);
}

int ds4kv_load(ds4kv_store *st, const char *name, ds4kv_loaded *out, ds4_err *err) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&st->mu);
    ent *x = find(st, name);
    if (!x) {
        pthread_mutex_unlock(&st->mu);
        ADD(misses, 1);
        ds4_errf(err, "kv disk cache %s: %s: no such entry (evicted?)", st->dir, name);
        return DS4KV_ERR_GONE;
    }
    char why[256] = "";
    int rc = DS4KV_OK;
    uint8_t hb[DS4KV_HDR_SIZE], sum[16];
    uint8_t *tl = NULL;
    ds4kv_hdr h;
    struct stat sb;
    int fd = openat(st->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(why, sizeof why, "cannot open: %s", strerror(errno));
        rc = errno == ENOENT ? DS4KV_ERR_GONE : code_of(errno);
        goto fail;
    }
    if (fstat(fd, &sb) != 0 || (uint64_t)sb.st_size != x->e.file_bytes) {
        snprintf(why, sizeof why, "size changed since the scan (%lld bytes, expected %llu): truncated or replaced",
                 (long long)sb.st_size, (unsigned long long)x->e.file_bytes);
        rc = DS4KV_ERR_CORRUPT;
        goto fail;
    }
    if (read_full(fd, hb, sizeof hb) != 0) goto ioerr;
    if (ds4kv_hdr_decode(hb, &h, why, sizeof why) != 0 || memcmp(h.model, st->model, 16) != 0 ||
        h.n_tokens != x->e.n_tokens || h.text_len != x->e.text_len || ds4kv_file_size(&h) != x->e.file_bytes) {
        if (!why[0]) snprintf(why, sizeof why, "header changed since the scan");
        rc = DS4KV_ERR_CORRUPT;
        goto fail;
    }
    tl = malloc(4ull * h.n_tokens);
    out->tokens = malloc(4ull * h.n_tokens);
    out->text = malloc((size_t)h.text_len + 1);
    out->payload = malloc(h.payload_len);
    out->toolmap = h.toolmap_len ? malloc(h.toolmap_len) : NULL;
    if (!tl || !out->tokens || !out->text || !out->payload || (h.toolmap_len && !out->toolmap)) {
        snprintf(why, sizeof why, "out of memory for %llu payload bytes", (unsigned long long)h.payload_len);
        rc = DS4KV_ERR_NOMEM;
        goto fail;
    }
    if (read_full(fd, tl, 4ull * h.n_tokens) != 0 || read_full(fd, out->text, h.text_len) != 0 ||
        (h.toolmap_len && read_full(fd, out->toolmap, h.toolmap_len) != 0) ||
        read_full(fd, out->payload, h.payload_len) != 0)
        goto ioerr;
    out->text[h.text_len] = 0;
    ds4kv_meta_sum(hb, tl, h.n_tokens, out->text, h.text_len, sum);
    ds4kv_tokens_from_le(tl, h.n_tokens, out->tokens);
    if (memcmp(sum, h.meta_sum, 16) != 0 || memcmp(out->tokens, x->tokens, 4ull * h.n_tokens) != 0 ||
        memcmp(out->text, x->text, h.text_len) != 0) {
        snprintf(why, sizeof why, "metadata checksum mismatch");
        rc = DS4KV_ERR_CORRUPT;
        goto fail;
    }
    if (h.toolmap_len) {
        ds4kv_sum(out->toolmap, h.toolmap_len, sum);
        if (memcmp(sum, h.toolmap_sum, 16) != 0) {
            snprintf(why, sizeof why, "tool-map checksum mismatch");
            rc = DS4KV_ERR_CORRUPT;
            goto fail;
        }
    }
    ds4kv_sum(out->payload, h.payload_len, sum);
    if (memcmp(sum, h.payload_sum, 16) != 0) {
        snprintf(why, sizeof why, "payload checksum mismatch");
        rc = DS4KV_ERR_CORRUPT;
        goto fail;
    }
    close(fd);
    free(tl);
    out->payload_len = h.payload_len;
    out->toolmap_len = h.toolmap_len;
    x->e.hits++;
    x->e.last_used_ns = now_ns();
    x->seq = ++st->seq;
    touch_file(st, x);
    out->entry = x->e;
    pthread_mutex_unlock(&st->mu);
    ADD(hits, 1);
    ADD(tokens_restored, h.n_tokens);
    return DS4KV_OK;
ioerr:
    snprintf(why, sizeof why, "read failed: %s", strerror(errno));
    rc = DS4KV_ERR_IO;
fail:
    if (fd >= 0) close(fd);
    free(tl);
    ds4kv_loaded_free(out);
    ADD(misses, 1);
    if (rc == DS4KV_ERR_CORRUPT || rc == DS4KV_ERR_GONE) {
        if (rc == DS4KV_ERR_CORRUPT) reject(st, name, why);
        drop(st, x);
    } else {
        ADD(errors, 1);
        logf_(st, "loading %s failed: %s", name, why);
    }
    pthread_mutex_unlock(&st->mu);
    ds4_errf(err, "kv disk cache %s: %s: %s", st->dir, name, why);
    return rc;
}

int ds4kv_remove(ds4kv_store *st, const char *name, int consumed) {
    pthread_mutex_lock(&st->mu);
    ent *x = find(st, name);
    int rc = DS4KV_OK;
    if (!x) rc = DS4KV_ERR_GONE;
    else if (unlink_name(st, name) != 0) {
        rc = code_of(errno);
        ADD(errors, 1);
        logf_(st, "removing %s failed: %s", name, strerror(errno));
        drop(st, x);  /* forget it anyway: it is not to be used again */
    } else {
        if (consumed) { ADD(files_evicted, 1); ADD(bytes_evicted, x->e.file_bytes); }
        else ADD(bad_files, 1);
        drop(st, x);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int fail_save(ds4kv_store *st, int dfd, const char *tmp, int fd, int e, const char *what, ds4_err *err) {
    if (fd >= 0) close(fd);
    if (tmp) unlinkat(dfd, tmp, 0);
    int rc = code_of(e);
    ADD(errors, 1);
    logf_(st, "not cached: %s %s: %s", what, tmp ? tmp : "", strerror(e));
    ds4_errf(err, "kv disk cache %s: %s %s: %s", st->dir, what, tmp ? tmp : "", strerror(e));
    return rc;
}

int ds4kv_save(ds4kv_store *st, const ds4kv_save_req *r, ds4kv_entry *out, ds4_err *err) {
    if (!r || !r->tokens || !r->n_tokens || !r->payload || !r->payload_len || (r->text_len && !r->text) ||
        r->text_len > UINT32_MAX || (r->toolmap_len && !r->toolmap))
        return ds4_errf(err, "kv disk cache: save needs tokens (> 0) and a payload"), DS4KV_ERR_ARG;
    uint8_t *tl = malloc(4ull * r->n_tokens);
    if (!tl) return ds4_errf(err, "kv disk cache: out of memory"), DS4KV_ERR_NOMEM;
    ds4kv_tokens_to_le(r->tokens, r->n_tokens, tl);

    ds4kv_hdr h;
    memset(&h, 0, sizeof h);
    h.version = DS4KV_VERSION;
    h.hdr_size = DS4KV_HDR_SIZE;
    memcpy(h.model, st->model, 16);
    h.ctx = st->ctx;
    h.n_tokens = r->n_tokens;
    h.text_len = (uint32_t)r->text_len;
    h.flags = (r->flags & ~(uint32_t)DS4KV_FLAG_TOOLMAP) | (r->toolmap_len ? DS4KV_FLAG_TOOLMAP : 0);
    h.reason = r->reason;
    h.quant_bits = st->quant;
    h.payload_len = r->payload_len;
    h.toolmap_len = r->toolmap_len;
    h.created_ns = now_ns();
    h.last_used_ns = h.created_ns;
    if (r->toolmap_len) ds4kv_sum(r->toolmap, r->toolmap_len, h.toolmap_sum);
    ds4kv_sum(r->payload, r->payload_len, h.payload_sum);
    uint8_t hb[DS4KV_HDR_SIZE];
    ds4kv_hdr_encode(&h, hb);
    ds4kv_meta_sum(hb, tl, h.n_tokens, r->text, r->text_len, h.meta_sum);
    ds4kv_hdr_encode(&h, hb);
    char name[40], tmp[64];
    ds4kv_name(h.model, tl, h.n_tokens, r->text, r->text_len, name);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", name, (long)getpid());
    const uint64_t size = ds4kv_file_size(&h);

    pthread_mutex_lock(&st->mu);
    int rc = DS4KV_OK;
    ent *old = find(st, name);
    if (old && old->e.n_tokens == h.n_tokens && old->e.text_len == h.text_len &&
        !memcmp(old->tokens, r->tokens, 4ull * h.n_tokens) && !memcmp(old->text, r->text, h.text_len) &&
        !memcmp(old->toolmap_sum, h.toolmap_sum, 16)) {
        /* Same checkpoint already stored: the payload is a function of the
         * tokens, so rewriting it would only cost I/O. */
        old->e.last_used_ns = now_ns();
        old->seq = ++st->seq;
        if (out) *out = old->e;
        pthread_mutex_unlock(&st->mu);
        free(tl);
        return DS4KV_OK;
    }
    if (size > st->budget) {
        rc = DS4KV_ERR_TOO_BIG;
        ADD(errors, 1);
        logf_(st, "not cached: %u-token checkpoint needs %llu bytes, budget is %llu", h.n_tokens,
              (unsigned long long)size, (unsigned long long)st->budget);
        ds4_errf(err, "kv disk cache %s: checkpoint of %llu bytes exceeds the %llu-byte budget", st->dir,
                 (unsigned long long)size, (unsigned long long)st->budget);
        goto out;
    }
    if (make_room(st, size) != 0) {
        rc = DS4KV_ERR_IO;
        ADD(errors, 1);
        logf_(st, "not cached: could not make room for %llu bytes", (unsigned long long)size);
        ds4_errf(err, "kv disk cache %s: could not make room for %llu bytes", st->dir, (unsigned long long)size);
        goto out;
    }
    old = find(st, name);  /* make_room may have evicted it */
    int fd = openat(st->dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) { rc = fail_save(st, st->dfd, NULL, -1, errno, "creating a temporary file", err); goto out; }
    if (write_full(st, fd, hb, sizeof hb) != 0 || write_full(st, fd, tl, 4ull * h.n_tokens) != 0 ||
        (r->text_len && write_full(st, fd, r->text, r->text_len) != 0) ||
        (r->toolmap_len && write_full(st, fd, r->toolmap, r->toolmap_len) != 0) ||
        write_full(st, fd, r->payload, r->payload_len) != 0) {
        rc = fail_save(st, st->dfd, tmp, fd, errno, "writing", err);
        goto out;
    }
    if (fsync(fd) != 0) { rc = fail_save(st, st->dfd, tmp, fd, errno, "fsync of", err); goto out; }
    if (close(fd) != 0) { rc = fail_save(st, st->dfd, tmp, -1, errno, "closing", err); goto out; }
    if (renameat(st->dfd, tmp, st->dfd, name) != 0) {
        rc = fail_save(st, st->dfd, tmp, -1, errno, "renaming", err);
        goto out;
    }
    /* The file is complete under its final name; a failed directory fsync
     * only means the rename might not survive a power loss. */
    if (fsync(st->dfd) != 0) logf_(st, "fsync of the directory after writing %s: %s", name, strerror(errno));
    if (old) drop(st, old);
    ent x;
    memset(&x, 0, sizeof x);
    x.tokens = malloc(4ull * h.n_tokens);
    x.text = malloc(h.text_len + 1);
    idcollect c = {0};
    if (r->toolmap_len) ds4kv_toolmap_decode(r->toolmap, r->toolmap_len, 0, collect_id, &c);
    if (!x.tokens || !x.text || c.oom) {
        /* Cannot index it: do not leave an unaccounted file behind. */
        ent_free(&x);
        free(c.buf);
        unlink_name(st, name);
        rc = DS4KV_ERR_NOMEM;
        ADD(errors, 1);
        ds4_errf(err, "kv disk cache %s: out of memory indexing %s", st->dir, name);
        goto out;
    }
    memcpy(x.tokens, r->tokens, 4ull * h.n_tokens);
    if (h.text_len) memcpy(x.text, r->text, h.text_len);
    x.text[h.text_len] = 0;
    x.ids = c.buf;
    x.ids_len = c.len;
    memcpy(x.toolmap_sum, h.toolmap_sum, 16);
    entry_from_hdr(&x.e, name, &h);
    x.seq = ++st->seq;
    if (push(st, &x) != 0) {
        ent_free(&x);
        unlink_name(st, name);
        rc = DS4KV_ERR_NOMEM;
        ADD(errors, 1);
        goto out;
    }
    ADD(saves, 1);
    ADD(bytes_written, size);
    if (out) *out = x.e;
out:
    pthread_mutex_unlock(&st->mu);
    free(tl);
    return rc;
}

typedef struct restore_ctx {
    const char *const *ids;
    size_t n_ids;
    ds4kv_tool_fn fn;
    void *ud;
    int calls;
} restore_ctx;

static int restore_one(void *ud, const char *id, size_t il, const char *dsml, size_t dl) {
    restore_ctx *c = ud;
    if (!c->ids) {
        c->calls++;
        return c->fn(c->ud, id, il, dsml, dl);
    }
    for (size_t i = 0; i < c->n_ids; i++) {
        if (strlen(c->ids[i]) == il && !memcmp(c->ids[i], id, il)) {
            c->calls++;
            if (c->fn(c->ud, id, il, dsml, dl)) return 1;
            break;
        }
    }
    return 0;
}

static int holds_any(const ent *x, const char *const *ids, size_t n) {
    if (!ids) return 1;
    for (size_t off = 0; off < x->ids_len; off += strlen(x->ids + off) + 1)
        for (size_t i = 0; i < n; i++)
            if (!strcmp(x->ids + off, ids[i])) return 1;
    return 0;
}

int ds4kv_tools_restore(ds4kv_store *st, const char *const *ids, size_t n_ids, ds4kv_tool_fn fn, void *ud) {
    restore_ctx c = {ids, n_ids, fn, ud, 0};
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < st->n; i++) {
        ent *x = &st->v[i];
        if (!x->ids_len || !holds_any(x, ids, n_ids)) continue;
        /* Read just the map: it sits after the header, tokens and text. */
        uint64_t off = DS4KV_HDR_SIZE + 4ull * x->e.n_tokens + x->e.text_len;
        uint64_t len = x->e.file_bytes - off - x->e.payload_bytes;
        uint8_t *b = malloc(len), sum[16];
        int fd = openat(st->dfd, x->e.name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        int ok = b && fd >= 0 && pread(fd, b, len, (off_t)off) == (ssize_t)len;
        if (fd >= 0) close(fd);
        if (ok) {
            ds4kv_sum(b, len, sum);
            ok = !memcmp(sum, x->toolmap_sum, 16);
        }
        if (ok) ds4kv_toolmap_decode(b, len, 0, restore_one, &c);
        else { ADD(errors, 1); logf_(st, "reading the tool map of %s failed; skipped", x->e.name); }
        free(b);
    }
    pthread_mutex_unlock(&st->mu);
    return c.calls;
}

void ds4kv_get_stats(ds4kv_store *st, ds4kv_stats *o) {
    const uint64_t *src = (const uint64_t *)&st->c;
    uint64_t *dst = (uint64_t *)o;
    for (size_t i = 0; i < sizeof *o / sizeof(uint64_t); i++) dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

ds4kv_entry *ds4kv_list(ds4kv_store *st, size_t *n) {
    pthread_mutex_lock(&st->mu);
    ds4kv_entry *a = malloc((st->n ? st->n : 1) * sizeof *a);
    *n = 0;
    if (a) {
        for (size_t i = 0; i < st->n; i++) a[i] = st->v[i].e;
        *n = st->n;
    }
    pthread_mutex_unlock(&st->mu);
    return a;
}
