/*
 * notice - which delivery status notifications a message owes, and their
 * bookkeeping (docs/bounces.md).
 *
 * When the last delivery request of a message has ended, qmgr walks three
 * steps, at most one notice each, one after another: failure (recipients in
 * status F), success (N), delay warning (pending recipients past
 * delay_warning_time).  A notice is queued through private/cleanup
 * (submit.c) and only after cleanup's ok are its recipients marked in the
 * queue file (F->B, N->S, .->W): a crash in between sends the notice again,
 * it never loses one.  A failed submission leaves the statuses as they were
 * and the message is deferred, so a later pass retries.
 *
 * Who gets a notice: the envelope sender, when NOTIFY allows it (absent
 * NOTIFY = FAILURE,DELAY).  Mail from <> (a notice itself) that fails goes
 * to 2bounce_notice_recipient with double_bounce_sender as sender; mail
 * from double_bounce_sender that fails is logged and dropped: no loop.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "buf.h"
#include "log.h"
#include "maillog.h"
#include "qmgr.h"
#include "smtputf8.h"

/* a notice being submitted */
struct notice_job {
    struct qmgr_message *m;
    enum qmgr_notice_kind kind;
    int postmaster;
};

static void notice_next(struct qmgr *qm, struct qmgr_message *m);

/* qmgr_message_smtputf8 - see qmgr.h */
int qmgr_message_smtputf8(const struct qmgr_message *m)
{
    const char *v = qfile_msg_attr(&m->qf, "smtputf8");
    return v != NULL && strcmp(v, "yes") == 0;
}

/* qmgr_message_requiretls - see qmgr.h */
int qmgr_message_requiretls(const struct qmgr_message *m)
{
    const char *v = qfile_msg_attr(&m->qf, "requiretls");

    return v != NULL && strcmp(v, "yes") == 0;
}

/* qmgr_message_body_type - see qmgr.h */
const char *qmgr_message_body_type(const struct qmgr_message *m)
{
    const char *v = qfile_msg_attr(&m->qf, "body");

    if (v != NULL && strcmp(v, "8BITMIME") == 0)
        return "8BITMIME";
    if (v != NULL && strcmp(v, "BINARYMIME") == 0)
        return "BINARYMIME";
    return NULL;
}

/* qmgr_notify_has - 1 when the NOTIFY value allows word (absent: FAILURE, DELAY) */
int qmgr_notify_has(const char *notify, const char *word)
{
    size_t n = strlen(word);
    const char *p;

    if (notify == NULL || *notify == 0)
        return strcmp(word, "FAILURE") == 0 || strcmp(word, "DELAY") == 0;
    for (p = notify; *p;) {
        size_t len = strcspn(p, ",");

        if (len == n && strncasecmp(p, word, n) == 0)
            return 1;
        p += len;
        p += *p == ',';
    }
    return 0;
}

/* sender_kind - 0 a normal sender, 1 the null sender, 2 double_bounce_sender */
static int sender_kind(const struct qmgr *qm, const struct qmgr_message *m)
{
    const char *s = m->qf.sender ? m->qf.sender : "";

    if (*s == 0)
        return 1;
    return strcasecmp(s, qm->double_bounce_sender) == 0 ? 2 : 0;
}

/* notice_close_without - statuses that need no notice: from, to */
static void notice_close_without(struct qmgr_message *m, size_t i, char to, int *fd,
                                 const char *why)
{
    qmgr_message_set_status(m, i, to, fd);
    if (why != NULL)
        log_info("%s: to=<%s>: %s", m->id, m->qf.rcpts[i].address, why);
}

