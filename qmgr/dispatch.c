/*
 * dispatch - destinations and delivery requests: per-nexthop FIFO queues
 * served round-robin under the per-destination and total concurrency
 * limits, one private/TRANSPORT connection per request (TRANSPORT.deliver: smtp
 * or local), and the TRANSPORT.result that records each outcome (docs/internals.md).
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "buf.h"
#include "log.h"
#include "service.h"
#include "stats.h"
#include "qmgr.h"

#define DEST_BUCKETS 4096

/* dest_hash - FNV-1a of the nexthop */
static size_t dest_hash(const char *s)
{
    size_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % DEST_BUCKETS;
}

/* qmgr_dest_init - make the destination table */
void qmgr_dest_init(struct qmgr *qm)
{
    qm->dest_buckets = DEST_BUCKETS;
    qm->dest_hash = xcalloc(DEST_BUCKETS, sizeof(*qm->dest_hash));
}

/* qmgr_dest_free_all - release destinations and waiting requests (exit) */
void qmgr_dest_free_all(struct qmgr *qm)
{
    size_t h;

    for (h = 0; h < qm->dest_buckets; h++) {
        while (qm->dest_hash[h] != NULL) {
            struct qmgr_dest *d = qm->dest_hash[h];

            while (d->head != NULL) {
                struct qmgr_request *r = d->head;

                d->head = r->next;
                free(r->index);
                free(r);
            }
            qm->dest_hash[h] = d->hash_next;
            free(d->nexthop);
            free(d);
        }
    }
    free(qm->dest_hash);
    qm->dest_hash = NULL;
    qm->ready_cursor = NULL;
    qm->ready_count = 0;
}

/* dest_find - the destination for nexthop, created when missing */
static struct qmgr_dest *dest_find(struct qmgr *qm, const char *nexthop)
{
    size_t h = dest_hash(nexthop);
    struct qmgr_dest *d;

    for (d = qm->dest_hash[h]; d != NULL; d = d->hash_next)
        if (strcmp(d->nexthop, nexthop) == 0)
            return d;
    d = xcalloc(1, sizeof(*d));
    d->nexthop = xstrdup(nexthop);
    d->hash_next = qm->dest_hash[h];
    qm->dest_hash[h] = d;
    return d;
}

/* dest_ready_add - put d in the round-robin ring (before the cursor) */
static void dest_ready_add(struct qmgr *qm, struct qmgr_dest *d)
{
    struct qmgr_dest *c = qm->ready_cursor;

    if (d->ready)
        return;
    if (c == NULL) {
        d->ready_prev = d->ready_next = d;
        qm->ready_cursor = d;
    } else {
        d->ready_next = c;
        d->ready_prev = c->ready_prev;
        c->ready_prev->ready_next = d;
        c->ready_prev = d;
    }
    d->ready = 1;
    qm->ready_count++;
}

/* dest_ready_remove - take d out of the ring */
static void dest_ready_remove(struct qmgr *qm, struct qmgr_dest *d)
{
    if (!d->ready)
        return;
    if (d->ready_next == d) {
        qm->ready_cursor = NULL;
    } else {
        d->ready_prev->ready_next = d->ready_next;
        d->ready_next->ready_prev = d->ready_prev;
        if (qm->ready_cursor == d)
            qm->ready_cursor = d->ready_next;
    }
    d->ready_prev = d->ready_next = NULL;
    d->ready = 0;
    qm->ready_count--;
}

/* dest_release_if_idle - free d when nothing waits or runs for it */
static void dest_release_if_idle(struct qmgr *qm, struct qmgr_dest *d)
{
    struct qmgr_dest **p;

    if (d->head != NULL || d->inflight > 0)
        return;
    dest_ready_remove(qm, d);
    for (p = &qm->dest_hash[dest_hash(d->nexthop)]; *p != NULL; p = &(*p)->hash_next) {
        if (*p == d) {
            *p = d->hash_next;
            break;
        }
    }
    free(d->nexthop);
    free(d);
}

/* request_new - an empty request of m for d, queued at d's tail */
static struct qmgr_request *request_new(struct qmgr *qm, struct qmgr_message *m,
                                        struct qmgr_dest *d)
{
    struct qmgr_request *r = xcalloc(1, sizeof(*r));

