/*
 * tern-anvil - per-client connection and rate counters shared by every
 * smtpd worker (Postfix's anvil; docs/internals.md, "anvil protocol").
 *
 * master execs `tern-anvil -c DIR` with private/anvil (0600, mail_owner)
 * as fd 3.  Each smtpd worker keeps one connection open and pipelines its
 * requests; every request gets exactly one reply, in order.  anvil only
 * counts (anvil_table.c): the limits are smtpd's, so one anvil serves
 * listeners with different limits.  A worker's connection that closes
 * releases the connections it still held.  Every anvil_status_update_time
 * (and at exit) the maxima are logged as Postfix does:
 * "statistics: max connection rate 3/60s for (smtp:192.0.2.1) at Jan  1 12:00:00".
 *
 * Nothing here is durable: a restarted anvil starts from zero (limits fail
 * open, they never fail closed).  SIGHUP drains: stop accepting, exit when
 * the last worker has gone.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "anvil_redis.h"
#include "anvil_table.h"
#include "attr.h"
#include "config.h"
#include "log.h"
#include "service.h"

/* a request is one small message; more bytes without one is garbage */
#define ANVIL_MAX_REQUEST 4096
/* how long a reply waits for Redis's count before the local one is sent */
#define ANVIL_REDIS_DEADLINE_MS 200

struct anvil_server {
    struct service svc;
    struct anvil_table *table;
    struct anvil_redis *redis; /* NULL: anvil_backend is empty, every count is local */
    struct evconnlistener *listener;
    struct event *expire;
    struct event *status;
    long long time_unit;
    size_t client_count;
    unsigned long next_owner;
};

/* one smtpd worker's connection */
struct anvil_client {
    struct anvil_server *srv;
    struct bufferevent *bev;
    unsigned long owner;
    struct attr_msg msg;
    struct anvil_reply *head, *tail; /* the replies not sent yet, in order */
    struct event *deadline;          /* the first one's wait for Redis ends */
};

/* one request's reply, counted locally, perhaps waiting for Redis's count */
struct anvil_reply {
    struct anvil_reply *next;
    struct anvil_client *client; /* NULL: out of the queue (sent, or the client is gone) */
    int in_queue;
    int redis_owes;           /* anvil_on_shared will still be called */
    struct timespec deadline; /* CLOCK_MONOTONIC: then answer without Redis */
    const char *error;        /* status=error with this text */
    char ident[ANVIL_IDENT_MAX + 1];
    enum anvil_rate what;
    int has_count, has_rate;
    long long count, rate;
};

/* the requests, and the counter each one moves */
static const struct {
    const char *proto;
    enum anvil_rate rate;
} anvil_requests[] = {
    {"anvil.connect", ANVIL_RATE_CONNECT},
    {"anvil.message", ANVIL_RATE_MESSAGE},
    {"anvil.recipient", ANVIL_RATE_RECIPIENT},
    {"anvil.auth", ANVIL_RATE_AUTH},
};
static void anvil_reply_release(struct anvil_reply *rp);

#define ANVIL_REQUEST_COUNT (sizeof(anvil_requests) / sizeof(anvil_requests[0]))

/* anvil_now - the monotonic clock */
static struct timespec anvil_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts;
}

/* anvil_ms_until - milliseconds from now to then (negative: passed) */
static long long anvil_ms_until(struct timespec then, struct timespec now)
{
    return (long long)(then.tv_sec - now.tv_sec) * 1000 + (then.tv_nsec - now.tv_nsec) / 1000000;
}

/* anvil_log_max - one "statistics:" line when something was counted */
static void anvil_log_max(const struct anvil_server *srv, const char *what,
                          const struct anvil_max *m)
{
    char when[32];
    struct tm tm;

    if (m->value <= 0)
        return;
    localtime_r(&m->when, &tm);
    strftime(when, sizeof(when), "%b %e %H:%M:%S", &tm);
    if (strcmp(what, "connection count") == 0)
        log_info("statistics: max %s %lld for (%s) at %s", what, m->value, m->ident, when);
    else if (strcmp(what, "cache size") == 0)
        log_info("statistics: max %s %lld at %s", what, m->value, when);
    else
        log_info("statistics: max %s %lld/%llds for (%s) at %s", what, m->value, srv->time_unit,
                 m->ident, when);
}

