/*
 * control - the administrator's requests to qmgr (docs/internals.md,
 * "qmgr protocol"): qmgr.control (private/qmgr only: delete, hold, release,
 * requeue, flush of queue IDs or ALL) and qmgr.flush (also on public/qmgr,
 * optionally narrowed by a selector [!]R|S|I<substr>, lib/qselect.h; with
 * wait=yes it is a queue run the client waits for: run.c).
 *
 * Safe while qmgr runs because qmgr is the only process that moves files
 * out of incoming/ and deferred/ and the only one that touches active/ and
 * hold/: a message on disk is acted on at once (rename or unlink); a
 * message in memory gets its action recorded, its waiting requests are
 * dropped, and the action is applied when its requests in flight have
 * ended and been recorded (message.c), so nothing is delivered after a
 * delete and nothing is delivered twice after a hold or requeue.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "attr.h"
#include "buf.h"
#include "log.h"
#include "qid.h"
#include "qselect.h"
#include "qmgr.h"

enum control_op { OP_DELETE, OP_HOLD, OP_RELEASE, OP_REQUEUE, OP_FLUSH, OP_NONE };

/* where a queue ID was found */
enum control_where { AT_NONE, AT_MEMORY, AT_INCOMING, AT_DEFERRED, AT_HOLD, AT_ACTIVE };

static const char *const op_names[] = {"delete", "hold", "release", "requeue", "flush"};

/* control_op_parse - the action attribute, or OP_NONE */
static enum control_op control_op_parse(const char *s)
{
    int k;

    for (k = 0; s != NULL && k < OP_NONE; k++)
        if (strcmp(s, op_names[k]) == 0)
            return (enum control_op)k;
    return OP_NONE;
}

/* control_locate - find id: in memory, or a file (path set) */
static enum control_where control_locate(struct qmgr *qm, const char *id, buf_t *path)
{
    static const struct {
        const char *dir;
        int hashed;
        enum control_where where;
    } places[] = {{"incoming", 0, AT_INCOMING},
                  {"deferred", 1, AT_DEFERRED},
                  {"hold", 0, AT_HOLD},
                  {"active", 0, AT_ACTIVE}};
    struct stat st;

    if (qmgr_message_find(qm, id) != NULL)
        return AT_MEMORY;
    for (size_t k = 0; k < sizeof(places) / sizeof(places[0]); k++) {
        qmgr_message_path(path, places[k].dir, id, places[k].hashed);
        if (lstat(path->data, &st) == 0 && S_ISREG(st.st_mode))
            return places[k].where;
    }
    return AT_NONE;
}

/* control_unlink_defer - remove defer/H/ID */
static void control_unlink_defer(const char *id)
{
    buf_t path = BUF_INIT;

    qmgr_message_path(&path, "defer", id, 1);
    if (unlink(path.data) < 0 && errno != ENOENT)
        log_warn("cannot remove %s: %m", path.data);
    buf_free(&path);
}

/* control_memory - record op for a message in memory; 1 when acted on */
static int control_memory(struct qmgr *qm, struct qmgr_message *m, enum control_op op)
{
    if (op == OP_RELEASE) {
        if (m->action != QMGR_ACTION_HOLD)
            return 0;
        m->action = QMGR_ACTION_NONE;
        log_info("%s: released from hold", m->id);
        return 1;
    }
    if (op == OP_FLUSH || m->action == QMGR_ACTION_DELETE)
        return 0;
    if (op == OP_DELETE)
        m->action = QMGR_ACTION_DELETE;
    else if (op == OP_HOLD)
        m->action = QMGR_ACTION_HOLD;
    else
        m->action = QMGR_ACTION_REQUEUE;
    qmgr_request_cancel_waiting(qm, m); /* may finish (and free) m */
    return 1;
}

/* control_requeue_file - take a file into active/ and requeue it */
static int control_requeue_file(struct qmgr *qm, const char *id, const char *path,
                                enum control_where where)
{
    struct qmgr_message *m;

    if (where != AT_ACTIVE && qmgr_scan_take(path, id) < 0)
        return 0;
    m = qmgr_message_load_only(qm, id);
    if (m == NULL)
        return 0;
    m->action = QMGR_ACTION_REQUEUE;
    qmgr_message_finish(qm, m);
    return 1;
}

