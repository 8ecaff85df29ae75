/* ensure.c - `ds4ctl ensure` (spec §21.7): make the server usable for one client.
 *
 * The pi extension calls this before every request, so the common case (server up)
 * is a lock-free fast path: write the lease, read server.json, probe /v1/models. The
 * slow path runs under the lifecycle lock: watchdog, server inspection (our record,
 * a stopping server, who holds the port), RAM/quant, prepare, spawn; readiness is
 * awaited outside the lock so other clients are not serialised behind a model load.
 *
 * The lease is written before server.json is read, and the watchdog writes `stopping`
 * before its final lease count: one of the two always sees the other. A foreign
 * process on the port is reported with its pid and command line and never signalled;
 * another ds4-server is used as unmanaged and never stopped by us. */
#include "ctl/ctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int http_ok(const ctl_cfg *c) {
    return ctl_server_ready(c->host, c->port, 1500);
}

/* ---- crash-loop bookkeeping (last-failure.json) ---- */

static int recent_failures(const ctl_cfg *c) {
    char p[PATH_MAX];
    json_t *o = ctl_json_read(ctl_path(c, "last-failure.json", p, sizeof p));
    json_t *a = o ? json_object_get(o, "failures") : NULL;
    int n = 0;
    size_t i;
    json_t *f;
    int64_t now = ctl_now_ms();
    json_array_foreach(a, i, f) if (now - ctl_json_int(f, "at", 0) <= 600000) n++;
    json_decref(o);
    return n;
}

static void record_failure(const ctl_cfg *c, int code, const char *msg) {
    char p[PATH_MAX];
    ctl_path(c, "last-failure.json", p, sizeof p);
    json_t *o = ctl_json_read(p);
    if (!o) o = json_object();
    json_t *a = json_object_get(o, "failures");
    if (!json_is_array(a)) { a = json_array(); json_object_set_new(o, "failures", a); }
    json_t *f = json_object();
    json_object_set_new(f, "at", json_integer(ctl_now_ms()));
    json_object_set_new(f, "code", json_string(ctl_exit_name(code)));
    json_object_set_new(f, "message", json_string(msg));
    json_array_append_new(a, f);
    while (json_array_size(a) > 10) json_array_remove(a, 0);
    json_object_set_new(o, "managedBy", json_string(CTL_MANAGED_BY));
    ctl_json_write(p, o, 0, NULL);
    json_decref(o);
}

static void clear_failures(const ctl_cfg *c) {
    char p[PATH_MAX];
    unlink(ctl_path(c, "last-failure.json", p, sizeof p));
}

/* ---- server.json records ---- */

static json_t *base_record(const ctl_cfg *c, pid_t pid, int managed, int adopted) {
    char base[512], logp[PATH_MAX], iso[40];
    ctl_base_url(c, base, sizeof base);
    int64_t now = ctl_now_ms();
    ctl_iso_ms(now, iso, sizeof iso);
    ctl_ident id;
    if (ctl_ident_get(pid, &id) != 0) memset(&id, 0, sizeof id);
    json_t *o = json_object();
    json_object_set_new(o, "managedBy", json_string(CTL_MANAGED_BY));
    json_object_set_new(o, "pid", json_integer(pid));
    json_object_set_new(o, "baseUrl", json_string(base));
    json_object_set_new(o, "cwd", json_string(""));
    json_object_set_new(o, "binary", json_string(""));
    json_object_set_new(o, "args", json_array());
    json_object_set_new(o, "startedAt", json_integer(now));
    json_object_set_new(o, "startedAtIso", json_string(iso));
    json_object_set_new(o, "host", json_string(c->host));
    json_object_set_new(o, "port", json_integer(c->port));
    json_object_set_new(o, "processStart", json_string(id.start));
    json_object_set_new(o, "processStartId", json_string(id.start_id));
    json_object_set_new(o, "spawnToken", json_string(""));
    json_object_set_new(o, "managed", json_boolean(managed));
    json_object_set_new(o, "adopted", json_boolean(adopted));
    json_object_set_new(o, "logFile", json_string(ctl_path(c, "log", logp, sizeof logp)));
    json_object_set_new(o, "version", json_integer(1));
    return o;
}

