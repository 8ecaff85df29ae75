/* gen.c - the generation loop shared by every API (spec/server.md §5, §6,
 * §12.1, §14). Runs on the worker thread only: it is the one place that
 * touches the live session.
 *
 * Prefix reuse: the live session keeps the longest common token prefix
 * (memory-token); failing that, if the live tokens decode to a byte prefix of
 * the rendered prompt, the effective prompt is live tokens + the rest of the
 * text tokenized separately (memory-text), so a BPE split the model sampled
 * differently from canonical tokenization still reuses the KV. A stop-string
 * hit does not evaluate the token that completed it, so the session stays a
 * true history and the next request simply keeps the common prefix. */
#include "server/gen.h"

#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "server/dsml_track.h"
#include "server/errors.h"
#include "server/kvcache.h"
#include "server/jsonu.h"
#include "server/sse.h"
#include "server/trace.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

const char *ds4s_finish_openai(int fin) {
    switch (fin) {
    case DS4S_FIN_LENGTH: return "length";
    case DS4S_FIN_TOOLS: return "tool_calls";
    case DS4S_FIN_ERROR: return "error";
    default: return "stop";
    }
}

void ds4s_gen_emit(ds4s_gen *g, char *owned) {
    if (!owned) return;
    if (g->write_failed) { free(owned); return; }
    if (ds4s_chan_write_str(g->job->ch, owned) < 0) g->write_failed = 1;
    g->last_emit = now_s();
}

void ds4s_gen_emit_json(ds4s_gen *g, const char *event, json_t *data) {
    ds4s_gen_emit(g, ds4s_sse_event(event, data));
    json_decref(data);
}

void ds4s_gen_body(ds4s_gen *g, json_t *body) {
    ds4s_chan_start(g->job->ch, 200, 0);
    ds4s_gen_emit(g, ds4s_jdump(body, 1));
    json_decref(body);
}

const char *ds4s_gen_call_id(ds4s_gen *g, size_t i) {
    return g->call_ids && i < g->pr.n_calls ? g->call_ids[i] : "";
}

/* ---- prefill progress: keepalive comments and cancellation ---- */

typedef struct prog {
    ds4s_gen *g;
    const ds4s_api_ops *ops;
} prog;

static int on_progress(void *ud, int done, int total) {
    prog *p = ud;
    ds4s_gen *g = p->g;
    if (g->stream && !g->write_failed && now_s() - g->last_emit >= g->srv->cfg.ping_interval_s && p->ops->keepalive)
        p->ops->keepalive(g);
    (void)done;
    (void)total;
    return 0;   /* prefill is never interrupted: it stays useful as cache (§12.6) */
}

/* ---- stream events ---- */

typedef struct loopctx {
    ds4s_gen *g;
    const ds4s_api_ops *ops;
} loopctx;

static void on_event(void *ctx, const ds4_stream_event *ev) {
    loopctx *c = ctx;
    ds4s_gen *g = c->g;
    if (ev->kind == DS4_EV_TOOL_START) {
        if ((size_t)ev->tool_index >= g->n_stream_ids) {
            size_t n = (size_t)ev->tool_index + 1;
            g->stream_ids = realloc(g->stream_ids, n * sizeof *g->stream_ids);
            for (size_t i = g->n_stream_ids; i < n; i++) g->stream_ids[i] = NULL;
            g->n_stream_ids = n;
        }
        char id[64];
        ds4s_random_id(id, sizeof id, g->job->api == DS4_API_ANTHROPIC_MESSAGES ? "toolu_" : "call_", 16);
        free(g->stream_ids[ev->tool_index]);
        g->stream_ids[ev->tool_index] = strdup(id);
        g->streamed_tools = 1;
    }
    if (g->stream && c->ops->event) c->ops->event(g, ev);
}

/* ---- logprobs ---- */

static json_t *token_json(ds4s_server *s, int32_t id, json_t **bytes_out) {
    ds4_sbuf b = {0};
    ds4_token_bytes(s->vocab, id, &b);
    json_t *bytes = json_array();
    for (size_t i = 0; i < b.len; i++) json_array_append_new(bytes, json_integer((unsigned char)b.p[i]));
    json_t *str = ds4s_jstr(b.p ? b.p : "", b.len);
    ds4_sbuf_free(&b);
    *bytes_out = bytes;
    return str;
}

