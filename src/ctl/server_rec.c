/* server_rec.c - server.json, the record of the managed (or adopted) ds4-server
 * (§3.4, §21.3), and the server identity test of §21.4.
 *
 * ds4ctl only ever signals a process whose identity is proven three ways: the same
 * process start (pid reuse defeated), the recorded executable (or, for a script run
 * through an interpreter, the recorded path as the script argument), and where the
 * environment is readable the spawn token ds4ctl put there. Part A's only check
 * ("args contain ds4-server") would happily kill a user's hand-started server. */
#include "ctl/ctl.h"

#include <string.h>
#include <unistd.h>

void ctl_server_load(const ctl_cfg *c, ctl_server *s) {
    memset(s, 0, sizeof *s);
    char p[PATH_MAX];
    s->j = ctl_json_read(ctl_path(c, "server.json", p, sizeof p));
    if (!s->j) return;
    s->present = 1;
    s->pid = (pid_t)ctl_json_int(s->j, "pid", 0);
    /* A Part A record has no "managed" field: it was spawned or adopted by the old
     * extension, which would stop it, so treat it as managed but verify identity. */
    json_t *m = json_object_get(s->j, "managed");
    s->managed = m ? json_is_true(m) : 1;
    s->adopted = ctl_json_bool(s->j, "adopted");
    s->stopping = ctl_json_bool(s->j, "stopping");
}

void ctl_server_free(ctl_server *s) {
    if (s->j) json_decref(s->j);
    memset(s, 0, sizeof *s);
}

static int path_eq(const char *a, const char *b) {
    char ra[PATH_MAX], rb[PATH_MAX];
    if (!realpath(a, ra)) snprintf(ra, sizeof ra, "%s", a);
    if (!realpath(b, rb)) snprintf(rb, sizeof rb, "%s", b);
    return strcmp(ra, rb) == 0;
}

static int is_ours_once(const ctl_server *s, char *why, size_t n);

int ctl_server_is_ours(const ctl_server *s, char *why, size_t n) {
    if (is_ours_once(s, why, n)) return 1;
    /* The same process but not (yet) the right program: a #! server passes through
     * env/interpreter execs while starting. Look once more before giving up. */
    if (s->present && s->pid > 0 && ctl_same_process(s->pid, ctl_json_str(s->j, "processStart"),
                                                     ctl_json_str(s->j, "processStartId"))) {
        ctl_sleep_ms(100);
        return is_ours_once(s, why, n);
    }
    return 0;
}

static int is_ours_once(const ctl_server *s, char *why, size_t n) {
    if (!s->present || s->pid <= 0) { snprintf(why, n, "no pid recorded"); return 0; }
    if (!ctl_alive(s->pid)) { snprintf(why, n, "pid %d gone", (int)s->pid); return 0; }
    const char *ps = ctl_json_str(s->j, "processStart"), *pid_id = ctl_json_str(s->j, "processStartId");
    if (!ctl_same_process(s->pid, ps, pid_id)) {
        snprintf(why, n, "pid %d reused (start time differs or was never recorded)", (int)s->pid);
        return 0;
    }
    const char *bin = ctl_json_str(s->j, "binary");
    if (!bin || !*bin) { snprintf(why, n, "no binary recorded"); return 0; }
    char exe[PATH_MAX], args[8192];
    int exe_ok = ctl_exe_path(s->pid, exe, sizeof exe) == 0 && path_eq(exe, bin);
    if (!exe_ok && ctl_cmdline(s->pid, args, sizeof args) == 0) {
        /* Interpreted executables (#! scripts) show the interpreter as exe and the
         * script path as an argument. */
        char rb[PATH_MAX];
        if (!realpath(bin, rb)) snprintf(rb, sizeof rb, "%s", bin);
        exe_ok = strstr(args, rb) != NULL || strstr(args, bin) != NULL;
    }
    if (!exe_ok) { snprintf(why, n, "pid %d does not run %s", (int)s->pid, bin); return 0; }
    const char *tok = ctl_json_str(s->j, "spawnToken");
    if (tok && *tok) {
        char env[128];
        int r = ctl_proc_env(s->pid, "DS4CTL_SPAWN_TOKEN", env, sizeof env);
        if (r == 0 || (r == 1 && strcmp(env, tok) != 0)) {
            snprintf(why, n, "pid %d lacks our spawn token", (int)s->pid);
            return 0;
        }
    }
    snprintf(why, n, "ok");
    return 1;
}

int ctl_server_write(const ctl_cfg *c, json_t *rec, ds4_err *err) {
    char p[PATH_MAX];
    return ctl_json_write(ctl_path(c, "server.json", p, sizeof p), rec, 1, err);
}

int ctl_server_remove(const ctl_cfg *c) {
    char p[PATH_MAX];
    return unlink(ctl_path(c, "server.json", p, sizeof p));
}

int ctl_server_mark_stopping(const ctl_cfg *c, ctl_server *s, int stopping) {
    if (!s->j) return -1;
    if (stopping) {
        int64_t now = ctl_now_ms();
        char iso[40];
        ctl_iso_s(now, iso, sizeof iso);
        json_object_set_new(s->j, "stopping", json_true());
        json_object_set_new(s->j, "stoppingAt", json_integer(now / 1000 * 1000));
        json_object_set_new(s->j, "stoppingAtIso", json_string(iso));
    } else {
        json_object_del(s->j, "stopping");
        json_object_del(s->j, "stoppingAt");
        json_object_del(s->j, "stoppingAtIso");
    }
    s->stopping = stopping;
    return ctl_server_write(c, s->j, NULL);
}
