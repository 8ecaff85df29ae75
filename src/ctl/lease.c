/* lease.c - client leases (spec §6, §21.6): clients/<pid>.json says "pid P uses the
 * server". The watchdog stops the server once no valid lease is left.
 *
 * Validity is the five rules of §6.2 (name, managedBy+usesDs4, pid alive, start time
 * equal, mtime within the TTL), comparing the precise processStartId when both sides
 * have it so a reused pid never keeps a dead client's lease alive. A keep-alive lease
 * (written by `start --keep-alive`) is valid until its expiresAt while its keeper
 * lives. Leases need no lock: each is written by atomic rename, and invalid ones are
 * deleted only if unchanged since they were judged (same inode and mtime). */
#include "ctl/ctl.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *ctl_lease_state_name(int st) {
    switch (st) {
    case CTL_LEASE_VALID: return "valid";
    case CTL_LEASE_PID_DEAD: return "pid dead";
    case CTL_LEASE_START_MISMATCH: return "start time mismatch";
    case CTL_LEASE_EXPIRED: return "expired";
    default: return "malformed";
    }
}

static void lease_path(const ctl_cfg *c, pid_t pid, char *buf, size_t n) {
    char name[64];
    snprintf(name, sizeof name, "clients/%d.json", (int)pid);
    ctl_path(c, name, buf, n);
}

