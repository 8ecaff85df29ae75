/* test_kvdisk.c - the disk KV checkpoint store (src/kvdisk): round trip,
 * longest-prefix choice, index rebuilt at restart, every kind of bad file
 * refused and removed (never loaded), orphaned temporary files, a process
 * killed mid-write, the byte budget checked from inside the write itself,
 * the eviction order, ENOSPC/EIO through a failing write hook and on a real
 * tiny tmpfs, and a read-only directory. Payloads are opaque bytes here; the
 * engine snapshot round trip through the store is tested at server level
 * (tests/kvdisk/). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "kvdisk/kvdisk.h"
#include "kvdisk/kvdisk_internal.h"

static const char *MODEL_A = "0123456789abcdef0123456789abcdef";
static const char *MODEL_B = "fedcba9876543210fedcba9876543210";

static int n_logs;
static char last_log[1024];
static void on_log(void *ud, const char *line) {
    (void)ud;
    n_logs++;
    snprintf(last_log, sizeof last_log, "%s", line);
}

static char *mkdir_tmp(void) {
    char *d = strdup("/tmp/ds4-kvdisk-test.XXXXXX");
    CHECK(mkdtemp(d) != NULL);
    return d;
}

static void rm_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char p[4096];
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static ds4kv_store *open_store(const char *dir, uint64_t budget, const char *model) {
    ds4kv_config c = {.dir = dir, .budget_bytes = budget, .model_identity = model, .ctx = 4096,
                      .quant_bits = 2, .log = on_log};
    ds4_err e = {{0}};
    ds4kv_store *st = ds4kv_open(&c, &e);
    CHECKF(st != NULL, "open %s: %s", dir, e.msg);
    return st;
}

/* Deterministic payload for a token sequence: equal tokens, equal bytes. */
static uint8_t *payload_for(const int32_t *t, uint32_t n, size_t len) {
    uint8_t *p = malloc(len);
    uint32_t x = 2166136261u;
    for (uint32_t i = 0; i < n; i++) x = (x ^ (uint32_t)t[i]) * 16777619u;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        p[i] = (uint8_t)x;
    }
    return p;
}

static int save_n(ds4kv_store *st, const int32_t *t, uint32_t n, const char *text, size_t plen, ds4kv_entry *out) {
    uint8_t *p = payload_for(t, n, plen);
    ds4kv_save_req r = {.tokens = t, .n_tokens = n, .text = text, .text_len = text ? strlen(text) : 0,
                        .payload = p, .payload_len = plen, .reason = DS4KV_REASON_COLD};
    ds4_err e = {{0}};
    int rc = ds4kv_save(st, &r, out, &e);
    free(p);
    return rc;
}

static int count_files(const char *dir, const char *suffix, uint64_t *bytes) {
    DIR *d = opendir(dir);
    int n = 0;
    if (bytes) *bytes = 0;
    if (!d) return -1;
    struct dirent *de;
    char p[4096];
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        if (suffix && !strstr(de->d_name, suffix)) continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
            n++;
            if (bytes) *bytes += (uint64_t)sb.st_size;
        }
    }
    closedir(d);
    return n;
}

static int32_t seq_tok[4096];
static void fill_seq(void) {
    for (int i = 0; i < 4096; i++) seq_tok[i] = (int32_t)((i * 7919 + 13) % 129280);
}

