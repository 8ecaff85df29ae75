/* watchdog.c - `ds4ctl watch` (spec §21.11): stop the managed server once no client
 * has held a lease for the idle grace.
 *
 * One watchdog per state dir, enforced by flock on watchdog.lock for its whole life;
 * anyone can probe liveness with a non-blocking flock (succeeds = no watchdog), which
 * is how ensure and every lease heartbeat replace a killed watchdog. The idle grace
 * (DS4_IDLE_GRACE_S, default 60 s) makes the handbook's "about 60 seconds after the
 * last pi exits" true and lets a quickly relaunched client reuse the warm server.
 * System sleep is detected by comparing the wall clock with a clock that stops while
 * asleep; after a wake, age-based lease expiry is suspended so sleeping clients can
 * refresh before being judged. */
#include "ctl/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#ifdef __APPLE__
#include <mach-o/dyld.h>
#endif

int ctl_watchdog_running(const ctl_cfg *c) {
    char p[PATH_MAX];
    int fd = open(ctl_path(c, "watchdog.lock", p, sizeof p), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0; /* never created: no watchdog ever ran here */
    int busy = flock(fd, LOCK_EX | LOCK_NB) != 0;
    close(fd); /* closing drops a probe lock we may just have taken */
    return busy;
}

static int self_exe(char *buf, size_t n) {
    const char *env = getenv("DS4CTL");
#ifdef __APPLE__
    uint32_t sz = (uint32_t)n;
    char tmp[PATH_MAX];
    if (_NSGetExecutablePath(tmp, &sz) == 0 && realpath(tmp, buf)) return 0;
#else
    ssize_t r = readlink("/proc/self/exe", buf, n - 1);
    if (r > 0) {
        buf[r] = 0;
        const char *b = strrchr(buf, '/');
        if (b && !strncmp(b + 1, "ds4ctl", 6)) return 0;
    }
#endif
    if (env && *env) { snprintf(buf, n, "%s", env); return 0; }
    return -1;
}

int ctl_watchdog_ensure(const ctl_cfg *c, ds4_err *err) {
    if (ctl_watchdog_running(c)) return 0;
    char exe[PATH_MAX], logp[PATH_MAX];
    if (self_exe(exe, sizeof exe) != 0)
        return ds4_errf(err, "cannot find the ds4ctl executable to start the watchdog; set DS4CTL");
    char *argv[] = {exe, "--home", (char *)c->home, "watch", NULL};
    char home_env[PATH_MAX + 16];
    snprintf(home_env, sizeof home_env, "DS4CTL_HOME=%s", c->home);
    const char *add[] = {home_env, NULL};
    pid_t pid;
    ds4_err e2 = {{0}};
    if (ctl_spawn_detached(c->home, argv, ctl_path(c, "log", logp, sizeof logp), add, &pid, &e2) != 0)
        return ds4_errf(err, "cannot start the watchdog: %s", e2.msg);
    /* Give it a moment to take its flock so the next probe sees it. */
    for (int i = 0; i < 40 && !ctl_watchdog_running(c) && ctl_alive(pid); i++) ctl_sleep_ms(25);
    return 0;
}

static void write_state(const ctl_cfg *c) {
    ctl_ident id;
    if (ctl_ident_get(getpid(), &id) != 0) memset(&id, 0, sizeof id);
    json_t *o = json_object();
    json_object_set_new(o, "managedBy", json_string(CTL_MANAGED_BY));
    json_object_set_new(o, "tool", json_string(CTL_TOOL));
    json_object_set_new(o, "pid", json_integer(getpid()));
    json_object_set_new(o, "processStart", json_string(id.start));
    json_object_set_new(o, "processStartId", json_string(id.start_id));
    json_object_set_new(o, "startedAt", json_integer(ctl_now_ms()));
    json_object_set_new(o, "pollMs", json_integer(c->poll_s * 1000));
    json_object_set_new(o, "leaseTtlMs", json_integer(c->lease_ttl_s * 1000));
    json_object_set_new(o, "idleGraceMs", json_integer(c->idle_grace_s * 1000));
    char p[PATH_MAX];
    ctl_json_write(ctl_path(c, "watchdog.state.json", p, sizeof p), o, 0, NULL);
    json_decref(o);
}

/* Forget a managed server that died on its own (crash, OOM, kill by a human). */
static void forget_dead_server(const ctl_cfg *c) {
    ctl_server s;
    ctl_server_load(c, &s);
    char why[256];
    if (s.present && s.managed && s.pid > 0 && !ctl_server_is_ours(&s, why, sizeof why)) {
        ctl_lock l;
        if (ctl_lock_acquire(c, &l, "watch", 5, 1, NULL) == CTL_OK) {
            ctl_server s2;
            ctl_server_load(c, &s2);
            if (s2.present && s2.pid == s.pid && !ctl_server_is_ours(&s2, why, sizeof why)) {
                ctl_server_remove(c);
                if (s2.stopping) ctl_log_wd(c, "ds4-server pid=%d stopped", (int)s.pid);
                else ctl_log_wd(c, "ds4-server pid=%d exited unexpectedly (%s)", (int)s.pid, why);
            }
            ctl_server_free(&s2);
            ctl_lock_release(c, &l);
        }
    }
    ctl_server_free(&s);
}

int ctl_slept(int64_t prev_wall, int64_t prev_mono, int64_t wall, int64_t mono) {
    return (wall - prev_wall) - (mono - prev_mono) > 10000;
}

int ctl_watch(const ctl_cfg *c) {
    if (ctl_mkdirs(c->home, 0755) != 0) { fprintf(stderr, "ds4ctl watch: cannot create %s\n", c->home); return CTL_ERROR; }
    char p[PATH_MAX];
    int wfd = open(ctl_path(c, "watchdog.lock", p, sizeof p), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (wfd < 0) { fprintf(stderr, "ds4ctl watch: cannot open %s: %s\n", p, strerror(errno)); return CTL_ERROR; }
    if (flock(wfd, LOCK_EX | LOCK_NB) != 0) { close(wfd); return CTL_OK; } /* another one runs */
    ctl_install_cancel_handlers();
    write_state(c);
    ctl_log_wd(c, "started for %s (pid %d, idle grace %lds)", c->home, (int)getpid(), c->idle_grace_s);
    int64_t idle_since = 0, suspend_until = 0;
    int said_clients = 0;
    int64_t prev_wall = ctl_now_ms(), prev_mono = ctl_mono_ms();
    int rc = CTL_OK;
    while (!ctl_cancelled) {
        ctl_sleep_ms(c->poll_s * 1000);
        if (ctl_cancelled) break;
        int64_t wall = ctl_now_ms(), mono = ctl_mono_ms();
        if (ctl_slept(prev_wall, prev_mono, wall, mono)) {
            suspend_until = mono + (c->lease_ttl_s + 20) * 1000;
            ctl_log_wd(c, "system sleep detected (%llds); lease expiry suspended for %llds",
                       (long long)((wall - prev_wall) / 1000), (long long)((suspend_until - mono) / 1000));
        }
        prev_wall = wall; prev_mono = mono;
        int ignore_age = mono < suspend_until;
        int n = ctl_leases_count(c, 1, ignore_age, NULL, NULL);
        forget_dead_server(c);
        if (n > 0) { idle_since = 0; said_clients = 0; continue; }
        if (!idle_since) {
            idle_since = mono;
            ctl_log_wd(c, "no active ds4 leases; idle grace %lds", c->idle_grace_s);
        }
        if (mono - idle_since < c->idle_grace_s * 1000) continue;
        ctl_server s;
        ctl_server_load(c, &s);
        char why[256];
        int ours = s.present && s.managed && ctl_server_is_ours(&s, why, sizeof why);
        if (ours && ctl_established(s.pid) > 0) {
            if (!said_clients) ctl_log_wd(c, "no active ds4 leases, but ds4-server still has clients; waiting");
            said_clients = 1;
            ctl_server_free(&s);
            continue;
        }
        ctl_server_free(&s);
        ctl_lock l;
        if (ctl_lock_acquire(c, &l, "watch", 5, 1, NULL) != CTL_OK) continue;
        if (ctl_leases_count(c, 0, ignore_age, NULL, NULL) > 0) { ctl_lock_release(c, &l); continue; }
        ctl_server_load(c, &s);
        ours = s.present && s.managed && ctl_server_is_ours(&s, why, sizeof why);
        if (!ours) {
            if (s.present && !ctl_alive(s.pid)) ctl_server_remove(c);
            if (!s.present || s.managed) ctl_log_wd(c, "no active ds4-server");
            ctl_server_free(&s);
            flock(wfd, LOCK_UN);
            close(wfd);
            ctl_lock_release(c, &l);
            ctl_log_wd(c, "exiting");
            return CTL_OK;
        }
        ds4_err err = {{0}};
        int r = ctl_stop_locked(c, &l, &s, 1, 1, &err);
        ctl_server_free(&s);
        if (r == 1) { ctl_lock_release(c, &l); idle_since = 0; continue; }
        /* Release watchdog.lock first: an ensure that takes the lifecycle lock next
         * must see "no watchdog" and start a fresh one. */
        flock(wfd, LOCK_UN);
        close(wfd);
        ctl_lock_release(c, &l);
        ctl_log_wd(c, "exiting");
        return r == CTL_OK ? CTL_OK : r;
    }
    flock(wfd, LOCK_UN);
    close(wfd);
    ctl_log_wd(c, "exiting");
    return rc;
}
