/* spawn.c - starting processes (spec §21.9): the detached server and watchdog, and
 * foreground children (git, make, download script) whose output goes to the log.
 *
 * Detached = double fork + setsid, so the child is re-parented to init, survives the
 * client and the terminal, and never becomes our zombie. It inherits no descriptor
 * but stdin (/dev/null) and stdout/stderr (the log): an inherited flock would be held
 * for the server's whole life, and an inherited pipe would keep the pi extension
 * waiting for EOF on ds4ctl's stdout. HF_TOKEN is removed from its environment (the
 * server has no use for a secret). A status pipe reports the grandchild's pid and any
 * exec failure, so "started" means exec really succeeded. */
#include "ctl/ctl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void close_other_fds(int keep) {
#ifndef __APPLE__
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        int dfd = dirfd(d);
        int fds[1024], n = 0;
        struct dirent *e;
        while ((e = readdir(d)) && n < 1024) {
            int fd = atoi(e->d_name);
            if (e->d_name[0] != '.' && fd > 2 && fd != keep && fd != dfd) fds[n++] = fd;
        }
        closedir(d);
        for (int i = 0; i < n; i++) close(fds[i]);
        return;
    }
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
    for (int fd = 3; fd < max; fd++) if (fd != keep) close(fd);
}

static char **child_env(const char *const *env_add) {
    size_t n = 0, a = 0;
    while (environ[n]) n++;
    while (env_add && env_add[a]) a++;
    char **e = malloc((n + a + 1) * sizeof *e);
    if (!e) return environ;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strncmp(environ[i], "HF_TOKEN=", 9)) continue;
        int replaced = 0;
        for (size_t k = 0; k < a; k++) {
            const char *eq = strchr(env_add[k], '=');
            size_t kl = eq ? (size_t)(eq - env_add[k]) + 1 : 0;
            if (kl && !strncmp(environ[i], env_add[k], kl)) replaced = 1;
        }
        if (!replaced) e[o++] = environ[i];
    }
    for (size_t k = 0; k < a; k++) e[o++] = (char *)env_add[k];
    e[o] = NULL;
    return e;
}

static int write_all(int fd, const void *p, size_t n) {
    const char *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        b += w; n -= (size_t)w;
    }
    return 0;
}

int ctl_spawn_detached(const char *cwd, char *const argv[], const char *log_path,
                       const char *const *env_add, pid_t *pid_out, ds4_err *err) {
    int pfd[2];
#ifdef __APPLE__
    if (pipe(pfd) != 0) return ds4_errf(err, "pipe failed: %s", strerror(errno));
    fcntl(pfd[0], F_SETFD, FD_CLOEXEC);
    fcntl(pfd[1], F_SETFD, FD_CLOEXEC);
#else
    if (pipe2(pfd, O_CLOEXEC) != 0) return ds4_errf(err, "pipe failed: %s", strerror(errno));
#endif
    char **env = child_env(env_add);
    pid_t mid = fork();
    if (mid < 0) {
        int e = errno;
        close(pfd[0]); close(pfd[1]);
        if (env != environ) free(env);
        return ds4_errf(err, "fork failed: %s", strerror(e));
    }
    if (mid == 0) {
        setsid();
        pid_t gc = fork();
        if (gc != 0) _exit(gc < 0 ? 1 : 0);
        /* grandchild */
        int msg[2] = {(int)getpid(), 0};
        if (cwd && chdir(cwd) != 0) { msg[1] = errno; write_all(pfd[1], msg, sizeof msg); _exit(127); }
        int in = open("/dev/null", O_RDONLY);
        int out = open(log_path, O_WRONLY | O_APPEND | O_CREAT, 0644);
        if (in < 0 || out < 0) { msg[1] = errno; write_all(pfd[1], msg, sizeof msg); _exit(127); }
        dup2(in, 0); dup2(out, 1); dup2(out, 2);
        if (in > 2) close(in);
        if (out > 2) close(out);
        close_other_fds(pfd[1]);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++) sigaction(s, &sa, NULL);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        umask(022);
        write_all(pfd[1], msg, sizeof(int)); /* pid first */
        execve(argv[0], argv, env);
        msg[1] = errno ? errno : ENOEXEC;
        write_all(pfd[1], &msg[1], sizeof(int));
        _exit(127);
    }
    close(pfd[1]);
    int st;
    while (waitpid(mid, &st, 0) < 0 && errno == EINTR) {}
    if (env != environ) free(env);
    int vals[2] = {0, 0};
    size_t got = 0;
    while (got < sizeof vals) {
        ssize_t r = read(pfd[0], (char *)vals + got, sizeof vals - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(pfd[0]);
    if (got < sizeof(int) || vals[0] <= 0) return ds4_errf(err, "Failed to start %s: no child PID", argv[0]);
    if (got >= sizeof vals && vals[1] != 0)
        return ds4_errf(err, "Cannot execute %s: %s", argv[0], strerror(vals[1]));
    *pid_out = (pid_t)vals[0];
    return 0;
}

static int is_num(const char *s) {
    if (!*s) return 0;
    for (; *s; s++) if (!((*s >= '0' && *s <= '9') || *s == '.')) return 0;
    return 1;
}

int ctl_compact_line(const char *in, char *out, size_t n) {
    char tmp[1024];
    size_t o = 0;
    int space = 0;
    for (const char *p = in; *p && o + 2 < sizeof tmp; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == 0x1b) { /* CSI: ESC [ ... final byte */
            if (p[1] == '[') { p += 2; while (*p && !(*p >= 0x40 && *p <= 0x7e)) p++; if (!*p) break; }
            continue;
        }
        if (ch < 0x20 || ch == 0x7f || ch == ' ') { space = o > 0; continue; }
        if (space) { tmp[o++] = ' '; space = 0; }
        tmp[o++] = (char)ch;
    }
    tmp[o] = 0;
    if (!o) return 0;
    if (!strncmp(tmp, "% Total", 7) || strstr(tmp, "Dload Upload")) return 0;
    /* curl's meter: %tot total %rcv rcvd %xfer xferd dload upload ttotal tspent tleft speed */
    char f[12][64];
    int nf = 0;
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", tmp);
    for (char *save = NULL, *t = strtok_r(copy, " ", &save); t && nf < 12; t = strtok_r(NULL, " ", &save))
        snprintf(f[nf++], sizeof f[0], "%s", t);
    if (nf >= 12 && is_num(f[0]) && is_num(f[2])) {
        char speed[80] = "", left[80] = "";
        if (strcmp(f[11], "0") != 0) snprintf(speed, sizeof speed, ", %s/s", f[11]);
        if (strcmp(f[10], "--:--:--") != 0) snprintf(left, sizeof left, ", %s left", f[10]);
        snprintf(tmp, sizeof tmp, "%s / %s (%s%%%s%s)", f[3], f[1], f[2], speed, left);
    }
    size_t len = strlen(tmp);
    if (len > 160) {
        /* cut to 159 characters plus an ellipsis, on a UTF-8 boundary */
        size_t cut = 159;
        while (cut > 0 && ((unsigned char)tmp[cut] & 0xC0) == 0x80) cut--;
        memcpy(tmp + cut, "\xe2\x80\xa6", 4);
    }
    snprintf(out, n, "%s", tmp);
    return 1;
}

