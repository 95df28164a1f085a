/*
 * cleanup - internal interfaces of the cleanup service.
 *
 * cleanup turns one cleanup.submit request plus its content stream into a
 * durable queue file (docs/internals.md, "cleanup protocol").  main.c owns the
 * connections and the commit batching; message.c owns one message: queue file
 * creation, header fix-ups, content writing.
 */
#ifndef TERN_CLEANUP_H
#define TERN_CLEANUP_H

#include <stddef.h>
#include <time.h>

#include "attr.h"
#include "buf.h"
#include "qfile.h"
#include "qid.h"

struct config;

struct route;
struct netaddr_net;

/* settings read once at start */
struct cleanup_settings {
    const char *myhostname;
    const char *myorigin;
    struct route *route; /* canonical, masquerade, virtual (lib/route.h); NULL: none */
    /* local_header_rewrite_clients: whose header addresses are rewritten */
    int header_rewrite_all;
    struct netaddr_net *header_nets; /* networks named, and mynetworks when permitted */
    size_t header_net_count;
    long long hopcount_limit;
    long long header_size_limit;
    long long message_size_limit;
};

enum cleanup_status { CLEANUP_OK, CLEANUP_TEMPFAIL, CLEANUP_PERMFAIL };

enum cleanup_phase { CLEANUP_HEADERS, CLEANUP_BODY };

struct cleanup_msg {
    const struct cleanup_settings *set;
    char queue_id[QID_LEN + 1];
    buf_t tmp_path;   /* incoming/.tmp.ID */
    buf_t final_path; /* incoming/ID */
    int fd;
    struct qfile_writer w;
    enum cleanup_phase phase;
    buf_t headers; /* header section collected so far */
    size_t received_count;
    int have_message_id;
    int have_date;
    buf_t message_id;
    /* envelope details needed for the Received: header and the log */
    buf_t sender;
    buf_t helo;
    buf_t client_name;
    buf_t client_addr;
    buf_t protocol;
    buf_t listener;      /* the smtpd listener ("submission"), "" for local mail */
    buf_t tls;           /* "version=TLSv1.3 cipher=... bits=256/256 verify=NO" or "" */
    buf_t sasl_method;   /* AUTH mechanism, "" when not authenticated */
    buf_t sasl_username; /* the authenticated login */
    int sasl_header;     /* name sasl_username in Received: */
    buf_t only_rcpt;     /* the recipient when there is exactly one */
    /* local submissions (pickup): the Received: form, From:, the -f warning */
    buf_t local_user;
    buf_t full_name;
    buf_t sender_warning; /* "" or the address set with -f by an untrusted user */
    buf_t hold;           /* smtpd's HOLD / QUARANTINE reason: the file goes to hold/ */
    buf_t ident;          /* the client's identd user (smtpd_ident_lookup), or "" */
    buf_t prepend;        /* smtpd's PREPEND header lines ("Name: value\n" each) */
    int have_from;
    int requiretls;            /* MAIL ... REQUIRETLS (RFC 8689): TLS-Required: is ignored */
    int tls_required_no;       /* a "TLS-Required: No" header field (RFC 8689 section 3) */
    int rewrite_headers;       /* local_header_rewrite_clients allows it */
    size_t rcpt_count;         /* R records written */
    size_t input_rcpts;        /* recipients the client gave */
    struct cleanup_seen *seen; /* recipients written, for duplicates */
    size_t content_bytes;
    time_t arrival;
    /* outcome */
    enum cleanup_status status;
    buf_t code, dsn, text;
};

/* cleanup_msg_begin - validate the submit request, create the queue file
 * and write the envelope; on failure the outcome fields say why */
int cleanup_msg_begin(struct cleanup_msg *m, const struct cleanup_settings *set,
                      const struct attr_msg *req);
/* cleanup_msg_data - take some content bytes */
void cleanup_msg_data(struct cleanup_msg *m, const char *data, size_t len);
/* cleanup_msg_finish - flush headers, write the end record (not yet
 * durable); 0 ok, -1 failed (outcome set, temp file removed) */
int cleanup_msg_finish(struct cleanup_msg *m);
/* cleanup_msg_sync - fsync the file; 0 ok, -1 failed (outcome set, temp
 * file removed).  main.c covers a batch with one syncfs instead. */
int cleanup_msg_sync(struct cleanup_msg *m);
/* cleanup_msg_publish - rename into incoming/ (the caller fsyncs the dir) */
/* cleanup_msg_hold - publish the message into hold/ (smtpd's HOLD) */
void cleanup_msg_hold(struct cleanup_msg *m, const char *reason);
int cleanup_msg_publish(struct cleanup_msg *m);
/* cleanup_msg_discard - remove the temp file and free everything */
void cleanup_msg_discard(struct cleanup_msg *m);
/* cleanup_msg_free - free memory (the files are left as they are) */
void cleanup_msg_free(struct cleanup_msg *m);
/* cleanup_trigger_qmgr - fire and forget: new mail in incoming/ (main.c) */
void cleanup_trigger_qmgr(void);

/* pickup - maildrop/ to the queue (pickup.c).  pickup_start serves the
 * public/pickup socket fd (any connection = scan now), scans at start and
 * every minute; pickup_stop stops it (drain). */
struct service;
void pickup_start(struct service *svc, int fd, const struct cleanup_settings *set);
void pickup_stop(void);

/* cleanup_msg_fail - record a failure outcome */
void cleanup_msg_fail(struct cleanup_msg *m, enum cleanup_status st, const char *code,
                      const char *dsn, const char *text);

#endif