static void file_path(char *out, size_t cap, const char *dir, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

TEST(round_trip) {
    fill_seq();
    char *dir = mkdir_tmp();
    ds4kv_store *st = open_store(dir, 1 << 20, MODEL_A);
    const char *ids[] = {"call_1", "call_2"};
    const char *ds[] = {"\n\n<dsml block>", "\n\n<dsml block>"};
    size_t dl[] = {14, 14};
    uint8_t *tm;
    size_t tml;
    CHECK_EQ_INT(ds4kv_toolmap_encode(ids, ds, dl, 2, &tm, &tml), DS4KV_OK);
    uint8_t *p = payload_for(seq_tok, 100, 5000);
    ds4kv_save_req r = {.tokens = seq_tok, .n_tokens = 100, .text = "hello world", .text_len = 11, .payload = p,
                        .payload_len = 5000, .toolmap = tm, .toolmap_len = tml,
                        .flags = DS4KV_FLAG_THINKING_VISIBLE, .reason = DS4KV_REASON_EVICT};
    ds4kv_entry e;
    ds4_err err = {{0}};
    CHECK_EQ_INT(ds4kv_save(st, &r, &e, &err), DS4KV_OK);
    CHECK(ds4kv_is_name(e.name));
    CHECK_EQ_INT(e.n_tokens, 100);
    CHECK_EQ_INT(e.flags, DS4KV_FLAG_THINKING_VISIBLE | DS4KV_FLAG_TOOLMAP);
    CHECK_EQ_INT(count_files(dir, ".kv", NULL), 1);
    CHECK_EQ_INT(count_files(dir, ".tmp.", NULL), 0);

    ds4kv_query q = {.tokens = seq_tok, .n_tokens = 150};
    ds4kv_entry hit;
    CHECK_EQ_INT(ds4kv_lookup(st, &q, &hit), 1);
    CHECK_EQ_STR(hit.name, e.name);
    ds4kv_loaded l;
    CHECK_EQ_INT(ds4kv_load(st, hit.name, &l, &err), DS4KV_OK);
    CHECK_EQ_INT(l.payload_len, 5000);
    CHECK(!memcmp(l.payload, p, 5000));
    CHECK(!memcmp(l.tokens, seq_tok, 400));
    CHECK_EQ_STR(l.text, "hello world");
    CHECK_EQ_INT(l.toolmap_len, tml);
    CHECK(!memcmp(l.toolmap, tm, tml));
    CHECK_EQ_INT(l.entry.hits, 1);
    ds4kv_loaded_free(&l);

    ds4kv_stats s;
    ds4kv_get_stats(st, &s);
    CHECK_EQ_INT(s.hits, 1);
    CHECK_EQ_INT(s.misses, 0);
    CHECK_EQ_INT(s.tokens_restored, 100);
    CHECK_EQ_INT(s.saves, 1);
    CHECK_EQ_INT(s.bytes_written, e.file_bytes);
    CHECK_EQ_INT(s.files, 1);
    CHECK_EQ_INT(s.bytes_used, e.file_bytes);
    CHECK_EQ_INT(e.file_bytes, DS4KV_HDR_SIZE + 400 + 11 + tml + 5000);
    CHECK_EQ_INT(s.errors, 0);

    /* The same checkpoint again: touched, not rewritten. */
    CHECK_EQ_INT(ds4kv_save(st, &r, NULL, &err), DS4KV_OK);
    ds4kv_get_stats(st, &s);
    CHECK_EQ_INT(s.saves, 1);
    CHECK(ds4kv_contains(st, seq_tok, 100, "hello world", 11, NULL));
    CHECK(!ds4kv_contains(st, seq_tok, 99, "hello world", 11, NULL));

    /* A request that shares nothing: a miss. */
    int32_t other[3] = {5, 6, 7};
    ds4kv_query q2 = {.tokens = other, .n_tokens = 3, .text = "bye", .text_len = 3};
    CHECK_EQ_INT(ds4kv_lookup(st, &q2, NULL), 0);
    ds4kv_get_stats(st, &s);
    CHECK_EQ_INT(s.misses, 1);
    q2.quiet = 1;
    CHECK_EQ_INT(ds4kv_lookup(st, &q2, NULL), 0);
    ds4kv_get_stats(st, &s);
    CHECK_EQ_INT(s.misses, 1);
    free(p);
    free(tm);
    ds4kv_close(st);
    rm_dir(dir);
    free(dir);
}

TEST(longest_prefix_wins) {
    fill_seq();
    char *dir = mkdir_tmp();
    ds4kv_store *st = open_store(dir, 1 << 20, MODEL_A);
    ds4kv_entry e3, e6, e9, ex;
    CHECK_EQ_INT(save_n(st, seq_tok, 30, "", 100, &e3), DS4KV_OK);
    CHECK_EQ_INT(save_n(st, seq_tok, 60, "", 100, &e6), DS4KV_OK);
    CHECK_EQ_INT(save_n(st, seq_tok, 90, "", 100, &e9), DS4KV_OK);
    int32_t div[200];
    memcpy(div, seq_tok, sizeof div);
    div[45] = 1;  /* diverges inside the 60-token entry */
    CHECK_EQ_INT(save_n(st, div, 120, "", 100, &ex), DS4KV_OK);

    ds4kv_entry h;
    ds4kv_query q = {.tokens = seq_tok, .n_tokens = 80};
    CHECK_EQ_INT(ds4kv_lookup(st, &q, &h), 1);
    CHECK_EQ_STR(h.name, e6.name);
    q.n_tokens = 500;
    CHECK_EQ_INT(ds4kv_lookup(st, &q, &h), 1);
    CHECK_EQ_STR(h.name, e9.name);
    q.n_tokens = 90;  /* a stored entry equal to the whole request */
    CHECK_EQ_INT(ds4kv_lookup(st, &q, &h), 1);
    CHECK_EQ_STR(h.name, e9.name);
    q.n_tokens = 29;
    CHECK_EQ_INT(ds4kv_lookup(st, &q, &h), 0);
    /* The diverging request finds the longest shared entry, 30 tokens. */
    ds4kv_query qd = {.tokens = div, .n_tokens = 100};
    CHECK_EQ_INT(ds4kv_lookup(st, &qd, &h), 1);
    CHECK_EQ_STR(h.name, e3.name);
    qd.n_tokens = 200;
    CHECK_EQ_INT(ds4kv_lookup(st, &qd, &h), 1);
    CHECK_EQ_STR(h.name, ex.name);
    /* Limits: min_tokens / max_tokens / context. */
    q.n_tokens = 500;
    q.max_tokens = 70;
    CHECK_EQ_INT(ds4kv_lookup(st, &q, &h), 1);
    CHECK_EQ_STR(h.name, e6.name);
    q.max_tokens = 0;
    q.min_tokens = 100;
    CHECK_EQ_INT(ds4kv_lookup(st, &q, &h), 0);
    q.min_tokens = 0;
    q.ctx = 2048;  /* entries were written for 4096 */
    CHECK_EQ_INT(ds4kv_lookup(st, &q, &h), 0);
    ds4kv_close(st);
    rm_dir(dir);
    free(dir);
}

TEST(text_prefix_lookup) {
    fill_seq();
    char *dir = mkdir_tmp();
    ds4kv_store *st = open_store(dir, 1 << 20, MODEL_A);
    ds4kv_entry a, b;
    CHECK_EQ_INT(save_n(st, seq_tok, 10, "<sys>tools", 64, &a), DS4KV_OK);
    CHECK_EQ_INT(save_n(st, seq_tok + 100, 20, "<sys>tools<user>hi", 64, &b), DS4KV_OK);
    const char *req = "<sys>tools<user>hi there";
    ds4kv_query q = {.text = req, .text_len = strlen(req)};
    ds4kv_entry h;
    CHECK_EQ_INT(ds4kv_lookup(st, &q, &h), 1);
    CHECK_EQ_STR(h.name, b.name);
    const char *req2 = "<sys>tools<user>ho";
    q.text = req2;
    q.text_len = strlen(req2);
    CHECK_EQ_INT(ds4kv_lookup(st, &q, &h), 1);
    CHECK_EQ_STR(h.name, a.name);
    ds4kv_close(st);
    rm_dir(dir);
    free(dir);
}

TEST(restart_rebuilds_index) {
    fill_seq();
    char *dir = mkdir_tmp();
    ds4kv_store *st = open_store(dir, 1 << 20, MODEL_A);
    ds4kv_entry e[5];
    for (int i = 0; i < 5; i++) CHECK_EQ_INT(save_n(st, seq_tok, (uint32_t)(10 + 10 * i), "t", 300, &e[i]), DS4KV_OK);
    ds4kv_loaded l;
    ds4_err err;
    CHECK_EQ_INT(ds4kv_load(st, e[2].name, &l, &err), DS4KV_OK);
    ds4kv_loaded_free(&l);
    ds4kv_close(st);

    n_logs = 0;
    st = open_store(dir, 1 << 20, MODEL_A);
    CHECK_EQ_INT(n_logs, 0);
    size_t n;
    ds4kv_entry *all = ds4kv_list(st, &n);
    CHECK_EQ_INT(n, 5);
    free(all);
    ds4kv_query q = {.tokens = seq_tok, .n_tokens = 35};
    ds4kv_entry h;
    CHECK_EQ_INT(ds4kv_lookup(st, &q, &h), 1);
    CHECK_EQ_STR(h.name, e[2].name);
    CHECK_EQ_INT(h.hits, 1);  /* the hit count was written into the file */
    CHECK_EQ_INT(ds4kv_load(st, h.name, &l, &err), DS4KV_OK);
    uint8_t *p = payload_for(seq_tok, 30, 300);
    CHECK(!memcmp(l.payload, p, 300));
    free(p);
    ds4kv_loaded_free(&l);
    ds4kv_stats s;
    ds4kv_get_stats(st, &s);
    CHECK_EQ_INT(s.files, 5);
    CHECK_EQ_INT(s.bad_files, 0);
    ds4kv_close(st);
    rm_dir(dir);
    free(dir);
}

/* Writes one valid file through a store of model m, returns its path. */
static void make_one(const char *dir, const char *m, uint32_t n, char *path, size_t cap, ds4kv_entry *e) {
    ds4kv_store *st = open_store(dir, 1 << 20, m);
    CHECK_EQ_INT(save_n(st, seq_tok, n, "some text", 2000, e), DS4KV_OK);
    ds4kv_close(st);
    file_path(path, cap, dir, e->name);
}

static void flip_byte(const char *path, long off) {
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    uint8_t b;
    CHECK(pread(fd, &b, 1, off) == 1);
    b ^= 0x20;
    CHECK(pwrite(fd, &b, 1, off) == 1);
    close(fd);
}

/* Opens the store over a damaged file: expects exactly one log line that
 * mentions want, no entry, and the file gone. */
static void expect_rejected_at_open(const char *dir, const char *path, const char *model, const char *want) {
    n_logs = 0;
    last_log[0] = 0;
    ds4kv_store *st = open_store(dir, 1 << 20, model);
    CHECKF(n_logs == 1, "expected one log line, got %d (last: %s)", n_logs, last_log);
    CHECKF(strstr(last_log, want) != NULL, "log line lacks '%s': %s", want, last_log);
    size_t n;
    free(ds4kv_list(st, &n));
    CHECK_EQ_INT(n, 0);
    ds4kv_query q = {.tokens = seq_tok, .n_tokens = 4000, .text = "some text and more", .text_len = 18};
    CHECK_EQ_INT(ds4kv_lookup(st, &q, NULL), 0);
    ds4kv_stats s;
    ds4kv_get_stats(st, &s);
    CHECK_EQ_INT(s.bad_files, 1);
    CHECK(access(path, F_OK) != 0);
    ds4kv_close(st);
}

TEST(bad_files_refused_and_removed) {
    fill_seq();
    char *dir = mkdir_tmp();
    char path[4096];
    ds4kv_entry e;

    make_one(dir, MODEL_A, 50, path, sizeof path, &e);
    CHECK(truncate(path, (off_t)e.file_bytes - 1) == 0);
    expect_rejected_at_open(dir, path, MODEL_A, "truncated");

    make_one(dir, MODEL_A, 50, path, sizeof path, &e);
    CHECK(truncate(path, 100) == 0);
    expect_rejected_at_open(dir, path, MODEL_A, "truncated");

    make_one(dir, MODEL_A, 50, path, sizeof path, &e);
    CHECK(truncate(path, 0) == 0);
    expect_rejected_at_open(dir, path, MODEL_A, "truncated");

    make_one(dir, MODEL_A, 50, path, sizeof path, &e);
    CHECK(truncate(path, (off_t)e.file_bytes + 7) == 0);
    expect_rejected_at_open(dir, path, MODEL_A, "trailing");

    make_one(dir, MODEL_B, 50, path, sizeof path, &e);
    expect_rejected_at_open(dir, path, MODEL_A, "another model");

    make_one(dir, MODEL_A, 50, path, sizeof path, &e);
    flip_byte(path, 8);  /* version 1 -> 33 */
    expect_rejected_at_open(dir, path, MODEL_A, "format version 33");

    make_one(dir, MODEL_A, 50, path, sizeof path, &e);
    flip_byte(path, 0);
    expect_rejected_at_open(dir, path, MODEL_A, "magic");

    make_one(dir, MODEL_A, 50, path, sizeof path, &e);
    flip_byte(path, DS4KV_HDR_SIZE + 4 * 50 + 3);  /* inside the text */
    expect_rejected_at_open(dir, path, MODEL_A, "checksum");

    make_one(dir, MODEL_A, 50, path, sizeof path, &e);
    flip_byte(path, DS4KV_HDR_SIZE + 17);  /* inside the tokens */
    expect_rejected_at_open(dir, path, MODEL_A, "checksum");

    make_one(dir, MODEL_A, 50, path, sizeof path, &e);
    flip_byte(path, 33);  /* the context field: covered by the metadata sum */
    expect_rejected_at_open(dir, path, MODEL_A, "checksum");

    /* A valid file under another valid-looking name. */
    make_one(dir, MODEL_A, 50, path, sizeof path, &e);
    char other[4096];
    file_path(other, sizeof other, dir, "00000000000000000000000000000000.kv");
    CHECK(rename(path, other) == 0);
    expect_rejected_at_open(dir, other, MODEL_A, "name does not match");

    /* Garbage under a valid name. */
    FILE *f = fopen(other, "w");
    fputs("not a cache file at all, but long enough to have a header ...........................................................................................", f);
    fclose(f);
    expect_rejected_at_open(dir, other, MODEL_A, "magic");

    /* Files that are not ours are left alone and not logged. */
    char keep[4096];
    file_path(keep, sizeof keep, dir, "README.txt");
    f = fopen(keep, "w");
    fputs("x", f);
    fclose(f);
    n_logs = 0;
    ds4kv_store *st = open_store(dir, 1 << 20, MODEL_A);
    CHECK_EQ_INT(n_logs, 0);
    CHECK(access(keep, F_OK) == 0);
    ds4kv_close(st);
    unlink(keep);
    rm_dir(dir);
    free(dir);
}

TEST(payload_damage_caught_at_load) {
    fill_seq();
    char *dir = mkdir_tmp();
    char path[4096];
    ds4kv_entry e;
    make_one(dir, MODEL_A, 50, path, sizeof path, &e);
    flip_byte(path, (long)e.file_bytes - 100);  /* inside the payload: the scan does not read it */
    ds4kv_store *st = open_store(dir, 1 << 20, MODEL_A);
    ds4kv_query q = {.tokens = seq_tok, .n_tokens = 60};
    ds4kv_entry h;
    CHECK_EQ_INT(ds4kv_lookup(st, &q, &h), 1);
    ds4kv_loaded l;
    ds4_err err = {{0}};
    n_logs = 0;
    CHECK_EQ_INT(ds4kv_load(st, h.name, &l, &err), DS4KV_ERR_CORRUPT);
    CHECK(l.payload == NULL);
    CHECK(strstr(err.msg, "payload checksum") != NULL);
    CHECK_EQ_INT(n_logs, 1);
    CHECK(access(path, F_OK) != 0);
    CHECK_EQ_INT(ds4kv_lookup(st, &q, &h), 0);
    ds4kv_stats s;
    ds4kv_get_stats(st, &s);
    CHECK_EQ_INT(s.hits, 0);
    CHECK_EQ_INT(s.bad_files, 1);
    CHECK_EQ_INT(s.files, 0);
    CHECK_EQ_INT(s.bytes_used, 0);

    /* Truncated after the scan (e.g. by another process): caught too. */
    make_one(dir, MODEL_A, 50, path, sizeof path, &e);
    ds4kv_close(st);
    st = open_store(dir, 1 << 20, MODEL_A);
    CHECK(truncate(path, (off_t)e.file_bytes - 10) == 0);
    CHECK_EQ_INT(ds4kv_load(st, e.name, &l, &err), DS4KV_ERR_CORRUPT);
    CHECK(access(path, F_OK) != 0);
    CHECK_EQ_INT(ds4kv_load(st, e.name, &l, &err), DS4KV_ERR_GONE);
    ds4kv_close(st);
    rm_dir(dir);
    free(dir);
}

TEST(orphaned_temp_files_cleaned) {
    fill_seq();
    char *dir = mkdir_tmp();
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);  /* a pid that is certainly dead now */
    char dead[4096], live[4096], mine[4096];
    snprintf(dead, sizeof dead, "%s/0123456789abcdef0123456789abcdef.kv.tmp.%d", dir, (int)child);
    snprintf(live, sizeof live, "%s/0123456789abcdef0123456789abcdef.kv.tmp.%d", dir, (int)getppid());
    snprintf(mine, sizeof mine, "%s/0123456789abcdef0123456789abcdef.kv.tmp.%d", dir, (int)getpid());
    const char *paths[] = {dead, live, mine};
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(paths[i], "w");
        CHECK(f != NULL);
        fputs("partial", f);
        fclose(f);
    }
    n_logs = 0;
    ds4kv_store *st = open_store(dir, 1 << 20, MODEL_A);
    CHECK(access(dead, F_OK) != 0);
    CHECK(access(mine, F_OK) != 0);   /* our pid: left by an earlier process with the same pid */
    CHECK(access(live, F_OK) == 0);   /* a live process may still be writing it */
    CHECK_EQ_INT(n_logs, 2);
    ds4kv_close(st);
    unlink(live);
    rm_dir(dir);
    free(dir);
}

