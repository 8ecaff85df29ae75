/* prepare.c - everything before a spawn (spec §21.7 step 8, §21.8): the quant and RAM
 * check, the engine checkout, the build, and the model download.
 *
 * Order differs from Part A on purpose: RAM and quant are checked before any clone,
 * build or download (Part A checked after cloning and building, wasting minutes before
 * telling a 96 GB machine no). A clone goes to support.partial-<pid> and is renamed only
 * when complete, so an interrupted clone never blocks later launches. */
#include "ctl/ctl.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __APPLE__
#include <sys/sysctl.h>
#endif

double ctl_total_ram_gb(void) {
#ifdef __APPLE__
    uint64_t mem = 0;
    size_t len = sizeof mem;
    if (sysctlbyname("hw.memsize", &mem, &len, NULL, 0) != 0) return 0;
    return (double)mem / 1e9;
#else
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psz <= 0) return 0;
    return (double)pages * (double)psz / 1e9;
#endif
}

int ctl_check_quant_ram(const ctl_cfg *c, ds4_err *err) {
    char q[64];
    size_t i = 0;
    for (; c->quant[i] && i + 1 < sizeof q; i++) q[i] = (char)tolower((unsigned char)c->quant[i]);
    q[i] = 0;
    if (strcmp(q, "q2") != 0)
        return ds4_errf(err, "DS4_MODEL_QUANT=%s not supported; this extension only automates the "
                        "cyberneurova abliterated IQ2XXS-w2Q2K imatrix variant. Unset DS4_MODEL_QUANT "
                        "or set it to q2. For other GGUFs run ds4-server directly.", c->quant), CTL_USAGE;
    double gb = ctl_total_ram_gb();
    if (gb < (double)c->min_ram_gb)
        return ds4_errf(err, "DeepSeek V4 Flash IQ2XXS imatrix needs at least %ld GB RAM; detected %.1f GB "
                        "(experts: DS4_MIN_RAM_GB=<n> lowers the minimum at your own risk)",
                        c->min_ram_gb, gb), CTL_RAM_TOO_SMALL;
    return CTL_OK;
}

static int exists(const char *dir, const char *name) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    return stat(p, &st) == 0;
}

/* §8.1's three marker files; this repository keeps the server's main in
 * src/bin/ds4-server.c instead of ds4_server.c, so either counts. */
int ctl_looks_like_checkout(const char *dir) {
    return exists(dir, "Makefile") && exists(dir, "download_model.sh") &&
           (exists(dir, "ds4_server.c") || exists(dir, "src/bin/ds4-server.c"));
}

static void remove_tree(const char *path) {
    char *argv[] = {"rm", "-rf", "--", (char *)path, NULL};
    ds4_err e;
    ctl_run_logged(NULL, argv, "/dev/null", NULL, &e);
}

