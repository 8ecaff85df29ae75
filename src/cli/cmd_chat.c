/* cmd_chat.c - `ds4` with no subcommand: chat with the model.
 *
 *   ds4 -p "question"      one turn, the reply on stdout, then exit
 *   ds4                    interactive multi-turn chat (libedit)
 *   ds4 < lines.txt        one turn per input line (no terminal: no editing)
 *
 * This file owns the flags, the slash commands and the status lines; the
 * conversation itself is chat_turn.c. Status (banner, tokens/s, errors) goes
 * to stderr so that stdout carries only the model's answer; when stdout is not
 * a terminal the reasoning goes to stderr too, so `ds4 -p ... > answer.txt`
 * captures the answer alone. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/chat_internal.h"
#include "cli/cli.h"

static void usage(FILE *o) {
    fprintf(o,
            "usage: ds4 [OPTIONS]              interactive chat\n"
            "       ds4 -p PROMPT [OPTIONS]    one reply, then exit\n"
            "\n"
            "chat options:\n"
            "  -m, --model FILE          model GGUF (default ./ds4flash.gguf)\n"
            "  -p, --prompt TEXT         one-shot: answer TEXT and exit\n"
            "  -c, --ctx N               context size in tokens (default 32768)\n"
            "  -n, --max-tokens N        stop a reply after N tokens (default: until EOS or the context is full)\n"
            "      --system TEXT         system prompt\n"
            "      --think               thinking mode high (default)\n"
            "      --think-max           thinking mode max (needs --ctx >= %u, else high)\n"
            "      --nothink             no thinking\n"
            "      --temp F              temperature, <= 0 is greedy (default 1)\n"
            "      --top-k N             keep the N most likely tokens, 0 = off (default 0)\n"
            "      --top-p F             nucleus mass in (0,1], 1 = off (default 1)\n"
            "      --min-p F             drop tokens below F x the top probability (default 0.05)\n"
            "      --seed N              sampler seed (default: random)\n"
            "      --dir-steering-file F directional steering vectors (n_layer x n_embd f32)\n"
            "      --dir-steering-ffn S  steering scale after FFN outputs (default 1 with a file)\n"
            "      --dir-steering-attn S steering scale after attention outputs (default 0)\n"
            "      --backend NAME        cpu|cuda (default: fastest present)\n"
            "      --gpus LIST           CUDA devices to split the layers across, e.g. 0,1 (default 0)\n"
            "      --quality             exact reference-order kernels (CUDA defaults to faster ones)\n"
            "  -t, --threads N           CPU threads (default: all cores)\n"
            "      --dump-logprobs FILE  one JSON line per sampled token with its log-probability\n"
            "      --logprobs-top-k K    alternatives per line in --dump-logprobs (default 5)\n"
            "      --ignore-eos          keep generating past end-of-sentence (until -n)\n"
            "      --no-color            no ANSI styles (also NO_COLOR=1)\n"
            "      --no-cache            prefill the whole conversation every turn (checks KV reuse)\n"
            "  -q, --quiet               no banner and no tokens/s lines\n"
            "\n"
            "interactive commands: /help /think /think-max /nothink /ctx N /read FILE /clear /quit\n"
            "Ctrl+C stops the reply being generated; Ctrl+D exits.\n",
            DS4_THINK_MAX_MIN_CTX);
}

static void help_commands(void) {
    fprintf(stderr,
            "  /think           thinking mode high\n"
            "  /think-max       thinking mode max (needs a context >= %u, else high)\n"
            "  /nothink         no thinking\n"
            "  /ctx N           new context size N (the conversation is kept and re-read)\n"
            "  /read FILE [MSG] send FILE's text (and MSG after it) as your message\n"
            "  /clear           forget the conversation\n"
            "  /quit            exit (also Ctrl+D)\n"
            "  Ctrl+C stops the reply being generated\n",
            DS4_THINK_MAX_MIN_CTX);
}

static int parse_int(const char *flag, const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "ds4: %s '%s': expected an integer in %ld..%ld\n", flag, s, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_float(const char *flag, const char *s, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "ds4: %s '%s': expected a number in %g..%g\n", flag, s, lo, hi);
        return -1;
    }
    *out = (float)v;
    return 0;
}

static const char *fin_name(chat_finish f) {
    switch (f) {
    case CHAT_FIN_EOS: return "end";
    case CHAT_FIN_LENGTH: return "max tokens";
    case CHAT_FIN_CTX: return "context full";
    case CHAT_FIN_INTERRUPTED: return "interrupted";
    default: return "cancelled";
    }
}

static void print_stats(const chat_opts *o, const chat_stats *st) {
    if (o->quiet && st->finish != CHAT_FIN_INTERRUPTED && st->finish != CHAT_FIN_CANCELLED) return;
    const char *dim = o->progress ? "\033[2m" : "", *rst = o->progress ? "\033[0m" : "";
    if (st->finish == CHAT_FIN_CANCELLED) {
        fprintf(stderr, "%s[prefill cancelled after %.2f s]%s\n", dim, st->prefill_s, rst);
        return;
    }
    const int pre = st->prompt_tokens - st->reused_tokens;
    fprintf(stderr, "%s[%s: %d tokens, %.2f t/s | prompt %d tokens, %d reused, %d prefilled, %.2f t/s]%s\n", dim,
            fin_name(st->finish), st->gen_tokens, st->decode_s > 0 ? st->gen_tokens / st->decode_s : 0.0,
            st->prompt_tokens, st->reused_tokens, pre, st->prefill_s > 0 && pre > 0 ? pre / st->prefill_s : 0.0, rst);
}

static int read_file(const char *path, ds4_sbuf *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) ds4_sbuf_add(out, buf, n);
    int bad = ferror(f);
    fclose(f);
    return bad ? -1 : 0;
}

/* Runs one turn and reports; returns -1 only on an error worth exiting for in one-shot mode. */
static int do_turn(chat *c, const chat_opts *o, const char *msg, size_t len) {
    chat_stats st;
    ds4_err e = {{0}};
    if (chat_turn(c, msg, len, stdout, &st, &e)) {
        fprintf(stderr, "ds4: %s\n", e.msg);
        return -1;
    }
    print_stats(o, &st);
    return 0;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = 0;
    return s;
}

