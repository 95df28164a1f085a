/*
 * json - the one JSON string writer, for the lines and listings tern prints
 * as JSON (queue listings, json log lines).
 *
 * json_put_string escapes quotes, backslashes and control characters
 * (\u00XX), copies valid UTF-8 and writes each byte of invalid UTF-8 as
 * U+FFFD, so the output always parses.  No allocation besides out's.
 */
#ifndef TERN_JSON_H
#define TERN_JSON_H

#include <stddef.h>
#include "buf.h"

/* json_utf8_len - length of the valid UTF-8 sequence at s (1..4), or 0 */
size_t json_utf8_len(const unsigned char *s);
/* json_put_string - append s (NUL-terminated; NULL as "") as a JSON string */
void json_put_string(buf_t *out, const char *s);

#endif
