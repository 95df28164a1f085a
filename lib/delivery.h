/*
 * delivery - the protocol between qmgr and a delivery agent, and the agent
 * side service loop (docs/internals.md, "smtp protocol" / "local protocol").
 *
 * qmgr connects once per delivery request and sends one TRANSPORT.deliver
 * message (TRANSPORT is "smtp" or "local"): queue_id, path, content_offset,
 * content_length, sender, nexthop, arrival, size, envid, ret, body and the
 * optional requiretls, tls_required_no ("yes" when set) and auth_mailbox,
 * then per recipient a group index, rcpt, notify, orcpt.  The agent answers once with
 * TRANSPORT.result: per recipient index, status (sent | defer | bounce), dsn,
 * reason and optionally dsn_passed=yes, then the connection is closed.
 * A request with trace=yes (sendmail -q -v, qmgr/run.c) gets the agent's
 * dialogue back as one "transcript" attribute before the recipients
 * (">>> " commands, the server's lines as sent, AUTH data hidden).
 *
 * Called by the delivery agents (smtp/main.c, local/main.c and what they
 * deliver with).  delivery_request_parse trusts nothing: addresses end up in
 * SMTP commands, headers, file names and command environments, so control
 * characters, '<' '>' in addresses, spaces in parameters and over-long
 * values are refused; counts are bounded by QFILE_MAX_RCPTS.  A request owns
 * every string it points to (malloc'ed copies); delivery_request_free
 * releases them.  Functions return 0 on success and -1 on failure with the
 * reason appended to err.
 *
 * delivery_server runs the loop every agent needs on the event loop of its
 * service: accept on the inherited sockets, read exactly one bounded attr
 * message per connection (timeout DELIVERY_CLIENT_TIMEOUT), parse it, start
 * at most `limit` jobs at once (the rest wait in arrival order), write the
 * one result and close; on SIGHUP stop accepting and leave the loop once
 * every job is gone.
 */
#ifndef TERN_DELIVERY_H
#define TERN_DELIVERY_H

#include <stddef.h>

#include "attr.h"
#include "buf.h"
#include "qid.h"

struct service;

#define DELIVERY_MAX_ADDRESS 998 /* an address must fit in one SMTP command line */
#define DELIVERY_MAX_PARAM 500   /* notify, orcpt, envid, ret, nexthop */
#define DELIVERY_MAX_PATH 256
#define DELIVERY_CLIENT_TIMEOUT 60           /* seconds for qmgr to send / take a message */
#define DELIVERY_MAX_TRANSCRIPT (256 * 1024) /* bytes of a traced dialogue kept */

enum delivery_status { DELIVERY_PENDING, DELIVERY_SENT, DELIVERY_DEFER, DELIVERY_BOUNCE };

/* what a delivery attempt says: status, enhanced code, one-line reason */
struct delivery_outcome {
    enum delivery_status status;
    char dsn[16];
    buf_t reason;
};

struct delivery_rcpt {
    long long index; /* position in the queue file, echoed back to qmgr */
    char *address;
    char *notify; /* DSN NOTIFY value or "" */
    char *orcpt;  /* DSN ORCPT value or "" */
    struct delivery_outcome result;
    int dsn_passed; /* sent to a next hop that took NOTIFY (it reports, not us) */
    int accepted;   /* used by smtp: RCPT got 2xx in the current transaction */
};

