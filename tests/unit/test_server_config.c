/* test_server_config.c - ds4-server flag parsing (spec/server.md §2): the
 * handbook command line parses verbatim, defaults, bad values refused, bind
 * policy and the test-script gate. */
/* harness.h's main() trips -Wclobbered at -O2 under some gcc versions. */
#pragma GCC diagnostic ignored "-Wclobbered"
#include "harness.h"

#include "server/config.h"

static int parse(ds4s_config *c, ds4_err *e, int argc, const char **argv) {
    ds4s_config_default(c);
    return ds4s_config_parse(c, argc, (char **)argv, e);
}

TEST(defaults) {
    (void)t_data_path;
    ds4s_config c;
    ds4_err e;
    const char *av[] = {"ds4-server"};
    CHECK_EQ_INT(parse(&c, &e, 1, av), 0);
    CHECK_EQ_STR(c.model, "ds4flash.gguf");
    CHECK_EQ_STR(c.host, "127.0.0.1");
    CHECK_EQ_INT(c.port, 8000);
    CHECK_EQ_INT(c.ctx, 32768);
    CHECK_EQ_INT(c.tokens, 393216);
    CHECK_EQ_INT(c.think_default, DS4S_THINK_HIGH);
    CHECK(c.steer_ffn == 0 && c.steer_attn == 0);
    CHECK_EQ_INT(ds4s_config_validate(&c, &e), 0);
}

TEST(handbook_command_line) {
    ds4s_config c;
    ds4_err e;
    const char *av[] = {"ds4-server", "--ctx", "100000", "--kv-disk-dir", "./kv", "--kv-disk-space-mb", "8192",
                        "--mpp", "auto", "--dir-steering-file", "F", "--dir-steering-ffn", "-2"};
    CHECK_EQ_INT(parse(&c, &e, 13, av), 0);
    CHECK_EQ_INT(c.ctx, 100000);
    CHECK_EQ_STR(c.kv_disk_dir, "./kv");
    CHECK_EQ_INT(c.kv_disk_space_mb, 8192);
    CHECK_EQ_STR(c.mt_mode, "auto");
    CHECK_EQ_STR(c.steer_file, "F");
    CHECK_NEAR(c.steer_ffn, -2, 0);
    CHECK_NEAR(c.steer_attn, 0, 0);
}

TEST(steering_default_scale) {
    ds4s_config c;
    ds4_err e;
    const char *av[] = {"ds4-server", "--dir-steering-file", "F"};
    CHECK_EQ_INT(parse(&c, &e, 3, av), 0);
    CHECK_NEAR(c.steer_ffn, 1, 0);
    const char *av2[] = {"ds4-server", "--dir-steering-file", "F", "--dir-steering-attn", "0.5"};
    CHECK_EQ_INT(parse(&c, &e, 5, av2), 0);
    CHECK_NEAR(c.steer_ffn, 0, 0);
    CHECK_NEAR(c.steer_attn, 0.5, 0);
}

TEST(short_flags_and_backend) {
    ds4s_config c;
    ds4_err e;
    const char *av[] = {"ds4-server", "-m", "x.gguf", "-c", "4096", "-n", "100", "-t", "3", "--cpu", "--host", "localhost",
                        "--port", "1234", "--cors", "--api-key", "k", "--think", "none", "-mt", "off"};
    CHECK_EQ_INT(parse(&c, &e, 21, av), 0);
    CHECK_EQ_STR(c.model, "x.gguf");
    CHECK_EQ_INT(c.ctx, 4096);
    CHECK_EQ_INT(c.tokens, 100);
    CHECK_EQ_INT(c.threads, 3);
    CHECK_EQ_STR(c.backend, "cpu");
    CHECK_EQ_STR(c.host, "127.0.0.1");
    CHECK_EQ_INT(c.port, 1234);
    CHECK_EQ_INT(c.cors, 1);
    CHECK_EQ_STR(c.api_key, "k");
    CHECK_EQ_INT(c.think_default, DS4S_THINK_NONE);
    CHECK_EQ_STR(c.mt_mode, "off");
}

