/* download.c - the built-in model downloader (spec §21.8.3), libcurl based.
 *
 * The 87 GB file is fetched into gguf/<file>.part and renamed only after it verified,
 * so a final file is never partial or corrupt. What Part A got wrong and this fixes:
 * a complete .part (HTTP 416 whose Content-Range total equals the .part size) is
 * finished instead of failing forever; a changed remote file (entity tag) restarts
 * from zero instead of appending new bytes to an old prefix (If-Range + a .part.json
 * record); disk full is a clear error that keeps the .part for a later resume; and the
 * result is checked (size + GGUF magic by default, SHA-256 on request).
 *
 * HF_TOKEN goes out as a bearer header only to huggingface.co (and loopback, for
 * tests); libcurl itself never forwards a custom Authorization header to the CDN host
 * after a redirect. The token is never logged. */
#include "ctl/ctl.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

struct hdrs {
    long status;
    int64_t content_length, x_linked_size, cr_start, cr_total;
    char etag[256], x_linked_etag[256];
};

struct xfer {
    const ctl_cfg *c;
    ctl_lock *l;
    int fd;
    int64_t part_size;   /* bytes in .part when this response's body began */
    int64_t written;     /* body bytes appended during this attempt */
    int decided, discard, range_mismatch, write_errno;
    int64_t total;
    struct hdrs h;
    int64_t samp_ms[64], samp_b[64];
    int nsamp;
    char errbody[512];
    size_t nerr;
};

static void trim(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\r' || s[n - 1] == '\n' || s[n - 1] == ' ')) s[--n] = 0;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud) {
    struct hdrs *h = ud;
    size_t n = sz * nm;
    char line[1024];
    size_t k = n < sizeof line - 1 ? n : sizeof line - 1;
    memcpy(line, p, k);
    line[k] = 0;
    trim(line);
    if (!strncmp(line, "HTTP/", 5)) {
        /* A new response (redirect hop): per-response fields start over; the
         * X-Linked-* values of the Hugging Face hop are kept. */
        const char *sp = strchr(line, ' ');
        h->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        h->content_length = -1; h->cr_start = -1; h->cr_total = -1; h->etag[0] = 0;
        return n;
    }
    char *colon = strchr(line, ':');
    if (!colon) return n;
    *colon = 0;
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    if (!strcasecmp(line, "content-length")) h->content_length = strtoll(v, NULL, 10);
    else if (!strcasecmp(line, "x-linked-size")) h->x_linked_size = strtoll(v, NULL, 10);
    else if (!strcasecmp(line, "etag")) snprintf(h->etag, sizeof h->etag, "%s", v);
    else if (!strcasecmp(line, "x-linked-etag")) snprintf(h->x_linked_etag, sizeof h->x_linked_etag, "%s", v);
    else if (!strcasecmp(line, "content-range")) {
        /* "bytes a-b/N", or "bytes STAR/N" on a 416 */
        const char *r = v;
        if (!strncasecmp(r, "bytes", 5)) r += 5;
        while (*r == ' ') r++;
        if (*r == '*') h->cr_start = -1;
        else h->cr_start = strtoll(r, NULL, 10);
        const char *slash = strchr(r, '/');
        h->cr_total = slash && slash[1] != '*' ? strtoll(slash + 1, NULL, 10) : -1;
    }
    return n;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? errno : ENOSPC;
        p += w; n -= (size_t)w;
    }
    return 0;
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud) {
    struct xfer *x = ud;
    size_t n = sz * nm;
    if (!x->decided) {
        x->decided = 1;
        if (x->h.status == 206) {
            if (x->h.cr_start != x->part_size) { x->range_mismatch = 1; return 0; }
        } else if (x->h.status == 200) {
            /* The server ignored the range or If-Range saw a changed entity: the body is
             * the whole file, so the .part starts over. */
            if (ftruncate(x->fd, 0) != 0) { x->write_errno = errno; return 0; }
            x->part_size = 0;
        } else x->discard = 1;
    }
    if (x->discard) {
        size_t k = n < sizeof x->errbody - 1 - x->nerr ? n : sizeof x->errbody - 1 - x->nerr;
        memcpy(x->errbody + x->nerr, p, k);
        x->nerr += k;
        x->errbody[x->nerr] = 0;
        return n;
    }
    int e = write_all(x->fd, p, n);
    if (e) {
        /* Whatever did reach the file is valid; fstat tells how much. */
        struct stat st;
        if (fstat(x->fd, &st) == 0) x->written = st.st_size - x->part_size;
        x->write_errno = e;
        return 0;
    }
    x->written += (int64_t)n;
    return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
    (void)dt; (void)dn; (void)ut; (void)un;
    struct xfer *x = ud;
    if (ctl_cancelled) return 1;
    ctl_lock_tick(x->c, x->l);
    if (x->discard || !x->decided) return 0;
    int64_t now = ctl_mono_ms(), got = x->part_size + x->written;
    int last = (x->nsamp - 1) & 63;
    if (x->nsamp == 0 || now - x->samp_ms[last] >= 500) {
        int i = x->nsamp & 63;
        x->samp_ms[i] = now; x->samp_b[i] = got; x->nsamp++;
    }
    /* 30-second average rate from the oldest sample inside the window. */
    double bps = 0;
    int first = x->nsamp > 64 ? x->nsamp - 64 : 0;
    for (int k = first; k < x->nsamp; k++) {
        int i = k & 63;
        if (now - x->samp_ms[i] <= 30000) {
            if (now > x->samp_ms[i]) bps = (double)(got - x->samp_b[i]) * 1000.0 / (double)(now - x->samp_ms[i]);
            break;
        }
    }
    ctl_ev_progress("download", got, x->total, bps, 0);
    return 0;
}

