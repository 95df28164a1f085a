/*
 * socketmap_proto - sendmail's socketmap protocol (also Postfix's
 * socketmap_table(5)), without the socket: the lookup service builds a
 * request with socketmap_proto_request, writes it, reads into a buffer and
 * hands the buffer to socketmap_proto_reply_parse until it stops asking
 * for more.
 *
 * Wire format: one request and one reply per lookup, each one netstring
 * (lib/netstring.h).  The request is "MAPNAME KEY".  The reply is one of
 *     "OK value"          found; value is the table's answer
 *     "NOTFOUND "         not found (the space may be missing)
 *     "TEMP reason"       temporary failure in the map server
 *     "TIMEOUT reason"    the map server timed out
 *     "PERM reason"       permanent failure (misconfiguration)
 * the reason being optional (the space before it too).  A reply payload is
 * at most SOCKETMAP_PROTO_MAX_REPLY bytes (Postfix's limit).
 *
 * Strict: anything else (an unknown or lower-case status, "OK" without a
 * value, a NUL or a control character other than TAB in the text, a
 * malformed or overlong netstring) is SOCKETMAP_PROTOCOL, with a reason;
 * the caller treats it like TEMP (a temporary failure, never "not found")
 * and drops the connection.  The control-character rule is ours: a value
 * may end up in an SMTP reply, where CR LF would split it.
 *
 * Pure functions: no allocation except into the caller's buf_t, no I/O;
 * parsed text points into the caller's bytes.
 */
#ifndef TERN_SOCKETMAP_PROTO_H
#define TERN_SOCKETMAP_PROTO_H

#include <stddef.h>

#include "buf.h"

#define SOCKETMAP_PROTO_MAX_REPLY 100000

enum socketmap_status {
    SOCKETMAP_MORE = 0, /* only part of the reply has arrived */
    SOCKETMAP_OK,
    SOCKETMAP_NOTFOUND,
    SOCKETMAP_TEMP,
    SOCKETMAP_TIMEOUT,
    SOCKETMAP_PERM,
    SOCKETMAP_PROTOCOL /* malformed reply: treat as a temporary failure */
};

struct socketmap_reply {
    enum socketmap_status status;
    const char *text; /* value (OK) or reason; into the input, not NUL-terminated */
    size_t len;       /* bytes of text */
    size_t used;      /* bytes of input the reply took (its whole netstring) */
    const char *why;  /* SOCKETMAP_PROTOCOL: what was wrong (static) */
};

/* socketmap_proto_request - append the netstring "MAPNAME KEY" to out;
 * -1 (out unchanged) when the map name is empty or holds a space or a
 * control character, or the key is empty */
int socketmap_proto_request(buf_t *out, const char *map, const char *key);
/* socketmap_proto_reply_parse - the reply at the front of data[0..len);
 * returns r->status (SOCKETMAP_MORE: call again with more bytes) */
enum socketmap_status socketmap_proto_reply_parse(const char *data, size_t len,
                                                  struct socketmap_reply *r);
/* socketmap_proto_status_name - "OK", "NOTFOUND", ... for logs */
const char *socketmap_proto_status_name(enum socketmap_status status);

#endif
