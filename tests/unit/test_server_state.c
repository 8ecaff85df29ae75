/* test_server_state.c - the server's shared state pieces without a model:
 * the tool-id replay map (§11.4: shared blocks, LRU bounds), the worker ->
 * client channel (status, streaming drain, stall rule, kill), the
 * previous_response_id store, the test-script picker and the metrics text. */
/* harness.h's main() trips -Wclobbered at -O2 under some gcc versions. */
#pragma GCC diagnostic ignored "-Wclobbered"
#include "harness.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/chan.h"
#include "server/metrics.h"
#include "server/respstore.h"
#include "server/test_script.h"
#include "server/toolmem.h"

TEST(toolmem_shared_block_and_lookup) {
    (void)t_data_path;
    ds4s_toolmem *t = ds4s_toolmem_new(100, 1 << 20);
    const char *ids[] = {"call_a", "call_b"};
    ds4s_toolmem_put(t, ids, 2, "\n\n<x>block</x>", 14);
    size_t la = 0, lb = 0;
    ds4s_toolmem_lock(t);
    const char *a = ds4s_toolmem_lookup(t, "call_a", &la);
    const char *b = ds4s_toolmem_lookup(t, "call_b", &lb);
    const char *c = ds4s_toolmem_lookup(t, "call_c", &lb);
    ds4s_toolmem_unlock(t);
    CHECK(a && a == b);                   /* one shared copy */
    CHECK_EQ_INT((int)la, 14);
    CHECK(memcmp(a, "\n\n<x>block</x>", 14) == 0);
    CHECK(c == NULL);
    CHECK_EQ_INT((int)ds4s_toolmem_count(t), 2);
    /* Re-putting an id moves it to the new block. */
    const char *ids2[] = {"call_a"};
    ds4s_toolmem_put(t, ids2, 1, "other", 5);
    ds4s_toolmem_lock(t);
    a = ds4s_toolmem_lookup(t, "call_a", &la);
    ds4s_toolmem_unlock(t);
    CHECK_EQ_INT((int)la, 5);
    CHECK_EQ_INT((int)ds4s_toolmem_count(t), 2);
    ds4s_toolmem_free(t);
}

TEST(toolmem_lru_bounds) {
    ds4s_toolmem *t = ds4s_toolmem_new(3, 1 << 20);
    char id[16];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "id%d", i);
        const char *ids[] = {id};
        ds4s_toolmem_put(t, ids, 1, "x", 1);
        if (i == 2) {   /* touch id0 so id1 is the least recently used */
            ds4s_toolmem_lock(t);
            ds4s_toolmem_lookup(t, "id0", NULL);
            ds4s_toolmem_unlock(t);
        }
    }
    CHECK_EQ_INT((int)ds4s_toolmem_count(t), 3);
    CHECK(ds4s_toolmem_has(t, "id0"));
    CHECK(!ds4s_toolmem_has(t, "id1"));
    CHECK(!ds4s_toolmem_has(t, "id2"));
    CHECK(ds4s_toolmem_has(t, "id4"));
    ds4s_toolmem_free(t);
    /* Byte budget: a block larger than the budget is not kept. */
    t = ds4s_toolmem_new(100, 64);
    const char *big[] = {"big"};
    char blob[200];
    memset(blob, 'a', sizeof blob);
    ds4s_toolmem_put(t, big, 1, blob, sizeof blob);
    CHECK(!ds4s_toolmem_has(t, "big"));
    ds4s_toolmem_free(t);
}

static void *producer(void *arg) {
    ds4s_chan *c = arg;
    ds4s_chan_start(c, 200, 1);
    for (int i = 0; i < 1000; i++) {
        char b[16];
        int n = snprintf(b, sizeof b, "%d,", i);
        if (ds4s_chan_write(c, b, (size_t)n)) break;
    }
    ds4s_chan_close(c);
    ds4s_chan_unref(c);
    return NULL;
}

TEST(chan_streams_everything_in_order) {
    ds4s_chan *c = ds4s_chan_new(-1);
    ds4s_chan_ref(c);
    pthread_t th;
    pthread_create(&th, NULL, producer, c);
    CHECK_EQ_INT(ds4s_chan_wait_status(c), 200);
    CHECK_EQ_INT(c->streaming, 1);
    char *all = calloc(1, 8192);
    size_t n = 0;
    long r;
    char buf[7];
    while ((r = ds4s_chan_read(c, buf, sizeof buf)) > 0) { memcpy(all + n, buf, (size_t)r); n += (size_t)r; }
    pthread_join(th, NULL);
    CHECK_EQ_INT(r, 0);
    CHECK(strncmp(all, "0,1,2,", 6) == 0);
    CHECK(strstr(all, "998,999,") != NULL);
    free(all);
    ds4s_chan_unref(c);
}

