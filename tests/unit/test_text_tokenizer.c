/* test_text_tokenizer.c - the tokenizer against the goldens of
 * tests/data/tokenizer (every case), the tiny models' goldens (vocab from
 * their GGUF through src/gguf), round trips on random byte strings, and the
 * streaming UTF-8 hold-back rule. */
#include "harness.h"
#include "text_testutil.h"

#include "gguf/gguf.h"

static void check_ids(const ds4_tokens *got, json_t *ids, const char *what, size_t idx) {
    size_t n = json_array_size(ids);
    if (got->n != n) T_FAIL("%s %zu: %zu ids, expected %zu", what, idx, got->n, n);
    for (size_t i = 0; i < n; i++) {
        long long e = json_integer_value(json_array_get(ids, i));
        if (got->ids[i] != e) T_FAIL("%s %zu: id[%zu] = %d, expected %lld", what, idx, i, got->ids[i], e);
    }
}

TEST(vocab_shape_and_specials) {
    ds4_vocab *v = tu_vocab();
    CHECK(v);
    CHECK_EQ_INT(ds4_vocab_size(v), 129280);
    CHECK_EQ_INT(ds4_vocab_n_merges(v), 127741);
    static const int want[DS4_SP_COUNT] = {0, 1, 128803, 128804, 128821, 128822, 128825};
    for (int s = 0; s < DS4_SP_COUNT; s++) CHECK_EQ_INT(ds4_vocab_special(v, (ds4_special)s), want[s]);
    ds4_sbuf b = {0};
    CHECK_EQ_INT(ds4_token_bytes(v, 128825, &b), 0);
    CHECK_EQ_STR(b.p, "\xef\xbd\x9c" "DSML\xef\xbd\x9c");
    ds4_sbuf_clear(&b);
    CHECK_EQ_INT(ds4_token_bytes(v, 223, &b), 0); /* "Ġ" -> one space */
    CHECK_EQ_STR(b.p, " ");
    CHECK_EQ_INT(ds4_token_bytes(v, 129280, &b), -1);
    CHECK_EQ_INT(ds4_token_bytes(v, -1, &b), -1);
    ds4_sbuf_free(&b);
}

TEST(v4_token_table_for_synth) {
    ds4_token_table t;
    ds4_err e = {{0}};
    CHECKF(ds4_v4_tokens_from_hf_json(t_data_path("tokenizer/tokenizer.json"), &t, &e) == 0, "%s", e.msg);
    CHECK_EQ_INT(t.n_tokens, 129280);
    CHECK_EQ_INT(t.n_merges, 127741);
    CHECK_EQ_STR(t.tokens[128821], "<think>");
    CHECK_EQ_STR(t.tokens[128825], "\xef\xbd\x9c" "DSML\xef\xbd\x9c");
    CHECK_EQ_STR(t.merges[0], "\xc4\xa0 t");
    CHECK_EQ_INT(t.types[128803], DS4_TOKTYPE_CONTROL);
    CHECK_EQ_INT(t.types[5000], DS4_TOKTYPE_NORMAL);
    /* All strings unique: a GGUF with duplicates would make lookups ambiguous. */
    ds4_vocab *v = ds4_vocab_new((const char *const *)t.tokens, t.token_lens, t.n_tokens,
                                 (const char *const *)t.merges, t.merge_lens, t.n_merges, t.types, &e);
    CHECKF(v, "%s", e.msg);
    for (size_t i = 0; i < t.n_tokens; i += 7) CHECK_EQ_INT(ds4_vocab_find(v, t.tokens[i], t.token_lens[i]), (long long)i);
    ds4_vocab_free(v);
    ds4_token_table_free(&t);
}

TEST(encode_decode_all_cases) {
    ds4_vocab *v = tu_vocab();
    CHECK(v);
    json_t *cases = tu_load_jsonl("tokenizer/cases.jsonl");
    CHECK(cases);
    CHECK_EQ_INT(json_array_size(cases), 378);
    size_t i;
    json_t *c;
    int skipped = 0;
    json_array_foreach(cases, i, c) {
        json_t *text = json_object_get(c, "text");
        const char *s = json_string_value(text);
        size_t n = json_string_length(text);
        if (tu_quick() && n > 4096) { skipped++; continue; }
        ds4_tokens t = {0};
        ds4_err e = {{0}};
        CHECKF(ds4_encode_text(v, s, n, &t, &e) == 0, "case %zu: %s", i, e.msg);
        check_ids(&t, json_object_get(c, "ids"), "case", i);
        ds4_sbuf b = {0};
        CHECK_EQ_INT(ds4_decode(v, t.ids, t.n, &b), 0);
        CHECKF(b.len == n && memcmp(b.p, s, n) == 0, "case %zu: decode differs", i);
        ds4_sbuf_free(&b);
        ds4_tokens_free(&t);
    }
    CHECK(skipped <= 12);
    json_decref(cases);
}

