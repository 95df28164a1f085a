/*
 * message - one queue file in qmgr's memory: loading it from active/,
 * routing its pending recipients to next hops, and what happens when its
 * last delivery request ends: expire, owed notices (notice.c), then the
 * administrator's action (delete, hold, requeue), remove, or defer with
 * backoff.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "log.h"
#include "maillog.h"
#include "proctitle.h"
#include "qfile.h"
#include "qid.h"
#include "route.h"
#include "safefile.h"
#include "stats.h"
#include "table_proxy.h"
#include "timeutil.h"
#include "qmgr.h"

/* qmgr_message_path - "DIR/ID" or "DIR/H/ID" into out */
void qmgr_message_path(buf_t *out, const char *dir, const char *id, int hashed)
{
    buf_reset(out);
    if (hashed)
        buf_printf(out, "%s/%c/%s", dir, qid_hash_dir(id), id);
    else
        buf_printf(out, "%s/%s", dir, id);
}

/* message_move_corrupt - move active/ID to corrupt/ID and say why */
static void message_move_corrupt(const char *id, const char *why)
{
    buf_t from = BUF_INIT, to = BUF_INIT;

    qmgr_message_path(&from, "active", id, 0);
    qmgr_message_path(&to, "corrupt", id, 0);
    if (rename(from.data, to.data) < 0)
        log_error("%s: cannot move corrupt queue file to corrupt/: %m (%s)", id, why);
    else
        log_warn("%s: corrupt queue file moved to corrupt/: %s", id, why);
    buf_free(&from);
    buf_free(&to);
}

/* message_read - open and parse active/ID into qf; -1 when unusable */
static int message_read(const char *id, struct qfile_msg *qf)
{
    buf_t path = BUF_INIT, err = BUF_INIT;
    int fd, rc = -1;

    qmgr_message_path(&path, "active", id, 0);
    /* O_NONBLOCK: a FIFO planted in the queue must not hang qmgr */
    fd = safe_open_regular(path.data, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == EPERM || errno == ELOOP)
            message_move_corrupt(id, "not a regular file with one link");
        else if (errno != ENOENT)
            log_error("%s: cannot open %s: %m (left in active/ until qmgr restarts)", id,
                      path.data);
    } else if (qfile_read(fd, qf, &err) < 0) {
        message_move_corrupt(id, err.len ? err.data : "unreadable");
    } else {
        rc = 0;
    }
    if (fd >= 0)
        close(fd);
    buf_free(&path);
    buf_free(&err);
    return rc;
}

/* message_route_decided - an outcome known without a delivery agent:
 * error (bounce), discard (delivered), retry or a failed lookup (defer) */
static void message_route_decided(struct qmgr_message *m, size_t i, const struct route_dest *d,
                                  int tempfail, int *fd)
{
    const char *text = buf_cstr(&d->reply.text);

    if (tempfail || strcmp(d->transport, "retry") == 0) {
        qmgr_rcpt_set_deferred(m, i, d->reply.dsn, text);
        qmgr_log_deferred(m, i, "none");
        stats_count_delivery(d->transport, "defer", 0, 0);
    } else if (strcmp(d->transport, "error") == 0) {
        qmgr_rcpt_set_deferred(m, i, d->reply.dsn, text);
        qmgr_message_set_status(m, i, QFILE_RCPT_FAILED, fd);
        qmgr_log_rcpt(m, i, "none", "bounced");
        stats_count_delivery(d->transport, "bounce", 0, 0);
    } else { /* discard */
        buf_t reason = BUF_INIT;
        buf_printf(&reason, "discarded: %s", text);
        qmgr_rcpt_set_deferred(m, i, "2.0.0", reason.data);
        qmgr_message_set_status(m, i, QFILE_RCPT_SENT, fd);
        qmgr_log_rcpt(m, i, "none", "sent");
        stats_count_delivery(d->transport, "sent", m->qf.content_length, qmgr_message_arrival(m));
        buf_free(&reason);
    }
}

/* a routing pass waiting for tern-proxymap: the message is parked (it
 * takes no delivery slot and nothing else waits for it) and routed again,
 * from the start, when the answers are in (lib/table_proxy.h) */
struct qmgr_route_wait {
    struct qmgr *qm;
    struct qmgr_message *m;
    struct table_proxy_scope *scope;
};