static ssize_t die_midway(int fd, const void *b, size_t n) {
    ssize_t r = write(fd, b, n > 1000 ? n / 2 : n);
    if (n > 1000) raise(SIGKILL);
    return r;
}

TEST(kill_during_write_then_restart) {
    fill_seq();
    char *dir = mkdir_tmp();
    ds4kv_store *st = open_store(dir, 1 << 20, MODEL_A);
    ds4kv_entry good;
    CHECK_EQ_INT(save_n(st, seq_tok, 40, "a", 3000, &good), DS4KV_OK);
    ds4kv_close(st);
    pid_t child = fork();
    if (child == 0) {
        ds4kv_config c = {.dir = dir, .budget_bytes = 1 << 20, .model_identity = MODEL_A, .ctx = 4096};
        ds4kv_store *s2 = ds4kv_open(&c, NULL);
        if (!s2) _exit(3);
        ds4kv_set_write_fn(s2, die_midway);
        uint8_t *p = payload_for(seq_tok, 80, 50000);
        ds4kv_save_req r = {.tokens = seq_tok, .n_tokens = 80, .text = "a b", .text_len = 3, .payload = p,
                            .payload_len = 50000};
        ds4kv_save(s2, &r, NULL, NULL);
        _exit(4);  /* not reached: killed inside the write */
    }
    int status;
    waitpid(child, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK_EQ_INT(count_files(dir, ".tmp.", NULL), 1);  /* the crash left a partial temp file */
    st = open_store(dir, 1 << 20, MODEL_A);
    CHECK_EQ_INT(count_files(dir, ".tmp.", NULL), 0);
    CHECK_EQ_INT(count_files(dir, NULL, NULL), 1);
    ds4kv_query q = {.tokens = seq_tok, .n_tokens = 100};
    ds4kv_entry h;
    CHECK_EQ_INT(ds4kv_lookup(st, &q, &h), 1);
    CHECK_EQ_STR(h.name, good.name);
    ds4kv_loaded l;
    ds4_err err;
    CHECK_EQ_INT(ds4kv_load(st, h.name, &l, &err), DS4KV_OK);
    ds4kv_loaded_free(&l);
    ds4kv_close(st);
    rm_dir(dir);
    free(dir);
}

/* The budget, measured from inside every write: the directory (final files
 * plus the temporary one being written) never holds more than the budget. */
static const char *budget_dir;
static uint64_t budget_max_seen;
static ssize_t measuring_write(int fd, const void *b, size_t n) {
    ssize_t r = write(fd, b, n);
    uint64_t bytes;
    count_files(budget_dir, NULL, &bytes);
    if (bytes > budget_max_seen) budget_max_seen = bytes;
    return r;
}

TEST(budget_never_exceeded) {
    fill_seq();
    char *dir = mkdir_tmp();
    const uint64_t budget = 64 * 1024;
    ds4kv_store *st = open_store(dir, budget, MODEL_A);
    budget_dir = dir;
    budget_max_seen = 0;
    ds4kv_set_write_fn(st, measuring_write);
    int saved = 0, too_big = 0;
    for (int i = 0; i < 200; i++) {
        uint32_t n = (uint32_t)(5 + (i * 37) % 300);
        int32_t t[400];
        for (uint32_t k = 0; k < n; k++) t[k] = (int32_t)(i * 1000 + (int)k);
        size_t plen = (size_t)(1000 + (i * 7919) % 20000);
        if (i == 100) plen = budget;  /* cannot fit at all */
        int rc = save_n(st, t, n, "conversation", plen, NULL);
        if (rc == DS4KV_OK) saved++;
        else if (rc == DS4KV_ERR_TOO_BIG) too_big++;
        else T_FAIL("save %d: %s", i, ds4kv_strerror(rc));
        uint64_t bytes;
        count_files(dir, NULL, &bytes);
        CHECKF(bytes <= budget, "after save %d the directory holds %llu > %llu bytes", i,
               (unsigned long long)bytes, (unsigned long long)budget);
        ds4kv_stats s;
        ds4kv_get_stats(st, &s);
        CHECK_EQ_INT(s.bytes_used, bytes);
    }
    CHECK_EQ_INT(saved, 199);
    CHECK_EQ_INT(too_big, 1);
    CHECKF(budget_max_seen <= budget && budget_max_seen > budget / 2, "max seen during writes %llu",
           (unsigned long long)budget_max_seen);
    ds4kv_stats s;
    ds4kv_get_stats(st, &s);
    CHECK(s.files_evicted > 100);
    CHECK_EQ_INT(s.bytes_written - s.bytes_evicted, s.bytes_used);
    ds4kv_close(st);
    /* A smaller budget at restart evicts down to it. */
    st = open_store(dir, 20000, MODEL_A);
    uint64_t bytes;
    count_files(dir, NULL, &bytes);
    CHECK(bytes <= 20000);
    ds4kv_close(st);
    rm_dir(dir);
    free(dir);
}

TEST(eviction_order) {
    fill_seq();
    char *dir = mkdir_tmp();
    /* Room for two 10 KB files, not three. */
    ds4kv_store *st = open_store(dir, 25000, MODEL_A);
    ds4kv_entry s_short, s_long, s3;
    CHECK_EQ_INT(save_n(st, seq_tok, 10, "", 10000, &s_short), DS4KV_OK);
    CHECK_EQ_INT(save_n(st, seq_tok + 1000, 100, "", 10000, &s_long), DS4KV_OK);
    CHECK_EQ_INT(save_n(st, seq_tok + 2000, 50, "", 10000, &s3), DS4KV_OK);
    ds4kv_entry h;
    /* Same recency, no hits: the shortest prefix went first. */
    CHECK(!ds4kv_contains(st, seq_tok, 10, "", 0, &h));
    CHECK(ds4kv_contains(st, seq_tok + 1000, 100, "", 0, &h));
    CHECK(ds4kv_contains(st, seq_tok + 2000, 50, "", 0, &h));
    /* Hits weigh in: the 50-token file used 3 times outranks the 100-token one. */
    ds4kv_loaded l;
    ds4_err err;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(ds4kv_load(st, s3.name, &l, &err), DS4KV_OK);
        ds4kv_loaded_free(&l);
    }
    CHECK_EQ_INT(save_n(st, seq_tok + 3000, 20, "", 10000, NULL), DS4KV_OK);
    CHECK(!ds4kv_contains(st, seq_tok + 1000, 100, "", 0, &h));
    CHECK(ds4kv_contains(st, seq_tok + 2000, 50, "", 0, &h));
    CHECK(ds4kv_contains(st, seq_tok + 3000, 20, "", 0, &h));  /* the file just written is kept */
    ds4kv_close(st);
    rm_dir(dir);
    free(dir);
}