int ctl_run_logged(const char *cwd, char *const argv[], const char *log_path, const char *phase,
                   ds4_err *err) {
    int pfd[2] = {-1, -1};
    if (phase && pipe(pfd) != 0) phase = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        if (phase) { close(pfd[0]); close(pfd[1]); }
        return ds4_errf(err, "fork failed: %s", strerror(errno));
    }
    if (pid == 0) {
        setpgid(0, 0);
        if (cwd && chdir(cwd) != 0) _exit(127);
        int in = open("/dev/null", O_RDONLY);
        int out = phase ? pfd[1] : open(log_path, O_WRONLY | O_APPEND | O_CREAT, 0644);
        if (in >= 0) dup2(in, 0);
        if (out >= 0) { dup2(out, 1); dup2(out, 2); }
        close_other_fds(-1);
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], argv);
        fprintf(stderr, "cannot execute %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    int logfd = -1;
    char line[1024];
    size_t ll = 0;
    if (phase) {
        close(pfd[1]);
        fcntl(pfd[0], F_SETFL, O_NONBLOCK);
        fcntl(pfd[0], F_SETFD, FD_CLOEXEC);
        logfd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    }
    int st = 0, sent = 0, done = 0;
    int64_t term_at = 0;
    for (;;) {
        if (phase) {
            char buf[4096];
            ssize_t r;
            while ((r = read(pfd[0], buf, sizeof buf)) > 0) {
                /* The log gets the bytes unchanged (failures ignored: a full disk
                 * must not turn into a build failure). */
                if (logfd >= 0 && write(logfd, buf, (size_t)r) < 0) {}
                for (ssize_t i = 0; i < r; i++) {
                    if (buf[i] == '\n' || buf[i] == '\r') {
                        line[ll] = 0;
                        char c2[256];
                        if (ll && ctl_compact_line(line, c2, sizeof c2)) ctl_ev_progress_text(phase, c2, 0);
                        ll = 0;
                    } else if (ll + 1 < sizeof line) line[ll++] = buf[i];
                }
            }
        }
        if (!done) {
            pid_t r = waitpid(pid, &st, WNOHANG);
            if (r == pid) done = 1;
            else if (r < 0 && errno != EINTR) { st = 0; done = 1; }
        }
        if (done) {
            if (!phase) break;
            /* drain what the child left in the pipe, then stop */
            char buf[4096];
            ssize_t r = read(pfd[0], buf, sizeof buf);
            if (r > 0) {
                if (logfd >= 0 && write(logfd, buf, (size_t)r) < 0) {}
                continue;
            }
            break;
        }
        if (ctl_cancelled && !sent) { kill(-pid, SIGTERM); sent = 1; term_at = ctl_mono_ms(); }
        if (sent == 1 && ctl_mono_ms() - term_at > 5000) { kill(-pid, SIGKILL); sent = 2; }
        ctl_sleep_ms(50);
    }
    if (phase) {
        line[ll] = 0;
        char c2[256];
        if (ll && ctl_compact_line(line, c2, sizeof c2)) ctl_ev_progress_text(phase, c2, 1);
        close(pfd[0]);
        if (logfd >= 0) close(logfd);
    }
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}
