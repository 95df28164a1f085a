/*
 * local.h - types shared by the modules of tern-local, the local delivery
 * agent (docs/local.md, docs/internals.md "local protocol").
 *
 * env.c      the settings (struct local_env) and small shared helpers
 * main.c     the service loop (lib/delivery_server.c) and the workers: one
 *            forked worker per local.deliver request (bounded by
 *            local_destination_concurrency_limit); the request and its
 *            result are lib/delivery.h
 * deliver.c  one request in the worker: every recipient, logging
 * expand.c   aliases, :include:, .forward, users: recipient -> targets
 * mailbox.c  mbox, Maildir and /file deliveries
 * command.c  |command deliveries
 * forward.c  re-injection of forwarded addresses through cleanup
 * message.c  the copy of the message a mailbox, file or command gets
 * runas.c    running a function with a user's uid and gid
 *
 * tern-local is the only service that keeps root; everything done for a
 * user happens with that user's ids: mailbox, Maildir and file writes in
 * the worker with the user's effective ids (switched back to root after
 * each delivery), commands in a forked child that dropped root for good.
 */
#ifndef TERN_LOCAL_LOCAL_H
#define TERN_LOCAL_LOCAL_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "delivery.h"
#include "table.h"

struct config;

#define LOCAL_MAX_DEPTH 20          /* alias / .forward nesting */
#define LOCAL_MAX_TARGETS 10000     /* targets one recipient may expand to */
#define LOCAL_MAX_LIST_FILE 1048576 /* :include: and .forward files (bytes) */
#define LOCAL_MAX_REASON 400        /* bytes of a reason (command output) */

/* settings read once at start, plus the open alias tables */
struct local_env {
    char *const *mydestination;
    const char *myhostname;
    const char *spool_dir;       /* mail_spool_directory */
    const char *home_mailbox;    /* "" | "Maildir/" | "Mailbox" */
    const char *mailbox_command; /* "" = none */
    char *const *forward_path;
    char *const *allow_commands; /* alias, forward, include */
    char *const *allow_files;
    const char *default_user; /* default_privs */
    uid_t default_uid;
    gid_t default_gid;
    long long command_time_limit;
    const char *shell;
    const char *luser_relay;
    const char *delimiter; /* recipient_delimiter */
    int mail_hub;          /* local_transport hands users to another host */
    struct table_list aliases;
};

enum local_target_kind { TARGET_MAILBOX, TARGET_FILE, TARGET_COMMAND, TARGET_FORWARD };

/* the user a file or command delivery runs as */
struct local_user {
    uid_t uid;
    gid_t gid;
    char *name;
    char *home;
    char *shell;
};

/* one final destination of a recipient after expansion */
struct local_target {
    enum local_target_kind kind;
    char *what;      /* user name, /path, command, or address */
    char *address;   /* the address this target delivers for (log to=) */
    char *sender;    /* envelope sender for it (owner- rule) */
    char *extension; /* "" when none */
    struct local_user user;
    struct delivery_outcome result;
};

struct local_expansion {
    struct local_target *v;
    size_t count;
    size_t cap;
};

/* deliver.c */
/* local_deliver_request - deliver every recipient of req, fill its results */
void local_deliver_request(const struct local_env *env, struct delivery_request *req);

/* env.c */
/* local_env_read - the settings from cfg (aliases are not opened);
 * -1 with err naming a bad parameter */
int local_env_read(struct local_env *env, const struct config *cfg, buf_t *err);
/* local_result_set - set status, dsn and a formatted reason */
void local_result_set(struct delivery_outcome *r, enum delivery_status status, const char *dsn,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* local_list_has - 1 when word is in a parameter list (case-insensitive) */
int local_list_has(char *const *list, const char *word);

/* expand.c */
/* local_expand - expand rcpt into targets; -1 with res set when the whole
 * recipient fails (unknown user, loop, table failure) */
int local_expand(const struct local_env *env, const char *rcpt, const char *sender,
                 struct local_expansion *out, struct delivery_outcome *res);
void local_expansion_free(struct local_expansion *x);
/* local_user_from_name - fill u from the passwd entry; 0 ok, -1 unknown */
int local_user_from_name(const char *name, struct local_user *u);
void local_user_copy(struct local_user *dst, const struct local_user *src);
void local_user_free(struct local_user *u);

/* message.c: the content as a mailbox, file or command gets it */
struct local_message {
    const char *sender;  /* "" = null sender */
    const char *content; /* CRLF content from the queue file */
    size_t len;
    time_t arrival;
};
enum { MSG_FROM_LINE = 1, MSG_QUOTE_FROM = 2, MSG_BLANK_END = 4 };
/* local_message_format - From_ line (flag), Return-Path, Delivered-To,
 * the content with LF line ends (>From quoting with the flag) */
void local_message_format(const struct local_message *msg, const char *delivered_to, int flags,
                          buf_t *out);
/* local_message_has_delivered_to - 1 when a Delivered-To: header names addr */
int local_message_has_delivered_to(const struct local_message *msg, const char *addr);

/* mailbox.c (run through local_runas) */
void local_deliver_mbox(const struct local_env *env, const struct local_message *msg,
                        const struct local_target *t, struct delivery_outcome *res);
void local_deliver_maildir(const char *dir, const struct local_message *msg,
                           const struct local_target *t, struct delivery_outcome *res);
void local_deliver_file(const char *path, const struct local_message *msg,
                        const struct local_target *t, struct delivery_outcome *res);

/* command.c */
void local_deliver_command(const struct local_env *env, const struct local_message *msg,
                           const struct local_target *t, const char *command,
                           struct delivery_outcome *res);

/* forward.c */
/* local_forward - submit one message for the FORWARD targets [from, to) that
 * share one sender; fills each target's result */
void local_forward(const struct delivery_request *req, const struct delivery_rcpt *rcpt,
                   const struct local_message *msg, struct local_target **targets, size_t n);

/* runas.c */
/* local_runas - run fn in this process; when drop is set, with u's groups
 * and effective gid and uid (never root), back to root afterwards (else fn
 * switches ids itself, e.g. mbox in the spool).  Never for running a
 * program: that needs local_become_user in a child.  Exits the process
 * when the ids cannot be switched back. */
typedef void (*local_runas_fn)(void *arg, struct delivery_outcome *res);
void local_runas(const struct local_user *u, int drop, local_runas_fn fn, void *arg,
                 struct delivery_outcome *res);
/* local_become_user - setgroups/setgid/setuid to u, verified; 0 ok, -1 */
int local_become_user(const struct local_user *u);

#endif
