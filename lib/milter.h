/*
 * milter - the MTA side of the sendmail milter protocol on libevent: the
 * configured milter lists, one non-blocking conversation per milter, the
 * sendmail macros, and what a milter's answer means for SMTP.
 *
 * Who uses it (docs/milter.md, docs/internals.md):
 *  - smtpd opens one conversation per smtpd_milters entry for each SMTP
 *    session and runs connect, HELO, MAIL, RCPT, DATA and unknown commands
 *    through them (milter_chain_*: the milters in order, the first that
 *    refuses decides).
 *  - at the end of DATA smtpd hands the open sockets to cleanup
 *    (milter_export / milter_import: the socket travels with SCM_RIGHTS, the
 *    negotiated state as attributes); cleanup sends the header section as it
 *    will be queued, the body and the end of message to each milter in turn,
 *    applies each one's changes before the next sees the message, and only
 *    then makes the queue file durable.  smtpd does not touch a socket while
 *    cleanup has it, and takes it back for the next transaction.
 *  - cleanup runs non_smtpd_milters itself for pickup (the whole
 *    conversation: connect "localhost" 127.0.0.1, HELO, MAIL, RCPT, DATA,
 *    content).
 *
 * Nothing here blocks: connects are non-blocking, every wait has a timer
 * (connect, command and content timeouts of the milter's spec), and a
 * milter that fails (cannot be reached, times out, closes, breaks the
 * protocol) is logged once with its name and is "failed" for the rest of its
 * conversation: every later command on it completes at once with
 * MILTER_FAILED, and the caller applies the milter's default_action
 * (milter_failure_verdict).
 *
 * Callbacks are never called from inside the call that started the command
 * (always from the event loop), so a caller can start a command and then
 * update its own state.
 */
#ifndef TERN_MILTER_H
#define TERN_MILTER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "milter_proto.h"

struct event_base;
struct config;
struct attr_msg;

/* ---- configuration: smtpd_milters, non_smtpd_milters ---- */

enum milter_default_action {
    MILTER_DEFAULT_TEMPFAIL,
    MILTER_DEFAULT_ACCEPT, /* go on as if the milter were not configured */
    MILTER_DEFAULT_REJECT,
    MILTER_DEFAULT_QUARANTINE /* accept the message into the hold queue */
};

/* one configured milter */
struct milter_spec {
    char *name; /* the socket as written ("unix:/run/opendkim.sock"): in log lines */
    int family; /* AF_UNIX, AF_INET or AF_INET6 */
    char *path; /* AF_UNIX: the socket path */
    char *host; /* AF_INET/AF_INET6: numeric (milter_list_load resolves a name once) */
    unsigned port;
    enum milter_default_action default_action;
    long long connect_timeout; /* seconds: connect and option negotiation */
    long long command_timeout; /* seconds: one reply to an SMTP-stage command, header, eoh */
    long long content_timeout; /* seconds: one reply to a body chunk or the end of message */
    unsigned version;          /* protocol version offered: 2..6 */
    /* the macro names sent at each stage (space-separated sendmail names:
     * "j {daemon_name} {client_addr}"), indexed by enum milter_proto_stage,
     * plus MILTER_STAGE_UNKNOWN; a milter's own list from the negotiation
     * wins over these */
    char *macros[MILTER_PROTO_STAGES + 1];
};

/* the macro list index of the unknown-command stage (the protocol has no
 * SMFIM_ value for it) */
#define MILTER_STAGE_UNKNOWN MILTER_PROTO_STAGES

struct milter_list {
    struct milter_spec *v;
    size_t count;
};

/* milter_list_load - parse the value of parameter param ("smtpd_milters",
 * "non_smtpd_milters") of cfg (a listener's view or the global config) with
 * the milter_* defaults of cfg.  Items are separated by commas or white
 * space; an item is a socket ("unix:/path", "local:/path", "inet:host:port",
 * "inet:port@host", "inet6:[addr]:port", "inet6:port@addr") or braces
 * holding the socket and "name = value" settings separated by commas:
 * default_action, connect_timeout, command_timeout, content_timeout (time
 * units as in tern.conf), protocol.  0 ok; -1 with a message naming
 * config_origin(cfg, param) and the bad item in *err. */
int milter_list_load(const struct config *cfg, const char *param, struct milter_list *out,
                     buf_t *err);
