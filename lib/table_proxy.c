/*
 * table_proxy - proxy:TYPE:NAME and the remote types looked up through
 * tern-proxymap (see table_proxy.h; the wire format is proxymap_proto.h).
 *
 * Three faces of one struct table:
 *   - direct (table_proxy_default off, only for proxy:TYPE:NAME): the inner
 *     table opened here, every op forwarded to it;
 *   - synchronous remote: one blocking round trip per lookup over a kept
 *     connection to private/proxymap;
 *   - asynchronous remote (a scope entered): the scope's answer, or the
 *     request recorded in the scope and TABLE_TEMPFAIL.
 * The asynchronous side keeps one non-blocking connection per process for
 * every scope, and a table of the request ids in flight and their scope.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "proxymap_proto.h"
#include "service.h"
#include "table_impl.h"
#include "table_proxy.h"

#define TABLE_PROXY_PATH "private/proxymap"

static int table_proxy_on;
static char *table_proxy_path;
static long long table_proxy_timeout = 20;

void table_proxy_default(int on)
{
    table_proxy_on = on;
}

int table_proxy_is_default(void)
{
    return table_proxy_on;
}

void table_proxy_configure(const struct config *cfg)
{
    free(table_proxy_path);
    table_proxy_path = xstrdup(TABLE_PROXY_PATH);
    table_proxy_timeout = config_time(cfg, "proxymap_client_timeout");
    if (table_proxy_timeout < 1)
        table_proxy_timeout = 1;
}

static const char *table_proxy_socket(void)
{
    return table_proxy_path ? table_proxy_path : TABLE_PROXY_PATH;
}

/* ---- direct: proxy:TYPE:NAME in a tool or in tern-proxymap */

static enum table_result proxy_direct_lookup(struct table *t, const char *key, buf_t *value)
{
    struct table *inner = t->impl;

    return inner->ops->lookup(inner, key, value);
}

static int proxy_direct_walk(struct table *t, table_walk_fn fn, void *ctx, buf_t *err)
{
    return table_walk(t->impl, fn, ctx, err);
}

static void proxy_direct_close(struct table *t)
{
    table_close(t->impl);
}

static unsigned long proxy_direct_generation(struct table *t)
{
    return table_generation(t->impl);
}

static const struct table_ops proxy_direct_ops = {"proxy",
                                                  0,
                                                  proxy_direct_lookup,
                                                  proxy_direct_walk,
                                                  proxy_direct_close,
                                                  proxy_direct_generation};
static const struct table_ops proxy_direct_pattern_ops = {"proxy",
                                                          1,
                                                          proxy_direct_lookup,
                                                          proxy_direct_walk,
                                                          proxy_direct_close,
                                                          proxy_direct_generation};

/* ---- remote: the lookups are asked of tern-proxymap */

struct proxy_remote {
    char *spec; /* the inner "TYPE:NAME" */
    int flags;
};

/* the scope proxy lookups consult (NULL: synchronous) */
static struct table_proxy_scope *proxy_scope_current;

static enum table_result proxy_sync_lookup(const struct proxy_remote *r, const char *key,
                                           buf_t *value);
static enum table_result proxy_scope_lookup(struct table_proxy_scope *s,
                                            const struct proxy_remote *r, const char *key,
                                            buf_t *value);

static enum table_result proxy_remote_lookup(struct table *t, const char *key, buf_t *value)
{
    struct proxy_remote *r = t->impl;

    if (proxy_scope_current != NULL)
        return proxy_scope_lookup(proxy_scope_current, r, key, value);
    return proxy_sync_lookup(r, key, value);
}

static void proxy_remote_close(struct table *t)
{
    struct proxy_remote *r = t->impl;

    free(r->spec);
    free(r);
}

static const struct table_ops proxy_remote_ops = {
    "proxy", 0, proxy_remote_lookup, NULL, proxy_remote_close, NULL};
static const struct table_ops proxy_remote_pattern_ops = {
    "proxy", 1, proxy_remote_lookup, NULL, proxy_remote_close, NULL};

int table_is_remote(const struct table *t)
{
    return t->ops == &proxy_remote_ops || t->ops == &proxy_remote_pattern_ops;
}

