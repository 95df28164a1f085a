/*
 * qmgr - shared state of tern-qmgr, the queue manager (one process).
 *
 * qmgr takes complete queue files from incoming/ (and due ones from
 * deferred/H/) into active/, keeps them in memory as struct qmgr_message,
 * splits each message's pending recipients into delivery requests by next
 * hop, and hands the requests to the smtp service (private/smtp), at most
 * default_destination_concurrency_limit per next hop and qmgr_delivery_limit
 * in total; waiting requests sit in per-destination FIFO queues served
 * round-robin.  When every request of a message has finished, the message is
 * removed, expired or deferred (docs/queue.md).
 *
 * Modules: main.c (start-up, the private/qmgr and public/qmgr sockets,
 * timers, drain), scan.c (directory scans and moves), message.c (loading,
 * routing, the end of a message), dispatch.c (destinations, requests, the
 * smtp protocol), notice.c (which delivery status notifications a message
 * owes and recording them), bounce.c (composing them, docs/bounces.md),
 * submit.c (the non-blocking cleanup client that queues them and requeued
 * messages), control.c (qmgr.control and qmgr.flush: delete, hold,
 * release, requeue, flush), run.c (qmgr.flush wait=yes: a queue run a
 * client waits for, sendmail -q [-v]).
 * Everything runs on one libevent loop; nothing blocks except local file I/O.
 */
#ifndef TERN_QMGR_H
#define TERN_QMGR_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>
#include "buf.h"
#include "loadavg.h"
#include "qfile.h"
#include "qid.h"

struct event;
struct event_base;
struct qmgr_route_wait;
struct evconnlistener;
struct bufferevent;
struct service;
struct attr_msg;
struct qmgr;
struct route;
struct etrn_index;
struct qmgr_etrn_build;

/* messages held in memory at once; the rest waits in incoming/ or deferred/
 * (overridable at build time only so that a test can reach the bound) */
#ifndef QMGR_ACTIVE_LIMIT
#define QMGR_ACTIVE_LIMIT 10000
#endif
/* safety-net scan of incoming/ when no trigger arrives */
#define QMGR_INCOMING_SCAN_SECONDS 5
/* longest a delivery request may stay unanswered before it counts as failed */
#define QMGR_AGENT_TIMEOUT_SECONDS 3600
/* clients of private/qmgr served at once, and their idle timeout */
#define QMGR_CLIENT_LIMIT 256
/* clients of public/qmgr served at once (any local user may connect; each
 * `sendmail -q` holds one for its whole run): kept well under
 * QMGR_CLIENT_LIMIT so that private/qmgr (cleanup's trigger, `tern`
 * control requests) never runs short */
#define QMGR_PUBLIC_CLIENT_LIMIT 32
/* output queued for one client; a client that lets more pile up (it stopped
 * reading) is dropped */
#define QMGR_CLIENT_OUTPUT_MAX (4 * 1024 * 1024)
#define QMGR_CLIENT_TIMEOUT_SECONDS 30
/* longest deferral reason kept (bytes); longer ones are cut */
#define QMGR_REASON_MAX 1000

/* longest a cleanup submission (notice, requeue) may take */
#define QMGR_SUBMIT_TIMEOUT_SECONDS 60
/* largest bounce_template_file read */
#define QMGR_TEMPLATE_MAX (64 * 1024)

/* ETRN requests remembered for etrn_min_interval (etrn.c) */
#define QMGR_ETRN_RECENT 64

#define QMGR_AGENT_FAILED_REASON "delivery temporarily suspended: delivery agent failed"

/* per recipient of a message in memory */
struct qmgr_rcpt_state {
    struct qmgr_request *req; /* request carrying it, until its result is known */
    char *reason;             /* last deferral, bounce or delivery reason (malloc), or NULL */
    char dsn[16];             /* its status code */
    int relayed;              /* delivered by smtp (success notice says "relayed") */
    int in_notice;            /* covered by the notice being submitted */
};