/* control_release_file - hold/ID back to incoming/ID, due now */
static int control_release_file(struct qmgr *qm, const char *id, const char *path)
{
    buf_t to = BUF_INIT;
    int rc;

    utimes(path, NULL);
    qmgr_message_path(&to, "incoming", id, 0);
    rc = renameat2(AT_FDCWD, path, AT_FDCWD, to.data, RENAME_NOREPLACE);
    if (rc < 0)
        log_error("%s: cannot move %s to %s: %m", id, path, to.data);
    else
        log_info("%s: released from hold", id);
    buf_free(&to);
    if (rc == 0)
        event_active(qm->incoming_ev, EV_TIMEOUT, 0);
    return rc == 0;
}

/* control_file - apply op to a file at path; 1 when acted on */
static int control_file(struct qmgr *qm, const char *id, const char *path, enum control_where where,
                        enum control_op op)
{
    buf_t to = BUF_INIT;
    int rc = 0;

    switch (op) {
    case OP_DELETE:
        if (unlink(path) == 0) {
            control_unlink_defer(id);
            log_info("%s: removed (deleted by administrator)", id);
            rc = 1;
        }
        break;
    case OP_HOLD:
        if (where == AT_HOLD)
            break;
        qmgr_message_path(&to, "hold", id, 0);
        rc = rename(path, to.data) == 0;
        if (rc)
            log_info("%s: held (by administrator)", id);
        break;
    case OP_RELEASE:
        rc = where == AT_HOLD && control_release_file(qm, id, path);
        break;
    case OP_REQUEUE:
        rc = control_requeue_file(qm, id, path, where);
        break;
    case OP_FLUSH:
        if (where == AT_DEFERRED && qmgr_scan_take(path, id) == 0)
            rc = qmgr_message_load(qm, id) == 0;
        break;
    case OP_NONE:
        break;
    }
    buf_free(&to);
    return rc;
}

/* control_apply_id - op on one ID: 1 acted, 0 nothing to do, -1 unknown */
static int control_apply_id(struct qmgr *qm, const char *id, enum control_op op)
{
    buf_t path = BUF_INIT;
    enum control_where where;
    int rc;

    if (!qid_valid(id))
        return -1;
    where = control_locate(qm, id, &path);
    if (where == AT_NONE)
        rc = -1;
    else if (where == AT_MEMORY)
        rc = control_memory(qm, qmgr_message_find(qm, id), op);
    else
        rc = control_file(qm, id, path.data, where, op);
    buf_free(&path);
    return rc;
}

/* control_list_dir - append the queue IDs found in dir to ids */
static void control_list_dir(const char *dir, buf_t *ids)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (qid_valid(e->d_name)) {
            buf_puts(ids, e->d_name);
            buf_putc(ids, 0);
        }
    }
    closedir(d);
}

/* control_list_all - IDs in memory first, then in the directories op uses */
static void control_list_all(struct qmgr *qm, enum control_op op, buf_t *ids)
{
    struct qmgr_message *m;
    char sub[16];

    for (m = qm->messages; m != NULL; m = m->next) {
        buf_puts(ids, m->id);
        buf_putc(ids, 0);
    }
    if (op != OP_RELEASE) {
        control_list_dir("incoming", ids);
        control_list_dir("active", ids);
        for (int h = 0; h < 16; h++) {
            snprintf(sub, sizeof(sub), "deferred/%x", h);
            control_list_dir(sub, ids);
        }
    }
    if (op != OP_HOLD)
        control_list_dir("hold", ids);
}

/* control_apply_all - op on every message it can apply to */
static size_t control_apply_all(struct qmgr *qm, enum control_op op)
{
    buf_t ids = BUF_INIT;
    size_t count = 0;

    if (op == OP_FLUSH)
        return qmgr_scan_deferred(qm, 1);
    control_list_all(qm, op, &ids);
    for (size_t off = 0; off < ids.len; off += strlen(ids.data + off) + 1)
        if (control_apply_id(qm, ids.data + off, op) > 0)
            count++;
    buf_free(&ids);
    return count;
}

/* control_reply - proto=qmgr.reply status=... count=N */
static void control_reply(buf_t *out, const char *status, size_t count)
{
    attr_begin(out, "qmgr.reply");
    attr_add_str(out, "status", status);
    attr_add_int(out, "count", (long long)count);
}

