/*
 * policy_client - the client of Postfix's policy delegation protocol (see
 * policy_client.h).
 *
 * A query is in one of three places: waiting in its endpoint's queue, sent
 * on one connection (conn->query == q), or done with its callback due.  Its
 * one event is first the deadline (timeout after ask) and then, once done,
 * the deferred delivery of the answer, so a callback never runs inside
 * smtpd_policy_client_ask or inside this module's own bookkeeping.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "netaddr.h"
#include "policy_client.h"

/* the most bytes one reply can take: every line at its limit, and the end */
#define SMTPD_POLICY_REPLY_MAX (SMTPD_POLICY_REPLY_LINES * (SMTPD_POLICY_REPLY_LINE_MAX + 2) + 2)

enum smtpd_policy_query_state {
    SMTPD_POLICY_QUERY_WAITING, /* in the endpoint's queue */
    SMTPD_POLICY_QUERY_SENT,    /* on a connection, the reply due */
    SMTPD_POLICY_QUERY_DONE,    /* the answer is known, the callback due */
};

struct smtpd_policy_endpoint;
struct smtpd_policy_conn;

struct smtpd_policy_query {
    struct smtpd_policy_clients *clients;
    struct smtpd_policy_endpoint *endpoint;
    struct smtpd_policy_conn *conn; /* SENT */
    enum smtpd_policy_query_state state;
    buf_t request;
    smtpd_policy_client_fn fn;
    void *ctx;
    int retried;      /* already sent again after a broken connection */
    struct event *ev; /* the deadline, then the delivery */
    int status;
    buf_t answer; /* the action, or the reason of a failure */
    struct smtpd_policy_query *next_waiting;
    struct smtpd_policy_query *prev, *next; /* every live query of the pool */
};

struct smtpd_policy_conn {
    struct smtpd_policy_endpoint *endpoint;
    struct bufferevent *bev;
    struct smtpd_policy_query *query; /* in flight; NULL: idle */
    struct event *idle;               /* max_idle while nothing is in flight */
    time_t born;
    int connected;
    int got_reply_bytes; /* some of the current reply has come */
    struct smtpd_policy_conn *next;
};

struct smtpd_policy_endpoint {
    struct smtpd_policy_clients *clients;
    char *name;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    buf_t err; /* non-empty: the endpoint is invalid, every query fails with this */
    struct smtpd_policy_conn *conns;
    int nconns;
    struct smtpd_policy_query *waiting, *waiting_tail;
    struct smtpd_policy_endpoint *next;
};

struct smtpd_policy_clients {
    struct event_base *base;
    long long timeout, max_idle, max_ttl;
    struct smtpd_policy_endpoint *endpoints;
    struct smtpd_policy_query *queries;
};

static void smtpd_policy_endpoint_dispatch(struct smtpd_policy_endpoint *ep);
static void smtpd_policy_endpoint_close_idle(struct smtpd_policy_endpoint *ep);

/* ---- endpoints */

/* smtpd_policy_endpoint_parse_inet - "HOST:PORT" with a numeric host or localhost */
static int smtpd_policy_endpoint_parse_inet(const char *endpoint, const char *hostport,
                                            struct sockaddr_storage *ss, socklen_t *sslen,
                                            buf_t *err)
{
    char host[256];
    int port, bracketed;

    if (netaddr_parse_hostport(hostport, host, sizeof(host), &port, 0, &bracketed) < 0 ||
        port == 0) {
        buf_printf(err, "%s: expected inet:HOST:PORT or inet:[IPV6]:PORT", endpoint);
        return -1;
    }
    if (strcasecmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (netaddr_parse_addr(host, ss) < 0) {
        buf_printf(err,
                   "%s: the host must be a numeric address or localhost (a name would "
                   "need a blocking lookup)",
                   endpoint);
        return -1;
    }
    if (ss->ss_family == AF_INET) {
        ((struct sockaddr_in *)ss)->sin_port = htons((unsigned short)port);
        *sslen = sizeof(struct sockaddr_in);
    } else {
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((unsigned short)port);
        *sslen = sizeof(struct sockaddr_in6);
    }
    return 0;
}

/* smtpd_policy_endpoint_parse_unix - a socket path */
static int smtpd_policy_endpoint_parse_unix(const char *endpoint, const char *path,
                                            struct sockaddr_storage *ss, socklen_t *sslen,
                                            buf_t *err)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)ss;
    size_t len = strlen(path);

    if (len == 0) {
        buf_printf(err, "%s: no socket path", endpoint);
        return -1;
    }
    if (len >= sizeof(sun->sun_path)) {
        buf_printf(err, "%s: the socket path is longer than %zu bytes", endpoint,
                   sizeof(sun->sun_path) - 1);
        return -1;
    }
    memset(ss, 0, sizeof(*ss));
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, len + 1);
    *sslen = (socklen_t)sizeof(*sun);
    return 0;
}