TEST(encode_rendered_special_cases) {
    ds4_vocab *v = tu_vocab();
    CHECK(v);
    json_t *cases = tu_load_jsonl("tokenizer/special_cases.jsonl");
    CHECK(cases);
    CHECK_EQ_INT(json_array_size(cases), 12);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        json_t *text = json_object_get(c, "text");
        ds4_tokens t = {0};
        ds4_err e = {{0}};
        CHECKF(ds4_encode_rendered(v, json_string_value(text), json_string_length(text), &t, &e) == 0, "%s", e.msg);
        /* The golden's V4-only ids are published values; ours come from the
         * table by string. Remap the expectation through the table. */
        json_t *ids = json_object_get(c, "ids");
        json_t *want = json_array();
        size_t k;
        json_t *x;
        json_array_foreach(ids, k, x) {
            long long id = json_integer_value(x);
            if (id == 128821) id = ds4_vocab_special(v, DS4_SP_THINK);
            else if (id == 128822) id = ds4_vocab_special(v, DS4_SP_THINK_END);
            else if (id == 128825) id = ds4_vocab_special(v, DS4_SP_DSML);
            json_array_append_new(want, json_integer(id));
        }
        check_ids(&t, want, "special case", i);
        json_decref(want);
        ds4_tokens_free(&t);
    }
    json_decref(cases);
}

TEST(spec_examples) {
    ds4_vocab *v = tu_vocab();
    CHECK(v);
    static const struct { const char *s; int ids[12]; int n; } ex[] = {
        {"Hello, world!", {19923, 14, 2058, 3}, 4},
        {"    int x;", {361, 688, 1527, 29}, 4},
        {"a  1", {67, 262, 19}, 3},
        {"\t\tfoo", {200, 200, 40897}, 3},
        {"\xe2\x80\x8b\xe2\x80\x8bx", {35020, 35020, 90}, 3},
        {"\xc3\xa9", {619}, 1},
        {"e\xcc\x81", {71, 17793}, 2},
        {"\xf0\x9f\x98\x80", {28927, 225}, 2},
    };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        ds4_tokens t = {0};
        CHECK_EQ_INT(ds4_encode_text(v, ex[i].s, strlen(ex[i].s), &t, NULL), 0);
        CHECKF((int)t.n == ex[i].n, "example %zu: %zu ids, expected %d", i, t.n, ex[i].n);
        for (int k = 0; k < ex[i].n; k++) CHECK_EQ_INT(t.ids[k], ex[i].ids[k]);
        ds4_tokens_free(&t);
    }
    /* Protocol strings inside rendered text become specials; a space before
     * one is its own token (§1.7). */
    const char *r = "Explain <think> and <\xef\xbd\x9cUser\xef\xbd\x9c> tags";
    ds4_tokens t = {0};
    CHECK_EQ_INT(ds4_encode_rendered(v, r, strlen(r), &t, NULL), 0);
    int found = 0;
    for (size_t k = 0; k + 4 < t.n; k++)
        if (t.ids[k] == 223 && t.ids[k + 1] == 128821 && t.ids[k + 2] == 305 && t.ids[k + 3] == 223 && t.ids[k + 4] == 128803) found = 1;
    CHECK(found);
    ds4_tokens_free(&t);
}

/* xorshift: deterministic random inputs. */
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

