/* ident.c - process identity (spec §4.1, §21.4): is this pid still the process a
 * record was written for?
 *
 * A pid alone is not an identity: pids are reused. Every record ds4ctl writes carries
 * the process start time twice: the ps-compatible string of Part A ("Thu Nov 26
 * 06:41:47 2026", what `LC_ALL=C ps -o lstart=` prints; one-second resolution, local
 * time) and a precise, zone-independent id (Linux "<boot_id>:<start ticks>", macOS
 * "<sec>.<usec>"). Both are computed natively, without running ps. Zombies count as
 * dead: in containers whose init never reaps, a killed process lingers as a zombie
 * and must not keep a lease or a server record alive. */
#include "ctl/ctl.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef __APPLE__
#include <libproc.h>
#include <sys/proc.h>
#include <sys/proc_info.h>
#include <sys/sysctl.h>
#endif

static void fmt_start(time_t t, char *buf, size_t n) {
    struct tm tm;
    localtime_r(&t, &tm);
    /* strftime's %a/%b are locale-dependent; spell them in the C locale ourselves so
     * the string never depends on LANG (the reason Part A runs ps with LC_ALL=C). */
    static const char *wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
                               "Sep", "Oct", "Nov", "Dec"};
    snprintf(buf, n, "%s %s %2d %02d:%02d:%02d %d", wd[tm.tm_wday % 7], mo[tm.tm_mon % 12],
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
}

#ifndef __APPLE__
static ssize_t read_small(const char *path, char *buf, size_t n) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, n - 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
        if (got >= n - 1) break;
    }
    close(fd);
    buf[got] = 0;
    return (ssize_t)got;
}

/* Field 3 (state) and field 22 (starttime) of /proc/<pid>/stat; the command name in
 * field 2 may contain spaces and parentheses, so parse after the last ')'. */
static int proc_stat(pid_t pid, char *state, unsigned long long *start) {
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (read_small(path, buf, sizeof buf) <= 0) return -1;
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ') return -1;
    p += 2;
    *state = *p;
    /* p points at field 3; starttime is field 22, i.e. 19 fields further. */
    for (int f = 3; f < 22; f++) {
        p = strchr(p, ' ');
        if (!p) return -1;
        p++;
    }
    *start = strtoull(p, NULL, 10);
    return 0;
}

static long long boot_time(void) {
    char buf[8192];
    if (read_small("/proc/stat", buf, sizeof buf) <= 0) return -1;
    char *p = strstr(buf, "\nbtime ");
    return p ? atoll(p + 7) : -1;
}
#endif

int ctl_alive(pid_t pid) {
    if (pid <= 0) return 0;
    if (kill(pid, 0) != 0 && errno != EPERM) return 0;
#ifndef __APPLE__
    char st; unsigned long long s;
    if (proc_stat(pid, &st, &s) == 0 && (st == 'Z' || st == 'X')) return 0;
#else
    struct proc_bsdinfo bi;
    if (proc_pidinfo(pid, PROC_PIDTBSDINFO, 0, &bi, sizeof bi) == (int)sizeof bi && bi.pbi_status == SZOMB) return 0;
#endif
    return 1;
}

int ctl_ident_get(pid_t pid, ctl_ident *id) {
    memset(id, 0, sizeof *id);
    if (pid <= 0) return -1;
#ifndef __APPLE__
    char st; unsigned long long ticks;
    if (proc_stat(pid, &st, &ticks) != 0) return -1;
    long long bt = boot_time();
    long hz = sysconf(_SC_CLK_TCK);
    if (bt < 0 || hz <= 0) return -1;
    fmt_start((time_t)(bt + (long long)(ticks / (unsigned long long)hz)), id->start, sizeof id->start);
    char boot[64] = "";
    if (read_small("/proc/sys/kernel/random/boot_id", boot, sizeof boot) > 0) {
        char *nl = strchr(boot, '\n');
        if (nl) *nl = 0;
    }
    snprintf(id->start_id, sizeof id->start_id, "%s:%llu", boot, ticks);
    return 0;
#else
    struct proc_bsdinfo bi;
    if (proc_pidinfo(pid, PROC_PIDTBSDINFO, 0, &bi, sizeof bi) != (int)sizeof bi) return -1;
    fmt_start((time_t)bi.pbi_start_tvsec, id->start, sizeof id->start);
    snprintf(id->start_id, sizeof id->start_id, "%llu.%06llu",
             (unsigned long long)bi.pbi_start_tvsec, (unsigned long long)bi.pbi_start_tvusec);
    return 0;
#endif
}

int ctl_same_process(pid_t pid, const char *start, const char *start_id) {
    if (!ctl_alive(pid)) return 0;
    int have_id = start_id && *start_id, have_start = start && *start && strcmp(start, "unknown") != 0;
    if (!have_id && !have_start) return 0;
    ctl_ident now;
    if (ctl_ident_get(pid, &now) != 0) return 0;
    if (have_id && now.start_id[0]) return strcmp(now.start_id, start_id) == 0;
    return have_start && strcmp(now.start, start) == 0;
}