static int fail_errno;
static size_t fail_after, written_so_far;
static ssize_t failing_write(int fd, const void *b, size_t n) {
    if (written_so_far >= fail_after) { errno = fail_errno; return -1; }
    size_t k = n < fail_after - written_so_far ? n : fail_after - written_so_far;
    ssize_t r = write(fd, b, k);
    if (r > 0) written_so_far += (size_t)r;
    return r;
}

TEST(write_errors_degrade_to_not_cached) {
    fill_seq();
    char *dir = mkdir_tmp();
    ds4kv_store *st = open_store(dir, 1 << 20, MODEL_A);
    ds4kv_entry good;
    CHECK_EQ_INT(save_n(st, seq_tok, 20, "x", 4000, &good), DS4KV_OK);
    ds4kv_set_write_fn(st, failing_write);
    const int errs[] = {ENOSPC, EIO, EDQUOT};
    const int want[] = {DS4KV_ERR_NOSPC, DS4KV_ERR_IO, DS4KV_ERR_NOSPC};
    const size_t after[] = {0, 500, 3000};
    for (int i = 0; i < 3; i++) {
        fail_errno = errs[i];
        fail_after = after[i];
        written_so_far = 0;
        n_logs = 0;
        CHECK_EQ_INT(save_n(st, seq_tok, (uint32_t)(30 + i), "x", 4000, NULL), want[i]);
        CHECK_EQ_INT(n_logs, 1);
        CHECK(strstr(last_log, "not cached") != NULL);
        CHECK_EQ_INT(count_files(dir, ".tmp.", NULL), 0);
        CHECK_EQ_INT(count_files(dir, ".kv", NULL), 1);
    }
    ds4kv_stats s;
    ds4kv_get_stats(st, &s);
    CHECK_EQ_INT(s.errors, 3);
    CHECK_EQ_INT(s.files, 1);
    ds4kv_set_write_fn(st, NULL);
    CHECK_EQ_INT(save_n(st, seq_tok, 40, "x", 4000, NULL), DS4KV_OK);
    ds4kv_loaded l;
    ds4_err err;
    CHECK_EQ_INT(ds4kv_load(st, good.name, &l, &err), DS4KV_OK);
    ds4kv_loaded_free(&l);
    ds4kv_close(st);
    rm_dir(dir);
    free(dir);
}

