/*
 * netstring - D. J. Bernstein's netstrings, the framing of sendmail's
 * socketmap protocol (lib/socketmap_proto.h) and of any other peer that
 * speaks them.
 *
 * Wire format: the length of the payload in ASCII decimal, ':', the payload
 * (any bytes, NULs included), ','.  "5:hello," is "hello"; "0:," is "".
 *
 * The decoder is pure and incremental over the caller's buffer: hand it
 * everything received so far; it answers NETSTRING_MORE (a valid prefix:
 * read more and call again with the longer buffer), NETSTRING_DONE (one
 * whole netstring at the front; the payload points into the caller's
 * bytes, *used says how many bytes to consume) or NETSTRING_ERROR with a
 * static reason (the peer is broken or hostile: drop it).  It trusts
 * nothing: a length over the caller's maximum is refused as soon as its
 * digits show it, before the payload is read; leading zeros are accepted
 * (Postfix and sendmail accept them too).  No allocation, no I/O.
 */
#ifndef TERN_NETSTRING_H
#define TERN_NETSTRING_H

#include <stddef.h>

#include "buf.h"

enum netstring_status { NETSTRING_ERROR = -1, NETSTRING_MORE = 0, NETSTRING_DONE = 1 };

struct netstring {
    const char *payload; /* into the decoded bytes; not NUL-terminated */
    size_t len;          /* payload bytes */
    size_t used;         /* bytes of the whole netstring, digits to ',' */
};

/* netstring_encode - append len bytes of data as one netstring to out */
void netstring_encode(buf_t *out, const void *data, size_t len);
/* netstring_decode - the netstring at the front of data[0..len) whose
 * payload is at most max bytes; on NETSTRING_DONE fills ns, on
 * NETSTRING_ERROR sets *reason (a static string) */
enum netstring_status netstring_decode(const char *data, size_t len, size_t max,
                                       struct netstring *ns, const char **reason);

#endif
