/*
 * master - internal interfaces of tern-master, the root supervisor.
 *
 * layout.c creates or checks the queue directories; sockets.c binds every
 * listening socket; services.c forks, execs, restarts and drains the
 * services; main.c ties them together with the pid file and signals.
 */
#ifndef TERN_MASTER_H
#define TERN_MASTER_H

#include <sys/types.h>

#include "buf.h"

struct config;
struct event_base;

/* the queue layout; -1 with a message on error */
int master_layout_create(const struct config *cfg, uid_t uid, gid_t gid, buf_t *err);

/* listening sockets, one array per service */
struct master_sockets {
    int smtpd[16];
    const char *smtpd_names[16]; /* the listener of each: "smtpd", "submission", "smtps" */
    size_t smtpd_count;
    int cleanup;
    int qmgr;
    int smtp;
    int lmtp; /* private/lmtp, to tern-lmtp (tern-smtp by another name) */
    int local;
    int auth;     /* private/auth: SASL exchanges for smtpd, to tern-auth */
    int anvil;    /* private/anvil: connection and rate counters for smtpd, to tern-anvil */
    int proxymap; /* private/proxymap: remote table lookups for every service, to tern-proxymap */
    int pickup;   /* public/pickup: maildrop triggers, to cleanup */
    int qmgr_public; /* public/qmgr: flush requests from users, to qmgr */
    int showq;       /* public/showq: queue listing */
    int metrics;     /* metrics_listen (TCP), to tern-metrics; -1 when not set */
};

int master_sockets_open(const struct config *cfg, uid_t uid, gid_t gid, struct master_sockets *s,
                        buf_t *err);
void master_sockets_close(struct master_sockets *s);

/* services; log_to_stderr: the children log to stderr (tern-master -f) */
void master_services_init(struct event_base *base, const char *config_dir, int log_to_stderr,
                          const struct master_sockets *socks);
void master_services_start(const struct config *cfg);
/* master_services_set_overrides - the -o name=value list every service gets */
void master_services_set_overrides(char *const *assignments, size_t count);
/* master_services_reload - drain the running set, start a new one */
void master_services_reload(const struct config *cfg);
/* master_services_stop - SIGTERM every child; done_cb runs when all exited */
void master_services_stop(void (*done_cb)(void));
/* master_services_kill - SIGKILL whatever did not stop in time */
void master_services_kill(void);
/* master_services_reap - handle SIGCHLD */
void master_services_reap(void);

#endif