/* what the administrator asked for a message in memory (control.c) */
enum qmgr_action { QMGR_ACTION_NONE, QMGR_ACTION_DELETE, QMGR_ACTION_HOLD, QMGR_ACTION_REQUEUE };

/* the notices a message may owe, in the order they are sent (notice.c) */
enum qmgr_notice_kind {
    QMGR_NOTICE_FAILURE,
    QMGR_NOTICE_SUCCESS,
    QMGR_NOTICE_DELAY,
    QMGR_NOTICE_DONE
};

struct qmgr_message {
    char id[QID_LEN + 1];
    struct qfile_msg qf;
    struct qmgr_rcpt_state *rcpt; /* qf.rcpt_count entries */
    size_t requests_open;         /* queued or in flight */
    enum qmgr_action action;      /* applied once no request is open */
    int finishing;                /* notices / requeue are being submitted */
    enum qmgr_notice_kind notice_step;
    struct qmgr_run **runs; /* the queue runs clients wait for that count it (run.c) */
    size_t run_count;
    buf_t run_text; /* what those clients are told about this message */
    /* a routing pass parked until remote tables answer (message.c), else NULL */
    struct qmgr_route_wait *routing;
    struct qmgr_message *prev, *next;
};

/* one cleanup submission in progress (submit.c) */
typedef void (*qmgr_submit_done_fn)(struct qmgr *qm, void *ctx, int ok, const char *queue_id,
                                    const char *why);
struct qmgr_submit {
    struct qmgr *qm;
    struct bufferevent *bev;
    qmgr_submit_done_fn done;
    void *ctx;
    struct qmgr_submit *prev, *next;
};

/* bounce texts: built in, or from bounce_template_file */
struct qmgr_template {
    char *subject;
    char *text;
};

struct qmgr_request {
    struct qmgr *qm;
    struct qmgr_message *msg;
    struct qmgr_dest *dest;
    size_t *index; /* positions in msg->qf.rcpts */
    size_t count;
    size_t cap;
    struct qmgr_request *next; /* FIFO of the destination */
    struct bufferevent *bev;   /* connection to smtp while in flight */
    int started;               /* taken from the FIFO */
};

struct qmgr_dest {
    char *nexthop;
    size_t inflight;
    struct qmgr_request *head, *tail;
    struct qmgr_dest *hash_next;
    struct qmgr_dest *ready_prev, *ready_next; /* ring of destinations with work */
    int ready;
};

/* an ETRN request that moved messages, and when (etrn.c) */
struct qmgr_etrn_recent {
    char key[256]; /* "domain" or "@domain" */
    time_t at;
};