    r->qm = qm;
    r->msg = m;
    r->dest = d;
    if (d->tail != NULL)
        d->tail->next = r;
    else
        d->head = r;
    d->tail = r;
    m->requests_open++;
    dest_ready_add(qm, d);
    return r;
}

/* qmgr_request_add_rcpt - queue recipient i of m for nexthop */
void qmgr_request_add_rcpt(struct qmgr *qm, struct qmgr_message *m, size_t i, const char *nexthop)
{
    struct qmgr_dest *d = dest_find(qm, nexthop);
    struct qmgr_request *r = d->tail;

    /* a message is routed in one pass, so its latest request for d is d's tail */
    if (r == NULL || r->msg != m || r->count >= qm->rcpt_limit)
        r = request_new(qm, m, d);
    if (r->count == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 8;
        r->index = xrealloc(r->index, r->cap * sizeof(*r->index));
    }
    r->index[r->count++] = i;
    m->rcpt[i].req = r;
}

/* request_free - release r (it is in no queue any more) */
static void request_free(struct qmgr_request *r)
{
    if (r->bev != NULL)
        bufferevent_free(r->bev);
    free(r->index);
    free(r);
}

/* request_done - r has ended: account for it, maybe finish its message */
static void request_done(struct qmgr *qm, struct qmgr_request *r)
{
    struct qmgr_message *m = r->msg;
    struct qmgr_dest *d = r->dest;

    d->inflight--;
    qm->inflight--;
    request_free(r);
    dest_release_if_idle(qm, d);
    if (--m->requests_open == 0)
        qmgr_message_finish(qm, m);
    qmgr_dispatch_kick(qm);
    qmgr_check_drained(qm);
}

/* request_defer_unanswered - defer recipients of r that got no valid result */
static void request_defer_unanswered(struct qmgr_request *r)
{
    struct qmgr_message *m = r->msg;
    size_t k;

    for (k = 0; k < r->count; k++) {
        size_t i = r->index[k];

        if (m->rcpt[i].req != r)
            continue;
        m->rcpt[i].req = NULL;
        qmgr_rcpt_set_deferred(m, i, "4.3.0", QMGR_AGENT_FAILED_REASON);
        qmgr_log_deferred(m, i, "none");
        stats_count_delivery(r->dest->nexthop, "defer", 0, 0);
    }
}

/* request_end - close r; recipients without a valid result are deferred */
static void request_end(struct qmgr *qm, struct qmgr_request *r)
{
    request_defer_unanswered(r);
    request_done(qm, r);
}

/* result_dsn_ok - "C.S.D" with C matching the status class */
static int result_dsn_ok(const char *dsn, char class)
{
    const char *p = dsn;
    int part, digits;

    if (strlen(dsn) > 11 || dsn[0] != class || dsn[1] != '.')
        return 0;
    for (p = dsn + 2, part = 0; part < 2; part++) {
        for (digits = 0; *p >= '0' && *p <= '9'; p++)
            digits++;
        if (digits < 1 || digits > 3 || *p != (part == 0 ? '.' : 0))
            return 0;
        if (part == 0)
            p++;
    }
    return 1;
}

/* one recipient's outcome as the delivery agent reported it */
struct result_entry {
    const char *index;
    const char *status;
    const char *dsn;
    const char *reason;
    const char *dsn_passed; /* "yes": the next hop took over NOTIFY (smtp) */
};

/* result_rcpt_index - the recipient position e names, or -1 when not in r */
static long long result_rcpt_index(const struct qmgr_request *r, const struct result_entry *e)
{
    char *end;
    long long i;

    if (e->index == NULL || *e->index < '0' || *e->index > '9')
        return -1;
    errno = 0;
    i = strtoll(e->index, &end, 10);
    if (errno || *end || i < 0 || (size_t)i >= r->msg->qf.rcpt_count)
        return -1;
    if (r->msg->rcpt[i].req != r)
        return -1;
    return i;
}

/* result_apply_sent - delivered: S, or N when a success notice is owed
 * (NOTIFY=SUCCESS and nobody downstream took the duty over) */
