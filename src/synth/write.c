/* write.c - writing a synthetic model: header, an engine check, then the
 * tensor data from several threads, with a progress line.
 *
 * The file is built as PATH.part-PID and renamed at the end, so a reader (or the
 * demo cache) never sees a half-written model under the final name, and two
 * processes creating the same demo file do not write into each other's. The
 * header is written first and the file sized to its final length (all data a
 * hole); the engine's own loader (gguf_open, ds4_config_from_gguf,
 * ds4_weights_bind) then checks that sparse file before a single data byte is
 * generated, so a bad shape fails in a second with the engine's message, not
 * after minutes of writing. --sparse stops there.
 *
 * The data is cut into work items of whole rows (about 8 MiB each), in file
 * order; threads take the next item from a shared counter, generate it into
 * their own buffer and pwrite it at its offset. Values depend only on (seed,
 * tensor, index) (synth_internal.h), so the bytes do not depend on the number
 * of threads or on who wrote what. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "model/weights.h"
#include "quant/quant.h"
#include "synth/synth_internal.h"

#define CHUNK_BYTES (8u << 20)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct tlist {
    const ds4_synth_opts *o;
    synth_tensor *t;
    size_t n, cap;
} tlist;

static int collect(void *ud, const ds4_tensor_spec *s) {
    tlist *l = ud;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        synth_tensor *p = realloc(l->t, cap * sizeof *p);
        if (!p) return -1;
        l->t = p;
        l->cap = cap;
    }
    ds4_synth_tensor_init(&l->t[l->n++], s, l->o);
    return 0;
}

static int tensor_list(const ds4_synth_opts *o, tlist *l, ds4_err *err) {
    memset(l, 0, sizeof *l);
    l->o = o;
    if (o->shape.n_layer == 0 || o->shape.n_layer > DS4_MAX_LAYERS)
        return ds4_errf(err, "shape: %u layers; expected 1..%d", o->shape.n_layer, DS4_MAX_LAYERS);
    if (ds4_layout_walk(&o->shape, collect, l)) {
        free(l->t);
        return ds4_errf(err, "out of memory listing tensors");
    }
    return 0;
}

uint64_t ds4_synth_tensor_bytes(const ds4_synth_opts *o) {
    tlist l;
    if (tensor_list(o, &l, NULL)) return 0;
    uint64_t sum = 0;
    for (size_t i = 0; i < l.n; i++) sum += l.t[i].rows * l.t[i].row_bytes;
    free(l.t);
    return sum;
}

typedef struct item { uint32_t tensor; uint64_t row0, nrows; } item;

typedef struct job {
    const synth_tensor *t;
    const gguf_writer *w;
    int fd;
    const char *path;
    item *items;
    size_t n_items;
    size_t buf_bytes;
    uint64_t max_ne0;
    atomic_size_t next;
    atomic_uint_fast64_t done;
    atomic_int failed;
    pthread_mutex_t mu;
    ds4_err err;
} job;

static void *worker(void *arg) {
    job *j = arg;
    uint8_t *buf = malloc(j->buf_bytes);
    float *scratch = malloc(j->max_ne0 * sizeof(float));
    if (!buf || !scratch) {
        pthread_mutex_lock(&j->mu);
        if (!atomic_exchange(&j->failed, 1)) ds4_errf(&j->err, "%s: out of memory for a %zu-byte buffer", j->path, j->buf_bytes);
        pthread_mutex_unlock(&j->mu);
    }
    for (;;) {
        if (atomic_load(&j->failed)) break;
        size_t k = atomic_fetch_add(&j->next, 1);
        if (k >= j->n_items) break;
        const item *it = &j->items[k];
        const synth_tensor *t = &j->t[it->tensor];
        const size_t len = (size_t)(it->nrows * t->row_bytes);
        ds4_synth_gen_rows(t, it->row0, it->nrows, buf, scratch);
        off_t off = (off_t)(gguf_writer_tensor_file_offset(j->w, (int)it->tensor) + it->row0 * t->row_bytes);
        size_t put = 0;
        while (put < len) {
            ssize_t r = pwrite(j->fd, buf + put, len - put, off + (off_t)put);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                int e = r < 0 ? errno : EIO;
                pthread_mutex_lock(&j->mu);
                if (!atomic_exchange(&j->failed, 1))
                    ds4_errf(&j->err, "%s: writing %s at byte %lld: %s", j->path, t->spec.name, (long long)(off + (off_t)put),
                             strerror(e));
                pthread_mutex_unlock(&j->mu);
                break;
            }
            put += (size_t)r;
            atomic_fetch_add(&j->done, (uint64_t)r);
        }
    }
    free(buf);
    free(scratch);
    return NULL;
}

static void progress_line(uint64_t done, uint64_t total, double t0) {
    const double el = now_s() - t0, rate = el > 0 ? (double)done / el : 0;
    const double eta = rate > 0 ? (double)(total - done) / rate : 0;
    fprintf(stderr, "\rds4-synth: %6.2f / %.2f GB  %3d%%  %6.2f GB/s  ETA %3dm%02ds ", (double)done / 1e9,
            (double)total / 1e9, total ? (int)(100.0 * (double)done / (double)total) : 100, rate / 1e9, (int)eta / 60,
            (int)eta % 60);
}

static int fill_data(const ds4_synth_opts *o, const gguf_writer *w, tlist *l, int fd, const char *path,
                     uint64_t tensor_bytes, ds4_err *err) {
    job j;
    memset(&j, 0, sizeof j);
    j.t = l->t;
    j.w = w;
    j.fd = fd;
    j.path = path;
    j.buf_bytes = CHUNK_BYTES;
    size_t cap = 1024;
    j.items = malloc(cap * sizeof *j.items);
    if (!j.items) return ds4_errf(err, "out of memory");
    for (size_t i = 0; i < l->n; i++) {
        const synth_tensor *t = &l->t[i];
        if (t->spec.ne[0] > j.max_ne0) j.max_ne0 = t->spec.ne[0];
        uint64_t per = t->row_bytes ? CHUNK_BYTES / t->row_bytes : 1;
        if (per == 0) per = 1;
        if (per * t->row_bytes > j.buf_bytes) j.buf_bytes = (size_t)(per * t->row_bytes);
        for (uint64_t r = 0; r < t->rows; r += per) {
            if (j.n_items == cap) {
                item *p = realloc(j.items, 2 * cap * sizeof *p);
                if (!p) { free(j.items); return ds4_errf(err, "out of memory"); }
                j.items = p;
                cap *= 2;
            }
            j.items[j.n_items++] = (item){(uint32_t)i, r, t->rows - r < per ? t->rows - r : per};
        }
    }
    int nt = o->n_threads > 0 ? o->n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nt < 1) nt = 1;
    if (nt > 256) nt = 256;
    pthread_mutex_init(&j.mu, NULL);
    pthread_t th[256];
    int started = 0;
    for (int i = 0; i < nt; i++) {
        if (pthread_create(&th[i], NULL, worker, &j)) break;
        started++;
    }
    if (!started) worker(&j);
    const int show = o->progress && isatty(2);
    const double t0 = now_s();
    if (show) {
        while (atomic_load(&j.next) < j.n_items && !atomic_load(&j.failed)) {
            progress_line(atomic_load(&j.done), tensor_bytes, t0);
            struct timespec ts = {0, 250 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    if (show) {
        progress_line(atomic_load(&j.done), tensor_bytes, t0);
        fprintf(stderr, "\n");
    }
    pthread_mutex_destroy(&j.mu);
    free(j.items);
    if (atomic_load(&j.failed)) {
        *err = j.err;
        return -1;
    }
    return 0;
}

/* The engine's own checks on the header-only (sparse) file. */
static int engine_check(const char *path, const ds4_config *want, ds4_err *err) {
    gguf_file *f = gguf_open(path, err);
    if (!f) return -1;
    ds4_config c;
    static ds4_weights wb;  /* large; one check at a time per process */
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    int rc = ds4_config_from_gguf(f, &c, err);
    if (!rc && (c.n_layer != want->n_layer || c.n_embd != want->n_embd || c.n_vocab != want->n_vocab))
        rc = ds4_errf(err, "%s: read back %u layers, width %u, vocabulary %u; wrote %u, %u, %u", path, c.n_layer,
                      c.n_embd, c.n_vocab, want->n_layer, want->n_embd, want->n_vocab);
    if (!rc) {
        pthread_mutex_lock(&mu);
        rc = ds4_weights_bind(f, &c, &wb, err);
        pthread_mutex_unlock(&mu);
    }
    gguf_close(f);
    return rc;
}

