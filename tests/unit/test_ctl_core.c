/* test_ctl_core.c - unit tests of ds4ctl's building blocks: configuration and the
 * server argv (§10.1 rules), process identity against ps, lease validity, the JSON
 * layout the handbook's sed snippets read, lock exclusivity across processes, SHA-256
 * vectors and small parsers. The end-to-end behaviour is in tests/ctl/test_*.sh. */
#include "harness.h"

#include "ctl/ctl.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_home[256];

static void fresh_env(void) {
    static const char *vars[] = {"DS4_HOME", "DS4_RUNTIME_DIR", "DS4_SERVER_BINARY", "DS4_SERVER_BIN", "DS4_MPP",
        "DS4_MT", "DS4_DIR_STEERING_FILE", "DS4_DIR_STEERING_FFN", "DS4_DIR_STEERING_ATTN", "DS4_PORT",
        "DS4_HOST", "DS4_CTX", "DS4_SERVER_EXTRA_ARGS", "DS4_LEASE_TTL_S", "DS4_VERIFY", "DS4_MODEL_SHA256",
        "DS4_MODEL_URL", "DS4_HF_BASE", "DS4_IDLE_GRACE_S", "DS4_KV_DISK_SPACE_MB", NULL};
    for (int i = 0; vars[i]; i++) unsetenv(vars[i]);
    if (!g_home[0]) {
        snprintf(g_home, sizeof g_home, "/tmp/test_ctl_core.%d", (int)getpid());
        mkdir(g_home, 0755);
    }
    setenv("DS4_HOME", g_home, 1);
}

static char *argv_str(const ctl_cfg *c) {
    static char buf[4096];
    char **v;
    CHECK(ctl_server_argv(c, &v) > 0);
    buf[0] = 0;
    for (int i = 1; v[i]; i++) {
        if (i > 1) strcat(buf, " ");
        strcat(buf, v[i]);
    }
    ctl_argv_free(v);
    return buf;
}

TEST(argv_defaults_match_handbook) {
    fresh_env();
    ctl_cfg c;
    ds4_err e;
    CHECK_EQ_INT(ctl_cfg_load(&c, NULL, &e), CTL_OK);
    char want[1024];
    snprintf(want, sizeof want,
             "--ctx 100000 --kv-disk-dir %s/kv --kv-disk-space-mb 8192 "
#ifdef __APPLE__
             "--mpp auto "
#endif
             "--dir-steering-file dir-steering/out/uncertainty_ablit_imatrix.f32 "
             "--dir-steering-ffn -2 --dir-steering-attn 0", g_home);
    CHECK_EQ_STR(argv_str(&c), want);
    CHECK_EQ_INT(c.idle_grace_s, 60);
    CHECK_EQ_INT(c.lease_ttl_s, 45);
    CHECK_EQ_INT(c.shutdown_grace_s, 60);
}

TEST(argv_steering_both_zero_omits_all_three) {
    const char *zeros[][2] = {{"0", "0"}, {"0.0", "-0"}, {"", "0"}, {" 0 ", ""}};
    for (int i = 0; i < 4; i++) {
        fresh_env();
        setenv("DS4_DIR_STEERING_FFN", zeros[i][0], 1);
        setenv("DS4_DIR_STEERING_ATTN", zeros[i][1], 1);
        ctl_cfg c;
        ds4_err e;
        CHECK_EQ_INT(ctl_cfg_load(&c, NULL, &e), CTL_OK);
        CHECKF(strstr(argv_str(&c), "steering") == NULL, "case %d: %s", i, argv_str(&c));
    }
    fresh_env();
    setenv("DS4_DIR_STEERING_FFN", "0", 1);
    setenv("DS4_DIR_STEERING_ATTN", "-0.5", 1);
    ctl_cfg c;
    ds4_err e;
    CHECK_EQ_INT(ctl_cfg_load(&c, NULL, &e), CTL_OK);
    CHECK(strstr(argv_str(&c), "--dir-steering-ffn 0 --dir-steering-attn -0.5") != NULL);
    fresh_env();
    setenv("DS4_DIR_STEERING_FILE", "", 1);
    CHECK_EQ_INT(ctl_cfg_load(&c, NULL, &e), CTL_OK);
    CHECK(strstr(argv_str(&c), "steering") == NULL);
    fresh_env();
    setenv("DS4_DIR_STEERING_FFN", "abc", 1); /* non-numeric: passed through verbatim */
    CHECK_EQ_INT(ctl_cfg_load(&c, NULL, &e), CTL_OK);
    CHECK(strstr(argv_str(&c), "--dir-steering-ffn abc") != NULL);
}

