/* chat_term.c - what `ds4` chat draws on a terminal: reasoning dimmed, model
 * bytes made harmless, the prefill progress bar.
 *
 * Model output is untrusted bytes: on a terminal an ESC or a CR from the model
 * could move the cursor or rewrite the screen, so with color on every C0
 * control except newline and tab (and DEL) is printed as ^X. Without color
 * (a pipe, a file) the bytes pass through untouched: that is the exact text.
 * The style is tracked here so that reasoning and answer interleave with one
 * escape sequence per switch, not per token. */
#include <stdio.h>
#include <string.h>

#include "cli/chat_internal.h"

#define DIM "\033[2m"
#define RESET "\033[0m"

static int cur_dim; /* the terminal is currently in the dim style */

void chat_term_write(FILE *out, int color, chat_style st, const char *p, size_t n) {
    if (!color) {
        fwrite(p, 1, n, out);
        fflush(out);
        return;
    }
    int want_dim = st == CHAT_STYLE_REASONING;
    if (n && want_dim != cur_dim) {
        fputs(want_dim ? DIM : RESET, out);
        cur_dim = want_dim;
    }
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if ((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f) {
            fwrite(p + start, 1, i - start, out);
            fprintf(out, "^%c", ch == 0x7f ? '?' : ch + '@');
            start = i + 1;
        }
    }
    fwrite(p + start, 1, n - start, out);
    fflush(out);
}

void chat_term_reset(FILE *out, int color) {
    if (color && cur_dim) fputs(RESET, out);
    cur_dim = 0;
    fflush(out);
}

void chat_term_progress(int done, int total, double elapsed_s) {
    enum { W = 30 };
    char bar[W + 1];
    int fill = total > 0 ? (int)((long long)done * W / total) : W;
    memset(bar, '#', (size_t)fill);
    memset(bar + fill, '.', (size_t)(W - fill));
    bar[W] = 0;
    double tps = elapsed_s > 0 ? done / elapsed_s : 0;
    fprintf(stderr, "\r\033[2Kprefill [%s] %d/%d tokens", bar, done, total);
    if (done > 0) fprintf(stderr, " %.1f t/s", tps);
    fflush(stderr);
}

void chat_term_progress_done(void) {
    fputs("\r\033[2K", stderr);
    fflush(stderr);
}