/* anvil_log_stats - the maxima since the last report, then reset them */
static void anvil_log_stats(struct anvil_server *srv)
{
    const struct anvil_stats *st = anvil_table_stats(srv->table);
    char name[64];

    anvil_log_max(srv, "connection rate", &st->rate[ANVIL_RATE_CONNECT]);
    anvil_log_max(srv, "connection count", &st->count);
    for (int r = ANVIL_RATE_MESSAGE; r < ANVIL_RATE_COUNT; r++) {
        snprintf(name, sizeof(name), "%s rate", anvil_rate_name((enum anvil_rate)r));
        anvil_log_max(srv, name, &st->rate[r]);
    }
    anvil_log_max(srv, "cache size", &st->cache);
    anvil_table_stats_reset(srv->table);
}

/* anvil_client_close - a worker went away: release what it held */
static void anvil_client_close(struct anvil_client *c)
{
    struct anvil_server *srv = c->srv;

    anvil_table_owner_gone(srv->table, c->owner, time(NULL));
    while (c->head != NULL) {
        struct anvil_reply *rp = c->head;
        c->head = rp->next;
        anvil_reply_release(rp);
    }
    event_free(c->deadline);
    bufferevent_free(c->bev);
    attr_msg_free(&c->msg);
    free(c);
    srv->client_count--;
    if (srv->svc.draining && srv->client_count == 0)
        service_stop(&srv->svc);
}

/* anvil_reply_new - the reply to one request in m, counted locally */
static struct anvil_reply *anvil_reply_new(struct anvil_client *c, const struct attr_msg *m,
                                           time_t now)
{
    const char *proto = attr_proto(m);
    size_t len = 0, i = 0;
    const char *ident = attr_get(m, "ident", &len);
    struct anvil_reply *rp = xcalloc(1, sizeof(*rp));

    rp->client = c;
    rp->in_queue = 1;
    if (ident == NULL || len == 0 || len > ANVIL_IDENT_MAX || strlen(ident) != len) {
        rp->error = "missing or bad ident";
        return rp;
    }
    snprintf(rp->ident, sizeof(rp->ident), "%s", ident);
    if (strcmp(proto, "anvil.disconnect") == 0) {
        anvil_table_disconnect(c->srv->table, ident, c->owner, now);
        return rp;
    }
    while (i < ANVIL_REQUEST_COUNT && strcmp(anvil_requests[i].proto, proto) != 0)
        i++;
    if (i == ANVIL_REQUEST_COUNT) {
        rp->error = "unknown request";
        return rp;
    }
    rp->what = anvil_requests[i].rate;
    rp->has_rate = 1;
    if (rp->what == ANVIL_RATE_CONNECT) {
        anvil_table_connect(c->srv->table, ident, c->owner, now, &rp->count, &rp->rate);
        rp->has_count = 1;
    } else {
        rp->rate = anvil_table_event(c->srv->table, ident, rp->what, now);
    }
    return rp;
}

/* anvil_reply_encode - rp as an anvil.reply */
static void anvil_reply_encode(const struct anvil_reply *rp, buf_t *out)
{
    attr_begin(out, "anvil.reply");
    if (rp->error != NULL) {
        attr_add_str(out, "status", "error");
        attr_add_str(out, "text", rp->error);
    } else {
        attr_add_str(out, "status", "ok");
        if (rp->has_count)
            attr_add_int(out, "count", rp->count);
        if (rp->has_rate)
            attr_add_int(out, "rate", rp->rate);
    }
    attr_end(out);
}

/* anvil_reply_release - rp left its queue; Redis may still owe its count */
static void anvil_reply_release(struct anvil_reply *rp)
{
    rp->in_queue = 0;
    rp->client = NULL;
    if (!rp->redis_owes)
        free(rp);
}

