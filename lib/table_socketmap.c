/*
 * table_socketmap - socketmap:inet:HOST:PORT:NAME and
 * socketmap:unix:/PATH:NAME, sendmail's socketmap protocol (Postfix's
 * socketmap_table(5)); the bytes are lib/socketmap_proto.c's, this file
 * owns the socket.  Opened directly by tern-proxymap and the tools
 * (lib/table_proxy.h).
 *
 * HOST is a name, an IPv4 address or [an IPv6 address]; NAME is the map
 * name sent before each key (the text after the last ':').  The connection
 * is made at the first lookup and kept; each lookup (connect, write, read)
 * is bounded by SOCKETMAP_TIMEOUT seconds.  A kept connection the server
 * has closed meanwhile is made again once.  OK is found, NOTFOUND is not
 * found; TEMP, TIMEOUT, PERM, a malformed reply, a closed connection and a
 * timeout are TABLE_TEMPFAIL with one warning naming the table, and the
 * connection is dropped.  Keys are folded unless TABLE_CASE_SENSITIVE.
 *
 * Thread safety: no static mutable state; each struct table is used by one
 * thread at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "socketmap_proto.h"
#include "table_impl.h"

#define SOCKETMAP_TIMEOUT 10 /* seconds per lookup; Postfix has no setting either */

struct socketmap_table {
    int is_unix;
    char *host; /* inet: name or address (no brackets); unix: the path */
    char *port;
    char *map;
    int fd; /* -1: not connected */
    buf_t in;
};

/* socketmap_now_ms - the monotonic clock in milliseconds */
static long long socketmap_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* socketmap_wait - wait for events on fd until deadline: 0 ready, -1 with
 * errno (ETIMEDOUT) */
static int socketmap_wait(int fd, short events, long long deadline)
{
    struct pollfd pfd = {fd, events, 0};
    int n;

    do {
        long long left = deadline - socketmap_now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        n = poll(&pfd, 1, (int)left);
    } while (n < 0 && errno == EINTR);
    if (n == 0)
        errno = ETIMEDOUT;
    return n > 0 ? 0 : -1;
}

/* socketmap_connect_addr - a non-blocking connect to sa, finished by
 * deadline: the socket, or -1 with errno */
static int socketmap_connect_addr(const struct sockaddr *sa, socklen_t len, long long deadline)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), soerr = 0;
    socklen_t sl = sizeof(soerr);

    if (fd < 0)
        return -1;
    if (connect(fd, sa, len) == 0)
        return fd;
    if (errno == EINPROGRESS && socketmap_wait(fd, POLLOUT, deadline) == 0 &&
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0) {
        if (soerr == 0)
            return fd;
        errno = soerr;
    }
    soerr = errno;
    close(fd);
    errno = soerr;
    return -1;
}

/* socketmap_connect_unix - the unix: socket, or -1 with why */
static int socketmap_connect_unix(const struct socketmap_table *s, long long deadline, buf_t *why)
{
    struct sockaddr_un sun;
    int fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, s->host, strlen(s->host) + 1); /* length checked at open */
    if ((fd = socketmap_connect_addr((struct sockaddr *)&sun, sizeof(sun), deadline)) < 0)
        buf_printf(why, "connect to %s: %s", s->host, strerror(errno));
    return fd;
}

/* socketmap_connect_inet - the first address of host:port that accepts,
 * or -1 with why */
