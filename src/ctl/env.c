/* env.c - ds4ctl configuration: the DS4_* environment of spec §17 and §21.2, validated
 * once, plus the server argument vector built from it (§10.1).
 *
 * Every Part A variable keeps its meaning and default so the handbook's instructions
 * stay true; additions only add. Numbers are parsed strictly (a typo is exit 2 naming
 * the variable, never a silent NaN as in Part A §11). */
#include "ctl/ctl.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEF_MODEL_REPO "audreyt/CyberNeurova-DeepSeek-V4-Flash-abliterated-GGUF"
#define DEF_MODEL_FILE "cyberneurova-DeepSeek-V4-Flash-abliterated-IQ2XXS-w2Q2K-AProjQ8-SExpQ8-OutQ8-chat-v2-imatrix.gguf"
#define DEF_STEER_FILE "dir-steering/out/uncertainty_ablit_imatrix.f32"

static int copy_env(const char *name, const char *dflt, char *dst, size_t n, ds4_err *err) {
    const char *v = getenv(name);
    if (!v) v = dflt;
    if (strlen(v) >= n)
        return ds4_errf(err, "%s is %zu bytes long; at most %zu are supported", name, strlen(v), n - 1);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int num_env(const char *name, long dflt, long lo, long hi, long *out, ds4_err *err) {
    const char *v = getenv(name);
    if (!v || !*v) { *out = dflt; return 0; }
    if (ctl_parse_long(v, lo, hi, out) != 0)
        return ds4_errf(err, "%s=%s is not valid: expected a decimal integer in [%ld, %ld]",
                        name, v, lo, hi);
    return 0;
}

int ctl_cfg_load(ctl_cfg *c, const char *home_override, ds4_err *err) {
    memset(c, 0, sizeof *c);
    const char *home = home_override;
    if (!home || !*home) home = getenv("DS4_HOME");
    if (home && *home) {
        if (strlen(home) >= sizeof c->home - 64)
            return ds4_errf(err, "DS4_HOME is too long (%zu bytes)", strlen(home)), CTL_USAGE;
        if (home[0] == '/') snprintf(c->home, sizeof c->home, "%s", home);
        else {
            char cwd[PATH_MAX];
            if (!getcwd(cwd, sizeof cwd)) return ds4_errf(err, "getcwd failed: %s", strerror(errno)), CTL_ERROR;
            snprintf(c->home, sizeof c->home, "%s/%s", cwd, home);
        }
    } else {
        const char *h = getenv("HOME");
        if (!h || !*h) { struct passwd *pw = getpwuid(getuid()); h = pw ? pw->pw_dir : NULL; }
        if (!h) return ds4_errf(err, "cannot find the home directory: HOME is unset; set DS4_HOME"), CTL_USAGE;
        snprintf(c->home, sizeof c->home, "%s/.pi/ds4", h);
    }
    size_t hl = strlen(c->home);
    while (hl > 1 && c->home[hl - 1] == '/') c->home[--hl] = 0;

    if (copy_env("DS4_RUNTIME_DIR", "", c->runtime_env, sizeof c->runtime_env, err) ||
        copy_env("DS4_SUPPORT_REPO", "https://github.com/audreyt/ds4", c->support_repo, sizeof c->support_repo, err) ||
        copy_env("DS4_SUPPORT_BRANCH", "main", c->support_branch, sizeof c->support_branch, err) ||
        copy_env("DS4_DOWNLOAD_SCRIPT", "", c->download_script, sizeof c->download_script, err) ||
        copy_env("DS4_DIR_STEERING_FILE", DEF_STEER_FILE, c->steer_file, sizeof c->steer_file, err) ||
        copy_env("DS4_DIR_STEERING_FFN", "-2", c->steer_ffn, sizeof c->steer_ffn, err) ||
        copy_env("DS4_DIR_STEERING_ATTN", "0", c->steer_attn, sizeof c->steer_attn, err) ||
        copy_env("DS4_HOST", "127.0.0.1", c->host, sizeof c->host, err) ||
        copy_env("DS4_SERVER_EXTRA_ARGS", "", c->extra_args, sizeof c->extra_args, err) ||
        copy_env("DS4_MODEL_REPO", DEF_MODEL_REPO, c->model_repo, sizeof c->model_repo, err) ||
        copy_env("DS4_MODEL_FILE", DEF_MODEL_FILE, c->model_file, sizeof c->model_file, err) ||
        copy_env("DS4_MAKE_ARGS", "ds4-server", c->make_args, sizeof c->make_args, err) ||
        copy_env("DS4_MODEL_QUANT", "q2", c->quant, sizeof c->quant, err))
        return CTL_USAGE;
    if (!*c->host) snprintf(c->host, sizeof c->host, "127.0.0.1");
    if (strchr(c->model_file, '/') || !*c->model_file || strcmp(c->model_file, "..") == 0)
        return ds4_errf(err, "DS4_MODEL_FILE=%s must be a plain file name", c->model_file), CTL_USAGE;

    /* The handbook calls the override "DS4_SERVER_BIN"; the public extension reads
     * DS4_SERVER_BINARY. Accept both, refuse a contradiction rather than guess. */
    const char *sb = getenv("DS4_SERVER_BINARY"), *sb2 = getenv("DS4_SERVER_BIN");
    if (sb && *sb && sb2 && *sb2 && strcmp(sb, sb2) != 0)
        return ds4_errf(err, "DS4_SERVER_BINARY=%s and DS4_SERVER_BIN=%s disagree; set only one", sb, sb2), CTL_USAGE;
    if (!(sb && *sb)) sb = sb2;
    if (sb && *sb) {
        char abs[PATH_MAX];
        if (sb[0] != '/') {
            char cwd[PATH_MAX];
            if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
            snprintf(abs, sizeof abs, "%s/%s", cwd, sb);
        } else snprintf(abs, sizeof abs, "%s", sb);
        snprintf(c->server_bin, sizeof c->server_bin, "%s", abs);
    }

    const char *mpp = getenv("DS4_MPP");
#ifdef __APPLE__
    c->mpp_set = 1; snprintf(c->mpp, sizeof c->mpp, "auto");
#endif
    if (mpp) { c->mpp_set = *mpp != 0; snprintf(c->mpp, sizeof c->mpp, "%s", mpp); }
    const char *mt = getenv("DS4_MT");
    if (mt && *mt) { c->mt_set = 1; snprintf(c->mt, sizeof c->mt, "%s", mt); }

    if (num_env("DS4_PORT", 8000, 1, 65535, &c->port, err) ||
        num_env("DS4_CTX", 100000, 1, 100000000, &c->ctx, err) ||
        num_env("DS4_KV_DISK_SPACE_MB", 8192, 1, 1L << 30, &c->kv_mb, err) ||
        num_env("DS4_DOWNLOAD_RETRIES", 10, 1, 1000, &c->dl_retries, err) ||
        num_env("DS4_MIN_RAM_GB", 128, 0, 1000000, &c->min_ram_gb, err) ||
        num_env("DS4_DISK_RESERVE_MB", 1024, 0, 1L << 30, &c->disk_reserve_mb, err) ||
        num_env("DS4_LEASE_TTL_S", 45, 1, 86400, &c->lease_ttl_s, err) ||
        num_env("DS4_WATCHDOG_POLL_S", 2, 1, 3600, &c->poll_s, err) ||
        num_env("DS4_SHUTDOWN_GRACE_S", 60, 0, 86400, &c->shutdown_grace_s, err) ||
        num_env("DS4_IDLE_GRACE_S", 60, 0, 86400 * 30L, &c->idle_grace_s, err) ||
        num_env("DS4_LOCK_TIMEOUT_S", 86400, 0, 86400 * 30L, &c->lock_timeout_s, err) ||
        num_env("DS4_LOG_MAX_MB", 64, 0, 1L << 20, &c->log_max_mb, err) ||
        num_env("DS4_READY_TIMEOUT_MS", 600000, 0, 86400000L * 7, &c->ready_timeout_ms, err))
        return CTL_USAGE;

    const char *url = getenv("DS4_MODEL_URL");
    if (url && *url) snprintf(c->model_url, sizeof c->model_url, "%s", url);
    else {
        /* DS4_HF_BASE moves only the host part (tests, mirrors); the path layout stays
         * Hugging Face's resolve/main scheme. */
        const char *base = getenv("DS4_HF_BASE");
        if (!base || !*base) base = "https://huggingface.co";
        snprintf(c->model_url, sizeof c->model_url, "%s/%s/resolve/main/%s", base,
                 c->model_repo, c->model_file);
    }

    const char *sha = getenv("DS4_MODEL_SHA256");
    if (sha && *sha) {
        if (strlen(sha) != 64 || strspn(sha, "0123456789abcdefABCDEF") != 64)
            return ds4_errf(err, "DS4_MODEL_SHA256=%s is not 64 hex digits", sha), CTL_USAGE;
        for (int i = 0; i < 64; i++) c->model_sha256[i] = (char)(sha[i] | 0x20);
    }
    const char *vf = getenv("DS4_VERIFY");
    if (!vf || !*vf || strcmp(vf, "size") == 0) c->verify = CTL_VERIFY_SIZE;
    else if (strcmp(vf, "none") == 0) c->verify = CTL_VERIFY_NONE;
    else if (strcmp(vf, "sha256") == 0) c->verify = CTL_VERIFY_SHA256;
    else return ds4_errf(err, "DS4_VERIFY=%s is not valid: expected none, size or sha256", vf), CTL_USAGE;
    if (c->model_sha256[0] && c->verify == CTL_VERIFY_SIZE) c->verify = CTL_VERIFY_SHA256;

    const char *fp = getenv("DS4_FOREIGN_POLICY");
    if (!fp || !*fp || strcmp(fp, "use-ds4") == 0) c->foreign = CTL_FOREIGN_USE_DS4;
    else if (strcmp(fp, "use-any") == 0) c->foreign = CTL_FOREIGN_USE_ANY;
    else if (strcmp(fp, "refuse") == 0) c->foreign = CTL_FOREIGN_REFUSE;
    else return ds4_errf(err, "DS4_FOREIGN_POLICY=%s is not valid: expected use-ds4, use-any or refuse", fp), CTL_USAGE;
    return CTL_OK;
}

const char *ctl_path(const ctl_cfg *c, const char *rel, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s", c->home, rel);
    return buf;
}

void ctl_runtime_dir(const ctl_cfg *c, char *buf, size_t n) {
    char p[PATH_MAX];
    if (c->runtime_env[0]) {
        if (c->runtime_env[0] == '/') snprintf(p, sizeof p, "%s", c->runtime_env);
        else {
            char cwd[PATH_MAX];
            if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
            snprintf(p, sizeof p, "%s/%s", cwd, c->runtime_env);
        }
    } else ctl_path(c, "support", p, sizeof p);
    char r[PATH_MAX];
    if (realpath(p, r)) snprintf(buf, n, "%s", r);
    else snprintf(buf, n, "%s", p);
}

void ctl_server_exe(const ctl_cfg *c, char *buf, size_t n) {
    if (c->server_bin[0]) { snprintf(buf, n, "%s", c->server_bin); return; }
    char rt[PATH_MAX];
    ctl_runtime_dir(c, rt, sizeof rt);
    snprintf(buf, n, "%s/ds4-server", rt);
}

void ctl_base_url(const ctl_cfg *c, char *buf, size_t n) {
    snprintf(buf, n, "http://%s:%ld/v1", c->host, c->port);
}

int ctl_scale_is_zero(const char *s) {
    if (!s) return 1;
    while (*s == ' ' || *s == '\t') s++;
    if (!*s) return 1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (*end == ' ' || *end == '\t') end++;
    if (end == s || *end) return 0; /* non-numeric counts as non-zero (passed verbatim) */
    return v == 0.0;
}

static int push(char ***v, int *n, int *cap, const char *s) {
    if (*n + 2 > *cap) {
        int nc = *cap ? *cap * 2 : 32;
        char **nv = realloc(*v, (size_t)nc * sizeof *nv);
        if (!nv) return -1;
        *v = nv; *cap = nc;
    }
    (*v)[*n] = strdup(s);
    if (!(*v)[*n]) return -1;
    (*n)++;
    (*v)[*n] = NULL;
    return 0;
}

int ctl_server_argv(const ctl_cfg *c, char ***argv_out) {
    char **v = NULL; int n = 0, cap = 0;
    char exe[PATH_MAX], kv[PATH_MAX], num[32];
    ctl_server_exe(c, exe, sizeof exe);
    ctl_path(c, "kv", kv, sizeof kv);
    int bad = push(&v, &n, &cap, exe);
    snprintf(num, sizeof num, "%ld", c->ctx);
    bad |= push(&v, &n, &cap, "--ctx") | push(&v, &n, &cap, num);
    bad |= push(&v, &n, &cap, "--kv-disk-dir") | push(&v, &n, &cap, kv);
    snprintf(num, sizeof num, "%ld", c->kv_mb);
    bad |= push(&v, &n, &cap, "--kv-disk-space-mb") | push(&v, &n, &cap, num);
    if (c->mt_set) bad |= push(&v, &n, &cap, "--mt") | push(&v, &n, &cap, c->mt);
    else if (c->mpp_set) bad |= push(&v, &n, &cap, "--mpp") | push(&v, &n, &cap, c->mpp);
    /* §10.1: the three steering flags travel together; both scales zero (or no file)
     * means an unsteered model, so none are passed. */
    if (c->steer_file[0] && !(ctl_scale_is_zero(c->steer_ffn) && ctl_scale_is_zero(c->steer_attn))) {
        bad |= push(&v, &n, &cap, "--dir-steering-file") | push(&v, &n, &cap, c->steer_file);
        bad |= push(&v, &n, &cap, "--dir-steering-ffn") | push(&v, &n, &cap, c->steer_ffn[0] ? c->steer_ffn : "0");
        bad |= push(&v, &n, &cap, "--dir-steering-attn") | push(&v, &n, &cap, c->steer_attn[0] ? c->steer_attn : "0");
    }
    if (strcmp(c->host, "127.0.0.1") != 0) bad |= push(&v, &n, &cap, "--host") | push(&v, &n, &cap, c->host);
    if (c->port != 8000) {
        snprintf(num, sizeof num, "%ld", c->port);
        bad |= push(&v, &n, &cap, "--port") | push(&v, &n, &cap, num);
    }
    char extra[sizeof c->extra_args];
    memcpy(extra, c->extra_args, sizeof extra);
    for (char *save = NULL, *t = strtok_r(extra, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save))
        bad |= push(&v, &n, &cap, t);
    if (bad) { ctl_argv_free(v); return -1; }
    *argv_out = v;
    return n;
}

void ctl_argv_free(char **argv) {
    if (!argv) return;
    for (char **p = argv; *p; p++) free(*p);
    free(argv);
}

const char *ctl_exit_name(int code) {
    static const char *names[] = {"OK", "ERROR", "USAGE", "LOCK_TIMEOUT", "RAM_TOO_SMALL",
        "CHECKOUT_FAILED", "BUILD_FAILED", "DOWNLOAD_FAILED", "DISK_FULL", "INTEGRITY",
        "PORT_TAKEN", "SERVER_EXITED", "READY_TIMEOUT", "IDENTITY", "CANCELLED", "CRASH_LOOP"};
    if (code < 0 || code > 15) return "ERROR";
    return names[code];
}