TEST(argv_mpp_mt_port_extra) {
    fresh_env();
    setenv("DS4_MPP", "off", 1);
    setenv("DS4_PORT", "8123", 1);
    setenv("DS4_SERVER_EXTRA_ARGS", " --warm-weights  --quality ", 1);
    ctl_cfg c;
    ds4_err e;
    CHECK_EQ_INT(ctl_cfg_load(&c, NULL, &e), CTL_OK);
    const char *s = argv_str(&c);
    CHECK(strstr(s, "--mpp off") != NULL);
    CHECK(strstr(s, "--port 8123 --warm-weights --quality") != NULL);
    CHECK(strstr(s, "--host") == NULL);
    setenv("DS4_MT", "on", 1);
    CHECK_EQ_INT(ctl_cfg_load(&c, NULL, &e), CTL_OK);
    s = argv_str(&c);
    CHECK(strstr(s, "--mt on") != NULL && strstr(s, "--mpp") == NULL);
    unsetenv("DS4_MT");
    setenv("DS4_MPP", "", 1);
    CHECK_EQ_INT(ctl_cfg_load(&c, NULL, &e), CTL_OK);
    CHECK(strstr(argv_str(&c), "--mpp") == NULL);
}

TEST(config_rejects_bad_values_naming_the_variable) {
    fresh_env();
    ctl_cfg c;
    ds4_err e;
    setenv("DS4_PORT", "80x", 1);
    CHECK_EQ_INT(ctl_cfg_load(&c, NULL, &e), CTL_USAGE);
    CHECK(strstr(e.msg, "DS4_PORT=80x") != NULL);
    fresh_env();
    setenv("DS4_READY_TIMEOUT_MS", "soon", 1);
    CHECK_EQ_INT(ctl_cfg_load(&c, NULL, &e), CTL_USAGE);
    CHECK(strstr(e.msg, "DS4_READY_TIMEOUT_MS") != NULL);
    unsetenv("DS4_READY_TIMEOUT_MS");
    fresh_env();
    setenv("DS4_SERVER_BINARY", "/a/ds4-server", 1);
    setenv("DS4_SERVER_BIN", "/b/ds4-server", 1);
    CHECK_EQ_INT(ctl_cfg_load(&c, NULL, &e), CTL_USAGE);
    CHECK(strstr(e.msg, "disagree") != NULL);
    setenv("DS4_SERVER_BIN", "/a/ds4-server", 1);
    CHECK_EQ_INT(ctl_cfg_load(&c, NULL, &e), CTL_OK);
    CHECK_EQ_STR(c.server_bin, "/a/ds4-server");
    fresh_env();
    setenv("DS4_VERIFY", "md5", 1);
    CHECK_EQ_INT(ctl_cfg_load(&c, NULL, &e), CTL_USAGE);
    fresh_env();
    setenv("DS4_MODEL_SHA256", "abc", 1);
    CHECK_EQ_INT(ctl_cfg_load(&c, NULL, &e), CTL_USAGE);
    fresh_env();
    setenv("DS4_HF_BASE", "http://127.0.0.1:9", 1);
    CHECK_EQ_INT(ctl_cfg_load(&c, NULL, &e), CTL_OK);
    CHECK(strncmp(c.model_url, "http://127.0.0.1:9/audreyt/", 27) == 0);
    fresh_env();
}

