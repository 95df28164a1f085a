/*
 * cleanup_stream - stream one message to cleanup over private/cleanup.
 *
 * See cleanup_stream.h.  One connection per message.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "attr.h"
#include "cleanup_stream.h"
#include "log.h"
#include "milter.h"
#include "service.h"

/* when more than this waits for cleanup, the session stops reading */
#define CLEANUP_STREAM_LOW_WATER (64 * 1024)
#define CLEANUP_STREAM_TEXT_MAX 200
#define CLEANUP_STREAM_QID_MAX 64
/* longest whole reply of cleanup's (a milter's multi-line refusal) */
#define CLEANUP_STREAM_REPLY_MAX 8192

struct cleanup_stream {
    struct bufferevent *bev;
    struct cleanup_stream_callbacks cb;
    long long timeout;
    int ended;    /* cleanup.end was sent */
    int finished; /* on_reply was called */
    struct attr_msg msg;
    buf_t out;
};

/* cleanup_stream_finish - report once; msg: cleanup.reply, or NULL */
static void cleanup_stream_finish(struct cleanup_stream *cs, const char *reply, const char *qid,
                                  const struct attr_msg *msg)
{
    if (cs->finished)
        return;
    cs->finished = 1;
    bufferevent_disable(cs->bev, EV_READ | EV_WRITE);
    cs->cb.on_reply(cs->cb.ctx, reply, qid, msg);
}

/* cleanup_stream_qid_ok - a queue ID we are willing to show the client */
static int cleanup_stream_qid_ok(const char *qid)
{
    size_t n = strlen(qid);

    if (n == 0 || n > CLEANUP_STREAM_QID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)qid[i]))
            return 0;
    }
    return 1;
}

/* cleanup_stream_dsn_ok - "C.x.y" with C the class of code */
static int cleanup_stream_dsn_ok(const char *dsn, long long code)
{
    int c1, n = 0;
    int s2, s3;

    if (sscanf(dsn, "%1d.%3d.%3d%n", &c1, &s2, &s3, &n) != 3 || dsn[n] != '\0')
        return 0;
    return c1 == code / 100 && s2 >= 0 && s3 >= 0;
}

/* cleanup_stream_whole_reply - a "reply" attribute: printable lines
 * separated by "\r\n", each with a code of the status's class; 1 when it
 * is one (copied to reply) */
static int cleanup_stream_whole_reply(const struct attr_msg *m, int temp, buf_t *reply)
{
    size_t len = 0;
    const char *text = attr_get(m, "reply", &len);
    char class = temp ? '4' : '5';

    if (text == NULL || len == 0 || len > CLEANUP_STREAM_REPLY_MAX || strlen(text) != len)
        return 0;
    for (const char *line = text; *line != '\0';) {
        size_t n = strcspn(line, "\r");
        if (n < 3 || line[0] != class || !isdigit((unsigned char)line[1]) ||
            !isdigit((unsigned char)line[2]) || (n > 3 && line[3] != ' ' && line[3] != '-'))
            return 0;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
                return 0;
        line += n;
        if (*line == '\r' && (line[1] != '\n' || line[2] == '\0'))
            return 0;
        if (*line == '\r')
            line += 2;
    }
    buf_set(reply, text);
    return 1;
}

/* cleanup_stream_failure_reply - "code dsn text" from a failure answer */
static void cleanup_stream_failure_reply(const struct attr_msg *m, int temp, buf_t *reply)
{
    long long code = 0;
    const char *dsn = attr_get(m, "dsn", NULL);
    size_t tlen = 0;
    const char *text = attr_get(m, "text", &tlen);
    long long lo = temp ? 400 : 500;

    if (cleanup_stream_whole_reply(m, temp, reply))
        return;
    if (attr_get_int(m, "code", lo, lo + 99, &code) < 0 || dsn == NULL ||
        !cleanup_stream_dsn_ok(dsn, code)) {
        buf_set(reply, temp ? CLEANUP_STREAM_FAILURE : "554 5.3.0 Error: message rejected");
        return;
    }
    buf_printf(reply, "%lld %s ", code, dsn);
    if (text == NULL || tlen == 0) {
        buf_puts(reply, temp ? "Error: try again later" : "Error: message rejected");
        return;
    }
    for (size_t i = 0; i < tlen && i < CLEANUP_STREAM_TEXT_MAX; i++) {
        unsigned char c = (unsigned char)text[i];
        buf_putc(reply, (c >= 0x20 && c < 0x7f) ? c : '?');
    }
}