/* A real tiny filesystem (needs root and mount(2); skipped otherwise, the
 * hook test above covers the logic). */
static int try_mount_tmpfs(const char *dir, const char *opts) {
    if (geteuid() != 0) return -1;
    return mount("tmpfs", dir, "tmpfs", 0, opts);
}

TEST(enospc_on_tiny_tmpfs) {
    fill_seq();
    char *dir = mkdir_tmp();
    if (try_mount_tmpfs(dir, "size=256k") != 0) {
        printf("# enospc_on_tiny_tmpfs: cannot mount a tmpfs here (%s); covered by the write-hook test\n",
               strerror(errno));
        rm_dir(dir);
        free(dir);
        return;
    }
    ds4kv_store *st = open_store(dir, 64ull << 20, MODEL_A);  /* budget far above the fs size */
    int ok = 0, nospc = 0;
    for (int i = 0; i < 12; i++) {
        int rc = save_n(st, seq_tok + i, 50, "t", 60000, NULL);
        if (rc == DS4KV_OK) ok++;
        else if (rc == DS4KV_ERR_NOSPC) nospc++;
        else T_FAIL("save %d: %s", i, ds4kv_strerror(rc));
        CHECK_EQ_INT(count_files(dir, ".tmp.", NULL), 0);
    }
    CHECK(ok >= 3);
    CHECK(nospc >= 1);
    size_t n;
    ds4kv_entry *all = ds4kv_list(st, &n);
    CHECK_EQ_INT((int)n, ok);
    for (size_t i = 0; i < n; i++) {
        ds4kv_loaded l;
        ds4_err err;
        CHECK_EQ_INT(ds4kv_load(st, all[i].name, &l, &err), DS4KV_OK);
        ds4kv_loaded_free(&l);
    }
    free(all);
    ds4kv_close(st);
    CHECK(umount(dir) == 0);
    rm_dir(dir);
    free(dir);
}