static void ps_lstart(pid_t pid, char *buf, size_t n) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "LC_ALL=C ps -o lstart= -p %d", (int)pid);
    FILE *p = popen(cmd, "r");
    buf[0] = 0;
    if (p) {
        if (!fgets(buf, (int)n, p)) buf[0] = 0;
        pclose(p);
    }
    size_t l = strlen(buf);
    while (l && (buf[l - 1] == '\n' || buf[l - 1] == ' ')) buf[--l] = 0;
    char *s = buf;
    while (*s == ' ') s++;
    memmove(buf, s, strlen(s) + 1);
}

TEST(identity_string_equals_ps_lstart) {
    pid_t pids[] = {getpid(), getppid(), 1};
    for (int i = 0; i < 3; i++) {
        ctl_ident id;
        char ps[128];
        if (ctl_ident_get(pids[i], &id) != 0) continue;
        ps_lstart(pids[i], ps, sizeof ps);
        if (!ps[0]) continue; /* no ps on this system */
        CHECK_EQ_STR(id.start, ps);
        CHECK(id.start_id[0] != 0);
    }
}

TEST(same_process_and_zombies) {
    ctl_ident id;
    CHECK_EQ_INT(ctl_ident_get(getpid(), &id), 0);
    CHECK(ctl_same_process(getpid(), id.start, id.start_id));
    CHECK(ctl_same_process(getpid(), id.start, NULL));
    CHECK(!ctl_same_process(getpid(), id.start, "other-boot:1"));
    CHECK(!ctl_same_process(getpid(), "Thu Jan  1 00:00:00 1970", NULL));
    CHECK(!ctl_same_process(getpid(), NULL, NULL)); /* never trust a record without a start */
    pid_t ch = fork();
    if (ch == 0) _exit(0);
    usleep(100000); /* the child is a zombie until we wait */
    CHECK(!ctl_alive(ch));
    waitpid(ch, NULL, 0);
    CHECK(!ctl_alive(ch));
    CHECK(!ctl_alive(0));
}

TEST(looks_like_ds4_server_word_rule) {
    CHECK(ctl_looks_like_ds4_server("/x/support/ds4-server --ctx 100000"));
    CHECK(ctl_looks_like_ds4_server("ds4-server"));
    CHECK(ctl_looks_like_ds4_server("python3 /t/fake/ds4-server --port 1"));
    CHECK(!ctl_looks_like_ds4_server("/x/ds4-server-old --ctx 1"));
    CHECK(!ctl_looks_like_ds4_server("myds4-server"));
}

static void write_lease(const char *path, const char *body) {
    FILE *f = fopen(path, "w");
    fputs(body, f);
    fclose(f);
}