/* smtpd_policy_endpoint_parse - inet:, unix: or a bare path */
static int smtpd_policy_endpoint_parse(const char *endpoint, struct sockaddr_storage *ss,
                                       socklen_t *sslen, buf_t *err)
{
    const char *colon = strchr(endpoint, ':');
    const char *slash = strchr(endpoint, '/');

    memset(ss, 0, sizeof(*ss));
    if (strncmp(endpoint, "inet:", 5) == 0)
        return smtpd_policy_endpoint_parse_inet(endpoint, endpoint + 5, ss, sslen, err);
    if (strncmp(endpoint, "unix:", 5) == 0)
        return smtpd_policy_endpoint_parse_unix(endpoint, endpoint + 5, ss, sslen, err);
    if (colon != NULL && (slash == NULL || colon < slash)) {
        buf_printf(err, "%s: unknown endpoint type (inet:HOST:PORT, unix:PATH or a PATH)",
                   endpoint);
        return -1;
    }
    return smtpd_policy_endpoint_parse_unix(endpoint, endpoint, ss, sslen, err);
}

int smtpd_policy_endpoint_check(const char *endpoint, buf_t *err)
{
    struct sockaddr_storage ss;
    socklen_t len;

    return smtpd_policy_endpoint_parse(endpoint, &ss, &len, err);
}

/* smtpd_policy_endpoint_get - the pool of endpoint, made at first use */
static struct smtpd_policy_endpoint *smtpd_policy_endpoint_get(struct smtpd_policy_clients *c,
                                                               const char *endpoint)
{
    struct smtpd_policy_endpoint *ep;

    for (ep = c->endpoints; ep != NULL; ep = ep->next)
        if (strcmp(ep->name, endpoint) == 0)
            return ep;
    ep = xcalloc(1, sizeof(*ep));
    ep->clients = c;
    ep->name = xstrdup(endpoint);
    buf_init(&ep->err);
    if (smtpd_policy_endpoint_parse(endpoint, &ep->addr, &ep->addrlen, &ep->err) < 0 &&
        ep->err.len == 0)
        buf_set(&ep->err, "invalid endpoint");
    ep->next = c->endpoints;
    c->endpoints = ep;
    return ep;
}

/* ---- the reply */

/* smtpd_policy_reply_line - one "name=value" line; -1 with err when it is
 * not one or repeats action= */
static int smtpd_policy_reply_line(const char *line, size_t len, buf_t *action, int *have_action,
                                   buf_t *err)
{
    const char *eq = memchr(line, '=', len);

    if (eq == NULL || eq == line || memchr(line, 0, len) != NULL) {
        buf_set(err, "malformed reply line (not name=value)");
        return -1;
    }
    if ((size_t)(eq - line) != 6 || memcmp(line, "action", 6) != 0)
        return 0; /* another attribute: skipped */
    if (*have_action) {
        buf_set(err, "malformed reply (action= twice)");
        return -1;
    }
    *have_action = 1;
    buf_reset(action);
    buf_append(action, eq + 1, len - (size_t)(eq + 1 - line));
    return 0;
}

int smtpd_policy_reply_parse(const char *data, size_t len, size_t *used, buf_t *action, buf_t *err)
{
    size_t pos = 0, lines = 0;
    int have_action = 0;

    for (;;) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t linelen = nl ? (size_t)(nl - (data + pos)) : len - pos;

        if (nl != NULL && linelen > 0 && data[pos + linelen - 1] == '\r')
            linelen--; /* tolerate CRLF */
        /* an unfinished line may still lose a CR */
        if (linelen > SMTPD_POLICY_REPLY_LINE_MAX + (nl == NULL)) {
            buf_printf(err, "reply line longer than %d bytes", SMTPD_POLICY_REPLY_LINE_MAX);
            return -1;
        }
        if (nl == NULL)
            return 0;
        if (linelen == 0) {
            *used = (size_t)(nl - data) + 1;
            break;
        }
        if (++lines > SMTPD_POLICY_REPLY_LINES) {
            buf_printf(err, "reply longer than %d lines", SMTPD_POLICY_REPLY_LINES);
            return -1;
        }
        if (smtpd_policy_reply_line(data + pos, linelen, action, &have_action, err) < 0)
            return -1;
        pos = (size_t)(nl - data) + 1;
    }
    if (!have_action || action->len == 0) {
        buf_set(err, have_action ? "empty action= in the reply" : "no action= in the reply");
        return -1;
    }
    return 1;
}

