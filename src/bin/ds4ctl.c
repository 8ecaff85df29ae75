/* ds4ctl - the ds4 lifecycle manager's command line (spec/lifecycle.md §21.2).
 *
 * This file only parses arguments and dispatches; each command lives in src/ctl/.
 * Exit codes are the stable table of §21.2 (see enum ctl_exit). */
#include "ctl/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fputs("usage: ds4ctl [--home DIR] [--json] [--events jsonl|text] [-q] <command> [options]\n"
          "\n"
          "commands:\n"
          "  ensure --client-pid PID [--no-wait]   lease + watchdog + prepare + spawn + wait ready\n"
          "  start [--hold | --keep-alive DURATION] [--no-wait]\n"
          "                                        same as ensure, for users without pi\n"
          "  stop [--force] [--timeout SECONDS]    stop the managed server (identity-verified)\n"
          "  status [--json]                       read-only diagnosis\n"
          "  lease --client-pid PID [--release]    create/refresh (or release) the lease of PID\n"
          "  release --client-pid PID              delete the lease of PID\n"
          "  watch                                 run the watchdog (normally spawned by ensure)\n"
          "  logs [-n LINES] [-f] [--bytes N] [--raw]\n"
          "  recover [--dry-run] [--kill [--yes]]  clean dead state; never kills unverified processes\n"
          "  prepare                               checkout + build + download, no spawn\n"
          "  download [--verify] [--dir DIR]       model download only (resumable)\n"
          "  config [--json]                       effective configuration and server argv\n"
          "\n"
          "State lives in $DS4_HOME (default ~/.pi/ds4). See docs/ds4ctl.md.\n", f);
}

