/* test_text_cli.c - `ds4 tokenize` and `ds4 render` end to end, by calling
 * the command functions with stdin/stdout redirected to files. */
#include <fcntl.h>
#include <unistd.h>

#include "harness.h"
#include "text_testutil.h"

#include "cli/cli.h"

/* Runs fn with stdin = in[0..n), returns stdout bytes in out. */
static int run_cmd(int (*fn)(int, char **), int argc, char **argv, const char *in, size_t n, ds4_sbuf *out) {
    char ip[] = "/tmp/ds4_cli_inXXXXXX", op[] = "/tmp/ds4_cli_outXXXXXX";
    int ifd = mkstemp(ip), ofd = mkstemp(op);
    if (ifd < 0 || ofd < 0) return -100;
    if (write(ifd, in, n) != (ssize_t)n) return -100;
    lseek(ifd, 0, SEEK_SET);
    fflush(stdout);
    int save_in = dup(0), save_out = dup(1);
    dup2(ifd, 0);
    dup2(ofd, 1);
    clearerr(stdin);
    int rc = fn(argc, argv);
    fflush(stdout);
    dup2(save_in, 0);
    dup2(save_out, 1);
    close(save_in);
    close(save_out);
    clearerr(stdin);
    lseek(ofd, 0, SEEK_SET);
    char buf[65536];
    ssize_t r;
    while ((r = read(ofd, buf, sizeof buf)) > 0) ds4_sbuf_add(out, buf, (size_t)r);
    close(ifd);
    close(ofd);
    unlink(ip);
    unlink(op);
    return rc;
}

TEST(render_command_matches_golden) {
    json_t *cases = tu_load_jsonl("chat/cases.jsonl");
    CHECK(cases);
    size_t i;
    json_t *c;
    int done = 0;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        if (strcmp(name, "chat_tools_schema_copied_verbatim_pretty_json") && strcmp(name, "chat_reasoning_effort_max_large_ctx")) continue;
        json_t *body = json_object_get(c, "body");
        char ctx[32];
        snprintf(ctx, sizeof ctx, "%lld", (long long)json_integer_value(json_object_get(c, "ctx_size")));
        char *argv[] = {"render", "--api", "chat", "--ctx", ctx, NULL};
        ds4_sbuf out = {0};
        CHECK_EQ_INT(run_cmd(ds4_cmd_render, 5, argv, json_string_value(body), json_string_length(body), &out), 0);
        json_t *want = json_object_get(c, "rendered");
        CHECKF(out.len == json_string_length(want) && !memcmp(out.p, json_string_value(want), out.len), "%s: output differs", name);
        ds4_sbuf_free(&out);
        done++;
    }
    CHECK_EQ_INT(done, 2);
    json_decref(cases);
    char *bad[] = {"render", "--api", "nope", NULL};
    ds4_sbuf out = {0};
    CHECK_EQ_INT(run_cmd(ds4_cmd_render, 3, bad, "{}", 2, &out), 2);
    char *ok[] = {"render", "--api", "chat", NULL};
    CHECK_EQ_INT(run_cmd(ds4_cmd_render, 3, ok, "{not json", 9, &out), 1);
    ds4_sbuf_free(&out);
}

TEST(tokenize_command_with_gguf_and_special) {
    char model[4200];
    snprintf(model, sizeof model, "%s", t_data_path("oracle/tiny-a/ds4-synth-tiny-a.gguf"));
    json_error_t je;
    json_t *gold = json_load_file(t_data_path("oracle/tiny-a/tokenizer.json"), 0, &je);
    CHECK(gold);
    json_t *c0 = json_array_get(gold, 0);
    json_t *text = json_object_get(c0, "text");
    char *argv[] = {"tokenize", "-m", model, NULL};
    ds4_sbuf out = {0};
    CHECK_EQ_INT(run_cmd(ds4_cmd_tokenize, 3, argv, json_string_value(text), json_string_length(text), &out), 0);
    ds4_sbuf want = {0};
    size_t k;
    json_t *x;
    json_array_foreach(json_object_get(c0, "ids"), k, x) {
        char t[32];
        snprintf(t, sizeof t, k ? " %lld" : "%lld", (long long)json_integer_value(x));
        ds4_sbuf_adds(&want, t);
    }
    ds4_sbuf_addc(&want, '\n');
    CHECK_EQ_STR(out.p, want.p);
    ds4_sbuf_clear(&out);
    /* --special: the tiny model's <｜User｜> is id 507 */
    char *argv2[] = {"tokenize", "-m", model, "--special", NULL};
    CHECK_EQ_INT(run_cmd(ds4_cmd_tokenize, 4, argv2, "<\xef\xbd\x9cUser\xef\xbd\x9c>", 12, &out), 0);
    CHECK_EQ_STR(out.p, "507\n");
    ds4_sbuf_clear(&out);
    char *argv3[] = {"tokenize", "-m", "/nonexistent.gguf", NULL};
    CHECK_EQ_INT(run_cmd(ds4_cmd_tokenize, 3, argv3, "x", 1, &out), 1);
    ds4_sbuf_free(&out);
    ds4_sbuf_free(&want);
    json_decref(gold);
}