TEST(round_trip_random_bytes_and_text) {
    ds4_vocab *v = tu_vocab();
    CHECK(v);
    static const char *const frags[] = {"hello", " ", "  ", "\n", "\r\n", "\t", "123456", "\xe4\xb8\xad\xe6\x96\x87",
        "\xf0\x9f\x98\x80", "\xc3\xa9", "e\xcc\x81", "<think>", "\xef\xbd\x9c", "'s", "!!", "\xe3\x80\x82", "\xd9\xa1",
        "\xe2\x80\x8b", "\xc2\xa0", "\xc2\x85", "\xef\xbb\xbf", "\xe1\xa0\x8e", "\xe2\x85\xab"};
    int rounds = tu_quick() ? 300 : 3000;
    for (int r = 0; r < rounds; r++) {
        char buf[256];
        size_t n = 0, want = rnd() % 200;
        while (n < want) {
            if (rnd() % 4 == 0) buf[n++] = (char)(rnd() & 0xff); /* raw bytes: invalid UTF-8 too */
            else {
                const char *f = frags[rnd() % (sizeof frags / sizeof frags[0])];
                size_t l = strlen(f);
                if (n + l > sizeof buf) break;
                memcpy(buf + n, f, l);
                n += l;
            }
        }
        ds4_tokens t = {0};
        ds4_err e = {{0}};
        CHECKF(ds4_encode_text(v, buf, n, &t, &e) == 0, "round %d: %s", r, e.msg);
        ds4_sbuf b = {0};
        CHECK_EQ_INT(ds4_decode(v, t.ids, t.n, &b), 0);
        CHECKF(b.len == n && (n == 0 || memcmp(b.p, buf, n) == 0), "round %d: decode(encode(s)) != s (%zu vs %zu bytes)", r, b.len, n);
        ds4_tokens_free(&t);
        ds4_tokens t2 = {0};
        CHECK_EQ_INT(ds4_encode_rendered(v, buf, n, &t2, &e), 0);
        ds4_sbuf_clear(&b);
        CHECK_EQ_INT(ds4_decode(v, t2.ids, t2.n, &b), 0);
        CHECKF(b.len == n && (n == 0 || memcmp(b.p, buf, n) == 0), "round %d: rendered round trip", r);
        ds4_tokens_free(&t2);
        ds4_sbuf_free(&b);
    }
}

static int utf8_complete(const char *s, size_t n) {
    /* 1 if s does not end inside a valid multi-byte sequence */
    return ds4_utf8_holdback(s, n) == 0;
}

TEST(streaming_detok_never_splits_a_char) {
    ds4_vocab *v = tu_vocab();
    CHECK(v);
    json_t *cases = tu_load_jsonl("tokenizer/cases.jsonl");
    CHECK(cases);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        json_t *ids = json_object_get(c, "ids");
        json_t *text = json_object_get(c, "text");
        if (json_array_size(ids) > 3000 && tu_quick()) continue;
        ds4_detok d;
        ds4_detok_init(&d, v);
        ds4_sbuf all = {0};
        size_t k;
        json_t *x;
        json_array_foreach(ids, k, x) {
            ds4_sbuf delta = {0};
            CHECK_EQ_INT(ds4_detok_push(&d, (int32_t)json_integer_value(x), &delta), 0);
            /* valid text: every delta ends on a character boundary */
            CHECKF(utf8_complete(delta.p ? delta.p : "", delta.len), "case %zu token %zu: delta ends inside a character", i, k);
            ds4_sbuf_add(&all, delta.p, delta.len);
            ds4_sbuf_free(&delta);
        }
        ds4_detok_flush(&d, &all);
        CHECKF(all.len == json_string_length(text) && memcmp(all.p, json_string_value(text), all.len) == 0, "case %zu: streamed text differs", i);
        ds4_sbuf_free(&all);
        ds4_detok_free(&d);
    }
    json_decref(cases);
    /* The 😀 example: F0 9F 98 | 80 */
    ds4_detok d;
    ds4_detok_init(&d, v);
    ds4_sbuf o = {0};
    ds4_detok_push(&d, 28927, &o);
    CHECK_EQ_INT(o.len, 0);
    ds4_detok_push(&d, 225, &o);
    CHECK_EQ_STR(o.p, "\xf0\x9f\x98\x80");
    /* invalid bytes are released at the flush */
    ds4_sbuf_clear(&o);
    ds4_detok_push(&d, 28927, &o);
    ds4_detok_flush(&d, &o);
    CHECK_EQ_INT(o.len, 3);
    ds4_sbuf_free(&o);
    ds4_detok_free(&d);
}

TEST(utf8_holdback_rules) {
    CHECK_EQ_INT(ds4_utf8_holdback("abc", 3), 0);
    CHECK_EQ_INT(ds4_utf8_holdback("ab\xc3", 3), 1);
    CHECK_EQ_INT(ds4_utf8_holdback("ab\xc3\xa9", 4), 0);
    CHECK_EQ_INT(ds4_utf8_holdback("a\xf0\x9f\x98", 4), 3);
    CHECK_EQ_INT(ds4_utf8_holdback("\x9f\x98", 2), 2);
    CHECK_EQ_INT(ds4_utf8_holdback("a\xe4\xb8", 3), 2);
    CHECK_EQ_INT(ds4_utf8_holdback("a\xe4\xb8\xad", 4), 0);
    CHECK_EQ_INT(ds4_utf8_holdback("a\x80", 2), 0); /* stray continuation after ASCII */
    CHECK_EQ_INT(ds4_utf8_holdback("", 0), 0);
}

