/*
 * session - one SMTP session of tern-smtpd: state shared by session.c (I/O,
 * input loop, replies, lifetime), commands.c (one handler per command) and
 * message.c (DATA: streaming the content to cleanup).
 *
 * A session is a state machine driven by libevent callbacks; nothing in it
 * blocks.  It is freed only from a top-level callback (session_on_write or
 * session_on_event), never in the middle of processing: code that wants the
 * session gone calls session_close_after_flush.
 */
#ifndef TERN_SMTPD_SESSION_H
#define TERN_SMTPD_SESSION_H

#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include "bdat_state.h"
#include "buf.h"
#include "proto.h"
#include "smtpd.h"

struct bufferevent;
struct cleanup_stream;
struct dns_pending;
struct policy_cache;
struct smtpd_policy_wait;
struct smtpd_policy_stage;
struct smtpd_milter;
struct smtpd_tables;
struct smtpd_xclient_args;
struct event;

enum session_state {
    SESSION_CMD,          /* reading command lines */
    SESSION_DATA,         /* reading message content after 354 */
    SESSION_WAIT_CLEANUP, /* content complete; waiting for cleanup's answer */
    SESSION_TLS,          /* STARTTLS answered or SMTPS: not reading commands until the
                             handshake is done (tls.c) */
    SESSION_AUTH,         /* AUTH: the next line is the client's response (auth.c) */
    SESSION_AUTH_WAIT,    /* AUTH: waiting for tern-auth's answer; not reading */
    SESSION_POLICY,       /* a restriction waits for DNS, a policy service or a sleep
                             (smtpd_policy.c); not reading */
    SESSION_MILTER,       /* a command waits for the milters' answer (smtpd_milter.c);
                             not reading */
    SESSION_ANVIL_WAIT,   /* MAIL, RCPT, AUTH: waiting for tern-anvil's count; not reading
                             (anvil_client.c) */
    SESSION_TABLES_WAIT,  /* a command waits for a remote table's answer (smtpd_tables.c);
                             not reading */
    SESSION_ETRN_WAIT,    /* ETRN: waiting for tern-qmgr's answer (etrn.c); not reading */
    SESSION_CLOSING       /* last reply being flushed; then free */
};

#define SESSION_NO_CMD (-1)
/* longest address quoted in a log line */
#define ADDR_LOG_MAX 512

struct session {
    struct smtpd_server *server;
    const struct smtpd_config *cfg; /* the listener's */
    struct bufferevent *bev;
    struct sockaddr_storage sa;
    char ip[64];
    char client[320]; /* "name[ip]" for the logs */
    int in_mynetworks;
    int proxied; /* sa and local_sa came from a PROXY header (local_sa: or XCLIENT DESTADDR) */
    struct sockaddr_storage local_sa; /* proxied: where the client connected */

    /* the client's name and the restrictions (smtpd_policy.c) */
    char *client_name;  /* forward-confirmed name, or "unknown" */
    char *reverse_name; /* the PTR name, or "unknown" */
    int name_status;    /* 0 confirmed, 1 none, -1 DNS failed */
    int reverse_status; /* of the PTR alone */
    struct dns_pending *rdns;
    struct bufferevent *ident_bev; /* the identd lookup in progress (ident.c) */
    char *ident_user;              /* what the client's identd said, or NULL */
    struct policy_cache *policy_cache;
    struct smtpd_policy_wait *policy_waits;
    struct smtpd_policy_stage *policy_stage; /* the stage being evaluated */
    enum session_state policy_resume_state;  /* the state to go back to */
    buf_t client_verdict;                    /* smtpd_delay_reject = no: the client's refusal */
    int pipelined; /* the client pipelined without PIPELINING, or behind DATA */
    /* the side effects (DISCARD, HOLD, PREPEND, REDIRECT) of the client and
     * HELO verdicts given at connect and HELO (smtpd_delay_reject = no):
     * they apply to every transaction of the session */
    int conn_discard;
    int conn_hold;
    buf_t conn_hold_reason;
    buf_t conn_prepend;
    buf_t conn_redirect;
    /* the transaction's side effects (DISCARD, HOLD, PREPEND, REDIRECT) */
    int tx_discard;
    int tx_hold;
    buf_t tx_hold_reason;
    buf_t tx_prepend;
    buf_t tx_redirect;
    enum session_state state;

