/*
 * proxymap_proto - the wire format between proxy tables (lib/table_proxy.c)
 * and the lookup service tern-proxymap (docs/internals.md, "proxymap
 * protocol").  Messages are lib/attr lists:
 *
 *     proto=proxymap.lookup id=N table=TYPE:NAME flags=F key=K
 *     proto=proxymap.reply  id=N status=found|notfound|tempfail [value=V]
 *
 * N is the client's request number (replies may come back out of order and
 * are matched by it), F the TABLE_* flags the client opened the table with.
 * The key is sent as given: tern-proxymap folds it as F says.
 *
 * The parsers are pure (a decoded message in, a checked struct out) and
 * trust nothing: a missing or out-of-range attribute is -1 and the caller
 * drops the peer.  The parsed strings point into the message.
 */
#ifndef TERN_PROXYMAP_PROTO_H
#define TERN_PROXYMAP_PROTO_H

#include "attr.h"
#include "buf.h"
#include "table.h"

#define PROXYMAP_SPEC_MAX 4096       /* bytes in a "TYPE:NAME" */
#define PROXYMAP_VALUE_MAX (1 << 20) /* bytes in a value (TABLE_ENTRY_MAX) */
#define PROXYMAP_FLAGS_ALL (TABLE_ALIASES | TABLE_CASE_SENSITIVE | TABLE_OPTIONAL)

struct proxymap_request {
    unsigned long long id;
    const char *table;
    int flags;
    const char *key;
};

struct proxymap_reply {
    unsigned long long id;
    enum table_result status;
    const char *value; /* NULL unless TABLE_FOUND */
    size_t value_len;
    int refused; /* a found value that failed proxymap_value_check: TABLE_TEMPFAIL */
};

/* proxymap_request_encode - append one lookup request to out */
void proxymap_request_encode(buf_t *out, const struct proxymap_request *r);
/* proxymap_request_parse - 0 and r filled, -1 malformed (bad proto, id,
 * table, flags or key: every string NUL-free and within its bound) */
int proxymap_request_parse(const struct attr_msg *m, struct proxymap_request *r);
/* proxymap_reply_encode - append one reply to out (value only when found) */
void proxymap_reply_encode(buf_t *out, const struct proxymap_reply *r);
/* proxymap_reply_parse - 0 and r filled, -1 malformed.  A well-formed reply
 * whose value fails proxymap_value_check is 0 with status TABLE_TEMPFAIL and
 * refused set: it fails its own request, not the connection. */
int proxymap_reply_parse(const struct attr_msg *m, struct proxymap_reply *r);
/* proxymap_value_check - 0 when a table's value may be handed on: at most
 * PROXYMAP_VALUE_MAX bytes and no control byte but TAB (no NUL, CR, LF,
 * DEL): a remote value must never become more lines of an SMTP reply or a
 * header.  -1 otherwise: the lookup is a temporary failure. */
int proxymap_value_check(const char *value, size_t len);
/* proxymap_status_name - "found", "notfound", "tempfail" */
const char *proxymap_status_name(enum table_result status);

#endif
