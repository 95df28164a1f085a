/*
 * smtpd - what the parts of tern-smtpd share: the settings read once at
 * start, and the worker (listeners, session count).
 *
 * main.c owns the worker and its listeners; session.c runs one SMTP session
 * per accepted connection; cleanup_stream.c talks to cleanup for DATA.
 */
#ifndef TERN_SMTPD_SMTPD_H
#define TERN_SMTPD_SMTPD_H

#include <stddef.h>
#include <sys/socket.h>

#include "netaddr.h"
#include "service.h"

struct evconnlistener;
struct event;
struct route;

/* the parameters of tern.conf that smtpd uses, read once at start */
struct smtpd_config {
    const char *myhostname;
    const char *myorigin;
    struct route *route; /* relay control, recipient checks (lib/route.h) */
    struct netaddr_net *mynetworks;
    size_t mynetworks_count;
    const char *banner;
    long long client_limit;
    long long recipient_limit;
    long long hard_error_limit;
    long long timeout;      /* seconds */
    long long data_timeout; /* seconds */
    long long line_limit;   /* bytes */
    int helo_required;
    int disable_vrfy;
    long long size_limit; /* bytes; 0 = none */
    int forbid_bare_newline;
};

/* one worker process */
struct smtpd_server {
    struct service svc;
    struct smtpd_config cfg;
    struct evconnlistener *listeners[SERVICE_MAX_LISTEN];
    size_t listener_count;
    size_t session_count;
    int paused;          /* listeners disabled (client limit, accept error) */
    struct event *retry; /* re-enables the listeners after an accept error */
};

/* smtpd_config_load - fill cfg from the loaded config (fatal on bad values) */
void smtpd_config_load(struct smtpd_config *cfg, const struct config *conf);
/* smtpd_config_free - release what smtpd_config_load allocated */
void smtpd_config_free(struct smtpd_config *cfg);

/* session_start - run a session on an accepted, non-blocking socket */
void session_start(struct smtpd_server *server, int fd, const struct sockaddr *sa, int salen);
/* smtpd_session_ended - a session is gone: re-enable listeners, finish a drain */
void smtpd_session_ended(struct smtpd_server *server);

#endif