/* control_do - qmgr.control: every id attribute, or ALL */
static void control_do(struct qmgr *qm, const struct attr_msg *am, buf_t *out)
{
    enum control_op op = control_op_parse(attr_get(am, "action", NULL));
    buf_t missing = BUF_INIT;
    size_t count = 0;

    if (op == OP_NONE) {
        control_reply(out, "error", 0);
        attr_add_str(out, "text", "unknown action");
        attr_end(out);
        return;
    }
    for (size_t k = 1; k < am->count; k++) {
        int rc;

        if (strcmp(am->v[k].name, "id") != 0)
            continue;
        if (strcmp(am->v[k].value, "ALL") == 0) {
            count += control_apply_all(qm, op);
            continue;
        }
        rc = control_apply_id(qm, am->v[k].value, op);
        if (rc > 0)
            count++;
        else if (rc < 0 && missing.len < 64 * 1024)
            buf_puts(&missing, am->v[k].value), buf_putc(&missing, 0);
    }
    control_reply(out, "ok", count);
    for (size_t off = 0; off < missing.len; off += strlen(missing.data + off) + 1)
        attr_add_str(out, "missing", missing.data + off);
    attr_end(out);
    buf_free(&missing);
}

/* control_flush - qmgr.flush with an optional selector */
static void control_flush(struct qmgr *qm, const struct attr_msg *am, buf_t *out)
{
    const char *sel = attr_get(am, "selector", NULL);
    struct qselect parsed;
    size_t count;

    if (qselect_parse(sel, &parsed) < 0) {
        control_reply(out, "error", 0);
        attr_add_str(out, "text", QSELECT_SYNTAX);
        attr_end(out);
        return;
    }
    if (parsed.kind == 0)
        count = qmgr_scan_deferred(qm, 1);
    else
        count = qmgr_run_take_deferred(qm, &parsed);
    log_info("flush%s%s: %zu message%s scheduled", sel ? " " : "", sel ? sel : "", count,
             count == 1 ? "" : "s");
    control_reply(out, "ok", count);
    attr_end(out);
}

/* qmgr_control_handle - qmgr.control / qmgr.flush from a client */
void qmgr_control_handle(struct qmgr *qm, const struct attr_msg *am, int trusted, buf_t *out)
{
    const char *proto = attr_proto(am);

    if (!trusted) {
        control_reply(out, "denied", 0);
        attr_add_str(out, "text", "You do not have permission to process the queue");
        attr_end(out);
    } else if (strcmp(proto, "qmgr.flush") == 0) {
        control_flush(qm, am, out);
    } else {
        control_do(qm, am, out);
    }
}

/* requeue_done - cleanup answered for a requeued message */
static void requeue_done(struct qmgr *qm, void *ctx, int ok, const char *queue_id, const char *why)
{
    struct qmgr_message *m = ctx;

    if (!ok)
        log_warn("%s: requeue failed: %s; the message stays queued", m->id,
                 why ? why : "unknown error");
    m->action = QMGR_ACTION_NONE;
    qmgr_message_requeued(qm, m, ok, queue_id);
}

/* requeue_envelope - cleanup.submit with m's envelope and pending recipients;
 * returns how many recipients */
static size_t requeue_envelope(const struct qmgr_message *m, buf_t *out)
{
    static const char *const copied[] = {"client_name", "client_addr",  "helo",     "protocol",
                                         "auth",        "envid",        "ret",      "body",
                                         "requiretls",  "auth_mailbox", "smtputf8", NULL};
    size_t n = 0;

    attr_begin(out, "cleanup.submit");
    attr_add_str(out, "sender", m->qf.sender ? m->qf.sender : "");
    for (int k = 0; copied[k]; k++) {
        const char *v = qfile_msg_attr(&m->qf, copied[k]);

        if (v != NULL && *v)
            attr_add_str(out, copied[k], v);
    }
    for (size_t i = 0; i < m->qf.rcpt_count; i++) {
        const struct qfile_rcpt *r = &m->qf.rcpts[i];

        if (!qfile_rcpt_is_pending(r->status))
            continue;
        qmgr_submit_add_rcpt(out, r->address, r->original, r->notify, r->orcpt);
        n++;
    }
    attr_end(out);
    return n;
}

/* qmgr_control_requeue - submit m's pending recipients and content to
 * cleanup as a new message; on ok remove m, else defer it */
void qmgr_control_requeue(struct qmgr *qm, struct qmgr_message *m)
{
    buf_t submit = BUF_INIT, content = BUF_INIT;

    m->finishing = 1;
    if (requeue_envelope(m, &submit) == 0) {
        log_info("%s: nothing left to requeue", m->id);
        m->action = QMGR_ACTION_NONE;
        qmgr_message_dispose(qm, m);
    } else if (qmgr_message_read_content(m, &content) < 0) {
        log_error("%s: cannot read the message to requeue it: %m", m->id);
        qmgr_message_requeued(qm, m, 0, NULL);
    } else {
        qmgr_submit_start(qm, &submit, content.data, content.len, requeue_done, m);
    }
    buf_free(&submit);
    buf_free(&content);
}