static void rotate_log(const ctl_cfg *c) {
    if (c->log_max_mb <= 0) return;
    char p[PATH_MAX], p1[PATH_MAX + 4];
    ctl_path(c, "log", p, sizeof p);
    struct stat st;
    if (stat(p, &st) != 0 || st.st_size <= c->log_max_mb * 1048576L) return;
    snprintf(p1, sizeof p1, "%s.1", p);
    rename(p, p1);
}

static int spawn_server(const ctl_cfg *c, pid_t *pid_out, ds4_err *err) {
    char **argv = NULL;
    if (ctl_server_argv(c, &argv) < 0) return ds4_errf(err, "out of memory building the server argv"), CTL_ERROR;
    if (access(argv[0], X_OK) != 0) {
        ds4_errf(err, "Cannot execute ds4-server at %s: %s", argv[0], strerror(errno));
        ctl_argv_free(argv);
        return CTL_SERVER_EXITED;
    }
    char runtime[PATH_MAX], logp[PATH_MAX], line[8192], tok[40], tokenv[64], homeenv[PATH_MAX + 16];
    ctl_runtime_dir(c, runtime, sizeof runtime);
    ctl_path(c, "log", logp, sizeof logp);
    rotate_log(c);
    ctl_quote_argv(argv, line, sizeof line);
    ctl_log(c, "start ds4-server");
    ctl_log(c, "$ %s", line);
    ctl_random_hex(tok, 16);
    snprintf(tokenv, sizeof tokenv, "DS4CTL_SPAWN_TOKEN=%s", tok);
    snprintf(homeenv, sizeof homeenv, "DS4CTL_HOME=%s", c->home);
    const char *add[] = {tokenv, homeenv, NULL};
    pid_t pid;
    ds4_err e2 = {{0}};
    if (ctl_spawn_detached(runtime, argv, logp, add, &pid, &e2) != 0) {
        ds4_errf(err, "%s", e2.msg);
        ctl_argv_free(argv);
        return CTL_SERVER_EXITED;
    }
    json_t *o = base_record(c, pid, 1, 0);
    json_object_set_new(o, "cwd", json_string(runtime));
    json_object_set_new(o, "binary", json_string(argv[0]));
    json_t *args = json_array();
    for (int i = 1; argv[i]; i++) json_array_append_new(args, json_string(argv[i]));
    json_object_set_new(o, "args", args);
    json_object_set_new(o, "spawnToken", json_string(tok));
    char model[PATH_MAX + 16];
    snprintf(model, sizeof model, "%s/ds4flash.gguf", runtime);
    json_object_set_new(o, "modelPath", json_string(model));
    int rc = ctl_server_write(c, o, err);
    json_decref(o);
    ctl_argv_free(argv);
    *pid_out = pid;
    return rc ? CTL_ERROR : CTL_OK;
}

/* §21.7 step 7, "who listens on the port". Returns CTL_OK with *adopted_pid set when a
 * usable server was recorded, CTL_OK with *adopted_pid = 0 when the port is free,
 * else CTL_PORT_TAKEN. */
