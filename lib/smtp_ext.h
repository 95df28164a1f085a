/*
 * smtp_ext - the arguments of the SMTP extension commands of issue 15,
 * without any I/O: BDAT (RFC 3030 CHUNKING), ETRN (RFC 1985) and HELP with
 * sendmail's help file.
 *
 * Callers: tern-smtpd's session, with the argument that proto_cmd_parse
 * (smtpd/proto.h) leaves after the verb (leading white space skipped).  As
 * in smtpd/proto.c, a parser that refuses its input writes the complete
 * SMTP reply line (code, enhanced status, text; no CRLF) into the caller's
 * reply buffer, so every reply text lives here and is unit-tested.  The
 * session decides what happens next.
 *
 * Trust: none.  Every length from the client is bounded, text from the
 * client is echoed only through proto-style '?' replacement, and nothing is
 * allocated except through buf_t and the help file's own store
 * (smtp_ext_helpfile_free).  No global state: safe from any thread.
 */
#ifndef TERN_SMTP_EXT_H
#define TERN_SMTP_EXT_H

#include <stddef.h>

#include "buf.h"

/* the outcome of a parser where the caller must choose */
enum smtp_ext_status {
    SMTP_EXT_OK = 0,
    SMTP_EXT_SYNTAX = -1,  /* 501: reply holds the line */
    SMTP_EXT_TOO_BIG = -2, /* BDAT only: 552, the size is known (see below) */
};

/*
 * BDAT <size> [LAST] (RFC 3030): size is 1*DIGIT (leading zeros allowed),
 * then nothing, or exactly one space and LAST in any case.  Anything else is
 * "501 5.5.4 Syntax: BDAT <size> [LAST]"; the session then cannot know where
 * the chunk ends and should close the connection after the reply.  A size
 * over max is SMTP_EXT_TOO_BIG with "552 5.3.4 Message size exceeds fixed
 * maximum message size" and *size set: the session must still read and drop
 * size bytes.  Sizes that need more than SMTP_EXT_BDAT_DIGITS significant
 * digits are syntax errors (no one can send that many bytes).
 */
#define SMTP_EXT_BDAT_DIGITS 18

struct smtp_ext_bdat {
    long long size; /* bytes of the chunk that follow the command line */
    int last;       /* LAST was given */
};

/* smtp_ext_bdat_parse - the argument of BDAT; max >= 0 is the largest size
 * accepted.  SMTP_EXT_OK, or an error status with the reply line in reply */
enum smtp_ext_status smtp_ext_bdat_parse(const char *arg, long long max, struct smtp_ext_bdat *bdat,
                                         buf_t *reply);

/*
 * ETRN <domain> | @<domain> | #<queue> (RFC 1985).  A domain is LDH labels
 * (RFC 5321 Domain: letters, digits, '-' not at either end of a label, at
 * most 63 bytes a label and SMTP_EXT_DOMAIN_MAX in all, no empty label, no
 * trailing dot), returned in lower case.  "@domain" asks for the domain and
 * its subdomains.  A queue name is 1..SMTP_EXT_QUEUE_MAX printable ASCII
 * bytes without space; tern has no named queues, the session answers it
 * with 458/459 as the RFC says.  Anything else is "501 5.5.4 Syntax: ETRN
 * <domain> | @<domain> | #<queue>" (RFC 1985's 501 "Syntax Error in
 * Parameters").
 */
#define SMTP_EXT_DOMAIN_MAX 253
#define SMTP_EXT_QUEUE_MAX 64

enum smtp_ext_etrn_form {
    SMTP_EXT_ETRN_DOMAIN,     /* ETRN example.org */
    SMTP_EXT_ETRN_SUBDOMAINS, /* ETRN @example.org: the domain and below */
    SMTP_EXT_ETRN_QUEUE,      /* ETRN #queue */
};

/* smtp_ext_etrn_parse - the argument of ETRN: its form and, in name, the
 * domain (lower case, without '@') or the queue (without '#').  0 ok; -1
 * with the reply line in reply */
int smtp_ext_etrn_parse(const char *arg, enum smtp_ext_etrn_form *form, buf_t *name, buf_t *reply);
/* smtp_ext_domain_valid - 1 when name[0..len) is a domain as above */
int smtp_ext_domain_valid(const char *name, size_t len);

/*
 * HELP [topic] with sendmail's help file: one line per line of help,
 * "topic<TAB>text" (a space also ends the topic, as in sendmail; a line with
 * no separator is an empty line of its topic); lines starting with '#' are
 * comments ("#vers 2" included).  Topics are compared without case and
 * whole (sendmail compared prefixes: "HELP he" showed help and helo); the
 * lines of a topic are kept in file order wherever they appear.  "HELP"
 * alone shows topic "smtp"; "HELP cpyr" shows the copyright lines, as
 * sendmail's file has them.  In the text "$v" becomes the version given to
 * smtp_ext_help_reply and "$$" a '$'.  Control characters of the file other
 * than TAB become '?' and a line is cut at SMTP_EXT_HELP_TEXT_MAX bytes, so
 * a reply line always fits RFC 5321's 512.
 */
#define SMTP_EXT_HELP_TOPIC_MAX 32
#define SMTP_EXT_HELP_TEXT_MAX 400

struct smtp_ext_help_line {
    char *topic; /* lower case */
    char *text;
};

struct smtp_ext_helpfile {
    struct smtp_ext_help_line *lines;
    size_t count;
    size_t cap;
};

void smtp_ext_helpfile_init(struct smtp_ext_helpfile *hf);
void smtp_ext_helpfile_free(struct smtp_ext_helpfile *hf);
/* smtp_ext_helpfile_parse - read the help file's bytes data[0..len) into hf
 * (replacing what it held); never fails, odd lines are kept as text */
void smtp_ext_helpfile_parse(const char *data, size_t len, struct smtp_ext_helpfile *hf);
/* smtp_ext_help_topic - the topic asked for by the argument of HELP,
 * lower case, into topic: "smtp" for none */
void smtp_ext_help_topic(const char *arg, buf_t *topic);
/* smtp_ext_help_reply - the whole reply to HELP arg into reply (replaced):
 * the topic's lines as "214-2.0.0 <text>" joined by CRLF, then "214 2.0.0
 * End of HELP info"; "504 5.3.0 HELP topic \"<topic>\" unknown" when the
 * topic has no line; with hf NULL (no help file) "502 5.3.0 HELP not
 * implemented".  No CRLF after the last line */
void smtp_ext_help_reply(const struct smtp_ext_helpfile *hf, const char *arg, const char *version,
                         buf_t *reply);

#endif