void milter_list_free(struct milter_list *l);
/* milter_spec_copy / milter_spec_free - a deep copy of a spec, and its
 * release (the strings are owned) */
void milter_spec_copy(struct milter_spec *dst, const struct milter_spec *src);
void milter_spec_free(struct milter_spec *s);
/* milter_default_action_parse - "tempfail", "accept", "reject",
 * "quarantine"; 0 ok, -1 otherwise */
int milter_default_action_parse(const char *s, enum milter_default_action *out);

/* ---- sendmail macros ---- */

/* milter_macro_fn - the value of sendmail macro name ("i", "{client_addr}")
 * or NULL when it has none (then it is not sent) */
typedef const char *(*milter_macro_fn)(void *ctx, const char *name);

/* the facts the macros are made of; every field may be NULL */
enum milter_fact {
    MILTER_FACT_J,           /* j: myhostname */
    MILTER_FACT_DAEMON_NAME, /* {daemon_name}: the listener ("smtpd", "submission") */
    MILTER_FACT_DAEMON_ADDR, /* {daemon_addr} */
    MILTER_FACT_V,           /* v: "tern VERSION" */
    MILTER_FACT_UNDERSCORE,  /* _: "name [addr]" as sendmail shows the client */
    MILTER_FACT_CLIENT_ADDR,
    MILTER_FACT_CLIENT_NAME,
    MILTER_FACT_CLIENT_PORT,
    MILTER_FACT_CLIENT_PTR,
    MILTER_FACT_IF_NAME,
    MILTER_FACT_IF_ADDR,
    MILTER_FACT_TLS_VERSION,
    MILTER_FACT_CIPHER,
    MILTER_FACT_CIPHER_BITS,
    MILTER_FACT_CERT_SUBJECT,
    MILTER_FACT_CERT_ISSUER,
    MILTER_FACT_AUTH_TYPE,
    MILTER_FACT_AUTH_AUTHEN,
    MILTER_FACT_AUTH_SSF,
    MILTER_FACT_AUTH_AUTHOR,
    MILTER_FACT_QUEUE_ID, /* i */
    MILTER_FACT_MAIL_MAILER,
    MILTER_FACT_MAIL_HOST,
    MILTER_FACT_MAIL_ADDR,
    MILTER_FACT_RCPT_MAILER,
    MILTER_FACT_RCPT_HOST,
    MILTER_FACT_RCPT_ADDR,
    MILTER_FACT_MSG_ID, /* {msg_id}: the Message-ID value */
    MILTER_FACT_COUNT
};

struct milter_facts {
    char *v[MILTER_FACT_COUNT]; /* owned copies or NULL */
};

void milter_facts_init(struct milter_facts *f);
void milter_facts_free(struct milter_facts *f);
/* milter_facts_set - copy value into fact (NULL clears it) */
void milter_facts_set(struct milter_facts *f, enum milter_fact fact, const char *value);
/* milter_facts_macro - a milter_macro_fn over a struct milter_facts (ctx) */
const char *milter_facts_macro(void *ctx, const char *name);
/* milter_facts_export / _import - every set fact as "milter_fact" attributes
 * ("NAME=value", NAME the macro name without braces: "client_addr=1.2.3.4") appended to an
 * attribute message being built, and back from a decoded one */
void milter_facts_export(const struct milter_facts *f, buf_t *attrs);
void milter_facts_import(struct milter_facts *f, const struct attr_msg *m);

/* ---- one conversation ---- */

struct milter;

enum milter_outcome {
    MILTER_CONTINUE, /* go on (also: the step was not sent, or sent without a reply) */
    MILTER_ACCEPT,   /* accept: skip this milter for the rest of the transaction
                        (at connect or HELO: of the session) */
    MILTER_REJECT,   /* reply holds the 5xx reply */
    MILTER_TEMPFAIL, /* reply holds the 4xx reply */
    MILTER_DISCARD,  /* accept the message and throw it away (MAIL..end of message) */
    MILTER_SKIP,     /* body chunk: send no more body to this milter */
    MILTER_SHUTDOWN, /* reply holds a 421: answer it and close the SMTP session */
    MILTER_FAILED    /* the milter failed (logged); apply its default_action */
};