static void result_apply_sent(struct qmgr_request *r, size_t i, const struct result_entry *e,
                              int *fd)
{
    struct qmgr_message *m = r->msg;
    const char *notify = m->qf.rcpts[i].notify;
    int is_local = strncmp(r->dest->nexthop, "local:", 6) == 0;
    int passed = e->dsn_passed != NULL && strcmp(e->dsn_passed, "yes") == 0;
    const char *reason = e->reason ? e->reason : "";

    if (!qmgr_notify_has(notify, "SUCCESS") || passed) {
        qmgr_message_set_status(m, i, QFILE_RCPT_SENT, fd);
        return;
    }
    qmgr_rcpt_set_deferred(m, i, result_dsn_ok(e->dsn ? e->dsn : "", '2') ? e->dsn : "2.0.0",
                           reason);
    m->rcpt[i].relayed = !(is_local && strncmp(reason, "delivered", 9) == 0);
    qmgr_message_set_status(m, i, QFILE_RCPT_NOTIFY, fd);
}

/* result_apply_entry - act on one recipient's outcome; bad entries ignored */
static void result_apply_entry(struct qmgr_request *r, const struct result_entry *e, int *fd)
{
    struct qmgr_message *m = r->msg;
    long long i = result_rcpt_index(r, e);
    const char *status = e->status ? e->status : "";
    const char *dsn = e->dsn ? e->dsn : "";

    if (i < 0 || e->index == NULL) {
        log_warn("%s: delivery result for an unknown recipient index ignored", m->id);
        return;
    }
    if (strcmp(status, "sent") == 0) {
        result_apply_sent(r, (size_t)i, e, fd);
    } else if (strcmp(status, "bounce") == 0) {
        qmgr_rcpt_set_deferred(m, (size_t)i, result_dsn_ok(dsn, '5') ? dsn : "5.0.0",
                               e->reason ? e->reason : "rejected by the delivery agent");
        qmgr_message_set_status(m, (size_t)i, QFILE_RCPT_FAILED, fd);
    } else if (strcmp(status, "defer") == 0) {
        qmgr_rcpt_set_deferred(m, (size_t)i, result_dsn_ok(dsn, '4') ? dsn : "4.0.0",
                               e->reason ? e->reason : "deferred by the delivery agent");
    } else {
        log_warn("%s: delivery result with bad status for <%s> ignored", m->id,
                 m->qf.rcpts[i].address);
        return;
    }
    stats_count_delivery(r->dest->nexthop, status, m->qf.content_length, qmgr_message_arrival(m));
    m->rcpt[i].req = NULL;
}

/* dest_name - PREFIX + transport + SUFFIX, the transport being the part of
 * the key before ':' ("smtp", "local"): "smtp.deliver", "private/local" */
static void dest_name(const struct qmgr_dest *d, const char *prefix, const char *suffix, char *out,
                      size_t len)
{
    int n = (int)strcspn(d->nexthop, ":");
    snprintf(out, len, "%s%.*s%s", prefix, n, d->nexthop, suffix);
}

/* result_apply - walk index/status/dsn/reason groups; -1 when not a result */
static int result_apply(struct qmgr_request *r, const struct attr_msg *am)
{
    struct result_entry e = {NULL, NULL, NULL, NULL, NULL};
    size_t k;
    int fd = -1;
    char proto[32];

    dest_name(r->dest, "", ".result", proto, sizeof(proto));
    if (strcmp(attr_proto(am), proto) != 0)
        return -1;
    for (k = 1; k < am->count; k++) {
        const struct attr *a = &am->v[k];

        if (strcmp(a->name, "index") == 0) {
            if (e.index != NULL)
                result_apply_entry(r, &e, &fd);
            memset(&e, 0, sizeof(e));
            e.index = a->value;
        } else if (strcmp(a->name, "status") == 0) {
            e.status = a->value;
        } else if (strcmp(a->name, "dsn") == 0) {
            e.dsn = a->value;
        } else if (strcmp(a->name, "reason") == 0) {
            e.reason = a->value;
        } else if (strcmp(a->name, "dsn_passed") == 0) {
            e.dsn_passed = a->value;
        }
    }
    if (e.index != NULL)
        result_apply_entry(r, &e, &fd);
    if (fd >= 0)
        close(fd);
    return 0;
}