struct delivery_request {
    char queue_id[QID_LEN + 1];
    char *path; /* relative to queue_directory, no ".." */
    long long content_offset;
    long long content_length;
    char *sender;
    char *nexthop; /* smtp: the next hop; local: the recipients' domain */
    char *envid;   /* "" when unset */
    char *ret;     /* "", FULL or HDRS */
    long long arrival;
    double started; /* when the request was parsed: sendmail's xdelay= counts from here */
    long long size;
    int body_8bit;       /* body=8BITMIME or BINARYMIME: 8-bit content */
    int body_binary;     /* body=BINARYMIME (RFC 3030): BDAT only, or a 7-bit copy */
    int requiretls;      /* requiretls=yes: MAIL had REQUIRETLS (RFC 8689): deliver only
                            over verified TLS to a next hop that offers REQUIRETLS */
    int tls_required_no; /* tls_required_no=yes: a "TLS-Required: No" header and no
                            REQUIRETLS: TLS policy (DANE, MTA-STS) failures are ignored */
    char *auth_mailbox;  /* the AUTH= mailbox to pass on (RFC 4954 section 5): an
                            address, "<>", or "" when none is known */
    int trace;           /* trace=yes: record the dialogue in transcript */
    int smtputf8;        /* smtputf8=yes: MAIL had SMTPUTF8 (RFC 6531) */
    buf_t transcript;    /* one line each, sent back with the result */
    struct delivery_rcpt *rcpts;
    size_t rcpt_count;
};

/* delivery_request_init - an empty request */
void delivery_request_init(struct delivery_request *req);
/* delivery_request_free - release everything the request owns, leave it empty */
void delivery_request_free(struct delivery_request *req);
/* delivery_request_parse - validate TRANSPORT.deliver into req (initialized,
 * empty); on -1 req may hold a part: free it */
int delivery_request_parse(const struct attr_msg *m, const char *transport,
                           struct delivery_request *req, buf_t *err);
/* delivery_result_encode - append the TRANSPORT.result message for req to
 * out; a recipient still pending is reported as defer 4.3.0 "delivery not
 * attempted", a missing dsn as 4.3.0 */
void delivery_result_encode(const struct delivery_request *req, const char *transport, buf_t *out);
/* delivery_rcpt_set - give a recipient its final outcome (first call wins) */
void delivery_rcpt_set(struct delivery_rcpt *r, enum delivery_status status, const char *dsn,
                       const char *reason);
/* delivery_trace - with req->trace, append the line prefix + text[0..len)
 * to the transcript (bounded by DELIVERY_MAX_TRANSCRIPT); else nothing */
void delivery_trace(struct delivery_request *req, const char *prefix, const char *text, size_t len);
/* delivery_status_name - "sent" | "defer" | "bounce" as in TRANSPORT.result */
const char *delivery_status_name(enum delivery_status status);

/* the service loop (delivery_server.c) */
struct delivery_server;
/* one connection from qmgr carrying one parsed request */
struct delivery_job;

struct delivery_server_cbs {
    /* check - optional transport-specific validation after the parse: 0 ok,
     * -1 refuse the request (err says why; the connection is dropped) */
    int (*check)(const struct delivery_request *req, buf_t *err);
    /* on_request - a slot is free: deliver delivery_job_request(job).  The
     * transport later calls delivery_job_reply (or delivery_job_close) and,
     * once it no longer touches the request, delivery_job_done */
    void (*on_request)(struct delivery_job *job, void *ctx);
    void *ctx;
};

/* delivery_server_start - listen on svc's inherited sockets (fatal without
 * any) and take over svc->on_drain; limit >= 1 jobs run at once */
struct delivery_server *delivery_server_start(struct service *svc, const char *transport,
                                              long long limit,
                                              const struct delivery_server_cbs *cbs);
/* delivery_server_free - after service_run: close the listeners */
void delivery_server_free(struct delivery_server *srv);
/* delivery_server_close_listeners - close the listening fds (in a forked child) */
void delivery_server_close_listeners(struct delivery_server *srv);

/* delivery_job_request - the job's request (owned by the job) */
struct delivery_request *delivery_job_request(struct delivery_job *job);
/* delivery_job_fd - the qmgr socket, for a forked child that answers itself */
int delivery_job_fd(struct delivery_job *job);
/* delivery_job_reply - send the result of the request and close when it is
 * out (nothing when qmgr already went away) */
void delivery_job_reply(struct delivery_job *job);
/* delivery_job_close - drop the qmgr side without answering (qmgr defers) */
void delivery_job_close(struct delivery_job *job);
/* delivery_job_done - the transport is finished with the job: its slot is
 * free; the job is freed once its connection is closed too */
void delivery_job_done(struct delivery_job *job);

#endif