/* one end-of-message change, in the order the milter sent them */
struct milter_mod {
    char cmd;       /* SMFIR_ADDHEADER, _INSHEADER, _CHGHEADER, _ADDRCPT, _ADDRCPT_PAR,
                       _DELRCPT, _CHGFROM, _REPLBODY, _QUARANTINE */
    uint32_t index; /* insheader: position (0 = top); chgheader: occurrence (1 = first) */
    char *name;     /* header name; the address (rcpt, chgfrom); the quarantine reason */
    char *value;    /* header value ("" in chgheader: delete; "\n" line breaks as sent);
                       ESMTP arguments of addrcpt_par / chgfrom, or NULL */
    buf_t body;     /* replbody: the bytes of this chunk (the chunks concatenate) */
};

struct milter_result {
    enum milter_outcome outcome;
    buf_t reply; /* REJECT, TEMPFAIL, SHUTDOWN: the whole SMTP reply, lines separated by "\r\n"
                    ("550 5.7.1 Command rejected" when the milter gave no text) */
    struct milter_mod *mods; /* end of message only */
    size_t mod_count;
};

void milter_result_init(struct milter_result *r);
void milter_result_reset(struct milter_result *r);
void milter_result_free(struct milter_result *r);

/* milter_done_fn - a command finished; r is valid only during the call */
typedef void (*milter_done_fn)(void *arg, struct milter *m, const struct milter_result *r);

/* milter_open - connect to spec's milter and negotiate: offers spec's
 * version, every action, and every step flag tern honours (SMFIP_NO*,
 * SMFIP_NR_*, SMFIP_SKIP, SMFIP_HDR_LEADSPC; not SMFIP_RCPT_REJ nor the
 * larger-macro sizes); flags the milter asks for beyond the offer are
 * masked off and logged, as Postfix does;
 * done gets CONTINUE when the milter is ready, FAILED when it is not.
 * log_id names the session or message in log lines ("client[1.2.3.4]" or a
 * queue ID).  macro/macro_ctx give the macro values for every command. */
struct milter *milter_open(struct event_base *base, const struct milter_spec *spec,
                           const char *log_id, milter_macro_fn macro, void *macro_ctx,
                           milter_done_fn done, void *arg);
/* milter_command - send the macros of stage (names: the milter's own list,
 * else spec's) and the command packet cmd with len bytes of data (built
 * with milter_proto_*: just the data part, without length and command
 * byte), and wait for the answer with the command or content timeout.
 * A step the negotiation says not to send completes with CONTINUE; a step
 * the milter does not answer completes with CONTINUE once written.
 * Modification replies before the final one (end of message) are collected
 * in the result; progress restarts the timer.  A reply that is not allowed
 * after cmd fails the milter.  One command at a time per conversation.
 * stage -1 sends no macros (header lines and body chunks have none). */
void milter_command(struct milter *m, int stage, char cmd, const void *data, size_t len,
                    milter_done_fn done, void *arg);
/* milter_abort - SMFIC_ABORT (end of a transaction that did not reach the
 * end of message, or after it was refused): fire and forget; also clears a
 * transaction-level ACCEPT */
void milter_abort(struct milter *m);
/* milter_close - SMFIC_QUIT (when not failed) and free; any command in
 * progress is dropped without its callback */
void milter_close(struct milter *m);
/* milter_close_silent - free without writing anything (cleanup still owns
 * the conversation, or the other side must finish it) */
void milter_close_silent(struct milter *m);

/* milter_failed / milter_accepted - the milter failed; it accepted the
 * connection (skipped for the session) or the transaction */
int milter_failed(const struct milter *m);
int milter_accepted(const struct milter *m);
/* milter_spec_of - the spec a conversation was opened with */
const struct milter_spec *milter_spec_of(const struct milter *m);
/* milter_agreed - the negotiated version, actions and protocol flags */
const struct milter_proto_agreed *milter_agreed(const struct milter *m);

/* ---- the milters of a list, in order ---- */

struct milter_chain;

/* milter_chain_done_fn - a chain step finished: r->outcome is CONTINUE
 * (every milter agreed, or one accepted or failed with default_action
 * accept or quarantine), or the first refusal (REJECT, TEMPFAIL, DISCARD,
 * SHUTDOWN; a failed milter's tempfail or reject default is given as
 * TEMPFAIL or REJECT with its reply).  r is valid only during the call. */
