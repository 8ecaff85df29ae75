/* auth.h - optional API key check (spec/server.md §1.3 REC).
 * Accepts "Authorization: Bearer KEY" or "x-api-key: KEY"; compares in
 * constant time so the key cannot be probed byte by byte. */
#ifndef DS4_SERVER_AUTH_H
#define DS4_SERVER_AUTH_H

/* 1 when no key is configured or one of the headers carries it. */
int ds4s_auth_ok(const char *key, const char *authorization, const char *x_api_key);

#endif