static int inspect_port(const ctl_cfg *c, pid_t *adopted_pid, int *managed, ds4_err *err) {
    *adopted_pid = 0;
    *managed = 0;
    pid_t pids[16];
    int any = 0;
    int n = ctl_port_listeners(c->port, pids, 16, &any);
    if (!any) return CTL_OK;
    for (int i = 0; i < n; i++) {
        char home[PATH_MAX], tok[128], args[4096], exe[PATH_MAX];
        if (ctl_cmdline(pids[i], args, sizeof args) != 0) args[0] = 0;
        if (ctl_proc_env(pids[i], "DS4CTL_HOME", home, sizeof home) == 1 && !strcmp(home, c->home) &&
            ctl_proc_env(pids[i], "DS4CTL_SPAWN_TOKEN", tok, sizeof tok) == 1) {
            /* Ours, but its record was lost: re-adopt as managed. */
            json_t *o = base_record(c, pids[i], 1, 1);
            if (ctl_exe_path(pids[i], exe, sizeof exe) != 0) exe[0] = 0;
            const char *bin = exe;
            char first[PATH_MAX];
            if (!ctl_looks_like_ds4_server(exe) && args[0]) {
                /* interpreted: the script path is the first argument that names ds4-server */
                snprintf(first, sizeof first, "%s", args);
                for (char *save = NULL, *t = strtok_r(first, " ", &save); t; t = strtok_r(NULL, " ", &save))
                    if (ctl_looks_like_ds4_server(t)) { bin = t; break; }
            }
            json_object_set_new(o, "binary", json_string(bin));
            json_object_set_new(o, "args", json_pack("[s]", args));
            json_object_set_new(o, "spawnToken", json_string(tok));
            ctl_server_write(c, o, NULL);
            json_decref(o);
            ctl_log(c, "re-adopted ds4-server pid=%d (spawned by ds4ctl, record was lost)", (int)pids[i]);
            *adopted_pid = pids[i];
            *managed = 1;
            return CTL_OK;
        }
        if (ctl_looks_like_ds4_server(args)) {
            if (c->foreign == CTL_FOREIGN_REFUSE)
                return ds4_errf(err, "port %ld is in use by pid %d (%s), a ds4-server not started by ds4ctl; "
                                "DS4_FOREIGN_POLICY=refuse", c->port, (int)pids[i], args), CTL_PORT_TAKEN;
            json_t *o = base_record(c, pids[i], 0, 1);
            json_object_set_new(o, "binary", json_string(args));
            json_object_set_new(o, "args", json_pack("[s]", args));
            ctl_server_write(c, o, NULL);
            json_decref(o);
            ctl_ev_status("spawn", "using an unmanaged ds4-server on :%ld (pid %d); it will not be stopped automatically",
                          c->port, (int)pids[i]);
            ctl_log(c, "using an unmanaged ds4-server on :%ld (pid %d)", c->port, (int)pids[i]);
            *adopted_pid = pids[i];
            return CTL_OK;
        }
    }
    if (c->foreign == CTL_FOREIGN_USE_ANY) {
        char body[65536];
        int st = ctl_http_models(c->host, c->port, 1500, body, sizeof body);
        if (st >= 200 && st < 300 && strstr(body, "deepseek-v4-flash")) {
            json_t *o = base_record(c, n > 0 ? pids[0] : 0, 0, 1);
            ctl_server_write(c, o, NULL);
            json_decref(o);
            ctl_ev_status("spawn", "using an unmanaged server on :%ld; it will not be stopped automatically", c->port);
            *adopted_pid = n > 0 ? pids[0] : -1;
            return CTL_OK;
        }
    }
    if (n > 0) {
        char args[1024];
        if (ctl_cmdline(pids[0], args, sizeof args) != 0) snprintf(args, sizeof args, "?");
        return ds4_errf(err, "port %ld is in use by pid %d (%s); ds4-server cannot start there. Stop that "
                        "program or set DS4_PORT to a free port (ds4ctl never kills it)", c->port, (int)pids[0], args), CTL_PORT_TAKEN;
    }
    return ds4_errf(err, "port %ld is in use by a process of another user; ds4-server cannot start there. "
                    "Set DS4_PORT to a free port", c->port), CTL_PORT_TAKEN;
}

static int fail(const ctl_cfg *c, int rc, ds4_err *err, int with_tail) {
    if (rc == CTL_SERVER_EXITED || rc == CTL_READY_TIMEOUT) record_failure(c, rc, err->msg);
    ctl_ev_error(rc, err->msg, with_tail ? c : NULL);
    return rc;
}

