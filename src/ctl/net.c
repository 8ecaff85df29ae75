/* net.c - what ds4ctl needs to know about the network: does the server answer
 * GET /v1/models, who listens on the port, does the server still have clients.
 *
 * Socket ownership comes from the kernel's tables (Linux /proc/net/tcp{,6} + the
 * socket inodes in /proc/<pid>/fd), so neither lsof nor ps are required (§21.13). On
 * macOS `lsof` is the fallback. A listener whose owner we cannot see (another user)
 * is still reported through any_listener, so it is treated as foreign, never ignored. */
#include "ctl/ctl.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct body { char *buf; size_t cap, len; };

static size_t on_body(char *p, size_t sz, size_t nm, void *ud) {
    struct body *b = ud;
    size_t n = sz * nm;
    if (b->buf && b->len + 1 < b->cap) {
        size_t k = n < b->cap - 1 - b->len ? n : b->cap - 1 - b->len;
        memcpy(b->buf + b->len, p, k);
        b->len += k;
        b->buf[b->len] = 0;
    }
    return n;
}

int ctl_http_models(const char *host, long port, long timeout_ms, char *body, size_t cap) {
    static int inited;
    if (!inited) { curl_global_init(CURL_GLOBAL_DEFAULT); inited = 1; }
    CURL *h = curl_easy_init();
    if (!h) return 0;
    char url[512];
    snprintf(url, sizeof url, "http://%s:%ld/v1/models", host, port);
    struct body b = {body, cap, 0};
    if (body && cap) body[0] = 0;
    struct curl_slist *hd = curl_slist_append(NULL, "Connection: close");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    long code = 0;
    if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    return (int)code;
}

#ifndef __APPLE__
/* Collects inodes of sockets in the given state ("0A" listen, "01" established),
 * optionally only those on local port `port` (0 = any). */
static int socket_inodes(long port, const char *state, unsigned long *ino, int max) {
    int n = 0;
    const char *files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    for (int f = 0; f < 2; f++) {
        FILE *fp = fopen(files[f], "re");
        if (!fp) continue;
        char line[512];
        if (!fgets(line, sizeof line, fp)) { fclose(fp); continue; }
        while (fgets(line, sizeof line, fp) && n < max) {
            char local[128], remote[128], st[8];
            unsigned long inode;
            /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
            if (sscanf(line, " %*s %127s %127s %7s %*s %*s %*s %*s %*s %lu", local, remote, st, &inode) != 4) continue;
            if (strcmp(st, state) != 0 || inode == 0) continue;
            char *colon = strrchr(local, ':');
            if (!colon) continue;
            long lp = strtol(colon + 1, NULL, 16);
            if (port && lp != port) continue;
            ino[n++] = inode;
        }
        fclose(fp);
    }
    return n;
}

static int pid_owns(pid_t pid, const unsigned long *ino, int nino) {
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int hits = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[128], t[64];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        ssize_t r = readlink(p, t, sizeof t - 1);
        if (r <= 8) continue;
        t[r] = 0;
        if (strncmp(t, "socket:[", 8) != 0) continue;
        unsigned long in = strtoul(t + 8, NULL, 10);
        for (int i = 0; i < nino; i++) if (ino[i] == in) { hits++; break; }
    }
    closedir(d);
    return hits;
}
#endif

int ctl_port_listeners(long port, pid_t *pids, int max, int *any_listener) {
    *any_listener = 0;
    int n = 0;
#ifndef __APPLE__
    unsigned long ino[64];
    int nino = socket_inodes(port, "0A", ino, 64);
    if (nino == 0) return 0;
    *any_listener = 1;
    DIR *d = opendir("/proc");
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        if (!isdigit((unsigned char)e->d_name[0])) continue;
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid_owns(pid, ino, nino)) pids[n++] = pid;
    }
    closedir(d);
#else
    char cmd[128];
    snprintf(cmd, sizeof cmd, "lsof -nP -t -iTCP:%ld -sTCP:LISTEN 2>/dev/null", port);
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    char line[64];
    while (fgets(line, sizeof line, p) && n < max) {
        pid_t pid = (pid_t)atoi(line);
        if (pid > 0) { pids[n++] = pid; *any_listener = 1; }
    }
    pclose(p);
#endif
    return n;
}

int ctl_established(pid_t pid) {
#ifndef __APPLE__
    unsigned long ino[1024];
    int nino = socket_inodes(0, "01", ino, 1024);
    return nino ? pid_owns(pid, ino, nino) : 0;
#else
    char cmd[128];
    snprintf(cmd, sizeof cmd, "lsof -nP -a -p %d -iTCP -sTCP:ESTABLISHED -t 2>/dev/null", (int)pid);
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    char line[64];
    int n = 0;
    while (fgets(line, sizeof line, p)) n++;
    pclose(p);
    return n;
#endif
}
