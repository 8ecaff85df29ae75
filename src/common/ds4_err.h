/* ds4_err.h - the one error carrier every module fills.
 *
 * A failing function returns -1 (or NULL) and writes one line into a ds4_err:
 * which file, which field or tensor, the value found and what was expected.
 * Callers print e.msg as is; nothing downstream re-words it. A fixed buffer
 * keeps error paths allocation-free (they must work when memory is short). */
#ifndef DS4_ERR_H
#define DS4_ERR_H

#include <stdarg.h>

typedef struct ds4_err {
    char msg[1024];
} ds4_err;

/* printf-style; a NULL err is allowed and ignored. Returns -1 so callers can
 * write `return ds4_errf(err, ...);`. */
int ds4_errf(ds4_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ds4_verrf(ds4_err *err, const char *fmt, va_list ap);

/* Prefix an existing message ("context: old message"). */
int ds4_err_prefix(ds4_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
