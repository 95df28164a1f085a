/*
 * delivery_server - the service loop of a delivery agent (see delivery.h):
 * one connection from qmgr per request, exactly one bounded attr message
 * read, parsed and handed to the transport when a slot is free (the rest
 * wait in arrival order), one result written back, then the connection is
 * closed.  SIGHUP: stop accepting, leave the loop once every job is gone.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delivery.h"
#include "log.h"
#include "proctitle.h"
#include "service.h"

struct delivery_job {
    struct delivery_server *srv;
    struct bufferevent *bev; /* NULL once the qmgr side is closed */
    struct delivery_request req;
    int running; /* the transport owns req (until delivery_job_done) */
    int waiting; /* in the queue for a slot */
    struct delivery_job *next;
};

struct delivery_server {
    struct service *svc;
    const char *transport;
    struct delivery_server_cbs cbs;
    struct evconnlistener *listeners[SERVICE_MAX_LISTEN];
    size_t listener_count;
    long long limit;
    size_t active; /* jobs running */
    size_t jobs;   /* job objects alive */
    struct delivery_job *wait_head, *wait_tail;
};

static void delivery_server_start_waiting(struct delivery_server *srv);

/* delivery_server_check_exit - when draining and idle, leave the loop */
static void delivery_server_check_exit(struct delivery_server *srv)
{
    if (srv->svc->draining && srv->jobs == 0)
        service_stop(srv->svc);
}

/* delivery_job_maybe_free - free job once neither qmgr nor the transport needs it */
static void delivery_job_maybe_free(struct delivery_job *job)
{
    struct delivery_server *srv = job->srv;

    if (job->bev != NULL || job->running || job->waiting)
        return;
    delivery_request_free(&job->req);
    free(job);
    srv->jobs--;
    delivery_server_check_exit(srv);
}

/* delivery_job_close - see delivery.h */
void delivery_job_close(struct delivery_job *job)
{
    if (job->bev) {
        bufferevent_free(job->bev);
        job->bev = NULL;
    }
    delivery_job_maybe_free(job);
}

/* delivery_job_done - see delivery.h */
void delivery_job_done(struct delivery_job *job)
{
    struct delivery_server *srv = job->srv;

    if (!job->running)
        return;
    job->running = 0;
    srv->active--;
    delivery_job_maybe_free(job);
    delivery_server_start_waiting(srv);
    if (srv->active == 0)
        proctitle_set("idle"); /* the agent names each delivery as it starts */
}

/* delivery_job_request - see delivery.h */
struct delivery_request *delivery_job_request(struct delivery_job *job)
{
    return &job->req;
}

/* delivery_job_fd - see delivery.h */
int delivery_job_fd(struct delivery_job *job)
{
    return job->bev ? bufferevent_getfd(job->bev) : -1;
}

/* delivery_job_flushed - the answer is out: close */
static void delivery_job_flushed(struct bufferevent *bev, void *arg)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        delivery_job_close(arg);
}

/* delivery_job_event - qmgr went away, or a timeout */
static void delivery_job_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & BEV_EVENT_TIMEOUT)
        log_warn("qmgr connection timed out");
    delivery_job_close(arg);
}

/* delivery_job_reply - see delivery.h */
void delivery_job_reply(struct delivery_job *job)
{
    buf_t out = BUF_INIT;
    struct timeval tv = {DELIVERY_CLIENT_TIMEOUT, 0};

    if (job->bev == NULL)
        return; /* qmgr gave up; it defers on its own */
    delivery_result_encode(&job->req, job->srv->transport, &out);
    bufferevent_setcb(job->bev, NULL, delivery_job_flushed, delivery_job_event, job);
    bufferevent_set_timeouts(job->bev, NULL, &tv);
    bufferevent_enable(job->bev, EV_WRITE);
    bufferevent_write(job->bev, out.data, out.len);
    buf_free(&out);
}

/* delivery_job_start - hand job to the transport now */
static void delivery_job_start(struct delivery_job *job)
{
    job->running = 1;
    job->srv->active++;
    job->srv->cbs.on_request(job, job->srv->cbs.ctx);
}

/* delivery_server_start_waiting - fill free slots from the queue */
static void delivery_server_start_waiting(struct delivery_server *srv)
{
    while (srv->wait_head != NULL && (long long)srv->active < srv->limit) {
        struct delivery_job *job = srv->wait_head;
        srv->wait_head = job->next;
        if (srv->wait_head == NULL)
            srv->wait_tail = NULL;
        job->waiting = 0;
        if (job->bev == NULL) /* qmgr gave up while it waited */
            delivery_job_maybe_free(job);
        else
            delivery_job_start(job);
    }
}