/* proxy_type_is_pattern - the types table_is_pattern answers 1 for */
static int proxy_type_is_pattern(const char *type)
{
    return strcmp(type, "regexp") == 0 || strcmp(type, "cidr") == 0 || strcmp(type, "static") == 0;
}

/* proxy_open - proxy:NAME; remote: through tern-proxymap even where the
 * proxy is not the default (a table whose client this program lacks) */
static int proxy_open(struct table *t, const char *name, int remote, buf_t *err)
{
    buf_t type = BUF_INIT;
    const char *inner_name;
    int optional, pattern;

    if (table_spec_split(name, &type, &inner_name, &optional) < 0 || optional ||
        strcmp(buf_cstr(&type), "proxy") == 0) {
        buf_printf(err, "proxy: wants TYPE:NAME of a known table type after it");
        buf_free(&type);
        return -1;
    }
    pattern = proxy_type_is_pattern(buf_cstr(&type));
    buf_free(&type);
    if (!table_proxy_on && !remote) {
        struct table *inner = table_open(name, t->flags, err);
        if (inner == NULL)
            return -1;
        t->impl = inner;
        t->ops = inner->ops->pattern ? &proxy_direct_pattern_ops : &proxy_direct_ops;
        return 0;
    }
    struct proxy_remote *r = xcalloc(1, sizeof(*r));
    r->spec = xstrdup(name);
    r->flags = t->flags;
    t->impl = r;
    t->ops = pattern ? &proxy_remote_pattern_ops : &proxy_remote_ops;
    return 0;
}

int table_open_proxy(struct table *t, const char *name, buf_t *err)
{
    return proxy_open(t, name, 0, err);
}

int table_open_proxy_remote(struct table *t, const char *name, buf_t *err)
{
    return proxy_open(t, name, 1, err);
}

/* proxy_value_refused - log a value tern-proxymap should have refused */
static void proxy_value_refused(const char *spec, const char *key)
{
    log_warn("%s: lookup of %s through %s: the value holds a control character or is too "
             "long; a temporary failure",
             spec, key, table_proxy_socket());
}

/* ---- synchronous: one blocking round trip */

static int proxy_sync_fd = -1;
static pid_t proxy_sync_pid; /* the process that connected: a forked child reconnects */
static unsigned long long proxy_sync_id;

static void proxy_sync_disconnect(void)
{
    if (proxy_sync_fd >= 0)
        close(proxy_sync_fd);
    proxy_sync_fd = -1;
}

/* proxy_sync_ask - send req and read its reply into m: 0 ok, -1 broken
 * connection (*timeout set when the service did not answer in time) */
static int proxy_sync_ask(const struct proxymap_request *req, struct attr_msg *m,
                          struct proxymap_reply *rep, int *timeout)
{
    buf_t out = BUF_INIT;
    int rc;

    *timeout = 0;
    if (proxy_sync_fd >= 0 && proxy_sync_pid != getpid())
        proxy_sync_disconnect(); /* the parent's connection: not ours to read */
    if (proxy_sync_fd < 0) {
        proxy_sync_fd = unix_connect_timeout(table_proxy_socket(), table_proxy_timeout);
        if (proxy_sync_fd < 0) {
            *timeout = errno == ETIMEDOUT;
            return -1;
        }
        proxy_sync_pid = getpid();
    }
    proxymap_request_encode(&out, req);
    rc = attr_write_fd(proxy_sync_fd, &out);
    buf_free(&out);
    if (rc < 0)
        return -1;
    time_t start = time(NULL);
    if (attr_read_fd(proxy_sync_fd, m, (int)table_proxy_timeout) < 0) {
        *timeout = time(NULL) - start >= table_proxy_timeout;
        return -1;
    }
    if (proxymap_reply_parse(m, rep) < 0 || rep->id != req->id)
        return -1;
    return 0;
}