/* select_failure - mark F recipients that get a report; close the rest */
static size_t select_failure(const struct qmgr *qm, struct qmgr_message *m, int *postmaster,
                             int *fd)
{
    int sk = sender_kind(qm, m);
    size_t i, n = 0;

    *postmaster = sk == 1;
    for (i = 0; i < m->qf.rcpt_count; i++) {
        if (m->qf.rcpts[i].status != QFILE_RCPT_FAILED)
            continue;
        if (sk == 2)
            notice_close_without(m, i, QFILE_RCPT_BOUNCED, fd,
                                 "undeliverable double-bounce notice discarded");
        else if (sk == 0 && !qmgr_notify_has(m->qf.rcpts[i].notify, "FAILURE"))
            notice_close_without(m, i, QFILE_RCPT_BOUNCED, fd, NULL);
        else
            m->rcpt[i].in_notice = 1, n++;
    }
    return n;
}

/* select_success - mark N recipients (a notice to <> is never sent) */
static size_t select_success(const struct qmgr *qm, struct qmgr_message *m, int *fd)
{
    int sk = sender_kind(qm, m);
    size_t i, n = 0;

    for (i = 0; i < m->qf.rcpt_count; i++) {
        if (m->qf.rcpts[i].status != QFILE_RCPT_NOTIFY)
            continue;
        if (sk != 0)
            notice_close_without(m, i, QFILE_RCPT_SENT, fd, NULL);
        else
            m->rcpt[i].in_notice = 1, n++;
    }
    return n;
}

/* select_delay - pending, unwarned recipients of an old enough message */
static size_t select_delay(const struct qmgr *qm, struct qmgr_message *m)
{
    size_t i, n = 0;

    if (qm->delay_warning <= 0 || m->action != QMGR_ACTION_NONE || sender_kind(qm, m) != 0 ||
        (long long)time(NULL) - m->qf.arrival_sec < qm->delay_warning ||
        (long long)time(NULL) - m->qf.arrival_sec >= qm->lifetime)
        return 0;
    for (i = 0; i < m->qf.rcpt_count; i++) {
        if (m->qf.rcpts[i].status == QFILE_RCPT_PENDING &&
            qmgr_notify_has(m->qf.rcpts[i].notify, "DELAY"))
            m->rcpt[i].in_notice = 1, n++;
    }
    return n;
}

/* notice_select - mark the recipients of this step's notice; how many */
static size_t notice_select(struct qmgr *qm, struct qmgr_message *m, enum qmgr_notice_kind kind,
                            int *postmaster)
{
    int fd = -1;
    size_t n = 0;

    *postmaster = 0;
    if (kind == QMGR_NOTICE_FAILURE)
        n = select_failure(qm, m, postmaster, &fd);
    else if (kind == QMGR_NOTICE_SUCCESS)
        n = select_success(qm, m, &fd);
    else if (kind == QMGR_NOTICE_DELAY)
        n = select_delay(qm, m);
    if (fd >= 0)
        close(fd);
    return n;
}

/* notice_mark_done - cleanup took the notice: record it per recipient */
static void notice_mark_done(struct qmgr_message *m, enum qmgr_notice_kind kind)
{
    static const char done_status[] = {QFILE_RCPT_BOUNCED, QFILE_RCPT_SENT, QFILE_RCPT_WARNED};
    int fd = -1;

    for (size_t i = 0; i < m->qf.rcpt_count; i++) {
        if (!m->rcpt[i].in_notice)
            continue;
        m->rcpt[i].in_notice = 0;
        qmgr_message_set_status(m, i, done_status[kind], &fd);
    }
    if (fd >= 0)
        close(fd);
}

/* notice_clear - forget the in_notice marks */
static void notice_clear(struct qmgr_message *m)
{
    for (size_t i = 0; i < m->qf.rcpt_count; i++)
        m->rcpt[i].in_notice = 0;
}

/* notice_log - the "sender non-delivery notification: ID" event; sendmail's
 * form names the first reported recipient's reason */
static void notice_log(const struct qmgr_message *m, const struct notice_job *job, const char *kind,
                       const char *queue_id)
{
    struct maillog_notice ev = {
        .queue_id = m->id,
        .notice_id = queue_id,
        .kind = kind,
        .postmaster = job->postmaster,
    };

    for (size_t i = 0; i < m->qf.rcpt_count && ev.reason == NULL; i++)
        if (m->rcpt[i].in_notice)
            ev.reason = m->rcpt[i].reason;
    maillog_log_notice(&ev);
}