    /* HELO/EHLO */
    buf_t helo;
    int seen_helo;
    int esmtp;

    /* the transaction */
    int have_mail;
    struct proto_mail mail;
    struct proto_rcpt rcpt; /* scratch for the RCPT being parsed */
    buf_t rcpts;            /* accepted recipients as attributes for cleanup */
    long long rcpt_count;

    /* input */
    buf_t line;
    int discarding; /* inside a command line that is too long (2: BDAT) */

    /* accounting */
    long long errors;
    const char *stage; /* "CONNECT", "EHLO", ...: for "timeout after X" */
    int cur_cmd;       /* command whose reply is pending, or SESSION_NO_CMD */
    unsigned cmd_total[PROTO_CMD_COUNT];
    unsigned cmd_ok[PROTO_CMD_COUNT];

    /* DATA */
    struct cleanup_stream *cleanup;
    struct proto_data_decoder decoder;
    buf_t content;       /* decoded content not yet handed to cleanup */
    long long data_size; /* stored bytes so far */
    int data_too_big;
    int data_bare_rejected;
    buf_t data_reply;       /* final reply known before the end of data */
    struct bdat_state bdat; /* CHUNKING (bdat.c): its chunks are read in SESSION_DATA */
    int flow_paused;        /* not reading: cleanup's output buffer is full */
    int output_paused;      /* not reading: the client does not read its replies */

    /* TLS (tls.c) */
    int tls_starting;          /* STARTTLS's 220 queued: start TLS once it is flushed */
    int tls_handshake;         /* the handshake runs */
    int tls_active;            /* the handshake completed */
    buf_t tls_info;            /* "version=... cipher=... bits=... verify=..." */
    char tls_ccert_fp[3 * 64]; /* SHA-256 fingerprint of the client certificate, or "" */
    int tls_ccert_verified;    /* it verified against smtpd_tls_CAfile/CApath and the CRL */

    /* the greeting waits until every hold is released (session_greet_hold):
     * reverse DNS, the anvil's connection verdict, the greet pause */
    int greet_holds;
    int greeted;   /* the 220 (or the refusal) was sent */
    buf_t refusal; /* SMTPS: session_refuse's reply, sent once TLS is up */

    /* smtpd_milters (smtpd_milter.c): NULL when the listener has none */
    struct smtpd_milter *milter;

    /* connection and rate limits (anvil_client.c), else NULL */
    void *anvil_state;

    /* an ETRN waiting for its restrictions or tern-qmgr (etrn.c), else NULL */
    void *etrn_state;

    /* the remote tables' lookup scope (smtpd_tables.c), else NULL */
    struct smtpd_tables *tables;

    /* AUTH (auth.c) */
    char *sasl_method;   /* the mechanism of a successful AUTH, else NULL */
    char *sasl_username; /* the login (printable), else NULL */
    void *auth_state;    /* an exchange in progress (auth.c), else NULL */

    /* the greet pause (greet.c) */
    struct event *greet_timer; /* the pause runs, else NULL */
    time_t greet_started;      /* when it began */
    int greet_rejecting;       /* the client talked first: 554, nothing it sends is done */

    /* XFORWARD's attributes for the transaction (xclient.c), else NULL */
    struct smtpd_xclient_args *xforward;
};

/* session_reply - send one reply line (CRLF added); counts errors and may
 * end the session with 421 when smtpd_hard_error_limit is reached */
