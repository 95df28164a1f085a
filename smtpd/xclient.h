/*
 * xclient - Postfix's XCLIENT and XFORWARD commands for trusted proxies and
 * content filters (docs/smtpd.md "XCLIENT and XFORWARD").
 *
 *   XCLIENT NAME= ADDR= PORT= PROTO= HELO= LOGIN= DESTADDR= DESTPORT=
 *       from smtpd_authorized_xclient_hosts: the session takes the given
 *       client as its own (policy, logs, Received) and starts again at the
 *       220 greeting.
 *   XFORWARD NAME= ADDR= PORT= PROTO= HELO= IDENT= SOURCE=
 *       from smtpd_authorized_xforward_hosts: the next message is logged and
 *       its Received header written with the given client; policy still
 *       sees the real one.  Forgotten at the end of the transaction.
 *
 * Values are xtext (RFC 3461; a value that is not xtext is taken as it is,
 * as Postfix does for old clients), at most 255 bytes before decoding;
 * "[UNAVAILABLE]" (and for NAME "[TEMPUNAVAIL]") say the value is unknown.
 *
 * smtpd_xclient_parse is pure (bytes in, attributes or a reply line out, no
 * I/O; fuzz/fuzz_smtpd_xclient.c calls it); the rest applies the result to
 * a session.
 */
#ifndef TERN_SMTPD_XCLIENT_H
#define TERN_SMTPD_XCLIENT_H

#include <sys/socket.h>

#include "buf.h"

struct session;

/* the longest attribute value before xtext decoding (Postfix's limit) */
#define SMTPD_XCLIENT_VALUE_MAX 255

enum smtpd_xattr {
    SMTPD_XATTR_NAME,
    SMTPD_XATTR_ADDR,
    SMTPD_XATTR_PORT,
    SMTPD_XATTR_PROTO,
    SMTPD_XATTR_HELO,
    SMTPD_XATTR_LOGIN,    /* XCLIENT only */
    SMTPD_XATTR_DESTADDR, /* XCLIENT only */
    SMTPD_XATTR_DESTPORT, /* XCLIENT only */
    SMTPD_XATTR_IDENT,    /* XFORWARD only */
    SMTPD_XATTR_SOURCE,   /* XFORWARD only: LOCAL or REMOTE */
    SMTPD_XATTR_COUNT
};

/* the attributes of one XCLIENT or XFORWARD command */
struct smtpd_xclient_args {
    unsigned given;                   /* 1 << attribute for each one given */
    unsigned unavailable;             /* 1 << attribute: [UNAVAILABLE] or [TEMPUNAVAIL] */
    int name_tempfail;                /* NAME=[TEMPUNAVAIL] */
    buf_t value[SMTPD_XATTR_COUNT];   /* decoded, printable; "" when unavailable */
    struct sockaddr_storage addr;     /* ADDR, port 0 */
    struct sockaddr_storage destaddr; /* DESTADDR, port 0 */
};

void smtpd_xclient_args_init(struct smtpd_xclient_args *a);
void smtpd_xclient_args_free(struct smtpd_xclient_args *a);
/* smtpd_xclient_parse - the argument of XCLIENT (xforward 0) or XFORWARD
 * (xforward 1) into a (added to what it holds; a later value of the same
 * attribute wins).  0 ok; -1 with the reply line ("501 5.5.4 ...") */
int smtpd_xclient_parse(const char *arg, int xforward, struct smtpd_xclient_args *a, buf_t *reply);
/* smtpd_xclient_has - 1 when attribute x was given with a known value */
int smtpd_xclient_has(const struct smtpd_xclient_args *a, enum smtpd_xattr x);

/* smtpd_xclient_ehlo - the XCLIENT and XFORWARD lines of the EHLO reply
 * ("250-XCLIENT ...") for a client allowed to use them */
void smtpd_xclient_ehlo(struct session *s);
/* smtpd_xclient_command - XCLIENT arg */
void smtpd_xclient_command(struct session *s, const char *arg);
/* smtpd_xforward_command - XFORWARD arg */
void smtpd_xforward_command(struct session *s, const char *arg);
/* smtpd_xforward_submit - the client attributes of cleanup.submit (the
 * XFORWARD ones where given, else the session's) appended to out */
void smtpd_xforward_submit(const struct session *s, buf_t *out);
/* smtpd_xforward_reset - the transaction ended: forget XFORWARD */
void smtpd_xforward_reset(struct session *s);

#endif
