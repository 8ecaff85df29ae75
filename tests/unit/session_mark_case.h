/* session_mark_case.h - the rewind-to-mark scenario, shared by the CPU test
 * (test_engine_model.c) and the CUDA one (test_cuda_session.c) so both
 * backends are held to the same script: after a prompt, generated tokens
 * extend the session; a retried prompt and a new turn after the prompt go
 * back to the mark at the prompt's end (reused == prompt) and then match a
 * fresh session bit for bit (logits, the next step, the whole snapshot); an
 * edit before the mark rebuilds from 0. Token ids are (i·37 + salt·11 + 5)
 * mod `mod` + 2. Include after harness.h and engine/engine.h. */
#ifndef DS4_TEST_SESSION_MARK_CASE_H
#define DS4_TEST_SESSION_MARK_CASE_H

#include <stdlib.h>
#include <string.h>

static void mark_seq(int32_t *t, int n, int salt, int mod) {
    for (int i = 0; i < n; i++) t[i] = (int32_t)((i * 37 + salt * 11 + 5) % mod + 2);
}

static int mark_same_logits(ds4_session *a, ds4_session *b, int V) {
    return memcmp(ds4_session_logits(a), ds4_session_logits(b), sizeof(float) * (size_t)V) == 0;
}

/* prompt + 70 <= 600 and <= ctx. */
static void mark_case(ds4_model *m, int ctx, int prompt, int mod) {
    ds4_err err = {{0}};
    const int V = ds4_model_n_vocab(m);
    int32_t a[600], b[600];
    mark_seq(a, 600, 5, mod);
    mark_seq(b, 600, 6, mod);
    ds4_session *s = ds4_session_new(m, ctx, &err), *ref = ds4_session_new(m, ctx, &err);
    if (!s || !ref) T_FAIL("session: %s", err.msg);
    int reused = -1;
    CHECK(ds4_session_sync(s, a, prompt, &reused, NULL, NULL, &err) == 0 && reused == 0);
    for (int i = 0; i < 40; i++) CHECK(ds4_session_eval(s, b[i], &err) == 0); /* "generated" */
    CHECK(ds4_session_sync(s, a, prompt, &reused, NULL, NULL, &err) == 0);     /* retry */
    CHECK_EQ_INT(reused, prompt);
    CHECK(ds4_session_sync(ref, a, prompt, NULL, NULL, NULL, &err) == 0);
    CHECK(mark_same_logits(s, ref, V));
    for (int i = 0; i < 40; i++) CHECK(ds4_session_eval(s, b[i + 50], &err) == 0);
    memcpy(a + prompt, b + 100, sizeof(int32_t) * 70);                       /* a new turn after the prompt */
    CHECK(ds4_session_sync(s, a, prompt + 70, &reused, NULL, NULL, &err) == 0);
    CHECK_EQ_INT(reused, prompt);
    CHECK(ds4_session_sync(ref, a, prompt + 70, NULL, NULL, NULL, &err) == 0);
    CHECK(mark_same_logits(s, ref, V));
    CHECK(ds4_session_eval(s, 11, &err) == 0 && ds4_session_eval(ref, 11, &err) == 0);
    CHECK(mark_same_logits(s, ref, V));
    uint8_t *b1, *b2;
    size_t l1, l2;
    CHECK(ds4_session_save(s, &b1, &l1, &err) == 0 && ds4_session_save(ref, &b2, &l2, &err) == 0);
    CHECK(l1 == l2 && memcmp(b1, b2, l1) == 0); /* the whole state, not just the logits */
    free(b1);
    free(b2);
    a[100] ^= 1;                                                              /* an edit before the mark */
    CHECK(ds4_session_sync(s, a, prompt + 70, &reused, NULL, NULL, &err) == 0);
    CHECK_EQ_INT(reused, 0);
    ds4_session_free(s);
    ds4_session_free(ref);
}

#endif