/* cleanup_stream_answer - turn cleanup.reply into the client's reply */
static void cleanup_stream_answer(struct cleanup_stream *cs)
{
    const char *proto = attr_proto(&cs->msg);
    const char *status = attr_get(&cs->msg, "status", NULL);
    const char *qid = attr_get(&cs->msg, "queue_id", NULL);
    const struct attr_msg *answered = &cs->msg;
    buf_t reply = BUF_INIT;

    if (qid == NULL || !cleanup_stream_qid_ok(qid))
        qid = "";
    if (proto == NULL || strcmp(proto, "cleanup.reply") != 0 || status == NULL) {
        log_warn("cleanup sent an unexpected message; dropping the connection");
        buf_set(&reply, CLEANUP_STREAM_FAILURE);
        answered = NULL;
    } else if (strcmp(status, "ok") == 0 && qid[0] != '\0') {
        buf_printf(&reply, "250 2.0.0 Ok: queued as %s", qid);
    } else if (strcmp(status, "tempfail") == 0 || strcmp(status, "permfail") == 0) {
        cleanup_stream_failure_reply(&cs->msg, status[0] == 't', &reply);
    } else {
        log_warn("cleanup sent a bad status or queue ID; dropping the connection");
        buf_set(&reply, CLEANUP_STREAM_FAILURE);
    }
    cleanup_stream_finish(cs, buf_cstr(&reply), qid, answered);
    buf_free(&reply);
}

/* cleanup_stream_on_read - decode cleanup's one answer */
static void cleanup_stream_on_read(struct bufferevent *bev, void *arg)
{
    struct cleanup_stream *cs = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    size_t used = 0;
    const char *data;
    int rc;

    if (cs->finished)
        return;
    if (len > ATTR_MAX_MESSAGE + 4)
        len = ATTR_MAX_MESSAGE + 4;
    data = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
    rc = attr_decode(data, len, &used, &cs->msg);
    if (rc < 0) {
        log_warn("cleanup sent a malformed message; dropping the connection");
        cleanup_stream_finish(cs, CLEANUP_STREAM_FAILURE, "", NULL);
        return;
    }
    if (rc == 0)
        return;
    evbuffer_drain(in, used);
    cleanup_stream_answer(cs);
}

/* cleanup_stream_on_write - output drained: let the session read again */
static void cleanup_stream_on_write(struct bufferevent *bev, void *arg)
{
    struct cleanup_stream *cs = arg;

    if (!cs->finished && cs->cb.on_drained != NULL)
        cs->cb.on_drained(cs->cb.ctx);
}

/* cleanup_stream_on_event - EOF, error, timeout: the message is lost */
static void cleanup_stream_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct cleanup_stream *cs = arg;

    if (what & BEV_EVENT_TIMEOUT)
        log_warn("timeout talking to cleanup (private/cleanup)");
    else if (what & BEV_EVENT_EOF)
        log_warn("cleanup closed the connection before answering");
    else
        log_warn("error talking to cleanup (private/cleanup)");
    cleanup_stream_finish(cs, CLEANUP_STREAM_FAILURE, "", NULL);
}

/* cleanup_stream_set_timeouts - write always bounded; read only after end */
static void cleanup_stream_set_timeouts(struct cleanup_stream *cs)
{
    struct timeval tv = {(time_t)cs->timeout, 0};

    bufferevent_set_timeouts(cs->bev, cs->ended ? &tv : NULL, &tv);
}

