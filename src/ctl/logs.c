/* logs.c - `ds4ctl logs` and the log tails attached to errors (§21.12, §16).
 *
 * The log mixes our own lines with raw child output (curl/git progress uses \r, the
 * server may colour its output), so the default view sanitises like the /ds4 window:
 * ANSI escapes removed, CR and CRLF turned into LF, only the last lines kept. --raw
 * passes bytes through unchanged. -f follows by polling once per second and reopens
 * the file when it was rotated (inode changed) or truncated. */
#include "ctl/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *read_tail(const char *path, long max_bytes, size_t *len_out, off_t *size_out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) { close(fd); return NULL; }
    off_t start = st.st_size > max_bytes ? st.st_size - max_bytes : 0;
    size_t want = (size_t)(st.st_size - start);
    char *b = malloc(want + 1);
    if (!b) { close(fd); return NULL; }
    size_t got = 0;
    while (got < want) {
        ssize_t r = pread(fd, b + got, want - got, start + (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    b[got] = 0;
    *len_out = got;
    if (size_out) *size_out = st.st_size;
    /* Starting mid-file: drop the first partial line. */
    if (start > 0) {
        char *nl = memchr(b, '\n', got);
        if (nl) { size_t k = (size_t)(nl + 1 - b); memmove(b, nl + 1, got - k + 1); *len_out = got - k; }
    }
    return b;
}

/* In place: strip ANSI CSI/OSC sequences and control bytes, CR/CRLF -> LF. */
static size_t sanitise(char *b, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)b[i];
        if (ch == 0x1b) {
            if (i + 1 < n && b[i + 1] == '[') {
                i += 2;
                while (i < n && !((unsigned char)b[i] >= 0x40 && (unsigned char)b[i] <= 0x7e)) i++;
            } else if (i + 1 < n && b[i + 1] == ']') {
                i += 2;
                while (i < n && b[i] != 0x07 && !(b[i] == 0x1b && i + 1 < n && b[i + 1] == '\\')) i++;
                if (i < n && b[i] == 0x1b) i++;
            } else i++;
            continue;
        }
        if (ch == '\r') {
            if (i + 1 < n && b[i + 1] == '\n') continue;
            b[o++] = '\n';
            continue;
        }
        if (ch < 0x20 && ch != '\n' && ch != '\t') continue;
        b[o++] = (char)ch;
    }
    b[o] = 0;
    return o;
}

static char *last_lines(char *b, size_t n, long max_lines) {
    while (n > 0 && b[n - 1] == '\n') b[--n] = 0;
    long count = 0;
    for (size_t i = n; i > 0; i--) {
        if (b[i - 1] == '\n' && ++count >= max_lines) return b + i;
    }
    return b;
}

char *ctl_log_tail(const ctl_cfg *c, long max_bytes, long max_lines) {
    char p[PATH_MAX];
    size_t len;
    char *b = read_tail(ctl_path(c, "log", p, sizeof p), max_bytes, &len, NULL);
    if (!b) return NULL;
    len = sanitise(b, len);
    char *start = last_lines(b, len, max_lines);
    char *r = strdup(start);
    free(b);
    return r;
}

int ctl_cmd_logs(const ctl_cfg *c, long lines, int follow, long bytes, int raw) {
    char p[PATH_MAX];
    ctl_path(c, "log", p, sizeof p);
    if (bytes <= 0) bytes = 256 * 1024;
    if (lines <= 0) lines = 2000;
    size_t len;
    off_t size = 0;
    char *b = read_tail(p, bytes, &len, &size);
    if (!b && !follow) {
        fprintf(stderr, "ds4ctl: No ds4 log yet: %s\n", p);
        return CTL_ERROR;
    }
    if (b) {
        if (raw) fwrite(b, 1, len, stdout);
        else {
            len = sanitise(b, len);
            char *s = last_lines(b, len, lines);
            if (*s) printf("%s\n", s);
        }
        free(b);
    }
    fflush(stdout);
    if (!follow) return CTL_OK;
    ctl_install_cancel_handlers();
    struct stat st0;
    ino_t ino = stat(p, &st0) == 0 ? st0.st_ino : 0;
    off_t pos = size;
    while (!ctl_cancelled) {
        ctl_sleep_ms(1000);
        struct stat st;
        if (stat(p, &st) != 0) continue;
        if (st.st_ino != ino || st.st_size < pos) { ino = st.st_ino; pos = 0; }
        if (st.st_size == pos) continue;
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        char buf[65536];
        ssize_t r;
        while ((r = pread(fd, buf, sizeof buf - 1, pos)) > 0) {
            pos += r;
            size_t n = (size_t)r;
            if (!raw) n = sanitise(buf, n);
            fwrite(buf, 1, n, stdout);
        }
        close(fd);
        fflush(stdout);
    }
    return CTL_OK;
}
