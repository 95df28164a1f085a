/*
 * anvil_redis - the shared rates in Redis (see anvil_redis.h): one
 * hiredis async connection, a retry timer while it is down and a watchdog
 * for a Redis that accepts commands and never answers (hiredis 0.14 has no
 * command timeout of its own).
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "anvil_redis.h"
#include "buf.h"
#include "log.h"

/* INCR, and the expiry set once, with the window's first event */
#define ANVIL_REDIS_SCRIPT                                                                         \
    "local n = redis.call('INCR', KEYS[1]) "                                                       \
    "if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end "                                   \
    "return n"
/* how often the watchdog looks */
#define ANVIL_REDIS_WATCH_MS 100

struct anvil_redis {
    struct event_base *base;
    struct anvil_redis_addr addr;
    char name[300]; /* "HOST:PORT" or "unix:PATH", for the log */
    int resolved;   /* addr.host is numeric (or a path is used) */
    long long time_unit;
    redisAsyncContext *ac; /* NULL: down */
    int connected;
    int down_logged; /* the "unavailable" line was logged since the last up */
    int error_logged;
    size_t pending;           /* commands sent, not answered */
    struct timespec progress; /* last connect, reply, or send while idle */
    struct event *retry;
    struct event *watch;
};

/* one request waiting for its reply */
struct anvil_redis_request {
    struct anvil_redis *r;
    void (*cb)(void *arg, long long count);
    void *arg;
};

static void anvil_redis_connect(struct anvil_redis *r);

int anvil_redis_parse(const char *spec, struct anvil_redis_addr *addr, const char **why)
{
    const char *rest, *colon;
    char *end;
    long port;

    memset(addr, 0, sizeof(*addr));
    if (strncmp(spec, "redis:", 6) != 0)
        return *why = "not redis:HOST:PORT or redis:unix:/PATH", -1;
    rest = spec + 6;
    if (strncmp(rest, "unix:", 5) == 0) {
        if (rest[5] != '/' || strlen(rest + 5) >= sizeof(addr->path))
            return *why = "redis:unix: needs an absolute path", -1;
        snprintf(addr->path, sizeof(addr->path), "%s", rest + 5);
        return 0;
    }
    colon = strrchr(rest, ':');
    if (colon == NULL || colon == rest)
        return *why = "redis:HOST:PORT needs a host and a port", -1;
    port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
        return *why = "bad port in redis:HOST:PORT", -1;
    if (rest[0] == '[') {
        if (colon[-1] != ']' || colon - rest < 3)
            return *why = "bad [IPV6] in redis:[IPV6]:PORT", -1;
        rest++;
        colon--;
    }
    if ((size_t)(colon - rest) >= sizeof(addr->host) || memchr(rest, '/', colon - rest) != NULL)
        return *why = "bad host in redis:HOST:PORT", -1;
    snprintf(addr->host, sizeof(addr->host), "%.*s", (int)(colon - rest), rest);
    addr->port = (int)port;
    return 0;
}

/* anvil_redis_now - the monotonic clock */
static struct timespec anvil_redis_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts;
}

/* anvil_redis_ms_since - milliseconds from then to now */
static long long anvil_redis_ms_since(struct timespec then)
{
    struct timespec now = anvil_redis_now();

    return (long long)(now.tv_sec - then.tv_sec) * 1000 + (now.tv_nsec - then.tv_nsec) / 1000000;
}

/* anvil_redis_went_down - log it once, try again later */
static void anvil_redis_went_down(struct anvil_redis *r, const char *why)
{
    struct timeval tv = {ANVIL_REDIS_RETRY, 0};

    r->ac = NULL;
    r->connected = 0;
    if (!r->down_logged)
        log_warn("anvil: redis %s unavailable (%s): counting locally", r->name, why);
    r->down_logged = 1;
    evtimer_add(r->retry, &tv);
}