TEST(lease_validity_table) {
    fresh_env();
    setenv("DS4_LEASE_TTL_S", "45", 1);
    ctl_cfg c;
    ds4_err e;
    CHECK_EQ_INT(ctl_cfg_load(&c, NULL, &e), CTL_OK);
    CHECK_EQ_INT(ctl_lease_write(&c, getpid(), "pi", 0, &e), CTL_OK);
    char p[512];
    snprintf(p, sizeof p, "%s/clients/%d.json", g_home, (int)getpid());
    pid_t pid;
    int64_t age;
    CHECK_EQ_INT(ctl_lease_judge(&c, p, 0, &pid, &age), CTL_LEASE_VALID);
    CHECK_EQ_INT(pid, getpid());
    /* expired: mtime 60 s ago; ignore_age (after a sleep) keeps it */
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= 60;
    tv[1] = tv[0];
    CHECK_EQ_INT(utimes(p, tv), 0);
    CHECK_EQ_INT(ctl_lease_judge(&c, p, 0, &pid, &age), CTL_LEASE_EXPIRED);
    CHECK_EQ_INT(ctl_lease_judge(&c, p, 1, &pid, &age), CTL_LEASE_VALID);
    /* keep-alive: valid until expiresAt regardless of mtime */
    CHECK_EQ_INT(ctl_lease_write(&c, getpid(), "keep-alive", ctl_now_ms() + 100000, &e), CTL_OK);
    CHECK_EQ_INT(utimes(p, tv), 0);
    CHECK_EQ_INT(ctl_lease_judge(&c, p, 0, &pid, &age), CTL_LEASE_VALID);
    CHECK_EQ_INT(ctl_lease_write(&c, getpid(), "keep-alive", ctl_now_ms() - 1, &e), CTL_OK);
    CHECK_EQ_INT(ctl_lease_judge(&c, p, 0, &pid, &age), CTL_LEASE_EXPIRED);
    /* start mismatch for a live pid */
    char body[512];
    snprintf(body, sizeof body, "{\"managedBy\":\"pi-sd4-provider\",\"usesDs4\":true,\"pid\":%d,"
             "\"processStart\":\"Thu Jan  1 00:00:00 1970\"}", (int)getpid());
    write_lease(p, body);
    CHECK_EQ_INT(ctl_lease_judge(&c, p, 0, &pid, &age), CTL_LEASE_START_MISMATCH);
    /* Part A lease (no processStartId) with the right ps string is valid */
    ctl_ident id;
    ctl_ident_get(getpid(), &id);
    snprintf(body, sizeof body, "{\"managedBy\":\"pi-sd4-provider\",\"usesDs4\":true,\"pid\":%d,"
             "\"processStart\":\"%s\"}", (int)getpid(), id.start);
    write_lease(p, body);
    CHECK_EQ_INT(ctl_lease_judge(&c, p, 0, &pid, &age), CTL_LEASE_VALID);
    /* usesDs4 missing, wrong managedBy, garbage */
    snprintf(body, sizeof body, "{\"managedBy\":\"pi-sd4-provider\",\"pid\":%d,\"processStart\":\"%s\"}", (int)getpid(), id.start);
    write_lease(p, body);
    CHECK_EQ_INT(ctl_lease_judge(&c, p, 0, &pid, &age), CTL_LEASE_MALFORMED);
    write_lease(p, "{not json");
    CHECK_EQ_INT(ctl_lease_judge(&c, p, 0, &pid, &age), CTL_LEASE_MALFORMED);
    /* dead pid */
    pid_t ch = fork();
    if (ch == 0) _exit(0);
    waitpid(ch, NULL, 0);
    char dp[512];
    snprintf(dp, sizeof dp, "%s/clients/%d.json", g_home, (int)ch);
    snprintf(body, sizeof body, "{\"managedBy\":\"pi-sd4-provider\",\"usesDs4\":true,\"pid\":%d,\"processStart\":\"x\"}", (int)ch);
    write_lease(dp, body);
    CHECK_EQ_INT(ctl_lease_judge(&c, dp, 0, &pid, &age), CTL_LEASE_PID_DEAD);
    /* counting prunes invalid files and keeps valid ones */
    CHECK_EQ_INT(ctl_lease_write(&c, getpid(), "pi", 0, &e), CTL_OK);
    CHECK_EQ_INT(ctl_leases_count(&c, 1, 0, NULL, NULL), 1);
    CHECK(access(dp, F_OK) != 0);
    CHECK_EQ_INT(ctl_lease_release(&c, getpid(), &e), CTL_OK);
    CHECK(access(p, F_OK) != 0);
    CHECK_EQ_INT(ctl_leases_count(&c, 1, 0, NULL, NULL), 0);
}