TEST(bad_values_refused) {
    ds4s_config c;
    ds4_err e;
    const char *a1[] = {"ds4-server", "--ctx", "0"};
    CHECK_EQ_INT(parse(&c, &e, 3, a1), -1);
    CHECK(strstr(e.msg, "--ctx") && strstr(e.msg, "'0'"));
    const char *a2[] = {"ds4-server", "--ctx", "12x"};
    CHECK_EQ_INT(parse(&c, &e, 3, a2), -1);
    const char *a3[] = {"ds4-server", "--port", "70000"};
    CHECK_EQ_INT(parse(&c, &e, 3, a3), -1);
    const char *a4[] = {"ds4-server", "--dir-steering-ffn", "101"};
    CHECK_EQ_INT(parse(&c, &e, 3, a4), -1);
    const char *a5[] = {"ds4-server", "--bogus"};
    CHECK_EQ_INT(parse(&c, &e, 2, a5), -1);
    CHECK(strstr(e.msg, "--bogus") != NULL);
    const char *a6[] = {"ds4-server", "--ctx"};
    CHECK_EQ_INT(parse(&c, &e, 2, a6), -1);
    const char *a7[] = {"ds4-server", "--backend", "tpu"};
    CHECK_EQ_INT(parse(&c, &e, 3, a7), -1);
    const char *a8[] = {"ds4-server", "--think", "medium"};
    CHECK_EQ_INT(parse(&c, &e, 3, a8), -1);
    const char *a9[] = {"ds4-server", "--kv-cache-cold-max-tokens", "100"};
    CHECK_EQ_INT(parse(&c, &e, 3, a9), -1);
    const char *a10[] = {"ds4-server", "--kv-cache-cold-max-tokens", "0"};
    CHECK_EQ_INT(parse(&c, &e, 3, a10), 0);
}

TEST(public_bind_needs_key) {
    ds4s_config c;
    ds4_err e;
    const char *a1[] = {"ds4-server", "--host", "0.0.0.0"};
    CHECK_EQ_INT(parse(&c, &e, 3, a1), 0);
    CHECK_EQ_INT(ds4s_config_validate(&c, &e), -1);
    CHECK(strstr(e.msg, "--api-key") != NULL);
    const char *a2[] = {"ds4-server", "--host", "0.0.0.0", "--api-key", "s"};
    CHECK_EQ_INT(parse(&c, &e, 5, a2), 0);
    CHECK_EQ_INT(ds4s_config_validate(&c, &e), 0);
    const char *a3[] = {"ds4-server", "--host", "0.0.0.0", "--insecure-public"};
    CHECK_EQ_INT(parse(&c, &e, 4, a3), 0);
    CHECK_EQ_INT(ds4s_config_validate(&c, &e), 0);
    CHECK(ds4s_host_is_loopback("127.0.0.5"));
    CHECK(!ds4s_host_is_loopback("10.0.0.1"));
}

TEST(test_script_gate) {
    ds4s_config c;
    ds4_err e;
    const char *a1[] = {"ds4-server", "--test-script", "s.json"};
    CHECK_EQ_INT(parse(&c, &e, 3, a1), 0);
    unsetenv("DS4_ALLOW_TEST_SCRIPT");
    CHECK_EQ_INT(ds4s_config_validate(&c, &e), -1);
    CHECK(strstr(e.msg, "DS4_ALLOW_TEST_SCRIPT") != NULL);
    setenv("DS4_ALLOW_TEST_SCRIPT", "1", 1);
    CHECK_EQ_INT(ds4s_config_validate(&c, &e), 0);
    unsetenv("DS4_ALLOW_TEST_SCRIPT");
}

TEST(help_lists_flags) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ds4s_usage(f);
    fclose(f);
    const char *want[] = {"--model", "--host", "--port", "--ctx", "--kv-disk-dir", "--kv-disk-space-mb", "--mpp",
                          "--dir-steering-file", "--dir-steering-ffn", "--dir-steering-attn", "--cors", "--chdir",
                          "--trace", "--api-key", "--insecure-public", "--backend", "--threads", "--test-script",
                          "TEST ONLY"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) CHECKF(strstr(buf, want[i]), "help lacks %s", want[i]);
    free(buf);
}
