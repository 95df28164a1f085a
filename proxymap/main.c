/*
 * tern-proxymap - the lookup service for remote tables (Postfix's proxymap;
 * lib/table_proxy.h, docs/internals.md "proxymap protocol").
 *
 * master execs `tern-proxymap -c DIR` with private/proxymap (0600,
 * mail_owner; root connects too) as fd 3.  It drops to mail_owner but does
 * not chroot: ldap/pgsql .cf files and socketmap paths live anywhere.
 * Clients (every service's proxy tables) keep one connection open and
 * pipeline proxymap.lookup requests; replies come back when ready, matched
 * by id.  Only tables named somewhere in the configuration are served
 * (proxy_read_maps, implicitly): any other spec is answered tempfail and
 * logged, so a compromised service cannot make proxymap open arbitrary
 * files or directories.
 *
 * A lookup is answered from the TTL cache (proxymap_cache.c), else joined
 * to an identical lookup in flight, else queued to the table's workers
 * (proxymap_pool.c).  proxymap_lookup_timeout is a safety net over the
 * tables' own timeouts: a lookup not done by then is answered tempfail
 * and the worker's late result dropped.  With -v or proxymap_verbose every
 * lookup is logged (outcome, latency, cache or table; never the value).
 * SIGHUP drains like tern-anvil.
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

#include "config.h"
#include "log.h"
#include "privs.h"
#include "proxymap_cache.h"
#include "proxymap_pool.h"
#include "proxymap_proto.h"
#include "service.h"
#include "table.h"
#include "table_proxy.h"

/* bytes of a request in the input before it must parse */
#define PROXYMAP_MAX_REQUEST (PROXYMAP_SPEC_MAX + TABLE_KEY_MAX + 256)

struct proxymap_server {
    struct service svc;
    struct evconnlistener *listener;
    struct proxymap_pool *pool;
    struct proxymap_cache *cache;
    struct proxymap_map *flights; /* cache key -> struct proxymap_flight */
    struct proxymap_map *allowed; /* "TYPE:NAME" named in the configuration */
    struct proxymap_map *refused; /* specs refused (logged once each) */
    long long lookup_timeout;
    size_t client_count;
};

/* one client connection; freed when closed and no lookup of it is out */
struct proxymap_client {
    struct proxymap_server *srv;
    struct bufferevent *bev; /* NULL once closed */
    struct attr_msg msg;
    size_t waiting;
};

struct proxymap_waiter {
    struct proxymap_waiter *next;
    struct proxymap_client *client;
    unsigned long long id;
};

/* one table lookup in flight and the requests waiting for it */
struct proxymap_flight {
    struct proxymap_server *srv;
    char *ckey;
    char *spec;
    struct proxymap_job *job;
    struct proxymap_waiter *waiters;
    struct event *timer;
    struct timespec start;
};

