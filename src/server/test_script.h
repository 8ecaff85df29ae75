/* test_script.h - the TEST-ONLY forced-output mode (--test-script FILE).
 *
 * Integration tests must drive tool calls, reasoning and stop strings through
 * real client SDKs, but a tiny random model only emits noise. In this mode the
 * forward pass still runs for every token (prefill, eval, KV reuse are real);
 * only the choice of the next token is replaced: the scripted text is
 * tokenized with the rendered-chat tokenizer and its ids are emitted one by
 * one, then EOS. The server refuses the flag unless DS4_ALLOW_TEST_SCRIPT=1.
 *
 * FILE is a JSON array of {"match": "substring", "text": "continuation"}; a
 * request uses the first entry whose match occurs in its rendered prompt (an
 * entry without match always applies). No entry matching => normal sampling. */
#ifndef DS4_SERVER_TEST_SCRIPT_H
#define DS4_SERVER_TEST_SCRIPT_H

#include <stddef.h>

#include "common/ds4_err.h"

typedef struct ds4s_script ds4s_script;

ds4s_script *ds4s_script_load(const char *path, ds4_err *err);
void ds4s_script_free(ds4s_script *s);
/* Continuation text for a rendered prompt, or NULL. */
const char *ds4s_script_pick(const ds4s_script *s, const char *prompt, size_t prompt_len, size_t *len);

#endif