/* message_route_flags - ROUTE_ALIASES_DONE when local already expanded */
static int message_route_flags(const struct qmgr_message *m)
{
    const char *expanded = qfile_msg_attr(&m->qf, "local_expanded");

    return expanded && strcmp(expanded, "yes") == 0 ? ROUTE_ALIASES_DONE : 0;
}

/* message_route_dry - resolve every pending recipient into throwaway
 * results inside the scope: what the real pass will ask is known (and
 * asked) before anything is decided */
static void message_route_dry(struct qmgr *qm, struct qmgr_message *m, int flags)
{
    for (size_t i = 0; i < m->qf.rcpt_count; i++) {
        struct route_dest d;

        if (!qfile_rcpt_is_pending(m->qf.rcpts[i].status))
            continue;
        route_dest_init(&d);
        route_resolve(qm->route, m->qf.rcpts[i].address, flags, &d);
        route_dest_free(&d);
    }
}

static void message_route_go(struct qmgr *qm, struct qmgr_message *m);
static void message_route_forget(struct qmgr_message *m);

/* message_on_routes - the parked message's answers are in: route again,
 * unless `tern queue delete|hold|requeue` came meanwhile: then nothing is
 * routed and the message finishes, which applies the action */
static void message_on_routes(void *ctx)
{
    struct qmgr_route_wait *w = ctx;
    struct qmgr *qm = w->qm;
    struct qmgr_message *m = w->m;

    if (m->action == QMGR_ACTION_NONE) {
        message_route_go(qm, m);
        return;
    }
    message_route_forget(m); /* frees w */
    if (m->requests_open == 0)
        qmgr_message_finish(qm, m);
}

/* message_route_parked - 1 when a remote table's answer is not in yet:
 * the wait is started and the message parked */
static int message_route_parked(struct qmgr *qm, struct qmgr_message *m, int flags)
{
    struct qmgr_route_wait *w = m->routing;

    if (w == NULL) { /* a new routing pass: a scope of its own */
        w = m->routing = xcalloc(1, sizeof(*w));
        w->qm = qm;
        w->m = m;
        w->scope = table_proxy_scope_new();
    }
    table_proxy_scope_enter(w->scope);
    message_route_dry(qm, m, flags);
    table_proxy_scope_leave();
    return table_proxy_scope_pending(w->scope) &&
           table_proxy_scope_wait(w->scope, qm->base, message_on_routes, w) == 0;
}

/* message_route_forget - the routing pass is over (or the message gone) */
static void message_route_forget(struct qmgr_message *m)
{
    if (m->routing == NULL)
        return;
    table_proxy_scope_free(m->routing->scope);
    free(m->routing);
    m->routing = NULL;
}

/* message_route - every pending recipient joins a request for its
 * transport (lib/route.h), or gets its outcome here; 1 when the message is
 * parked until remote tables answer (nothing was decided) */
static int message_route(struct qmgr *qm, struct qmgr_message *m)
{
    int flags = message_route_flags(m);
    buf_t key = BUF_INIT;
    int fd = -1;
    size_t i;

    if (message_route_parked(qm, m, flags))
        return 1;
    table_proxy_scope_enter(m->routing->scope); /* the answers the dry pass got */
    for (i = 0; i < m->qf.rcpt_count; i++) {
        struct route_dest d;
        int st;

        if (!qfile_rcpt_is_pending(m->qf.rcpts[i].status))
            continue;
        route_dest_init(&d);
        st = route_resolve(qm->route, m->qf.rcpts[i].address, flags, &d);
        if (st < 0 || strcmp(d.transport, "error") == 0 || strcmp(d.transport, "discard") == 0 ||
            strcmp(d.transport, "retry") == 0) {
            message_route_decided(m, i, &d, st < 0, &fd);
        } else {
            buf_reset(&key);
            buf_printf(&key, "%s:%s", d.transport, buf_cstr(&d.nexthop));
            qmgr_request_add_rcpt(qm, m, i, key.data);
        }
        route_dest_free(&d);
    }
    table_proxy_scope_leave();
    message_route_forget(m);
    if (fd >= 0)
        close(fd);
    buf_free(&key);
    return 0;
}

/* message_route_go - route m; then finish it or wake the dispatcher */
static void message_route_go(struct qmgr *qm, struct qmgr_message *m)
{
    if (message_route(qm, m))
        return; /* parked: message_on_routes comes back here */
    if (m->requests_open == 0)
        qmgr_message_finish(qm, m);
    else
        qmgr_dispatch_kick(qm);
}