/* The tiny models' own vocabularies, loaded the way the engine loads them. */
static void tiny_goldens(const char *model_dir, const char *gguf_name) {
    char gpath[512], jpath[4200];
    snprintf(gpath, sizeof gpath, "oracle/%s/%s", model_dir, gguf_name);
    snprintf(jpath, sizeof jpath, "%s", t_data_path(gpath));
    ds4_err e = {{0}};
    gguf_file *f = gguf_open(jpath, &e);
    CHECKF(f, "gguf_open: %s", e.msg);
    ds4_vocab *v = ds4_vocab_from_gguf(f, &e);
    CHECKF(v, "vocab: %s", e.msg);
    snprintf(gpath, sizeof gpath, "oracle/%s/tokenizer.json", model_dir);
    json_error_t je;
    json_t *arr = json_load_file(t_data_path(gpath), 0, &je);
    CHECK(json_is_array(arr));
    CHECK(json_array_size(arr) > 0);
    size_t i;
    json_t *c;
    json_array_foreach(arr, i, c) {
        json_t *text = json_object_get(c, "text");
        ds4_tokens t = {0};
        CHECK_EQ_INT(ds4_encode_text(v, json_string_value(text), json_string_length(text), &t, &e), 0);
        check_ids(&t, json_object_get(c, "ids"), model_dir, i);
        ds4_sbuf b = {0};
        ds4_decode(v, t.ids, t.n, &b);
        CHECK(b.len == json_string_length(text) && memcmp(b.p, json_string_value(text), b.len) == 0);
        ds4_sbuf_free(&b);
        ds4_tokens_free(&t);
    }
    CHECK_EQ_INT(ds4_vocab_special(v, DS4_SP_USER), (long long)ds4_vocab_size(v) - 5);
    json_decref(arr);
    ds4_vocab_free(v);
    gguf_close(f);
}

TEST(tiny_a_tokenizer_goldens) { tiny_goldens("tiny-a", "ds4-synth-tiny-a.gguf"); }
TEST(tiny_b_tokenizer_goldens) { tiny_goldens("tiny-b", "ds4-synth-tiny-b.gguf"); }

TEST(refuses_bad_tables) {
    ds4_err e = {{0}};
    const char *toks[] = {"a", "b"};
    CHECK(ds4_vocab_new(toks, NULL, 2, NULL, NULL, 0, NULL, &e) == NULL);
    CHECK(strstr(e.msg, "special token") != NULL);
    CHECK(ds4_vocab_from_hf_json("/nonexistent/tokenizer.json", &e) == NULL);
    CHECK(strstr(e.msg, "/nonexistent/tokenizer.json") != NULL);
}

/* The ASCII fast path of step C against the PCRE2 regexes, piece for piece. */
#include "text/vocab_internal.h"

typedef struct pieces { size_t n; size_t off[600]; size_t len[600]; const char *base; } pieces;
static int rec_piece(void *ctx, const char *p, size_t n) {
    pieces *ps = ctx;
    if (ps->n < 600) { ps->off[ps->n] = (size_t)(p - ps->base); ps->len[ps->n] = n; }
    ps->n++;
    return 0;
}

TEST(ascii_fast_path_equals_pcre2) {
    ds4_vocab *v = tu_vocab();
    CHECK(v);
    static const char alpha[] = "aZk  \t\n\r\x0b\x0c\x01\x1f\x7f" "09.,'\"!?-_()[]{}<>=+*/\\|~`^$#@%&;:" "xyQ   \n\n";
    int rounds = tu_quick() ? 3000 : 40000;
    for (int r = 0; r < rounds; r++) {
        char buf[64];
        size_t n = 1 + rnd() % 40;
        for (size_t i = 0; i < n; i++) buf[i] = alpha[rnd() % (sizeof alpha - 1)];
        pieces a = {.base = buf}, b = {.base = buf};
        CHECK_EQ_INT(ds4_pretok_split_ex(v->pre, buf, n, rec_piece, &a, NULL, true), 0);
        CHECK_EQ_INT(ds4_pretok_split_ex(v->pre, buf, n, rec_piece, &b, NULL, false), 0);
        int same = a.n == b.n;
        for (size_t i = 0; same && i < a.n; i++) same = a.off[i] == b.off[i] && a.len[i] == b.len[i];
        if (!same) {
            char hex[200];
            size_t k = 0;
            for (size_t i = 0; i < n; i++) k += (size_t)snprintf(hex + k, sizeof hex - k, "%02x", (unsigned char)buf[i]);
            T_FAIL("round %d: pieces differ (fast %zu, pcre2 %zu) for %s", r, a.n, b.n, hex);
        }
    }
}