TEST(read_only_directory) {
    fill_seq();
    char *dir = mkdir_tmp();
    int mounted = try_mount_tmpfs(dir, "size=1m") == 0;
    if (!mounted && geteuid() == 0) {
        printf("# read_only_directory: root without mount(2): cannot make a directory read-only for root; skipped\n");
        rm_dir(dir);
        free(dir);
        return;
    }
    ds4kv_store *st = open_store(dir, 1 << 20, MODEL_A);
    ds4kv_entry e;
    CHECK_EQ_INT(save_n(st, seq_tok, 25, "ro", 3000, &e), DS4KV_OK);
    ds4kv_close(st);
    /* Leave an orphan and a bad file that cannot be removed either. */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/0123456789abcdef0123456789abcdef.kv.tmp.%d", dir, (int)getpid());
    FILE *f = fopen(tmp, "w");
    fputs("x", f);
    fclose(f);
    if (mounted) CHECK(mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0);
    else CHECK(chmod(dir, 0555) == 0);
    n_logs = 0;
    st = open_store(dir, 1 << 20, MODEL_A);
    CHECK_EQ_INT(n_logs, 1);  /* the orphan could not be removed */
    ds4kv_query q = {.tokens = seq_tok, .n_tokens = 100};
    ds4kv_entry h;
    CHECK_EQ_INT(ds4kv_lookup(st, &q, &h), 1);
    ds4kv_loaded l;
    ds4_err err;
    CHECK_EQ_INT(ds4kv_load(st, h.name, &l, &err), DS4KV_OK);
    ds4kv_loaded_free(&l);
    n_logs = 0;
    CHECK_EQ_INT(save_n(st, seq_tok, 60, "ro", 3000, NULL), DS4KV_ERR_READONLY);
    CHECK_EQ_INT(n_logs, 1);
    CHECK_EQ_INT(ds4kv_lookup(st, &q, &h), 1);
    CHECK_EQ_INT(h.n_tokens, 25);
    ds4kv_close(st);
    if (mounted) CHECK(umount(dir) == 0);
    else chmod(dir, 0755);
    rm_dir(dir);
    free(dir);
}