typedef void (*milter_chain_done_fn)(void *arg, struct milter_chain *c,
                                     const struct milter_result *r);

/* milter_chain_open - open every milter of specs at once; done once all
 * are ready or failed (outcome as above: a failed one's default_action) */
struct milter_chain *milter_chain_open(struct event_base *base, const struct milter_list *specs,
                                       const char *log_id, milter_macro_fn macro, void *macro_ctx,
                                       milter_chain_done_fn done, void *arg);
/* milter_chain_step - milter_command on each milter that has not failed or
 * accepted, in order, stopping at the first refusal; a milter that failed
 * (now or at an earlier step) stands for its default_action at every step,
 * as in Postfix: tempfail/reject stop the chain, quarantine sets
 * milter_chain_quarantine again after an abort, accept goes on */
void milter_chain_step(struct milter_chain *c, int stage, char cmd, const void *data, size_t len,
                       milter_chain_done_fn done, void *arg);
/* milter_chain_abort - milter_abort on each live milter (a new transaction) */
void milter_chain_abort(struct milter_chain *c);
/* milter_chain_close - milter_close each and free (a step in progress is
 * dropped without its callback); milter_chain_close_silent likewise with
 * milter_close_silent */
void milter_chain_close(struct milter_chain *c);
void milter_chain_close_silent(struct milter_chain *c);
/* milter_chain_count / milter_chain_get - the conversations, in order */
size_t milter_chain_count(const struct milter_chain *c);
struct milter *milter_chain_get(struct milter_chain *c, size_t i);
/* milter_chain_quarantine - the reason when a failed milter's
 * default_action is quarantine ("milter NAME unavailable"), else NULL;
 * cleared by milter_chain_abort */
const char *milter_chain_quarantine(const struct milter_chain *c);

/* ---- handing a conversation to cleanup and back ---- */

/* milter_export - stop watching the socket and append the conversation's
 * state (spec settings, negotiated flags, the macro lists in effect) to an
 * attribute message being built: one attribute "milter" per conversation
 * whose value is itself an attribute message (proto "milter.conversation":
 * name, family, path or host, port, default_action, connect_timeout,
 * command_timeout, content_timeout, version, agreed_version,
 * agreed_actions, agreed_protocol, macros_connect .. macros_unknown); returns the socket to
 * pass (the caller still owns it and must not use it until
 * milter_resume).  -1 when the conversation failed or was accepted for the
 * transaction (then nothing is appended: it takes no part in the content). */
int milter_export(struct milter *m, buf_t *attrs);
/* milter_resume - cleanup is done with the socket: watch it again.  failed
 * = cleanup saw the milter fail (it logged it): the conversation is failed. */
void milter_resume(struct milter *m, int failed);
/* milter_import_count - how many conversations a decoded message carries */
size_t milter_import_count(const struct attr_msg *msg);
/* milter_import - the k-th exported conversation of msg, on fd (taken
 * over: closed by milter_close*); NULL when the attributes are malformed
 * (fd closed) */
struct milter *milter_import(struct event_base *base, const struct attr_msg *msg, size_t k, int fd,
                             const char *log_id, milter_macro_fn macro, void *macro_ctx);

/* ---- what an answer means ---- */

/* milter_failure_verdict - the outcome a failed milter stands for under
 * its default_action (TEMPFAIL, ACCEPT, REJECT, or CONTINUE for quarantine
 * with *quarantine set) and its reply in r (Postfix's texts: "451 4.7.1
 * Service unavailable - try again later", "550 5.7.1 Command rejected") */
void milter_failure_verdict(const struct milter_spec *spec, struct milter_result *r,
                            int *quarantine);

/* milter_fd_send / milter_fd_recv - send n (at most MILTER_MAX) file
 * descriptors with one byte over a UNIX stream socket, and receive them:
 * the first byte of a cleanup connection that carries milters is
 * MILTER_FD_MARK (an attribute message starts with 0x00).  recv: returns
 * the byte read (fds filled, *n set; descriptors that come with another
 * byte are closed) or -1; EAGAIN when nothing is there, ECONNRESET at end
 * of file, EMSGSIZE when more than MILTER_MAX came (all closed). */
#define MILTER_MAX 16
#define MILTER_FD_MARK 'M'
int milter_fd_send(int sock, const int *fds, size_t n);
int milter_fd_recv(int sock, int *fds, size_t *n);

#endif
