/*
 * anvil_client - the worker's connection to tern-anvil and the limits it
 * serves (see anvil_client.h).
 *
 * One connection per worker (smtpd_anvil below).  Every request gets one
 * reply, in order, so the requests waiting for theirs form a FIFO; the
 * session that asked may have gone meanwhile (its entry then has no
 * session).  A connection that breaks, answers out of turn or keeps the
 * oldest request waiting too long is dropped, and every waiting session
 * goes on as if under its limits.  tern-anvil releases what a dropped
 * connection held, so a session counted on an earlier connection
 * (generation) does not report its disconnect on the next one.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "anvil_client.h"
#include "attr.h"
#include "log.h"
#include "service.h"
#include "session.h"

/* a reply is a few numbers */
#define SMTPD_ANVIL_REPLY_MAX 4096
/* no new connection for this long after a timeout (seconds): a hung
 * tern-anvil must not hold every greeting for SMTPD_ANVIL_TIMEOUT */
#define SMTPD_ANVIL_RETRY_AFTER_TIMEOUT 10
/* at most one "limits not applied" warning per this many seconds */
#define SMTPD_ANVIL_WARN_INTERVAL 60

enum smtpd_anvil_kind {
    SMTPD_ANVIL_CONNECT,
    SMTPD_ANVIL_MESSAGE,
    SMTPD_ANVIL_RECIPIENT,
    SMTPD_ANVIL_AUTH,
    SMTPD_ANVIL_DISCONNECT,
};

/* one request waiting for its reply */
struct smtpd_anvil_wait {
    struct smtpd_anvil_wait *next;
    struct session *s; /* NULL: nobody waits for the answer */
    enum smtpd_anvil_kind kind;
    struct timespec sent; /* CLOCK_MONOTONIC */
};

/* a session's part (s->anvil_state) */
struct smtpd_anvil_session {
    unsigned long generation; /* the connection its connect went on; 0: none */
    buf_t ident;              /* what the connect counted: the disconnect's */
    struct smtpd_anvil_wait *wait;
    buf_t line; /* the command waiting for the answer */
};

/* the worker's connection */
static struct {
    struct event_base *base;
    struct bufferevent *bev; /* NULL: not connected */
    unsigned long generation;
    struct smtpd_anvil_wait *head, *tail;
    struct event *timer; /* the oldest request's deadline */
    struct attr_msg msg;
    time_t retry_at;
    time_t warned_at;
} smtpd_anvil;

/* the request, the reply's counter, the log line and the 450 reply of each kind */
static const struct {
    const char *proto;
    const char *what; /* "%lld from unknown[IP] for service S" follows */
    const char *reply;
} smtpd_anvil_kinds[] = {
    [SMTPD_ANVIL_CONNECT] = {"anvil.connect", NULL, NULL},
    [SMTPD_ANVIL_MESSAGE] = {"anvil.message", "Message delivery request rate limit exceeded",
                             "450 4.7.1 Error: too much mail from %s"},
    [SMTPD_ANVIL_RECIPIENT] = {"anvil.recipient", "Recipient address rate limit exceeded",
                               "450 4.7.1 Error: too many recipients from %s"},
    [SMTPD_ANVIL_AUTH] = {"anvil.auth", "AUTH command rate limit exceeded",
                          "450 4.7.1 Error: too many AUTH commands from %s"},
    [SMTPD_ANVIL_DISCONNECT] = {"anvil.disconnect", NULL, NULL},
};

static void smtpd_anvil_answer(struct smtpd_anvil_wait *w, const struct attr_msg *m);

/* smtpd_anvil_service - the service name in idents and log lines:
 * Postfix's "smtp" for the smtpd listener, else the listener's name */
static const char *smtpd_anvil_service(const struct session *s)
{
    return strcmp(s->cfg->listener, "smtpd") == 0 ? "smtp" : s->cfg->listener;
}