/* ---- queries */

/* smtpd_policy_query_unwait - take q out of its endpoint's queue */
static void smtpd_policy_query_unwait(struct smtpd_policy_query *q)
{
    struct smtpd_policy_endpoint *ep = q->endpoint;
    struct smtpd_policy_query **pp, *prev = NULL;

    for (pp = &ep->waiting; *pp != NULL; prev = *pp, pp = &(*pp)->next_waiting) {
        if (*pp != q)
            continue;
        *pp = q->next_waiting;
        if (ep->waiting_tail == q)
            ep->waiting_tail = prev;
        q->next_waiting = NULL;
        return;
    }
}

/* smtpd_policy_query_wait - queue q at the tail, or at the head for a retry */
static void smtpd_policy_query_wait(struct smtpd_policy_query *q, int first)
{
    struct smtpd_policy_endpoint *ep = q->endpoint;

    q->state = SMTPD_POLICY_QUERY_WAITING;
    q->conn = NULL;
    q->next_waiting = NULL;
    if (ep->waiting == NULL) {
        ep->waiting = ep->waiting_tail = q;
    } else if (first) {
        q->next_waiting = ep->waiting;
        ep->waiting = q;
    } else {
        ep->waiting_tail->next_waiting = q;
        ep->waiting_tail = q;
    }
}

/* smtpd_policy_query_finish - the answer is known: deliver it from the loop */
static void smtpd_policy_query_finish(struct smtpd_policy_query *q, int status, const char *text)
{
    if (q->state == SMTPD_POLICY_QUERY_WAITING)
        smtpd_policy_query_unwait(q);
    q->state = SMTPD_POLICY_QUERY_DONE;
    q->conn = NULL;
    q->status = status;
    buf_set(&q->answer, text);
    event_del(q->ev);
    event_active(q->ev, EV_TIMEOUT, 0);
}

/* ---- connections */

/* smtpd_policy_conn_close - drop the connection; its query (if any) is the caller's */
static void smtpd_policy_conn_close(struct smtpd_policy_conn *conn)
{
    struct smtpd_policy_endpoint *ep = conn->endpoint;
    struct smtpd_policy_conn **pp;

    for (pp = &ep->conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == conn) {
            *pp = conn->next;
            break;
        }
    }
    ep->nconns--;
    if (conn->query != NULL)
        conn->query->conn = NULL;
    bufferevent_free(conn->bev);
    event_free(conn->idle);
    free(conn);
}

/* smtpd_policy_conn_fail - the connection broke: close it; its query is
 * sent again once when nothing of the reply came on an established
 * connection (may_retry), else fails with why */
static void smtpd_policy_conn_fail(struct smtpd_policy_conn *conn, const char *why, int may_retry)
{
    struct smtpd_policy_endpoint *ep = conn->endpoint;
    struct smtpd_policy_query *q = conn->query;
    int retry = may_retry && conn->connected && !conn->got_reply_bytes;
    buf_t text = BUF_INIT;

    smtpd_policy_conn_close(conn);
    if (q != NULL && retry && !q->retried) {
        q->retried = 1;
        smtpd_policy_query_wait(q, 1);
        smtpd_policy_endpoint_close_idle(ep);
    } else if (q != NULL) {
        buf_printf(&text, "%s: %s", ep->name, why);
        smtpd_policy_query_finish(q, -1, buf_cstr(&text));
        buf_free(&text);
    }
    smtpd_policy_endpoint_dispatch(ep);
}

/* smtpd_policy_conn_idle - nothing in flight: wait max_idle, or retire an old connection */
static void smtpd_policy_conn_idle(struct smtpd_policy_conn *conn)
{
    struct smtpd_policy_clients *c = conn->endpoint->clients;
    struct timeval tv = {(time_t)c->max_idle, 0};

    if (time(NULL) - conn->born >= c->max_ttl) {
        smtpd_policy_conn_close(conn);
        return;
    }
    event_add(conn->idle, &tv);
}

