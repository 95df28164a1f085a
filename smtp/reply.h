/*
 * reply - parsing what an SMTP server says: (multi-line) replies, enhanced
 * status codes, and the EHLO extension list.  Pure functions on bytes; the
 * session feeds it one line at a time.  Bounded: a line over
 * SMTP_REPLY_MAX_LINE or a reply over SMTP_REPLY_MAX_LINES lines is malformed.
 */
#ifndef TERN_SMTP_REPLY_H
#define TERN_SMTP_REPLY_H

#include <stddef.h>
#include "buf.h"

#define SMTP_REPLY_MAX_LINE 4096
#define SMTP_REPLY_MAX_LINES 100
#define SMTP_REPLY_MAX_TEXT 2048 /* of the one-line text kept for reasons */
#define SMTP_EHLO_AUTH_MAX 256   /* bytes kept of the AUTH mechanism list */

struct smtp_reply {
    int code;         /* set when the reply is complete */
    size_t lines;     /* lines so far */
    buf_t text;       /* one line: "550 5.1.1 user unknown", continuation texts appended
                         after a space, non-printables as '?', bounded */
    buf_t ext;        /* the text of each line (after "250-") plus '\n' (for EHLO) */
    int pending_code; /* code of the lines so far */
};

struct smtp_ehlo {
    int pipelining;
    int size;
    long long size_limit; /* 0 = none announced */
    int eightbitmime;
    int chunking;   /* RFC 3030: BDAT */
    int binarymime; /* RFC 3030: BODY=BINARYMIME (with CHUNKING) */
    int dsn;
    int starttls;
    int requiretls;
    int smtputf8;
    char auth[SMTP_EHLO_AUTH_MAX]; /* the AUTH mechanisms, space separated, upper case; "" none */
};

void smtp_reply_init(struct smtp_reply *r);
void smtp_reply_free(struct smtp_reply *r);
/* smtp_reply_reset - get ready for the next reply */
void smtp_reply_reset(struct smtp_reply *r);
/* smtp_reply_feed - add one line (without its CRLF); 1 reply complete,
 * 0 more lines follow, -1 malformed (wrong syntax, code change, too long) */
int smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len);
/* smtp_reply_last_text - the text of the reply's last line, as the server
 * sent it (after "334 "), into out */
void smtp_reply_last_text(const struct smtp_reply *r, buf_t *out);
/* smtp_reply_dsn - the enhanced status code of a complete reply, or one
 * derived from its class (2.0.0, 4.0.0, 5.0.0) */
void smtp_reply_dsn(const struct smtp_reply *r, char *out, size_t outlen);
/* smtp_ehlo_parse - the extensions tern cares about, from a complete EHLO reply */
void smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *e);
/* smtp_ehlo_has_auth - 1 when the server offered the mechanism (upper case) */
int smtp_ehlo_has_auth(const struct smtp_ehlo *e, const char *mech);

#endif
