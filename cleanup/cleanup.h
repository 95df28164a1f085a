/*
 * cleanup - internal interfaces of the cleanup service.
 *
 * cleanup turns one cleanup.submit request plus its content stream into a
 * durable queue file (docs/internals.md, "cleanup protocol").  main.c owns the
 * connections and the commit batching; message.c owns one message: queue file
 * creation, header fix-ups, content writing.
 */
#ifndef TERN_CLEANUP_H
#define TERN_CLEANUP_H

#include <stddef.h>
#include <time.h>

#include "attr.h"
#include "buf.h"
#include "qfile.h"
#include "qid.h"

struct config;

struct route;
struct table_proxy_scope;
struct netaddr_net;

/* settings read once at start */
struct cleanup_settings {
    const char *myhostname;
    const char *myorigin;
    struct route *route; /* canonical, masquerade, virtual (lib/route.h); NULL: none */
    /* local_header_rewrite_clients: whose header addresses are rewritten */
    int header_rewrite_all;
    struct netaddr_net *header_nets; /* networks named, and mynetworks when permitted */
    size_t header_net_count;
    long long hopcount_limit;
    long long header_size_limit;
    long long message_size_limit;
};

/* where recipients are written: a queue file, the recipients already in
 * it (for dropping duplicates) and how many R records that made */
struct cleanup_rcpt_sink {
    struct qfile_writer *w;
    struct cleanup_seen *seen; /* NULL: none yet */
    size_t count;
};

enum cleanup_status { CLEANUP_OK, CLEANUP_TEMPFAIL, CLEANUP_PERMFAIL };

enum cleanup_phase { CLEANUP_HEADERS, CLEANUP_BODY };

struct cleanup_msg {
    const struct cleanup_settings *set;
    char queue_id[QID_LEN + 1];
    buf_t tmp_path;   /* incoming/.tmp.ID */
    buf_t final_path; /* incoming/ID */
    int fd;
    struct qfile_writer w;
    enum cleanup_phase phase;
    buf_t headers; /* header section collected so far */
    size_t received_count;
    int have_message_id;
    int have_date;
    buf_t message_id;
    /* envelope details needed for the Received: header and the log */
    buf_t sender;
    buf_t helo;
    buf_t client_name;
    buf_t client_addr;
    buf_t protocol;
    buf_t listener;      /* the smtpd listener ("submission"), "" for local mail */
    buf_t tls;           /* "version=TLSv1.3 cipher=... bits=256/256 verify=NO" or "" */
    buf_t sasl_method;   /* AUTH mechanism, "" when not authenticated */
    buf_t sasl_username; /* the authenticated login */
    int sasl_header;     /* name sasl_username in Received: */
    buf_t only_rcpt;     /* the recipient when there is exactly one */
    /* local submissions (pickup): the Received: form, From:, the -f warning */
    buf_t local_user;
    buf_t full_name;
    buf_t sender_warning; /* "" or the address set with -f by an untrusted user */
    buf_t hold;           /* smtpd's HOLD / QUARANTINE reason: the file goes to hold/ */
    buf_t ident;          /* the client's identd user (smtpd_ident_lookup), or "" */
    buf_t prepend;        /* smtpd's PREPEND header lines ("Name: value\n" each) */
    int have_from;
    int requiretls;      /* MAIL ... REQUIRETLS (RFC 8689): TLS-Required: is ignored */
    int tls_required_no; /* a "TLS-Required: No" header field (RFC 8689 section 3) */
    int rewrite_headers; /* local_header_rewrite_clients allows it */
    /* remote tables (lib/table_proxy.h): the owner's scope (NULL: lookups
     * block), and a header section whose rewriting waits for its answers */
    struct table_proxy_scope *scope;
    int tables_wait;
    int tables_eof;                 /* the section ended at the end of the data */
    struct cleanup_rcpt_sink rcpts; /* into w */
    size_t input_rcpts;             /* recipients the client gave */
    size_t content_bytes;
    time_t arrival;
    int finished;            /* cleanup_msg_finish ran */
    const char *fail_reason; /* cleanup_msg_begin_failed: every recipient's reason */
    /* outcome */
    enum cleanup_status status;
    buf_t code, dsn, text;
    /* the milters' verdict (milter.c): a refusal's whole reply, a SHUTDOWN,
     * a DISCARD, and which imported conversations failed (bit k: the k-th) */
    buf_t milter_reply;
    int milter_shutdown;
    int milter_discarded;
    unsigned milter_failed;
};

/* cleanup_msg_begin - validate the submit request, create the queue file
 * and write the envelope; on failure the outcome fields say why */
int cleanup_msg_begin(struct cleanup_msg *m, const struct cleanup_settings *set,
                      const struct attr_msg *req);
/* cleanup_msg_begin_failed - the same with every recipient written as
 * failed (status F) for reason "D.S.N text": a bounce follows from qmgr */
