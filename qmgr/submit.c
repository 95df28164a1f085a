/*
 * submit - qmgr's client of the cleanup protocol (docs/internals.md): one
 * non-blocking private/cleanup connection per new message qmgr makes
 * (delivery status notifications, requeued messages).  The whole request
 * (cleanup.submit, cleanup.data chunks, cleanup.end) is queued on a
 * bufferevent; the one cleanup.reply decides.  A connection that fails,
 * closes, times out or answers garbage counts as a failure: the caller keeps
 * its queue file as it is and tries again on a later pass.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attr.h"
#include "buf.h"
#include "log.h"
#include "qid.h"
#include "service.h"
#include "qmgr.h"

/* cleanup.data chunks are at most 64 KiB (docs/internals.md) */
#define SUBMIT_CHUNK (64 * 1024)

/* submit_unlink - take s out of qm's list */
static void submit_unlink(struct qmgr_submit *s)
{
    struct qmgr *qm = s->qm;

    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        qm->submits = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    qm->submit_count--;
}

/* submit_end - report the outcome once and release s */
static void submit_end(struct qmgr_submit *s, int ok, const char *queue_id, const char *why)
{
    struct qmgr *qm = s->qm;
    qmgr_submit_done_fn done = s->done;
    void *ctx = s->ctx;

    submit_unlink(s);
    if (s->bev != NULL)
        bufferevent_free(s->bev);
    free(s);
    done(qm, ctx, ok, queue_id, why);
    qmgr_check_drained(qm);
}

/* submit_read_cb - the one cleanup.reply */
static void submit_read_cb(struct bufferevent *bev, void *arg)
{
    struct qmgr_submit *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in), used = 0;
    struct attr_msg am;
    const char *status, *id, *text;
    int rc;

    attr_msg_init(&am);
    rc = attr_decode((const char *)evbuffer_pullup(in, -1), len, &used, &am);
    if (rc == 0) {
        attr_msg_free(&am);
        return;
    }
    if (rc < 0 || strcmp(attr_proto(&am), "cleanup.reply") != 0) {
        attr_msg_free(&am);
        submit_end(s, 0, NULL, "malformed reply from cleanup");
        return;
    }
    status = attr_get(&am, "status", NULL);
    id = attr_get(&am, "queue_id", NULL);
    text = attr_get(&am, "text", NULL);
    if (status != NULL && strcmp(status, "ok") == 0 && id != NULL && qid_valid(id))
        submit_end(s, 1, id, NULL);
    else
        submit_end(s, 0, NULL, text && *text ? text : "cleanup refused the message");
    attr_msg_free(&am);
}

/* submit_event_cb - closed, error or timeout before the reply */
static void submit_event_cb(struct bufferevent *bev, short what, void *arg)
{
    if (what & BEV_EVENT_CONNECTED)
        return;
    submit_end(arg, 0, NULL,
               (what & BEV_EVENT_TIMEOUT) ? "cleanup timed out" : "cleanup closed the connection");
}

/* submit_encode_content - cleanup.data chunks and cleanup.end */
static void submit_encode_content(buf_t *out, const char *content, size_t len)
{
    size_t off;

    for (off = 0; off < len; off += SUBMIT_CHUNK) {
        size_t n = len - off < SUBMIT_CHUNK ? len - off : SUBMIT_CHUNK;

        attr_begin(out, "cleanup.data");
        attr_add(out, "data", content + off, n);
        attr_end(out);
    }
    attr_begin(out, "cleanup.end");
    attr_end(out);
}

/* submit_fail_later - report a failure from the event loop, not from inside
 * the caller (which may not expect its callback yet) */
static void submit_fail_later(struct qmgr_submit *s)
{
    int fds[2];

    /* a bufferevent on a closed socketpair reports EOF on the next loop pass */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
        log_fatal("cannot create a socket pair: %m");
    close(fds[1]);
    s->bev = bufferevent_socket_new(s->qm->base, fds[0], BEV_OPT_CLOSE_ON_FREE);
    if (s->bev == NULL)
        log_fatal("cannot create a bufferevent");
    bufferevent_setcb(s->bev, NULL, NULL, submit_event_cb, s);
    bufferevent_enable(s->bev, EV_READ);
}

/* qmgr_submit_start - send submit + content + end to private/cleanup */
void qmgr_submit_start(struct qmgr *qm, const buf_t *submit, const char *content, size_t len,
                       qmgr_submit_done_fn done, void *ctx)
{
    struct timeval timeout = {QMGR_SUBMIT_TIMEOUT_SECONDS, 0};
    struct qmgr_submit *s = xcalloc(1, sizeof(*s));
    buf_t out = BUF_INIT;
    int fd;

    s->qm = qm;
    s->done = done;
    s->ctx = ctx;
    s->next = qm->submits;
    if (qm->submits != NULL)
        qm->submits->prev = s;
    qm->submits = s;
    qm->submit_count++;
    if ((fd = unix_connect("private/cleanup", 1)) < 0) {
        log_warn("cannot connect to private/cleanup: %m");
        submit_fail_later(s);
        return;
    }
    set_cloexec(fd);
    s->bev = bufferevent_socket_new(qm->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (s->bev == NULL) {
        close(fd);
        submit_fail_later(s);
        return;
    }
    buf_append(&out, submit->data, submit->len);
    submit_encode_content(&out, content, len);
    bufferevent_setcb(s->bev, submit_read_cb, NULL, submit_event_cb, s);
    bufferevent_set_timeouts(s->bev, &timeout, &timeout);
    bufferevent_write(s->bev, out.data, out.len);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    buf_free(&out);
}

/* qmgr_submit_add_rcpt - the four attributes of one recipient */
void qmgr_submit_add_rcpt(buf_t *out, const char *rcpt, const char *orig, const char *notify,
                          const char *orcpt)
{
    attr_add_str(out, "rcpt", rcpt);
    attr_add_str(out, "orig_rcpt", orig ? orig : rcpt);
    attr_add_str(out, "notify", notify ? notify : "");
    attr_add_str(out, "orcpt", orcpt ? orcpt : "");
}

/* qmgr_submit_free_all - abandon submissions in progress (exit); their
 * queue files still owe what they owed, so the next qmgr redoes them */
void qmgr_submit_free_all(struct qmgr *qm)
{
    while (qm->submits != NULL) {
        struct qmgr_submit *s = qm->submits;

        submit_unlink(s);
        if (s->bev != NULL)
            bufferevent_free(s->bev);
        free(s);
    }
}