TEST(fast_paths_equal_pcre2_on_mixed_text) {
    ds4_vocab *v = tu_vocab();
    CHECK(v);
    static const char *const frags[] = {"a", "Z", " ", "  ", "\n", "\r\n", "\t", "1", "23", "\xc2\xb2", "\xe2\x85\xab",
        "\xe4\xb8\xad", "\xe3\x81\x82", "\xe3\x83\xbc", "\xe9\xbe\xa5", "\xe9\xbe\xa6", "\xf0\x9f\x98\x80", "\xc3\xa9",
        "e\xcc\x81", ".", "'", "\"", "\xe3\x80\x82", "\xef\xbc\x81", "\xe2\x80\x8b", "\xc2\xa0", "\xe3\x80\x80",
        "\xd9\xa1", "\x80", "\xff", "\xe4\xb8", "x", "(", "\xd0\xa9"};
    int rounds = tu_quick() ? 2000 : 30000;
    for (int r = 0; r < rounds; r++) {
        char buf[128];
        size_t n = 0, k = 1 + rnd() % 24;
        for (size_t i = 0; i < k; i++) {
            const char *f = frags[rnd() % (sizeof frags / sizeof frags[0])];
            memcpy(buf + n, f, strlen(f));
            n += strlen(f);
        }
        pieces a = {.base = buf}, b = {.base = buf};
        CHECK_EQ_INT(ds4_pretok_split_ex(v->pre, buf, n, rec_piece, &a, NULL, true), 0);
        CHECK_EQ_INT(ds4_pretok_split_ex(v->pre, buf, n, rec_piece, &b, NULL, false), 0);
        int same = a.n == b.n;
        for (size_t i = 0; same && i < a.n; i++) same = a.off[i] == b.off[i] && a.len[i] == b.len[i];
        CHECKF(same, "round %d: pieces differ (fast %zu, pcre2 %zu)", r, a.n, b.n);
    }
}

/* A shared vocabulary encodes concurrently; each thread's piece cache is
 * freed when the thread ends (LeakSanitizer checks that in the ASan build). */
#include <pthread.h>

typedef struct enc_job { const ds4_vocab *v; const char *s; size_t n; ds4_tokens t; int rc; } enc_job;
static void *enc_thread(void *arg) {
    enc_job *j = arg;
    for (int r = 0; r < 3; r++) {
        ds4_tokens_free(&j->t);
        j->rc = ds4_encode_text(j->v, j->s, j->n, &j->t, NULL);
    }
    return NULL;
}

TEST(concurrent_encoding_threads) {
    ds4_vocab *v = tu_vocab();
    CHECK(v);
    json_t *cases = tu_load_jsonl("tokenizer/cases.jsonl");
    CHECK(cases);
    ds4_sbuf text = {0};
    for (size_t i = 0; i < json_array_size(cases) && text.len < 60000; i++) {
        json_t *t = json_object_get(json_array_get(cases, i), "text");
        ds4_sbuf_add(&text, json_string_value(t), json_string_length(t));
    }
    json_decref(cases);
    ds4_tokens want = {0};
    CHECK_EQ_INT(ds4_encode_text(v, text.p, text.len, &want, NULL), 0);
    enum { NT = 4 };
    enc_job jobs[NT];
    pthread_t th[NT];
    for (int i = 0; i < NT; i++) {
        jobs[i] = (enc_job){v, text.p, text.len, {0}, -1};
        CHECK_EQ_INT(pthread_create(&th[i], NULL, enc_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < NT; i++) {
        CHECK_EQ_INT(jobs[i].rc, 0);
        CHECK_EQ_INT(jobs[i].t.n, want.n);
        CHECK(memcmp(jobs[i].t.ids, want.ids, want.n * sizeof *want.ids) == 0);
        ds4_tokens_free(&jobs[i].t);
    }
    ds4_tokens_free(&want);
    ds4_sbuf_free(&text);
}
