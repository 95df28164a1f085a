/*
 * sendmail - internal interfaces of the sendmail command and terndrop.
 *
 * sendmail.c parses the command line and picks a mode; sendmail_submit.c
 * reads a message, builds the maildrop file (lib/qfile.h format) and hands it
 * to the set-gid terndrop; sendmail_addr.c parses RFC 5322 address lists
 * (-t and recipient arguments); sendmail_bs.c is the -bs SMTP dialogue;
 * sendmail_info.c prints -bv and -d0.1; sendmail_trust.c decides which
 * config directory a caller may use (shared with terndrop).
 *
 * Functions return 0 / -1 unless they say otherwise; an exit status is a
 * sysexits.h value.
 */
#ifndef TERN_SENDMAIL_H
#define TERN_SENDMAIL_H

#include <stddef.h>
#include <sysexits.h>

#include "buf.h"

struct config;

#define SENDMAIL_MAX_FULLNAME 256
#define SENDMAIL_MAX_ENVID 100
#define SENDMAIL_MAX_RCPTS 10000

/* one submission: what the command line and the message say */
struct submission {
    buf_t sender;    /* envelope sender as given; "" = null sender */
    int sender_set;  /* -f was used */
    buf_t full_name; /* -F, else GECOS */
    buf_t notify;    /* -N: "" or e.g. "SUCCESS,FAILURE" */
    buf_t ret;       /* -R: "" | "FULL" | "HDRS" */
    buf_t envid;     /* -V */
    buf_t body_type; /* "" | "7BIT" | "8BITMIME" */
    char **rcpts;    /* recipient addresses */
    size_t rcpt_count;
    buf_t content;    /* the message, CRLF line ends */
    int leave_pickup; /* -v: pickup is triggered by the queue run that follows */
};

void submission_init(struct submission *s);
void submission_free(struct submission *s);
/* submission_add_rcpt - append one recipient (copied); -1 when over the bound */
int submission_add_rcpt(struct submission *s, const char *addr);

/* sendmail_read_message - stdin into s->content (LF -> CRLF; a lone "."
 * ends input unless ignore_dots); with extract (-t) the To/Cc/Bcc recipients
 * are added and Bcc: removed.  Returns 0 or an exit status. */
int sendmail_read_message(struct submission *s, const struct config *cfg, int ignore_dots,
                          int extract);
/* sendmail_submit - hand s to terndrop; queue_id (may be NULL) receives the
 * maildrop queue ID.  Returns 0 or an exit status. */
int sendmail_submit(const struct submission *s, const char *config_dir, buf_t *queue_id);
/* sendmail_run_terndrop - run terndrop with extra arguments (-p, -q ...),
 * stdout passed through; returns its exit status */
int sendmail_run_terndrop(const char *config_dir, char *const *args, int stdout_fd);
/* sendmail_self_dir - the directory of the running executable */
void sendmail_self_dir(buf_t *out);

/* sendmail_follow - -v: print the message's progress through the queue
 * (polls terndrop -p -j) until it leaves the queue or 30 s pass */
void sendmail_follow(const char *config_dir, const char *queue_id);
/* sendmail_capture_terndrop - run terndrop with args, its stdout into out;
 * returns its exit status */
int sendmail_capture_terndrop(const char *config_dir, char *const *args, buf_t *out);

/* sendmail_run_tern - run `tern -c DIR args...` (its stdout to stderr);
 * returns its exit status */
int sendmail_run_tern(const char *config_dir, char *const *args);

/* -bd / -bD / -q<interval> (sendmail_qrun.c): start tern, in the foreground
 * when asked, with queue_run_delay = interval seconds (0: tern.conf's) and
 * the -O assignments ("param=value"); EX_OSERR when it already runs */
int sendmail_daemon(const char *config_dir, const struct config *cfg, int foreground,
                    long long interval, char *const *assignments, size_t count);
/* -q[R|S|I]substr: a queue run in the foreground, selector as in
 * lib/qselect.h; with verbose the transcript; exit 0 once every selected
 * message had its attempt */
int sendmail_queue_run(const char *config_dir, const char *selector, int verbose,
                       char *const *assignments, size_t count);

/* sendmail_verbose_delivery - sendmail -v after a submission made with
 * leave_pickup: a traced queue run of queue_id (pickup is triggered by it);
 * when runs are refused, sendmail_follow */
void sendmail_verbose_delivery(const char *config_dir, const char *queue_id);

/* address lists (RFC 5322): folded text, display names, comments, groups.
 * Appends each addr-spec to s; -1 when one is malformed (err says which). */
int sendmail_addr_list(const char *text, struct submission *s, buf_t *err);
/* sendmail_addr_valid - 1 when addr can be an envelope address */
int sendmail_addr_valid(const char *addr);

/* -bs: an SMTP dialogue on stdin/stdout; returns an exit status */
int sendmail_smtp_session(const struct config *cfg, const char *config_dir,
                          const struct submission *defaults);

/* -bv: print what tern does with each address; EX_NOUSER when one is unknown */
int sendmail_verify(const struct config *cfg, char *const *addrs, size_t count);
/* -d0.1: version, compiled-in features, system identity */
void sendmail_print_identity(const struct config *cfg);

/* submit_config_dir - the config directory the caller may use: requested
 * (-C, -c) else $TERN_CONFIG_DIR else the built-in default.  A directory
 * other than the default is accepted only for root or when listed in
 * alternate_config_directories of the default config.  NULL + err when
 * refused; the result is malloc'ed. */
char *submit_config_dir(const char *requested, buf_t *err);

#endif
