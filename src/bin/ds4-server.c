/* ds4-server.c - the ds4-server program: flags, single-instance lock, HTTP
 * listener, model load, the inference worker, clean shutdown
 * (spec/server.md §1.5, §2).
 *
 * The listener starts before the model loads so /health can answer 503
 * "Loading model" meanwhile (llama.cpp convention, §7.7 REC); generation
 * endpoints answer 503 until the model is ready. Exit codes: 0 clean
 * shutdown, 1 bind or load failure, 2 bad flags or another instance running,
 * 130 on a second signal. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "server/kvcache.h"
#include "server/server.h"
#include "server/textexec.h"
#include "server/trace.h"

static volatile sig_atomic_t g_signals;

static void on_signal(int sig) {
    (void)sig;
    if (++g_signals >= 2) _exit(130);
}

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...) {
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%m%d %H:%M:%S", &tm);
    fprintf(stderr, "%s ", ts);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* One ds4 process per machine by default: the model maps tens of GiB (§1.5). */
static int take_lock(void) {
    const char *path = getenv("DS4_LOCK_FILE");
    if (!path || !*path) path = "/tmp/ds4.lock";
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "ds4-server: cannot open lock file %s: %s (set DS4_LOCK_FILE to another path)\n", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = {0};
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        (void)n;
        fprintf(stderr, "ds4-server: another ds4 process is already running (lock %s held by pid %s)\n", path,
                pid[0] ? pid : "?");
        close(fd);
        return -1;
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) < 0) { /* informational only */ }
    return fd;   /* kept open for the life of the process */
}

/* --warm-weights: fault in every page of the mapped GGUF now, so the first
 * requests do not pay for page faults (a cold 87 GB mapping takes minutes). */
static void warm_weights(const ds4_model *m) {
    const gguf_file *f = ds4_model_gguf(m);
    if (!f || !f->base || !f->size) return;
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0) pg = 4096;
    madvise((void *)((uintptr_t)f->base & ~(uintptr_t)(pg - 1)), (size_t)f->size, MADV_WILLNEED);
    volatile uint8_t sink = 0;
    for (uint64_t o = 0; o < f->size; o += (uint64_t)pg) sink ^= f->base[o];
    (void)sink;
}