static void add_logprob(ds4s_gen *g, const float *logits, int32_t tok) {
    ds4s_server *s = g->srv;
    json_t *bytes;
    json_t *e = json_object();
    json_object_set_new(e, "token", token_json(s, tok, &bytes));
    json_object_set_new(e, "logprob", json_real(ds4_logprob(logits, s->n_vocab, tok)));
    json_object_set_new(e, "bytes", bytes);
    json_t *top = json_array();
    int k = g->job->params.top_logprobs;
    if (k > 0) {
        int ids[DS4S_MAX_TOP_LOGPROBS];
        float lps[DS4S_MAX_TOP_LOGPROBS];
        int n = ds4_top_logprobs(logits, s->n_vocab, k, ids, lps);
        for (int i = 0; i < n; i++) {
            json_t *t = json_object(), *tb;
            json_object_set_new(t, "token", token_json(s, ids[i], &tb));
            json_object_set_new(t, "logprob", json_real(lps[i]));
            json_object_set_new(t, "bytes", tb);
            json_array_append_new(top, t);
        }
    }
    json_object_set_new(e, "top_logprobs", top);
    json_array_append(g->logprobs, e);
    if (g->stream) json_array_append(g->stream_lp, e);
    json_decref(e);
}

/* ---- the job ---- */

static const ds4s_api_ops *ops_for(ds4_api api) {
    switch (api) {
    case DS4_API_OPENAI_CHAT: return &ds4s_ops_chat;
    case DS4_API_OPENAI_COMPLETIONS: return &ds4s_ops_completions;
    case DS4_API_OPENAI_RESPONSES: return &ds4s_ops_responses;
    default: return &ds4s_ops_anthropic;
    }
}

static void fail_before_output(ds4s_gen *g, const char *msg) {
    ds4s_job *j = g->job;
    ds4s_family fam = j->api == DS4_API_ANTHROPIC_MESSAGES ? DS4S_FAM_ANTHROPIC : DS4S_FAM_OPENAI;
    ds4s_metrics_add(&g->srv->metrics.errors, 1);
    if (ds4s_chan_started(j->ch)) {
        ds4s_gen_emit(g, ds4s_error_sse(fam, msg));
    } else {
        ds4s_chan_start(j->ch, 500, 0);
        ds4s_gen_emit(g, ds4s_error_body(fam, 500, msg));
    }
}

/* live tokens + encode_rendered(prompt[from..]): the suffix is tokenized on
 * its own so BPE never merges across the cached boundary (§12.2). */
static int continue_live(ds4s_server *s, ds4s_job *j, size_t from, ds4_tokens *eff) {
    int live = ds4_session_n_tokens(s->session);
    const int32_t *lt = ds4_session_tokens(s->session);
    ds4_tokens t = {0};
    for (int i = 0; i < live; i++) ds4_tokens_push(&t, lt[i]);
    ds4_err e;
    if (ds4_encode_rendered(s->vocab, j->prompt + from, j->prompt_len - from, &t, &e) != 0) {
        ds4_tokens_free(&t);
        return -1;
    }
    *eff = t;
    return 0;
}

static void clear_visible(ds4s_server *s) {
    for (int i = 0; i < 2; i++) {
        free(s->visible.text[i]);
        s->visible.text[i] = NULL;
        s->visible.len[i] = 0;
    }
    s->visible.frontier = -1;
}

/* Remember what a client replaying this turn without its reasoning renders
 * (see server.h). Only after clean finishes (§12.3). */
static void set_visible(ds4s_server *s, ds4s_job *j, const ds4s_gen *g) {
    clear_visible(s);
    if (!g->thinking || !g->have_pr || !g->think_closed || !g->pr.ok) return;
    if (g->finish != DS4S_FIN_STOP && g->finish != DS4S_FIN_TOOLS) return;
    if (j->prompt_len < 7 || memcmp(j->prompt + j->prompt_len - 7, "<think>", 7)) return;
    const char *dsml = g->pr.n_calls && g->pr.replay_dsml ? g->pr.replay_dsml : "";
    size_t dl = g->pr.n_calls && g->pr.replay_dsml ? g->pr.replay_dsml_len : 0;
    for (int k = 0; k < 2; k++) {
        /* k = 0: reasoning dropped (tool-less history: "</think>content");
         * k = 1: reasoning not echoed in tool context ("<think></think>content"). */
        size_t base = k == 0 ? j->prompt_len - 7 : j->prompt_len;
        ds4_sbuf b = {0};
        ds4_sbuf_add(&b, j->prompt, base);
        ds4_sbuf_adds(&b, "</think>");
        ds4_sbuf_add(&b, g->pr.content, g->pr.content_len);
        ds4_sbuf_add(&b, dsml, dl);
        s->visible.text[k] = ds4_sbuf_take(&b, &s->visible.len[k]);
    }
    s->visible.frontier = ds4_session_n_tokens(s->session);
}