/* request_read_cb - wait for the one TRANSPORT.result */
static void request_read_cb(struct bufferevent *bev, void *arg)
{
    struct qmgr_request *r = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in), used = 0;
    struct attr_msg am;
    int rc;

    attr_msg_init(&am);
    rc = attr_decode((const char *)evbuffer_pullup(in, -1), len, &used, &am);
    if (rc == 0) {
        attr_msg_free(&am);
        return;
    }
    if (rc < 0 || result_apply(r, &am) < 0)
        log_warn("%s: malformed reply from the delivery agent", r->msg->id);
    else
        qmgr_run_note_result(r->msg, &am);
    attr_msg_free(&am);
    request_end(r->qm, r);
}

/* request_event_cb - the connection closed or timed out before a result */
static void request_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct qmgr_request *r = arg;

    if (what & BEV_EVENT_CONNECTED)
        return;
    log_warn("%s: delivery agent %s before a result (%s)", r->msg->id,
             (what & BEV_EVENT_TIMEOUT) ? "timed out" : "closed the connection", r->dest->nexthop);
    request_end(r->qm, r);
}

/* request_attr_msg - m's envelope attribute or "" */
static const char *request_attr_msg(const struct qmgr_message *m, const char *name)
{
    const char *v = qfile_msg_attr(&m->qf, name);

    return v ? v : "";
}

/* dest_nexthop - the next hop proper: the part of the key after ':' */
static const char *dest_nexthop(const struct qmgr_dest *d)
{
    const char *colon = strchr(d->nexthop, ':');
    return colon ? colon + 1 : d->nexthop;
}

/* request_encode_tls - REQUIRETLS, TLS-Required: No and the AUTH= mailbox
 * from the queue file (absent in older files: nothing is sent) */
static void request_encode_tls(const struct qmgr_message *m, buf_t *out)
{
    const char *mailbox = request_attr_msg(m, "auth_mailbox");

    if (qmgr_message_requiretls(m))
        attr_add_str(out, "requiretls", "yes");
    else if (strcmp(request_attr_msg(m, "tls_required_no"), "yes") == 0)
        attr_add_str(out, "tls_required_no", "yes");
    if (*mailbox)
        attr_add_str(out, "auth_mailbox", mailbox);
}

/* request_encode - the TRANSPORT.deliver message for r */
static void request_encode(const struct qmgr_request *r, buf_t *out)
{
    const struct qmgr_message *m = r->msg;
    const char *size = qfile_msg_attr(&m->qf, "size");
    char path[QID_LEN + 16];
    size_t k;

    char proto[32];

    snprintf(path, sizeof(path), "active/%s", m->id);
    dest_name(r->dest, "", ".deliver", proto, sizeof(proto));
    attr_begin(out, proto);
    attr_add_str(out, "queue_id", m->id);
    attr_add_str(out, "path", path);
    attr_add_int(out, "content_offset", (long long)m->qf.content_offset);
    attr_add_int(out, "content_length", (long long)m->qf.content_length);
    attr_add_str(out, "sender", m->qf.sender ? m->qf.sender : "");
    attr_add_str(out, "nexthop", dest_nexthop(r->dest));
    attr_add_int(out, "arrival", m->qf.arrival_sec);
    if (size != NULL && *size)
        attr_add_str(out, "size", size);
    else
        attr_add_int(out, "size", (long long)m->qf.content_length);
    attr_add_str(out, "envid", request_attr_msg(m, "envid"));
    attr_add_str(out, "ret", request_attr_msg(m, "ret"));
    if (qmgr_message_body_type(m) != NULL)
        attr_add_str(out, "body", qmgr_message_body_type(m));
    request_encode_tls(m, out);
    if (qmgr_run_traced(m))
        attr_add_str(out, "trace", "yes");
    if (qmgr_message_smtputf8(m))
        attr_add_str(out, "smtputf8", "yes");
    for (k = 0; k < r->count; k++) {
        const struct qfile_rcpt *rc = &m->qf.rcpts[r->index[k]];

        attr_add_int(out, "index", (long long)r->index[k]);
        attr_add_str(out, "rcpt", rc->address);
        attr_add_str(out, "notify", rc->notify ? rc->notify : "");
        attr_add_str(out, "orcpt", rc->orcpt ? rc->orcpt : "");
    }
    attr_end(out);
}