TEST(json_layout_matches_handbook_sed) {
    fresh_env();
    char p[512], cmd[1024], out[64] = "";
    snprintf(p, sizeof p, "%s/server.json", g_home);
    json_t *o = json_pack("{s:s,s:i,s:[s,s]}", "managedBy", CTL_MANAGED_BY, "pid", 60211, "args", "--ctx", "100000");
    CHECK_EQ_INT(ctl_json_write(p, o, 1, NULL), 0);
    json_decref(o);
    snprintf(cmd, sizeof cmd, "sed -n 's/^[[:space:]]*\"pid\":[[:space:]]*\\([0-9][0-9]*\\).*/\\1/p' %s | head -n 1", p);
    FILE *f = popen(cmd, "r");
    CHECK(f != NULL);
    if (!fgets(out, sizeof out, f)) out[0] = 0;
    pclose(f);
    CHECK_EQ_STR(out, "60211\n");
    FILE *r = fopen(p, "r");
    char text[512] = "";
    size_t n = fread(text, 1, sizeof text - 1, r);
    fclose(r);
    text[n] = 0;
    CHECK(strstr(text, "\n  \"managedBy\": \"pi-sd4-provider\",\n") != NULL);
    CHECK(text[n - 1] == '\n');
    json_t *back = ctl_json_read(p);
    CHECK_EQ_INT(ctl_json_int(back, "pid", 0), 60211);
    json_decref(back);
    unlink(p);
}

TEST(lock_excludes_other_processes_and_dies_with_holder) {
    fresh_env();
    ctl_cfg c;
    ds4_err e;
    CHECK_EQ_INT(ctl_cfg_load(&c, NULL, &e), CTL_OK);
    int pfd[2];
    CHECK_EQ_INT(pipe(pfd), 0);
    pid_t ch = fork();
    if (ch == 0) {
        ctl_lock l;
        if (ctl_lock_acquire(&c, &l, "ensure", 5, 1, NULL) != CTL_OK) _exit(1);
        char b = 1;
        if (write(pfd[1], &b, 1) != 1) _exit(1);
        pause();
        _exit(0);
    }
    char b;
    CHECK_EQ_INT(read(pfd[0], &b, 1), 1);
    ctl_lock l;
    CHECK_EQ_INT(ctl_lock_acquire(&c, &l, "ensure", 0.3, 1, &e), CTL_LOCK_TIMEOUT);
    CHECK(strstr(e.msg, "held by pid") != NULL);
    json_t *owner = NULL;
    CHECK(ctl_lock_probe(&c, &owner));
    CHECK_EQ_INT(ctl_json_int(owner, "pid", 0), ch);
    json_decref(owner);
    kill(ch, SIGKILL);
    waitpid(ch, NULL, 0);
    CHECK_EQ_INT(ctl_lock_acquire(&c, &l, "ensure", 2, 1, &e), CTL_OK);
    CHECK(!ctl_lock_probe(&c, NULL) || 1); /* probing our own lock from another fd reports held */
    ctl_lock_release(&c, &l);
    char d[512];
    snprintf(d, sizeof d, "%s/lock", g_home);
    CHECK(access(d, F_OK) != 0);
    close(pfd[0]);
    close(pfd[1]);
}