/* Effective prompt after live-session matching; returns tokens to sync. */
static void effective_prompt(ds4s_server *s, ds4s_job *j, ds4_tokens *eff) {
    int live = ds4_session_n_tokens(s->session);
    const int32_t *lt = ds4_session_tokens(s->session);
    int common = ds4_session_common_prefix(s->session, j->toks.ids, (int)j->toks.n);
    if (live > 0 && common < live && s->visible.frontier == live) {
        for (int k = 0; k < 2; k++) {
            size_t vl = s->visible.len[k];
            if (s->visible.text[k] && vl < j->prompt_len && !memcmp(j->prompt, s->visible.text[k], vl) &&
                continue_live(s, j, vl, eff) == 0)
                return;
        }
    }
    if (live > 0 && common < live && (size_t)live <= j->toks.n + 64) {
        ds4_sbuf bytes = {0};
        if (ds4_decode(s->vocab, lt, (size_t)live, &bytes) == 0 && bytes.len < j->prompt_len &&
            !memcmp(bytes.p, j->prompt, bytes.len)) {
            if (continue_live(s, j, bytes.len, eff) == 0) {
                ds4_sbuf_free(&bytes);
                return;
            }
        }
        ds4_sbuf_free(&bytes);
    }
    for (size_t i = 0; i < j->toks.n; i++) ds4_tokens_push(eff, j->toks.ids[i]);
}

/* Per-request steering (body "ds4": {"steering": ...}): the live KV was
 * computed under one steering setting and is only valid for it. A request
 * asking for another setting runs on a second, temporary session swapped in
 * for the job; the live session (its KV, its rewind mark, the visible-
 * transcript binding) is untouched, so other clients keep their prefix reuse.
 * The disk cache never sees such KV. */
typedef struct steer_swap {
    ds4_session *live;  /* parked live session while a temporary one runs */
} steer_swap;

static int steer_begin(ds4s_server *s, ds4s_job *j, steer_swap *sw) {
    float ffn = (float)s->cfg.steer_ffn, attn = (float)s->cfg.steer_attn;
    if (!j->params.steer_set) return 0;
    if (!isnan(j->params.steer_ffn)) ffn = (float)j->params.steer_ffn;
    if (!isnan(j->params.steer_attn)) attn = (float)j->params.steer_attn;
    if (ffn == (float)s->cfg.steer_ffn && attn == (float)s->cfg.steer_attn) return 0;
    ds4_err e;
    ds4_session *tmp = ds4_session_new(s->model, s->cfg.ctx, &e);
    if (!tmp) return -1;
    ds4_session_set_steering(tmp, ffn, attn);
    sw->live = s->session;
    s->session = tmp;
    return 0;
}

static void steer_end(ds4s_server *s, steer_swap *sw) {
    if (!sw->live) return;
    ds4_session_free(s->session);
    s->session = sw->live;
    sw->live = NULL;
    __atomic_store_n(&s->metrics.session_tokens, ds4_session_n_tokens(s->session), __ATOMIC_RELAXED);
}

static uint64_t random_seed(void) {
    uint64_t x = 0;
    if (getrandom(&x, sizeof x, 0) != sizeof x) x = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&x;
    return x ? x : 0x9E3779B97F4A7C15ull;
}