static int token_allowed(const char *url) {
    const char *h = strstr(url, "://");
    if (!h) return 0;
    h += 3;
    size_t n = strcspn(h, ":/?#");
    char host[256];
    if (n >= sizeof host) return 0;
    memcpy(host, h, n);
    host[n] = 0;
    size_t hl = strlen(host);
    if (!strcasecmp(host, "huggingface.co") || (hl > 15 && !strcasecmp(host + hl - 15, ".huggingface.co"))) return 1;
    return !strcmp(host, "127.0.0.1") || !strcasecmp(host, "localhost") || !strcmp(host, "[::1]");
}

static CURL *new_handle(const char *url, struct curl_slist **hdr_list, const char *range, const char *if_range) {
    CURL *h = curl_easy_init();
    if (!h) return NULL;
    struct curl_slist *l = NULL;
    const char *tok = getenv("HF_TOKEN");
    if (tok && *tok && token_allowed(url)) {
        char a[4096];
        snprintf(a, sizeof a, "Authorization: Bearer %s", tok);
        l = curl_slist_append(l, a);
    }
    if (if_range) {
        char a[512];
        snprintf(a, sizeof a, "If-Range: %s", if_range);
        l = curl_slist_append(l, a);
    }
    *hdr_list = l;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    /* A stalled transfer (no bytes for 60 s) is a network error, retried. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "ds4ctl/" CTL_VERSION);
    if (l) curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
    if (range) curl_easy_setopt(h, CURLOPT_RANGE, range);
    return h;
}

static int probe(const ctl_cfg *c, struct hdrs *h, char *cerr, size_t n) {
    struct curl_slist *l;
    CURL *ch = new_handle(c->model_url, &l, NULL, NULL);
    if (!ch) { snprintf(cerr, n, "curl_easy_init failed"); return -1; }
    memset(h, 0, sizeof *h);
    h->content_length = -1; h->x_linked_size = -1;
    curl_easy_setopt(ch, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(ch, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(ch, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(ch, CURLOPT_TIMEOUT, 60L);
    CURLcode rc = curl_easy_perform(ch);
    if (rc != CURLE_OK) snprintf(cerr, n, "%s", curl_easy_strerror(rc));
    else curl_easy_getinfo(ch, CURLINFO_RESPONSE_CODE, &h->status);
    curl_easy_cleanup(ch);
    curl_slist_free_all(l);
    return rc == CURLE_OK ? 0 : -1;
}

static const char *entity_tag(const struct hdrs *h) {
    return h->x_linked_etag[0] ? h->x_linked_etag : h->etag;
}

static int64_t file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (int64_t)st.st_size : -1;
}

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) { fsync(fd); close(fd); }
}

static int is_hex64(const char *s) {
    const char *q = s;
    if (*q == '"') q++;
    size_t n = strspn(q, "0123456789abcdefABCDEF");
    return n == 64 && (q[64] == 0 || q[64] == '"');
}

/* Size + GGUF magic, then optionally SHA-256. 0 ok, else CTL_INTEGRITY with err. */
static int verify_file(const ctl_cfg *c, ctl_lock *l, const char *path, int64_t total,
                       const char *etag, char *sha_out, ds4_err *err) {
    sha_out[0] = 0;
    int64_t sz = file_size(path);
    if (total >= 0 && sz != total)
        return ds4_errf(err, "size %lld, expected %lld", (long long)sz, (long long)total), CTL_INTEGRITY;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ds4_errf(err, "cannot open %s: %s", path, strerror(errno)), CTL_ERROR;
    char magic[4] = {0};
    if (pread(fd, magic, 4, 0) != 4 || memcmp(magic, "GGUF", 4) != 0) {
        close(fd);
        return ds4_errf(err, "the file does not start with the GGUF magic"), CTL_INTEGRITY;
    }
    if (c->verify == CTL_VERIFY_SHA256) {
        char want[65] = "";
        if (c->model_sha256[0]) snprintf(want, sizeof want, "%s", c->model_sha256);
        else if (etag && is_hex64(etag)) {
            const char *q = etag[0] == '"' ? etag + 1 : etag;
            for (int i = 0; i < 64; i++) want[i] = (char)(q[i] | 0x20);
            want[64] = 0;
        }
        ctl_ev_status("verify", "verifying SHA-256 of %s", path);
        ctl_sha256 s;
        ctl_sha256_init(&s);
        static char buf[1 << 20];
        int64_t done = 0;
        ssize_t r;
        while ((r = pread(fd, buf, sizeof buf, done)) > 0) {
            ctl_sha256_update(&s, buf, (size_t)r);
            done += r;
            ctl_lock_tick(c, l);
            ctl_ev_progress("verify", done, sz, 0, 0);
            if (ctl_cancelled) { close(fd); return ds4_errf(err, "verification cancelled"), CTL_CANCELLED; }
        }
        ctl_ev_progress("verify", done, sz, 0, 1);
        uint8_t d[32];
        ctl_sha256_final(&s, d);
        ctl_sha256_hex(d, sha_out);
        if (!want[0]) {
            close(fd);
            return ds4_errf(err, "DS4_VERIFY=sha256 but no expected hash is known (set DS4_MODEL_SHA256)"), CTL_INTEGRITY;
        }
        if (strcmp(want, sha_out) != 0) {
            close(fd);
            return ds4_errf(err, "SHA-256 %s, expected %s", sha_out, want), CTL_INTEGRITY;
        }
    }
    close(fd);
    return 0;
}

static void write_ver_record(const char *rec_path, const char *final, const char *etag, const char *sha) {
    struct stat st;
    if (stat(final, &st) != 0) return;
    json_t *o = json_object();
    json_object_set_new(o, "managedBy", json_string(CTL_MANAGED_BY));
    json_object_set_new(o, "size", json_integer(st.st_size));
    json_object_set_new(o, "mtime", json_integer((json_int_t)st.st_mtime));
    json_object_set_new(o, "etag", json_string(etag ? etag : ""));
    if (sha && *sha) json_object_set_new(o, "sha256", json_string(sha));
    json_object_set_new(o, "verifiedAt", json_integer(ctl_now_ms()));
    ctl_json_write(rec_path, o, 1, NULL);
    json_decref(o);
}

static int link_model(const ctl_cfg *c, const char *runtime) {
    char link[PATH_MAX], tmp[PATH_MAX], target[PATH_MAX];
    snprintf(link, sizeof link, "%s/ds4flash.gguf", runtime);
    snprintf(target, sizeof target, "gguf/%s", c->model_file);
    struct stat st;
    if (lstat(link, &st) == 0 && !S_ISLNK(st.st_mode)) {
        ctl_ev_status("download", "%s is a regular file (your own model?); left alone, not linked to %s", link, target);
        return 0;
    }
    snprintf(tmp, sizeof tmp, "%s/ds4flash.gguf.tmp-%d", runtime, (int)getpid());
    unlink(tmp);
    if (symlink(target, tmp) != 0 || rename(tmp, link) != 0) { unlink(tmp); return -1; }
    ctl_log(c, "ds4 download: ./ds4flash.gguf -> %s", target);
    return 0;
}

static int quarantine(const char *final_or_part, const char *final, ds4_err *err) {
    char bad[PATH_MAX + 64];
    snprintf(bad, sizeof bad, "%s.bad-%lld", final, (long long)(ctl_now_ms() / 1000));
    if (rename(final_or_part, bad) == 0) ds4_err_prefix(err, "model file failed verification; moved to %s", bad);
    else ds4_err_prefix(err, "model file %s failed verification", final_or_part);
    return CTL_INTEGRITY;
}

int ctl_download(const ctl_cfg *c, ctl_lock *l, const char *runtime, int force_verify, ds4_err *err) {
    static int inited;
    if (!inited) { curl_global_init(CURL_GLOBAL_DEFAULT); inited = 1; }
    char dir[PATH_MAX], final[PATH_MAX], part[PATH_MAX + 8], meta[PATH_MAX + 16], rec[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/gguf", runtime);
    if (ctl_mkdirs(dir, 0755) != 0) return ds4_errf(err, "cannot create %s: %s", dir, strerror(errno)), CTL_ERROR;
    snprintf(final, sizeof final, "%s/%s", dir, c->model_file);
    snprintf(part, sizeof part, "%s.part", final);
    snprintf(meta, sizeof meta, "%s.part.json", final);
    snprintf(rec, sizeof rec, "%s.json", final);
    char sha[65] = "";

    int64_t fsz = file_size(final);
    if (fsz > 0) {
        struct stat st;
        stat(final, &st);
        json_t *r = ctl_json_read(rec);
        int recorded = r && ctl_json_int(r, "size", -1) == fsz && ctl_json_int(r, "mtime", -1) == (int64_t)st.st_mtime &&
                       (c->verify != CTL_VERIFY_SHA256 || ctl_json_str(r, "sha256"));
        json_decref(r);
        if (c->verify == CTL_VERIFY_NONE || (recorded && !force_verify)) {
            ctl_log(c, "ds4 download: GGUF already present (%s)", final);
            return link_model(c, runtime) ? (ds4_errf(err, "cannot link %s/ds4flash.gguf", runtime), CTL_ERROR) : CTL_OK;
        }
        struct hdrs h;
        char cerr[256];
        int64_t total = -1;
        const char *etag = "";
        if (probe(c, &h, cerr, sizeof cerr) == 0 && h.status >= 200 && h.status < 300) {
            total = h.x_linked_size >= 0 ? h.x_linked_size : h.content_length;
            etag = entity_tag(&h);
        } else {
            ctl_ev_status("verify", "cannot reach %s to learn the expected size; checking the GGUF magic only", c->model_url);
        }
        int v = verify_file(c, l, final, total, etag, sha, err);
        if (v == CTL_INTEGRITY) return quarantine(final, final, err);
        if (v) return v;
        if (total >= 0) write_ver_record(rec, final, etag, sha);
        return link_model(c, runtime) ? (ds4_errf(err, "cannot link %s/ds4flash.gguf", runtime), CTL_ERROR) : CTL_OK;
    }

    char logline[8192];
    ctl_log(c, "download q2 model");
    snprintf(logline, sizeof logline, "$ GET %s%s", c->model_url,
             getenv("HF_TOKEN") && *getenv("HF_TOKEN") && token_allowed(c->model_url) ? " (Authorization: Bearer ***)" : "");
    ctl_log(c, "%s", logline);
    ctl_ev_status("download", "downloading %s", c->model_file);

    long failures = 0, backoff = 1;
    int restarted_416 = 0;
    int64_t total = -1;
    char etag[256] = "";
    for (;;) {
        if (ctl_cancelled) return ds4_errf(err, "download q2 model cancelled; %s kept for resume", part), CTL_CANCELLED;
        char cerr[256] = "";
        int transient = 0;
        struct hdrs h;
        if (probe(c, &h, cerr, sizeof cerr) != 0) {
            transient = 1;
            ds4_errf(err, "cannot reach %s: %s", c->model_url, cerr);
        } else if (h.status == 401 || h.status == 403) {
            return ds4_errf(err, "download refused with HTTP %ld for %s; set HF_TOKEN to a Hugging Face token with access to %s",
                            h.status, c->model_url, c->model_repo), CTL_DOWNLOAD_FAILED;
        } else if (h.status == 404 || h.status == 410) {
            return ds4_errf(err, "download failed: HTTP %ld (not found) for %s; check DS4_MODEL_REPO/DS4_MODEL_FILE/DS4_MODEL_URL",
                            h.status, c->model_url), CTL_DOWNLOAD_FAILED;
        } else if (h.status < 200 || h.status >= 300) {
            transient = 1;
            ds4_errf(err, "download failed: HTTP %ld from %s", h.status, c->model_url);
        }
        if (!transient) {
            total = h.x_linked_size >= 0 ? h.x_linked_size : h.content_length;
            snprintf(etag, sizeof etag, "%s", entity_tag(&h));
            int64_t psz = file_size(part);
            if (psz > 0) {
                json_t *m = ctl_json_read(meta);
                const char *old = ctl_json_str(m, "etag");
                if (old && *old && *etag && strcmp(old, etag) != 0) {
                    ctl_ev_status("download", "remote file changed; restarting download");
                    ctl_log(c, "ds4 download: remote file changed; restarting download");
                    unlink(part);
                    psz = 0;
                } else if (total >= 0 && psz > total) {
                    ctl_log(c, "ds4 download: %s is larger than the remote file; restarting download", part);
                    unlink(part);
                    psz = 0;
                }
                json_decref(m);
            }
            if (psz > 0 && total >= 0 && psz == total) break; /* complete .part: verify it */
            if (psz < 0) psz = 0;
            if (total >= 0) {
                struct statvfs vs;
                if (statvfs(dir, &vs) == 0) {
                    double have = (double)vs.f_bavail * (double)vs.f_frsize;
                    double need = (double)(total - psz) + (double)c->disk_reserve_mb * 1048576.0;
                    if (have < need) {
                        char nb[32], hb[32];
                        ctl_human_bytes(need, nb, sizeof nb);
                        ctl_human_bytes(have, hb, sizeof hb);
                        return ds4_errf(err, "need %s free in %s, have %s (the download resumes once space is freed)",
                                        nb, dir, hb), CTL_DISK_FULL;
                    }
                }
            }
            json_t *m = json_object();
            json_object_set_new(m, "url", json_string(c->model_url));
            json_object_set_new(m, "etag", json_string(etag));
            json_object_set_new(m, "total", json_integer(total));
            json_object_set_new(m, "startedAt", json_integer(ctl_now_ms()));
            ctl_json_write(meta, m, 1, NULL);
            json_decref(m);

            struct xfer x;
            memset(&x, 0, sizeof x);
            x.c = c; x.l = l; x.total = total;
            x.fd = open(part, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (x.fd < 0) return ds4_errf(err, "cannot open %s: %s", part, strerror(errno)), CTL_ERROR;
            x.part_size = file_size(part);
            char range[64];
            snprintf(range, sizeof range, "%lld-", (long long)x.part_size);
            int strong = etag[0] && strncmp(etag, "W/", 2) != 0;
            struct curl_slist *hl;
            CURL *ch = new_handle(c->model_url, &hl, x.part_size > 0 ? range : NULL,
                                  x.part_size > 0 && strong ? etag : NULL);
            if (!ch) { close(x.fd); return ds4_errf(err, "curl_easy_init failed"), CTL_ERROR; }
            x.h.content_length = -1;
            curl_easy_setopt(ch, CURLOPT_HEADERFUNCTION, on_header);
            curl_easy_setopt(ch, CURLOPT_HEADERDATA, &x.h);
            curl_easy_setopt(ch, CURLOPT_WRITEFUNCTION, on_body);
            curl_easy_setopt(ch, CURLOPT_WRITEDATA, &x);
            curl_easy_setopt(ch, CURLOPT_NOPROGRESS, 0L);
            curl_easy_setopt(ch, CURLOPT_XFERINFOFUNCTION, on_progress);
            curl_easy_setopt(ch, CURLOPT_XFERINFODATA, &x);
            CURLcode cr = curl_easy_perform(ch);
            long status = x.h.status;
            curl_easy_cleanup(ch);
            curl_slist_free_all(hl);
            int fs = fsync(x.fd);
            int fs_errno = errno;
            close(x.fd);
            int64_t now_size = file_size(part);
            if (x.write_errno || (fs != 0 && (fs_errno == ENOSPC || fs_errno == EDQUOT))) {
                int e = x.write_errno ? x.write_errno : fs_errno;
                if (e == ENOSPC || e == EDQUOT)
                    return ds4_errf(err, "disk full while writing %s (%lld bytes kept for resume): %s; free space and run again",
                                    part, (long long)now_size, strerror(e)), CTL_DISK_FULL;
                return ds4_errf(err, "cannot write %s: %s", part, strerror(e)), CTL_DOWNLOAD_FAILED;
            }
            if (cr == CURLE_ABORTED_BY_CALLBACK || ctl_cancelled)
                return ds4_errf(err, "download q2 model cancelled; %s kept for resume", part), CTL_CANCELLED;
            if (status == 416) {
                if (x.h.cr_total >= 0 && x.h.cr_total == now_size) { total = now_size; break; }
                if (restarted_416++) return ds4_errf(err, "server answered HTTP 416 twice for %s", c->model_url), CTL_DOWNLOAD_FAILED;
                ctl_log(c, "ds4 download: HTTP 416 and the .part does not match the remote size; restarting");
                unlink(part);
                continue;
            }
            if (status == 401 || status == 403)
                return ds4_errf(err, "download refused with HTTP %ld; set HF_TOKEN to a Hugging Face token with access to %s",
                                status, c->model_repo), CTL_DOWNLOAD_FAILED;
            if (status == 404 || status == 410)
                return ds4_errf(err, "download failed: HTTP %ld (not found) for %s", status, c->model_url), CTL_DOWNLOAD_FAILED;
            if (x.range_mismatch) {
                ctl_log(c, "ds4 download: server answered a different range (start %lld, wanted %lld); restarting",
                        (long long)x.h.cr_start, (long long)x.part_size);
                unlink(part);
                transient = 1;
                ds4_errf(err, "server answered an unexpected byte range");
            } else if (cr == CURLE_OK && (status == 200 || status == 206)) {
                if (total < 0 || now_size == total) { if (total < 0) total = now_size; break; }
                transient = 1;
                ds4_errf(err, "transfer ended at %lld of %lld bytes", (long long)now_size, (long long)total);
            } else {
                transient = 1;
                if (cr != CURLE_OK) ds4_errf(err, "download of %s failed: %s", c->model_url, curl_easy_strerror(cr));
                else ds4_errf(err, "download failed: HTTP %ld from %s", status, c->model_url);
            }
            if (x.written > 0) {
                /* Progress resets the count: only attempts that bring no new bytes
                 * use up DS4_DOWNLOAD_RETRIES. Resume at once. */
                failures = 0; backoff = 1;
                ctl_log(c, "ds4 download: %s; resuming", err->msg);
                continue;
            }
        }
        if (++failures >= c->dl_retries)
            return ds4_err_prefix(err, "giving up after %ld attempts without progress (%s kept for resume)", failures, part), CTL_DOWNLOAD_FAILED;
        ctl_log(c, "ds4 download: %s; retrying in %lds", err->msg, backoff);
        ctl_ev_status("download", "%s; retrying in %lds", err->msg, backoff);
        for (long s = 0; s < backoff * 10 && !ctl_cancelled; s++) { ctl_sleep_ms(100); ctl_lock_tick(c, l); }
        backoff = backoff * 2 > 60 ? 60 : backoff * 2;
    }
    ctl_ev_progress("download", file_size(part), total, 0, 1);

    int v = verify_file(c, l, part, total, etag, sha, err);
    if (v == CTL_INTEGRITY) { unlink(meta); return quarantine(part, final, err); }
    if (v) return v;
    int fd = open(part, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) { fsync(fd); close(fd); }
    if (rename(part, final) != 0) return ds4_errf(err, "cannot rename %s to %s: %s", part, final, strerror(errno)), CTL_ERROR;
    fsync_dir(dir);
    write_ver_record(rec, final, etag, sha);
    unlink(meta);
    ctl_log(c, "ds4 download: complete (%lld bytes) %s", (long long)file_size(final), final);
    if (link_model(c, runtime)) return ds4_errf(err, "cannot link %s/ds4flash.gguf", runtime), CTL_ERROR;
    return CTL_OK;
}