typedef struct got_tools {
    int n;
    char ids[8][64];
    char dsml[8][64];
} got_tools;

static int on_tool(void *ud, const char *id, size_t il, const char *d, size_t dl) {
    got_tools *g = ud;
    if (g->n < 8) {
        snprintf(g->ids[g->n], 64, "%.*s", (int)il, id);
        snprintf(g->dsml[g->n], 64, "%.*s", (int)dl, d);
        g->n++;
    }
    return 0;
}

TEST(tool_map_survives_restart) {
    fill_seq();
    char *dir = mkdir_tmp();
    ds4kv_store *st = open_store(dir, 1 << 20, MODEL_A);
    const char *ids[] = {"call_a", "call_b", "toolu_c"};
    const char *ds[] = {"<blk1>", "<blk1>", "<blk2>"};
    size_t dl[] = {6, 6, 6};
    uint8_t *tm;
    size_t tml;
    CHECK_EQ_INT(ds4kv_toolmap_encode(ids, ds, dl, 3, &tm, &tml), DS4KV_OK);
    uint8_t *p = payload_for(seq_tok, 30, 1000);
    ds4kv_save_req r = {.tokens = seq_tok, .n_tokens = 30, .text = "x<blk1><blk2>", .text_len = 13, .payload = p,
                        .payload_len = 1000, .toolmap = tm, .toolmap_len = tml};
    CHECK_EQ_INT(ds4kv_save(st, &r, NULL, NULL), DS4KV_OK);
    CHECK_EQ_INT(save_n(st, seq_tok, 31, "no tools", 1000, NULL), DS4KV_OK);
    ds4kv_close(st);
    st = open_store(dir, 1 << 20, MODEL_A);
    const char *want[] = {"toolu_c", "call_a", "call_zzz"};
    got_tools g = {0};
    CHECK_EQ_INT(ds4kv_tools_restore(st, want, 3, on_tool, &g), 2);
    CHECK_EQ_INT(g.n, 2);
    CHECK_EQ_STR(g.ids[0], "call_a");
    CHECK_EQ_STR(g.dsml[0], "<blk1>");
    CHECK_EQ_STR(g.ids[1], "toolu_c");
    CHECK_EQ_STR(g.dsml[1], "<blk2>");
    const char *none[] = {"call_zzz"};
    CHECK_EQ_INT(ds4kv_tools_restore(st, none, 1, on_tool, &g), 0);
    got_tools g3 = {0};
    CHECK_EQ_INT(ds4kv_tools_restore(st, NULL, 0, on_tool, &g3), 3);  /* every stored mapping */
    CHECK_EQ_STR(g3.ids[2], "toolu_c");
    ds4kv_close(st);

    /* Decoding stops at the first invalid entry and keeps the earlier ones. */
    tm[8 + 8 + 6 + 6] = 0;  /* id length of entry 2 := 0 (little-endian low byte) */
    got_tools g2 = {0};
    CHECK_EQ_INT(ds4kv_toolmap_decode(tm, tml, 0, on_tool, &g2), 1);
    CHECK_EQ_STR(g2.ids[0], "call_a");
    CHECK_EQ_INT(ds4kv_toolmap_decode(tm, tml, 2, on_tool, &g2), -1);  /* count 3 over the cap */
    CHECK_EQ_INT(ds4kv_toolmap_decode(tm, 5, 0, on_tool, &g2), -1);
    free(p);
    free(tm);
    rm_dir(dir);
    free(dir);
}