static int checkout(const ctl_cfg *c, char *runtime, size_t n, ds4_err *err) {
    if (c->runtime_env[0]) {
        ctl_runtime_dir(c, runtime, n);
        if (!ctl_looks_like_checkout(runtime))
            return ds4_errf(err, "DS4_RUNTIME_DIR=%s is not a ds4 checkout (needs Makefile, "
                            "download_model.sh and ds4_server.c)", c->runtime_env), CTL_CHECKOUT_FAILED;
        return CTL_OK;
    }
    char sup[PATH_MAX];
    ctl_path(c, "support", sup, sizeof sup);
    struct stat st;
    if (stat(sup, &st) == 0 || lstat(sup, &st) == 0) {
        ctl_runtime_dir(c, runtime, n);
        if (!ctl_looks_like_checkout(runtime))
            return ds4_errf(err, "%s exists but does not look like a ds4 checkout; move it away or run "
                            "ds4ctl recover", sup), CTL_CHECKOUT_FAILED;
        return CTL_OK;
    }
    /* Leftovers of interrupted clones by dead processes. */
    DIR *d = opendir(c->home);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strncmp(e->d_name, "support.partial-", 16) != 0) continue;
            long pid;
            if (ctl_parse_long(e->d_name + 16, 1, 0x7fffffff, &pid) == 0 && ctl_alive((pid_t)pid)) continue;
            char p[PATH_MAX];
            snprintf(p, sizeof p, "%s/%s", c->home, e->d_name);
            remove_tree(p);
        }
        closedir(d);
    }
    char tmp[PATH_MAX], logp[PATH_MAX], line[4096];
    snprintf(tmp, sizeof tmp, "%s/support.partial-%d", c->home, (int)getpid());
    ctl_path(c, "log", logp, sizeof logp);
    ctl_ev_status("checkout", "cloning ds4 support checkout");
    char *argv[] = {"git", "clone", "--progress", "--branch", (char *)c->support_branch, "--single-branch",
                    "--depth", "1", (char *)c->support_repo, tmp, NULL};
    ctl_quote_argv(argv, line, sizeof line);
    ctl_log(c, "clone ds4 support checkout");
    ctl_log(c, "$ %s", line);
    int st_code = ctl_run_logged(c->home, argv, logp, "clone", err);
    if (st_code != 0) {
        remove_tree(tmp);
        if (ctl_cancelled) return ds4_errf(err, "clone ds4 support checkout cancelled"), CTL_CANCELLED;
        if (st_code > 0) ds4_errf(err, "clone ds4 support checkout failed (exit %d); see %s", st_code, logp);
        return CTL_CHECKOUT_FAILED;
    }
    if (!ctl_looks_like_checkout(tmp)) {
        remove_tree(tmp);
        return ds4_errf(err, "Cloned %s but %s does not look like a ds4 checkout", c->support_repo, sup), CTL_CHECKOUT_FAILED;
    }
    if (rename(tmp, sup) != 0)
        return ds4_errf(err, "cannot rename %s to %s: %s", tmp, sup, strerror(errno)), CTL_CHECKOUT_FAILED;
    ctl_runtime_dir(c, runtime, n);
    return CTL_OK;
}