/* cleanup_stream_open - connect and send the envelope */
struct cleanup_stream *cleanup_stream_open(struct event_base *base, const buf_t *submit,
                                           const int *fds, size_t nfds,
                                           const struct cleanup_stream_callbacks *cb,
                                           long long timeout)
{
    struct cleanup_stream *cs;
    int fd = unix_connect("private/cleanup", 1);

    if (fd < 0) {
        log_warn("cannot connect to private/cleanup: %m (is the cleanup service running?)");
        return NULL;
    }
    if (nfds > 0 && milter_fd_send(fd, fds, nfds) < 0) {
        log_warn("cannot pass the milter connections to cleanup: %m");
        close(fd);
        return NULL;
    }
    cs = xcalloc(1, sizeof(*cs));
    cs->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (cs->bev == NULL) {
        close(fd);
        free(cs);
        log_warn("cannot set up the cleanup connection");
        return NULL;
    }
    cs->cb = *cb;
    cs->timeout = timeout;
    attr_msg_init(&cs->msg);
    buf_init(&cs->out);
    bufferevent_setcb(cs->bev, cleanup_stream_on_read, cleanup_stream_on_write,
                      cleanup_stream_on_event, cs);
    bufferevent_setwatermark(cs->bev, EV_WRITE, CLEANUP_STREAM_LOW_WATER, 0);
    cleanup_stream_set_timeouts(cs);
    bufferevent_enable(cs->bev, EV_READ | EV_WRITE);
    bufferevent_write(cs->bev, submit->data, submit->len);
    return cs;
}

/* cleanup_stream_data - content in pieces of at most 64 KiB */
void cleanup_stream_data(struct cleanup_stream *cs, const char *data, size_t len)
{
    while (len > 0 && !cs->finished) {
        size_t n = len < CLEANUP_STREAM_CHUNK ? len : CLEANUP_STREAM_CHUNK;

        buf_reset(&cs->out);
        attr_begin(&cs->out, "cleanup.data");
        attr_add(&cs->out, "data", data, n);
        attr_end(&cs->out);
        bufferevent_write(cs->bev, cs->out.data, cs->out.len);
        data += n;
        len -= n;
    }
}

/* cleanup_stream_pending - what still waits in the output buffer */
size_t cleanup_stream_pending(const struct cleanup_stream *cs)
{
    return evbuffer_get_length(bufferevent_get_output(cs->bev));
}

/* cleanup_stream_end - the content is complete */
void cleanup_stream_end(struct cleanup_stream *cs, const char *hold)
{
    if (cs->finished || cs->ended)
        return;
    cs->ended = 1;
    buf_reset(&cs->out);
    attr_begin(&cs->out, "cleanup.end");
    if (hold != NULL)
        attr_add_str(&cs->out, "hold", hold);
    attr_end(&cs->out);
    bufferevent_write(cs->bev, cs->out.data, cs->out.len);
    cleanup_stream_set_timeouts(cs);
}

/* cleanup_stream_abort - best effort: tell cleanup when nothing is queued */
static void cleanup_stream_abort(struct cleanup_stream *cs)
{
    if (cs->ended || cs->finished || cleanup_stream_pending(cs) > 0)
        return;
    buf_reset(&cs->out);
    attr_begin(&cs->out, "cleanup.abort");
    attr_end(&cs->out);
    if (write(bufferevent_getfd(cs->bev), cs->out.data, cs->out.len) < 0)
        log_debug("cleanup.abort not sent: %m (closing is enough)");
}

int cleanup_stream_ended(const struct cleanup_stream *cs)
{
    return cs->ended;
}

/* cleanup_stream_close - drop the connection and free */
void cleanup_stream_close(struct cleanup_stream *cs)
{
    if (cs == NULL)
        return;
    cleanup_stream_abort(cs);
    bufferevent_free(cs->bev);
    attr_msg_free(&cs->msg);
    buf_free(&cs->out);
    free(cs);
}
