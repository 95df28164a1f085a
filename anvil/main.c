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

#include "anvil_table.h"
#include "attr.h"
#include "config.h"
#include "log.h"
#include "service.h"

/* a request is one small message; more bytes without one is garbage */
#define ANVIL_MAX_REQUEST 4096

struct anvil_server {
    struct service svc;
    struct anvil_table *table;
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
    bufferevent_free(c->bev);
    attr_msg_free(&c->msg);
    free(c);
    srv->client_count--;
    if (srv->svc.draining && srv->client_count == 0)
        service_stop(&srv->svc);
}

/* anvil_answer - the reply to one request in m */
static void anvil_answer(struct anvil_client *c, const struct attr_msg *m, buf_t *out)
{
    const char *proto = attr_proto(m);
    size_t len = 0;
    const char *ident = attr_get(m, "ident", &len);
    time_t now = time(NULL);
    long long count = 0, rate = 0;

    attr_begin(out, "anvil.reply");
    if (ident == NULL || len == 0 || len > ANVIL_IDENT_MAX || strlen(ident) != len) {
        attr_add_str(out, "status", "error");
        attr_add_str(out, "text", "missing or bad ident");
    } else if (strcmp(proto, "anvil.disconnect") == 0) {
        anvil_table_disconnect(c->srv->table, ident, c->owner, now);
        attr_add_str(out, "status", "ok");
    } else {
        size_t i = 0;
        while (i < sizeof(anvil_requests) / sizeof(anvil_requests[0]) &&
               strcmp(anvil_requests[i].proto, proto) != 0)
            i++;
        if (i == sizeof(anvil_requests) / sizeof(anvil_requests[0])) {
            attr_add_str(out, "status", "error");
            attr_add_str(out, "text", "unknown request");
        } else if (anvil_requests[i].rate == ANVIL_RATE_CONNECT) {
            anvil_table_connect(c->srv->table, ident, c->owner, now, &count, &rate);
            attr_add_str(out, "status", "ok");
            attr_add_int(out, "count", count);
            attr_add_int(out, "rate", rate);
        } else {
            rate = anvil_table_event(c->srv->table, ident, anvil_requests[i].rate, now);
            attr_add_str(out, "status", "ok");
            attr_add_int(out, "rate", rate);
        }
    }
    attr_end(out);
}

/* anvil_client_on_read - answer every whole request, in order */
static void anvil_client_on_read(struct bufferevent *bev, void *arg)
{
    struct anvil_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    buf_t out = BUF_INIT;
    int rc = 1;

    while (rc == 1 && evbuffer_get_length(in) > 0) {
        size_t len = evbuffer_get_length(in);
        size_t used = 0;
        if (len > ANVIL_MAX_REQUEST + 4)
            len = ANVIL_MAX_REQUEST + 4;
        rc = attr_decode((const char *)evbuffer_pullup(in, (ev_ssize_t)len), len, &used, &c->msg);
        if (rc == 1) {
            evbuffer_drain(in, used);
            anvil_answer(c, &c->msg, &out);
        } else if (rc < 0 || len > ANVIL_MAX_REQUEST) {
            rc = -1;
        }
    }
    if (out.len > 0)
        bufferevent_write(bev, out.data, out.len);
    buf_free(&out);
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
    anvil_table_free(srv.table);
    config_free(srv.svc.cfg);
    return status;
}