/* smtpd_anvil_applies - the client's address is known (not XCLIENT
 * ADDR=[UNAVAILABLE]: such clients would share one "smtp:unknown" count)
 * and not in smtpd_client_event_limit_exceptions */
static int smtpd_anvil_applies(const struct session *s)
{
    const struct smtpd_client_limits *l = &s->cfg->client_limits;

    if (s->sa.ss_family != AF_INET && s->sa.ss_family != AF_INET6)
        return 0;
    return !netaddr_match((const struct sockaddr *)&s->sa, l->exceptions, l->exception_count);
}

/* smtpd_anvil_now - the monotonic clock */
static struct timespec smtpd_anvil_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts;
}

/* smtpd_anvil_arm - the timer for the oldest request, or none */
static void smtpd_anvil_arm(void)
{
    struct timespec now = smtpd_anvil_now();
    struct timeval tv = {0, 0};
    long long ms;

    if (smtpd_anvil.head == NULL) {
        evtimer_del(smtpd_anvil.timer);
        return;
    }
    ms = (long long)(smtpd_anvil.head->sent.tv_sec + SMTPD_ANVIL_TIMEOUT - now.tv_sec) * 1000 +
         (smtpd_anvil.head->sent.tv_nsec - now.tv_nsec) / 1000000;
    if (ms > 0) {
        tv.tv_sec = (time_t)(ms / 1000);
        tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    }
    evtimer_add(smtpd_anvil.timer, &tv);
}

/* smtpd_anvil_warn - the fail-open warning, at most once a minute */
static void smtpd_anvil_warn(const char *why)
{
    time_t now = time(NULL);

    if (smtpd_anvil.warned_at != 0 && now - smtpd_anvil.warned_at < SMTPD_ANVIL_WARN_INTERVAL)
        return;
    smtpd_anvil.warned_at = now;
    log_warn("tern-anvil (private/anvil): %s; connection and rate limits are not applied "
             "until it answers again",
             why);
}

/* smtpd_anvil_fail - drop the connection; every waiting session goes on */
static void smtpd_anvil_fail(const char *why, int timeout)
{
    struct smtpd_anvil_wait *w = smtpd_anvil.head;

    smtpd_anvil_warn(why);
    if (smtpd_anvil.bev != NULL)
        bufferevent_free(smtpd_anvil.bev);
    smtpd_anvil.bev = NULL;
    smtpd_anvil.head = smtpd_anvil.tail = NULL;
    evtimer_del(smtpd_anvil.timer);
    if (timeout)
        smtpd_anvil.retry_at = time(NULL) + SMTPD_ANVIL_RETRY_AFTER_TIMEOUT;
    while (w != NULL) { /* answers may ask again: the list is detached */
        struct smtpd_anvil_wait *next = w->next;
        smtpd_anvil_answer(w, NULL);
        w = next;
    }
}

/* smtpd_anvil_on_timer - the oldest request had no answer in time */
static void smtpd_anvil_on_timer(evutil_socket_t fd, short what, void *arg)
{
    smtpd_anvil_fail("no answer within 2s", 1);
}

/* smtpd_anvil_reply_ok - a well-formed reply; -1 drops the connection */
static int smtpd_anvil_reply_ok(const struct attr_msg *m)
{
    const char *proto = attr_proto(m);

    return proto != NULL && strcmp(proto, "anvil.reply") == 0 ? 0 : -1;
}