/* delivery_job_enqueue - a valid request: run it or let it wait */
static void delivery_job_enqueue(struct delivery_job *job)
{
    struct delivery_server *srv = job->srv;

    bufferevent_disable(job->bev, EV_READ);
    bufferevent_set_timeouts(job->bev, NULL, NULL);
    job->waiting = 1;
    job->next = NULL;
    if (srv->wait_tail)
        srv->wait_tail->next = job;
    else
        srv->wait_head = job;
    srv->wait_tail = job;
    delivery_server_start_waiting(srv);
}

/* delivery_job_request_in - one whole message from qmgr: validate it */
static void delivery_job_request_in(struct delivery_job *job, const struct attr_msg *m)
{
    struct delivery_server *srv = job->srv;
    buf_t err = BUF_INIT;

    if (delivery_request_parse(m, srv->transport, &job->req, &err) < 0 ||
        (srv->cbs.check != NULL && srv->cbs.check(&job->req, &err) < 0)) {
        log_warn("malformed %s.deliver request from qmgr: %s", srv->transport, buf_cstr(&err));
        buf_free(&err);
        delivery_request_free(&job->req);
        delivery_job_close(job);
        return;
    }
    buf_free(&err);
    delivery_job_enqueue(job);
}

/* delivery_job_read - bytes from qmgr: wait for one complete request */
static void delivery_job_read(struct bufferevent *bev, void *arg)
{
    struct delivery_job *job = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in), used = 0;
    const char *data = (const char *)evbuffer_pullup(in, -1);
    struct attr_msg m;
    int rc;

    attr_msg_init(&m);
    rc = attr_decode(data, len, &used, &m);
    if (rc < 0) {
        log_warn("malformed request from qmgr: dropping the connection");
        delivery_job_close(job);
    } else if (rc > 0) {
        evbuffer_drain(in, used);
        delivery_job_request_in(job, &m);
    }
    attr_msg_free(&m);
}

/* delivery_server_accept - qmgr connected */
static void delivery_server_accept(struct evconnlistener *l, evutil_socket_t fd,
                                   struct sockaddr *sa, int socklen, void *arg)
{
    struct delivery_server *srv = arg;
    struct delivery_job *job = xcalloc(1, sizeof(*job));
    struct timeval tv = {DELIVERY_CLIENT_TIMEOUT, 0};

    job->srv = srv;
    delivery_request_init(&job->req);
    job->bev = bufferevent_socket_new(srv->svc->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (job->bev == NULL)
        log_panic("bufferevent_socket_new failed");
    srv->jobs++;
    bufferevent_setcb(job->bev, delivery_job_read, NULL, delivery_job_event, job);
    bufferevent_set_timeouts(job->bev, &tv, &tv);
    bufferevent_enable(job->bev, EV_READ);
}

/* delivery_server_drain - SIGHUP: stop accepting, finish in-flight work */
static void delivery_server_drain(void *ctx)
{
    struct delivery_server *srv = ctx;

    for (size_t i = 0; i < srv->listener_count; i++)
        evconnlistener_disable(srv->listeners[i]);
    log_info("draining: %zu deliveries in flight", srv->jobs);
    delivery_server_check_exit(srv);
}

/* delivery_server_start - see delivery.h */
struct delivery_server *delivery_server_start(struct service *svc, const char *transport,
                                              long long limit,
                                              const struct delivery_server_cbs *cbs)
{
    struct delivery_server *srv = xcalloc(1, sizeof(*srv));

    if (svc->listen_count == 0)
        log_fatal("no listening socket (TERN_LISTEN_FDS); tern-%s is started by master", transport);
    srv->svc = svc;
    srv->transport = transport;
    srv->cbs = *cbs;
    srv->limit = limit;
    for (size_t i = 0; i < svc->listen_count; i++) {
        struct evconnlistener *l = evconnlistener_new(svc->base, delivery_server_accept, srv,
                                                      LEV_OPT_CLOSE_ON_FREE, 0, svc->listen_fds[i]);
        if (l == NULL)
            log_fatal("cannot listen on fd %d", svc->listen_fds[i]);
        srv->listeners[srv->listener_count++] = l;
    }
    svc->ctx = srv;
    svc->on_drain = delivery_server_drain;
    proctitle_set("idle");
    return srv;
}

/* delivery_server_close_listeners - see delivery.h */
void delivery_server_close_listeners(struct delivery_server *srv)
{
    for (size_t i = 0; i < srv->svc->listen_count; i++)
        close(srv->svc->listen_fds[i]);
}

/* delivery_server_free - see delivery.h */
void delivery_server_free(struct delivery_server *srv)
{
    for (size_t i = 0; i < srv->listener_count; i++)
        evconnlistener_free(srv->listeners[i]);
    free(srv);
}