int ctl_lease_write(const ctl_cfg *c, pid_t pid, const char *client, int64_t expires_at,
                    ds4_err *err) {
    ctl_ident id;
    if (!ctl_alive(pid) || ctl_ident_get(pid, &id) != 0)
        return ds4_errf(err, "--client-pid %d is not a running process", (int)pid), CTL_USAGE;
    char dir[PATH_MAX], path[PATH_MAX];
    ctl_path(c, "clients", dir, sizeof dir);
    if (ctl_mkdirs(dir, 0755) != 0)
        return ds4_errf(err, "cannot create %s: %s", dir, strerror(errno)), CTL_ERROR;
    lease_path(c, pid, path, sizeof path);
    int64_t now = ctl_now_ms(), started = now;
    json_t *old = ctl_json_read(path);
    if (old) {
        const char *oid = ctl_json_str(old, "processStartId");
        if (oid && !strcmp(oid, id.start_id)) {
            started = ctl_json_int(old, "startedAt", now);
            /* A refresh through ensure must not turn a keep-alive lease into a
             * plain one: its deadline stays. */
            if (expires_at <= 0) expires_at = ctl_json_int(old, "expiresAt", 0);
        }
        json_decref(old);
    }
    char cwd[PATH_MAX] = "", link[64], iso[40];
    snprintf(link, sizeof link, "/proc/%d/cwd", (int)pid);
    ssize_t r = readlink(link, cwd, sizeof cwd - 1);
    if (r > 0) cwd[r] = 0;
    else if (pid == getpid() && !getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    ctl_iso_ms(now, iso, sizeof iso);
    json_t *o = json_object();
    json_object_set_new(o, "managedBy", json_string(CTL_MANAGED_BY));
    json_object_set_new(o, "usesDs4", json_true());
    json_object_set_new(o, "pid", json_integer(pid));
    json_object_set_new(o, "processStart", json_string(id.start));
    json_object_set_new(o, "cwd", json_string(cwd));
    json_object_set_new(o, "startedAt", json_integer(started));
    json_object_set_new(o, "updatedAt", json_integer(now));
    json_object_set_new(o, "updatedAtIso", json_string(iso));
    json_object_set_new(o, "tool", json_string(CTL_TOOL));
    json_object_set_new(o, "processStartId", json_string(id.start_id));
    if (client && *client) json_object_set_new(o, "client", json_string(client));
    if (expires_at > 0) json_object_set_new(o, "expiresAt", json_integer(expires_at));
    int rc = ctl_json_write(path, o, 0, err);
    json_decref(o);
    return rc ? CTL_ERROR : CTL_OK;
}

int ctl_lease_release(const ctl_cfg *c, pid_t pid, ds4_err *err) {
    char path[PATH_MAX];
    lease_path(c, pid, path, sizeof path);
    json_t *o = ctl_json_read(path);
    if (!o) { unlink(path); return CTL_OK; }
    int ours = !ctl_alive(pid) ||
               ctl_same_process(pid, ctl_json_str(o, "processStart"), ctl_json_str(o, "processStartId"));
    json_decref(o);
    if (!ours)
        return ds4_errf(err, "lease %s belongs to an earlier process with pid %d; left for the watchdog", path, (int)pid), CTL_IDENTITY;
    if (unlink(path) != 0 && errno != ENOENT)
        return ds4_errf(err, "cannot delete %s: %s", path, strerror(errno)), CTL_ERROR;
    return CTL_OK;
}

int ctl_lease_judge(const ctl_cfg *c, const char *path, int ignore_age, pid_t *pid_out,
                    int64_t *age_ms_out) {
    *pid_out = 0;
    *age_ms_out = 0;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    long pidl;
    char num[32];
    size_t bl = strlen(base);
    if (bl < 6 || bl - 5 >= sizeof num || strcmp(base + bl - 5, ".json") != 0) return CTL_LEASE_MALFORMED;
    memcpy(num, base, bl - 5);
    num[bl - 5] = 0;
    if (ctl_parse_long(num, 1, 0x7fffffff, &pidl) != 0) return CTL_LEASE_MALFORMED;
    *pid_out = (pid_t)pidl;
    struct stat st;
    if (stat(path, &st) != 0) return CTL_LEASE_MALFORMED;
    int64_t now = ctl_now_ms();
    int64_t mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    *age_ms_out = now - mtime_ms;
    json_t *o = ctl_json_read(path);
    if (!o) return CTL_LEASE_MALFORMED;
    int st_out;
    const char *mb = ctl_json_str(o, "managedBy");
    const char *ps = ctl_json_str(o, "processStart");
    const char *pid_id = ctl_json_str(o, "processStartId");
    int64_t expires = ctl_json_int(o, "expiresAt", 0);
    if (!mb || strcmp(mb, CTL_MANAGED_BY) != 0 || !ctl_json_bool(o, "usesDs4")) st_out = CTL_LEASE_MALFORMED;
    else if (!ctl_alive((pid_t)pidl)) st_out = CTL_LEASE_PID_DEAD;
    else if (!(ps && *ps) || !ctl_same_process((pid_t)pidl, ps, pid_id)) st_out = CTL_LEASE_START_MISMATCH;
    else if (expires > 0) st_out = now <= expires ? CTL_LEASE_VALID : CTL_LEASE_EXPIRED;
    else if (!ignore_age && *age_ms_out > c->lease_ttl_s * 1000) st_out = CTL_LEASE_EXPIRED;
    else st_out = CTL_LEASE_VALID;
    json_decref(o);
    return st_out;
}

int ctl_leases_count(const ctl_cfg *c, int prune, int ignore_age, ctl_lease_cb cb, void *ud) {
    char dir[PATH_MAX];
    ctl_path(c, "clients", dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int valid = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        size_t nl = strlen(n);
        if (n[0] == '.' || (nl > 4 && !strcmp(n + nl - 4, ".tmp"))) continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, n);
        struct stat before;
        if (stat(path, &before) != 0 || !S_ISREG(before.st_mode)) continue;
        pid_t pid;
        int64_t age;
        int st = ctl_lease_judge(c, path, ignore_age, &pid, &age);
        if (cb) cb(ud, n, pid, st, age);
        if (st == CTL_LEASE_VALID) { valid++; continue; }
        if (!prune) continue;
        struct stat after;
        if (stat(path, &after) == 0 && after.st_ino == before.st_ino &&
            after.st_mtim.tv_sec == before.st_mtim.tv_sec && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec) {
            if (unlink(path) == 0) ctl_log_wd(c, "removed lease %s (%s)", n, ctl_lease_state_name(st));
        }
    }
    closedir(d);
    return valid;
}
