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

int ctl_run_logged(const char *cwd, char *const argv[], const char *log_path, ds4_err *err) {
    pid_t pid = fork();
    if (pid < 0) return ds4_errf(err, "fork failed: %s", strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        if (cwd && chdir(cwd) != 0) _exit(127);
        int in = open("/dev/null", O_RDONLY);
        int out = open(log_path, O_WRONLY | O_APPEND | O_CREAT, 0644);
        if (in >= 0) dup2(in, 0);
        if (out >= 0) { dup2(out, 1); dup2(out, 2); }
        close_other_fds(-1);
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], argv);
        fprintf(stderr, "cannot execute %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    int st = 0, sent = 0;
    int64_t term_at = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) return ds4_errf(err, "waitpid failed: %s", strerror(errno));
        if (ctl_cancelled && !sent) { kill(-pid, SIGTERM); sent = 1; term_at = ctl_mono_ms(); }
        if (sent == 1 && ctl_mono_ms() - term_at > 5000) { kill(-pid, SIGKILL); sent = 2; }
        ctl_sleep_ms(50);
    }
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}