/* anvil_redis_drop - close a connection that stalls; pending callbacks get -1 */
static void anvil_redis_drop(struct anvil_redis *r, const char *why)
{
    redisAsyncContext *ac = r->ac;

    anvil_redis_went_down(r, why);
    redisAsyncFree(ac);
}

/* anvil_redis_on_ping - the first reply on a new connection: Redis is up */
static void anvil_redis_on_ping(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct anvil_redis *r = privdata;
    const redisReply *rep = reply;

    r->pending--;
    if (rep == NULL || r->ac != ac)
        return; /* dropped meanwhile */
    if (rep->type == REDIS_REPLY_ERROR) {
        anvil_redis_drop(r, rep->str);
        return;
    }
    r->connected = 1;
    r->progress = anvil_redis_now();
    if (r->down_logged)
        log_info("anvil: redis %s available again: rates are shared", r->name);
    else
        log_info("anvil: redis %s connected: rates are shared", r->name);
    r->down_logged = 0;
    r->error_logged = 0;
}

/* anvil_redis_on_connect - hiredis: the connect is over (it frees ac on
 * failure); a PING must come back before the connection is used, so that a
 * Redis that accepts and hangs is not taken for up */
static void anvil_redis_on_connect(const redisAsyncContext *ac, int status)
{
    struct anvil_redis *r = ac->data;

    if (r == NULL || r->ac != ac)
        return;
    if (status != REDIS_OK) {
        anvil_redis_went_down(r, ac->errstr[0] != '\0' ? ac->errstr : "cannot connect");
        return;
    }
    r->progress = anvil_redis_now();
    if (redisAsyncCommand(r->ac, anvil_redis_on_ping, r, "PING") == REDIS_OK)
        r->pending++;
}

/* anvil_redis_on_disconnect - hiredis: the connection ended (it frees ac) */
static void anvil_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    struct anvil_redis *r = ac->data;

    if (r == NULL || r->ac != ac)
        return; /* we dropped it ourselves */
    anvil_redis_went_down(r, status == REDIS_OK || ac->errstr[0] == '\0' ? "connection closed"
                                                                         : ac->errstr);
}

/* anvil_redis_connect - one attempt; failures come back as went_down */
static void anvil_redis_connect(struct anvil_redis *r)
{
    redisAsyncContext *ac;

    char why[128];

    if (!r->resolved) {
        anvil_redis_went_down(r, "the host name did not resolve at start");
        return;
    }
    if (r->addr.path[0] != '\0')
        ac = redisAsyncConnectUnix(r->addr.path);
    else
        ac = redisAsyncConnect(r->addr.host, r->addr.port);
    if (ac == NULL || ac->err) {
        snprintf(why, sizeof(why), "%s", ac != NULL ? ac->errstr : "out of memory");
        if (ac != NULL)
            redisAsyncFree(ac);
        anvil_redis_went_down(r, why);
        return;
    }
    ac->data = r;
    r->ac = ac;
    r->connected = 0;
    r->progress = anvil_redis_now();
    if (redisLibeventAttach(ac, r->base) != REDIS_OK)
        log_panic("redisLibeventAttach failed");
    redisAsyncSetConnectCallback(ac, anvil_redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, anvil_redis_on_disconnect);
}

/* anvil_redis_on_retry - the retry timer */
static void anvil_redis_on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct anvil_redis *r = arg;

    if (r->ac == NULL)
        anvil_redis_connect(r);
}

/* anvil_redis_on_watch - drop a connect or a command that hangs */
static void anvil_redis_on_watch(evutil_socket_t fd, short what, void *arg)
{
    struct anvil_redis *r = arg;

    if (r->ac == NULL || anvil_redis_ms_since(r->progress) < ANVIL_REDIS_STALL_MS)
        return;
    if (!r->connected)
        anvil_redis_drop(r, "no answer to connect and PING within 1s");
    else if (r->pending > 0)
        anvil_redis_drop(r, "no reply within 1s");
}