void session_reply(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* session_close_after_flush - stop reading, free once the output is sent */
void session_close_after_flush(struct session *s);
/* session_reset_transaction - forget MAIL, RCPTs and any DATA state */
void session_reset_transaction(struct session *s);
/* session_set_read_timeout - smtpd_timeout or smtpd_data_timeout */
void session_set_read_timeout(struct session *s, long long seconds);
/* session_pause_input / session_resume_input - stop or restart reading the
 * client; resume also processes what is already buffered */
void session_pause_input(struct session *s);
void session_resume_input(struct session *s);
/* session_enable_input - read again without processing now (not while the
 * client's unread replies pile up) */
void session_enable_input(struct session *s);
/* session_log_reject - "NOQUEUE: reject: STAGE from name[ip]: reply; ..." */
void session_log_reject(struct session *s, const char *stage, const char *reply, const char *to);
/* session_log_reject_by - the same, naming the restriction that decided */
void session_log_reject_by(struct session *s, const char *stage, const char *reply, const char *to,
                           const char *policy_log);
/* session_log_event - the same line with another kind ("warn",
 * "reject_warning": kind_len bytes of kind) */
void session_log_event(struct session *s, int kind_len, const char *kind, const char *stage,
                       const char *text, const char *to);
/* session_protocol - "SMTP", or "ESMTP" after EHLO with RFC 3848's S (TLS)
 * and A (authenticated) suffixes */
const char *session_protocol(const struct session *s);
/* session_greet - the 220 greeting, as soon as no hold is left (SMTPS:
 * after the handshake) */
void session_greet(struct session *s);
/* session_greet_hold / session_greet_release - something must be known
 * before the greeting (reverse DNS, the connection limits, the greet
 * pause); the last release sends it */
void session_greet_hold(struct session *s);
void session_greet_release(struct session *s);
/* session_refuse - the session must not go on: reply (a 421 or 554 line)
 * is sent instead of the greeting (or at once after it; SMTPS: once the
 * handshake is done) and the session closes */
void session_refuse(struct session *s, const char *reply);
/* session_attach_bev - set callbacks, limits and timeouts on s->bev (a new
 * one after STARTTLS) and start reading and writing */
void session_attach_bev(struct session *s);
/* session_local_address - the address the client connected to (behind a
 * proxy: the PROXY header's destination); 0, or -1 when unknown */
int session_local_address(const struct session *s, struct sockaddr_storage *local);
/* session_auth_forget - drop the authenticated identity and any exchange
 * (after the TLS handshake, at the end) */
void session_auth_forget(struct session *s);

/* commands.c: session_command - handle one command line (no CR/LF) */
void session_command(struct session *s, const char *line, size_t len);
/* session_command_run - run a command that session_command held back
 * (already counted and checked; anvil_client.c) */
void session_command_run(struct session *s, const char *line, size_t len);

/* message.c */
/* message_start - DATA accepted: connect to cleanup, send the envelope, 354 */
void message_start(struct session *s);
/* message_open - connect to cleanup and send the envelope, no reply; -1
 * when cleanup is unreachable */
int message_open(struct session *s);
/* message_content_added - added bytes were appended to s->content: count,
 * check the limits, hand full pieces to cleanup */
void message_content_added(struct session *s, size_t added);
/* message_end - the content is complete: the final reply now, or once the
 * end-of-data restrictions and cleanup have answered */
void message_end(struct session *s);
/* message_input - feed content bytes; returns bytes consumed */
size_t message_input(struct session *s, const char *data, size_t len);
/* message_flush - hand decoded content to cleanup (all, or whole 64 KiB
 * pieces only) */
void message_flush(struct session *s, int all);
/* message_discard - drop the cleanup stream and DATA state */
void message_discard(struct session *s);

/* bdat.c */
/* smtpd_bdat_command - BDAT <size> [LAST]: its chunk follows */
void smtpd_bdat_command(struct session *s, const char *arg);
/* smtpd_bdat_refuse - the one way to refuse a BDAT line before
 * smtpd_bdat_command (STARTTLS required, an early talker, no EHLO): its
 * chunk is read and dropped, then refusal is sent; a syntax error (the
 * chunk's end is unknown) or too many dropped octets close the session */
void smtpd_bdat_refuse(struct session *s, const char *arg, const char *refusal);
/* smtpd_bdat_unreadable - a BDAT line with a NUL or over smtpd_line_limit:
 * its size is unknown, so 421 and close */
void smtpd_bdat_unreadable(struct session *s);
/* smtpd_bdat_input - octets of the chunk being read (message_input);
 * returns the octets taken */
size_t smtpd_bdat_input(struct session *s, const char *data, size_t len);
/* smtpd_bdat_data_refusal - the 503 reply when DATA may not be used (a BDAT
 * transaction is open, BODY=BINARYMIME), else NULL */
const char *smtpd_bdat_data_refusal(const struct session *s);

#endif