/* smtpd_anvil_on_read - replies, in the order of the requests */
static void smtpd_anvil_on_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);

    while (smtpd_anvil.bev == bev && evbuffer_get_length(in) > 0) {
        size_t len = evbuffer_get_length(in);
        size_t used = 0;
        struct smtpd_anvil_wait *w;
        int rc;

        if (len > SMTPD_ANVIL_REPLY_MAX + 4)
            len = SMTPD_ANVIL_REPLY_MAX + 4;
        rc = attr_decode((const char *)evbuffer_pullup(in, (ev_ssize_t)len), len, &used,
                         &smtpd_anvil.msg);
        if (rc == 0 && len <= SMTPD_ANVIL_REPLY_MAX)
            return;
        if (rc <= 0 || smtpd_anvil_reply_ok(&smtpd_anvil.msg) < 0 || smtpd_anvil.head == NULL) {
            smtpd_anvil_fail(rc <= 0 || smtpd_anvil.head != NULL ? "sent a malformed reply"
                                                                 : "sent a reply nobody asked for",
                             0);
            return;
        }
        evbuffer_drain(in, used);
        w = smtpd_anvil.head;
        if ((smtpd_anvil.head = w->next) == NULL)
            smtpd_anvil.tail = NULL;
        smtpd_anvil_arm();
        smtpd_anvil_answer(w, &smtpd_anvil.msg);
    }
}

/* smtpd_anvil_on_event - EOF or error: tern-anvil went away */
static void smtpd_anvil_on_event(struct bufferevent *bev, short what, void *arg)
{
    smtpd_anvil_fail(what & BEV_EVENT_EOF ? "closed the connection" : "connection error", 0);
}

/* smtpd_anvil_connect - the connection, made when there is none; -1 when
 * tern-anvil cannot be reached now */
static int smtpd_anvil_connect(struct event_base *base)
{
    int fd;

    if (smtpd_anvil.bev != NULL)
        return 0;
    if (smtpd_anvil.timer == NULL) {
        smtpd_anvil.base = base;
        smtpd_anvil.timer = evtimer_new(base, smtpd_anvil_on_timer, NULL);
        attr_msg_init(&smtpd_anvil.msg);
    }
    if (time(NULL) < smtpd_anvil.retry_at)
        return -1;
    if ((fd = unix_connect("private/anvil", 1)) < 0) {
        smtpd_anvil_warn("cannot connect (is tern-anvil running?)");
        return -1;
    }
    smtpd_anvil.bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (smtpd_anvil.bev == NULL)
        log_panic("bufferevent_socket_new failed");
    smtpd_anvil.generation++;
    bufferevent_setcb(smtpd_anvil.bev, smtpd_anvil_on_read, NULL, smtpd_anvil_on_event, NULL);
    bufferevent_enable(smtpd_anvil.bev, EV_READ | EV_WRITE);
    return 0;
}

/* smtpd_anvil_ident - "service:client address", what tern-anvil counts */
static void smtpd_anvil_ident(const struct session *s, buf_t *ident)
{
    buf_reset(ident);
    buf_printf(ident, "%s:%s", smtpd_anvil_service(s), s->ip);
}

/* smtpd_anvil_send - one request about ident (s's client); NULL when
 * tern-anvil cannot be reached (the limit does not apply) */
static struct smtpd_anvil_wait *smtpd_anvil_send(struct session *s, enum smtpd_anvil_kind kind,
                                                 const buf_t *ident)
{
    struct smtpd_anvil_wait *w;
    buf_t msg = BUF_INIT;

    if (smtpd_anvil_connect(s->server->svc.base) < 0)
        return NULL;
    attr_begin(&msg, smtpd_anvil_kinds[kind].proto);
    attr_add_str(&msg, "ident", buf_cstr(ident));
    attr_end(&msg);
    bufferevent_write(smtpd_anvil.bev, msg.data, msg.len);
    buf_free(&msg);
    w = xcalloc(1, sizeof(*w));
    w->s = kind == SMTPD_ANVIL_DISCONNECT ? NULL : s;
    w->kind = kind;
    w->sent = smtpd_anvil_now();
    if (smtpd_anvil.tail != NULL)
        smtpd_anvil.tail->next = w;
    else
        smtpd_anvil.head = w;
    smtpd_anvil.tail = w;
    if (w == smtpd_anvil.head)
        smtpd_anvil_arm();
    return w;
}

