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
 * Modules: main.c (start-up, the private/qmgr socket, timers, drain),
 * scan.c (directory scans and moves), message.c (loading, routing, the end
 * of a message), dispatch.c (destinations, requests, the smtp protocol).
 * Everything runs on one libevent loop; nothing blocks except local file I/O.
 */
#ifndef TERN_QMGR_H
#define TERN_QMGR_H

#include <stddef.h>
#include "qfile.h"
#include "qid.h"

struct event;
struct event_base;
struct evconnlistener;
struct bufferevent;
struct service;

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
#define QMGR_CLIENT_TIMEOUT_SECONDS 30
/* longest deferral reason kept (bytes); longer ones are cut */
#define QMGR_REASON_MAX 1000

#define QMGR_AGENT_FAILED_REASON "delivery temporarily suspended: delivery agent failed"

/* per recipient of a message in memory */
struct qmgr_rcpt_state {
    struct qmgr_request *req; /* request carrying it, until its result is known */
    char *reason;             /* last deferral reason (malloc), or NULL */
    char dsn[16];             /* last deferral status code */
};

struct qmgr_message {
    char id[QID_LEN + 1];
    struct qfile_msg qf;
    struct qmgr_rcpt_state *rcpt; /* qf.rcpt_count entries */
    size_t requests_open;         /* queued or in flight */
    struct qmgr_message *prev, *next;
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
};

struct qmgr_dest {
    char *nexthop;
    size_t inflight;
    struct qmgr_request *head, *tail;
    struct qmgr_dest *hash_next;
    struct qmgr_dest *ready_prev, *ready_next; /* ring of destinations with work */
    int ready;
};

struct qmgr {
    struct service *svc;
    struct event_base *base;
    /* parameters */
    char *const *mydestination;
    const char *relayhost;
    long long min_backoff;
    long long max_backoff;
    long long lifetime;
    long long run_delay;
    size_t dest_limit;
    size_t total_limit;
    size_t rcpt_limit;
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
    struct evconnlistener *listener;
    size_t client_count;
    struct event *dispatch_ev;
    struct event *incoming_ev;
    struct event *deferred_ev;
    struct event *incoming_timer;
    struct event *deferred_timer;
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
/* qmgr_scan_deferred - take due deferred files (all of them when force) */
void qmgr_scan_deferred(struct qmgr *qm, int force);
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
/* qmgr_log_deferred - the status=deferred line for recipient i */
void qmgr_log_deferred(const struct qmgr_message *m, size_t i, const char *relay);
/* qmgr_message_free_all - release every message (exit) */
void qmgr_message_free_all(struct qmgr *qm);

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

#endif
