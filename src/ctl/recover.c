/* recover.c - `ds4ctl recover` (spec §21.12): the handbook's three manual recovery
 * steps (§18.1), automated and made safe.
 *
 * It only ever deletes state that is provably dead: leases judged invalid, a
 * server.json whose process is gone or is not ours, stale temp files, progress of a
 * dead lock holder, the crash-loop counter. It never signals anything unless --kill is
 * given, and then only a server whose identity (start time, executable, spawn token)
 * proves it is the one ds4ctl started. gguf/ is never touched. */
#include "ctl/ctl.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void remove_old_tmp(const char *dir, int dry, int *count) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    time_t now = time(NULL);
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".tmp") != 0) continue;
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) != 0 || now - st.st_mtime < 60) continue;
        printf("%s old temp file %s\n", dry ? "would remove" : "removing", p);
        if (!dry) unlink(p);
        (*count)++;
    }
    closedir(d);
}

static void print_lease(void *ud, const char *name, pid_t pid, int st, int64_t age) {
    int dry = *(int *)ud;
    if (st != CTL_LEASE_VALID)
        printf("%s lease %s (pid %d: %s, %llds old)\n", dry ? "would remove" : "removing", name, (int)pid,
               ctl_lease_state_name(st), (long long)(age / 1000));
}