int ds4_synth_write(const ds4_synth_opts *o, const char *path, ds4_synth_stats *st, ds4_err *err) {
    memset(st, 0, sizeof *st);
    const double t0 = now_s();
    ds4_token_table tt;
    if (ds4_synth_vocab_table(o, &tt, err)) return -1;
    if (tt.n_tokens != o->shape.n_vocab) {
        ds4_token_table_free(&tt);
        return ds4_errf(err, "token table has %zu tokens; the shape says %u", tt.n_tokens, o->shape.n_vocab);
    }
    tlist l;
    if (tensor_list(o, &l, err)) { ds4_token_table_free(&tt); return -1; }
    gguf_writer *w = gguf_writer_new(GGUF_DEFAULT_ALIGNMENT);
    int rc = w ? ds4_synth_meta(w, o, &tt, err) : ds4_errf(err, "out of memory");
    ds4_token_table_free(&tt);
    for (size_t i = 0; !rc && i < l.n; i++) {
        const synth_tensor *t = &l.t[i];
        if (t->row_bytes == 0)
            rc = ds4_errf(err, "tensor %s: row of %llu elements is not a whole number of %s blocks", t->spec.name,
                          (unsigned long long)t->spec.ne[0], ds4_type_name(t->type));
        else if (gguf_writer_tensor(w, t->spec.name, t->type, t->spec.n_dims, t->spec.ne) != (int)i)
            rc = ds4_errf(err, "tensor %s: %s", t->spec.name, gguf_writer_error(w) ? gguf_writer_error(w) : "refused");
        else
            st->tensor_bytes += gguf_writer_tensor_nbytes(w, (int)i);
    }
    char part[4096];
    int fd = -1;
    if (!rc && snprintf(part, sizeof part, "%s.part-%d", path, (int)getpid()) >= (int)sizeof part) rc = ds4_errf(err, "%s: path too long", path);
    if (!rc) {
        fd = open(part, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) rc = ds4_errf(err, "%s: cannot create: %s", part, strerror(errno));
    }
    if (!rc) rc = gguf_writer_write_header(w, fd, err);
    if (!rc) {
        st->file_bytes = gguf_writer_total_size(w);
        st->n_tensors = l.n;
        st->seconds_header = now_s() - t0;
        rc = engine_check(part, &o->shape, err);
        if (rc) ds4_err_prefix(err, "the generated header fails the engine's checks");
    }
    if (!rc && !o->sparse) {
        struct statvfs sv;
        if (fstatvfs(fd, &sv) == 0) {
            const unsigned long long avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
            if (avail < st->tensor_bytes)
                rc = ds4_errf(err, "%s: needs %.2f GB of tensor data, the file system has %.2f GB free "
                                   "(use --sparse for a layout-only file, or --layers N for a smaller model)",
                              part, (double)st->tensor_bytes / 1e9, (double)avail / 1e9);
        }
        double t1 = now_s();
        if (!rc) rc = fill_data(o, w, &l, fd, part, st->tensor_bytes, err);
        st->seconds_data = now_s() - t1;
        t1 = now_s();
        if (!rc && fsync(fd)) rc = ds4_errf(err, "%s: fsync: %s", part, strerror(errno));
        st->seconds_sync = now_s() - t1;
    }
    if (fd >= 0 && close(fd) && !rc) rc = ds4_errf(err, "%s: close: %s", part, strerror(errno));
    if (!rc && rename(part, path)) rc = ds4_errf(err, "%s: cannot rename to %s: %s", part, path, strerror(errno));
    if (rc && fd >= 0) unlink(part);
    gguf_writer_free(w);
    free(l.t);
    return rc;
}