int ctl_exe_path(pid_t pid, char *buf, size_t n) {
#ifndef __APPLE__
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
    ssize_t r = readlink(path, buf, n - 1);
    if (r < 0) return -1;
    buf[r] = 0;
    /* A replaced binary reads "/path (deleted)"; keep the path for comparison. */
    char *d = strstr(buf, " (deleted)");
    if (d && d[10] == 0) *d = 0;
    return 0;
#else
    char p[PROC_PIDPATHINFO_MAXSIZE];
    if (proc_pidpath(pid, p, sizeof p) <= 0) return -1;
    snprintf(buf, n, "%s", p);
    return 0;
#endif
}

#ifdef __APPLE__
/* KERN_PROCARGS2: argc, exec path, padding, argv strings, env strings. */
static char *procargs(pid_t pid, size_t *len, int *argc) {
    int mib[3] = {CTL_KERN, KERN_PROCARGS2, pid};
    size_t sz = 0;
    int maxarg_mib[2] = {CTL_KERN, KERN_ARGMAX};
    int argmax = 0; size_t al = sizeof argmax;
    if (sysctl(maxarg_mib, 2, &argmax, &al, NULL, 0) != 0) return NULL;
    char *b = malloc((size_t)argmax);
    if (!b) return NULL;
    sz = (size_t)argmax;
    if (sysctl(mib, 3, b, &sz, NULL, 0) != 0 || sz < sizeof(int)) { free(b); return NULL; }
    memcpy(argc, b, sizeof(int));
    *len = sz;
    return b;
}
#endif

int ctl_cmdline(pid_t pid, char *buf, size_t n) {
    buf[0] = 0;
#ifndef __APPLE__
    char path[64], raw[8192];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    ssize_t r = read_small(path, raw, sizeof raw);
    if (r <= 0) return -1;
    for (ssize_t i = 0; i < r; i++) if (raw[i] == 0) raw[i] = ' ';
    while (r > 0 && raw[r - 1] == ' ') raw[--r] = 0;
    snprintf(buf, n, "%s", raw);
    return 0;
#else
    size_t len; int argc;
    char *b = procargs(pid, &len, &argc);
    if (!b) return -1;
    size_t i = sizeof(int);
    while (i < len && b[i]) i++;         /* exec path */
    while (i < len && !b[i]) i++;        /* padding */
    size_t o = 0;
    for (int a = 0; a < argc && i < len; a++) {
        if (a && o + 1 < n) buf[o++] = ' ';
        while (i < len && b[i]) { if (o + 1 < n) buf[o++] = b[i]; i++; }
        i++;
    }
    buf[o < n ? o : n - 1] = 0;
    free(b);
    return 0;
#endif
}

int ctl_proc_env(pid_t pid, const char *name, char *buf, size_t n) {
    size_t nl = strlen(name);
#ifndef __APPLE__
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    if (!b) { close(fd); return -1; }
    for (;;) {
        if (len + 1 >= cap) {
            if (cap >= (1u << 24)) break;
            char *nb = realloc(b, cap * 2);
            if (!nb) break;
            b = nb; cap *= 2;
        }
        ssize_t r = read(fd, b + len, cap - 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { if (r < 0) { free(b); close(fd); return -1; } break; }
        len += (size_t)r;
    }
    close(fd);
    b[len] = 0;
    int found = 0;
    for (size_t i = 0; i < len;) {
        const char *e = b + i;
        size_t el = strlen(e);
        if (el > nl && strncmp(e, name, nl) == 0 && e[nl] == '=') {
            snprintf(buf, n, "%s", e + nl + 1);
            found = 1;
            break;
        }
        i += el + 1;
    }
    free(b);
    return found;
#else
    size_t len; int argc;
    char *b = procargs(pid, &len, &argc);
    if (!b) return -1;
    size_t i = sizeof(int);
    while (i < len && b[i]) i++;
    while (i < len && !b[i]) i++;
    for (int a = 0; a < argc && i < len; a++) { while (i < len && b[i]) i++; i++; }
    int found = 0;
    while (i < len && b[i]) {
        const char *e = b + i;
        size_t el = strnlen(e, len - i);
        if (el > nl && strncmp(e, name, nl) == 0 && e[nl] == '=') {
            snprintf(buf, n, "%.*s", (int)(el - nl - 1), e + nl + 1);
            found = 1;
            break;
        }
        i += el + 1;
    }
    free(b);
    return found;
#endif
}

int ctl_looks_like_ds4_server(const char *args) {
    const char *w = "ds4-server";
    size_t wl = strlen(w);
    for (const char *p = strstr(args, w); p; p = strstr(p + 1, w)) {
        int before = p == args || p[-1] == '/' || isspace((unsigned char)p[-1]);
        int after = p[wl] == 0 || isspace((unsigned char)p[wl]);
        if (before && after) return 1;
    }
    return 0;
}