/* anvil_client_flush - send the replies that are ready, in order; the
 * timer for the first one still waiting for Redis */
static void anvil_client_flush(struct anvil_client *c)
{
    struct timespec now = anvil_now();
    buf_t out = BUF_INIT;
    struct anvil_reply *rp;

    while ((rp = c->head) != NULL && (!rp->redis_owes || anvil_ms_until(rp->deadline, now) <= 0)) {
        c->head = rp->next;
        if (c->head == NULL)
            c->tail = NULL;
        anvil_reply_encode(rp, &out);
        anvil_reply_release(rp);
    }
    if (out.len > 0)
        bufferevent_write(c->bev, out.data, out.len);
    buf_free(&out);
    if (c->head == NULL) {
        evtimer_del(c->deadline);
    } else {
        long long ms = anvil_ms_until(c->head->deadline, now);
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
        evtimer_add(c->deadline, &tv);
    }
}

/* anvil_on_shared - Redis's count for rp (-1: none): the larger one wins */
static void anvil_on_shared(void *arg, long long count)
{
    struct anvil_reply *rp = arg;

    rp->redis_owes = 0;
    if (!rp->in_queue) {
        free(rp);
        return;
    }
    if (count > rp->rate)
        rp->rate = count;
    anvil_client_flush(rp->client);
}

/* anvil_on_deadline - Redis is late: answer from the local counts */
static void anvil_on_deadline(evutil_socket_t fd, short what, void *arg)
{
    anvil_client_flush(arg);
}

/* anvil_client_queue - rp after the replies before it; ask Redis for a rate */
static void anvil_client_queue(struct anvil_client *c, struct anvil_reply *rp, time_t now)
{
    if (rp->has_rate && c->srv->redis != NULL &&
        anvil_redis_incr(c->srv->redis, rp->what, rp->ident, now, anvil_on_shared, rp) == 0) {
        rp->redis_owes = 1;
        rp->deadline = anvil_now();
        rp->deadline.tv_nsec += ANVIL_REDIS_DEADLINE_MS * 1000000L;
        if (rp->deadline.tv_nsec >= 1000000000L) {
            rp->deadline.tv_sec++;
            rp->deadline.tv_nsec -= 1000000000L;
        }
    }
    if (c->tail != NULL)
        c->tail->next = rp;
    else
        c->head = rp;
    c->tail = rp;
}

/* anvil_client_on_read - answer every whole request, in order */
static void anvil_client_on_read(struct bufferevent *bev, void *arg)
{
    struct anvil_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    int rc = 1;

    while (rc == 1 && evbuffer_get_length(in) > 0) {
        size_t len = evbuffer_get_length(in);
        size_t used = 0;
        if (len > ANVIL_MAX_REQUEST + 4)
            len = ANVIL_MAX_REQUEST + 4;
        rc = attr_decode((const char *)evbuffer_pullup(in, (ev_ssize_t)len), len, &used, &c->msg);
        if (rc == 1) {
            time_t now = time(NULL);
            evbuffer_drain(in, used);
            anvil_client_queue(c, anvil_reply_new(c, &c->msg, now), now);
        } else if (rc < 0 || len > ANVIL_MAX_REQUEST) {
            rc = -1;
        }
    }
    anvil_client_flush(c);
    if (rc < 0) {
        log_warn("a client of private/anvil sent a malformed request; dropping it");
        anvil_client_close(c);
    }
}

/* anvil_client_on_event - EOF or error: the worker is gone */
static void anvil_client_on_event(struct bufferevent *bev, short what, void *arg)
{
    anvil_client_close(arg);
}