/* anvil_redis_resolve - a numeric host, so that no later connect blocks */
static int anvil_redis_resolve(struct anvil_redis_addr *addr)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    char numeric[sizeof(addr->host)];
    int ok;

    if (addr->path[0] != '\0')
        return 1;
    if (getaddrinfo(addr->host, NULL, &hints, &res) != 0 || res == NULL)
        return 0;
    ok = getnameinfo(res->ai_addr, res->ai_addrlen, numeric, sizeof(numeric), NULL, 0,
                     NI_NUMERICHOST) == 0;
    if (ok)
        snprintf(addr->host, sizeof(addr->host), "%s", numeric);
    freeaddrinfo(res);
    return ok;
}

struct anvil_redis *anvil_redis_new(struct event_base *base, const struct anvil_redis_addr *addr,
                                    long long time_unit)
{
    struct anvil_redis *r = xcalloc(1, sizeof(*r));
    struct timeval tv = {0, ANVIL_REDIS_WATCH_MS * 1000};

    r->base = base;
    r->addr = *addr;
    r->time_unit = time_unit < 1 ? 1 : time_unit;
    if (addr->path[0] != '\0')
        snprintf(r->name, sizeof(r->name), "unix:%s", addr->path);
    else
        snprintf(r->name, sizeof(r->name), "%s:%d", addr->host, addr->port);
    r->resolved = anvil_redis_resolve(&r->addr);
    r->retry = evtimer_new(base, anvil_redis_on_retry, r);
    r->watch = event_new(base, -1, EV_PERSIST, anvil_redis_on_watch, r);
    if (r->retry == NULL || r->watch == NULL || event_add(r->watch, &tv) < 0)
        log_fatal("cannot set up the redis timers");
    anvil_redis_connect(r);
    return r;
}

void anvil_redis_free(struct anvil_redis *r)
{
    redisAsyncContext *ac;

    if (r == NULL)
        return;
    ac = r->ac;
    r->ac = NULL;
    if (ac != NULL)
        redisAsyncFree(ac);
    event_free(r->retry);
    event_free(r->watch);
    free(r);
}

/* anvil_redis_on_reply - hiredis: the count, an error, or NULL (dropped) */
static void anvil_redis_on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct anvil_redis_request *req = privdata;
    struct anvil_redis *r = req->r;
    const redisReply *rep = reply;
    long long count = -1;

    r->pending--;
    if (rep != NULL) {
        r->progress = anvil_redis_now();
        if (rep->type == REDIS_REPLY_INTEGER)
            count = rep->integer;
        else if (!r->error_logged)
            log_warn("anvil: redis %s: unexpected reply to EVAL (%s): counting locally", r->name,
                     rep->type == REDIS_REPLY_ERROR ? rep->str : "not an integer");
        if (count < 0)
            r->error_logged = 1;
    }
    req->cb(req->arg, count);
    free(req);
}

int anvil_redis_incr(struct anvil_redis *r, enum anvil_rate what, const char *ident, time_t now,
                     void (*cb)(void *arg, long long count), void *arg)
{
    struct anvil_redis_request *req;
    buf_t key = BUF_INIT;
    int rc;

    if (r == NULL || r->ac == NULL || !r->connected)
        return -1;
    req = xcalloc(1, sizeof(*req));
    *req = (struct anvil_redis_request){r, cb, arg};
    buf_printf(&key, "tern:anvil:%s:%s:%lld", anvil_rate_name(what), ident,
               (long long)now / r->time_unit);
    rc = redisAsyncCommand(r->ac, anvil_redis_on_reply, req, "EVAL %s 1 %s %lld",
                           ANVIL_REDIS_SCRIPT, buf_cstr(&key), 2 * r->time_unit);
    buf_free(&key);
    if (rc != REDIS_OK) {
        free(req);
        return -1;
    }
    if (r->pending++ == 0)
        r->progress = anvil_redis_now();
    return 0;
}
