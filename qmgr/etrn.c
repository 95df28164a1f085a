/*
 * etrn - qmgr.etrn: ETRN's queue run for one domain (RFC 1985; docs/queue.md
 * "The ETRN index").
 *
 * tern-smtpd asks on private/qmgr: "proto=qmgr.etrn domain=D [subdomains=
 * yes]".  The answer is "proto=qmgr.reply status=ok count=N" (N deferred
 * messages with a pending recipient in D, or below it, were taken for
 * delivery now; 0: none waiting), "status=busy" (the same request moved
 * messages less than etrn_min_interval ago: ETRN can be abused to make a
 * site work, SPEC SMTP-16) or "status=error text=..." (qmgr is stopping,
 * or the request is malformed).
 *
 * The messages are found in the index (etrn_index.h), which this file
 * keeps: filled from deferred/ at start (the only time qmgr reads the whole
 * deferred queue for it), added to when a message is deferred, and told to
 * forget a message whenever one is loaded.  A message whose file is gone is
 * forgotten when found missing.  A message taken while memory is full
 * (QMGR_ACTIVE_LIMIT) is made due now instead, so the next deferred scan
 * takes it.  Messages with recipients in several domains are delivered
 * whole, as Postfix's flush does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "attr.h"
#include "etrn_index.h"
#include "log.h"
#include "qfile.h"
#include "qid.h"
#include "qmgr.h"
#include "safefile.h"
#include "smtp_ext.h"

/* qmgr_etrn_note_rcpts - every pending recipient's domain of qf */
static void qmgr_etrn_note_rcpts(struct qmgr *qm, const struct qfile_msg *qf, const char *id)
{
    for (size_t i = 0; i < qf->rcpt_count; i++) {
        const char *domain;

        if (!qfile_rcpt_is_pending(qf->rcpts[i].status))
            continue;
        domain = addr_domain(qf->rcpts[i].address);
        if (domain != NULL && *domain != '\0')
            qmgr_etrn_index_add(qm->etrn, domain, id);
    }
}

/* qmgr_etrn_read_file - index one deferred file (an unreadable one is left
 * to the queue run that takes it); qmgr_scan_deferred_walk's callback */
static int qmgr_etrn_read_file(struct qmgr *qm, const char *path, const char *id, void *ctx)
{
    struct qfile_msg qf;
    buf_t err = BUF_INIT;
    int fd = safe_open_regular(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

    (void)ctx;
    if (fd < 0)
        return 1;
    qfile_msg_init(&qf);
    if (qfile_read(fd, &qf, &err) == 0)
        qmgr_etrn_note_rcpts(qm, &qf, id);
    qfile_msg_free(&qf);
    buf_free(&err);
    close(fd);
    return 1;
}

void qmgr_etrn_init(struct qmgr *qm)
{
    size_t domains = 0, messages = 0;

    qm->etrn = qmgr_etrn_index_new();
    qmgr_scan_deferred_walk(qm, qmgr_etrn_read_file, NULL);
    qmgr_etrn_index_counts(qm->etrn, &domains, &messages);
    log_debug("ETRN index: %zu deferred message%s for %zu domain%s", messages,
              messages == 1 ? "" : "s", domains, domains == 1 ? "" : "s");
}

void qmgr_etrn_free(struct qmgr *qm)
{
    qmgr_etrn_index_free(qm->etrn);
    qm->etrn = NULL;
}

void qmgr_etrn_note_deferred(struct qmgr *qm, const struct qmgr_message *m)
{
    if (qm->etrn != NULL)
        qmgr_etrn_note_rcpts(qm, &m->qf, m->id);
}

void qmgr_etrn_forget(struct qmgr *qm, const char *id)
{
    if (qm->etrn != NULL)
        qmgr_etrn_index_forget(qm->etrn, id);
}

/* qmgr_etrn_take - deliver deferred message id now; 1 when it was there */
static int qmgr_etrn_take(struct qmgr *qm, const char *id)
{
    buf_t path = BUF_INIT;
    int taken = 0;

    qmgr_message_path(&path, "deferred", id, 1);
    if (qmgr_has_room(qm)) {
        taken = qmgr_scan_take(path.data, id) == 0;
        if (taken)
            qmgr_message_load(qm, id);
    } else if (utimes(path.data, NULL) == 0) {
        taken = 1; /* due now: the next deferred scan takes it */
        qm->deferred_again = 1;
    }
    if (!taken)
        qmgr_etrn_forget(qm, id); /* gone: deleted, held or taken meanwhile */
    buf_free(&path);
    return taken;
}

/* qmgr_etrn_too_soon - the same request moved messages within
 * etrn_min_interval; otherwise it is remembered.  Only asked when there is
 * something to move: an ETRN that finds nothing costs nothing */
static int qmgr_etrn_too_soon(struct qmgr *qm, const char *key)
{
    time_t now = time(NULL);
    size_t oldest = 0;

    for (size_t k = 0; k < QMGR_ETRN_RECENT; k++) {
        struct qmgr_etrn_recent *r = &qm->etrn_recent[k];

        if (strcmp(r->key, key) == 0 && now >= r->at && now - r->at < qm->etrn_interval)
            return 1;
        if (r->at < qm->etrn_recent[oldest].at)
            oldest = k;
    }
    snprintf(qm->etrn_recent[oldest].key, sizeof(qm->etrn_recent[oldest].key), "%s", key);
    qm->etrn_recent[oldest].at = now;
    return 0;
}

/* qmgr_etrn_reply - proto=qmgr.reply status=... [count=N] [text=...] */
static void qmgr_etrn_reply(buf_t *out, const char *status, long long count, const char *text)
{
    attr_begin(out, "qmgr.reply");
    attr_add_str(out, "status", status);
    if (count >= 0)
        attr_add_int(out, "count", count);
    if (text != NULL)
        attr_add_str(out, "text", text);
    attr_end(out);
}

void qmgr_etrn_handle(struct qmgr *qm, const struct attr_msg *am, buf_t *out)
{
    const char *domain = attr_get(am, "domain", NULL);
    const char *sub = attr_get(am, "subdomains", NULL);
    int subdomains = sub != NULL && strcmp(sub, "yes") == 0;
    buf_t ids = BUF_INIT, key = BUF_INIT;
    size_t found, count = 0;

    if (domain == NULL || !smtp_ext_domain_valid(domain, strlen(domain))) {
        qmgr_etrn_reply(out, "error", -1, "bad domain");
        return;
    }
    if (qm->draining) {
        qmgr_etrn_reply(out, "error", -1, "the queue manager is stopping");
        return;
    }
    buf_printf(&key, "%s%s", subdomains ? "@" : "", domain);
    found = qmgr_etrn_index_find(qm->etrn, domain, subdomains, &ids);
    if (found > 0 && qmgr_etrn_too_soon(qm, buf_cstr(&key))) {
        qmgr_etrn_reply(out, "busy", -1, NULL);
    } else {
        for (size_t off = 0; off < ids.len; off += strlen(ids.data + off) + 1)
            count += (size_t)qmgr_etrn_take(qm, ids.data + off);
        log_info("ETRN %s: %zu message%s scheduled", buf_cstr(&key), count, count == 1 ? "" : "s");
        qmgr_etrn_reply(out, "ok", (long long)count, NULL);
    }
    buf_free(&ids);
    buf_free(&key);
}