static const char *think_label(const chat *c) {
    ds4_think_mode m = chat_think(c), e = chat_think_effective(c);
    if (m != e) return "max (served as high: the context is below 393216)";
    return ds4_think_mode_name(m);
}

/* Returns 1 to quit. */
static int slash(chat *c, const chat_opts *o, char *line) {
    char *arg = line + strcspn(line, " \t");
    if (*arg) *arg++ = 0;
    arg = trim(arg);
    if (!strcmp(line, "/quit") || !strcmp(line, "/exit") || !strcmp(line, "/q")) return 1;
    if (!strcmp(line, "/help") || !strcmp(line, "/?")) help_commands();
    else if (!strcmp(line, "/think")) { chat_set_think(c, DS4_THINK_HIGH); fprintf(stderr, "thinking: %s\n", think_label(c)); }
    else if (!strcmp(line, "/think-max")) { chat_set_think(c, DS4_THINK_MAX); fprintf(stderr, "thinking: %s\n", think_label(c)); }
    else if (!strcmp(line, "/nothink")) { chat_set_think(c, DS4_THINK_NONE); fprintf(stderr, "thinking: none\n"); }
    else if (!strcmp(line, "/clear")) { chat_clear(c); fprintf(stderr, "conversation cleared\n"); }
    else if (!strcmp(line, "/ctx")) {
        int n;
        if (!*arg) fprintf(stderr, "context: %d tokens\n", chat_ctx(c));
        else if (parse_int("/ctx", arg, 16, 1 << 30, &n) == 0) {
            ds4_err e = {{0}};
            if (chat_set_ctx(c, n, &e)) fprintf(stderr, "ds4: /ctx %d: %s (context stays %d)\n", n, e.msg, chat_ctx(c));
            else fprintf(stderr, "context: %d tokens\n", n);
        }
    } else if (!strcmp(line, "/read")) {
        if (!*arg) { fprintf(stderr, "usage: /read FILE [MESSAGE]\n"); return 0; }
        char *rest = arg + strcspn(arg, " \t");
        if (*rest) *rest++ = 0;
        rest = trim(rest);
        ds4_sbuf msg = {0};
        if (read_file(arg, &msg)) { fprintf(stderr, "ds4: /read %s: %s\n", arg, strerror(errno)); ds4_sbuf_free(&msg); return 0; }
        if (*rest) {
            if (msg.len && msg.p[msg.len - 1] != '\n') ds4_sbuf_addc(&msg, '\n');
            ds4_sbuf_addc(&msg, '\n');
            ds4_sbuf_adds(&msg, rest);
        }
        fprintf(stderr, "(read %zu bytes from %s)\n", msg.len, arg);
        do_turn(c, o, msg.p ? msg.p : "", msg.len);
        ds4_sbuf_free(&msg);
    } else fprintf(stderr, "unknown command %s (/help lists them)\n", line);
    (void)o;
    return 0;
}

