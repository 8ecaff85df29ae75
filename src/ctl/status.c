/* status.c - `ds4ctl status` and `ds4ctl config` (spec §21.12): a read-only diagnosis.
 *
 * status never changes anything: it reports what each piece of state says and what the
 * processes behind it really are (identity checked, HTTP probed, port owner named), so
 * a user can see why something is stuck before running recover. Both commands build
 * one JSON object; --json prints it, otherwise it is rendered as text. */
#include "ctl/ctl.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static json_t *config_obj(const ctl_cfg *c) {
    char rt[PATH_MAX], exe[PATH_MAX], base[512];
    ctl_runtime_dir(c, rt, sizeof rt);
    ctl_server_exe(c, exe, sizeof exe);
    ctl_base_url(c, base, sizeof base);
    json_t *o = json_object();
    json_object_set_new(o, "home", json_string(c->home));
    json_object_set_new(o, "runtimeDir", json_string(rt));
    json_object_set_new(o, "serverBinary", json_string(exe));
    json_object_set_new(o, "baseUrl", json_string(base));
    char **argv;
    json_t *a = json_array();
    if (ctl_server_argv(c, &argv) > 0) {
        for (int i = 1; argv[i]; i++) json_array_append_new(a, json_string(argv[i]));
        ctl_argv_free(argv);
    }
    json_object_set_new(o, "serverArgs", a);
    json_object_set_new(o, "modelUrl", json_string(c->model_url));
    json_object_set_new(o, "modelFile", json_string(c->model_file));
    json_object_set_new(o, "verify", json_string(c->verify == CTL_VERIFY_NONE ? "none" : c->verify == CTL_VERIFY_SIZE ? "size" : "sha256"));
    json_object_set_new(o, "minRamGb", json_integer(c->min_ram_gb));
    json_object_set_new(o, "leaseTtlS", json_integer(c->lease_ttl_s));
    json_object_set_new(o, "watchdogPollS", json_integer(c->poll_s));
    json_object_set_new(o, "idleGraceS", json_integer(c->idle_grace_s));
    json_object_set_new(o, "shutdownGraceS", json_integer(c->shutdown_grace_s));
    json_object_set_new(o, "readyTimeoutMs", json_integer(c->ready_timeout_ms));
    return o;
}

int ctl_cmd_config(const ctl_cfg *c, int json) {
    json_t *o = config_obj(c);
    if (json) {
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", s);
        free(s);
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v) {
            if (json_is_array(v)) {
                printf("%-16s", k);
                size_t i; json_t *e;
                json_array_foreach(v, i, e) printf(" %s", json_string_value(e));
                printf("\n");
            } else if (json_is_string(v)) printf("%-16s %s\n", k, json_string_value(v));
            else printf("%-16s %lld\n", k, (long long)json_integer_value(v));
        }
    }
    json_decref(o);
    return CTL_OK;
}

static void lease_cb(void *ud, const char *name, pid_t pid, int st, int64_t age) {
    json_t *a = ud;
    json_t *o = json_object();
    json_object_set_new(o, "file", json_string(name));
    json_object_set_new(o, "pid", json_integer(pid));
    json_object_set_new(o, "state", json_string(ctl_lease_state_name(st)));
    json_object_set_new(o, "ageMs", json_integer(age));
    json_array_append_new(a, o);
}

