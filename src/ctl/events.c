/* events.c - what ds4ctl tells its caller while it works (§21.2 "Event objects").
 *
 * Two renderings of the same events: JSON lines on stdout for programs (the pi
 * extension parses them), and short human text for a terminal, where download progress
 * is one line rewritten in place with \r. Progress is throttled to one event per
 * 750 ms per phase (the final one always goes out), the rate the extension shows. */
#include "ctl/ctl.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int g_mode = CTL_OUT_TEXT, g_quiet, g_progress_open;
static char g_share_path[PATH_MAX]; /* progress.json while we hold the lifecycle lock */

void ctl_events_share_progress(const char *path) {
    snprintf(g_share_path, sizeof g_share_path, "%s", path ? path : "");
}

/* The lock holder's latest progress, for clients waiting on the lock (§21.3). */
static void share(const char *phase, const char *message, int64_t received, int64_t total) {
    if (!g_share_path[0]) return;
    json_t *o = json_object();
    json_object_set_new(o, "managedBy", json_string(CTL_MANAGED_BY));
    json_object_set_new(o, "pid", json_integer(getpid()));
    json_object_set_new(o, "phase", json_string(phase));
    json_t *m = json_string(message);
    json_object_set_new(o, "message", m ? m : json_string(""));
    if (total >= 0) {
        json_object_set_new(o, "received", json_integer(received));
        json_object_set_new(o, "total", json_integer(total));
    }
    json_object_set_new(o, "updatedAt", json_integer(ctl_now_ms()));
    ctl_json_write(g_share_path, o, 0, NULL);
    json_decref(o);
}

void ctl_events_init(int mode, int quiet) { g_mode = mode; g_quiet = quiet; }
int ctl_events_mode(void) { return g_mode; }

static void emit(json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    if (s) { fprintf(stdout, "%s\n", s); fflush(stdout); free(s); }
    json_decref(o);
}

static void end_progress_line(void) {
    if (g_progress_open) { fputc('\n', stderr); g_progress_open = 0; }
}

void ctl_ev_status(const char *phase, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g_mode == CTL_OUT_JSONL) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("status"));
        json_object_set_new(o, "phase", json_string(phase));
        json_object_set_new(o, "message", json_string(msg));
        emit(o);
    } else if (!g_quiet) {
        end_progress_line();
        printf("ds4ctl: %s\n", msg);
        fflush(stdout);
    }
}

void ctl_human_bytes(double b, char *buf, size_t n) {
    if (b >= 1e9) snprintf(buf, n, "%.1f GB", b / 1e9);
    else if (b >= 1e6) snprintf(buf, n, "%.1f MB", b / 1e6);
    else if (b >= 1e3) snprintf(buf, n, "%.1f KB", b / 1e3);
    else snprintf(buf, n, "%.0f B", b);
}

void ctl_ev_progress(const char *phase, int64_t received, int64_t total, double bps, int final) {
    static char last_phase[32];
    static int64_t last_ms;
    int64_t now = ctl_mono_ms();
    if (!final && !strcmp(last_phase, phase) && now - last_ms < 750) return;
    snprintf(last_phase, sizeof last_phase, "%s", phase);
    last_ms = now;
    char rb[32], tb[32], sb[32], msg[256], eta[32] = "";
    ctl_human_bytes((double)received, rb, sizeof rb);
    ctl_human_bytes((double)total, tb, sizeof tb);
    ctl_human_bytes(bps, sb, sizeof sb);
    double pct = total > 0 ? 100.0 * (double)received / (double)total : 0;
    long eta_s = -1;
    if (bps > 0 && total > received) {
        eta_s = (long)((double)(total - received) / bps);
        snprintf(eta, sizeof eta, ", %02ld:%02ld:%02ld left", eta_s / 3600, eta_s / 60 % 60, eta_s % 60);
    }
    char speed[48] = "";
    if (bps > 0) snprintf(speed, sizeof speed, ", %s/s", sb);
    if (total > 0)
        snprintf(msg, sizeof msg, "%s / %s (%.0f%%%s%s)", rb, tb, pct, speed, eta);
    else
        snprintf(msg, sizeof msg, "%s", rb);
    share(phase, msg, received, total);
    if (g_mode == CTL_OUT_JSONL) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("progress"));
        json_object_set_new(o, "phase", json_string(phase));
        json_object_set_new(o, "received", json_integer(received));
        json_object_set_new(o, "total", json_integer(total));
        json_object_set_new(o, "percent", json_real((double)(long)(pct * 10) / 10));
        json_object_set_new(o, "bytesPerSec", json_integer((json_int_t)bps));
        if (eta_s >= 0) json_object_set_new(o, "etaSeconds", json_integer(eta_s));
        json_object_set_new(o, "message", json_string(msg));
        emit(o);
    } else if (!g_quiet && isatty(2)) {
        fprintf(stderr, "\r\033[K%s: %s", phase, msg);
        g_progress_open = 1;
        if (final) end_progress_line();
    }
}

