/* chat_internal.h - the pieces of `ds4` chat (cmd_chat.c) that live in their
 * own files: the conversation and its turns (chat_turn.c), terminal output
 * (chat_term.c), line input with libedit and the Ctrl+C flag (chat_input.c),
 * and the log-probability dump (chat_logprobs.c).
 *
 * The conversation is kept as text messages and re-rendered with the text
 * layer's chat renderer every turn (the server's code path), so the prompt the
 * model sees is byte-for-byte what a client would get from the server for the
 * same history. The session is then synced to that prompt; only the tokens
 * past the reusable prefix are prefilled. */
#ifndef DS4_CLI_CHAT_INTERNAL_H
#define DS4_CLI_CHAT_INTERNAL_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/engine.h"
#include "text/text.h"

typedef struct chat_opts {
    const char *model;          /* -m, default ./ds4flash.gguf */
    int ctx;                    /* --ctx */
    ds4_sampler sampler;        /* --temp --top-k --top-p --min-p --seed */
    int seed_set;
    int max_tokens;             /* -n; < 0: until EOS or the context is full */
    const char *system;         /* --system */
    const char *steer_file;
    float steer_ffn, steer_attn;
    int steer_ffn_set;
    const char *backend;
    const char *gpus;           /* --gpus LIST */
    int quality;                /* --quality: exact reference-order kernels on every backend */
    int threads;
    ds4_think_mode think;
    const char *prompt;         /* -p: one-shot */
    const char *logprobs_path;  /* --dump-logprobs */
    int logprobs_k;
    int ignore_eos;             /* --ignore-eos: generate until -n (benchmarks, tests) */
    int color;                  /* 1 = ANSI dim for reasoning + progress bar */
    int progress;               /* prefill progress bar (stderr is a terminal) */
    int reasoning_stderr;       /* reasoning to stderr (stdout is not a terminal) */
    int quiet;                  /* no banner / stats */
    int no_cache;               /* --no-cache: prefill the whole conversation every turn */
} chat_opts;

/* ---- Ctrl+C (chat_input.c) ---- */
extern volatile sig_atomic_t chat_interrupted;
/* SIGINT sets chat_interrupted; a second one while it is still set exits
 * (130) so that a stuck forward pass can always be left. */
void chat_install_sigint(void);

/* ---- line input (chat_input.c) ---- */
typedef struct chat_input chat_input;
/* Interactive input: libedit on a terminal, plain lines otherwise. History is
 * loaded from / saved to history_path (may be NULL). */
chat_input *chat_input_new(const char *history_path);
/* One line without its newline (caller frees). NULL at end of input (Ctrl+D);
 * *interrupted is set when Ctrl+C discarded the line (then NULL too). */
char *chat_input_read(chat_input *in, const char *prompt, int *interrupted);
void chat_input_free(chat_input *in);

/* ---- terminal output (chat_term.c) ---- */
typedef enum chat_style { CHAT_STYLE_TEXT = 0, CHAT_STYLE_REASONING } chat_style;
/* Writes model bytes to out. With color, reasoning is dimmed and control
 * characters other than newline and tab are shown as ^X (the model must not
 * be able to drive the terminal). */
void chat_term_write(FILE *out, int color, chat_style st, const char *p, size_t n);
/* Ends any open style (before a status line or the prompt). */
void chat_term_reset(FILE *out, int color);
/* Prefill progress line on stderr ("\r" updated); chat_term_progress_done clears it. */
void chat_term_progress(int done, int total, double elapsed_s);
void chat_term_progress_done(void);

/* ---- log-probability dump (chat_logprobs.c) ---- */
/* One JSON object per line per sampled token (EOS included):
 * {"turn":T,"pos":P,"id":ID,"token":"...","bytes":[...],"logprob":L,
 *  "top":[{"id":..,"token":"..","bytes":[..],"logprob":..},...]} */
int chat_logprobs_write(FILE *f, const ds4_vocab *v, int turn, int pos, const float *logits, int n_vocab,
                        int tok, int k);

/* ---- the conversation (chat_turn.c) ---- */
typedef struct chat chat;

chat *chat_new(const chat_opts *o, ds4_err *err);
void chat_free(chat *c);
/* /ctx N: a new session of N tokens; the history is kept (re-prefilled next turn). */
int chat_set_ctx(chat *c, int ctx, ds4_err *err);
int chat_ctx(const chat *c);
void chat_set_think(chat *c, ds4_think_mode m);
ds4_think_mode chat_think(const chat *c);
/* The mode actually rendered: max falls back to high below DS4_THINK_MAX_MIN_CTX. */
ds4_think_mode chat_think_effective(const chat *c);
/* Forget the conversation (the system prompt stays). */
void chat_clear(chat *c);
size_t chat_n_messages(const chat *c);
const char *chat_model_name(const chat *c);

typedef enum chat_finish {
    CHAT_FIN_EOS = 0,       /* end of sentence */
    CHAT_FIN_LENGTH,        /* -n reached */
    CHAT_FIN_CTX,           /* the context is full */
    CHAT_FIN_INTERRUPTED,   /* Ctrl+C during generation */
    CHAT_FIN_CANCELLED,     /* Ctrl+C during prefill: nothing generated, turn dropped */
} chat_finish;

typedef struct chat_stats {
    int prompt_tokens, reused_tokens, gen_tokens;
    double prefill_s, decode_s;
    chat_finish finish;
} chat_stats;

/* One user turn: the message is added, the conversation rendered, the session
 * synced (progress bar on a terminal), the reply streamed to out and added to
 * the history. Returns 0 (see st->finish) or -1 with err set; on error and on
 * a cancelled prefill the user message is taken back out. */
int chat_turn(chat *c, const char *user, size_t len, FILE *out, chat_stats *st, ds4_err *err);

#endif