int cleanup_msg_begin_failed(struct cleanup_msg *m, const struct cleanup_settings *set,
                             const struct attr_msg *req, const char *reason);
/* cleanup_msg_lookups - the dry pass of cleanup_msg_begin: the same route
 * calls (sender, every recipient) into throwaway results, nothing written;
 * run inside a proxy scope it asks what cleanup_msg_begin will need, so
 * that begin (run in the scope once it is not pending) never waits */
void cleanup_msg_lookups(const struct cleanup_settings *set, const struct attr_msg *req);
/* cleanup_msg_rcpt_lookups - the dry pass of one recipient's rewriting and
 * expansion (cleanup_rcpt_expand), results thrown away */
void cleanup_msg_rcpt_lookups(const struct cleanup_settings *set, const char *addr);
/* cleanup_msg_header_lookups - the dry pass of the header rewriting of a
 * message whose content starts with data[0, len), in scope; nothing is
 * written (pickup: before its message begins) */
void cleanup_msg_header_lookups(const struct cleanup_settings *set, struct table_proxy_scope *scope,
                                const char *data, size_t len);
/* cleanup_msg_tables_answered - the answers m->tables_wait waited for are
 * in: the header section is rewritten and written (or waits again) */
void cleanup_msg_tables_answered(struct cleanup_msg *m);
/* cleanup_msg_end_of_data - the data ended: a header section still open
 * ends here (it may set m->tables_wait, as cleanup_msg_data) */
void cleanup_msg_end_of_data(struct cleanup_msg *m);
/* cleanup_msg_data - take some content bytes.  With m->scope set, the end
 * of the header section first runs the header rewriting into a throwaway
 * output: when that waits for an answer, m->tables_wait is set and the
 * owner feeds nothing more until cleanup_msg_tables_answered */
void cleanup_msg_data(struct cleanup_msg *m, const char *data, size_t len);
/* cleanup_msg_finish - flush headers, write the end record (not yet
 * durable); 0 ok, -1 failed (outcome set, temp file removed) */
int cleanup_msg_finish(struct cleanup_msg *m);
/* cleanup_msg_sync - fsync the file; 0 ok, -1 failed (outcome set, temp
 * file removed).  main.c covers a batch with one syncfs instead. */
int cleanup_msg_sync(struct cleanup_msg *m);
/* cleanup_msg_publish - rename into incoming/ (the caller fsyncs the dir) */
/* cleanup_msg_hold - publish the message into hold/ (smtpd's HOLD) */
void cleanup_msg_hold(struct cleanup_msg *m, const char *reason);
int cleanup_msg_publish(struct cleanup_msg *m);
/* cleanup_msg_discard - remove the temp file and free everything */
void cleanup_msg_discard(struct cleanup_msg *m);
/* cleanup_msg_free - free memory (the files are left as they are) */
void cleanup_msg_free(struct cleanup_msg *m);
/* cleanup_log_received - the lines of a message now queued: in the postfix
 * format "QID: first" and "QID: message-id=..." before the from= line, in the
 * others only the from= event, which carries them; ev holds what the caller
 * knows (client, protocol, user), the rest is filled in from m (main.c) */
struct maillog_received;
void cleanup_log_received(const struct cleanup_msg *m, struct maillog_received *ev,
                          const char *first);
/* cleanup_trigger_qmgr - fire and forget: new mail in incoming/ (main.c) */
void cleanup_trigger_qmgr(void);

/* pickup - maildrop/ to the queue (pickup.c).  pickup_start serves the
 * public/pickup socket fd (any connection = scan now), scans at start and
 * every minute; pickup_stop stops it (drain). */
struct service;
void pickup_start(struct service *svc, int fd, const struct cleanup_settings *set);
void pickup_stop(void);

/* cleanup_rcpt_put - one R record into out (reason non-NULL: failed,
 * status F), unless it duplicates an earlier one */
void cleanup_rcpt_put(struct cleanup_rcpt_sink *out, const char *addr, const char *orig,
                      const char *notify, const char *orcpt, const char *reason);
/* cleanup_rcpt_expand - one recipient as the client or a milter gave it
 * into out: qualified, and with m's resolver through the canonical maps
 * and virtual alias expansion (lib/route.h), duplicates dropped, an error:
 * result written failed; canonical gets the address after the canonical
 * maps.  -1 when a table could not answer: m's outcome is that tempfail */
int cleanup_rcpt_expand(struct cleanup_msg *m, struct cleanup_rcpt_sink *out, const char *addr,
                        const char *orig, const char *notify, const char *orcpt, buf_t *canonical);
/* cleanup_rcpt_sink_free - forget the recipients seen (the file stays) */
void cleanup_rcpt_sink_free(struct cleanup_rcpt_sink *out);

/* cleanup_msg_fail - record a failure outcome */
void cleanup_msg_fail(struct cleanup_msg *m, enum cleanup_status st, const char *code,
                      const char *dsn, const char *text);

/* ---- milters (milter.c, milter_model.c) ---- */

