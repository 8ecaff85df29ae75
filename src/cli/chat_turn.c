/* chat_turn.c - the conversation behind `ds4` chat: the model, one session,
 * the message history, and one user turn from prompt to parsed reply.
 *
 * Every turn re-renders the whole history with the text layer (ds4_render, the
 * server's renderer) and syncs the session to it, so only new tokens are
 * prefilled. Two things keep that true:
 *   - the sampled reply is tokenized differently from the rendered one at
 *     times (BPE splits), so when the live session's tokens decode to a byte
 *     prefix of the new prompt, the prompt is taken as those tokens plus the
 *     encoded rest (the server's "memory-text" rule);
 *   - with thinking on, an earlier turn renders as "</think>answer" (its
 *     reasoning dropped, spec/text.md §2.3-2.4) while the session generated
 *     "<think>reasoning</think>answer". The session then is not a prefix of the
 *     next prompt, and caches are append-only, so a rewind would rebuild from
 *     token 0. Instead a snapshot is taken just before the generation prefix's
 *     last token (<think>), which is a prefix of the next prompt; the next turn
 *     restores it and prefills from there. */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cli/chat_internal.h"

struct chat {
    chat_opts o;
    ds4_model *m;
    ds4_session *s;
    ds4_vocab *v;
    gguf_file *g;        /* not owned: the model's mapping */
    int n_vocab;
    int32_t eos;
    ds4_think_mode think;
    ds4_sampler sp;
    ds4_message *msgs;
    size_t n_msgs, cap;
    /* snapshot for thinking mode (see above) */
    uint8_t *snap;
    size_t snap_len;
    ds4_tokens snap_toks;
    FILE *lp;
    int turn_no;
    int at_line_start;   /* the reply ended with a newline */
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *dupn(const char *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

static void push_msg(chat *c, const char *role, const char *content, size_t len, const char *reasoning, size_t rlen) {
    if (c->n_msgs == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 8;
        c->msgs = realloc(c->msgs, c->cap * sizeof *c->msgs);
        if (!c->msgs) abort();
    }
    ds4_message *m = &c->msgs[c->n_msgs++];
    memset(m, 0, sizeof *m);
    m->role = dupn(role, strlen(role));
    m->content = dupn(content, len);
    m->content_len = len;
    if (reasoning) {
        m->reasoning = dupn(reasoning, rlen);
        m->reasoning_len = rlen;
    }
}

static void pop_msg(chat *c) {
    if (!c->n_msgs) return;
    ds4_message *m = &c->msgs[--c->n_msgs];
    free(m->role);
    free(m->content);
    free(m->reasoning);
}

static void drop_snapshot(chat *c) {
    free(c->snap);
    c->snap = NULL;
    c->snap_len = 0;
    c->snap_toks.n = 0;
}

static uint64_t random_seed(void) {
    uint64_t x = 0;
    if (getrandom(&x, sizeof x, 0) != sizeof x) x = (uint64_t)time(NULL) ^ (uint64_t)getpid();
    return x ? x : 0x9E3779B97F4A7C15ull;
}

chat *chat_new(const chat_opts *o, ds4_err *err) {
    chat *c = calloc(1, sizeof *c);
    if (!c) { ds4_errf(err, "out of memory"); return NULL; }
    c->o = *o;
    c->think = o->think;
    c->at_line_start = 1;
    ds4_model_opts mo = {.backend = o->backend, .n_threads = o->threads, .exact = o->quality ? 1 : 0, .gpus = o->gpus};
    c->m = ds4_model_load(o->model, &mo, err);
    if (!c->m) goto fail;
    c->g = (gguf_file *)ds4_model_gguf(c->m);
    c->v = ds4_vocab_from_gguf(c->g, err);
    if (!c->v) { ds4_err_prefix(err, "%s: tokenizer", o->model); goto fail; }
    c->n_vocab = ds4_model_n_vocab(c->m);
    c->eos = ds4_vocab_special(c->v, DS4_SP_EOS);
    if (o->steer_file && ds4_model_load_steering(c->m, o->steer_file, err)) goto fail;
    if (!o->steer_file) c->o.steer_ffn = o->steer_ffn_set ? o->steer_ffn : 0;
    else c->o.steer_ffn = o->steer_ffn_set ? o->steer_ffn : 1.0f;
    if (!o->steer_file && (c->o.steer_ffn != 0 || o->steer_attn != 0)) {
        ds4_errf(err, "--dir-steering-ffn/--dir-steering-attn: a scale needs --dir-steering-file");
        goto fail;
    }
    if (chat_set_ctx(c, o->ctx, err)) goto fail;
    c->sp = o->sampler;
    if (!o->seed_set) c->sp.rng = random_seed();
    if (o->logprobs_path) {
        c->lp = fopen(o->logprobs_path, "w");
        if (!c->lp) { ds4_errf(err, "--dump-logprobs %s: cannot open for writing", o->logprobs_path); goto fail; }
    }
    if (o->system && o->system[0]) push_msg(c, "system", o->system, strlen(o->system), NULL, 0);
    return c;
fail:
    chat_free(c);
    return NULL;
}

void chat_free(chat *c) {
    if (!c) return;
    while (c->n_msgs) pop_msg(c);
    free(c->msgs);
    drop_snapshot(c);
    ds4_tokens_free(&c->snap_toks);
    if (c->lp) fclose(c->lp);
    ds4_session_free(c->s);
    ds4_vocab_free(c->v);
    ds4_model_free(c->m);
    free(c);
}

int chat_set_ctx(chat *c, int ctx, ds4_err *err) {
    ds4_session *s = ds4_session_new(c->m, ctx, err);
    if (!s) return -1;
    ds4_session_set_steering(s, c->o.steer_ffn, c->o.steer_attn);
    ds4_session_free(c->s);
    c->s = s;
    c->o.ctx = ctx;
    drop_snapshot(c); /* a snapshot belongs to a session of one context size */
    return 0;
}

int chat_ctx(const chat *c) { return c->o.ctx; }
void chat_set_think(chat *c, ds4_think_mode m) { c->think = m; }
ds4_think_mode chat_think(const chat *c) { return c->think; }
ds4_think_mode chat_think_effective(const chat *c) {
    if (c->think == DS4_THINK_MAX && (uint32_t)c->o.ctx < DS4_THINK_MAX_MIN_CTX) return DS4_THINK_HIGH;
    return c->think;
}
size_t chat_n_messages(const chat *c) { return c->n_msgs; }
const char *chat_model_name(const chat *c) { return ds4_model_name(c->m); }

void chat_clear(chat *c) {
    size_t keep = c->n_msgs && !strcmp(c->msgs[0].role, "system") ? 1 : 0;
    while (c->n_msgs > keep) pop_msg(c);
}

/* Length in bytes of the decoded ids when they are a prefix of prompt, else -1. */
static long byte_prefix(const chat *c, const int32_t *ids, size_t n, const char *prompt, size_t plen) {
    ds4_sbuf b = {0};
    long r = -1;
    if (ds4_decode(c->v, ids, n, &b) == 0 && b.len <= plen && (b.len == 0 || !memcmp(b.p, prompt, b.len)))
        r = (long)b.len;
    ds4_sbuf_free(&b);
    return r;
}

/* The tokens to sync to: a reusable prefix (live session or snapshot) plus the
 * encoded rest, else the canonical encoding. *use_snap: restore first. */
static int effective_prompt(chat *c, const char *prompt, size_t plen, ds4_tokens *eff, int *use_snap, ds4_err *err) {
    *use_snap = 0;
    const int live = ds4_session_n_tokens(c->s);
    long lb = live > 0 ? byte_prefix(c, ds4_session_tokens(c->s), (size_t)live, prompt, plen) : -1;
    long sb = c->snap ? byte_prefix(c, c->snap_toks.ids, c->snap_toks.n, prompt, plen) : -1;
    const int32_t *base = NULL;
    size_t nbase = 0, bytes = 0;
    if (sb >= 0 && (lb < 0 || c->snap_toks.n > (size_t)live)) {
        base = c->snap_toks.ids; nbase = c->snap_toks.n; bytes = (size_t)sb; *use_snap = 1;
    } else if (lb >= 0) {
        base = ds4_session_tokens(c->s); nbase = (size_t)live; bytes = (size_t)lb;
    }
    for (size_t i = 0; i < nbase; i++) ds4_tokens_push(eff, base[i]);
    return ds4_encode_rendered(c->v, prompt + bytes, plen - bytes, eff, err);
}

typedef struct prog {
    int show;
    double t0, last;
} prog;

static int on_progress(void *ud, int done, int total) {
    prog *p = ud;
    if (p->show) {
        double t = now_s();
        if (t - p->last >= 0.1 || done == total) {
            chat_term_progress(done, total, t - p->t0);
            p->last = t;
        }
    }
    return chat_interrupted ? 1 : 0;
}

typedef struct out_ctx {
    chat *c;
    FILE *out;
    int seen_reasoning, seen_text;
    char last_reason, last_text;
} out_ctx;

static void on_event(void *ud, const ds4_stream_event *ev) {
    out_ctx *x = ud;
    const chat_opts *o = &x->c->o;
    if (!ev->len) return;
    if (ev->kind == DS4_EV_REASONING) {
        FILE *f = o->reasoning_stderr ? stderr : x->out;
        chat_term_write(f, o->color, CHAT_STYLE_REASONING, ev->data, ev->len);
        x->seen_reasoning = 1;
        x->last_reason = ev->data[ev->len - 1];
    } else if (ev->kind == DS4_EV_TEXT) {
        if (!x->seen_text && x->seen_reasoning && !o->reasoning_stderr && x->last_reason != '\n')
            chat_term_write(x->out, o->color, CHAT_STYLE_TEXT, "\n", 1);
        chat_term_write(x->out, o->color, CHAT_STYLE_TEXT, ev->data, ev->len);
        x->seen_text = 1;
        x->last_text = ev->data[ev->len - 1];
    }
}

int chat_turn(chat *c, const char *user, size_t len, FILE *out, chat_stats *st, ds4_err *err) {
    memset(st, 0, sizeof *st);
    push_msg(c, "user", user, len, NULL, 0);
    const ds4_think_mode mode = chat_think_effective(c);
    ds4_request r;
    memset(&r, 0, sizeof r);
    r.api = DS4_API_OPENAI_CHAT;
    r.msgs = c->msgs;
    r.n_msgs = c->n_msgs;
    r.think_requested = c->think;
    r.think = mode;
    ds4_sbuf prompt = {0};
    ds4_tokens eff = {0};
    int use_snap = 0, rc = -1;
    if (ds4_render(&r, NULL, &prompt, err) || effective_prompt(c, prompt.p ? prompt.p : "", prompt.len, &eff, &use_snap, err))
        goto fail;
    const int n = (int)eff.n, ctx = c->o.ctx;
    st->prompt_tokens = n;
    if (n >= ctx) {
        ds4_errf(err, "the conversation is %d tokens and the context is %d: nothing left to generate into "
                      "(raise it with /ctx N or --ctx N, or /clear)", n, ctx);
        goto fail;
    }
    if (c->o.no_cache) { /* the same tokens from scratch: checks that reuse changes nothing */
        if (chat_set_ctx(c, ctx, err)) goto fail;
        use_snap = 0;
    }
    if (use_snap && ds4_session_load(c->s, c->snap, c->snap_len, err)) {
        drop_snapshot(c); /* never retry a snapshot the session refused */
        ds4_err_prefix(err, "restoring the conversation's KV snapshot");
        goto fail;
    }

    /* Prefill: to n-1 (snapshot point when thinking), then the last token. */
    prog pg = {c->o.progress, now_s(), 0};
    const int k = ds4_session_common_prefix(c->s, eff.ids, n);
    st->reused_tokens = k == ds4_session_n_tokens(c->s) ? k : 0;
    chat_interrupted = 0;
    if (!(k == n && k == ds4_session_n_tokens(c->s))) {
        int sr = ds4_session_sync(c->s, eff.ids, n - 1, NULL, on_progress, &pg, err);
        if (sr == 0 && mode != DS4_THINK_NONE) {
            uint8_t *blob = NULL;
            size_t bl = 0;
            if (ds4_session_save(c->s, &blob, &bl, err) == 0) {
                free(c->snap);
                c->snap = blob;
                c->snap_len = bl;
                c->snap_toks.n = 0;
                for (int i = 0; i < n - 1; i++) ds4_tokens_push(&c->snap_toks, eff.ids[i]);
            } else {
                drop_snapshot(c); /* reuse is an optimisation: go on without it */
            }
        }
        if (sr == 0) sr = ds4_session_sync(c->s, eff.ids, n, NULL, NULL, NULL, err);
        if (c->o.progress) chat_term_progress_done();
        if (sr == 1) {
            st->finish = CHAT_FIN_CANCELLED;
            st->prefill_s = now_s() - pg.t0;
            pop_msg(c);
            rc = 0;
            goto out;
        }
        if (sr < 0) { ds4_err_prefix(err, "prefill"); goto fail; }
    }
    st->prefill_s = now_s() - pg.t0;

    /* Generate. */
    ds4_stream_opts so = {.thinking = mode != DS4_THINK_NONE};
    ds4_stream *ps = ds4_stream_new(&so);
    ds4_detok dt;
    ds4_detok_init(&dt, c->v);
    ds4_sbuf piece = {0};
    out_ctx oc = {.c = c, .out = out};
    int budget = ctx - n;
    chat_finish fin = CHAT_FIN_CTX;
    if (c->o.max_tokens >= 0 && c->o.max_tokens < budget) { budget = c->o.max_tokens; fin = CHAT_FIN_LENGTH; }
    c->turn_no++;
    const double d0 = now_s();
    int failed = 0;
    for (int step = 0; step < budget; step++) {
        if (chat_interrupted) { fin = CHAT_FIN_INTERRUPTED; break; }
        const float *logits = ds4_session_logits(c->s);
        int32_t tok = c->sp.temperature <= 0 ? ds4_argmax(logits, c->n_vocab) : ds4_sample(&c->sp, logits, c->n_vocab);
        if (c->lp && chat_logprobs_write(c->lp, c->v, c->turn_no, ds4_session_n_tokens(c->s), logits, c->n_vocab, tok,
                                         c->o.logprobs_k)) {
            ds4_errf(err, "--dump-logprobs %s: write failed", c->o.logprobs_path);
            failed = 1;
            break;
        }
        if (tok == c->eos && !c->o.ignore_eos) { fin = CHAT_FIN_EOS; break; }
        st->gen_tokens++;
        ds4_sbuf_clear(&piece);
        ds4_detok_push(&dt, tok, &piece);
        ds4_stream_feed(ps, piece.p ? piece.p : "", piece.len, on_event, &oc);
        if (ds4_session_eval(c->s, tok, err)) { ds4_err_prefix(err, "decode"); failed = 1; break; }
    }
    st->decode_s = now_s() - d0;
    st->finish = fin;
    ds4_sbuf_clear(&piece);
    ds4_detok_flush(&dt, &piece);
    if (piece.len) ds4_stream_feed(ps, piece.p, piece.len, on_event, &oc);
    ds4_stream_finish(ps, on_event, &oc);
    chat_term_reset(out, c->o.color);
    if (c->o.reasoning_stderr) chat_term_reset(stderr, c->o.color);
    if ((oc.seen_text && oc.last_text != '\n') || (!oc.seen_text && oc.seen_reasoning && !c->o.reasoning_stderr && oc.last_reason != '\n'))
        fputc('\n', out);
    if (oc.seen_reasoning && c->o.reasoning_stderr && oc.last_reason != '\n') fputc('\n', stderr);
    fflush(out);

    /* The reply goes into the history as the text layer parses it. */
    size_t tlen = 0;
    const char *text = ds4_stream_text(ps, &tlen);
    ds4_parse_result pr;
    ds4_dsml_parse(text, tlen, so.thinking, &pr);
    const int closed = so.thinking && memmem(text, tlen, "</think>", 8) != NULL;
    if (so.thinking && !closed) {
        const char *t = text;
        size_t tn = tlen;
        if (tn >= 7 && !memcmp(t, "<think>", 7)) { t += 7; tn -= 7; }
        push_msg(c, "assistant", "", 0, t, tn);
    } else if (pr.ok) {
        push_msg(c, "assistant", pr.content, pr.content_len, pr.reasoning, pr.reasoning_len);
    } else {
        push_msg(c, "assistant", text, tlen, NULL, 0);
    }
    ds4_parse_result_free(&pr);
    ds4_stream_free(ps);
    ds4_detok_free(&dt);
    ds4_sbuf_free(&piece);
    if (c->lp) fflush(c->lp);
    rc = failed ? -1 : 0;
    goto out;
fail:
    pop_msg(c);
    rc = -1;
out:
    ds4_sbuf_free(&prompt);
    ds4_tokens_free(&eff);
    return rc;
}
