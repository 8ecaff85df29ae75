/* jsonu.h - small JSON helpers shared by the API adapters.
 *
 * jansson refuses invalid UTF-8, but model output can contain any bytes (a
 * random model, a stop cut inside a character). ds4s_jstr never fails: it
 * replaces invalid sequences with U+FFFD so a response is always valid JSON. */
#ifndef DS4_SERVER_JSONU_H
#define DS4_SERVER_JSONU_H

#include <jansson.h>
#include <stddef.h>

json_t *ds4s_jstr(const char *s, size_t n);
json_t *ds4s_jcstr(const char *s);              /* NUL-terminated; NULL => "" */
/* Compact dump in insertion order; malloc'd; `nl` appends "\n". */
char *ds4s_jdump(const json_t *o, int nl);
/* Largest nesting depth of the JSON text (objects/arrays), ignoring strings;
 * stops counting past `limit` and returns limit+1. */
int ds4s_json_depth(const char *s, size_t n, int limit);
/* Length of the longest prefix of s[0..n) that is valid, complete UTF-8. */
size_t ds4s_utf8_valid_prefix(const char *s, size_t n);

#endif