int ctl_cmd_ensure(const ctl_cfg *c, pid_t client_pid, const char *client, int no_wait) {
    int64_t t0 = ctl_mono_ms();
    ds4_err err = {{0}};
    char dir[PATH_MAX], base[512];
    ctl_base_url(c, base, sizeof base);
    if (ctl_mkdirs(c->home, 0755) != 0 || ctl_mkdirs(ctl_path(c, "kv", dir, sizeof dir), 0755) != 0 ||
        ctl_mkdirs(ctl_path(c, "clients", dir, sizeof dir), 0755) != 0) {
        ds4_errf(&err, "cannot create the state directory %s: %s", c->home, strerror(errno));
        return fail(c, CTL_ERROR, &err, 0);
    }
    int rc;
    if (client_pid > 0 && (rc = ctl_lease_write(c, client_pid, client, 0, &err))) return fail(c, rc, &err, 0);

    /* Fast path: no lock. */
    ctl_server s;
    ctl_server_load(c, &s);
    char why[256];
    if (s.present && !s.stopping) {
        int usable = s.managed ? ctl_server_is_ours(&s, why, sizeof why)
                               : (s.pid <= 0 || ctl_same_process(s.pid, ctl_json_str(s.j, "processStart"),
                                                                 ctl_json_str(s.j, "processStartId")));
        if (usable && (!s.managed || ctl_watchdog_running(c)) && http_ok(c)) {
            ctl_ev_ready(base, s.pid, s.managed, 1, ctl_mono_ms() - t0);
            ctl_server_free(&s);
            return CTL_OK;
        }
    }
    ctl_server_free(&s);

    int announced = 0;
    pid_t pid = 0;
    int managed = 1;
    for (;;) {
        if (!announced) { ctl_ev_status("lock", "preparing ds4-server"); announced = 1; }
        ctl_lock l;
        if ((rc = ctl_lock_acquire(c, &l, "ensure", (double)c->lock_timeout_s, 0, &err))) return fail(c, rc, &err, 0);
        if (client_pid > 0 && (rc = ctl_lease_write(c, client_pid, client, 0, &err))) { ctl_lock_release(c, &l); return fail(c, rc, &err, 0); }
        if (ctl_watchdog_ensure(c, &err) != 0) { ctl_lock_release(c, &l); return fail(c, CTL_ERROR, &err, 0); }
        ctl_server_load(c, &s);
        if (s.present) {
            int ours = s.managed && ctl_server_is_ours(&s, why, sizeof why);
            int unmanaged_ok = !s.managed && (s.pid > 0 ? ctl_same_process(s.pid, ctl_json_str(s.j, "processStart"),
                                                                           ctl_json_str(s.j, "processStartId"))
                                                        : http_ok(c));
            if (ours && s.stopping) {
                pid_t old = s.pid;
                ctl_server_free(&s);
                ctl_lock_release(c, &l);
                ctl_ev_status("stopping-wait", "waiting for previous ds4-server shutdown");
                int64_t w0 = ctl_mono_ms();
                while (ctl_alive(old) && ctl_mono_ms() - w0 < (c->shutdown_grace_s + 5) * 1000 && !ctl_cancelled)
                    ctl_sleep_ms(250);
                if (ctl_cancelled) { ds4_errf(&err, "ds4 startup cancelled"); return fail(c, CTL_CANCELLED, &err, 0); }
                if (ctl_alive(old)) { ds4_errf(&err, "Previous ds4-server pid %d did not exit", (int)old); return fail(c, CTL_SERVER_EXITED, &err, 0); }
                continue;
            }
            if (ours || unmanaged_ok) {
                pid = s.pid;
                managed = s.managed;
                ctl_server_free(&s);
                ctl_lock_release(c, &l);
                break;
            }
            if (!s.managed) snprintf(why, sizeof why, "unmanaged server pid %d gone", (int)s.pid);
            ctl_log(c, "stale server.json (%s) removed", why);
            ctl_server_remove(c);
        }
        ctl_server_free(&s);
        pid_t adopted;
        if ((rc = inspect_port(c, &adopted, &managed, &err))) { ctl_lock_release(c, &l); return fail(c, rc, &err, 0); }
        if (adopted) { pid = adopted; ctl_lock_release(c, &l); break; }
        managed = 1;
        if ((rc = ctl_check_quant_ram(c, &err))) { ctl_lock_release(c, &l); return fail(c, rc, &err, 0); }
        if (recent_failures(c) >= 3) {
            ctl_lock_release(c, &l);
            ds4_errf(&err, "ds4-server keeps failing (3 times in 10 minutes); see ds4ctl logs, then ds4ctl recover");
            return fail(c, CTL_CRASH_LOOP, &err, 1);
        }
        if ((rc = ctl_prepare(c, &l, &err))) { ctl_lock_release(c, &l); return fail(c, rc, &err, 0); }
        ctl_ev_status("spawn", "starting ds4-server");
        rc = spawn_server(c, &pid, &err);
        ctl_lock_release(c, &l);
        if (rc) return fail(c, rc, &err, 1);
        break;
    }
    if (no_wait) {
        ctl_ev_status("ready-wait", "ds4-server pid %d started; not waiting for readiness", (int)pid);
        return CTL_OK;
    }

    /* Readiness, outside the lock. */
    int64_t w0 = ctl_mono_ms(), last_note = w0;
    for (;;) {
        if (http_ok(c)) break;
        if (ctl_cancelled) { ds4_errf(&err, "ds4 startup cancelled"); return fail(c, CTL_CANCELLED, &err, 0); }
        ctl_server_load(c, &s);
        /* Liveness only (pid + start time): the executable/token checks guard
         * signals, and a #! server is briefly its interpreter while it starts. */
        int gone;
        if (managed) {
            gone = !s.present || s.pid != pid ||
                   !ctl_same_process(pid, ctl_json_str(s.j, "processStart"), ctl_json_str(s.j, "processStartId"));
            snprintf(why, sizeof why, "%s", !s.present ? "record removed" : s.pid != pid ? "record replaced" : "process gone");
        } else {
            gone = pid > 0 && !ctl_alive(pid);
            snprintf(why, sizeof why, "process gone");
        }
        ctl_server_free(&s);
        if (gone) {
            char logp[PATH_MAX];
            ctl_log(c, "ds4-server pid=%d exited before becoming ready (%s)", (int)pid, why);
            ds4_errf(&err, "ds4-server exited before becoming ready; see %s", ctl_path(c, "log", logp, sizeof logp));
            ctl_lock l;
            if (ctl_lock_acquire(c, &l, "ensure", 30, 1, NULL) == CTL_OK) {
                ctl_server_load(c, &s);
                if (s.present && s.pid == pid && !ctl_alive(pid)) ctl_server_remove(c);
                ctl_server_free(&s);
                ctl_lock_release(c, &l);
            }
            return fail(c, CTL_SERVER_EXITED, &err, 1);
        }
        int64_t now = ctl_mono_ms();
        if (now - w0 >= c->ready_timeout_ms) {
            char logp[PATH_MAX];
            ds4_errf(&err, "Timed out waiting for ds4-server at %s; see %s", base, ctl_path(c, "log", logp, sizeof logp));
            return fail(c, CTL_READY_TIMEOUT, &err, 1);
        }
        if (now - last_note >= 10000) {
            ctl_ev_status("ready-wait", "ds4-server starting (%llds)", (long long)((now - w0) / 1000));
            last_note = now;
        }
        ctl_sleep_ms(now - w0 < 5000 ? 250 : 1000);
    }
    clear_failures(c);
    if (client_pid > 0) ctl_lease_write(c, client_pid, client, 0, NULL);
    ctl_ev_ready(base, pid, managed, 0, ctl_mono_ms() - t0);
    return CTL_OK;
}