/* smtpd_policy_conn_on_idle - max_idle passed with nothing to do */
static void smtpd_policy_conn_on_idle(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    smtpd_policy_conn_close(arg);
}

/* smtpd_policy_conn_replied - the reply of the query in flight came whole
 * (used bytes of the input): answer it; the connection goes idle, unless
 * more bytes came than were asked for */
static void smtpd_policy_conn_replied(struct smtpd_policy_conn *conn, size_t used,
                                      const char *action)
{
    struct smtpd_policy_endpoint *ep = conn->endpoint;
    struct evbuffer *in = bufferevent_get_input(conn->bev);
    struct smtpd_policy_query *q = conn->query;

    evbuffer_drain(in, used);
    conn->query = NULL;
    conn->got_reply_bytes = 0;
    smtpd_policy_query_finish(q, 0, action);
    if (evbuffer_get_length(in) > 0) {
        log_warn("policy service %s: sent more than one reply; closing the connection", ep->name);
        smtpd_policy_conn_close(conn);
    } else {
        smtpd_policy_conn_idle(conn);
    }
    smtpd_policy_endpoint_dispatch(ep);
}

/* smtpd_policy_conn_on_read - bytes of a reply (or bytes nobody asked for) */
static void smtpd_policy_conn_on_read(struct bufferevent *bev, void *arg)
{
    struct smtpd_policy_conn *conn = arg;
    struct smtpd_policy_endpoint *ep = conn->endpoint;
    struct smtpd_policy_query *q = conn->query;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in), used = 0;
    buf_t action = BUF_INIT, err = BUF_INIT;
    int rc;

    if (q == NULL) {
        log_warn("policy service %s: sent bytes nobody asked for; closing the connection",
                 ep->name);
        smtpd_policy_conn_close(conn);
        return;
    }
    conn->got_reply_bytes = 1;
    if (len > SMTPD_POLICY_REPLY_MAX)
        len = SMTPD_POLICY_REPLY_MAX;
    rc = smtpd_policy_reply_parse((const char *)evbuffer_pullup(in, (ev_ssize_t)len), len, &used,
                                  &action, &err);
    if (rc == 0 && len == SMTPD_POLICY_REPLY_MAX) {
        rc = -1;
        buf_set(&err, "reply too long");
    }
    if (rc < 0)
        smtpd_policy_conn_fail(conn, buf_cstr(&err), 0);
    else if (rc == 1)
        smtpd_policy_conn_replied(conn, used, buf_cstr(&action));
    buf_free(&action);
    buf_free(&err);
}

/* smtpd_policy_conn_on_event - connected, EOF or error */
static void smtpd_policy_conn_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct smtpd_policy_conn *conn = arg;
    int saved = EVUTIL_SOCKET_ERROR();
    buf_t why = BUF_INIT;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        conn->connected = 1;
        return;
    }
    if (conn->query == NULL) { /* an idle connection the server closed: fine */
        smtpd_policy_conn_close(conn);
        return;
    }
    if (!conn->connected)
        buf_printf(&why, "cannot connect: %s", evutil_socket_error_to_string(saved));
    else if (what & BEV_EVENT_EOF)
        buf_set(&why, "lost the connection before the reply was complete");
    else
        buf_printf(&why, "connection error: %s", evutil_socket_error_to_string(saved));
    smtpd_policy_conn_fail(conn, buf_cstr(&why), 1);
    buf_free(&why);
}