void ctl_ev_progress_text(const char *phase, const char *message, int final) {
    static char last_phase[32];
    static int64_t last_ms;
    int64_t now = ctl_mono_ms();
    if (!final && !strcmp(last_phase, phase) && now - last_ms < 750) return;
    snprintf(last_phase, sizeof last_phase, "%s", phase);
    last_ms = now;
    share(phase, message, 0, -1);
    if (g_mode == CTL_OUT_JSONL) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("progress"));
        json_object_set_new(o, "phase", json_string(phase));
        json_t *m = json_string(message);
        json_object_set_new(o, "message", m ? m : json_string("(output not UTF-8)"));
        emit(o);
    } else if (!g_quiet && isatty(2)) {
        fprintf(stderr, "\r\033[K%s: %.150s", phase, message);
        g_progress_open = 1;
    }
}

void ctl_ev_waiting(const char *phase, pid_t holder, const char *op, int64_t since_ms) {
    if (g_mode == CTL_OUT_JSONL) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("waiting"));
        json_object_set_new(o, "phase", json_string(phase));
        json_object_set_new(o, "holderPid", json_integer(holder));
        json_object_set_new(o, "holderOperation", json_string(op));
        json_object_set_new(o, "sinceMs", json_integer(since_ms));
        emit(o);
    } else if (!g_quiet) {
        static pid_t said;
        if (said == holder) return;
        said = holder;
        end_progress_line();
        printf("ds4ctl: waiting for ds4 setup in process %d (%s)\n", (int)holder, op);
        fflush(stdout);
    }
}

void ctl_ev_ready(const char *base_url, pid_t pid, int managed, int already, int64_t elapsed_ms) {
    if (g_mode == CTL_OUT_JSONL) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("ready"));
        json_object_set_new(o, "baseUrl", json_string(base_url));
        json_object_set_new(o, "pid", pid > 0 ? json_integer(pid) : json_null());
        json_object_set_new(o, "managed", json_boolean(managed));
        json_object_set_new(o, "alreadyRunning", json_boolean(already));
        json_object_set_new(o, "elapsedMs", json_integer(elapsed_ms));
        emit(o);
    } else if (!g_quiet) {
        end_progress_line();
        printf("ds4ctl: ds4-server ready at %s (pid %d%s)\n", base_url, (int)pid,
               managed ? "" : ", unmanaged");
        fflush(stdout);
    }
}

void ctl_ev_error(int code, const char *message, const ctl_cfg *c) {
    char *tail = c ? ctl_log_tail(c, 64 * 1024, 20) : NULL;
    if (g_mode == CTL_OUT_JSONL) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string("error"));
        json_object_set_new(o, "code", json_string(ctl_exit_name(code)));
        json_object_set_new(o, "exit", json_integer(code));
        json_object_set_new(o, "message", json_string(message));
        json_t *arr = json_array();
        for (char *save = NULL, *l = tail ? strtok_r(tail, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save))
            json_array_append_new(arr, json_string(l));
        json_object_set_new(o, "logTail", arr);
        emit(o);
    } else {
        end_progress_line();
        fprintf(stderr, "ds4ctl: %s\n", message);
        if (tail && *tail) fprintf(stderr, "---- last lines of the log ----\n%s\n", tail);
    }
    free(tail);
}
