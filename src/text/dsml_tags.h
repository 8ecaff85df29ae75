/* dsml_tags.h - the three DSML tag spellings (spec/text.md §3.5) and small
 * helpers shared by the one-shot parser and the streaming parser. Internal. */
#ifndef DS4_TEXT_DSML_TAGS_H
#define DS4_TEXT_DSML_TAGS_H

#include <stddef.h>

#include "text/sbuf.h"

typedef struct ds4_dsml_tags {
    const char *open, *close;          /* <..tool_calls>  </..tool_calls> */
    const char *invoke, *invoke_close; /* <..invoke       </..invoke> */
    const char *param, *param_close;   /* <..parameter    </..parameter> */
} ds4_dsml_tags;

/* 0: <｜DSML｜...>, 1: <DSML｜...> (first bar missing), 2: plain XML */
#define DS4_DSML_NFAMILY 3
extern const ds4_dsml_tags ds4_dsml_families[DS4_DSML_NFAMILY];

/* Block start in s[0..n): tries "\n\n"+open then open, family by family.
 * Returns the family or -1; *start includes the "\n\n" when that form matched,
 * *open_end is one past the opening tag. */
int ds4_dsml_find_start(const char *s, size_t n, size_t *start, size_t *open_end);
/* &amp; &lt; &gt; &quot; &apos; decoded; any other '&' kept. */
void ds4_dsml_entity_decode(ds4_sbuf *out, const char *s, size_t n);
/* Decoded value of attr="..." inside tag text t[0..n); -1 if absent. */
int ds4_dsml_attr(const char *t, size_t n, const char *attr, ds4_sbuf *out);

#endif
