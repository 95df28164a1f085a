/*
 * service - the one start-up idiom shared by every service process.
 *
 * master forks and execs each service as
 *     tern-NAME -c CONFIG_DIR [-v]
 * with its listening sockets inherited as fds 3, 4, ... and their count in the
 * environment variable TERN_LISTEN_FDS.  Service order of work:
 *
 *   service_init()              parse args, load config (fatal on error), open
 *                               the log, chdir to queue_directory, make the
 *                               event base
 *   ...privileged set-up...
 *   service_drop_privileges()   chroot (service_chroot = yes) and drop to
 *                               mail_owner, verified
 *   service_run()               the event loop until service_stop()
 *
 * Signals: SIGHUP from master means "drain": stop accepting new work, finish
 * what is in flight, then exit 0 (master has already started the replacement,
 * which reads the new config).  SIGTERM means stop now.  The callbacks are
 * invoked from the event loop, not from signal context.
 *
 * All paths after service_init are relative to queue_directory
 * ("private/cleanup", "incoming/ID"), so they work with and without chroot.
 */
#ifndef TERN_SERVICE_H
#define TERN_SERVICE_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

struct event_base;
struct config;

#define SERVICE_MAX_LISTEN 16

/* -o name=value overrides a service (or the master) accepts */
#define SERVICE_MAX_OVERRIDES 32

struct service {
    const char *name;
    struct config *cfg;
    struct event_base *base;
    int listen_fds[SERVICE_MAX_LISTEN];
    size_t listen_count;
    int draining;
    int verbose;
    void *ctx;
    void (*on_drain)(void *ctx); /* SIGHUP: stop accepting; may be NULL */
    void (*on_stop)(void *ctx);  /* SIGTERM: may be NULL (default: exit loop) */
};

/* service_init - see above; exits with a clear message on any error */
void service_init(struct service *svc, const char *name, int argc, char **argv);
/* service_drop_privileges - chroot if configured, then drop to mail_owner */
void service_drop_privileges(struct service *svc);
/* service_run - dispatch events until service_stop; returns the exit status */
int service_run(struct service *svc);
/* service_stop - leave the event loop (after the current callback) */
void service_stop(struct service *svc);

/* unix_connect - connect to a UNIX stream socket; nonblock: O_NONBLOCK set
 * before connect.  Returns the fd or -1 (errno set). */
int unix_connect(const char *path, int nonblock);
/* unix_connect_timeout - connect to a UNIX stream socket, waiting at most
 * timeout seconds (a full accept backlog is retried, never waited on in
 * connect(2)); the fd is blocking on return.  The fd, or -1 (errno set;
 * ETIMEDOUT when the time ran out). */
int unix_connect_timeout(const char *path, long long timeout);
/* set_nonblock / set_cloexec - 0 ok, -1 error */
int set_nonblock(int fd);
int set_cloexec(int fd);

/* service_program_path - where program ("tern-smtpd") lives: daemon_directory
 * when set; else next to the running executable, or in the build tree
 * (../smtpd/tern-smtpd from tools/ or master/; tern-lmtp in ../smtp/); else the installed
 * TERN_LIBEXECDIR */
void service_program_path(const struct config *cfg, const char *program, buf_t *out);

/* service_master_pid - the pid in QUEUE_DIR/pid/master.pid when that
 * process is alive (and not a zombie), else 0 */
pid_t service_master_pid(const char *queue_dir);

#endif
