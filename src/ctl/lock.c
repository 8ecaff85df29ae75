/* lock.c - the lifecycle lock (spec §21.5): one process at a time prepares, spawns or
 * stops the server.
 *
 * The mutex is flock() on <home>/lock.flock. The kernel drops it when the holder dies,
 * so there is no time-based staleness and a live holder is never broken (Part A's
 * mkdir lock was broken after 60 s, §5). The lock/ directory with owner.json is kept
 * for humans, waiters and the handbook's mkdir-based recovery snippet: a lock/ made by
 * such a non-flock holder is respected while its process lives. owner.json is
 * rewritten every 10 s while held so old extensions' 60 s mtime rule never fires. */
#include "ctl/ctl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static void rm_lock_dir(const ctl_cfg *c) {
    char d[PATH_MAX], f[PATH_MAX];
    ctl_path(c, "lock", d, sizeof d);
    DIR *dir = opendir(d);
    if (dir) {
        struct dirent *e;
        while ((e = readdir(dir))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(f, sizeof f, "%s/%s", d, e->d_name);
            unlink(f);
        }
        closedir(dir);
    }
    rmdir(d);
}

static int write_owner(const ctl_cfg *c, ctl_lock *l) {
    ctl_ident id;
    if (ctl_ident_get(getpid(), &id) != 0) { snprintf(id.start, sizeof id.start, "unknown"); id.start_id[0] = 0; }
    json_t *o = json_object();
    json_object_set_new(o, "managedBy", json_string(CTL_MANAGED_BY));
    json_object_set_new(o, "pid", json_integer(getpid()));
    json_object_set_new(o, "processStart", json_string(id.start));
    json_object_set_new(o, "createdAt", json_integer(l->created_ms));
    json_object_set_new(o, "tool", json_string(CTL_TOOL));
    json_object_set_new(o, "nonce", json_string(l->nonce));
    json_object_set_new(o, "operation", json_string(l->op));
    json_object_set_new(o, "updatedAt", json_integer(ctl_now_ms()));
    json_object_set_new(o, "processStartId", json_string(id.start_id));
    char p[PATH_MAX];
    int rc = ctl_json_write(ctl_path(c, "lock/owner.json", p, sizeof p), o, 0, NULL);
    json_decref(o);
    l->refreshed_ms = ctl_now_ms();
    return rc;
}

/* With the flock held: may we take lock/? 1 yes (cleared), 0 respect a foreign holder. */
static int clear_leftover(const ctl_cfg *c) {
    char d[PATH_MAX], f[PATH_MAX];
    ctl_path(c, "lock", d, sizeof d);
    struct stat st;
    if (lstat(d, &st) != 0) return 1;
    json_t *o = ctl_json_read(ctl_path(c, "lock/owner.json", f, sizeof f));
    int take;
    if (o) {
        const char *tool = ctl_json_str(o, "tool");
        pid_t pid = (pid_t)ctl_json_int(o, "pid", 0);
        if (tool && !strcmp(tool, CTL_TOOL)) take = 1; /* its writer would still hold the flock */
        else if (pid > 0 && ctl_alive(pid)) {
            const char *ps = ctl_json_str(o, "processStart");
            const char *pid_id = ctl_json_str(o, "processStartId");
            /* A living holder with a start time is checked against it. One without
             * (an old extension whose ps failed wrote "unknown") cannot be proved
             * alive or reused; fall back to Part A's 60-second rule for it only. */
            if ((ps && *ps && strcmp(ps, "unknown") != 0) || (pid_id && *pid_id))
                take = !ctl_same_process(pid, ps, pid_id);
            else
                take = ctl_now_ms() / 1000 - (int64_t)st.st_mtime > 60;
        } else take = 1;
        json_decref(o);
    } else {
        take = ctl_now_ms() / 1000 - (int64_t)st.st_mtime > 60;
    }
    if (take) {
        if (S_ISDIR(st.st_mode)) rm_lock_dir(c);
        else unlink(d);
    }
    return take;
}

