/* text.h - the text layer in one include: tokenizer, chat model and renderer,
 * DSML render/parse, streaming output parser. */
#ifndef DS4_TEXT_H
#define DS4_TEXT_H
#include "text/sbuf.h"
#include "text/tokenizer.h"
#include "text/chat.h"
#include "text/dsml.h"
#include "text/stream_parse.h"
#endif