TEST(chan_kill_fails_writes_and_stall_rule) {
    ds4s_chan *c = ds4s_chan_new(-1);
    ds4s_chan_start(c, 200, 1);
    c->limit = 8;
    CHECK_EQ_INT(ds4s_chan_write(c, "12345678", 8), 0);
    /* Nobody drains: the next write waits 2 s, then the client counts as gone. */
    CHECK_EQ_INT(ds4s_chan_write(c, "9", 1), -1);
    CHECK(ds4s_chan_dead(c));
    ds4s_chan_unref(c);
    c = ds4s_chan_new(-1);
    ds4s_chan_start(c, 200, 0);
    ds4s_chan_kill(c);
    CHECK_EQ_INT(ds4s_chan_write(c, "x", 1), -1);
    CHECK_EQ_INT(ds4s_chan_wait_closed(c), 0);
    ds4s_chan_unref(c);
}

TEST(chan_status_once_and_hangup_socket) {
    ds4s_chan *c = ds4s_chan_new(-1);
    ds4s_chan_start(c, 500, 0);
    ds4s_chan_start(c, 200, 1);   /* ignored: decided once */
    CHECK_EQ_INT(ds4s_chan_wait_status(c), 500);
    CHECK_EQ_INT(c->streaming, 0);
    ds4s_chan_unref(c);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(!ds4s_fd_hung_up(sv[0]));
    CHECK(write(sv[1], "x", 1) == 1);
    CHECK(!ds4s_fd_hung_up(sv[0]));     /* pending data is not a hang-up */
    close(sv[1]);
    CHECK(ds4s_fd_hung_up(sv[0]));
    /* A consumer waiting on a hung-up socket gives up. */
    c = ds4s_chan_new(sv[0]);
    CHECK_EQ_INT(ds4s_chan_wait_status(c), 0);
    CHECK(ds4s_chan_dead(c));
    ds4s_chan_unref(c);
    close(sv[0]);
}

TEST(respstore_ring) {
    ds4s_respstore *r = ds4s_respstore_new(2);
    ds4s_respstore_put(r, "resp_1", json_pack("[i]", 1));
    ds4s_respstore_put(r, "resp_2", json_pack("[i]", 2));
    json_t *a = ds4s_respstore_get(r, "resp_1");
    CHECK(a && json_integer_value(json_array_get(a, 0)) == 1);
    json_array_append_new(a, json_integer(9));   /* a copy: the store is unchanged */
    json_decref(a);
    a = ds4s_respstore_get(r, "resp_1");
    CHECK_EQ_INT((int)json_array_size(a), 1);
    json_decref(a);
    ds4s_respstore_put(r, "resp_3", json_pack("[i]", 3));   /* evicts resp_1 */
    CHECK(ds4s_respstore_get(r, "resp_1") == NULL);
    a = ds4s_respstore_get(r, "resp_3");
    CHECK(a != NULL);
    json_decref(a);
    ds4s_respstore_free(r);
}

TEST(test_script_pick_and_refusals) {
    char path[] = "/tmp/ds4-script-XXXXXX";
    int fd = mkstemp(path);
    const char *js = "[{\"match\":\"TOOL\",\"text\":\"call\"},{\"text\":\"default\"}]";
    CHECK(write(fd, js, strlen(js)) == (ssize_t)strlen(js));
    close(fd);
    ds4_err e;
    ds4s_script *s = ds4s_script_load(path, &e);
    CHECK(s != NULL);
    size_t n;
    const char *t = ds4s_script_pick(s, "a TOOL b", 8, &n);
    CHECK(t && n == 4 && !memcmp(t, "call", 4));
    t = ds4s_script_pick(s, "other", 5, &n);
    CHECK(t && n == 7);
    ds4s_script_free(s);
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(write(fd, "{\"text\":1}", 10) == 10);
    close(fd);
    CHECK(ds4s_script_load(path, &e) == NULL);
    CHECK(strstr(e.msg, path) != NULL);
    unlink(path);
}

TEST(metrics_text) {
    ds4s_metrics m;
    memset(&m, 0, sizeof m);
    ds4s_metrics_count_request(&m, R_CHAT);
    ds4s_metrics_count_request(&m, R_CHAT);
    ds4s_metrics_add(&m.prompt_tokens, 10);
    ds4s_metrics_add(&m.prefilled_tokens, 4);
    ds4s_metrics_add(&m.prefill_us, 2000000);
    m.queue_depth = 3;
    char *t = ds4s_metrics_text(&m);
    CHECK(strstr(t, "ds4_requests_total{endpoint=\"chat\"} 2\n") != NULL);
    CHECK(strstr(t, "ds4_prompt_tokens_total 10\n") != NULL);
    CHECK(strstr(t, "ds4_prefill_tokens_per_second 2.000\n") != NULL);
    CHECK(strstr(t, "ds4_queue_depth 3\n") != NULL);
    CHECK(strstr(t, "# TYPE ds4_queue_depth gauge\n") != NULL);
    free(t);
}
