/* textexec.h - runs tokenizer calls on one long-lived thread.
 *
 * The BPE encoder keeps a per-thread piece cache (several MiB) that lives
 * until process exit. The HTTP layer runs a thread per connection, so
 * encoding on connection threads would leave one such cache behind per
 * request (measured: ~1.6 MB RSS per request). Every encode the connection
 * threads need goes through this executor instead: one thread, one cache.
 * Calls are synchronous and serialized; tokenizing is cheap next to
 * generation, and the worker thread (also long-lived) encodes directly. */
#ifndef DS4_SERVER_TEXTEXEC_H
#define DS4_SERVER_TEXTEXEC_H

#include "text/tokenizer.h"

int ds4s_textexec_start(void);
void ds4s_textexec_stop(void);
/* ds4_encode_rendered / ds4_encode_text run on the executor thread (or
 * directly when the executor is not running, e.g. in unit tests). */
int ds4s_encode_rendered(const ds4_vocab *v, const char *s, size_t n, ds4_tokens *out, ds4_err *err);
int ds4s_encode_text(const ds4_vocab *v, const char *s, size_t n, ds4_tokens *out, ds4_err *err);

#endif