int ctl_cmd_status(const ctl_cfg *c, int json) {
    json_t *r = json_object();
    json_object_set_new(r, "config", config_obj(c));
    char rt[PATH_MAX], p[PATH_MAX + 64];
    ctl_runtime_dir(c, rt, sizeof rt);

    /* model */
    char final[PATH_MAX + 300];
    snprintf(final, sizeof final, "%s/gguf/%s", rt, c->model_file);
    struct stat st;
    json_t *m = json_object();
    snprintf(p, sizeof p, "%s.part", final);
    if (stat(final, &st) == 0 && st.st_size > 0) {
        json_object_set_new(m, "state", json_string("complete"));
        json_object_set_new(m, "size", json_integer(st.st_size));
        snprintf(p, sizeof p, "%s.json", final);
        json_t *v = ctl_json_read(p);
        if (v && ctl_json_int(v, "size", -1) == st.st_size) json_object_set_new(m, "state", json_string("verified"));
        json_decref(v);
    } else if (stat(p, &st) == 0) {
        json_object_set_new(m, "state", json_string("partial"));
        json_object_set_new(m, "size", json_integer(st.st_size));
        snprintf(p, sizeof p, "%s.part.json", final);
        json_t *v = ctl_json_read(p);
        json_object_set_new(m, "total", json_integer(ctl_json_int(v, "total", -1)));
        json_decref(v);
    } else json_object_set_new(m, "state", json_string("absent"));
    json_object_set_new(m, "path", json_string(final));
    json_object_set_new(r, "model", m);

    /* server */
    ctl_server s;
    ctl_server_load(c, &s);
    json_t *so = json_object();
    json_object_set_new(so, "recorded", json_boolean(s.present));
    if (s.present) {
        char why[256];
        json_object_set_new(so, "pid", json_integer(s.pid));
        json_object_set_new(so, "managed", json_boolean(s.managed));
        json_object_set_new(so, "stopping", json_boolean(s.stopping));
        int ok = s.managed ? ctl_server_is_ours(&s, why, sizeof why)
                           : ctl_same_process(s.pid, ctl_json_str(s.j, "processStart"), ctl_json_str(s.j, "processStartId"));
        if (!s.managed) snprintf(why, sizeof why, ok ? "ok" : "pid gone");
        json_object_set_new(so, "identity", json_string(why));
        json_object_set_new(so, "alive", json_boolean(ok));
        json_object_set_new(so, "uptimeS", json_integer((ctl_now_ms() - ctl_json_int(s.j, "startedAt", ctl_now_ms())) / 1000));
    }
    json_object_set_new(so, "httpReady", json_boolean(ctl_server_ready(c->host, c->port, 1500)));
    pid_t pids[8];
    int any = 0, n = ctl_port_listeners(c->port, pids, 8, &any);
    json_t *lst = json_array();
    for (int i = 0; i < n; i++) {
        char args[1024];
        if (ctl_cmdline(pids[i], args, sizeof args) != 0) args[0] = 0;
        json_array_append_new(lst, json_pack("{s:i,s:s}", "pid", (int)pids[i], "command", args));
    }
    if (any && n == 0) json_array_append_new(lst, json_pack("{s:n,s:s}", "pid", "command", "(another user)"));
    json_object_set_new(so, "portListeners", lst);
    json_object_set_new(r, "server", so);
    ctl_server_free(&s);

    /* leases */
    json_t *la = json_array();
    int valid = ctl_leases_count(c, 0, 0, lease_cb, la);
    json_object_set_new(r, "leases", la);
    json_object_set_new(r, "validLeases", json_integer(valid));

    /* watchdog */
    json_t *w = json_object();
    json_object_set_new(w, "running", json_boolean(ctl_watchdog_running(c)));
    json_t *ws = ctl_json_read(ctl_path(c, "watchdog.state.json", p, sizeof p));
    if (ws) json_object_set_new(w, "pid", json_integer(ctl_json_int(ws, "pid", 0)));
    json_decref(ws);
    json_object_set_new(r, "watchdog", w);

    /* lock */
    json_t *owner = NULL;
    int held = ctl_lock_probe(c, &owner);
    json_t *lk = json_object();
    json_object_set_new(lk, "held", json_boolean(held));
    if (held && owner) {
        json_object_set_new(lk, "pid", json_integer(ctl_json_int(owner, "pid", 0)));
        json_object_set_new(lk, "operation", json_string(ctl_json_str(owner, "operation") ? ctl_json_str(owner, "operation") : "?"));
        json_object_set_new(lk, "since", json_integer(ctl_json_int(owner, "createdAt", 0)));
    }
    json_decref(owner);
    json_object_set_new(r, "lock", lk);

    double ram = ctl_total_ram_gb();
    json_object_set_new(r, "ramGb", json_real((double)(long)(ram * 10) / 10));
    struct statvfs vs;
    if (statvfs(rt, &vs) == 0 || statvfs(c->home, &vs) == 0)
        json_object_set_new(r, "freeDiskGb", json_real((double)(long)((double)vs.f_bavail * (double)vs.f_frsize / 1e8) / 10));
    json_t *lf = ctl_json_read(ctl_path(c, "last-failure.json", p, sizeof p));
    json_object_set_new(r, "lastFailures", lf ? json_incref(json_object_get(lf, "failures")) : json_array());
    json_decref(lf);

    if (json) {
        char *t = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", t);
        free(t);
    } else {
        json_t *cf = json_object_get(r, "config");
        printf("state dir     %s\n", c->home);
        printf("runtime dir   %s\n", rt);
        printf("endpoint      %s\n", ctl_json_str(cf, "baseUrl"));
        printf("model         %s", ctl_json_str(m, "state"));
        if (json_object_get(m, "size")) printf(" (%lld bytes)", (long long)ctl_json_int(m, "size", 0));
        printf("  %s\n", final);
        if (ctl_json_bool(so, "recorded"))
            printf("server        pid %lld, %s, %s%s, identity %s, up %llds\n", (long long)ctl_json_int(so, "pid", 0),
                   ctl_json_bool(so, "managed") ? "managed" : "unmanaged",
                   ctl_json_bool(so, "alive") ? "alive" : "NOT RUNNING", ctl_json_bool(so, "stopping") ? ", stopping" : "",
                   ctl_json_str(so, "identity"), (long long)ctl_json_int(so, "uptimeS", 0));
        else printf("server        none recorded\n");
        printf("http          %s\n", ctl_json_bool(so, "httpReady") ? "ready" : "not answering");
        size_t i; json_t *e;
        json_array_foreach(lst, i, e) printf("port owner    pid %lld %s\n", (long long)ctl_json_int(e, "pid", 0), ctl_json_str(e, "command"));
        printf("leases        %d valid\n", valid);
        json_array_foreach(la, i, e) printf("  %-16s pid %-8lld %-20s age %llds\n", ctl_json_str(e, "file"), (long long)ctl_json_int(e, "pid", 0),
                                          ctl_json_str(e, "state"), (long long)(ctl_json_int(e, "ageMs", 0) / 1000));
        printf("watchdog      %s\n", ctl_json_bool(w, "running") ? "running" : "not running");
        if (held) printf("lock          held by pid %lld (%s)\n", (long long)ctl_json_int(lk, "pid", 0), ctl_json_str(lk, "operation"));
        else printf("lock          free\n");
        printf("RAM           %.1f GB (minimum %ld GB)\n", ram, c->min_ram_gb);
        json_t *fails = json_object_get(r, "lastFailures");
        json_array_foreach(fails, i, e) printf("failure       %s: %s\n", ctl_json_str(e, "code"), ctl_json_str(e, "message"));
    }
    json_decref(r);
    return CTL_OK;
}