/* one header of the section: the name as written and the raw value (all
 * after the colon, folding "\r\n" kept, no final CRLF; NULL for a line
 * without a colon, written back as it was) */
struct cleanup_milter_header {
    char *name;
    char *value;
};

/* the header section of the message as it is queued, in order */
struct cleanup_milter_headers {
    struct cleanup_milter_header *v;
    size_t count, cap;
    int changed; /* a milter changed it */
};

void cleanup_milter_headers_init(struct cleanup_milter_headers *h);
void cleanup_milter_headers_free(struct cleanup_milter_headers *h);
/* cleanup_milter_headers_parse - append the headers of a section (CRLF or
 * LF line ends, folded lines joined to their header) */
void cleanup_milter_headers_parse(struct cleanup_milter_headers *h, const char *data, size_t len);
/* cleanup_milter_headers_write - "name:value\r\n" for each header */
void cleanup_milter_headers_write(const struct cleanup_milter_headers *h, buf_t *out);
/* the changes a milter asks for; value is the milter's ("\n" between
 * lines), leadspc = SMFIP_HDR_LEADSPC was agreed (else one space follows
 * the colon) */
/* cleanup_milter_headers_add - at the end */
void cleanup_milter_headers_add(struct cleanup_milter_headers *h, const char *name,
                                const char *value, int leadspc);
/* cleanup_milter_headers_insert - before the index-th header (0: the
 * first); past the end: at the end */
void cleanup_milter_headers_insert(struct cleanup_milter_headers *h, size_t index, const char *name,
                                   const char *value, int leadspc);
/* cleanup_milter_headers_change - the index-th (from 1; 0 counts as 1)
 * header called name (any case) gets value; "" deletes it; when there is
 * no such occurrence the header is added at the end (as sendmail does) */
void cleanup_milter_headers_change(struct cleanup_milter_headers *h, size_t index, const char *name,
                                   const char *value, int leadspc);
/* cleanup_milter_value_out - a raw value as a milter gets it: "\n" between
 * lines, the one space after the colon dropped unless leadspc */
void cleanup_milter_value_out(const char *raw, int leadspc, buf_t *out);
/* cleanup_milter_value_in - a milter's value as a raw one: "\r\n" between
 * lines (a tab added where a line would not start with white space), a
 * space in front unless leadspc, trailing line ends dropped */
void cleanup_milter_value_in(const char *value, int leadspc, buf_t *out);
/* cleanup_milter_addr_strip - the address without <> and white space */
void cleanup_milter_addr_strip(const char *addr, buf_t *out);
/* cleanup_milter_addr_check - a milter's address (add recipient, change
 * sender) without <> and white space into out: 0 when it is one address an
 * SMTP client could give (at most ADDR_MAX_LENGTH bytes; empty only with
 * empty_ok, for the null sender), -1 otherwise */
int cleanup_milter_addr_check(const char *addr, int empty_ok, buf_t *out);
/* cleanup_milter_addr_match - 1 when both name the same address (<> and
 * case aside) */
int cleanup_milter_addr_match(const char *rcpt, const char *pattern);
/* cleanup_milter_body_crlf - append data to out with bare LF made CRLF */
void cleanup_milter_body_crlf(const char *data, size_t len, buf_t *out);

struct milter;
struct event_base;
struct cleanup_milter_run;

/* cleanup_milter_done_fn - the content phase is over: m's outcome is set */
typedef void (*cleanup_milter_done_fn)(void *arg);

/* cleanup_milter_content - the content phase of m (cleanup_msg_finish
 * done, not yet synced) through milters[0..n) in order: each gets the
 * header section, the body and the end of message, and its changes are
 * applied before the next one runs; the queue file is rewritten only when
 * something changed.  Then done(arg), always from the event loop, with the
 * outcome in m: status ok (m->hold set for a quarantine,
 * m->milter_discarded for a discard: the file is gone) or a refusal
 * (status, code/dsn/text, m->milter_reply, m->milter_shutdown; the file is
 * gone); m->milter_failed names the milters that failed.  The caller keeps
 * the milters and closes them afterwards. */
struct cleanup_milter_run *cleanup_milter_content(struct event_base *base, struct cleanup_msg *m,
                                                  struct milter *const *milters, size_t n,
                                                  cleanup_milter_done_fn done, void *arg);
/* cleanup_milter_cancel - stop a content phase without calling done (a
 * wait for remote answers in m->scope is cancelled by freeing the scope) */
void cleanup_milter_cancel(struct cleanup_milter_run *r);
/* cleanup_milter_split_reply - an SMTP reply's first line as code, dsn
 * (dflt when the reply has none) and text */
void cleanup_milter_split_reply(const char *reply, const char *dflt, buf_t *code, buf_t *dsn,
                                buf_t *text);
/* cleanup_milter_client - "name[addr]" of m's client for log lines */
void cleanup_milter_client(const struct cleanup_msg *m, buf_t *out);

#endif
