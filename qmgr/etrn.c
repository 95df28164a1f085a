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
 * or the request is malformed) or "status=building" (the index is not
 * complete yet: smtpd answers 458 4.3.0, try again later).
 *
 * The messages are found in the index (etrn_index.h), which this file
 * keeps: filled from deferred/ at start (the only time qmgr reads the whole
 * deferred queue for it; QMGR_ETRN_SLICE files per event-loop turn, so
 * that qmgr goes on taking new mail and serving flushes while it reads),
 * added to when a message is deferred, and told to forget a message
 * whenever one is loaded.  While the build runs, deferrals and loads keep
 * it right: a file the build reaches after it was taken is gone (skipped),
 * one deferred again is added twice (no change).  A message whose file is gone is
 * forgotten when found missing.  A message taken while memory is full
 * (QMGR_ACTIVE_LIMIT) is made due now instead, so the next deferred scan
 * takes it.  Messages with recipients in several domains are delivered
 * whole, as Postfix's flush does.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
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

/* files read per event-loop turn while the index is built */
#define QMGR_ETRN_SLICE 256

/* the index being built from deferred/ at start (qm->etrn_build) */
struct qmgr_etrn_build {
    struct event *ev; /* the next slice */
    DIR *dir;         /* deferred/H being read, or NULL */
    int hash;         /* the next H to open */
    size_t files;     /* queue files read so far */
    struct timeval started;
};

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

/* qmgr_etrn_read_file - index deferred file id; a file that is gone (taken
 * since the directory was read) or unreadable is left to the queue run */
static void qmgr_etrn_read_file(struct qmgr *qm, const char *id)
{
    struct qfile_msg qf;
    buf_t err = BUF_INIT, path = BUF_INIT;
    int fd;

    qmgr_message_path(&path, "deferred", id, 1);
    fd = safe_open_regular(path.data, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    buf_free(&path);
    if (fd < 0)
        return;
    qfile_msg_init(&qf);
    if (qfile_read_envelope(fd, &qf, &err) == 0) /* the recipients come before the content */
        qmgr_etrn_note_rcpts(qm, &qf, id);
    qfile_msg_free(&qf);
    buf_free(&err);
    close(fd);
}

/* qmgr_etrn_build_next - index the next file of deferred/0..f; 0 when
 * there is none left */
static int qmgr_etrn_build_next(struct qmgr *qm, struct qmgr_etrn_build *b)
{
    struct dirent *e;
    char dir[16];

    for (;;) {
        if (b->dir == NULL) {
            if (b->hash >= 16)
                return 0;
            snprintf(dir, sizeof(dir), "deferred/%x", b->hash++);
            if ((b->dir = opendir(dir)) == NULL)
                continue;
        }
        while ((e = readdir(b->dir)) != NULL) {
            if (!qid_valid(e->d_name))
                continue;
            qmgr_etrn_read_file(qm, e->d_name);
            b->files++;
            return 1;
        }
        closedir(b->dir);
        b->dir = NULL;
    }
}

/* qmgr_etrn_build_end - the index is complete (or qmgr stops) */
static void qmgr_etrn_build_end(struct qmgr *qm, int complete)
{
    struct qmgr_etrn_build *b = qm->etrn_build;
    size_t domains = 0, messages = 0;
    struct timeval now, took;

    if (complete && b->files > 0) { /* an empty deferred/ is not news */
        gettimeofday(&now, NULL);
        timersub(&now, &b->started, &took);
        qmgr_etrn_index_counts(qm->etrn, &domains, &messages);
        log_info("ETRN index built: %zu deferred message%s for %zu domain%s, %zu file%s read "
                 "in %lld.%03ld s",
                 messages, messages == 1 ? "" : "s", domains, domains == 1 ? "" : "s", b->files,
                 b->files == 1 ? "" : "s", (long long)took.tv_sec, (long)took.tv_usec / 1000);
    }
    if (b->dir != NULL)
        closedir(b->dir);
    event_free(b->ev);
    free(b);
    qm->etrn_build = NULL;
}

/* qmgr_etrn_build_cb - one slice of the build: QMGR_ETRN_SLICE files per
 * event-loop turn (etrn_index_build_rate: fewer, and a pause), so that
 * qmgr serves its sockets and the queue while a big deferred/ is read */
static void qmgr_etrn_build_cb(evutil_socket_t fd, short what, void *arg)
{
    struct qmgr *qm = arg;
    struct qmgr_etrn_build *b = qm->etrn_build;
    long long rate = qm->etrn_build_rate;
    size_t slice = rate > 0 && rate < QMGR_ETRN_SLICE ? (size_t)rate : QMGR_ETRN_SLICE;
    struct timeval pause = {0, 0};

    (void)fd;
    (void)what;
    if (qm->draining) {
        qmgr_etrn_build_end(qm, 0);
        return;
    }
    for (size_t n = 0; n < slice; n++) {
        if (!qmgr_etrn_build_next(qm, b)) {
            qmgr_etrn_build_end(qm, 1);
            return;
        }
    }
    if (rate > 0) {
        long long usec = (long long)slice * 1000000 / rate;
        pause.tv_sec = (time_t)(usec / 1000000);
        pause.tv_usec = (suseconds_t)(usec % 1000000);
    }
    evtimer_add(b->ev, &pause); /* a timer, not event_active: sockets get a turn */
}

void qmgr_etrn_init(struct qmgr *qm)
{
    struct qmgr_etrn_build *b = xcalloc(1, sizeof(*b));
    struct timeval now = {0, 0};

    qm->etrn = qmgr_etrn_index_new();
    gettimeofday(&b->started, NULL);
    b->ev = evtimer_new(qm->base, qmgr_etrn_build_cb, qm);
    if (b->ev == NULL)
        log_fatal("cannot set up the event loop");
    qm->etrn_build = b;
    evtimer_add(b->ev, &now);
}

void qmgr_etrn_free(struct qmgr *qm)
{
    if (qm->etrn_build != NULL)
        qmgr_etrn_build_end(qm, 0);
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
    if (qm->etrn_build != NULL) {
        log_info("ETRN %s: refused, the ETRN index of deferred/ is still being built "
                 "(%zu files read): try again later",
                 buf_cstr(&key), qm->etrn_build->files);
        qmgr_etrn_reply(out, "building", -1, NULL);
        buf_free(&key);
        return;
    }
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
