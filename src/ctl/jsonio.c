/* jsonio.c - reading and atomically writing ds4ctl's JSON state files (§3.1, §21.3).
 *
 * Writes go to "<target>.<pid>.<ms>.<seq>.tmp" in the same directory, are fsync'd and
 * renamed over the target, so a reader sees the old or the new file, never half of
 * one. The layout is jansson's 2-space pretty print with one "key": value per line and
 * a trailing newline, which the handbook's sed recovery snippets rely on. Readers treat
 * anything unreadable as absent. */
#include "ctl/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

json_t *ctl_json_read(const char *path) {
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (j && !json_is_object(j)) { json_decref(j); return NULL; }
    return j;
}

int ctl_json_write(const char *path, json_t *obj, int sync_dir, ds4_err *err) {
    static unsigned seq;
    char *text = json_dumps(obj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text) return ds4_errf(err, "cannot serialise JSON for %s", path);
    char tmp[PATH_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s.%d.%lld.%u.tmp", path, (int)getpid(), (long long)ctl_now_ms(), seq++);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        free(text);
        return ds4_errf(err, "cannot create %s: %s", tmp, strerror(e));
    }
    size_t len = strlen(text);
    text[len] = 0;
    int ok = write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1;
    int e = errno;
    free(text);
    if (ok && fsync(fd) != 0) { ok = 0; e = errno; }
    close(fd);
    if (!ok) { unlink(tmp); return ds4_errf(err, "cannot write %s: %s", tmp, strerror(e)); }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        return ds4_errf(err, "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    if (sync_dir) {
        char d[PATH_MAX];
        snprintf(d, sizeof d, "%s", path);
        int dfd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) { fsync(dfd); close(dfd); }
    }
    return 0;
}

const char *ctl_json_str(json_t *o, const char *key) {
    json_t *v = o ? json_object_get(o, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

int64_t ctl_json_int(json_t *o, const char *key, int64_t dflt) {
    json_t *v = o ? json_object_get(o, key) : NULL;
    if (json_is_integer(v)) return (int64_t)json_integer_value(v);
    if (json_is_real(v)) return (int64_t)json_real_value(v);
    return dflt;
}

int ctl_json_bool(json_t *o, const char *key) {
    json_t *v = o ? json_object_get(o, key) : NULL;
    return json_is_true(v);
}