/* smtpd_anvil_state - s's part, made on first use */
static struct smtpd_anvil_session *smtpd_anvil_state(struct session *s)
{
    if (s->anvil_state == NULL)
        s->anvil_state = xcalloc(1, sizeof(struct smtpd_anvil_session));
    return s->anvil_state;
}

/* smtpd_anvil_number - a counter of the reply; -1 when missing */
static long long smtpd_anvil_number(const struct attr_msg *m, const char *name)
{
    const char *status = m != NULL ? attr_get(m, "status", NULL) : NULL;
    long long value = -1;

    if (status == NULL || strcmp(status, "ok") != 0 ||
        attr_get_int(m, name, 0, 1LL << 62, &value) < 0)
        return -1;
    return value;
}

/* smtpd_anvil_refuse_connection - 421 instead of the greeting */
static void smtpd_anvil_refuse_connection(struct session *s, const char *what, long long n)
{
    buf_t reply = BUF_INIT;

    log_warn("%s limit exceeded: %lld from %s for service %s", what, n, s->client,
             smtpd_anvil_service(s));
    buf_printf(&reply, "421 4.7.0 %s Error: too many connections from %s", s->cfg->myhostname,
               s->ip);
    session_refuse(s, buf_cstr(&reply));
    buf_free(&reply);
}

/* smtpd_anvil_connect_verdict - the connection's count and rate against
 * the limits (m NULL: no answer, no limit) */
static void smtpd_anvil_connect_verdict(struct session *s, const struct attr_msg *m)
{
    const struct smtpd_client_limits *l = &s->cfg->client_limits;
    long long count = smtpd_anvil_number(m, "count");
    long long rate = smtpd_anvil_number(m, "rate");

    if (l->connection_count > 0 && count > l->connection_count)
        smtpd_anvil_refuse_connection(s, "Connection concurrency", count);
    else if (l->connection_rate > 0 && rate > l->connection_rate)
        smtpd_anvil_refuse_connection(s, "Connection rate", rate);
    else
        session_greet_release(s);
}

/* smtpd_anvil_limit - the listener's limit for a rate kind */
static long long smtpd_anvil_limit(const struct session *s, enum smtpd_anvil_kind kind)
{
    const struct smtpd_client_limits *l = &s->cfg->client_limits;

    switch (kind) {
    case SMTPD_ANVIL_MESSAGE:
        return l->message_rate;
    case SMTPD_ANVIL_RECIPIENT:
        return l->recipient_rate;
    case SMTPD_ANVIL_AUTH:
        return l->auth_rate;
    default:
        return 0;
    }
}

/* smtpd_anvil_command_verdict - run the waiting command, or refuse it;
 * then read on */
static void smtpd_anvil_command_verdict(struct session *s, enum smtpd_anvil_kind kind,
                                        const struct attr_msg *m)
{
    struct smtpd_anvil_session *a = s->anvil_state;
    long long rate = smtpd_anvil_number(m, "rate");
    long long limit = smtpd_anvil_limit(s, kind);

    if (s->state != SESSION_ANVIL_WAIT) { /* closing meanwhile */
        buf_wipe(&a->line);
        return;
    }
    s->state = SESSION_CMD;
    if (limit > 0 && rate > limit) {
        log_warn("%s: %lld from %s for service %s", smtpd_anvil_kinds[kind].what, rate, s->client,
                 smtpd_anvil_service(s));
        session_reply(s, smtpd_anvil_kinds[kind].reply, s->ip);
    } else {
        session_command_run(s, a->line.data, a->line.len);
    }
    buf_wipe(&a->line); /* it may be AUTH with an initial response */
    buf_free(&a->line);
    if (s->state == SESSION_CMD || s->state == SESSION_AUTH)
        session_resume_input(s);
}