int main(int argc, char **argv) {
    static ds4s_server srv;
    ds4s_server *s = &srv;
    ds4_err err = {{0}};
    ds4s_config_default(&s->cfg);
    int rc = ds4s_config_parse(&s->cfg, argc, argv, &err);
    if (rc == 1) return 0;
    if (rc < 0) {
        fprintf(stderr, "%s\n\n", err.msg);
        ds4s_usage(stderr);
        return 2;
    }
    if (ds4s_config_validate(&s->cfg, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (s->cfg.chdir_to && chdir(s->cfg.chdir_to) != 0) {
        fprintf(stderr, "ds4-server: --chdir %s: %s\n", s->cfg.chdir_to, strerror(errno));
        return 2;
    }
    if (take_lock() < 0) return 2;

    if (strcmp(s->cfg.mt_mode, "auto")) logf_("note: --mt/--mpp %s is a Metal option; ignored on this platform", s->cfg.mt_mode);
    if (s->cfg.mtp) logf_("note: --mtp %s accepted; speculative decoding is not implemented yet", s->cfg.mtp);
    if (s->cfg.steer_policy && strcmp(s->cfg.steer_policy, "always"))
        logf_("note: --dir-steering-policy %s accepted; steering is applied to every token", s->cfg.steer_policy);
    if (s->cfg.test_script) {
        s->script = ds4s_script_load(s->cfg.test_script, &err);
        if (!s->script) {
            fprintf(stderr, "ds4-server: --test-script: %s\n", err.msg);
            return 2;
        }
        logf_("WARNING: --test-script %s: TEST MODE, the sampler emits scripted text instead of the model's choices",
              s->cfg.test_script);
    }

    if (s->cfg.trace && ds4s_trace_open(s->cfg.trace, &err) != 0) {
        fprintf(stderr, "ds4-server: %s\n", err.msg);
        return 2;
    }
    s->toolmem = s->cfg.disable_exact_replay ? NULL : ds4s_toolmem_new((size_t)s->cfg.tool_memory_max_ids, (size_t)512 << 20);
    s->resp = ds4s_respstore_new(256);
    if (ds4s_http_start(s, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    logf_("listening on http://%s:%d", s->cfg.host, s->cfg.port);

    ds4_model_opts mo = {.backend = s->cfg.backend, .n_threads = s->cfg.threads, .exact = s->cfg.quality,
                         .gpus = s->cfg.gpus};
    logf_("loading %s", s->cfg.model);
    s->model = ds4_model_load(s->cfg.model, &mo, &err);
    if (!s->model) {
        fprintf(stderr, "ds4-server: %s\n", err.msg);
        ds4s_http_stop(s);
        return 1;
    }
    logf_("backend %s, %s kernels%s", ds4_model_backend(s->model), ds4_model_exact(s->model) ? "exact" : "fast",
          ds4_model_exact(s->model) || s->cfg.quality ? "" : " (--quality for the exact reference order)");
    if (s->cfg.steer_file && ds4_model_load_steering(s->model, s->cfg.steer_file, &err) != 0) {
        fprintf(stderr, "ds4-server: --dir-steering-file: %s\n", err.msg);
        ds4s_http_stop(s);
        return 1;
    }
    if (s->cfg.warm_weights) {
        logf_("warming weights (%.1f MiB)", (double)((const gguf_file *)ds4_model_gguf(s->model))->size / (1 << 20));
        warm_weights(s->model);
    }
    s->vocab = ds4_vocab_from_gguf((const gguf_file *)ds4_model_gguf(s->model), &err);
    if (!s->vocab) {
        fprintf(stderr, "ds4-server: tokenizer: %s\n", err.msg);
        ds4s_http_stop(s);
        return 1;
    }
    s->n_vocab = ds4_model_n_vocab(s->model);
    s->session = ds4_session_new(s->model, s->cfg.ctx, &err);
    if (!s->session) {
        fprintf(stderr, "ds4-server: session (ctx %d): %s\n", s->cfg.ctx, err.msg);
        ds4s_http_stop(s);
        return 1;
    }
    ds4_session_set_steering(s->session, (float)s->cfg.steer_ffn, (float)s->cfg.steer_attn);
    if (ds4s_kvcache_open(s, &err) != 0) {
        fprintf(stderr, "ds4-server: %s\n", err.msg);
        ds4s_http_stop(s);
        return 2;
    }
    s->visible.frontier = -1;
    if (ds4s_textexec_start() != 0 || ds4s_worker_start(s) != 0) {
        fprintf(stderr, "ds4-server: cannot start the worker thread\n");
        return 1;
    }
    __atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
    logf_("ready: model %s, backend %s, ctx %d, vocab %d", ds4_model_name(s->model), ds4_model_backend(s->model),
          s->cfg.ctx, s->n_vocab);

    while (!g_signals) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    logf_("shutting down");
    /* Running generation ends with finish error; queued jobs generate nothing. */
    ds4s_worker_stop(s);
    /* Their replies are written; let the connection threads send them (a
     * loaded machine lost a queued request's "shutdown requested" here). */
    ds4s_http_drain(s, 5.0);
    ds4s_kvcache_close(s);      /* shutdown save of the live session (§13.2) */
    ds4s_http_stop(s);
    ds4s_textexec_stop();
    ds4s_trace_close();
    ds4_session_free(s->session);
    ds4_vocab_free(s->vocab);
    ds4_model_free(s->model);
    ds4s_toolmem_free(s->toolmem);
    ds4s_respstore_free(s->resp);
    ds4s_script_free(s->script);
    return 0;
}