/* notice_done - cleanup answered (or failed) for a notice */
static void notice_done(struct qmgr *qm, void *ctx, int ok, const char *queue_id, const char *why)
{
    static const char *const words[] = {"non-delivery", "delivery status", "delay"};
    struct notice_job *job = ctx;
    struct qmgr_message *m = job->m;

    if (ok) {
        notice_log(m, job, words[job->kind], queue_id);
        notice_mark_done(m, job->kind);
    } else {
        log_warn("%s: cannot queue the %s notification: %s (retried later)", m->id,
                 words[job->kind], why ? why : "unknown error");
        notice_clear(m);
    }
    free(job);
    m->notice_step++;
    notice_next(qm, m);
}

/* notice_envelope - the cleanup.submit request of a notice to rcpt */
static void notice_envelope(const struct qmgr *qm, const struct qmgr_message *m, int postmaster,
                            const char *rcpt, buf_t *out)
{
    const char *body = qmgr_message_body_type(m);

    attr_begin(out, "cleanup.submit");
    attr_add_str(out, "sender", postmaster ? qm->double_bounce_sender : "");
    attr_add_str(out, "client_name", "localhost");
    attr_add_str(out, "client_addr", "");
    attr_add_str(out, "helo", "");
    attr_add_str(out, "protocol", "local");
    if (body != NULL)
        attr_add_str(out, "body", body);
    if (qmgr_message_requiretls(m)) /* RFC 8689 5: the notice keeps the promise */
        attr_add_str(out, "requiretls", "yes");
    if (qmgr_message_smtputf8(m) || !smtputf8_is_ascii(rcpt, strlen(rcpt))) /* RFC 6533 */
        attr_add_str(out, "smtputf8", "yes");
    qmgr_submit_add_rcpt(out, rcpt, rcpt, "", "");
    attr_end(out);
}

/* notice_send - compose and submit the notice of kind; -1 when it cannot */
static int notice_send(struct qmgr *qm, struct qmgr_message *m, enum qmgr_notice_kind kind,
                       int postmaster)
{
    const char *to = postmaster ? qm->bounce_notice_recipient : m->qf.sender;
    buf_t submit = BUF_INIT, content = BUF_INIT;
    struct notice_job *job;

    if (qmgr_bounce_compose(qm, m, kind, postmaster, to, &content) < 0) {
        buf_free(&content);
        return -1;
    }
    notice_envelope(qm, m, postmaster, to, &submit);
    job = xcalloc(1, sizeof(*job));
    job->m = m;
    job->kind = kind;
    job->postmaster = postmaster;
    qmgr_submit_start(qm, &submit, content.data, content.len, notice_done, job);
    buf_free(&submit);
    buf_free(&content);
    return 0;
}

/* notice_next - start the next owed notice, or dispose of the message */
static void notice_next(struct qmgr *qm, struct qmgr_message *m)
{
    int postmaster;

    for (; m->notice_step < QMGR_NOTICE_DONE; m->notice_step++) {
        if (m->action == QMGR_ACTION_DELETE)
            break;
        if (notice_select(qm, m, m->notice_step, &postmaster) == 0)
            continue;
        if (notice_send(qm, m, m->notice_step, postmaster) == 0)
            return; /* notice_done continues */
        notice_clear(m);
    }
    m->finishing = 0;
    qmgr_message_dispose(qm, m);
}

/* qmgr_notice_start - the message's requests have ended: send the notices
 * it owes one after another, then qmgr_message_dispose */
void qmgr_notice_start(struct qmgr *qm, struct qmgr_message *m)
{
    m->finishing = 1;
    m->notice_step = QMGR_NOTICE_FAILURE;
    notice_next(qm, m);
}
