/* stop.c - stopping the managed server (spec §21.11 steps 5-7, §21.12 `stop`).
 *
 * Shared by the watchdog and `ds4ctl stop`. The order matters: `stopping` is written
 * into server.json *before* the last lease count, and ensure writes its lease *before*
 * it reads server.json, so one side always sees the other (no request is sent to a
 * server about to get SIGTERM). Identity is re-verified right before each signal and
 * on Linux the signal goes through a pidfd, so a pid reused in between is never hit. */
#include "ctl/ctl.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif

static int send_sig(const ctl_server *s, int sig, char *why, size_t n) {
    if (!ctl_server_is_ours(s, why, n)) return -2;
#if defined(__linux__) && defined(SYS_pidfd_open) && defined(SYS_pidfd_send_signal)
    int pfd = (int)syscall(SYS_pidfd_open, s->pid, 0);
    if (pfd >= 0) {
        /* The pidfd pins the process; re-check that it is still the one we verified. */
        if (!ctl_server_is_ours(s, why, n)) { close(pfd); return -2; }
        int r = (int)syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0);
        int e = errno;
        close(pfd);
        if (r != 0) snprintf(why, n, "%s", strerror(e));
        return r == 0 ? 0 : -1;
    }
#endif
    if (kill(s->pid, sig) != 0) { snprintf(why, n, "%s", strerror(errno)); return -1; }
    return 0;
}

int ctl_stop_locked(const ctl_cfg *c, ctl_lock *l, ctl_server *s, int recount, int watchdog,
                    ds4_err *err) {
    char why[256];
    if (ctl_server_mark_stopping(c, s, 1) != 0)
        return ds4_errf(err, "cannot rewrite %s/server.json", c->home), CTL_ERROR;
    if (recount && ctl_leases_count(c, 0, 0, NULL, NULL) > 0) {
        ctl_server_mark_stopping(c, s, 0);
        if (watchdog) ctl_log_wd(c, "a lease appeared; not stopping");
        return 1;
    }
    if (watchdog) ctl_log_wd(c, "no active ds4 leases; stopping server");
    int r = send_sig(s, SIGTERM, why, sizeof why);
    if (r == -2) {
        ctl_log_wd(c, "refusing to signal pid=%d: %s", (int)s->pid, why);
        if (!ctl_alive(s->pid)) { ctl_server_remove(c); return CTL_OK; }
        return ds4_errf(err, "refusing to signal pid %d: %s", (int)s->pid, why), CTL_IDENTITY;
    }
    if (r != 0) {
        ctl_log_wd(c, "SIGTERM failed for ds4-server pid=%d", (int)s->pid);
        if (!ctl_alive(s->pid)) { ctl_server_remove(c); return CTL_OK; }
        return ds4_errf(err, "SIGTERM failed for ds4-server pid %d: %s", (int)s->pid, why), CTL_ERROR;
    }
    ctl_log_wd(c, "sent SIGTERM to ds4-server pid=%d", (int)s->pid);
    int64_t t0 = ctl_mono_ms();
    while (ctl_alive(s->pid) && ctl_mono_ms() - t0 < c->shutdown_grace_s * 1000) {
        ctl_sleep_ms(250);
        ctl_lock_tick(c, l);
    }
    if (ctl_alive(s->pid)) {
        ctl_log_wd(c, "ds4-server pid=%d still alive after %lds; sending SIGKILL", (int)s->pid, c->shutdown_grace_s);
        if (send_sig(s, SIGKILL, why, sizeof why) == -2)
            ctl_log_wd(c, "refusing to SIGKILL pid=%d: %s", (int)s->pid, why);
        t0 = ctl_mono_ms();
        while (ctl_alive(s->pid) && ctl_mono_ms() - t0 < 5000) ctl_sleep_ms(100);
    }
    if (ctl_alive(s->pid)) {
        json_object_set_new(s->j, "killFailedAt", json_integer(ctl_now_ms()));
        ctl_server_write(c, s->j, NULL);
        ctl_log_wd(c, "ds4-server pid=%d did not exit after SIGKILL", (int)s->pid);
        return ds4_errf(err, "ds4-server pid %d did not exit even after SIGKILL", (int)s->pid), CTL_ERROR;
    }
    ctl_server_remove(c);
    ctl_log_wd(c, "ds4-server pid=%d stopped", (int)s->pid);
    return CTL_OK;
}

struct lease_list { char text[2048]; };

static void list_cb(void *ud, const char *name, pid_t pid, int st, int64_t age) {
    struct lease_list *ll = ud;
    (void)name;
    if (st != CTL_LEASE_VALID) return;
    size_t o = strlen(ll->text);
    snprintf(ll->text + o, sizeof ll->text - o, "%s%d (%llds old)", o ? ", " : "", (int)pid,
             (long long)(age / 1000));
}

int ctl_cmd_stop(const ctl_cfg *cfg, int force, long timeout_s) {
    ctl_cfg c = *cfg;
    if (timeout_s >= 0) c.shutdown_grace_s = timeout_s;
    ds4_err err = {{0}};
    ctl_lock l;
    int rc = ctl_lock_acquire(&c, &l, "stop", 30, 0, &err);
    if (rc) { ctl_ev_error(rc, err.msg, NULL); return rc; }
    ctl_server s;
    ctl_server_load(&c, &s);
    char why[256];
    if (!s.present) {
        ctl_ev_status("stop", "no managed ds4-server");
        rc = CTL_OK;
    } else if (!s.managed) {
        snprintf(err.msg, sizeof err.msg,
                 "the ds4-server on %s:%ld (pid %d) was not started by ds4ctl; stop it yourself",
                 c.host, c.port, (int)s.pid);
        if (!ctl_alive(s.pid)) { ctl_server_remove(&c); ctl_ev_status("stop", "no managed ds4-server"); rc = CTL_OK; }
        else { ctl_ev_error(CTL_IDENTITY, err.msg, NULL); rc = CTL_IDENTITY; }
    } else if (!ctl_server_is_ours(&s, why, sizeof why)) {
        ctl_server_remove(&c);
        ctl_log(&c, "stale server.json (%s) removed by stop", why);
        ctl_ev_status("stop", "no managed ds4-server (stale record removed: %s)", why);
        rc = CTL_OK;
    } else {
        struct lease_list ll = {""};
        int n = ctl_leases_count(&c, 0, 0, list_cb, &ll);
        if (n > 0 && !force) {
            snprintf(err.msg, sizeof err.msg, "refusing to stop: %d valid lease(s) exist (pid %s); use --force", n, ll.text);
            ctl_ev_error(CTL_ERROR, err.msg, NULL);
            rc = CTL_ERROR;
        } else {
            ctl_ev_status("stop", "stopping ds4-server pid %d", (int)s.pid);
            rc = ctl_stop_locked(&c, &l, &s, !force, 0, &err);
            if (rc == 1) { ctl_ev_error(CTL_ERROR, "a lease appeared while stopping; not stopped", NULL); rc = CTL_ERROR; }
            else if (rc) ctl_ev_error(rc, err.msg, NULL);
            else ctl_ev_status("stop", "ds4-server pid %d stopped", (int)s.pid);
        }
    }
    ctl_server_free(&s);
    ctl_lock_release(&c, &l);
    return rc;
}