static enum table_result proxy_sync_lookup(const struct proxy_remote *r, const char *key,
                                           buf_t *value)
{
    struct proxymap_request req = {++proxy_sync_id, r->spec, r->flags, key};
    struct proxymap_reply rep;
    struct attr_msg m;
    int timeout = 0, rc = -1;
    int saved = errno;

    attr_msg_init(&m);
    for (int attempt = 0; attempt < 2 && rc < 0 && !timeout; attempt++) {
        rc = proxy_sync_ask(&req, &m, &rep, &timeout);
        if (rc < 0)
            proxy_sync_disconnect();
    }
    if (rc < 0) {
        log_warn("%s: lookup of %s through %s failed: %s", r->spec, key, table_proxy_socket(),
                 timeout ? "timed out" : strerror(errno ? errno : EPROTO));
        attr_msg_free(&m);
        errno = saved;
        return TABLE_TEMPFAIL;
    }
    if (rep.refused)
        proxy_value_refused(r->spec, key);
    if (rep.status == TABLE_FOUND) {
        buf_reset(value);
        buf_append(value, rep.value, rep.value_len);
    }
    attr_msg_free(&m);
    return rep.status;
}

/* ---- asynchronous: scopes */

enum proxy_answer_state { PROXY_ASKED, PROXY_SENT, PROXY_ANSWERED };

/* one (table, flags, key) a scope asked about */
struct proxy_answer {
    char *spec;
    int flags;
    char *key;
    enum proxy_answer_state state;
    enum table_result status;
    char *value;
    size_t value_len;
};

struct table_proxy_scope {
    struct proxy_answer **v;
    size_t count, cap;
    int pending;      /* the last evaluation asked for something not held */
    int waiting;      /* a wait is out */
    size_t in_flight; /* requests of the wait not answered yet */
    struct event *timer;
    void (*done)(void *ctx);
    void *ctx;
};

/* a request on the wire: its id, scope and answer slot */
struct proxy_flight {
    unsigned long long id;
    struct table_proxy_scope *scope;
    struct proxy_answer *answer;
};

static struct {
    struct event_base *base;
    struct bufferevent *bev;
    struct attr_msg msg;
    struct proxy_flight *v;
    size_t count, cap;
    unsigned long long next_id;
} proxy_async;

struct table_proxy_scope *table_proxy_scope_new(void)
{
    return xcalloc(1, sizeof(struct table_proxy_scope));
}

/* proxy_answer_value_free - wipe and free a's value (a SASL password, say) */
static void proxy_answer_value_free(struct proxy_answer *a)
{
    if (a->value != NULL)
        explicit_bzero(a->value, a->value_len);
    free(a->value);
    a->value = NULL;
    a->value_len = 0;
}

static void proxy_answer_free(struct proxy_answer *a)
{
    free(a->spec);
    free(a->key);
    proxy_answer_value_free(a);
    free(a);
}

/* proxy_flight_forget - drop the in-flight requests of s (all of them when
 * a is NULL, else only a's) */
static void proxy_flight_forget(struct table_proxy_scope *s, const struct proxy_answer *a)
{
    size_t j = 0;

    for (size_t i = 0; i < proxy_async.count; i++)
        if (proxy_async.v[i].scope != s || (a != NULL && proxy_async.v[i].answer != a))
            proxy_async.v[j++] = proxy_async.v[i];
    proxy_async.count = j;
}

void table_proxy_scope_free(struct table_proxy_scope *s)
{
    if (s == NULL)
        return;
    if (proxy_scope_current == s)
        proxy_scope_current = NULL;
    proxy_flight_forget(s, NULL);
    for (size_t i = 0; i < s->count; i++)
        proxy_answer_free(s->v[i]);
    free(s->v);
    if (s->timer != NULL)
        event_free(s->timer);
    free(s);
}

void table_proxy_scope_reset(struct table_proxy_scope *s)
{
    size_t j = 0;

    for (size_t i = 0; i < s->count; i++) {
        if (s->v[i]->state == PROXY_SENT)
            s->v[j++] = s->v[i]; /* its wait is still out */
        else
            proxy_answer_free(s->v[i]);
    }
    s->count = j;
    s->pending = 0;
}

size_t table_proxy_scope_size(const struct table_proxy_scope *s)
{
    return s->count;
}

void table_proxy_scope_enter(struct table_proxy_scope *s)
{
    proxy_scope_current = s;
    if (s != NULL)
        s->pending = 0;
}

void table_proxy_scope_leave(void)
{
    proxy_scope_current = NULL;
}

int table_proxy_scope_pending(const struct table_proxy_scope *s)
{
    return s->pending;
}

int table_proxy_scope_pending_now(void)
{
    return proxy_scope_current != NULL && proxy_scope_current->pending;
}

