/*
 * auth_stream - smtpd's connection to tern-auth for one AUTH exchange (see
 * auth_stream.h).
 */
#include <stdlib.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "auth_stream.h"
#include "log.h"
#include "service.h"

/* a reply is small: a challenge, a user name or a reason */
#define SMTPD_AUTH_STREAM_REPLY_MAX (128 * 1024)

struct smtpd_auth_stream {
    struct bufferevent *bev;
    smtpd_auth_stream_fn on_reply;
    void *ctx;
    long long timeout;
    int failed;
    int outstanding; /* a request was sent and its reply has not come */
    struct attr_msg msg;
};

/* smtpd_auth_stream_fail - report the broken connection once */
static void smtpd_auth_stream_fail(struct smtpd_auth_stream *st, const char *why)
{
    if (st->failed)
        return;
    st->failed = 1;
    log_warn("tern-auth (private/auth): %s", why);
    bufferevent_disable(st->bev, EV_READ | EV_WRITE);
    st->on_reply(st->ctx, NULL);
}

/* smtpd_auth_stream_on_read - one reply */
static void smtpd_auth_stream_on_read(struct bufferevent *bev, void *arg)
{
    struct smtpd_auth_stream *st = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    size_t used = 0;
    int rc;

    if (!st->outstanding) {
        /* tern-auth speaks only when asked: anything else ends the exchange */
        smtpd_auth_stream_fail(st, "sent a reply nobody asked for; dropping the connection");
        return;
    }
    if (len > SMTPD_AUTH_STREAM_REPLY_MAX + 4)
        len = SMTPD_AUTH_STREAM_REPLY_MAX + 4;
    rc = attr_decode((const char *)evbuffer_pullup(in, (ev_ssize_t)len), len, &used, &st->msg);
    if (rc < 0 || (rc == 0 && len > SMTPD_AUTH_STREAM_REPLY_MAX)) {
        smtpd_auth_stream_fail(st, "sent a malformed reply; dropping the connection");
        return;
    }
    if (rc == 0)
        return;
    evbuffer_drain(in, used);
    bufferevent_set_timeouts(bev, NULL, NULL);
    st->outstanding = 0;
    if (evbuffer_get_length(in) > 0) { /* more than the one reply */
        smtpd_auth_stream_fail(st, "sent a reply nobody asked for; dropping the connection");
        return;
    }
    st->on_reply(st->ctx, &st->msg);
}

/* smtpd_auth_stream_on_event - EOF, error or timeout */
static void smtpd_auth_stream_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct smtpd_auth_stream *st = arg;

    if (what & BEV_EVENT_TIMEOUT)
        smtpd_auth_stream_fail(st, "no answer in time");
    else if (what & BEV_EVENT_EOF)
        smtpd_auth_stream_fail(st, "closed the connection before answering (see its log)");
    else
        smtpd_auth_stream_fail(st, "connection error");
}

struct smtpd_auth_stream *smtpd_auth_stream_open(struct event_base *base, long long timeout,
                                                 smtpd_auth_stream_fn on_reply, void *ctx)
{
    struct smtpd_auth_stream *st;
    int fd = unix_connect("private/auth", 1);

    if (fd < 0) {
        log_warn("cannot connect to private/auth: %m (is tern-auth running?)");
        return NULL;
    }
    st = xcalloc(1, sizeof(*st));
    st->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (st->bev == NULL) {
        close(fd);
        free(st);
        log_warn("cannot set up the connection to tern-auth");
        return NULL;
    }
    st->on_reply = on_reply;
    st->ctx = ctx;
    st->timeout = timeout;
    attr_msg_init(&st->msg);
    bufferevent_setcb(st->bev, smtpd_auth_stream_on_read, NULL, smtpd_auth_stream_on_event, st);
    bufferevent_enable(st->bev, EV_READ | EV_WRITE);
    return st;
}

void smtpd_auth_stream_send(struct smtpd_auth_stream *st, const buf_t *msg)
{
    struct timeval tv = {(time_t)st->timeout, 0};

    if (st->failed)
        return;
    bufferevent_set_timeouts(st->bev, &tv, &tv);
    st->outstanding = 1;
    bufferevent_write(st->bev, msg->data, msg->len);
}

void smtpd_auth_stream_close(struct smtpd_auth_stream *st)
{
    if (st == NULL)
        return;
    bufferevent_free(st->bev);
    attr_msg_free(&st->msg);
    free(st);
}
