/*
 * proto - the SMTP command language of tern-smtpd, without any I/O.
 *
 * One command line (CR/LF already removed) is split into a verb and its
 * argument; MAIL FROM: and RCPT TO: arguments are parsed with their ESMTP
 * parameters (SIZE, BODY, RET, ENVID, AUTH, REQUIRETLS, SMTPUTF8; NOTIFY, ORCPT); the AUTH
 * command's argument and the client's base64 responses of an AUTH exchange
 * (RFC 4954) are decoded here too.  On a syntax or
 * parameter error the parsers write the complete SMTP reply line (without
 * CRLF) into the caller's buffer, so every reply text of the parser lives
 * here and is unit-tested.  Nothing here allocates except through buf_t;
 * every length from the client is bounded.
 */
#ifndef TERN_SMTPD_PROTO_H
#define TERN_SMTPD_PROTO_H

#include <stddef.h>
#include "buf.h"

/* RFC 3461 limits on what the client sends (as xtext) */
#define PROTO_ENVID_MAX 100
#define PROTO_ORCPT_MAX 500
/* longest text of the client that an error reply quotes */
#define PROTO_ECHO_MAX 100

enum proto_cmd {
    PROTO_CMD_UNKNOWN,
    PROTO_CMD_HELO,
    PROTO_CMD_EHLO,
    PROTO_CMD_MAIL,
    PROTO_CMD_RCPT,
    PROTO_CMD_DATA,
    PROTO_CMD_RSET,
    PROTO_CMD_NOOP,
    PROTO_CMD_QUIT,
    PROTO_CMD_HELP,
    PROTO_CMD_VRFY,
    PROTO_CMD_EXPN,
    PROTO_CMD_VERB,
    PROTO_CMD_ETRN,
    PROTO_CMD_STARTTLS,
    PROTO_CMD_AUTH,
    PROTO_CMD_BDAT,
    PROTO_CMD_XCLIENT,
    PROTO_CMD_XFORWARD,
    PROTO_CMD_ONEX,
    PROTO_CMD_XUSR,
    PROTO_CMD_COUNT
};

/* what MAIL FROM: carried */
struct proto_mail {
    buf_t echo;       /* the path exactly as the client wrote it (printable) */
    buf_t addr;       /* the address without brackets; "" for <> */
    long long size;   /* SIZE=, -1 when not given */
    const char *body; /* "7BIT", "8BITMIME", "BINARYMIME" or "" */
    const char *ret;  /* "FULL", "HDRS" or "" */
    buf_t envid;      /* ENVID= decoded from xtext; "" when not given */
    buf_t auth;       /* AUTH= decoded from xtext, "<>" as such; "" when not given */
    int requiretls;   /* REQUIRETLS (RFC 8689) was given; whether it may be is the session's
                         business (TLS, smtpd_requiretls: commands.c) */
    int smtputf8;     /* SMTPUTF8 (RFC 6531) was given: UTF-8 addresses may follow */
};

/* what RCPT TO: carried */
struct proto_rcpt {
    buf_t echo;   /* the path exactly as the client wrote it (printable) */
    buf_t addr;   /* the address without brackets */
    buf_t notify; /* "", "NEVER" or e.g. "SUCCESS,FAILURE" (upper case) */
    buf_t orcpt;  /* "", or "addr-type;decoded address" e.g. "rfc822;a@b" */
};

/* proto_cmd_parse - the verb of line (case-insensitive) and, in *arg, the
 * argument after the verb with leading white space skipped (may be "") */
enum proto_cmd proto_cmd_parse(const char *line, const char **arg);
/* proto_reply_valid - 1 when text is a whole SMTP reply smtpd may send
 * as it is (a milter's, through cleanup): lines separated by "\r\n", all
 * with the same code of class cls ('4', '5'), '-' after the code on every
 * line but the last and ' ' or nothing on the last, no other control
 * character; 0 otherwise (a client would take a stray line for the answer
 * to its next command) */
int proto_reply_valid(const char *text, char cls);
/* proto_path_args - the ESMTP parameters after MAIL FROM:'s or RCPT TO:'s
 * path as given (keyword "FROM:" or "TO:"); NULL on bad syntax */
const char *proto_path_args(const char *arg, const char *keyword);
/* proto_cmd_name - lower-case name for logs ("ehlo", "unknown") */
const char *proto_cmd_name(enum proto_cmd cmd);
/* proto_cmd_upper - upper-case name for "timeout after DATA" style logs */
const char *proto_cmd_upper(enum proto_cmd cmd);

void proto_mail_init(struct proto_mail *m);
void proto_mail_free(struct proto_mail *m);
void proto_rcpt_init(struct proto_rcpt *r);
void proto_rcpt_free(struct proto_rcpt *r);

/* proto_mail_parse - parse the argument of MAIL ("FROM:<a@b> SIZE=10").
 * size_limit 0 means none.  0 ok; -1 with the reply line in reply. */