/* request_start - connect to private/TRANSPORT and send r */
static void request_start(struct qmgr *qm, struct qmgr_request *r)
{
    struct timeval timeout = {QMGR_AGENT_TIMEOUT_SECONDS, 0};
    buf_t out = BUF_INIT;
    char path[32];
    int fd;

    r->started = 1;
    r->dest->inflight++;
    qm->inflight++;
    dest_name(r->dest, "private/", "", path, sizeof(path));
    if ((fd = unix_connect(path, 1)) < 0) {
        log_warn("%s: cannot connect to the delivery agent %s: %m", r->msg->id, path);
        request_end(qm, r);
        return;
    }
    set_cloexec(fd);
    r->bev = bufferevent_socket_new(qm->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (r->bev == NULL) {
        close(fd);
        request_end(qm, r);
        return;
    }
    request_encode(r, &out);
    bufferevent_setcb(r->bev, request_read_cb, NULL, request_event_cb, r);
    bufferevent_set_timeouts(r->bev, &timeout, &timeout);
    bufferevent_write(r->bev, out.data, out.len);
    bufferevent_enable(r->bev, EV_READ | EV_WRITE);
    buf_free(&out);
}

/* dest_next_eligible - the next ready destination under its limit, or NULL */
static struct qmgr_dest *dest_next_eligible(struct qmgr *qm)
{
    struct qmgr_dest *d = qm->ready_cursor;
    size_t n;

    for (n = 0; n < qm->ready_count; n++, d = d->ready_next) {
        if (d->inflight < qm->dest_limit) {
            qm->ready_cursor = d->ready_next;
            return d;
        }
    }
    return NULL;
}

/* dest_pop - take the first waiting request of d */
static struct qmgr_request *dest_pop(struct qmgr *qm, struct qmgr_dest *d)
{
    struct qmgr_request *r = d->head;

    d->head = r->next;
    r->next = NULL;
    if (d->head == NULL) {
        d->tail = NULL;
        dest_ready_remove(qm, d);
    }
    return r;
}

/* qmgr_dispatch - start waiting requests while the limits allow */
void qmgr_dispatch(struct qmgr *qm)
{
    struct qmgr_dest *d;

    while (!qm->draining && qm->inflight < qm->total_limit && (d = dest_next_eligible(qm)) != NULL)
        request_start(qm, dest_pop(qm, d));
}

/* qmgr_dispatch_kick - run the dispatcher soon (from the event loop) */
void qmgr_dispatch_kick(struct qmgr *qm)
{
    if (qm->dispatch_ev != NULL)
        event_active(qm->dispatch_ev, EV_TIMEOUT, 0);
}

/* dest_unlink - take the waiting request r out of d's FIFO */
static void dest_unlink(struct qmgr *qm, struct qmgr_dest *d, struct qmgr_request *r)
{
    struct qmgr_request **p, *prev = NULL;

    for (p = &d->head; *p != NULL; prev = *p, p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            if (d->tail == r)
                d->tail = prev;
            break;
        }
    }
    r->next = NULL;
    if (d->head == NULL)
        dest_ready_remove(qm, d);
}

/* qmgr_request_cancel_waiting - drop m's requests not started yet; the
 * message finishes when its last request is gone */
void qmgr_request_cancel_waiting(struct qmgr *qm, struct qmgr_message *m)
{
    size_t i, k;

    for (i = 0; i < m->qf.rcpt_count; i++) {
        struct qmgr_request *r = m->rcpt[i].req;
        struct qmgr_dest *d;

        if (r == NULL || r->started)
            continue;
        for (k = 0; k < r->count; k++)
            m->rcpt[r->index[k]].req = NULL;
        d = r->dest;
        dest_unlink(qm, d, r);
        request_free(r);
        dest_release_if_idle(qm, d);
        if (--m->requests_open == 0) {
            qmgr_message_finish(qm, m);
            return; /* m may be gone */
        }
    }
}
