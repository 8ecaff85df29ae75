/* ds4_err.c - formatting helpers for ds4_err (see ds4_err.h). */
#include "common/ds4_err.h"

#include <stdio.h>
#include <string.h>

int ds4_verrf(ds4_err *err, const char *fmt, va_list ap) {
    if (err) vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return -1;
}

int ds4_errf(ds4_err *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ds4_verrf(err, fmt, ap);
    va_end(ap);
    return -1;
}

int ds4_err_prefix(ds4_err *err, const char *fmt, ...) {
    if (!err) return -1;
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    char pre[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    /* A cut message is acceptable; testing the result keeps gcc -O1's
     * -Wformat-truncation (fatal in the ASan build) quiet. */
    if (snprintf(err->msg, sizeof err->msg, "%s: %s", pre, old) < 0) err->msg[0] = 0;
    return -1;
}