TEST(sha256_vectors) {
    struct { const char *in; const char *hex; } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (int i = 0; i < 3; i++) {
        ctl_sha256 s;
        uint8_t d[32];
        char hex[65];
        ctl_sha256_init(&s);
        ctl_sha256_update(&s, v[i].in, strlen(v[i].in));
        ctl_sha256_final(&s, d);
        ctl_sha256_hex(d, hex);
        CHECK_EQ_STR(hex, v[i].hex);
    }
    /* one million 'a', fed in uneven pieces */
    ctl_sha256 s;
    uint8_t d[32];
    char hex[65], buf[1000];
    memset(buf, 'a', sizeof buf);
    ctl_sha256_init(&s);
    size_t left = 1000000, k = 1;
    while (left) { size_t n = k < left ? k : left; ctl_sha256_update(&s, buf, n); left -= n; k = k % 900 + 13; }
    ctl_sha256_final(&s, d);
    ctl_sha256_hex(d, hex);
    CHECK_EQ_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(compact_child_output_lines) {
    char out[256];
    CHECK(ctl_compact_line("  12 87.0G   12 10.7G    0     0  95.1M      0  0:15:15  0:01:53  0:13:22 95.1M", out, sizeof out));
    CHECK_EQ_STR(out, "10.7G / 87.0G (12%, 95.1M/s, 0:13:22 left)");
    CHECK(ctl_compact_line("  0 87.0G    0     0    0     0      0      0 --:--:-- --:--:-- --:--:--     0", out, sizeof out));
    CHECK_EQ_STR(out, "0 / 87.0G (0%)");
    CHECK(!ctl_compact_line("  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current", out, sizeof out));
    CHECK(!ctl_compact_line("                                 Dload  Upload   Total   Spent    Left  Speed", out, sizeof out));
    CHECK(!ctl_compact_line(" \t ", out, sizeof out));
    CHECK(ctl_compact_line("\x1b[32mReceiving objects:\x1b[0m  45%   (900/2000)\t", out, sizeof out));
    CHECK_EQ_STR(out, "Receiving objects: 45% (900/2000)");
    char longl[400];
    memset(longl, 'x', sizeof longl - 1);
    longl[sizeof longl - 1] = 0;
    CHECK(ctl_compact_line(longl, out, sizeof out));
    CHECK_EQ_INT(strlen(out), 159 + 3); /* 159 chars + the 3-byte ellipsis */
}

TEST(sleep_detection) {
    /* 2 s poll, both clocks agree: awake */
    CHECK(!ctl_slept(1000000, 5000, 1002000, 7000));
    /* a slow poll (scheduler, load) moves both clocks: still awake */
    CHECK(!ctl_slept(1000000, 5000, 1030000, 35000));
    /* the wall clock jumped 1 h while the sleep-stopping clock moved 2 s: slept */
    CHECK(ctl_slept(1000000, 5000, 4602000, 7000));
    /* exactly at the 10 s threshold is not yet sleep */
    CHECK(!ctl_slept(0, 0, 12000, 2000));
    CHECK(ctl_slept(0, 0, 12001, 2000));
}

TEST(quote_and_parsers) {
    char *argv[] = {"/x/ds4-server", "--ctx", "100000", "it's", "a b", "", NULL};
    char out[256];
    ctl_quote_argv(argv, out, sizeof out);
    CHECK_EQ_STR(out, "/x/ds4-server --ctx 100000 'it'\\''s' 'a b' ''");
    long v;
    CHECK_EQ_INT(ctl_parse_duration("8h", &v), 0); CHECK_EQ_INT(v, 28800);
    CHECK_EQ_INT(ctl_parse_duration("90", &v), 0); CHECK_EQ_INT(v, 90);
    CHECK_EQ_INT(ctl_parse_duration("15m", &v), 0); CHECK_EQ_INT(v, 900);
    CHECK(ctl_parse_duration("8x", &v) != 0);
    CHECK(ctl_parse_duration("", &v) != 0);
    CHECK(ctl_parse_long("12a", 0, 100, &v) != 0);
    CHECK(ctl_parse_long("101", 0, 100, &v) != 0);
    CHECK(ctl_scale_is_zero("-0.0"));
    CHECK(!ctl_scale_is_zero("-2"));
    CHECK(!ctl_scale_is_zero("x"));
    CHECK_EQ_STR(ctl_exit_name(CTL_CRASH_LOOP), "CRASH_LOOP");
    CHECK(t_data_path("x") != NULL); /* (the harness helper must be used once) */
}

__attribute__((destructor)) static void remove_home(void) {
    if (!g_home[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_home);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_home);
}
