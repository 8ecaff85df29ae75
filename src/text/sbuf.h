/* sbuf.h - the growable byte buffer the text layer returns its results in.
 *
 * Rendered prompts, decoded bytes, DSML blocks and JSON fragments are all
 * byte strings that may contain any byte (the model can emit invalid UTF-8),
 * so they travel as pointer + length. `p` is always NUL-terminated for
 * convenience (the terminator is not counted in len). A zeroed ds4_sbuf is an
 * empty buffer; free it with ds4_sbuf_free. Allocation failure aborts: the text
 * layer has no sensible way to continue without memory. */
#ifndef DS4_TEXT_SBUF_H
#define DS4_TEXT_SBUF_H

#include <stddef.h>

typedef struct ds4_sbuf {
    char *p;
    size_t len, cap;
} ds4_sbuf;

void ds4_sbuf_reserve(ds4_sbuf *b, size_t extra);
void ds4_sbuf_add(ds4_sbuf *b, const void *data, size_t n);
void ds4_sbuf_adds(ds4_sbuf *b, const char *s); /* NUL-terminated */
void ds4_sbuf_addc(ds4_sbuf *b, char c);
void ds4_sbuf_clear(ds4_sbuf *b);               /* len = 0, keeps memory */
void ds4_sbuf_free(ds4_sbuf *b);
/* Hands the bytes to the caller (free() them) and leaves b empty. Never NULL. */
char *ds4_sbuf_take(ds4_sbuf *b, size_t *len);

#endif