/* qmgr_message_read_content - append the content of active/ID to out
 * (for notices and requeue); 0 ok, -1 unreadable */
int qmgr_message_read_content(const struct qmgr_message *m, buf_t *out)
{
    buf_t path = BUF_INIT;
    size_t len = m->qf.content_length;
    int fd, rc = -1;

    qmgr_message_path(&path, "active", m->id, 0);
    fd = safe_open_regular(path.data, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    buf_free(&path);
    if (fd < 0)
        return -1;
    buf_reserve(out, len);
    if (pread(fd, out->data + out->len, len, m->qf.content_offset) == (ssize_t)len) {
        out->len += len;
        out->data[out->len] = 0;
        rc = 0;
    }
    close(fd);
    return rc;
}

/* message_known_failures - recipients cleanup already refused ("D.S.N
 * text" in the queue file) carry that reason into their notice */
static void message_known_failures(struct qmgr_message *m)
{
    for (size_t i = 0; i < m->qf.rcpt_count; i++) {
        const char *why = m->qf.rcpts[i].reason;
        size_t n = why ? strcspn(why, " ") : 0;
        char dsn[16];

        if (why == NULL || m->qf.rcpts[i].status != QFILE_RCPT_FAILED)
            continue;
        snprintf(dsn, sizeof(dsn), "%.*s", (int)(n < sizeof(dsn) ? n : 0), why);
        qmgr_rcpt_set_deferred(m, i, dsn[0] == '5' ? dsn : "5.0.0", why[n] ? why + n + 1 : why);
    }
}

/* message_title - "tern-qmgr: N active, M in flight" (OPS-04); set as
 * messages come and go only */
static void message_title(const struct qmgr *qm)
{
    proctitle_set("%zu active, %zu in flight", qm->active_count, qm->inflight);
}

/* qmgr_message_load_only - read active/ID into memory without routing it */
struct qmgr_message *qmgr_message_load_only(struct qmgr *qm, const char *id)
{
    struct qmgr_message *m = xcalloc(1, sizeof(*m));

    qmgr_etrn_forget(qm, id); /* out of deferred/ */
    qfile_msg_init(&m->qf);
    if (message_read(id, &m->qf) < 0) {
        qfile_msg_free(&m->qf);
        free(m);
        return NULL;
    }
    snprintf(m->id, sizeof(m->id), "%s", id);
    m->rcpt = xcalloc(m->qf.rcpt_count ? m->qf.rcpt_count : 1, sizeof(*m->rcpt));
    message_known_failures(m);
    m->next = qm->messages;
    if (qm->messages != NULL)
        qm->messages->prev = m;
    qm->messages = m;
    qm->active_count++;
    message_title(qm);
    return m;
}

/* qmgr_message_find - the message in memory with this ID, or NULL */
struct qmgr_message *qmgr_message_find(struct qmgr *qm, const char *id)
{
    struct qmgr_message *m;

    for (m = qm->messages; m != NULL; m = m->next)
        if (strcmp(m->id, id) == 0)
            return m;
    return NULL;
}

/* qmgr_message_load - read active/ID, route it; 0 taken on, -1 not */
int qmgr_message_load(struct qmgr *qm, const char *id)
{
    struct qmgr_message *m = qmgr_message_load_only(qm, id);

    if (m == NULL)
        return -1;
    for (size_t i = 0; i < m->qf.rcpt_count; i++)
        if (m->qf.rcpts[i].reason && m->qf.rcpts[i].status == QFILE_RCPT_FAILED)
            qmgr_log_rcpt(m, i, "none", "bounced");
    qmgr_run_claim(qm, m);
    message_route_go(qm, m);
    return 0;
}

/* message_free - forget m (the file is already where it belongs) */
static void message_free(struct qmgr *qm, struct qmgr_message *m)
{
    size_t i;

    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        qm->messages = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    qmgr_run_message_gone(m);
    message_route_forget(m); /* a parked message: its wait is cancelled */
    for (i = 0; i < m->qf.rcpt_count; i++)
        free(m->rcpt[i].reason);
    free(m->rcpt);
    qfile_msg_free(&m->qf);
    free(m);
    qm->active_count--;
    message_title(qm);
}

/* qmgr_message_free_all - release every message (exit) */
void qmgr_message_free_all(struct qmgr *qm)
{
    while (qm->messages != NULL)
        message_free(qm, qm->messages);
}

/* reason_sanitize - one line, no tabs, at most QMGR_REASON_MAX bytes */
static void reason_sanitize(const char *in, buf_t *out)
{
    size_t n;

    buf_reset(out);
    for (n = 0; in[n] && n < QMGR_REASON_MAX; n++) {
        unsigned char c = (unsigned char)in[n];
        buf_putc(out, c < 0x20 || c == 0x7f ? ' ' : c);
    }
}

/* qmgr_rcpt_set_deferred - remember a deferral reason for recipient i */
void qmgr_rcpt_set_deferred(struct qmgr_message *m, size_t i, const char *dsn, const char *reason)
{
    buf_t clean = BUF_INIT;

    reason_sanitize(reason, &clean);
    free(m->rcpt[i].reason);
    m->rcpt[i].reason = buf_steal(&clean);
    snprintf(m->rcpt[i].dsn, sizeof(m->rcpt[i].dsn), "%s", dsn);
}

/* qmgr_message_age - seconds since arrival */
static double qmgr_message_age(const struct qmgr_message *m, double now)
{
    double arrival = qmgr_message_arrival(m);

    return now > arrival ? now - arrival : 0;
}

/* qmgr_message_delay - seconds since arrival as "0.4" */
void qmgr_message_delay(const struct qmgr_message *m, double now, buf_t *out)
{
    buf_reset(out);
    time_format_delay(qmgr_message_age(m, now), out);
}

/* qmgr_message_arrival - when m arrived, seconds since the epoch */
double qmgr_message_arrival(const struct qmgr_message *m)
{
    return (double)m->qf.arrival_sec + (double)m->qf.arrival_usec / 1e6;
}

/* qmgr_log_rcpt - the status=WORD line for recipient i */
void qmgr_log_rcpt(const struct qmgr_message *m, size_t i, const char *relay, const char *word)
{
    struct maillog_delivery ev = {
        .queue_id = m->id,
        .rcpt = m->qf.rcpts[i].address,
        .relay = relay,
        .mailer = "error", /* qmgr decides alone: sendmail's error mailer */
        .delay = qmgr_message_age(m, time_now_double()),
        .nrcpts = m->qf.rcpt_count,
        .dsn = m->rcpt[i].dsn,
        .status = word,
        .reason = m->rcpt[i].reason ? m->rcpt[i].reason : "",
    };

    maillog_log_delivery(&ev);
}

/* qmgr_log_expired - the status=expired line for recipient i */
static void qmgr_log_expired(const struct qmgr_message *m, size_t i, double now)
{
    struct maillog_delivery ev = {
        .queue_id = m->id,
        .rcpt = m->qf.rcpts[i].address,
        .relay = "none",
        .mailer = "error",
        .delay = qmgr_message_age(m, now),
        .nrcpts = m->qf.rcpt_count,
        .dsn = "4.4.7",
        .status = "expired",
        .reason = m->rcpt[i].reason ? m->rcpt[i].reason : "message expired",
    };

    maillog_log_delivery(&ev);
}

/* qmgr_log_deferred - the status=deferred line for recipient i */
void qmgr_log_deferred(const struct qmgr_message *m, size_t i, const char *relay)
{
    qmgr_log_rcpt(m, i, relay, "deferred");
}

/* message_count_pending - recipients still to be delivered */
static size_t message_count_pending(const struct qmgr_message *m)
{
    size_t i, n = 0;

    for (i = 0; i < m->qf.rcpt_count; i++)
        if (qfile_rcpt_is_pending(m->qf.rcpts[i].status))
            n++;
    return n;
}

/* message_count_owing - recipients whose notice is not sent yet */
static size_t message_count_owing(const struct qmgr_message *m)
{
    size_t i, n = 0;

    for (i = 0; i < m->qf.rcpt_count; i++)
        if (m->qf.rcpts[i].status == QFILE_RCPT_FAILED ||
            m->qf.rcpts[i].status == QFILE_RCPT_NOTIFY)
            n++;
    return n;
}

/* qmgr_message_set_status - record a recipient status in the file (opened
 * lazily into *fd) and in memory */
void qmgr_message_set_status(struct qmgr_message *m, size_t i, char status, int *fd)
{
    if (*fd < 0) {
        buf_t path = BUF_INIT;

        qmgr_message_path(&path, "active", m->id, 0);
        *fd = open(path.data, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (*fd < 0)
            log_error("%s: cannot open %s to record a recipient status: %m", m->id, path.data);
        buf_free(&path);
    }
    if (*fd >= 0 && qfile_set_rcpt_status(*fd, &m->qf.rcpts[i], status) < 0)
        log_error("%s: cannot record the status of <%s>: %m", m->id, m->qf.rcpts[i].address);
    m->qf.rcpts[i].status = status;
}

/* message_unlink - remove path; a missing file is fine */
static void message_unlink(const char *path)
{
    if (unlink(path) < 0 && errno != ENOENT)
        log_warn("cannot remove %s: %m", path);
}

/* message_remove - unlink active/ID and defer/H/ID; log why */
static void message_remove(const struct qmgr_message *m, const char *why)
{
    buf_t path = BUF_INIT;

    qmgr_message_path(&path, "active", m->id, 0);
    if (unlink(path.data) < 0) {
        log_error("%s: cannot remove %s: %m", m->id, path.data);
    } else {
        qmgr_message_path(&path, "defer", m->id, 1);
        message_unlink(path.data);
        log_info("%s: removed%s", m->id, why);
    }
    buf_free(&path);
}

/* message_expire - mark pending recipients FAILED and log each */
static void message_expire(struct qmgr_message *m, double now)
{
    buf_t delay = BUF_INIT, reason = BUF_INIT;
    size_t i;
    int fd = -1;

    qmgr_message_delay(m, now, &delay);
    for (i = 0; i < m->qf.rcpt_count; i++) {
        struct qfile_rcpt *r = &m->qf.rcpts[i];

        if (!qfile_rcpt_is_pending(r->status))
            continue;
        qmgr_message_set_status(m, i, QFILE_RCPT_FAILED, &fd);
        qmgr_log_expired(m, i, now);
        stats_count_delivery("expired", "bounce", 0, 0);
        buf_reset(&reason);
        buf_printf(&reason, "message could not be delivered for %s: %s", delay.data,
                   m->rcpt[i].reason ? m->rcpt[i].reason : "delivery time expired");
        qmgr_rcpt_set_deferred(m, i, "4.4.7", reason.data);
    }
    if (fd >= 0)
        close(fd);
    buf_free(&delay);
    buf_free(&reason);
}

/* message_defer_text - the defer/H/ID lines "address\tdsn\treason" */
static void message_defer_text(const struct qmgr_message *m, buf_t *out)
{
    buf_t clean = BUF_INIT;
    size_t i;

    for (i = 0; i < m->qf.rcpt_count; i++) {
        if (!qfile_rcpt_is_pending(m->qf.rcpts[i].status))
            continue;
        reason_sanitize(m->qf.rcpts[i].address, &clean);
        buf_printf(out, "%s\t%s\t%s\n", clean.data, m->rcpt[i].dsn[0] ? m->rcpt[i].dsn : "4.0.0",
                   m->rcpt[i].reason ? m->rcpt[i].reason : "");
    }
    buf_free(&clean);
}

/* message_write_file - write text to path (created or truncated) */
static int message_write_file(const char *path, const buf_t *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);

    if (fd < 0)
        return -1;
    if (write_all(fd, text->data, text->len) < 0) {
        close(fd);
        unlink(path);
        return -1;
    }
    return close(fd);
}

/* message_write_defer - defer/H/ID via a temp file and rename */
static int message_write_defer(const struct qmgr_message *m)
{
    buf_t text = BUF_INIT, tmp = BUF_INIT, path = BUF_INIT;
    char h = qid_hash_dir(m->id);
    int rc = -1;

    message_defer_text(m, &text);
    buf_printf(&tmp, "defer/%c/.tmp.%s", h, m->id);
    qmgr_message_path(&path, "defer", m->id, 1);
    if (qmgr_mkdir_hash("defer", h) == 0 && message_write_file(tmp.data, &text) == 0) {
        rc = rename(tmp.data, path.data);
        if (rc < 0)
            unlink(tmp.data);
    }
    if (rc < 0)
        log_error("%s: cannot write %s: %m", m->id, path.data);
    buf_free(&text);
    buf_free(&tmp);
    buf_free(&path);
    return rc;
}

/* message_next_attempt - now + clamp(age, minimal, maximal backoff) */
static time_t message_next_attempt(const struct qmgr *qm, const struct qmgr_message *m, time_t now)
{
    long long backoff = (long long)now - m->qf.arrival_sec;

    if (backoff > qm->max_backoff)
        backoff = qm->max_backoff;
    if (backoff < qm->min_backoff)
        backoff = qm->min_backoff;
    return now + (time_t)backoff;
}

/* message_defer - write reasons, set the retry time, move to deferred/H/ */
static void message_defer(struct qmgr *qm, const struct qmgr_message *m, time_t now)
{
    buf_t from = BUF_INIT, to = BUF_INIT;
    struct timeval tv[2];

    message_write_defer(m);
    qmgr_message_path(&from, "active", m->id, 0);
    qmgr_message_path(&to, "deferred", m->id, 1);
    tv[0].tv_sec = tv[1].tv_sec = message_next_attempt(qm, m, now);
    tv[0].tv_usec = tv[1].tv_usec = 0;
    if (utimes(from.data, tv) < 0)
        log_error("%s: cannot set the retry time of %s: %m", m->id, from.data);
    else if (qmgr_mkdir_hash("deferred", qid_hash_dir(m->id)) < 0 || rename(from.data, to.data) < 0)
        log_error("%s: cannot move %s to %s: %m (left in active/ until restart)", m->id, from.data,
                  to.data);
    else
        qmgr_etrn_note_deferred(qm, m);
    buf_free(&from);
    buf_free(&to);
}

/* message_hold - move active/ID to hold/ID (reasons stay in defer/H/ID) */
static void message_hold(const struct qmgr_message *m)
{
    buf_t from = BUF_INIT, to = BUF_INIT;

    if (message_count_pending(m) > 0)
        message_write_defer(m);
    qmgr_message_path(&from, "active", m->id, 0);
    qmgr_message_path(&to, "hold", m->id, 0);
    if (rename(from.data, to.data) < 0)
        log_error("%s: cannot move %s to %s: %m (left in active/ until restart)", m->id, from.data,
                  to.data);
    else
        log_info("%s: held (by administrator)", m->id);
    buf_free(&from);
    buf_free(&to);
}

/* message_free_finished - forget m and let scans use the room */
static void message_free_finished(struct qmgr *qm, struct qmgr_message *m)
{
    message_free(qm, m);
    qmgr_room_freed(qm);
}

/* qmgr_message_dispose - notices done: apply the action, remove, or defer */
void qmgr_message_dispose(struct qmgr *qm, struct qmgr_message *m)
{
    time_t now = time(NULL);

    /* delivered meanwhile: nothing left to hold, requeue or delete */
    if (message_count_pending(m) == 0 &&
        (m->action != QMGR_ACTION_DELETE || message_count_owing(m) == 0))
        m->action = QMGR_ACTION_NONE;
    switch (m->action) {
    case QMGR_ACTION_DELETE:
        message_remove(m, " (deleted by administrator)");
        break;
    case QMGR_ACTION_HOLD:
        message_hold(m);
        break;
    case QMGR_ACTION_REQUEUE:
        qmgr_control_requeue(qm, m); /* frees m when done */
        return;
    case QMGR_ACTION_NONE:
        if (message_count_pending(m) == 0 && message_count_owing(m) == 0)
            message_remove(m, "");
        else
            message_defer(qm, m, now);
        break;
    }
    message_free_finished(qm, m);
}

/* qmgr_message_requeued - the requeue submission ended: on ok the old file
 * goes, else the message is deferred as if nothing was asked */
void qmgr_message_requeued(struct qmgr *qm, struct qmgr_message *m, int ok, const char *new_id)
{
    if (ok) {
        log_info("%s: requeued as %s", m->id, new_id);
        message_remove(m, " (requeued)");
    } else {
        message_defer(qm, m, time(NULL));
    }
    message_free_finished(qm, m);
}

/* qmgr_message_finish - the last request ended: expire, notices, dispose */
void qmgr_message_finish(struct qmgr *qm, struct qmgr_message *m)
{
    double now = time_now_double();

    if (m->action == QMGR_ACTION_DELETE) {
        qmgr_message_dispose(qm, m);
        return;
    }
    if (m->action == QMGR_ACTION_NONE && message_count_pending(m) > 0 &&
        (long long)now - m->qf.arrival_sec >= qm->lifetime)
        message_expire(m, now);
    qmgr_notice_start(qm, m);
}