int proto_mail_parse(const char *arg, long long size_limit, struct proto_mail *m, buf_t *reply);
/* proto_rcpt_parse - parse the argument of RCPT ("TO:<a@b> NOTIFY=NEVER").
 * 0 ok; -1 with the reply line in reply.  The null path is an error here. */
int proto_rcpt_parse(const char *arg, struct proto_rcpt *r, buf_t *reply);

/* proto_address_check - may addr (MAIL's when sender, else RCPT's) be
 * used in a transaction that did (smtputf8) or did not give SMTPUTF8?  0
 * yes: printable ASCII, or valid UTF-8 (lib/smtputf8.h) with an IDNA2008
 * domain under SMTPUTF8; -1 with the reply line in reply: 553 5.6.7 for
 * UTF-8 without SMTPUTF8 (Postfix's text), 553 5.1.7 / 5.1.3 for malformed
 * UTF-8 or a domain that has no A-label form */
int proto_address_check(const char *addr, int sender, int smtputf8, buf_t *reply);

/* longest SASL mechanism name (RFC 4422: 1 to 20 of A-Z 0-9 - _) */
#define PROTO_AUTH_MECH_MAX 20

/* proto_auth_parse - the argument of AUTH ("PLAIN dGVzdA=="): the mechanism,
 * upper-cased, into mech; *response points at the initial response as
 * sent (base64, or "=" for an empty one) or is NULL when there is none.
 * 0 ok; -1 with the reply line (a missing or malformed mechanism name, more
 * than two words).  The mechanism is not checked against any list here. */
int proto_auth_parse(const char *arg, buf_t *mech, const char **response, buf_t *reply);
/* proto_auth_response - one client response of an exchange: the initial
 * response of AUTH, or a line after 334 (CR LF removed).  "=" (initial
 * response only, initial set) is the empty response.  Returns 0 with the
 * decoded bytes in out, 1 for "*" after 334 (the client cancels), -1 with
 * the reply line when it is not strict base64.  out gets room for the
 * decoded size before decoding (no realloc leaves a copy behind); a failed
 * decoding is wiped. */
int proto_auth_response(const char *line, size_t len, int initial, buf_t *out, buf_t *reply);
/* proto_base64_decode - strict RFC 4648 base64 (no white space, padding
 * only at the end, unused bits zero) appended to out; -1 when malformed */
int proto_base64_decode(const char *in, size_t len, buf_t *out);
/* proto_base64_encode - append the base64 form of len bytes to out */
void proto_base64_encode(const void *in, size_t len, buf_t *out);

/* proto_unbracket - append the VRFY/EXPN argument arg without one pair of
 * enclosing angle brackets */
void proto_unbracket(const char *arg, buf_t *out);
/* proto_printable - append len bytes of s with every byte that is not
 * printable ASCII replaced by '?', at most max bytes */
void proto_printable(const char *s, size_t len, size_t max, buf_t *out);
/* proto_banner_format - expand $j (hostname), $v (version) and $b (date) in
 * template, then insert "ESMTP" as the second word when it is missing */
void proto_banner_format(const char *template, const char *hostname, const char *version,
                         const char *date, buf_t *out);

/*
 * The DATA content decoder turns the bytes a client sends after 354 into
 * message content: every line end (CRLF, bare LF, bare CR) is stored as
 * CRLF, leading dots are removed (RFC 5321 4.5.2), and the end of data is
 * recognised.  Only <CRLF>.<CRLF> ends the data: a "." line ends it only when
 * it is terminated by CRLF and the line before it was terminated by a real
 * CRLF too (the first line counts as preceded by CRLF).  Any other "." line
 * is content "." - so the bare-LF and bare-CR variants used for SMTP
 * smuggling cannot end a message here.  docs/smtpd.md documents the policy.
 */
struct proto_data_decoder {
    int state;     /* private: where in a line we are */
    int prev_crlf; /* the previous line ended with a real CRLF */
    int bare_seen; /* a bare LF or bare CR was seen */
};

/* proto_data_init - start of message content */
void proto_data_init(struct proto_data_decoder *d);
/* proto_data_decode - decode in[0..len) and append content to out.  Returns the
 * number of bytes consumed; sets *done to 1 when the end of data was found
 * (the bytes after the final CRLF are not consumed). */
size_t proto_data_decode(struct proto_data_decoder *d, const char *in, size_t len, buf_t *out,
                         int *done);

/* longest identd user kept */
#define PROTO_IDENT_USER_MAX 64
/* proto_ident_parse - an RFC 1413 reply line ("6193, 23 : USERID : UNIX :
 * stjohns"): the user into user, printable, without blanks, '@', '(', ')'
 * or '[' (each becomes '_'), at most PROTO_IDENT_USER_MAX bytes; -1 for an
 * ERROR reply or garbage */
int proto_ident_parse(const char *line, buf_t *user);

#endif
