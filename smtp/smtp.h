/*
 * smtp.h - types shared by the modules of tern-smtp, the outbound SMTP
 * client: the SMTP conversation (session.c) and the service loop (main.c);
 * the request from qmgr and its result are lib/delivery.h.
 */
#ifndef TERN_SMTP_SMTP_H
#define TERN_SMTP_SMTP_H

#include <stddef.h>
#include "buf.h"
#include "delivery.h"

struct event_base;
struct dns_ctx;

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

/* session.c: one delivery from DNS lookup to QUIT */
struct smtp_session;
/* on_result: every recipient has its final status (called once);
 * on_closed: the session is gone, req may be freed (called once, last) */
struct smtp_session_cbs {
    void (*on_result)(struct delivery_request *req, void *arg);
    void (*on_closed)(struct delivery_request *req, void *arg);
    void *arg;
};
/* smtp_session_start - begin delivering req; callbacks never run before it returns */
void smtp_session_start(const struct smtp_env *env, struct delivery_request *req,
                        const struct smtp_session_cbs *cbs);

#endif
