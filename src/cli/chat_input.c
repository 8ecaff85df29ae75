/* chat_input.c - the interactive prompt of `ds4` chat: libedit line editing
 * and history on a terminal, plain lines from a pipe, and the Ctrl+C flag.
 *
 * SIGINT is installed without SA_RESTART and libedit's own signal handling is
 * off (rl_catch_signals = 0): at the prompt the read is interrupted, readline
 * returns NULL with the flag set and the caller shows a fresh prompt; during
 * generation the loop polls the flag between tokens. A second Ctrl+C while the
 * first is still pending exits, because a forward pass is not interruptible
 * and the user must always have a way out. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>

#include "cli/chat_internal.h"

volatile sig_atomic_t chat_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    if (chat_interrupted) {
        static const char msg[] = "\nds4: interrupted twice, exiting\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(130);
    }
    chat_interrupted = 1;
}

void chat_install_sigint(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: the prompt's read() must return */
    sigaction(SIGINT, &sa, NULL);
}

struct chat_input {
    int tty;
    char *history_path;
};

chat_input *chat_input_new(const char *history_path) {
    chat_input *in = calloc(1, sizeof *in);
    if (!in) return NULL;
    in->tty = isatty(0) && isatty(1);
    if (in->tty) {
        rl_catch_signals = 0;
        using_history();
        stifle_history(1000);
        if (history_path) {
            in->history_path = strdup(history_path);
            read_history(history_path); /* a missing file is a fresh history */
        }
    }
    return in;
}

static char *read_plain(int *interrupted) {
    size_t cap = 256, n = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    for (;;) {
        int ch = getchar();
        if (ch == EOF) {
            if (ferror(stdin) && errno == EINTR && chat_interrupted) {
                clearerr(stdin);
                *interrupted = 1;
                free(s);
                return NULL;
            }
            if (n == 0) { free(s); return NULL; }
            break;
        }
        if (ch == '\n') break;
        if (n + 2 > cap) {
            char *t = realloc(s, cap *= 2);
            if (!t) { free(s); return NULL; }
            s = t;
        }
        s[n++] = (char)ch;
    }
    s[n] = 0;
    return s;
}

char *chat_input_read(chat_input *in, const char *prompt, int *interrupted) {
    *interrupted = 0;
    chat_interrupted = 0;
    if (!in->tty) return read_plain(interrupted);
    errno = 0;
    char *line = readline(prompt);
    if (!line) {
        if (chat_interrupted) {
            chat_interrupted = 0;
            *interrupted = 1;
            fputs("\n", stdout);
            fflush(stdout);
        }
        return NULL;
    }
    chat_interrupted = 0;
    if (line[0] && line[strspn(line, " \t")]) add_history(line);
    return line;
}

void chat_input_free(chat_input *in) {
    if (!in) return;
    if (in->tty && in->history_path) write_history(in->history_path);
    free(in->history_path);
    free(in);
}