int ctl_lock_acquire(const ctl_cfg *c, ctl_lock *l, const char *op, double timeout_s,
                     int quiet, ds4_err *err) {
    memset(l, 0, sizeof *l);
    l->fd = -1;
    if (ctl_mkdirs(c->home, 0755) != 0)
        return ds4_errf(err, "cannot create state directory %s: %s", c->home, strerror(errno)), CTL_ERROR;
    char p[PATH_MAX];
    ctl_path(c, "lock.flock", p, sizeof p);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return ds4_errf(err, "cannot open lock file %s: %s", p, strerror(errno)), CTL_ERROR;
    int64_t deadline = ctl_mono_ms() + (int64_t)(timeout_s * 1000);
    int64_t last_wait_ev = 0, last_relayed = 0;
    unsigned seed = (unsigned)getpid() ^ (unsigned)ctl_now_ms();
    for (;;) {
        if (ctl_cancelled) { close(fd); return ds4_errf(err, "ds4 startup cancelled"), CTL_CANCELLED; }
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            if (clear_leftover(c)) break;
            flock(fd, LOCK_UN);
        } else if (errno != EWOULDBLOCK && errno != EINTR) {
            int e = errno;
            close(fd);
            return ds4_errf(err, "flock(%s) failed: %s (is DS4_HOME on a filesystem without locks?)", p, strerror(e)), CTL_ERROR;
        }
        if (ctl_mono_ms() >= deadline) {
            char lp[PATH_MAX];
            json_t *o = ctl_json_read(ctl_path(c, "lock/owner.json", lp, sizeof lp));
            ds4_errf(err, "Timed out waiting for ds4 lifecycle lock at %s/lock (held by pid %lld, operation %s)",
                     c->home, (long long)ctl_json_int(o, "pid", 0),
                     ctl_json_str(o, "operation") ? ctl_json_str(o, "operation") : "unknown");
            json_decref(o);
            close(fd);
            return CTL_LOCK_TIMEOUT;
        }
        if (!quiet && ctl_mono_ms() - last_wait_ev >= 750) {
            char lp[PATH_MAX];
            json_t *o = ctl_json_read(ctl_path(c, "lock/owner.json", lp, sizeof lp));
            if (o) {
                pid_t holder = (pid_t)ctl_json_int(o, "pid", 0);
                ctl_ev_waiting("lock", holder,
                               ctl_json_str(o, "operation") ? ctl_json_str(o, "operation") : "unknown",
                               ctl_json_int(o, "createdAt", 0));
                json_decref(o);
                last_wait_ev = ctl_mono_ms();
                /* Relay the holder's progress (an 87 GB download takes a while). */
                json_t *pr = ctl_json_read(ctl_path(c, "progress.json", lp, sizeof lp));
                int64_t at = ctl_json_int(pr, "updatedAt", 0);
                if (pr && ctl_json_int(pr, "pid", 0) == holder && at != last_relayed && ctl_json_str(pr, "message")) {
                    const char *ph = ctl_json_str(pr, "phase");
                    ctl_ev_progress_text(ph ? ph : "lock", ctl_json_str(pr, "message"), 1);
                    last_relayed = at;
                }
                json_decref(pr);
            }
        }
        ctl_sleep_ms(100 + (long)(rand_r(&seed) % 151));
    }
    char d[PATH_MAX];
    ctl_path(c, "lock", d, sizeof d);
    if (mkdir(d, 0700) != 0 && errno != EEXIST) {
        int e = errno;
        flock(fd, LOCK_UN);
        close(fd);
        return ds4_errf(err, "cannot create %s: %s", d, strerror(e)), CTL_ERROR;
    }
    l->fd = fd;
    l->held = 1;
    ctl_random_hex(l->nonce, 16);
    snprintf(l->op, sizeof l->op, "%s", op);
    l->created_ms = ctl_now_ms();
    write_owner(c, l);
    char pp[PATH_MAX];
    ctl_path(c, "progress.json", pp, sizeof pp);
    unlink(pp); /* a dead holder's */
    ctl_events_share_progress(pp);
    return CTL_OK;
}

void ctl_lock_tick(const ctl_cfg *c, ctl_lock *l) {
    if (l && l->held && ctl_now_ms() - l->refreshed_ms >= 10000) write_owner(c, l);
}

void ctl_lock_release(const ctl_cfg *c, ctl_lock *l) {
    if (!l || !l->held) return;
    char p[PATH_MAX];
    ctl_events_share_progress(NULL);
    unlink(ctl_path(c, "progress.json", p, sizeof p));
    json_t *o = ctl_json_read(ctl_path(c, "lock/owner.json", p, sizeof p));
    const char *nonce = ctl_json_str(o, "nonce");
    /* Only remove what is ours: someone may have cleaned up and re-taken it by hand. */
    if (!o || (nonce && !strcmp(nonce, l->nonce))) rm_lock_dir(c);
    json_decref(o);
    flock(l->fd, LOCK_UN);
    close(l->fd);
    l->fd = -1;
    l->held = 0;
}

int ctl_lock_probe(const ctl_cfg *c, json_t **owner) {
    char p[PATH_MAX];
    if (owner) *owner = ctl_json_read(ctl_path(c, "lock/owner.json", p, sizeof p));
    int fd = open(ctl_path(c, "lock.flock", p, sizeof p), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int held = flock(fd, LOCK_EX | LOCK_NB) != 0;
    if (!held) flock(fd, LOCK_UN);
    close(fd);
    return held;
}
