/*
 * cache - idle SMTP connections kept between deliveries (see smtp.h).
 *
 * One list, most recently cached first; a lookup takes the newest idle
 * entry with the key (next hop and port).  Each entry has one timer: while
 * idle it is the smtp_connection_cache_time_limit, then "QUIT" is sent and
 * the entry waits at most CACHE_QUIT_WAIT seconds for the reply or the
 * close.  Anything the server sends while a connection is idle (a 421 on
 * its own idle timeout) or an EOF drops the entry at once.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "smtp.h"
#include "smtp_tls.h"

#define CACHE_QUIT_WAIT 5 /* seconds for the 221 after QUIT */

struct cache_entry {
    struct smtp_cache *cache;
    char *key;
    struct smtp_conn conn;
    struct event *timer;
    int quitting; /* QUIT sent: no longer to be taken */
    struct cache_entry *prev, *next;
};

struct smtp_cache {
    struct event_base *base;
    struct smtp_cache_limits lim;
    size_t idle; /* entries not quitting */
    int closed;  /* draining: cache nothing */
    struct cache_entry *head;
};

/* cache_unlink - take e out of the list */
static void cache_unlink(struct cache_entry *e)
{
    struct smtp_cache *c = e->cache;

    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    e->prev = e->next = NULL;
    if (!e->quitting)
        c->idle--;
}

/* cache_entry_free - unlink e, close its connection, release it */
static void cache_entry_free(struct cache_entry *e)
{
    if (e->conn.tls) /* it ended a transaction cleanly: its session stays resumable */
        smtp_tls_bev_done(e->conn.bev);
    cache_unlink(e);
    event_free(e->timer);
    if (e->conn.bev)
        bufferevent_free(e->conn.bev); /* closes the fd */
    free(e->key);
    free(e);
}

/* cache_entry_quit - say QUIT and wait a little for the answer */
static void cache_entry_quit(struct cache_entry *e)
{
    struct timeval tv = {CACHE_QUIT_WAIT, 0};

    if (e->quitting)
        return;
    e->quitting = 1;
    e->cache->idle--;
    bufferevent_write(e->conn.bev, "QUIT\r\n", 6);
    evtimer_add(e->timer, &tv);
}

/* cache_timer_event - idle too long: QUIT; quitting too long: close */
static void cache_timer_event(evutil_socket_t fd, short what, void *arg)
{
    struct cache_entry *e = arg;

    if (e->quitting)
        cache_entry_free(e);
    else
        cache_entry_quit(e);
}

/* cache_read_event - the server spoke: the 221, or a 421 while idle */
static void cache_read_event(struct bufferevent *bev, void *arg)
{
    struct cache_entry *e = arg;

    if (!e->quitting)
        log_info("cached connection to %s: server spoke while idle; closed", e->conn.relay);
    cache_entry_free(e);
}

/* cache_conn_event - EOF or error: the server is gone */
static void cache_conn_event(struct bufferevent *bev, short what, void *arg)
{
    struct cache_entry *e = arg;

    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        cache_entry_free(e);
}

/* smtp_cache_create - see smtp.h */
struct smtp_cache *smtp_cache_create(struct event_base *base, const struct smtp_cache_limits *lim)
{
    struct smtp_cache *c = xcalloc(1, sizeof(*c));

    c->base = base;
    c->lim = *lim;
    return c;
}

/* cache_accepts - may a connection with this many uses be kept? */
static int cache_accepts(const struct smtp_cache *c, const struct smtp_conn *conn)
{
    if (c->closed || c->idle >= (size_t)c->lim.size_limit)
        return 0;
    return c->lim.reuse_limit <= 0 || conn->uses < c->lim.reuse_limit;
}

/* smtp_cache_put - see smtp.h */
int smtp_cache_put(struct smtp_cache *c, const char *key, const struct smtp_conn *conn)
{
    struct timeval tv = {(time_t)c->lim.time_limit, 0};
    struct cache_entry *e;

    if (!cache_accepts(c, conn))
        return -1;
    e = xcalloc(1, sizeof(*e));
    e->cache = c;
    e->key = xstrdup(key);
    e->conn = *conn;
    e->timer = evtimer_new(c->base, cache_timer_event, e);
    if (e->timer == NULL)
        log_panic("evtimer_new failed");
    bufferevent_setcb(e->conn.bev, cache_read_event, NULL, cache_conn_event, e);
    bufferevent_enable(e->conn.bev, EV_READ);
    evtimer_add(e->timer, &tv);
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    c->idle++;
    return 0;
}

/* smtp_cache_take - see smtp.h */
int smtp_cache_take(struct smtp_cache *c, const char *key, struct smtp_conn *conn)
{
    for (struct cache_entry *e = c->head; e; e = e->next) {
        if (e->quitting || strcmp(e->key, key) != 0)
            continue;
        *conn = e->conn;
        e->conn.bev = NULL;
        bufferevent_setcb(conn->bev, NULL, NULL, NULL, NULL);
        cache_entry_free(e);
        return 0;
    }
    return -1;
}

/* smtp_cache_drain - see smtp.h */
void smtp_cache_drain(struct smtp_cache *c)
{
    c->closed = 1;
    for (struct cache_entry *e = c->head; e; e = e->next)
        cache_entry_quit(e);
}

/* cache_entry_flush - at exit: push out what is queued (the QUIT) without
 * waiting; the socket is non-blocking */
static void cache_entry_flush(struct cache_entry *e)
{
    struct evbuffer *out = bufferevent_get_output(e->conn.bev);

    if (evbuffer_get_length(out) == 0 || e->conn.tls) /* TLS: plain bytes would be garbage */
        return;
    evbuffer_unfreeze(out, 1); /* the bufferevent keeps its start frozen */
    evbuffer_write(out, bufferevent_getfd(e->conn.bev));
}

/* smtp_cache_free - see smtp.h */
void smtp_cache_free(struct smtp_cache *c)
{
    if (c == NULL)
        return;
    smtp_cache_drain(c);
    while (c->head) {
        cache_entry_flush(c->head);
        cache_entry_free(c->head);
    }
    free(c);
}