struct qmgr {
    struct service *svc;
    struct event_base *base;
    /* parameters */
    struct route *route; /* transport_maps and the address classes (lib/route.h) */
    long long min_backoff;
    long long max_backoff;
    long long lifetime;
    long long run_delay;
    size_t dest_limit;
    size_t total_limit;
    size_t rcpt_limit;
    long long delay_warning;
    int bounce_plain;
    const char *myhostname;
    const char *bounce_notice_recipient; /* 2bounce_notice_recipient */
    const char *double_bounce_sender;    /* qualified */
    int restrict_queue_run;              /* restrict_queue_run or the restrictqrun privacy flag */
    int restrict_queue_listing; /* restrict_queue_listing or restrictmailq: run IDs and texts */
    int no_body_return;         /* the nobodyreturn privacy flag: notices carry headers only */
    /* queue_defer_load (scan.c) */
    struct loadavg_source load;
    double defer_load; /* 0 = off */
    int load_deferring;
    time_t load_logged;
    uid_t owner_uid;                   /* mail_owner, may flush when restrict_queue_run */
    struct qmgr_template templates[3]; /* failure, delay, success */
    /* cleanup submissions in progress */
    struct qmgr_submit *submits;
    size_t submit_count;
    /* messages */
    struct qmgr_message *messages;
    size_t active_count;
    char **recover_ids; /* active/ files found at start, not loaded yet */
    size_t recover_count;
    size_t recover_pos;
    int incoming_again; /* a scan stopped for lack of room */
    int deferred_again;
    int flush_again;
    /* destinations and requests */
    struct qmgr_dest **dest_hash;
    size_t dest_buckets;
    struct qmgr_dest *ready_cursor;
    size_t ready_count;
    size_t inflight;
    /* events */
    int draining;
    struct qmgr_run *settling; /* queue runs waiting for maildrop/ (run.c) */
    struct evconnlistener *listener;
    struct evconnlistener *public_listener; /* public/qmgr, or NULL */
    size_t client_count;                    /* of private/qmgr */
    size_t public_client_count;             /* of public/qmgr */
    struct event *dispatch_ev;
    struct event *incoming_ev;
    struct event *deferred_ev;
    struct event *incoming_timer;
    struct event *deferred_timer;
    /* ETRN (etrn.c): the per-domain index of deferred/ and recent requests */
    struct etrn_index *etrn;
    struct qmgr_etrn_build *etrn_build; /* while it is built; NULL once complete */
    long long etrn_build_rate;          /* etrn_index_build_rate */
    long long etrn_interval;            /* etrn_min_interval */
    struct qmgr_etrn_recent etrn_recent[QMGR_ETRN_RECENT];
};

/* main.c */
/* qmgr_check_drained - when draining and nothing is in flight, stop */
void qmgr_check_drained(struct qmgr *qm);

/* scan.c */
/* qmgr_recover_list - remember every file left in active/ by a crash */
void qmgr_recover_list(struct qmgr *qm);
/* qmgr_recover_free - forget the recovery backlog (exit) */
void qmgr_recover_free(struct qmgr *qm);
/* qmgr_scan_incoming - load the recovery backlog, then incoming/, while room */
void qmgr_scan_incoming(struct qmgr *qm);
/* qmgr_scan_deferred - take due deferred files (all of them when force);
 * returns how many were taken */
size_t qmgr_scan_deferred(struct qmgr *qm, int force);
/* qmgr_scan_deferred_walk - fn(qm, path, id, ctx) for every queue file of
 * deferred/0..f/ (no order), until fn returns 0 */
typedef int (*qmgr_deferred_fn)(struct qmgr *qm, const char *path, const char *id, void *ctx);
void qmgr_scan_deferred_walk(struct qmgr *qm, qmgr_deferred_fn fn, void *ctx);
/* qmgr_scan_take - rename FROM to active/ID without replacing; 0 ok */
int qmgr_scan_take(const char *from, const char *id);
/* qmgr_room_freed - restart scans that stopped for lack of room */
void qmgr_room_freed(struct qmgr *qm);
/* qmgr_has_room - 1 when another message may be taken on */
int qmgr_has_room(const struct qmgr *qm);
/* qmgr_mkdir_hash - create TOP/H if missing; 0 ok, -1 error */
int qmgr_mkdir_hash(const char *top, char hash);

/* message.c */
/* qmgr_message_load - read active/ID, route it; 0 taken on, -1 not */
int qmgr_message_load(struct qmgr *qm, const char *id);
/* qmgr_message_finish - the last request ended: remove, expire or defer */
void qmgr_message_finish(struct qmgr *qm, struct qmgr_message *m);
/* qmgr_rcpt_set_deferred - remember a deferral reason for recipient i */
void qmgr_rcpt_set_deferred(struct qmgr_message *m, size_t i, const char *dsn, const char *reason);
/* qmgr_log_rcpt - the status=WORD (deferred, bounced, sent) line for
 * recipient i with its reason */