void ds4s_generate(ds4s_server *s, ds4s_job *j) {
    ds4s_gen g;
    memset(&g, 0, sizeof g);
    g.srv = s;
    g.job = j;
    g.stream = j->params.stream;
    g.created = (long)time(NULL);
    g.thinking = j->req.think != DS4_THINK_NONE && j->api != DS4_API_OPENAI_COMPLETIONS;
    g.logprobs = json_array();
    g.stream_lp = json_array();
    const ds4s_api_ops *ops = ops_for(j->api);
    steer_swap sw = {0};

    if (ds4s_chan_dead(j->ch)) {   /* client left while queued */
        ds4s_metrics_add(&s->metrics.disconnects, 1);
        goto out;
    }
    if (steer_begin(s, j, &sw) != 0) {
        fail_before_output(&g, "out of memory for a session with per-request steering");
        goto out;
    }

    ds4_tokens eff = {0};
    effective_prompt(s, j, &eff);
    if ((int)eff.n >= s->cfg.ctx && eff.n != j->toks.n) {
        /* Continuing the live KV would carry hidden reasoning past the
         * context; the rendered prompt itself fits (checked at intake). */
        eff.n = 0;
        for (size_t i = 0; i < j->toks.n; i++) ds4_tokens_push(&eff, j->toks.ids[i]);
    }
    /* Disk KV cache (§13): evict save, disk restore, cold plan; no-op without --kv-disk-dir. */
    if (!sw.live) ds4s_kvcache_prepare(s, j, &eff);
    g.n_prompt = (int)eff.n;
    if (g.n_prompt >= s->cfg.ctx) {
        fail_before_output(&g, "prompt exceeds context");
        ds4_tokens_free(&eff);
        goto out;
    }

    /* Test-only forced output: the script's ids replace the sampler. */
    ds4_tokens script = {0};
    int scripted = 0;
    size_t script_pos = 0;
    if (s->script) {
        size_t sl;
        const char *st = ds4s_script_pick(s->script, j->prompt, j->prompt_len, &sl);
        ds4_err e;
        if (st && ds4_encode_rendered(s->vocab, st, sl, &script, &e) == 0) scripted = 1;
    }

    /* Id, cached count and (streams) the first events come before prefill,
     * so clients see the response start while a long prompt is processed.
     * ds4_session_reusable predicts what the sync below keeps (the common
     * prefix, or the rewind mark inside it). */
    {
        unsigned long n = __atomic_add_fetch(&s->next_id, 1, __ATOMIC_RELAXED);
        if (j->api == DS4_API_ANTHROPIC_MESSAGES) ds4s_random_id(g.id, sizeof g.id, "msg_", 12);
        else if (j->api == DS4_API_OPENAI_RESPONSES) ds4s_random_id(g.id, sizeof g.id, "resp_", 12);
        else snprintf(g.id, sizeof g.id, "%s-%lu", j->api == DS4_API_OPENAI_COMPLETIONS ? "cmpl" : "chatcmpl", n);
        g.n_cached = ds4_session_reusable(s->session, eff.ids, (int)eff.n);
    }
    g.last_emit = now_s();
    if (g.stream) {
        ds4s_chan_start(j->ch, 200, 1);
        if (ops->begin) ops->begin(&g);
    }

    /* Prefill. */
    prog pg = {&g, ops};
    ds4_err err = {{0}};
    int reused = 0;
    double t0 = now_s();
    int rc = sw.live ? ds4_session_sync(s->session, eff.ids, (int)eff.n, &reused, on_progress, &pg, &err)
                       : ds4s_kvcache_sync(s, eff.ids, (int)eff.n, &reused, on_progress, &pg, &err);
    double t1 = now_s();
    ds4_tokens_free(&eff);
    __atomic_store_n(&s->metrics.session_tokens, ds4_session_n_tokens(s->session), __ATOMIC_RELAXED);
    if (rc != 0) {
        char msg[1200];
        snprintf(msg, sizeof msg, "%s prefill failed: %s", ds4_model_backend(s->model), err.msg);
        fail_before_output(&g, msg);
        ds4_tokens_free(&script);
        goto out;
    }
    g.n_cached = reused;
    ds4s_metrics_add(&s->metrics.prompt_tokens, (unsigned long long)g.n_prompt);
    ds4s_metrics_add(&s->metrics.cached_tokens, (unsigned long long)reused);
    ds4s_metrics_add(&s->metrics.prefilled_tokens, (unsigned long long)(g.n_prompt - reused));
    ds4s_metrics_add(&s->metrics.prefill_us, (unsigned long long)((t1 - t0) * 1e6));

    /* Sampler. */
    ds4s_sampling smp;
    ds4s_params_sampling(&j->params, g.thinking, &smp);
    ds4_sampler sp;
    ds4_sampler_default(&sp, smp.seed ? smp.seed : random_seed());
    sp.temperature = smp.temperature;
    sp.top_p = smp.top_p;
    sp.top_k = smp.top_k;
    sp.min_p = smp.min_p;

    /* Output projection. Completions return raw text: no think/DSML split. */
    ds4_stream_opts so = {
        .thinking = g.thinking,
        .tools_active = j->req.tools_active && j->api != DS4_API_OPENAI_COMPLETIONS,
        .stop = (const char *const *)j->params.stop,
        .stop_lens = NULL,
        .n_stop = j->params.n_stop,
    };
    ds4_stream *ps = ds4_stream_new(&so);
    ds4_detok dt;
    ds4_detok_init(&dt, s->vocab);
    ds4_sbuf raw = {0}, piece = {0};
    loopctx lc = {&g, ops};

    int32_t eos = ds4_vocab_special(s->vocab, DS4_SP_EOS);
    int budget = ds4s_params_budget(&j->params, s->cfg.tokens, s->cfg.ctx, g.n_prompt);
    g.finish = DS4S_FIN_LENGTH;
    double d0 = now_s();
    int evaluated = 0;
    int reasoning_done = 0;
    ds4s_dsml_tracker trk;
    ds4s_dsml_tracker_init(&trk, g.thinking);
    for (int step = 0; step < budget; step++) {
        if (g.write_failed || ds4s_chan_dead(j->ch) || s->stopping) {
            g.finish = DS4S_FIN_ERROR;
            g.error_msg = s->stopping ? "shutdown requested" : "client stream write failed";
            if (!s->stopping) ds4s_metrics_add(&s->metrics.disconnects, 1);
            break;
        }
        if (ds4_session_n_tokens(s->session) >= s->cfg.ctx) { g.finish = DS4S_FIN_LENGTH; break; }
        if (!sw.live && !ds4_stream_tool_started(ps)) ds4s_kvcache_decode_point(s);   /* continued checkpoint (§13.2) */
        if (g.stream && ops->keepalive && now_s() - g.last_emit >= 2 * s->cfg.ping_interval_s) ops->keepalive(&g);
        const float *logits = ds4_session_logits(s->session);
        if (!logits) { g.finish = DS4S_FIN_ERROR; g.error_msg = "no logits"; break; }
        int32_t tok;
        if (scripted) {
            tok = script_pos < script.n ? script.ids[script_pos++] : eos;
        } else if (so.tools_active && ds4s_dsml_tracker_structural(&trk, raw.p, raw.len)) {
            tok = ds4_argmax(logits, s->n_vocab);
        } else if (sp.temperature <= 0) {
            tok = ds4_argmax(logits, s->n_vocab);
        } else {
            tok = ds4_sample(&sp, logits, s->n_vocab);
        }
        if (tok == eos) { g.finish = DS4S_FIN_STOP; break; }
        if (j->params.logprobs) add_logprob(&g, logits, tok);
        g.n_gen++;
        ds4_sbuf_clear(&piece);
        ds4_detok_push(&dt, tok, &piece);
        ds4_sbuf_add(&raw, piece.p ? piece.p : "", piece.len);
        if (so.tools_active) ds4s_dsml_tracker_update(&trk, raw.p, raw.len, piece.len);
        if (g.thinking && !reasoning_done) {
            size_t back = raw.len - piece.len > 7 ? raw.len - piece.len - 7 : 0;
            if (memmem(raw.p + back, raw.len - back, "</think>", 8)) reasoning_done = 1;
            else g.n_reasoning++;
        }
        ds4_stream_status st = ds4_stream_feed(ps, piece.p ? piece.p : "", piece.len, on_event, &lc);
        if (st == DS4_STREAM_STOP_STRING) { g.finish = DS4S_FIN_STOP; break; }
        if (ds4_session_eval(s->session, tok, &err) != 0) {
            g.finish = DS4S_FIN_ERROR;
            g.error_msg = "decode failed";
            break;
        }
        evaluated++;
        if (st == DS4_STREAM_TOOL_END) { g.finish = DS4S_FIN_TOOLS; break; }
    }
    double d1 = now_s();
    ds4s_metrics_add(&s->metrics.generated_tokens, (unsigned long long)g.n_gen);
    ds4s_metrics_add(&s->metrics.decode_us, (unsigned long long)((d1 - d0) * 1e6));
    __atomic_store_n(&s->metrics.session_tokens, ds4_session_n_tokens(s->session), __ATOMIC_RELAXED);
    (void)evaluated;

    ds4_sbuf_clear(&piece);
    ds4_detok_flush(&dt, &piece);
    if (piece.len && g.finish != DS4S_FIN_STOP) ds4_stream_feed(ps, piece.p, piece.len, on_event, &lc);
    ds4_stream_finish(ps, on_event, &lc);

    size_t tlen = 0;
    const char *text = ds4_stream_text(ps, &tlen);
    g.text = text;
    g.text_len = tlen;
    /* Which stop string matched (Anthropic reports it, §18.5). */
    if (g.finish == DS4S_FIN_STOP && j->params.n_stop && raw.len > tlen) {
        for (size_t i = 0; i < j->params.n_stop; i++) {
            size_t l = strlen(j->params.stop[i]);
            if (l && tlen + l <= raw.len && !memcmp(raw.p + tlen, j->params.stop[i], l)) { g.stop_hit = strdup(j->params.stop[i]); break; }
        }
    }
    if (ds4_stream_tool_started(ps) && !ds4_stream_tool_ended(ps) && g.finish != DS4S_FIN_ERROR) {
        g.finish = DS4S_FIN_ERROR;
        g.error_msg = "unterminated tool call";
    }
    g.think_closed = g.thinking && memmem(text, tlen, "</think>", 8) != NULL;

    if (j->api != DS4_API_OPENAI_COMPLETIONS) {
        ds4_dsml_parse(text, tlen, g.thinking, &g.pr);
        g.have_pr = 1;
        /* A thinking phase that never closed is reasoning, not content (§18.6). */
        if (g.thinking && !g.think_closed && g.pr.ok && !g.pr.n_calls) {
            free(g.pr.reasoning);
            const char *t = text;
            size_t n = tlen;
            if (n >= 7 && !memcmp(t, "<think>", 7)) { t += 7; n -= 7; }
            g.pr.reasoning = malloc(n + 1);
            memcpy(g.pr.reasoning, t, n);
            g.pr.reasoning[n] = 0;
            g.pr.reasoning_len = n;
            g.pr.content[0] = 0;
            g.pr.content_len = 0;
        }
        if (!g.pr.ok && g.pr.block_started && g.finish == DS4S_FIN_TOOLS) g.finish = DS4S_FIN_STOP;
        if (g.pr.n_calls) {
            if (g.finish != DS4S_FIN_ERROR) g.finish = DS4S_FIN_TOOLS;
            g.call_ids = calloc(g.pr.n_calls, sizeof *g.call_ids);
            for (size_t i = 0; i < g.pr.n_calls; i++) {
                if (i < g.n_stream_ids && g.stream_ids[i]) g.call_ids[i] = strdup(g.stream_ids[i]);
                else {
                    char id[64];
                    ds4s_random_id(id, sizeof id, j->api == DS4_API_ANTHROPIC_MESSAGES ? "toolu_" : "call_", 16);
                    g.call_ids[i] = strdup(id);
                }
            }
            if (s->toolmem && g.pr.replay_dsml)
                ds4s_toolmem_put(s->toolmem, (const char *const *)g.call_ids, g.pr.n_calls, g.pr.replay_dsml, g.pr.replay_dsml_len);
        }
    }

    if (ops->end) ops->end(&g);
    if (!sw.live) set_visible(s, j, &g);
    ds4s_trace_job(&g, &smp);

    ds4_stream_free(ps);
    ds4_detok_free(&dt);
    ds4_sbuf_free(&raw);
    ds4_sbuf_free(&piece);
    ds4_tokens_free(&script);
out:
    steer_end(s, &sw);
    if (!ds4s_chan_started(j->ch)) {
        /* Nothing was written (client gone while queued). */
        ds4s_chan_start(j->ch, 499, 0);
    }
    ds4s_chan_close(j->ch);
    ds4s_metrics_add(&s->metrics.jobs_done, 1);
    for (size_t i = 0; i < g.n_stream_ids; i++) free(g.stream_ids[i]);
    free(g.stream_ids);
    if (g.call_ids)
        for (size_t i = 0; i < g.pr.n_calls; i++) free(g.call_ids[i]);
    free(g.call_ids);
    if (g.have_pr) ds4_parse_result_free(&g.pr);
    free(g.stop_hit);
    json_decref(g.logprobs);
    json_decref(g.stream_lp);
}
