/*
 * attr - the one IPC format between tern processes (DESIGN §4).
 *
 * A message is a 4-byte big-endian payload length, then the payload: a
 * sequence of attributes, each a 2-byte big-endian name length, the name, a
 * 4-byte big-endian value length, the value (arbitrary bytes).  The first
 * attribute of every message must be "proto" naming the protocol and request
 * ("cleanup.submit", "smtp.deliver", ...).  Names may repeat (e.g. one "rcpt"
 * per recipient); order is kept.
 *
 * Readers trust nothing: payload length over ATTR_MAX_MESSAGE, a name over
 * ATTR_MAX_NAME or empty, a value running past the payload, more than
 * ATTR_MAX_COUNT attributes, a first attribute that is not "proto": all make
 * attr_decode return -1 and the caller drops the peer.
 */
#ifndef TERN_ATTR_H
#define TERN_ATTR_H

#include <stddef.h>
#include "buf.h"

#define ATTR_MAX_MESSAGE (4u * 1024 * 1024)
#define ATTR_MAX_NAME 64
#define ATTR_MAX_COUNT 100000

struct attr {
    const char *name;  /* NUL-terminated copy */
    const char *value; /* NUL-terminated copy (value may also hold NULs: use len) */
    size_t len;
};

struct attr_msg {
    struct attr *v;
    size_t count;
    size_t cap;
    buf_t store; /* owns the copies */
};

/* attr_begin - start a message in out (appends; out may hold earlier messages) */
void attr_begin(buf_t *out, const char *proto);
/* attr_add - add one attribute to the message begun last */
void attr_add(buf_t *out, const char *name, const void *value, size_t len);
void attr_add_str(buf_t *out, const char *name, const char *value);
void attr_add_int(buf_t *out, const char *name, long long value);
/* attr_end - finish the message begun last (fills in its length) */
void attr_end(buf_t *out);

void attr_msg_init(struct attr_msg *m);
void attr_msg_free(struct attr_msg *m);
/* attr_msg_wipe - zero the whole store (its capacity) and forget the
 * attributes, keeping the memory: after a message that held a secret */
void attr_msg_wipe(struct attr_msg *m);

/* attr_decode - parse one message from data[0..len).  Returns 1 and sets
 * *used when a whole message was parsed into m (m is reset first); 0 when
 * more bytes are needed; -1 when the bytes are malformed. */
int attr_decode(const char *data, size_t len, size_t *used, struct attr_msg *m);

/* attr_proto - the value of the leading "proto" attribute */
const char *attr_proto(const struct attr_msg *m);
/* attr_get - the first value of name, or NULL; *len if non-NULL */
const char *attr_get(const struct attr_msg *m, const char *name, size_t *len);
/* attr_get_int - parse the first value of name as a decimal integer in
 * [min, max]; 0 ok, -1 missing or bad */
int attr_get_int(const struct attr_msg *m, const char *name, long long min, long long max,
                 long long *out);

/* blocking helpers for simple clients (tools, tests): 0 ok, -1 error */
int attr_write_fd(int fd, const buf_t *msg);
/* attr_read_fd - read one message; timeout in seconds (0 = none).  Its
 * read buffer grows without leaving copies behind and is wiped before it
 * is freed (tern-auth reads passwords with it). */
int attr_read_fd(int fd, struct attr_msg *m, int timeout);

#endif