void qmgr_log_rcpt(const struct qmgr_message *m, size_t i, const char *relay, const char *word);
/* qmgr_log_deferred - the status=deferred line for recipient i */
void qmgr_log_deferred(const struct qmgr_message *m, size_t i, const char *relay);
/* qmgr_message_free_all - release every message (exit) */
void qmgr_message_free_all(struct qmgr *qm);
/* qmgr_message_find - the message in memory with this ID, or NULL */
struct qmgr_message *qmgr_message_find(struct qmgr *qm, const char *id);
/* qmgr_message_read_content - append the content of active/ID to out; 0/-1 */
int qmgr_message_read_content(const struct qmgr_message *m, buf_t *out);
/* qmgr_message_load_only - read active/ID into memory without routing it
 * (control.c: requeue); NULL when unreadable */
struct qmgr_message *qmgr_message_load_only(struct qmgr *qm, const char *id);
/* qmgr_message_dispose - notices done: apply the action, remove, or defer */
void qmgr_message_dispose(struct qmgr *qm, struct qmgr_message *m);
/* qmgr_message_requeued - the requeue submission ended (ok: new_id queued):
 * remove the old file, or defer it; frees m */
void qmgr_message_requeued(struct qmgr *qm, struct qmgr_message *m, int ok, const char *new_id);
/* qmgr_message_arrival - when m arrived, seconds since the epoch */
double qmgr_message_arrival(const struct qmgr_message *m);
/* qmgr_message_delay - seconds since arrival as "0.4" */
void qmgr_message_delay(const struct qmgr_message *m, double now, buf_t *out);
/* qmgr_message_path - "DIR/ID" or "DIR/H/ID" into out */
void qmgr_message_path(buf_t *out, const char *dir, const char *id, int hashed);
/* qmgr_message_set_status - record a recipient status in the file (opened
 * lazily into *fd) and in memory */
void qmgr_message_set_status(struct qmgr_message *m, size_t i, char status, int *fd);

/* notice.c */
/* qmgr_notice_start - the message's requests have ended: send the notices
 * it owes one after another, then qmgr_message_dispose */
void qmgr_notice_start(struct qmgr *qm, struct qmgr_message *m);
/* qmgr_notify_has - 1 when the NOTIFY value allows word (absent: FAILURE, DELAY) */
int qmgr_notify_has(const char *notify, const char *word);
/* qmgr_message_smtputf8 - the message came with MAIL ... SMTPUTF8 */
int qmgr_message_smtputf8(const struct qmgr_message *m);
/* qmgr_message_requiretls - the message came with MAIL ... REQUIRETLS */
int qmgr_message_requiretls(const struct qmgr_message *m);
/* qmgr_message_body_type - "8BITMIME" or "BINARYMIME" (RFC 3030) as MAIL
 * BODY= said, passed on to deliveries and notices; NULL for 7-bit or unknown */
const char *qmgr_message_body_type(const struct qmgr_message *m);

/* bounce.c */
/* qmgr_bounce_templates_load - built-in texts, replaced from the file when set */
void qmgr_bounce_templates_load(struct qmgr *qm, const char *path);
/* qmgr_bounce_compose - the content of a notice of kind about the recipients
 * of m marked in_notice, addressed to to; 0 ok, -1 content unreadable */
int qmgr_bounce_compose(struct qmgr *qm, const struct qmgr_message *m, enum qmgr_notice_kind kind,
                        int postmaster, const char *to, buf_t *out);

/* submit.c */
/* qmgr_submit_start - send the cleanup.submit message in submit (attr
 * encoded), content in cleanup.data chunks, then cleanup.end, to
 * private/cleanup without blocking; done is called exactly once, later */
void qmgr_submit_start(struct qmgr *qm, const buf_t *submit, const char *content, size_t len,
                       qmgr_submit_done_fn done, void *ctx);
/* qmgr_submit_free_all - abandon submissions in progress (exit) */
void qmgr_submit_free_all(struct qmgr *qm);
/* qmgr_submit_add_rcpt - the four attributes of one recipient */
void qmgr_submit_add_rcpt(buf_t *out, const char *rcpt, const char *orig, const char *notify,
                          const char *orcpt);