static double proxymap_ms_since(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 +
           (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

static void proxymap_client_release(struct proxymap_client *c)
{
    if (c->bev != NULL || c->waiting > 0)
        return;
    attr_msg_free(&c->msg);
    free(c);
}

/* proxymap_reply - send one answer to c (if still connected) */
static void proxymap_reply(struct proxymap_client *c, unsigned long long id,
                           enum table_result status, const buf_t *value)
{
    struct proxymap_reply rep = {id, status, value ? value->data : NULL, value ? value->len : 0, 0};
    buf_t out = BUF_INIT;

    if (c->bev == NULL)
        return;
    if (rep.value == NULL)
        rep.value = "";
    proxymap_reply_encode(&out, &rep);
    bufferevent_write(c->bev, out.data, out.len);
    buf_free(&out);
}

/* proxymap_flight_end - answer every waiter, forget the flight */
static void proxymap_flight_end(struct proxymap_flight *f, enum table_result status,
                                const buf_t *value)
{
    struct proxymap_waiter *w, *next;

    proxymap_map_del(f->srv->flights, f->ckey);
    for (w = f->waiters; w != NULL; w = next) {
        next = w->next;
        proxymap_reply(w->client, w->id, status, value);
        w->client->waiting--;
        proxymap_client_release(w->client);
        free(w);
    }
    event_free(f->timer);
    free(f->ckey);
    free(f->spec);
    free(f);
}

/* proxymap_on_job_done - a worker answered */
static void proxymap_on_job_done(struct proxymap_job *job, void *ctx)
{
    struct proxymap_flight *f = job->ctx;
    struct proxymap_server *srv = ctx;

    if (job->status == TABLE_FOUND && proxymap_value_check(job->value.data, job->value.len) < 0) {
        log_warn("%s: lookup of %s: the value holds a control character or is over %d bytes; "
                 "answered as a temporary failure",
                 f->spec, job->key, PROXYMAP_VALUE_MAX);
        job->status = TABLE_TEMPFAIL;
    }
    log_debug("%s: %s: %s from the table in %.1f ms", f->spec, job->key,
              proxymap_status_name(job->status), proxymap_ms_since(&f->start));
    proxymap_cache_put(srv->cache, f->ckey, job->status, job->value.data, job->value.len,
                       time(NULL));
    proxymap_flight_end(f, job->status, &job->value);
    proxymap_job_free(job);
}

/* proxymap_on_flight_timeout - the safety net: give up on a hung lookup */
static void proxymap_on_flight_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct proxymap_flight *f = arg;

    log_warn("%s: lookup of %s not done after %llds (proxymap_lookup_timeout); answered as a "
             "temporary failure",
             f->spec, f->job->key, f->srv->lookup_timeout);
    proxymap_pool_abandon(f->srv->pool, f->job);
    proxymap_flight_end(f, TABLE_TEMPFAIL, NULL);
}

/* proxymap_flight_start - a new table lookup for r */
static struct proxymap_flight *proxymap_flight_start(struct proxymap_server *srv,
                                                     const struct proxymap_request *r,
                                                     const char *ckey)
{
    struct proxymap_flight *f = xcalloc(1, sizeof(*f));
    struct timeval tv = {(time_t)srv->lookup_timeout, 0};

    f->srv = srv;
    f->ckey = xstrdup(ckey);
    f->spec = xstrdup(r->table);
    clock_gettime(CLOCK_MONOTONIC, &f->start);
    f->timer = evtimer_new(srv->svc.base, proxymap_on_flight_timeout, f);
    if (f->timer == NULL)
        log_panic("evtimer_new failed");
    evtimer_add(f->timer, &tv);
    f->job = proxymap_job_new(r->key, f);
    proxymap_map_put(srv->flights, ckey, f);
    proxymap_pool_submit(srv->pool, r->table, r->flags, f->job);
    return f;
}

/* proxymap_allowed - 1 when spec is named in the configuration */
static int proxymap_allowed(struct proxymap_server *srv, const char *spec)
{
    if (proxymap_map_get(srv->allowed, spec) != NULL)
        return 1;
    if (proxymap_map_get(srv->refused, spec) == NULL) {
        proxymap_map_put(srv->refused, spec, srv);
        log_warn("refused a lookup in %s: the table is not named in %s (a table must appear "
                 "in the configuration to be served)",
                 spec, config_file(srv->svc.cfg));
    }
    return 0;
}

/* proxymap_lookup - answer r now (cache, refusal) or when its lookup ends */
static void proxymap_lookup(struct proxymap_client *c, const struct proxymap_request *r)
{
    struct proxymap_server *srv = c->srv;
    buf_t ckey = BUF_INIT, value = BUF_INIT;
    enum table_result status;

    if (!proxymap_allowed(srv, r->table)) {
        proxymap_reply(c, r->id, TABLE_TEMPFAIL, NULL);
        return;
    }
    proxymap_cache_key(&ckey, r->table, r->flags, r->key);
    if (proxymap_cache_get(srv->cache, buf_cstr(&ckey), time(NULL), &status, &value)) {
        log_debug("%s: %s: %s from the cache", r->table, r->key, proxymap_status_name(status));
        proxymap_reply(c, r->id, status, &value);
    } else {
        struct proxymap_flight *f = proxymap_map_get(srv->flights, buf_cstr(&ckey));
        struct proxymap_waiter *w = xcalloc(1, sizeof(*w));
        if (f == NULL)
            f = proxymap_flight_start(srv, r, buf_cstr(&ckey));
        w->client = c;
        w->id = r->id;
        w->next = f->waiters;
        f->waiters = w;
        c->waiting++;
    }
    buf_wipe(&value);
    buf_free(&value);
    buf_free(&ckey);
}

static void proxymap_client_close(struct proxymap_client *c)
{
    struct proxymap_server *srv = c->srv;

    bufferevent_free(c->bev);
    c->bev = NULL;
    proxymap_client_release(c);
    srv->client_count--;
    if (srv->svc.draining && srv->client_count == 0)
        service_stop(&srv->svc);
}

/* proxymap_client_on_read - every whole request in the input */
static void proxymap_client_on_read(struct bufferevent *bev, void *arg)
{
    struct proxymap_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    int rc = 1;

    while (rc == 1 && evbuffer_get_length(in) > 0) {
        size_t len = evbuffer_get_length(in), used = 0;
        struct proxymap_request r;
        if (len > PROXYMAP_MAX_REQUEST + 4)
            len = PROXYMAP_MAX_REQUEST + 4;
        rc = attr_decode((const char *)evbuffer_pullup(in, (ev_ssize_t)len), len, &used, &c->msg);
        if (rc == 1) {
            evbuffer_drain(in, used);
            if (proxymap_request_parse(&c->msg, &r) < 0)
                rc = -1;
            else
                proxymap_lookup(c, &r);
        } else if (rc == 0 && len > PROXYMAP_MAX_REQUEST) {
            rc = -1;
        }
    }
    if (rc < 0) {
        log_warn("a client of private/proxymap sent a malformed request; dropping it");
        proxymap_client_close(c);
    }
}

static void proxymap_client_on_event(struct bufferevent *bev, short what, void *arg)
{
    proxymap_client_close(arg);
}

static void proxymap_on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                               int salen, void *arg)
{
    struct proxymap_server *srv = arg;
    struct proxymap_client *c = xcalloc(1, sizeof(*c));

    c->srv = srv;
    c->bev = bufferevent_socket_new(srv->svc.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL)
        log_panic("bufferevent_socket_new failed");
    attr_msg_init(&c->msg);
    bufferevent_setcb(c->bev, proxymap_client_on_read, NULL, proxymap_client_on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    srv->client_count++;
}

static void proxymap_on_drain(void *ctx)
{
    struct proxymap_server *srv = ctx;

    if (srv->listener != NULL)
        evconnlistener_free(srv->listener);
    srv->listener = NULL;
    if (srv->client_count == 0)
        service_stop(&srv->svc);
}

/* proxymap_allow_item - remember the table an item of a value names */
static void proxymap_allow_item(struct proxymap_server *srv, const char *item)
{
    static const char *const prefixes[] = {TABLE_OPTIONAL_PREFIX, "proxy:"};

    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(item, prefixes[i], strlen(prefixes[i])) == 0)
            item += strlen(prefixes[i]);
    if (table_spec_known(item) && proxymap_map_get(srv->allowed, item) == NULL)
        proxymap_map_put(srv->allowed, item, srv);
}