static int socketmap_connect_inet(const struct socketmap_table *s, long long deadline, buf_t *why)
{
    struct addrinfo hints, *res, *ai;
    int fd = -1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(s->host, s->port, &hints, &res)) != 0) {
        buf_printf(why, "%s: %s", s->host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
        fd = socketmap_connect_addr(ai->ai_addr, ai->ai_addrlen, deadline);
    if (fd < 0)
        buf_printf(why, "connect to %s port %s: %s", s->host, s->port, strerror(errno));
    freeaddrinfo(res);
    return fd;
}

/* socketmap_drop - close the connection and forget what it sent */
static void socketmap_drop(struct socketmap_table *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    buf_reset(&s->in);
}

/* socketmap_send - write all of req by deadline: 0, or -1 with errno */
static int socketmap_send(int fd, const buf_t *req, long long deadline)
{
    size_t off = 0;

    while (off < req->len) {
        ssize_t n = send(fd, req->data + off, req->len - off, MSG_NOSIGNAL);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        else if (n < 0 && errno == EAGAIN && socketmap_wait(fd, POLLOUT, deadline) < 0)
            return -1;
    }
    return 0;
}

/* socketmap_receive - read until r holds a whole reply (status other than
 * SOCKETMAP_MORE): 0, or -1 with errno (0: the server closed) */
static int socketmap_receive(struct socketmap_table *s, struct socketmap_reply *r,
                             long long deadline)
{
    char chunk[4096];

    while (socketmap_proto_reply_parse(s->in.data, s->in.len, r) == SOCKETMAP_MORE) {
        ssize_t n = recv(s->fd, chunk, sizeof(chunk), 0);
        if (n > 0)
            buf_append(&s->in, chunk, (size_t)n);
        else if (n == 0) {
            errno = 0;
            return -1;
        } else if (errno != EAGAIN && errno != EINTR)
            return -1;
        else if (errno == EAGAIN && socketmap_wait(s->fd, POLLIN, deadline) < 0)
            return -1;
    }
    return 0;
}

/* socketmap_ask - one round trip for req, reconnecting once when a kept
 * connection turns out closed: 0 with r, or -1 with why */
static int socketmap_ask(struct socketmap_table *s, const buf_t *req, struct socketmap_reply *r,
                         buf_t *why)
{
    long long deadline = socketmap_now_ms() + SOCKETMAP_TIMEOUT * 1000LL;

    for (int attempt = 0; attempt < 2; attempt++) {
        int kept = s->fd >= 0;
        if (!kept)
            s->fd = s->is_unix ? socketmap_connect_unix(s, deadline, why)
                               : socketmap_connect_inet(s, deadline, why);
        if (s->fd < 0)
            return -1;
        buf_reset(&s->in);
        if (socketmap_send(s->fd, req, deadline) == 0 && socketmap_receive(s, r, deadline) == 0)
            return 0;
        int closed = errno == 0 || errno == EPIPE || errno == ECONNRESET;
        socketmap_drop(s);
        if (!closed || !kept) {
            buf_puts(why, errno == 0           ? "the server closed the connection"
                          : errno == ETIMEDOUT ? "no answer in time"
                                               : strerror(errno));
            return -1;
        }
    }
    return -1; /* not reached: a fresh connection never retries */
}

/* socketmap_answer - the lookup's result for reply r */
static enum table_result socketmap_answer(struct table *t, const char *key,
                                          const struct socketmap_reply *r, buf_t *value)
{
    struct socketmap_table *s = t->impl;

    if (r->status == SOCKETMAP_OK) {
        buf_reset(value);
        buf_append(value, r->text, r->len);
        return TABLE_FOUND;
    }
    if (r->status == SOCKETMAP_NOTFOUND)
        return TABLE_NOTFOUND;
    if (r->status == SOCKETMAP_PROTOCOL)
        log_warn("%s: lookup of %s: protocol error: %s", t->spec, key, r->why);
    else
        log_warn("%s: lookup of %s: %s %.*s", t->spec, key, socketmap_proto_status_name(r->status),
                 (int)(r->len > 200 ? 200 : r->len), r->text ? r->text : "");
    socketmap_drop(s);
    return TABLE_TEMPFAIL;
}

static enum table_result socketmap_lookup(struct table *t, const char *key, buf_t *value)
{
    struct socketmap_table *s = t->impl;
    buf_t folded = BUF_INIT, req = BUF_INIT, why = BUF_INIT;
    const char *k = table_key_fold(key, t->flags, &folded);
    struct socketmap_reply r;
    enum table_result res = TABLE_NOTFOUND;

    if (socketmap_proto_request(&req, s->map, k) == 0) {
        if (socketmap_ask(s, &req, &r, &why) == 0) {
            res = socketmap_answer(t, k, &r, value);
            if (s->fd >= 0 && r.used != s->in.len)
                socketmap_drop(s); /* more than one reply: out of step */
        } else {
            log_warn("%s: lookup of %s: %s", t->spec, k, why.data);
            res = TABLE_TEMPFAIL;
        }
    }
    buf_reset(&s->in);
    buf_free(&folded);
    buf_free(&req);
    buf_free(&why);
    return res;
}

static void socketmap_close(struct table *t)
{
    struct socketmap_table *s = t->impl;

    socketmap_drop(s);
    buf_free(&s->in);
    free(s->host);
    free(s->port);
    free(s->map);
    free(s);
}

static const struct table_ops socketmap_ops = {"socketmap",     0,   socketmap_lookup, NULL,
                                               socketmap_close, NULL};

/* socketmap_parse_inet - "host:port", "[v6]:port" into s: 0, or -1 */
static int socketmap_parse_inet(struct socketmap_table *s, const char *hp, size_t len)
{
    const char *colon = memrchr(hp, ':', len), *host = hp, *hend;

    if (colon == NULL || colon + 1 == hp + len)
        return -1;
    hend = colon;
    if (*hp == '[') {
        if (hend - hp < 3 || hend[-1] != ']')
            return -1;
        host++, hend--;
    } else if (memchr(hp, ':', (size_t)(hend - hp)) != NULL || hend == hp)
        return -1;
    s->host = strndup(host, (size_t)(hend - host));
    s->port = strndup(colon + 1, (size_t)(hp + len - colon - 1));
    if (s->host == NULL || s->port == NULL)
        log_panic("out of memory");
    return strspn(s->port, "0123456789") == strlen(s->port) && atoi(s->port) > 0 &&
                   atoi(s->port) < 65536
               ? 0
               : -1;
}

/* socketmap_parse - name into s: 0, or -1 with err */
static int socketmap_parse(struct socketmap_table *s, const char *name, buf_t *err)
{
    const char *map = strrchr(name, ':'), *where;
    buf_t probe = BUF_INIT;
    int rc = -1;

    if (map == NULL || (strncmp(name, "inet:", 5) != 0 && strncmp(name, "unix:", 5) != 0) ||
        map < name + 5) {
        buf_puts(err, "expected inet:HOST:PORT:NAME or unix:/PATH:NAME");
        return -1;
    }
    where = name + 5;
    s->map = xstrdup(map + 1);
    s->is_unix = name[0] == 'u';
    if (socketmap_proto_request(&probe, s->map, "x") < 0)
        buf_puts(err, "the map name is empty or holds a space or a control character");
    else if (s->is_unix && (*where != '/' ||
                            (size_t)(map - where) >= sizeof(((struct sockaddr_un *)0)->sun_path)))
        buf_puts(err, "unix: needs an absolute socket path of at most 107 bytes");
    else if (s->is_unix) {
        s->host = strndup(where, (size_t)(map - where));
        rc = s->host ? 0 : -1;
    } else if (socketmap_parse_inet(s, where, (size_t)(map - where)) < 0)
        buf_puts(err, "expected inet:HOST:PORT:NAME (an IPv6 address in brackets, a port 1-65535)");
    else
        rc = 0;
    buf_free(&probe);
    return rc;
}

int table_open_socketmap(struct table *t, const char *name, buf_t *err)
{
    struct socketmap_table *s = xcalloc(1, sizeof(*s));

    s->fd = -1;
    t->impl = s;
    t->ops = &socketmap_ops;
    if (socketmap_parse(s, name, err) < 0) {
        socketmap_close(t);
        t->impl = NULL;
        t->ops = NULL;
        return -1;
    }
    return 0;
}