static int bad_usage(const char *fmt, const char *arg) {
    fprintf(stderr, "ds4ctl: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    usage(stderr);
    return CTL_USAGE;
}

static int parse_pid(const char *s, pid_t *out) {
    long v;
    if (ctl_parse_long(s, 1, 0x7fffffff, &v) != 0) return -1;
    *out = (pid_t)v;
    return 0;
}

/* start --keep-alive: a small detached keeper holds a lease until the deadline. */
static pid_t fork_keeper(const ctl_cfg *c, long seconds) {
    int pfd[2];
    if (pipe(pfd) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        setsid();
        close(pfd[0]);
        int dn = open("/dev/null", O_RDWR);
        if (dn >= 0) { dup2(dn, 0); dup2(dn, 1); dup2(dn, 2); if (dn > 2) close(dn); }
        ctl_install_cancel_handlers();
        int64_t until = ctl_now_ms() + seconds * 1000;
        ctl_lease_write(c, getpid(), "keep-alive", until, NULL);
        char ok = 1;
        if (write(pfd[1], &ok, 1) != 1) _exit(1);
        close(pfd[1]);
        while (!ctl_cancelled && ctl_now_ms() < until) {
            int64_t left = until - ctl_now_ms();
            ctl_sleep_ms(left < 10000 ? (long)left + 1 : 10000);
            if (ctl_now_ms() < until) {
                ctl_lease_write(c, getpid(), "keep-alive", until, NULL);
                if (!ctl_watchdog_running(c)) ctl_watchdog_ensure(c, NULL);
            }
        }
        ctl_lease_release(c, getpid(), NULL);
        _exit(0);
    }
    close(pfd[1]);
    char ok = 0;
    if (read(pfd[0], &ok, 1) != 1) ok = 0;
    close(pfd[0]);
    return ok ? pid : -1;
}

int main(int argc, char **argv) {
    const char *home = NULL;
    int json = 0, quiet = 0, events = -1, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--home") && i + 1 < argc) home = argv[++i];
        else if (!strncmp(a, "--home=", 7)) home = a + 7;
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--events") && i + 1 < argc) {
            const char *m = argv[++i];
            if (!strcmp(m, "jsonl")) events = CTL_OUT_JSONL;
            else if (!strcmp(m, "text")) events = CTL_OUT_TEXT;
            else return bad_usage("--events %s: expected jsonl or text", m);
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--version")) { printf("ds4ctl %s\n", CTL_VERSION); return 0; }
        else return bad_usage("unknown option %s", a);
    }
    if (i >= argc) { usage(stderr); return CTL_USAGE; }
    const char *cmd = argv[i++];
    if (events < 0) events = isatty(1) ? CTL_OUT_TEXT : CTL_OUT_JSONL;

    pid_t client = 0;
    int no_wait = 0, force = 0, follow = 0, raw = 0, dry = 0, kill_srv = 0, yes = 0, verify = 0, hold = 0,
        release = 0;
    long timeout = -1, lines = 0, bytes = 0, keep_alive = -1;
    const char *dir = NULL;
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--client-pid") && next) { if (parse_pid(argv[++i], &client)) return bad_usage("--client-pid %s: expected a pid", argv[i]); }
        else if (!strcmp(a, "--no-wait")) no_wait = 1;
        else if (!strcmp(a, "--force")) force = 1;
        else if (!strcmp(a, "--timeout") && next) { if (ctl_parse_long(argv[++i], 0, 86400, &timeout)) return bad_usage("--timeout %s: expected seconds", argv[i]); }
        else if (!strcmp(a, "-n") && next) { if (ctl_parse_long(argv[++i], 1, 10000000, &lines)) return bad_usage("-n %s: expected a line count", argv[i]); }
        else if (!strcmp(a, "--bytes") && next) { if (ctl_parse_long(argv[++i], 1, 1L << 40, &bytes)) return bad_usage("--bytes %s: expected a byte count", argv[i]); }
        else if (!strcmp(a, "-f") || !strcmp(a, "--follow")) follow = 1;
        else if (!strcmp(a, "--raw")) raw = 1;
        else if (!strcmp(a, "--dry-run")) dry = 1;
        else if (!strcmp(a, "--kill")) kill_srv = 1;
        else if (!strcmp(a, "--yes")) yes = 1;
        else if (!strcmp(a, "--verify")) verify = 1;
        else if (!strcmp(a, "--hold")) hold = 1;
        else if (!strcmp(a, "--release")) release = 1;
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--dir") && next) dir = argv[++i];
        else if (!strcmp(a, "--keep-alive") && next) { if (ctl_parse_duration(argv[++i], &keep_alive)) return bad_usage("--keep-alive %s: expected a duration like 90s, 15m, 8h", argv[i]); }
        else if (!strcmp(a, "--foreground")) {}
        else return bad_usage("unknown option %s", a);
    }

    ctl_cfg c;
    ds4_err err = {{0}};
    int rc = ctl_cfg_load(&c, home, &err);
    if (rc) { fprintf(stderr, "ds4ctl: %s\n", err.msg); return rc; }
    ctl_events_init(events, quiet);

    if (!strcmp(cmd, "ensure")) {
        if (client <= 0) return bad_usage("%s needs --client-pid PID", cmd);
        ctl_install_cancel_handlers();
        return ctl_cmd_ensure(&c, client, "pi", no_wait);
    }
    if (!strcmp(cmd, "start")) {
        ctl_install_cancel_handlers();
        if (hold && keep_alive >= 0) return bad_usage("%s: --hold and --keep-alive exclude each other", cmd);
        if (keep_alive >= 0) {
            pid_t k = fork_keeper(&c, keep_alive);
            if (k <= 0) { fprintf(stderr, "ds4ctl: cannot start the keep-alive process\n"); return CTL_ERROR; }
            return ctl_cmd_ensure(&c, k, "keep-alive", no_wait);
        }
        if (!hold) return ctl_cmd_ensure(&c, 0, NULL, no_wait);
        rc = ctl_cmd_ensure(&c, getpid(), "hold", no_wait);
        if (rc) { ctl_lease_release(&c, getpid(), NULL); return rc; }
        if (!quiet && ctl_events_mode() == CTL_OUT_TEXT) { printf("ds4ctl: holding a lease; Ctrl-C releases it\n"); fflush(stdout); }
        while (!ctl_cancelled) {
            for (int s = 0; s < 100 && !ctl_cancelled; s++) ctl_sleep_ms(100);
            if (ctl_cancelled) break;
            ctl_lease_write(&c, getpid(), "hold", 0, NULL);
            if (!ctl_watchdog_running(&c)) ctl_watchdog_ensure(&c, NULL);
        }
        ctl_lease_release(&c, getpid(), NULL);
        return CTL_OK;
    }
    if (!strcmp(cmd, "stop")) return ctl_cmd_stop(&c, force, timeout);
    if (!strcmp(cmd, "status")) return ctl_cmd_status(&c, json);
    if (!strcmp(cmd, "config")) return ctl_cmd_config(&c, json);
    if (!strcmp(cmd, "lease") || !strcmp(cmd, "release")) {
        if (client <= 0) return bad_usage("%s needs --client-pid PID", cmd);
        if (!strcmp(cmd, "release") || release) {
            rc = ctl_lease_release(&c, client, &err);
            if (rc) fprintf(stderr, "ds4ctl: %s\n", err.msg);
            return rc;
        }
        rc = ctl_lease_write(&c, client, "pi", 0, &err);
        if (rc) { fprintf(stderr, "ds4ctl: %s\n", err.msg); return rc; }
        /* A heartbeat also replaces a killed watchdog while a server or setup exists. */
        ctl_server s;
        ctl_server_load(&c, &s);
        int need = (s.present && s.managed) || ctl_lock_probe(&c, NULL);
        ctl_server_free(&s);
        if (need && !ctl_watchdog_running(&c) && ctl_watchdog_ensure(&c, &err) != 0)
            fprintf(stderr, "ds4ctl: %s\n", err.msg);
        if (json) printf("{\"pid\": %d, \"lease\": \"ok\"}\n", (int)client);
        return CTL_OK;
    }
    if (!strcmp(cmd, "watch")) return ctl_watch(&c);
    if (!strcmp(cmd, "logs")) return ctl_cmd_logs(&c, lines, follow, bytes, raw);
    if (!strcmp(cmd, "recover")) return ctl_cmd_recover(&c, dry, kill_srv, yes);
    if (!strcmp(cmd, "prepare") || !strcmp(cmd, "download")) {
        ctl_install_cancel_handlers();
        ctl_lock l;
        int is_dl = !strcmp(cmd, "download");
        const char *in_script = getenv("DS4CTL_IN_SCRIPT");
        if (in_script && !strcmp(in_script, "1")) {
            fprintf(stderr, "ds4ctl: %s called from DS4_DOWNLOAD_SCRIPT while ds4ctl holds the lifecycle lock; "
                            "unset DS4_DOWNLOAD_SCRIPT to use the built-in downloader\n", cmd);
            return CTL_USAGE;
        }
        if ((rc = ctl_lock_acquire(&c, &l, cmd, (double)c.lock_timeout_s, 0, &err))) { ctl_ev_error(rc, err.msg, NULL); return rc; }
        if (is_dl) {
            char rt[PATH_MAX];
            if (dir) {
                if (!realpath(dir, rt)) { ctl_lock_release(&c, &l); fprintf(stderr, "ds4ctl: --dir %s: %s\n", dir, strerror(errno)); return CTL_USAGE; }
            } else {
                ctl_runtime_dir(&c, rt, sizeof rt);
                if (ctl_mkdirs(rt, 0755) != 0) { ctl_lock_release(&c, &l); fprintf(stderr, "ds4ctl: cannot create %s: %s\n", rt, strerror(errno)); return CTL_ERROR; }
            }
            if (c.download_script[0] == 0) rc = ctl_download(&c, &l, rt, verify, &err);
            else { rc = CTL_USAGE; ds4_errf(&err, "DS4_DOWNLOAD_SCRIPT is set; run that script instead of ds4ctl download"); }
        } else {
            rc = ctl_check_quant_ram(&c, &err);
            if (!rc) rc = ctl_prepare(&c, &l, &err);
        }
        ctl_lock_release(&c, &l);
        if (rc) ctl_ev_error(rc, err.msg, NULL);
        else ctl_ev_status(cmd, "%s complete", cmd);
        return rc;
    }
    return bad_usage("unknown command %s", cmd);
}