static char *history_path(void) {
    const char *h = getenv("DS4_HISTORY");
    if (h) return *h ? strdup(h) : NULL;
    const char *home = getenv("HOME");
    if (!home || !*home) return NULL;
    size_t n = strlen(home) + 32;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/.ds4_history", home);
    return p;
}

static int interactive(chat *c, const chat_opts *o) {
    char *hp = history_path();
    chat_input *in = chat_input_new(hp);
    free(hp);
    if (!in) return 1;
    if (!o->quiet)
        fprintf(stderr, "ds4: %s, context %d, thinking %s. /help for commands, Ctrl+D to exit.\n", chat_model_name(c),
                chat_ctx(c), think_label(c));
    const int tty = isatty(0) && isatty(1);
    for (;;) {
        int intr = 0;
        char *raw = chat_input_read(in, tty ? "> " : "", &intr);
        if (!raw) {
            if (intr) continue;
            if (tty) fputc('\n', stdout);
            break;
        }
        char *line = trim(raw);
        int quit = 0;
        if (!*line) {}
        else if (line[0] == '/') quit = slash(c, o, line);
        else do_turn(c, o, line, strlen(line));
        free(raw);
        if (quit) break;
    }
    chat_input_free(in);
    return 0;
}

int ds4_cmd_chat(int argc, char **argv) {
    chat_opts o;
    memset(&o, 0, sizeof o);
    o.model = "ds4flash.gguf";
    o.ctx = 32768;
    o.max_tokens = -1;
    o.think = DS4_THINK_HIGH;
    o.logprobs_k = 5;
    ds4_sampler_default(&o.sampler, 0);
    int no_color = getenv("NO_COLOR") && *getenv("NO_COLOR"), model_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(s) (!strcmp(a, s))
#define NEED()                                                                  \
    do {                                                                        \
        if (!v) { fprintf(stderr, "ds4: %s needs a value\n", a); return 2; }   \
        i++;                                                                    \
    } while (0)
        if (ARG("-h") || ARG("--help")) { usage(stdout); return 0; }
        else if (ARG("-m") || ARG("--model")) { NEED(); o.model = v; model_given = 1; }
        else if (ARG("-p") || ARG("--prompt")) { NEED(); o.prompt = v; }
        else if (ARG("-c") || ARG("--ctx")) { NEED(); if (parse_int(a, v, 16, 1 << 30, &o.ctx)) return 2; }
        else if (ARG("-n") || ARG("--max-tokens")) { NEED(); if (parse_int(a, v, -1, 1 << 30, &o.max_tokens)) return 2; }
        else if (ARG("--system") || ARG("-sys")) { NEED(); o.system = v; }
        else if (ARG("--think")) o.think = DS4_THINK_HIGH;
        else if (ARG("--think-max")) o.think = DS4_THINK_MAX;
        else if (ARG("--nothink") || ARG("--no-think")) o.think = DS4_THINK_NONE;
        else if (ARG("--temp") || ARG("--temperature")) { NEED(); if (parse_float(a, v, -1, 100, &o.sampler.temperature)) return 2; }
        else if (ARG("--top-k")) { NEED(); if (parse_int(a, v, 0, 1 << 30, &o.sampler.top_k)) return 2; }
        else if (ARG("--top-p")) { NEED(); if (parse_float(a, v, 0, 1, &o.sampler.top_p)) return 2; }
        else if (ARG("--min-p")) { NEED(); if (parse_float(a, v, 0, 1, &o.sampler.min_p)) return 2; }
        else if (ARG("--seed")) {
            NEED();
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (!*v || *end || errno || *v == '-') { fprintf(stderr, "ds4: --seed '%s': expected an unsigned integer\n", v); return 2; }
            o.sampler.rng = s ? s : 0x9E3779B97F4A7C15ull; /* xorshift needs a nonzero state */
            o.seed_set = 1;
        }
        else if (ARG("--dir-steering-file")) { NEED(); o.steer_file = v; }
        else if (ARG("--dir-steering-ffn")) { NEED(); if (parse_float(a, v, -100, 100, &o.steer_ffn)) return 2; o.steer_ffn_set = 1; }
        else if (ARG("--dir-steering-attn")) { NEED(); if (parse_float(a, v, -100, 100, &o.steer_attn)) return 2; }
        else if (ARG("--backend")) { NEED(); o.backend = v; }
        else if (ARG("--gpus")) { NEED(); o.gpus = v; }
        else if (ARG("--quality")) o.quality = 1;
        else if (ARG("-t") || ARG("--threads")) { NEED(); if (parse_int(a, v, 0, 4096, &o.threads)) return 2; }
        else if (ARG("--dump-logprobs")) { NEED(); o.logprobs_path = v; }
        else if (ARG("--logprobs-top-k")) { NEED(); if (parse_int(a, v, 0, 1024, &o.logprobs_k)) return 2; }
        else if (ARG("--ignore-eos")) o.ignore_eos = 1;
        else if (ARG("--no-color")) no_color = 1;
        else if (ARG("--no-cache")) o.no_cache = 1;
        else if (ARG("-q") || ARG("--quiet")) o.quiet = 1;
        else {
            fprintf(stderr, "ds4: unknown option '%s' (ds4 --help lists them)\n", a);
            return 2;
        }
#undef ARG
#undef NEED
    }
    const char *term = getenv("TERM");
    const int dumb = term && !strcmp(term, "dumb");
    o.color = isatty(1) && !no_color && !dumb;
    o.progress = isatty(2) && !no_color && !dumb;
    o.reasoning_stderr = !isatty(1);

    ds4_err e = {{0}};
    chat *c = chat_new(&o, &e);
    if (!c) {
        fprintf(stderr, "ds4: %s\n", e.msg);
        if (!model_given && access(o.model, F_OK) != 0)
            fprintf(stderr, "ds4: no model at ./%s: pass -m FILE, or fetch it with `ds4ctl download`\n", o.model);
        return 1;
    }
    if (chat_think(c) != chat_think_effective(c) && !o.quiet)
        fprintf(stderr, "ds4: --think-max needs --ctx >= %u; thinking high instead\n", DS4_THINK_MAX_MIN_CTX);
    chat_install_sigint();
    int rc;
    if (o.prompt) {
        chat_stats st;
        if (chat_turn(c, o.prompt, strlen(o.prompt), stdout, &st, &e)) {
            fprintf(stderr, "ds4: %s\n", e.msg);
            rc = 1;
        } else {
            print_stats(&o, &st);
            rc = st.finish == CHAT_FIN_INTERRUPTED || st.finish == CHAT_FIN_CANCELLED ? 130 : 0;
        }
    } else {
        rc = interactive(c, &o);
    }
    chat_free(c);
    if (fflush(stdout) != 0 && !rc) rc = 1;
    return rc;
}