int table_order_next(enum table_result res)
{
    return res == TABLE_NOTFOUND || (res == TABLE_TEMPFAIL && table_proxy_scope_pending_now());
}

enum table_result table_order_result(enum table_result res, enum table_result now)
{
    return res == TABLE_TEMPFAIL ? TABLE_TEMPFAIL : now;
}

int table_proxy_scope_waiting(const struct table_proxy_scope *s)
{
    return s->waiting;
}

static struct proxy_answer *proxy_scope_find(struct table_proxy_scope *s,
                                             const struct proxy_remote *r, const char *key)
{
    for (size_t i = 0; i < s->count; i++) {
        struct proxy_answer *a = s->v[i];
        if (a->flags == r->flags && strcmp(a->key, key) == 0 && strcmp(a->spec, r->spec) == 0)
            return a;
    }
    return NULL;
}

static enum table_result proxy_scope_lookup(struct table_proxy_scope *s,
                                            const struct proxy_remote *r, const char *key,
                                            buf_t *value)
{
    struct proxy_answer *a = proxy_scope_find(s, r, key);

    if (a != NULL && a->state == PROXY_ANSWERED) {
        if (a->status == TABLE_FOUND) {
            buf_reset(value);
            buf_append(value, a->value, a->value_len);
        }
        return a->status;
    }
    s->pending = 1;
    if (a == NULL) {
        if (s->count == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 8;
            s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
        }
        a = xcalloc(1, sizeof(*a));
        a->spec = xstrdup(r->spec);
        a->flags = r->flags;
        a->key = xstrdup(key);
        a->state = PROXY_ASKED;
        s->v[s->count++] = a;
    }
    return TABLE_TEMPFAIL;
}

/* proxy_scope_finish - the wait is over: call done once */
static void proxy_scope_finish(struct table_proxy_scope *s)
{
    s->waiting = 0;
    s->in_flight = 0;
    if (s->timer != NULL)
        event_del(s->timer);
    if (s->done != NULL)
        s->done(s->ctx);
}

/* proxy_answer_set - store an answer to a's request */
static void proxy_answer_set(struct proxy_answer *a, enum table_result status, const char *value,
                             size_t len)
{
    a->state = PROXY_ANSWERED;
    a->status = status;
    proxy_answer_value_free(a);
    if (status == TABLE_FOUND) {
        a->value = xstrndup(value, len);
        a->value_len = len;
    }
}

/* proxy_scope_fail - every request of s still out is answered TABLE_TEMPFAIL */
static void proxy_scope_fail(struct table_proxy_scope *s)
{
    for (size_t i = 0; i < s->count; i++)
        if (s->v[i]->state == PROXY_SENT)
            proxy_answer_set(s->v[i], TABLE_TEMPFAIL, NULL, 0);
    proxy_flight_forget(s, NULL);
    s->in_flight = 0;
}

static void proxy_scope_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct table_proxy_scope *s = arg;

    if (s->in_flight > 0)
        log_warn("%s: %zu table lookups not answered within %llds", table_proxy_socket(),
                 s->in_flight, table_proxy_timeout);
    proxy_scope_fail(s);
    proxy_scope_finish(s);
}

/* proxy_async_drop - the connection is gone: every request out fails */
static void proxy_async_drop(const char *why)
{
    if (proxy_async.bev != NULL) {
        bufferevent_free(proxy_async.bev);
        proxy_async.bev = NULL;
        attr_msg_free(&proxy_async.msg);
        if (proxy_async.count > 0) /* else a restart or reload: reconnect when needed */
            log_warn("%s: %s; %zu lookups fail", table_proxy_socket(), why, proxy_async.count);
    }
    while (proxy_async.count > 0) {
        struct table_proxy_scope *s = proxy_async.v[0].scope;
        proxy_scope_fail(s);
        /* finish from the event loop: done() may start another wait */
        struct timeval now = {0, 0};
        event_add(s->timer, &now);
    }
}

/* proxy_async_answer - one reply from tern-proxymap */
static int proxy_async_answer(const struct attr_msg *m)
{
    struct proxymap_reply rep;

    if (proxymap_reply_parse(m, &rep) < 0)
        return -1;
    for (size_t i = 0; i < proxy_async.count; i++) {
        struct proxy_flight f = proxy_async.v[i];
        if (f.id != rep.id)
            continue;
        proxy_async.v[i] = proxy_async.v[--proxy_async.count];
        if (rep.refused)
            proxy_value_refused(f.answer->spec, f.answer->key);
        proxy_answer_set(f.answer, rep.status, rep.value, rep.value_len);
        if (--f.scope->in_flight == 0)
            proxy_scope_finish(f.scope);
        return 0;
    }
    return 0; /* a cancelled scope's request: ignored */
}

