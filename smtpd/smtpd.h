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

#include "loadavg.h"
#include "milter.h"
#include "netaddr.h"
#include "service.h"
#include "throttle.h"

struct evconnlistener;
struct event;
struct route;
struct policy;
struct dns_ctx;
struct smtpd_dns_cache;
struct smtpd_policy_clients;
struct table_list;

struct smtpd_tls;
struct smtpd_auth;
struct smtp_ext_helpfile;

/* the TLS security level of a listener */
enum smtpd_tls_level { SMTPD_TLS_NONE, SMTPD_TLS_MAY, SMTPD_TLS_ENCRYPT };

/* per-client limits counted by tern-anvil (anvil_client.c); 0: no limit */
struct smtpd_client_limits {
    long long connection_count;     /* smtpd_client_connection_count_limit */
    long long connection_rate;      /* smtpd_client_connection_rate_limit */
    long long message_rate;         /* smtpd_client_message_rate_limit */
    long long recipient_rate;       /* smtpd_client_recipient_rate_limit */
    long long auth_rate;            /* smtpd_client_auth_rate_limit */
    struct netaddr_net *exceptions; /* smtpd_client_event_limit_exceptions */
    size_t exception_count;
};

/* the parameters of tern.conf that smtpd uses, read once at start, one set
 * per listener (config_listener) */
struct smtpd_config {
    const char *listener; /* "smtpd", "submission", "smtps" */
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
    int auth_required;         /* smtpd_auth_required */
    int sasl_header;           /* smtpd_sasl_authenticated_header */
    struct policy *policy;     /* the restriction lists and access maps (lib/policy.h) */
    int peername_lookup;       /* smtpd_peername_lookup */
    int ident_lookup;          /* smtpd_ident_lookup */
    long long ident_timeout;   /* smtpd_ident_timeout, seconds */
    int sender_login_mismatch; /* reject_sender_login_mismatch in smtpd_sender_restrictions:
                                  checked at MAIL (auth.c) */
    /* TLS (tls.c): NULL ctx when this listener has none */
    enum smtpd_tls_level tls_level;
    int tls_wrapper;         /* SMTPS */
    int tls_received_header; /* smtpd_tls_received_header */
    long long tls_loglevel;  /* smtpd_tls_loglevel */
    int requiretls;          /* smtpd_requiretls: REQUIRETLS (RFC 8689) under TLS */
    int smtputf8;            /* smtputf8_enable: SMTPUTF8 (RFC 6531) */
    struct smtpd_tls *tls;   /* the SSL_CTX and what it needs; NULL: no TLS */
    const char *tls_problem; /* why tls is NULL although a certificate is set */
    /* AUTH (auth.c): NULL when smtpd_sasl_auth_enable = no */
    struct smtpd_auth *auth;
    /* the PROXY protocol before the session (upstream_proxy.c) */
    int upstream_proxy;                       /* smtpd_upstream_proxy_protocol = haproxy */
    long long upstream_proxy_timeout;         /* seconds */
    struct netaddr_net *upstream_proxy_hosts; /* who may send it; empty: nobody */
    size_t upstream_proxy_host_count;

    /* before the greeting (greet.c, load.c) and privacy (privacy.c, expn.c):
     * helo_required and disable_vrfy above include needmailhelo and novrfy */
    long long greet_pause_ms;           /* smtpd_greet_pause; 0 = off */
    double refuse_load;                 /* smtpd_refuse_load; 0 = off */
    long long connection_rate_throttle; /* smtpd_connection_rate_throttle; 0 = off */
    unsigned privacy;                   /* smtpd_privacy_flags (lib/privacy.h) */
    int disable_expn;                   /* disable_expn_command or noexpn */
    int disable_etrn;                   /* smtpd_disable_etrn_command or noetrn (etrn.c) */
    struct table_list *aliases;         /* alias_maps for EXPN (the server's), or NULL */
    struct smtpd_client_limits client_limits;
    struct milter_list milters; /* smtpd_milters (smtpd_milter.c) */

    /* HELP (help.c), XCLIENT and XFORWARD (xclient.c) */
    const char *help_file;             /* help_file; "" = the built-in text */
    struct smtp_ext_helpfile *help;    /* its topics; NULL: not readable (502) */
    struct netaddr_net *xclient_hosts; /* smtpd_authorized_xclient_hosts */
    size_t xclient_hosts_count;
    struct netaddr_net *xforward_hosts; /* smtpd_authorized_xforward_hosts */
    size_t xforward_hosts_count;
};

/* one listener of a worker: its sockets share one config and one pace */
struct smtpd_listener {
    struct smtpd_server *server;
    struct config *view; /* the config as this listener sees it (owns cfg's strings) */
    struct smtpd_config cfg;
    struct smtpd_throttle throttle; /* this worker's share of connection_rate_throttle */
    struct event *throttle_timer;   /* the end of a pause, then of a deferring spell */
    int throttled;                  /* paused until the next accept may come */
    int deferring;                  /* connections had to wait: logged, not yet over */
};

/* one worker process */
struct smtpd_server {
    struct service svc;
    struct route *route;               /* shared by every listener */
    struct dns_ctx *dns;               /* reverse DNS, DNS lists, domains (smtpd_policy.c) */
    struct smtpd_dns_cache *dns_cache; /* the sessions' shared DNS answers (dns_cache.c) */
    struct smtpd_policy_clients *policy_clients; /* check_policy_service connections */
    long long client_limit;                      /* smtpd_client_limit: sessions per worker */
    struct smtpd_listener conf[3];               /* one per listener name in use */
    size_t conf_count;
    struct evconnlistener *listeners[SERVICE_MAX_LISTEN];
    struct smtpd_listener *listener_conf[SERVICE_MAX_LISTEN];
    size_t listener_count;
    size_t session_count;
    char last_client[64];   /* the latest client's address, for the process title */
    long long worker_index; /* TERN_SMTPD_WORKER: this worker among worker_count */
    long long worker_count;
    int accept_failed;   /* listeners paused for a second after an accept error */
    struct event *retry; /* re-enables the listeners after an accept error */

    struct loadavg_source load; /* load_average_file (load.c) */
    struct table_list *aliases; /* alias_maps, opened as root (expn.c); NULL: none */
};

/* smtpd_config_load - fill cfg from one listener's view of the config
 * (fatal on bad values); route is shared */
void smtpd_config_load(struct smtpd_config *cfg, const struct config *conf, struct route *route);
/* smtpd_config_free - release what smtpd_config_load allocated */
void smtpd_config_free(struct smtpd_config *cfg);

/* session_start - run a session on an accepted, non-blocking socket */
void session_start(struct smtpd_listener *listener, int fd, const struct sockaddr *sa, int salen);
/* session_start_proxied - the same for a connection whose PROXY header
 * (upstream_proxy.c) named the client and the address it connected to */
void session_start_proxied(struct smtpd_listener *listener, int fd,
                           const struct sockaddr_storage *client,
                           const struct sockaddr_storage *local);
/* smtpd_session_ended - a session is gone: re-enable listeners, finish a drain */
void smtpd_session_ended(struct smtpd_server *server);

#endif