/* anvil_on_accept - a worker connects */
static void anvil_on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                            int salen, void *arg)
{
    struct anvil_server *srv = arg;
    struct anvil_client *c = xcalloc(1, sizeof(*c));

    c->srv = srv;
    c->owner = ++srv->next_owner;
    c->bev = bufferevent_socket_new(srv->svc.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL)
        log_panic("bufferevent_socket_new failed");
    c->deadline = evtimer_new(srv->svc.base, anvil_on_deadline, c);
    if (c->deadline == NULL)
        log_panic("evtimer_new failed");
    attr_msg_init(&c->msg);
    bufferevent_setcb(c->bev, anvil_client_on_read, NULL, anvil_client_on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    srv->client_count++;
}

/* anvil_on_expire - forget the clients that carry nothing */
static void anvil_on_expire(evutil_socket_t fd, short what, void *arg)
{
    struct anvil_server *srv = arg;

    anvil_table_expire(srv->table, time(NULL));
}

/* anvil_on_status - the periodic statistics */
static void anvil_on_status(evutil_socket_t fd, short what, void *arg)
{
    anvil_log_stats(arg);
}

/* anvil_on_drain - SIGHUP: accept nobody new; exit when the workers left */
static void anvil_on_drain(void *ctx)
{
    struct anvil_server *srv = ctx;

    if (srv->listener != NULL)
        evconnlistener_free(srv->listener);
    srv->listener = NULL;
    if (srv->client_count == 0)
        service_stop(&srv->svc);
}

/* anvil_timer - a persistent timer every seconds */
static struct event *anvil_timer(struct anvil_server *srv, long long seconds, event_callback_fn fn)
{
    struct timeval tv = {(time_t)seconds, 0};
    struct event *ev = event_new(srv->svc.base, -1, EV_PERSIST, fn, srv);

    if (ev == NULL || event_add(ev, &tv) < 0)
        log_fatal("cannot set up a timer");
    return ev;
}

/* anvil_backend_setup - anvil_backend: empty (count here) or redis: */
static void anvil_backend_setup(struct anvil_server *srv)
{
    const char *spec = config_str(srv->svc.cfg, "anvil_backend");
    struct anvil_redis_addr addr;
    const char *why = NULL;

    if (spec == NULL || spec[0] == '\0')
        return;
    if (anvil_redis_parse(spec, &addr, &why) < 0)
        log_fatal("%s: anvil_backend = %s: %s", config_file(srv->svc.cfg), spec, why);
    srv->redis = anvil_redis_new(srv->svc.base, &addr, srv->time_unit);
}

/* anvil_server_setup - the table, the listener, the timers */
static void anvil_server_setup(struct anvil_server *srv)
{
    struct service *svc = &srv->svc;
    long long status_time = config_time(svc->cfg, "anvil_status_update_time");

    if (svc->listen_count < 1)
        log_fatal("no listening socket: tern-anvil expects private/anvil as fd 3 from "
                  "tern-master");
    srv->time_unit = config_time(svc->cfg, "anvil_rate_time_unit");
    if (srv->time_unit < 1 || status_time < 1)
        log_fatal("%s: anvil_rate_time_unit and anvil_status_update_time must be at least 1s",
                  config_file(svc->cfg));
    srv->table = anvil_table_new(srv->time_unit);
    anvil_backend_setup(srv);
    if (set_nonblock(svc->listen_fds[0]) < 0)
        log_fatal("private/anvil: cannot make the socket non-blocking: %s", strerror(errno));
    srv->listener =
        evconnlistener_new(svc->base, anvil_on_accept, srv,
                           LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, svc->listen_fds[0]);
    if (srv->listener == NULL)
        log_fatal("private/anvil: cannot set up the listener");
    srv->expire = anvil_timer(srv, srv->time_unit, anvil_on_expire);
    srv->status = anvil_timer(srv, status_time, anvil_on_status);
}

int main(int argc, char **argv)
{
    static struct anvil_server srv;
    int status;

    service_init(&srv.svc, "anvil", argc, argv);
    srv.svc.ctx = &srv;
    srv.svc.on_drain = anvil_on_drain;
    service_drop_privileges(&srv.svc);
    anvil_server_setup(&srv);
    status = service_run(&srv.svc);
    anvil_log_stats(&srv);
    if (srv.listener != NULL)
        evconnlistener_free(srv.listener);
    event_free(srv.expire);
    event_free(srv.status);
    anvil_redis_free(srv.redis);
    anvil_table_free(srv.table);
    config_free(srv.svc.cfg);
    return status;
}