/* proxymap_allow_value - every item of a value (split at white space and commas) */
static void proxymap_allow_value(struct proxymap_server *srv, const char *value)
{
    char *copy = xstrdup(value), *save = NULL;

    for (char *item = strtok_r(copy, " \t\r\n,", &save); item != NULL;
         item = strtok_r(NULL, " \t\r\n,", &save))
        proxymap_allow_item(srv, item);
    free(copy);
}

/* proxymap_allow_config - the tables named in any parameter's value */
static void proxymap_allow_config(struct proxymap_server *srv)
{
    const struct config *cfg = srv->svc.cfg;

    srv->allowed = proxymap_map_new();
    for (size_t i = 0; param_table[i].name != NULL; i++) {
        const char *name = param_table[i].name;
        if (param_table[i].type == PARAM_LIST) {
            for (char *const *items = config_list(cfg, name, NULL); *items; items++)
                proxymap_allow_item(srv, *items);
        } else if (param_table[i].type == PARAM_STR) {
            proxymap_allow_value(srv, config_str(cfg, name));
        }
    }
    for (size_t i = 0; i < config_override_count(cfg); i++) {
        const char *listener, *name, *raw;
        config_override_get(cfg, i, &listener, &name, &raw);
        proxymap_allow_value(srv, raw);
    }
}

static void proxymap_server_setup(struct proxymap_server *srv)
{
    struct service *svc = &srv->svc;

    if (svc->listen_count < 1)
        log_fatal("no listening socket: tern-proxymap expects private/proxymap as fd 3 from "
                  "tern-master");
    srv->lookup_timeout = config_time(svc->cfg, "proxymap_lookup_timeout");
    if (srv->lookup_timeout < 1)
        srv->lookup_timeout = 1;
    proxymap_allow_config(srv);
    srv->refused = proxymap_map_new();
    srv->flights = proxymap_map_new();
    srv->cache = proxymap_cache_new(config_time(svc->cfg, "proxymap_cache_ttl"),
                                    (size_t)config_int(svc->cfg, "proxymap_cache_size"));
    srv->pool = proxymap_pool_new(svc->base, (size_t)config_int(svc->cfg, "proxymap_pool_size"),
                                  proxymap_on_job_done, srv);
    srv->listener =
        evconnlistener_new(svc->base, proxymap_on_accept, srv,
                           LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, svc->listen_fds[0]);
    if (srv->listener == NULL)
        log_fatal("private/proxymap: cannot set up the listener");
}

int main(int argc, char **argv)
{
    static struct proxymap_server srv;
    int status;

    table_remote_link(); /* ldap: and pgsql: open directly here */

    service_init(&srv.svc, "proxymap", argc, argv);
    table_proxy_default(0); /* the tables are opened here, directly */
    if (config_bool(srv.svc.cfg, "proxymap_verbose"))
        log_set_verbose(1);
    srv.svc.ctx = &srv;
    srv.svc.on_drain = proxymap_on_drain;
    privs_drop(config_str(srv.svc.cfg, "mail_owner"), NULL); /* no chroot: see above */
    proxymap_server_setup(&srv);
    status = service_run(&srv.svc);
    /* worker threads may be blocked in a hung table: exit without joining */
    _exit(status);
}