/* First line of a command's stdout ("" on any failure); used for `git rev-parse`. */
static void capture_line(char *const argv[], char *out, size_t n) {
    out[0] = 0;
    int pfd[2];
    if (pipe(pfd) != 0) return;
    pid_t pid = fork();
    if (pid < 0) { close(pfd[0]); close(pfd[1]); return; }
    if (pid == 0) {
        int dn = open("/dev/null", O_RDWR);
        dup2(pfd[1], 1);
        if (dn >= 0) { dup2(dn, 0); dup2(dn, 2); }
        close(pfd[0]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n && (r = read(pfd[0], out + got, n - 1 - got)) > 0) got += (size_t)r;
    out[got] = 0;
    close(pfd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) out[0] = 0;
    char *nl = strchr(out, '\n');
    if (nl) *nl = 0;
}

/* §21.8.2: rebuild when the binary is missing, or (managed checkout only) when
 * build.json records another git head or other make arguments. A binary without a
 * record (built by hand) is trusted. */
static int needs_build(const ctl_cfg *c, const char *runtime, const char *bin, char *head, size_t hn) {
    char *gargv[] = {"git", "-C", (char *)runtime, "rev-parse", "HEAD", NULL};
    capture_line(gargv, head, hn);
    if (access(bin, X_OK) != 0) return 1;
    if (c->runtime_env[0]) return 0;
    char rp[PATH_MAX + 16];
    snprintf(rp, sizeof rp, "%s/build.json", runtime);
    json_t *r = ctl_json_read(rp);
    if (!r) return 0;
    const char *h = ctl_json_str(r, "gitHead"), *m = ctl_json_str(r, "makeArgs");
    int stale = (h && *h && *head && strcmp(h, head) != 0) || (m && strcmp(m, c->make_args) != 0);
    json_decref(r);
    if (stale) ctl_log(c, "ds4-server build is stale (checkout or DS4_MAKE_ARGS changed); rebuilding");
    return stale;
}

static int build(const ctl_cfg *c, const char *runtime, ds4_err *err) {
    char bin[PATH_MAX], head[128];
    snprintf(bin, sizeof bin, "%s/ds4-server", runtime);
    if (c->server_bin[0] || !needs_build(c, runtime, bin, head, sizeof head)) return CTL_OK;
    char logp[PATH_MAX], line[4096], args[sizeof c->make_args];
    ctl_path(c, "log", logp, sizeof logp);
    ctl_ev_status("build", "building ds4-server");
    char *argv[64];
    int a = 0;
    argv[a++] = "make";
    memcpy(args, c->make_args, sizeof args);
    for (char *save = NULL, *t = strtok_r(args, " \t", &save); t && a < 63; t = strtok_r(NULL, " \t", &save))
        argv[a++] = t;
    argv[a] = NULL;
    ctl_quote_argv(argv, line, sizeof line);
    ctl_log(c, "build ds4-server");
    ctl_log(c, "$ %s", line);
    int st = ctl_run_logged(runtime, argv, logp, "build", err);
    if (ctl_cancelled) return ds4_errf(err, "build ds4-server cancelled"), CTL_CANCELLED;
    if (st != 0) return (st > 0 ? ds4_errf(err, "build ds4-server failed (exit %d); see %s", st, logp) : 0), CTL_BUILD_FAILED;
    if (access(bin, X_OK) != 0)
        return ds4_errf(err, "build ds4-server finished but %s is not executable; see %s", bin, logp), CTL_BUILD_FAILED;
    json_t *rec = json_object();
    json_object_set_new(rec, "gitHead", json_string(head));
    json_object_set_new(rec, "makeArgs", json_string(c->make_args));
    json_object_set_new(rec, "builtAt", json_integer(ctl_now_ms()));
#ifdef __APPLE__
    json_object_set_new(rec, "platform", json_string("darwin"));
#else
    json_object_set_new(rec, "platform", json_string("linux"));
#endif
    char rp[PATH_MAX + 16];
    snprintf(rp, sizeof rp, "%s/build.json", runtime);
    ctl_json_write(rp, rec, 0, NULL);
    json_decref(rec);
    return CTL_OK;
}

static int run_script(const ctl_cfg *c, const char *runtime, ds4_err *err) {
    char logp[PATH_MAX], line[4096], script[PATH_MAX];
    ctl_path(c, "log", logp, sizeof logp);
    if (c->download_script[0] == '/') snprintf(script, sizeof script, "%s", c->download_script);
    else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
        snprintf(script, sizeof script, "%s/%s", cwd, c->download_script);
    }
    char *argv[] = {script, "q2", NULL};
    ctl_quote_argv(argv, line, sizeof line);
    ctl_log(c, "download q2 model");
    ctl_log(c, "$ %s", line);
    /* We hold the lifecycle lock; a script that calls `ds4ctl download` back would
     * wait for it forever. The marker lets that inner call refuse at once. */
    setenv("DS4CTL_IN_SCRIPT", "1", 1);
    int st = ctl_run_logged(runtime, argv, logp, "download", err);
    unsetenv("DS4CTL_IN_SCRIPT");
    if (ctl_cancelled) return ds4_errf(err, "download q2 model cancelled"), CTL_CANCELLED;
    if (st != 0) return (st > 0 ? ds4_errf(err, "download q2 model failed (exit %d); see %s", st, logp) : 0), CTL_DOWNLOAD_FAILED;
    char link[PATH_MAX];
    snprintf(link, sizeof link, "%s/ds4flash.gguf", runtime);
    struct stat sst;
    if (stat(link, &sst) != 0 || sst.st_size == 0)
        return ds4_errf(err, "%s ran but %s does not point at a non-empty file", script, link), CTL_DOWNLOAD_FAILED;
    return CTL_OK;
}

int ctl_prepare(const ctl_cfg *c, ctl_lock *l, ds4_err *err) {
    char runtime[PATH_MAX];
    int rc = checkout(c, runtime, sizeof runtime, err);
    if (rc) return rc;
    ctl_lock_tick(c, l);
    if ((rc = build(c, runtime, err))) return rc;
    ctl_lock_tick(c, l);
    ctl_ev_status("download", "ensuring q2 model (cyberneurova abliterated IQ2XXS imatrix, unmodified)");
    if (c->download_script[0]) return run_script(c, runtime, err);
    return ctl_download(c, l, runtime, 0, err);
}