/* control.c */
/* qmgr_control_handle - qmgr.control / qmgr.flush from a client; writes the
 * reply into out; trusted: private/qmgr or an allowed public peer */
void qmgr_control_handle(struct qmgr *qm, const struct attr_msg *am, int trusted, buf_t *out);
/* qmgr_control_requeue - submit m's pending recipients and content to
 * cleanup as a new message; on ok remove m, else defer it (message.c) */
void qmgr_control_requeue(struct qmgr *qm, struct qmgr_message *m);

/* etrn.c */
/* qmgr_etrn_init - start building the ETRN index from deferred/, a slice
 * per event-loop turn (at start; ETRN is answered "building" until done) */
void qmgr_etrn_init(struct qmgr *qm);
/* qmgr_etrn_free - release it (exit) */
void qmgr_etrn_free(struct qmgr *qm);
/* qmgr_etrn_note_deferred - m was just moved to deferred/: index its
 * pending recipients' domains */
void qmgr_etrn_note_deferred(struct qmgr *qm, const struct qmgr_message *m);
/* qmgr_etrn_forget - message id leaves deferred/ (it is being loaded) */
void qmgr_etrn_forget(struct qmgr *qm, const char *id);
/* qmgr_etrn_handle - qmgr.etrn from private/qmgr: the reply into out */
void qmgr_etrn_handle(struct qmgr *qm, const struct attr_msg *am, buf_t *out);

/* run.c */
struct qmgr_run;
struct qselect;
/* qmgr_run_start - qmgr.flush wait=yes [trace=yes] [selector=...] from the
 * client on bev: begins the run (answers on bev later); NULL + err when the
 * request is malformed */
struct qmgr_run *qmgr_run_start(struct qmgr *qm, const struct attr_msg *am, struct bufferevent *bev,
                                int may_list, buf_t *err);
/* qmgr_run_detach - the client went away: stop writing to it */
void qmgr_run_detach(struct qmgr_run *run);
/* qmgr_run_finished - 1 once qmgr.run.done was queued for the client */
int qmgr_run_finished(const struct qmgr_run *run);
/* qmgr_run_claim - a message just loaded joins a settling run it matches */
void qmgr_run_claim(struct qmgr *qm, struct qmgr_message *m);
/* qmgr_run_traced - 1 when m's delivery requests must carry trace=yes */
int qmgr_run_traced(const struct qmgr_message *m);
/* qmgr_run_note_result - remember a TRANSPORT.result for m's run */
void qmgr_run_note_result(struct qmgr_message *m, const struct attr_msg *am);
/* qmgr_run_message_gone - m leaves memory: its attempt is over */
void qmgr_run_message_gone(struct qmgr_message *m);
/* qmgr_run_take_deferred - load every deferred message sel matches, due
 * or not, while there is room; returns how many */
size_t qmgr_run_take_deferred(struct qmgr *qm, const struct qselect *sel);
/* qmgr_run_qf_matches - does a queue file's content match sel? */
int qmgr_run_qf_matches(const struct qfile_msg *qf, const char *id, const struct qselect *sel);

/* dispatch.c */
/* qmgr_dest_init - make the destination table */
void qmgr_dest_init(struct qmgr *qm);
/* qmgr_dest_free_all - release destinations and waiting requests (exit) */
void qmgr_dest_free_all(struct qmgr *qm);
/* qmgr_request_add_rcpt - queue recipient i of m for nexthop */
void qmgr_request_add_rcpt(struct qmgr *qm, struct qmgr_message *m, size_t i, const char *nexthop);
/* qmgr_dispatch_kick - run the dispatcher soon (from the event loop) */
void qmgr_dispatch_kick(struct qmgr *qm);
/* qmgr_dispatch - start waiting requests while the limits allow */
void qmgr_dispatch(struct qmgr *qm);
/* qmgr_request_cancel_waiting - drop m's requests not started yet; the
 * message finishes when its last request is gone */
void qmgr_request_cancel_waiting(struct qmgr *qm, struct qmgr_message *m);

#endif
