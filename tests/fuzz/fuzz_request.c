/* fuzz_request.c - libFuzzer target: request body bytes -> every API's
 * request normalisation as the server runs it (spec/server.md §3, §8):
 * nesting limit, JSON load, sampling/stop/limit knobs, required fields, the
 * text layer's parse, role check, --think default, prompt rendering. Also
 * the UTF-8 sanitiser and the router on the same bytes. Must never crash,
 * leak or hang, whatever the input. Built by `make fuzz`. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/jsonu.h"
#include "server/request.h"
#include "server/router.h"
#include "text/chat.h"

static void one_api(ds4_api api, const char *body, size_t len) {
    if (ds4s_json_depth(body, len, 256) > 256) return;
    json_t *root = json_loadb(body, len, 0, NULL);
    if (!root) return;
    ds4_err e;
    ds4s_params p;
    if (ds4s_params_parse(api, root, &p, &e) == 0) {
        ds4s_sampling s;
        ds4s_params_sampling(&p, 0, &s);
        ds4s_params_budget(&p, 393216, 4096, 10);
    }
    ds4s_params_free(&p);
    if (json_is_object(root) && ds4s_body_check(api, root, &e) == 0) {
        ds4_request req;
        if (ds4_request_parse(api, body, len, 4096, &req, &e) == 0) {
            ds4s_check_roles(&req, api, &e);
            ds4s_apply_think_default(&req, root, (int)(len % 3), 4096);
            ds4_sbuf out = {0};
            ds4_render(&req, NULL, &out, &e);
            ds4_sbuf_free(&out);
            ds4_request_free(&req);
        }
    }
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 20) return 0;
    /* The server hands bodies over NUL-terminated (http.c appends one). */
    char *body = malloc(size + 1);
    if (!body) return 0;
    memcpy(body, data, size);
    body[size] = 0;
    for (int api = 0; api < DS4_API_COUNT; api++) one_api((ds4_api)api, body, size);
    json_decref(ds4s_jstr(body, size));
    const char *id;
    ds4s_route_match(size & 1 ? "POST" : "GET", body, &id);
    ds4s_route_family(body);
    free(body);
    return 0;
}