static void proxy_async_on_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    int rc = 1;

    while (rc == 1 && evbuffer_get_length(in) > 0) {
        size_t len = evbuffer_get_length(in), used = 0;
        rc = attr_decode((const char *)evbuffer_pullup(in, -1), len, &used, &proxy_async.msg);
        if (rc == 1) {
            evbuffer_drain(in, used);
            if (proxy_async_answer(&proxy_async.msg) < 0)
                rc = -1;
        }
        if (proxy_async.bev != bev)
            return; /* done() dropped the connection */
    }
    if (rc < 0)
        proxy_async_drop("malformed reply; dropping the connection");
}

static void proxy_async_on_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        proxy_async_drop(what & BEV_EVENT_EOF ? "the lookup service closed the connection"
                                              : "connection error");
}

/* proxy_async_connect - the process's connection on base: 0 or -1 */
static int proxy_async_connect(struct event_base *base)
{
    int fd;

    if (proxy_async.bev != NULL && proxy_async.base == base)
        return 0;
    if (proxy_async.bev != NULL)
        proxy_async_drop("event loop changed");
    /* non-blocking: a full accept backlog (EAGAIN) fails now, a connect in
     * progress completes under the bufferevent, bounded by the scope's timer */
    if ((fd = unix_connect(table_proxy_socket(), 1)) < 0) {
        log_warn("%s: cannot connect: %s", table_proxy_socket(), strerror(errno));
        return -1;
    }
    proxy_async.base = base;
    proxy_async.bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (proxy_async.bev == NULL) {
        close(fd);
        return -1;
    }
    attr_msg_init(&proxy_async.msg);
    bufferevent_setcb(proxy_async.bev, proxy_async_on_read, NULL, proxy_async_on_event, NULL);
    bufferevent_enable(proxy_async.bev, EV_READ | EV_WRITE);
    return 0;
}

/* proxy_scope_send - put every asked request of s on the wire */
static void proxy_scope_send(struct table_proxy_scope *s, int connected)
{
    buf_t out = BUF_INIT;

    for (size_t i = 0; i < s->count; i++) {
        struct proxy_answer *a = s->v[i];
        if (a->state != PROXY_ASKED)
            continue;
        if (!connected) {
            proxy_answer_set(a, TABLE_TEMPFAIL, NULL, 0);
            continue;
        }
        a->state = PROXY_SENT;
        s->in_flight++;
        struct proxymap_request req = {++proxy_async.next_id, a->spec, a->flags, a->key};
        proxymap_request_encode(&out, &req);
        if (proxy_async.count == proxy_async.cap) {
            proxy_async.cap = proxy_async.cap ? 2 * proxy_async.cap : 16;
            proxy_async.v = xrealloc(proxy_async.v, proxy_async.cap * sizeof(*proxy_async.v));
        }
        proxy_async.v[proxy_async.count++] = (struct proxy_flight){req.id, s, a};
    }
    if (out.len > 0)
        bufferevent_write(proxy_async.bev, out.data, out.len);
    buf_free(&out);
}

int table_proxy_scope_wait(struct table_proxy_scope *s, struct event_base *base,
                           void (*done)(void *ctx), void *ctx)
{
    size_t asked = 0;
    struct timeval tv = {(time_t)table_proxy_timeout, 0};

    for (size_t i = 0; i < s->count; i++)
        asked += s->v[i]->state == PROXY_ASKED;
    if (s->waiting || asked == 0)
        return -1;
    if (s->timer == NULL)
        s->timer = evtimer_new(base, proxy_scope_on_timeout, s);
    s->waiting = 1;
    s->done = done;
    s->ctx = ctx;
    int connected = proxy_async_connect(base) == 0;
    proxy_scope_send(s, connected);
    if (!connected)
        tv.tv_sec = 0; /* every answer is a failure already: done() from the loop */
    event_add(s->timer, &tv);
    return 0;
}