/* smtpd_anvil_answer - hand the answer to w's session (m NULL: none) */
static void smtpd_anvil_answer(struct smtpd_anvil_wait *w, const struct attr_msg *m)
{
    struct session *s = w->s;
    enum smtpd_anvil_kind kind = w->kind;

    free(w);
    if (s == NULL)
        return;
    ((struct smtpd_anvil_session *)s->anvil_state)->wait = NULL;
    if (kind == SMTPD_ANVIL_CONNECT)
        smtpd_anvil_connect_verdict(s, m);
    else
        smtpd_anvil_command_verdict(s, kind, m);
}

void smtpd_anvil_session_start(struct session *s)
{
    const struct smtpd_client_limits *l = &s->cfg->client_limits;
    struct smtpd_anvil_session *a;
    buf_t ident = BUF_INIT;
    struct smtpd_anvil_wait *w;

    if ((l->connection_count == 0 && l->connection_rate == 0 && l->message_rate == 0 &&
         l->recipient_rate == 0 && l->auth_rate == 0) ||
        !smtpd_anvil_applies(s))
        return;
    smtpd_anvil_ident(s, &ident);
    if ((w = smtpd_anvil_send(s, SMTPD_ANVIL_CONNECT, &ident)) == NULL) {
        buf_free(&ident);
        return;
    }
    a = smtpd_anvil_state(s);
    a->wait = w;
    a->generation = smtpd_anvil.generation;
    buf_free(&a->ident);
    a->ident = ident;
    session_greet_hold(s);
}

void smtpd_anvil_client_changed(struct session *s)
{
    smtpd_anvil_session_end(s);
    smtpd_anvil_session_start(s);
}

/* smtpd_anvil_kind_of - the rate a command counts in, when the command
 * would get that far (MAIL in a transaction, RCPT without one, AUTH where
 * it is not offered do not count); -1 for none */
static int smtpd_anvil_kind_of(const struct session *s, enum proto_cmd cmd)
{
    if (cmd == PROTO_CMD_MAIL && !s->have_mail)
        return SMTPD_ANVIL_MESSAGE;
    if (cmd == PROTO_CMD_RCPT && s->have_mail)
        return SMTPD_ANVIL_RECIPIENT;
    if (cmd == PROTO_CMD_AUTH && s->cfg->auth != NULL && s->sasl_username == NULL)
        return SMTPD_ANVIL_AUTH;
    return -1;
}

int smtpd_anvil_command(struct session *s, enum proto_cmd cmd, const char *line, size_t len)
{
    int kind = smtpd_anvil_kind_of(s, cmd);
    struct smtpd_anvil_session *a;
    struct smtpd_anvil_wait *w;
    buf_t ident = BUF_INIT;

    if (kind < 0 || smtpd_anvil_limit(s, (enum smtpd_anvil_kind)kind) == 0 ||
        !smtpd_anvil_applies(s))
        return 0;
    smtpd_anvil_ident(s, &ident);
    w = smtpd_anvil_send(s, (enum smtpd_anvil_kind)kind, &ident);
    buf_free(&ident);
    if (w == NULL)
        return 0;
    a = smtpd_anvil_state(s);
    a->wait = w;
    buf_reset(&a->line);
    buf_append(&a->line, line, len);
    s->state = SESSION_ANVIL_WAIT;
    session_pause_input(s);
    return 1;
}

void smtpd_anvil_session_end(struct session *s)
{
    struct smtpd_anvil_session *a = s->anvil_state;

    if (a == NULL)
        return;
    if (a->wait != NULL)
        a->wait->s = NULL;
    if (a->generation != 0 && a->generation == smtpd_anvil.generation && smtpd_anvil.bev != NULL)
        smtpd_anvil_send(s, SMTPD_ANVIL_DISCONNECT, &a->ident);
    buf_wipe(&a->line);
    buf_free(&a->line);
    buf_free(&a->ident);
    free(a);
    s->anvil_state = NULL;
}
