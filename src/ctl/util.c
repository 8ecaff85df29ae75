/* util.c - small helpers every ds4ctl file uses: clocks and ISO timestamps, the shared
 * append-only log, argument quoting for log headers, strict number parsing, and the
 * cancellation flag set by SIGINT/SIGTERM.
 *
 * The log is opened per line in append mode (never kept open) so that every ds4ctl
 * process follows a rotation, and a failing log write never aborts real work. */
#include "ctl/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t ctl_cancelled;

static void on_cancel(int sig) { (void)sig; ctl_cancelled = 1; }

void ctl_install_cancel_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_cancel;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int64_t ctl_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ctl_mono_ms(void) {
    struct timespec ts;
#ifdef __APPLE__
    clock_gettime(CLOCK_UPTIME_RAW, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ctl_iso_ms(int64_t ms, char *buf, size_t n) {
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char t[32];
    strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%s.%03dZ", t, (int)(ms % 1000));
}

void ctl_iso_s(int64_t ms, char *buf, size_t n) {
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void ctl_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !ctl_cancelled) {}
}

int ctl_mkdirs(const char *path, mode_t mode) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, mode) != 0 && errno != EEXIST) return -1;
        *s = '/';
    }
    if (mkdir(p, mode) != 0 && errno != EEXIST) return -1;
    return 0;
}

void ctl_random_hex(char *buf, size_t nbytes) {
    unsigned char r[64];
    if (nbytes > sizeof r) nbytes = sizeof r;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, r, nbytes) : -1;
    if (fd >= 0) close(fd);
    if (got != (ssize_t)nbytes) { /* never expected; still unique enough for a nonce */
        uint64_t x = (uint64_t)ctl_now_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)ctl_mono_ms();
        for (size_t i = 0; i < nbytes; i++) { x = x * 6364136223846793005ULL + 1442695040888963407ULL; r[i] = (unsigned char)(x >> 56); }
    }
    for (size_t i = 0; i < nbytes; i++) snprintf(buf + 2 * i, 3, "%02x", r[i]);
}

static void log_write(const ctl_cfg *c, const char *prefix, const char *fmt, va_list ap) {
    char path[PATH_MAX], line[4096];
    ctl_path(c, "log", path, sizeof path);
    int n = snprintf(line, sizeof line, "%s", prefix);
    if (n < 0 || (size_t)n >= sizeof line) return;
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    if (m < 0) return;
    size_t len = strlen(line);
    line[len++] = '\n';
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    ssize_t w = write(fd, line, len);
    (void)w;
    close(fd);
}

void ctl_log(const ctl_cfg *c, const char *fmt, ...) {
    char iso[40], pre[48];
    ctl_iso_ms(ctl_now_ms(), iso, sizeof iso);
    snprintf(pre, sizeof pre, "[%s] ", iso);
    va_list ap;
    va_start(ap, fmt);
    log_write(c, pre, fmt, ap);
    va_end(ap);
}

void ctl_log_wd(const ctl_cfg *c, const char *fmt, ...) {
    char iso[40], pre[64];
    ctl_iso_s(ctl_now_ms(), iso, sizeof iso);
    snprintf(pre, sizeof pre, "[%s] ds4-watchdog: ", iso);
    va_list ap;
    va_start(ap, fmt);
    log_write(c, pre, fmt, ap);
    va_end(ap);
}

void ctl_quote_argv(char *const argv[], char *buf, size_t n) {
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; argv[i] && o + 4 < n; i++) {
        const char *a = argv[i];
        int bare = *a != 0;
        for (const char *p = a; *p; p++)
            if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=+-", *p)) { bare = 0; break; }
        if (i) buf[o++] = ' ';
        if (bare) {
            for (const char *p = a; *p && o + 1 < n; p++) buf[o++] = *p;
        } else {
            if (o + 1 < n) buf[o++] = '\'';
            for (const char *p = a; *p && o + 5 < n; p++) {
                if (*p == '\'') { memcpy(buf + o, "'\\''", 4); o += 4; }
                else buf[o++] = *p;
            }
            if (o + 1 < n) buf[o++] = '\'';
        }
        buf[o] = 0;
    }
    buf[o < n ? o : n - 1] = 0;
}

int ctl_parse_long(const char *s, long lo, long hi, long *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int ctl_parse_duration(const char *s, long *seconds) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || v < 0) return -1;
    long mul = 1;
    if (*end == 0 || strcmp(end, "s") == 0) mul = 1;
    else if (strcmp(end, "m") == 0) mul = 60;
    else if (strcmp(end, "h") == 0) mul = 3600;
    else if (strcmp(end, "d") == 0) mul = 86400;
    else return -1;
    if (v > 3650L * 86400 / mul) return -1;
    *seconds = v * mul;
    return 0;
}
