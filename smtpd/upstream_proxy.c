/*
 * upstream_proxy - the PROXY header before a session (upstream_proxy.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "haproxy_proto.h"
#include "log.h"
#include "netaddr.h"
#include "session.h"
#include "smtpd.h"
#include "upstream_proxy.h"

/* one connection whose header is being read */
struct upstream_proxy {
    struct smtpd_listener *listener;
    int fd;
    struct sockaddr_storage peer; /* the proxy */
    int peer_len;
    char peer_ip[64];
    struct event *ev;
    struct timeval deadline; /* smtpd_upstream_proxy_timeout after accept */
    unsigned char header[HAPROXY_PROTO_MAX_HEADER];
    size_t have; /* header bytes taken from the socket so far */
};

/* upstream_proxy_free - the end of the header stage, not of the connection */
static void upstream_proxy_free(struct upstream_proxy *p)
{
    if (p->ev != NULL)
        event_free(p->ev);
    free(p);
}

/* upstream_proxy_drop - close the connection without a word (Postfix too) */
static void upstream_proxy_drop(struct upstream_proxy *p)
{
    struct smtpd_server *server = p->listener->server;

    close(p->fd);
    upstream_proxy_free(p);
    smtpd_session_ended(server);
}

/* upstream_proxy_take - remove len bytes the peek showed from the socket */
static int upstream_proxy_take(struct upstream_proxy *p, size_t len)
{
    ssize_t n = len > 0 ? recv(p->fd, p->header + p->have, len, 0) : 0;

    if (n < 0 || (size_t)n != len)
        return -1;
    p->have += len;
    return 0;
}

/* upstream_proxy_wait - read again when more bytes come, until the deadline */
static void upstream_proxy_wait(struct upstream_proxy *p)
{
    struct timeval now, left = {0, 0};

    gettimeofday(&now, NULL);
    if (timercmp(&p->deadline, &now, >))
        timersub(&p->deadline, &now, &left);
    event_add(p->ev, &left);
}

/* upstream_proxy_done - the header is read: start the session with the
 * client it names (PROXIED) or with the proxy itself (LOCAL, UNKNOWN) */
static void upstream_proxy_done(struct upstream_proxy *p, const struct haproxy_proto_header *h)
{
    char source[64];

    if (h->kind != HAPROXY_PROTO_PROXIED) {
        log_info("upstream proxy [%s]: PROXY v%d %s: the connection is the proxy's own", p->peer_ip,
                 h->version, haproxy_proto_kind_name(h->kind));
        session_start(p->listener, p->fd, (const struct sockaddr *)&p->peer, p->peer_len);
        upstream_proxy_free(p);
        return;
    }
    netaddr_format((const struct sockaddr *)&h->source, source, sizeof(source));
    log_info("upstream proxy [%s]: PROXY v%d for client [%s]", p->peer_ip, h->version, source);
    session_start_proxied(p->listener, p->fd, &h->source, &h->destination);
    upstream_proxy_free(p);
}

/* upstream_proxy_fail - log why the header was not read (what, and the
 * parser's reason if any) and drop */
static void upstream_proxy_fail(struct upstream_proxy *p, const char *what, const char *why)
{
    log_info("upstream proxy [%s]: %s%s%s; connection closed (listener %s)", p->peer_ip, what,
             why ? ": " : "", why ? why : "", p->listener->cfg.listener);
    upstream_proxy_drop(p);
}

/* upstream_proxy_on_read - more of the header, EOF, or the timeout */
static void upstream_proxy_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_proxy *p = arg;
    struct haproxy_proto_header h;
    enum haproxy_proto_status status;
    ssize_t n;

    if (what & EV_TIMEOUT) {
        upstream_proxy_fail(p, "timeout reading the PROXY header", NULL);
        return;
    }
    n = recv(fd, p->header + p->have, sizeof(p->header) - p->have, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        upstream_proxy_wait(p);
        return;
    }
    if (n <= 0) {
        upstream_proxy_fail(p,
                            n == 0 ? "lost connection before the end of the PROXY header"
                                   : "read error before the end of the PROXY header",
                            NULL);
        return;
    }
    memset(&h, 0, sizeof(h));
    status = haproxy_proto_parse(p->header, p->have + (size_t)n, &h);
    if (status == HAPROXY_PROTO_ERROR) {
        upstream_proxy_fail(p, "malformed PROXY header", h.why);
        return;
    }
    /* NEED_MORE: every byte peeked is the header's; DONE: h.used of them */
    if (upstream_proxy_take(p, status == HAPROXY_PROTO_DONE ? h.used - p->have : (size_t)n) < 0 ||
        (status == HAPROXY_PROTO_NEED_MORE && p->have >= sizeof(p->header))) {
        upstream_proxy_fail(p, "cannot read the PROXY header", NULL);
        return;
    }
    if (status == HAPROXY_PROTO_DONE)
        upstream_proxy_done(p, &h);
    else
        upstream_proxy_wait(p);
}

void smtpd_upstream_proxy_start(struct smtpd_listener *listener, int fd, const struct sockaddr *sa,
                                int salen)
{
    struct upstream_proxy *p = xcalloc(1, sizeof(*p));
    const struct smtpd_config *cfg = &listener->cfg;
    struct timeval timeout = {(time_t)cfg->upstream_proxy_timeout, 0};

    p->listener = listener;
    p->fd = fd;
    if (salen > 0 && (size_t)salen <= sizeof(p->peer)) {
        memcpy(&p->peer, sa, (size_t)salen);
        p->peer_len = salen;
    }
    netaddr_format(sa, p->peer_ip, sizeof(p->peer_ip));
    if (!netaddr_match(sa, cfg->upstream_proxy_hosts, cfg->upstream_proxy_host_count)) {
        log_warn("upstream proxy [%s]: not in smtpd_upstream_proxy_hosts; connection closed "
                 "(listener %s)",
                 p->peer_ip, cfg->listener);
        upstream_proxy_drop(p);
        return;
    }
    p->ev = event_new(listener->server->svc.base, fd, EV_READ, upstream_proxy_on_read, p);
    if (p->ev == NULL)
        log_panic("event_new failed");
    gettimeofday(&p->deadline, NULL);
    timeradd(&p->deadline, &timeout, &p->deadline);
    event_add(p->ev, &timeout);
}
