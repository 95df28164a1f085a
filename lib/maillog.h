/*
 * maillog - the per-message event lines that admins grep (SPEC §27 LOG).
 *
 * The producers (cleanup and pickup: a message received; smtp, local and
 * qmgr: a delivery attempt; qmgr: a notice queued; smtpd: a refusal) fill
 * in an event with what they know and call maillog_*; this module writes
 * the one line in the format maillog_format chooses:
 *
 *   postfix   "QID: from=<a>, size=N, nrcpt=N (queue active)" and
 *             "QID: to=<b>, relay=host[addr]:25, delay=0.4, dsn=2.0.0,
 *             status=sent (250 ok)", as tern has always written them
 *   sendmail  sendmail 8's "QID: from=<a>, size=N, class=0, nrcpts=N,
 *             msgid=<..>, proto=ESMTP, daemon=MTA, relay=host [addr]" and
 *             "QID: to=<b>, delay=HH:MM:SS, xdelay=HH:MM:SS, mailer=esmtp,
 *             pri=N, relay=host. [addr], dsn=2.0.0, stat=Sent (250 ok)"
 *   json      {"queue_id":"QID","event":"to",...}: one object, the same
 *             fields, strings escaped by json_put_string
 *
 * Every format writes one line per event and the queue ID first.  The
 * maillog_format_* functions are pure (event in, text out) for the tests;
 * maillog_log_* format and hand the line to log_info.  Strings in an event
 * are borrowed; NULL means "not known" and leaves the field out.
 */
#ifndef TERN_MAILLOG_H
#define TERN_MAILLOG_H

#include <stddef.h>
#include "buf.h"

enum maillog_format { MAILLOG_POSTFIX, MAILLOG_SENDMAIL, MAILLOG_JSON };

/* a message accepted into the queue */
struct maillog_received {
    const char *queue_id;
    const char *sender;      /* envelope sender, "" for <> */
    long long size;          /* content bytes */
    size_t nrcpts;           /* recipients written to the queue file */
    const char *msgid;       /* Message-ID as in the header, "<...>" */
    const char *proto;       /* SMTP, ESMTP, ESMTPS...; NULL: local submission */
    const char *daemon;      /* the smtpd listener's name; NULL or "": "MTA" */
    const char *client_name; /* reverse DNS name, "unknown" or NULL */
    const char *client_addr; /* IP address or NULL */
    const char *user;        /* local submission: the submitting user */
    int hold;                /* the file went to hold/ */
};

/* one recipient's delivery attempt (or its end) */
struct maillog_delivery {
    const char *queue_id;
    const char *rcpt;
    const char *orig_rcpt; /* RCPT TO form when different, or NULL */
    const char *relay;     /* tern's "host[addr]:port", "local", "none" or "/path" */
    const char *extra;     /* postfix format only: ", conn_use=2, tls=..." or NULL */
    const char *mailer;    /* sendmail's mailer=: esmtp, relay, local, lmtp */
    double delay;          /* seconds since arrival */
    double xdelay;         /* seconds of this attempt */
    long long size;        /* for sendmail's pri=: size + 30000 per recipient */
    size_t nrcpts;
    const char *dsn;    /* "2.0.0" */
    const char *status; /* sent, deferred, bounced, expired */
    const char *reason; /* the reply or why */
};

/* a delivery status notice queued for a message */
struct maillog_notice {
    const char *queue_id;
    const char *notice_id; /* the notice's own queue ID */
    const char *kind;      /* non-delivery, delivery status, delay */
    int postmaster;        /* sent to the postmaster, not to the sender */
    const char *reason;    /* sendmail's text after "DSN: " or NULL */
};

/* a refusal in the SMTP dialogue (no queue ID yet: "NOQUEUE") */
struct maillog_reject {
    const char *kind;   /* reject, warn, hold, milter-reject ... */
    const char *stage;  /* RCPT, MAIL, CONNECT, END-OF-MESSAGE ... */
    const char *client; /* "host[addr]" */
    const char *text;   /* the reply sent */
    const char *from;   /* MAIL FROM, printable */
    const char *to;     /* RCPT TO, printable, or NULL */
    const char *proto;
    const char *helo;
};

/* maillog_format_parse - postfix, sendmail or json; -1 for another name */
int maillog_format_parse(const char *name);
/* maillog_set_format / maillog_get_format - the process-wide format
 * (log_init_from_config sets it from maillog_format) */
void maillog_set_format(enum maillog_format format);
enum maillog_format maillog_get_format(void);

/* maillog_format_* - append the event's line, without a newline, to out */
void maillog_format_received(enum maillog_format f, const struct maillog_received *e, buf_t *out);
void maillog_format_delivery(enum maillog_format f, const struct maillog_delivery *e, buf_t *out);
void maillog_format_notice(enum maillog_format f, const struct maillog_notice *e, buf_t *out);
void maillog_format_reject(enum maillog_format f, const struct maillog_reject *e, buf_t *out);

/* maillog_log_* - format in the process's format and log_info the line;
 * a local submission's received line carries the tag "sendmail" in the
 * sendmail format (LOG-06) */
void maillog_log_received(const struct maillog_received *e);
void maillog_log_delivery(const struct maillog_delivery *e);
void maillog_log_notice(const struct maillog_notice *e);
void maillog_log_reject(const struct maillog_reject *e);

/* maillog_sendmail_delay - sendmail's "HH:MM:SS" or "D+HH:MM:SS" */
void maillog_sendmail_delay(double seconds, buf_t *out);
/* maillog_sendmail_relay - tern's relay "host[addr]:port" as sendmail's
 * "host. [addr]"; "" for none and local; other forms as they are */
void maillog_sendmail_relay(const char *relay, buf_t *out);

#endif
