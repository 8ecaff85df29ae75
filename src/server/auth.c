/* auth.c - see auth.h. */
#include "server/auth.h"

#include <string.h>
#include <strings.h>

static int ct_equal(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    unsigned char d = (unsigned char)(na != nb);
    for (size_t i = 0; i < nb; i++) d |= (unsigned char)(a[i < na ? i : 0] ^ b[i]);
    return d == 0 && na == nb;
}

int ds4s_auth_ok(const char *key, const char *authorization, const char *x_api_key) {
    if (!key || !*key) return 1;
    if (x_api_key && ct_equal(x_api_key, key)) return 1;
    if (authorization && !strncasecmp(authorization, "Bearer ", 7)) {
        const char *t = authorization + 7;
        while (*t == ' ') t++;
        if (ct_equal(t, key)) return 1;
    }
    return 0;
}