/* smtpd_policy_conn_open - start a non-blocking connect; NULL with why */
static struct smtpd_policy_conn *smtpd_policy_conn_open(struct smtpd_policy_endpoint *ep,
                                                        buf_t *why)
{
    struct smtpd_policy_clients *c = ep->clients;
    struct smtpd_policy_conn *conn;
    int fd = socket(ep->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0 ||
        (connect(fd, (struct sockaddr *)&ep->addr, ep->addrlen) < 0 && errno != EINPROGRESS)) {
        buf_printf(why, "%s: cannot connect: %s", ep->name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    conn = xcalloc(1, sizeof(*conn));
    conn->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
    conn->idle = evtimer_new(c->base, smtpd_policy_conn_on_idle, conn);
    if (conn->bev == NULL || conn->idle == NULL)
        log_panic("policy service %s: out of memory for a connection", ep->name);
    /* the connect is under way: libevent reports CONNECTED or ERROR */
    bufferevent_socket_connect(conn->bev, NULL, 0);
    bufferevent_setcb(conn->bev, smtpd_policy_conn_on_read, NULL, smtpd_policy_conn_on_event, conn);
    bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
    conn->endpoint = ep;
    conn->born = time(NULL);
    conn->next = ep->conns;
    ep->conns = conn;
    ep->nconns++;
    return conn;
}

/* smtpd_policy_conn_send - put the first waiting query on conn */
static void smtpd_policy_conn_send(struct smtpd_policy_conn *conn, struct smtpd_policy_query *q)
{
    smtpd_policy_query_unwait(q);
    event_del(conn->idle);
    q->state = SMTPD_POLICY_QUERY_SENT;
    q->conn = conn;
    conn->query = q;
    conn->got_reply_bytes = 0;
    bufferevent_write(conn->bev, q->request.data, q->request.len);
}

/* smtpd_policy_endpoint_idle_conn - an idle connection young enough to use */
static struct smtpd_policy_conn *smtpd_policy_endpoint_idle_conn(struct smtpd_policy_endpoint *ep)
{
    struct smtpd_policy_conn *conn, *next;

    for (conn = ep->conns; conn != NULL; conn = next) {
        next = conn->next;
        if (conn->query != NULL)
            continue;
        if (time(NULL) - conn->born < ep->clients->max_ttl)
            return conn;
        smtpd_policy_conn_close(conn);
    }
    return NULL;
}

/* smtpd_policy_endpoint_close_idle - drop the idle connections (after one
 * broke: the server may have dropped them all, so a retry goes on a new one) */
static void smtpd_policy_endpoint_close_idle(struct smtpd_policy_endpoint *ep)
{
    struct smtpd_policy_conn *conn, *next;

    for (conn = ep->conns; conn != NULL; conn = next) {
        next = conn->next;
        if (conn->query == NULL)
            smtpd_policy_conn_close(conn);
    }
}

/* smtpd_policy_endpoint_dispatch - give waiting queries to idle or new connections */
static void smtpd_policy_endpoint_dispatch(struct smtpd_policy_endpoint *ep)
{
    buf_t why = BUF_INIT;

    while (ep->waiting != NULL) {
        struct smtpd_policy_conn *conn = smtpd_policy_endpoint_idle_conn(ep);

        if (conn == NULL && ep->nconns >= SMTPD_POLICY_CLIENT_MAX_CONNS)
            break;
        if (conn == NULL)
            conn = smtpd_policy_conn_open(ep, &why);
        if (conn == NULL) {
            smtpd_policy_query_finish(ep->waiting, -1, buf_cstr(&why));
            buf_reset(&why);
            continue;
        }
        smtpd_policy_conn_send(conn, ep->waiting);
    }
    buf_free(&why);
}

/* ---- the pool and its queries */

/* smtpd_policy_query_unlink - take q off the pool's list of live queries */
static void smtpd_policy_query_unlink(struct smtpd_policy_query *q)
{
    if (q->prev != NULL)
        q->prev->next = q->next;
    else
        q->clients->queries = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

/* smtpd_policy_query_release - free the memory of an unlinked query */
static void smtpd_policy_query_release(struct smtpd_policy_query *q)
{
    event_free(q->ev);
    buf_free(&q->request);
    buf_free(&q->answer);
    free(q);
}

/* smtpd_policy_query_expire - the deadline passed: close its connection */
static void smtpd_policy_query_expire(struct smtpd_policy_query *q)
{
    struct smtpd_policy_endpoint *ep = q->endpoint;

    if (q->state == SMTPD_POLICY_QUERY_SENT && q->conn != NULL) {
        q->conn->query = NULL;
        smtpd_policy_conn_close(q->conn);
    } else if (q->state == SMTPD_POLICY_QUERY_WAITING) {
        smtpd_policy_query_unwait(q);
    }
    q->state = SMTPD_POLICY_QUERY_DONE;
    q->conn = NULL;
    q->status = -1;
    buf_reset(&q->answer);
    buf_printf(&q->answer, "%s: no complete reply within %llds", ep->name, q->clients->timeout);
    smtpd_policy_endpoint_dispatch(ep);
}

/* smtpd_policy_query_on_event - the deadline, or the answer to deliver */
static void smtpd_policy_query_on_event(evutil_socket_t fd, short what, void *arg)
{
    struct smtpd_policy_query *q = arg;

    (void)fd;
    (void)what;
    if (q->state != SMTPD_POLICY_QUERY_DONE)
        smtpd_policy_query_expire(q);
    /* off the list first: the callback may free the pool */
    smtpd_policy_query_unlink(q);
    q->fn(q->ctx, q->status, buf_cstr(&q->answer));
    smtpd_policy_query_release(q);
}

/* smtpd_policy_request_valid - attribute lines and one empty line at the end */
static int smtpd_policy_request_valid(const buf_t *request)
{
    const char *d = request->data;
    size_t len = request->len;

    if (len < 3 || d[len - 1] != '\n' || d[len - 2] != '\n')
        return 0;
    return memmem(d, len - 1, "\n\n", 2) == NULL && memchr(d, 0, len) == NULL && d[0] != '\n';
}

struct smtpd_policy_query *smtpd_policy_client_ask(struct smtpd_policy_clients *c,
                                                   const char *endpoint, const buf_t *request,
                                                   smtpd_policy_client_fn fn, void *ctx)
{
    struct smtpd_policy_query *q = xcalloc(1, sizeof(*q));
    struct timeval tv = {(time_t)c->timeout, 0};

    q->clients = c;
    q->endpoint = smtpd_policy_endpoint_get(c, endpoint);
    buf_init(&q->request);
    buf_append(&q->request, request->data, request->len);
    buf_init(&q->answer);
    q->fn = fn;
    q->ctx = ctx;
    q->ev = evtimer_new(c->base, smtpd_policy_query_on_event, q);
    if (q->ev == NULL)
        log_panic("policy service %s: out of memory for a query", endpoint);
    q->next = c->queries;
    if (c->queries != NULL)
        c->queries->prev = q;
    c->queries = q;
    smtpd_policy_query_wait(q, 0);
    if (q->endpoint->err.len > 0) {
        smtpd_policy_query_finish(q, -1, buf_cstr(&q->endpoint->err));
    } else if (!smtpd_policy_request_valid(request)) {
        smtpd_policy_query_finish(q, -1, "malformed request (name=value lines, one empty line)");
    } else {
        evtimer_add(q->ev, &tv);
        smtpd_policy_endpoint_dispatch(q->endpoint);
    }
    return q;
}

void smtpd_policy_client_cancel(struct smtpd_policy_query *q)
{
    struct smtpd_policy_endpoint *ep;

    if (q == NULL)
        return;
    ep = q->endpoint;
    if (q->state == SMTPD_POLICY_QUERY_SENT && q->conn != NULL) {
        q->conn->query = NULL;
        smtpd_policy_conn_close(q->conn); /* a late reply must not answer the next request */
    } else if (q->state == SMTPD_POLICY_QUERY_WAITING) {
        smtpd_policy_query_unwait(q);
    }
    smtpd_policy_query_unlink(q);
    smtpd_policy_query_release(q);
    smtpd_policy_endpoint_dispatch(ep);
}

struct smtpd_policy_clients *smtpd_policy_clients_new(struct event_base *base, long long timeout,
                                                      long long max_idle, long long max_ttl)
{
    struct smtpd_policy_clients *c = xcalloc(1, sizeof(*c));

    c->base = base;
    c->timeout = timeout > 0 ? timeout : 1;
    c->max_idle = max_idle > 0 ? max_idle : 1;
    c->max_ttl = max_ttl > 0 ? max_ttl : 1;
    return c;
}

void smtpd_policy_clients_free(struct smtpd_policy_clients *c)
{
    struct smtpd_policy_endpoint *ep, *next_ep;
    struct smtpd_policy_query *q, *next_q;

    if (c == NULL)
        return;
    for (q = c->queries; q != NULL; q = next_q) {
        next_q = q->next;
        if (q->conn != NULL)
            q->conn->query = NULL;
        smtpd_policy_query_release(q);
    }
    for (ep = c->endpoints; ep != NULL; ep = next_ep) {
        next_ep = ep->next;
        while (ep->conns != NULL)
            smtpd_policy_conn_close(ep->conns);
        free(ep->name);
        buf_free(&ep->err);
        free(ep);
    }
    free(c);
}