TEST(names_and_header_codec) {
    CHECK(ds4kv_is_name("0123456789abcdef0123456789abcdef.kv"));
    CHECK(!ds4kv_is_name("0123456789ABCDEF0123456789abcdef.kv"));
    CHECK(!ds4kv_is_name("0123456789abcdef0123456789abcde.kv"));
    CHECK(!ds4kv_is_name("0123456789abcdef0123456789abcdef.kvx"));
    CHECK_EQ_INT(ds4kv_tmp_pid("0123456789abcdef0123456789abcdef.kv.tmp.123"), 123);
    CHECK_EQ_INT(ds4kv_tmp_pid("0123456789abcdef0123456789abcdef.kv.tmp."), 0);
    CHECK_EQ_INT(ds4kv_tmp_pid("0123456789abcdef0123456789abcdef.kv.tmp.12a"), 0);
    uint8_t a[16], b[16];
    ds4kv_model_bytes(MODEL_A, a);
    CHECK_EQ_INT(a[0], 0x01);
    CHECK_EQ_INT(a[15], 0xef);
    ds4kv_model_bytes("not hex", b);
    CHECK(memcmp(a, b, 16) != 0);
    ds4kv_hdr h = {.version = 1, .hdr_size = DS4KV_HDR_SIZE, .ctx = 4096, .n_tokens = 7, .text_len = 3,
                   .flags = 1, .reason = 3, .quant_bits = 2, .payload_len = 99, .toolmap_len = 12,
                   .created_ns = 123456789012345ull, .hits = 5, .last_used_ns = 99999999999ull};
    memcpy(h.model, a, 16);
    uint8_t hb[DS4KV_HDR_SIZE];
    ds4kv_hdr_encode(&h, hb);
    ds4kv_hdr d;
    char why[256];
    CHECK_EQ_INT(ds4kv_hdr_decode(hb, &d, why, sizeof why), 0);
    CHECK(!memcmp(&d.model, a, 16));
    CHECK_EQ_INT(d.n_tokens, 7);
    CHECK_EQ_INT(d.payload_len, 99);
    CHECK_EQ_INT(d.created_ns, 123456789012345ull);
    CHECK_EQ_INT(d.hits, 5);
    CHECK_EQ_INT(d.last_used_ns, 99999999999ull);
    CHECK_EQ_INT(ds4kv_file_size(&d), DS4KV_HDR_SIZE + 28 + 3 + 12 + 99);
    hb[36] = hb[37] = hb[38] = hb[39] = 0;  /* token count 0 */
    CHECK_EQ_INT(ds4kv_hdr_decode(hb, &d, why, sizeof why), -1);
    CHECK(strstr(why, "token count 0") != NULL);
    ds4kv_hdr_encode(&h, hb);
    hb[44] = 0;  /* flags say no tool map, but M = 12 */
    CHECK_EQ_INT(ds4kv_hdr_decode(hb, &d, why, sizeof why), -1);
}

TEST(bad_arguments) {
    char *dir = mkdir_tmp();
    ds4kv_store *st = open_store(dir, 1 << 20, MODEL_A);
    ds4kv_save_req r = {0};
    CHECK_EQ_INT(ds4kv_save(st, &r, NULL, NULL), DS4KV_ERR_ARG);
    int32_t t = 1;
    r.tokens = &t;
    r.n_tokens = 1;
    CHECK_EQ_INT(ds4kv_save(st, &r, NULL, NULL), DS4KV_ERR_ARG);  /* no payload */
    ds4kv_close(st);
    /* A path that is a file, not a directory. */
    char f[4096];
    snprintf(f, sizeof f, "%s/file", dir);
    FILE *fp = fopen(f, "w");
    fclose(fp);
    ds4kv_config c = {.dir = f, .budget_bytes = 1, .model_identity = MODEL_A};
    ds4_err e = {{0}};
    CHECK(ds4kv_open(&c, &e) == NULL);
    CHECK(strstr(e.msg, f) != NULL);
    unlink(f);
    rm_dir(dir);
    free(dir);
}