int ctl_cmd_recover(const ctl_cfg *c, int dry_run, int kill_server, int yes) {
    printf("== status ==\n");
    fflush(stdout);
    ctl_cmd_status(c, 0);
    printf("== recovery%s ==\n", dry_run ? " (dry run: nothing is changed)" : "");
    ds4_err err = {{0}};
    ctl_lock l;
    int rc = ctl_lock_acquire(c, &l, "recover", 30, 1, &err);
    if (rc) {
        json_t *owner = NULL;
        ctl_lock_probe(c, &owner);
        fprintf(stderr, "ds4ctl: %s\n", err.msg);
        if (owner) fprintf(stderr, "ds4ctl: the lock holder is alive (pid %lld, %s); leaving everything alone\n",
                           (long long)ctl_json_int(owner, "pid", 0), ctl_json_str(owner, "operation") ? ctl_json_str(owner, "operation") : "?");
        json_decref(owner);
        return rc;
    }
    int changes = 0;
    int valid = ctl_leases_count(c, !dry_run, 0, print_lease, &dry_run);
    ctl_server s;
    ctl_server_load(c, &s);
    char why[256], p[PATH_MAX];
    int ours = 0;
    if (s.present) {
        ours = s.managed && ctl_server_is_ours(&s, why, sizeof why);
        int unmanaged_alive = !s.managed && ctl_alive(s.pid);
        if (!ours && !unmanaged_alive) {
            if (s.managed) printf("%s server.json (%s); no process is signalled\n", dry_run ? "would remove" : "removing", why);
            else printf("%s server.json of an unmanaged server that is gone\n", dry_run ? "would remove" : "removing");
            if (!dry_run) { ctl_server_remove(c); ctl_log(c, "recover: removed stale server.json (%s)", s.managed ? why : "unmanaged, gone"); }
            changes++;
        } else if (unmanaged_alive) {
            printf("server.json names an unmanaged ds4-server (pid %d); left alone, ds4ctl never stops it\n", (int)s.pid);
        }
    }
    json_t *ws = ctl_json_read(ctl_path(c, "watchdog.state.json", p, sizeof p));
    if (ws && !ctl_watchdog_running(c)) {
        printf("%s stale watchdog.state.json\n", dry_run ? "would remove" : "removing");
        if (!dry_run) unlink(p);
        changes++;
    }
    json_decref(ws);
    if (access(ctl_path(c, "last-failure.json", p, sizeof p), F_OK) == 0) {
        printf("%s the crash-loop counter\n", dry_run ? "would reset" : "resetting");
        if (!dry_run) unlink(p);
        changes++;
    }
    /* Leftovers of interrupted clones, and a support/ that is no checkout at all:
     * the first are ours and dead, the second is moved aside, never deleted. */
    DIR *hd = opendir(c->home);
    if (hd) {
        struct dirent *e;
        while ((e = readdir(hd))) {
            long pid;
            if (strncmp(e->d_name, "support.partial-", 16) != 0) continue;
            if (ctl_parse_long(e->d_name + 16, 1, 0x7fffffff, &pid) == 0 && ctl_alive((pid_t)pid)) continue;
            char d[PATH_MAX];
            snprintf(d, sizeof d, "%s/%s", c->home, e->d_name);
            printf("%s interrupted clone %s\n", dry_run ? "would remove" : "removing", d);
            if (!dry_run) {
                char *argv[] = {"rm", "-rf", "--", d, NULL};
                ds4_err e2;
                ctl_run_logged(NULL, argv, "/dev/null", NULL, &e2);
            }
            changes++;
        }
        closedir(hd);
    }
    char sup[PATH_MAX], git[PATH_MAX + 8];
    ctl_path(c, "support", sup, sizeof sup);
    snprintf(git, sizeof git, "%s/.git", sup);
    struct stat sst;
    if (!c->runtime_env[0] && lstat(sup, &sst) == 0 && S_ISDIR(sst.st_mode) && !ctl_looks_like_checkout(sup) &&
        access(git, F_OK) != 0) {
        char broken[PATH_MAX + 32];
        snprintf(broken, sizeof broken, "%s.broken.%lld", sup, (long long)time(NULL));
        printf("%s %s (not a ds4 checkout) to %s\n", dry_run ? "would move" : "moving", sup, broken);
        if (!dry_run && rename(sup, broken) != 0) fprintf(stderr, "ds4ctl: cannot rename %s: %s\n", sup, strerror(errno));
        changes++;
    }
    remove_old_tmp(c->home, dry_run, &changes);
    remove_old_tmp(ctl_path(c, "clients", p, sizeof p), dry_run, &changes);
    if (ours && valid == 0 && !ctl_watchdog_running(c)) {
        printf("%s a watchdog: the managed server (pid %d) has no client and would otherwise run forever\n",
               dry_run ? "would start" : "starting", (int)s.pid);
        if (!dry_run && ctl_watchdog_ensure(c, &err) != 0) fprintf(stderr, "ds4ctl: %s\n", err.msg);
        changes++;
    }
    rc = CTL_OK;
    if (kill_server) {
        if (!s.present) printf("--kill: no server recorded\n");
        else if (!ours) {
            printf("--kill: refusing: pid %d is not a verified ds4ctl-managed server (%s)\n", (int)s.pid, s.managed ? why : "unmanaged");
            rc = CTL_IDENTITY;
        } else {
            char args[2048];
            ctl_ident id;
            if (ctl_cmdline(s.pid, args, sizeof args) != 0) args[0] = 0;
            if (ctl_ident_get(s.pid, &id) != 0) id.start[0] = 0;
            printf("--kill: pid %d, started %s, command: %s\n", (int)s.pid, id.start, args);
            int go = yes;
            if (!go && !dry_run && isatty(0)) {
                printf("type the pid to confirm: ");
                fflush(stdout);
                char line[64];
                go = fgets(line, sizeof line, stdin) && atoi(line) == (int)s.pid;
            } else if (!go && !dry_run) printf("--kill needs --yes when stdin is not a terminal\n");
            if (go && !dry_run) {
                rc = ctl_stop_locked(c, &l, &s, 0, 0, &err);
                if (rc) fprintf(stderr, "ds4ctl: %s\n", err.msg);
                else printf("stopped pid %d\n", (int)s.pid);
            } else if (!go && !dry_run) rc = CTL_ERROR;
        }
    }
    ctl_server_free(&s);
    ctl_lock_release(c, &l);
    if (!changes && rc == CTL_OK) printf("nothing to clean\n");
    return rc;
}
