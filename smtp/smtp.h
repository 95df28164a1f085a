/*
 * smtp.h - types shared by the modules of tern-smtp, the outbound SMTP
 * client: the delivery request from qmgr (request.c), the SMTP conversation
 * (session.c) and the service loop (main.c).
 */
#ifndef TERN_SMTP_SMTP_H
#define TERN_SMTP_SMTP_H

#include <stddef.h>
#include "attr.h"
#include "buf.h"
#include "qid.h"

struct event_base;
struct dns_ctx;

enum smtp_rcpt_status { RCPT_PENDING, RCPT_SENT, RCPT_DEFER, RCPT_BOUNCE };

struct smtp_rcpt {
    long long index; /* position in the queue file, echoed back to qmgr */
    char *address;
    char *notify; /* DSN NOTIFY value or "" */
    char *orcpt;  /* DSN ORCPT value or "" */
    enum smtp_rcpt_status status;
    char dsn[16];
    buf_t reason;
    int accepted; /* RCPT got 2xx in the current transaction */
};

struct smtp_request {
    char queue_id[QID_LEN + 1];
    char *path; /* relative to queue_directory */
    long long content_offset;
    long long content_length;
    char *sender;
    char *nexthop;
    char *envid; /* "" when unset */
    char *ret;   /* "", FULL or HDRS */
    long long arrival;
    long long size;
    int body_8bit; /* body=8BITMIME */
    struct smtp_rcpt *rcpts;
    size_t rcpt_count;
};

/* settings every session reads (from tern.conf) */
struct smtp_env {
    struct event_base *base;
    struct dns_ctx *dns;
    long long connect_timeout;
    long long helo_timeout;
    long long command_timeout;
    long long data_timeout;
    const char *helo_name;
    int default_port;
};

/* request.c */
void smtp_request_init(struct smtp_request *req);
void smtp_request_free(struct smtp_request *req);
/* smtp_request_parse - validate a smtp.deliver message; 0 ok, -1 bad (err says why) */
int smtp_request_parse(const struct attr_msg *m, struct smtp_request *req, buf_t *err);
/* smtp_result_encode - the smtp.result message for req into out */
void smtp_result_encode(const struct smtp_request *req, buf_t *out);
/* smtp_rcpt_set - give a recipient its final status (first call wins) */
void smtp_rcpt_set(struct smtp_rcpt *r, enum smtp_rcpt_status status, const char *dsn,
                   const char *reason);
/* smtp_status_name - "sent" | "defer" | "bounce" as in smtp.result */
const char *smtp_status_name(enum smtp_rcpt_status status);

/* session.c: one delivery from DNS lookup to QUIT */
struct smtp_session;
/* on_result: every recipient has its final status (called once);
 * on_closed: the session is gone, req may be freed (called once, last) */
struct smtp_session_cbs {
    void (*on_result)(struct smtp_request *req, void *arg);
    void (*on_closed)(struct smtp_request *req, void *arg);
    void *arg;
};
/* smtp_session_start - begin delivering req; callbacks never run before it returns */
void smtp_session_start(const struct smtp_env *env, struct smtp_request *req,
                        const struct smtp_session_cbs *cbs);

#endif
