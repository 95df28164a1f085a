/*
 * tern-cleanup - turn submissions into durable queue files.
 *
 * Connections from smtpd (private/cleanup) each carry messages in the
 * cleanup protocol (docs/internals.md).  When a message ends, its file is
 * written out and queued for commit; the commit step runs once per event loop
 * pass for every message that ended in it (group commit): fsync each file,
 * rename each into incoming/, fsync incoming/ once, then answer each client
 * and poke qmgr.  Only after that does smtpd say 250.
 *
 * A connection whose first byte is MILTER_FD_MARK carries smtpd's milter
 * sockets (lib/milter.h) for the next cleanup.submit; after cleanup.end that
 * message first runs the content phase through them (milter.c, state
 * CONN_MILTER), then joins the group commit.  Between messages the
 * connection goes back to waiting for its first byte, so the next message
 * can bring sockets again.
 *
 * Remote tables (lib/table_proxy.h): each connection has a proxy scope,
 * reset for each message.  cleanup.submit first runs the envelope rewriting
 * and expansion dry (cleanup_msg_lookups); when that waits for tern-proxymap
 * the request is kept unhandled and the connection reads nothing until the
 * answers are in, then it is handled again -- the queue file is written
 * only by a pass that has every answer.  The header rewriting pauses the
 * same way at the end of the header section (cleanup_msg_data).
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "config.h"
#include "log.h"
#include "maillog.h"
#include "proctitle.h"
#include "milter.h"
#include "netaddr.h"
#include "route.h"
#include "safefile.h"
#include "service.h"
#include "stats.h"
#include "table_proxy.h"

#define CLEANUP_IDLE_TIMEOUT 3600

enum conn_state { CONN_IDLE, CONN_DATA, CONN_MILTER, CONN_COMMIT, CONN_DISCARD };

struct cleanup_conn {
    int fd;
    struct event *first_ev;  /* waiting for the first byte (bev is NULL) */
    struct bufferevent *bev; /* reading attribute messages */
    enum conn_state state;
    struct cleanup_msg msg;
    struct attr_msg req;
    struct cleanup_conn *next_commit;
    /* milter sockets received for the next message, then its conversations */
    int milter_fds[MILTER_MAX];
    size_t milter_fd_count;
    struct milter *milters[MILTER_MAX];
    size_t milter_count;
    struct milter_facts facts;
    struct cleanup_milter_run *run;
    struct table_proxy_scope *scope; /* remote tables' answers for this message */
    int submit_again;                /* the kept cleanup.submit runs again */
    int tables_failed;               /* could not wait: lookups fail (451) */
};

static struct service svc;
static struct cleanup_settings settings;
static struct cleanup_conn *commit_list;
static struct event *commit_ev;
static struct evconnlistener *listeners[SERVICE_MAX_LISTEN];
static size_t conn_count;

/* cleanup_conn_drop_milters - close the milter sockets without a word to
 * the milters (smtpd owns the conversations); abort=1 when the message will
 * not be finished and smtpd has not taken the sockets back (it does once it
 * has the answer, sent cleanup.abort, or closed the connection: then a
 * word from here could land after its next command) */
static void cleanup_conn_drop_milters(struct cleanup_conn *c, int abort)
{
    for (size_t i = 0; i < c->milter_fd_count; i++)
        close(c->milter_fds[i]);
    c->milter_fd_count = 0;
    cleanup_milter_cancel(c->run);
    c->run = NULL;
    for (size_t i = 0; i < c->milter_count; i++) {
        if (abort)
            milter_abort(c->milters[i]);
        milter_close_silent(c->milters[i]);
    }
    c->milter_count = 0;
    milter_facts_free(&c->facts);
}

/* cleanup_title - "tern-cleanup: N connections" (OPS-04) */
static void cleanup_title(void)
{
    proctitle_set("%zu connection%s", conn_count, conn_count == 1 ? "" : "s");
}

static void cleanup_conn_close(struct cleanup_conn *c)
{
    if (c->state == CONN_DATA || c->state == CONN_DISCARD || c->state == CONN_MILTER)
        cleanup_msg_free(&c->msg);
    cleanup_conn_drop_milters(c, 0);
    attr_msg_free(&c->req);
    table_proxy_scope_free(c->scope); /* a wait out is cancelled */
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->first_ev)
        event_free(c->first_ev);
    close(c->fd);
    free(c);
    conn_count--;
    cleanup_title();
    if (svc.draining && conn_count == 0)
        service_stop(&svc);
}

/* cleanup_reply - send the one reply for a message */
static void cleanup_reply(struct cleanup_conn *c)
{
    struct cleanup_msg *m = &c->msg;
    buf_t out = BUF_INIT;
    static const char *names[] = {"ok", "tempfail", "permfail"};

    attr_begin(&out, "cleanup.reply");
    attr_add_str(&out, "status", names[m->status]);
    attr_add_str(&out, "queue_id", m->queue_id);
    if (m->status != CLEANUP_OK) {
        attr_add_str(&out, "code", buf_cstr(&m->code));
        attr_add_str(&out, "dsn", buf_cstr(&m->dsn));
        attr_add_str(&out, "text", buf_cstr(&m->text));
    }
    if (m->milter_reply.len)
        attr_add_str(&out, "reply", buf_cstr(&m->milter_reply));
    if (m->milter_shutdown)
        attr_add_str(&out, "shutdown", "yes");
    for (unsigned k = 0; k < MILTER_MAX; k++)
        if (m->milter_failed & (1u << k))
            attr_add_int(&out, "milter_failed", k);
    attr_end(&out);
    bufferevent_write(c->bev, out.data, out.len);
    buf_free(&out);
}

/* cleanup_trigger_qmgr - fire and forget: new mail in incoming/ */
void cleanup_trigger_qmgr(void)
{
    buf_t out = BUF_INIT;
    int fd = unix_connect("private/qmgr", 1);

    if (fd < 0)
        return; /* qmgr scans incoming/ periodically anyway */
    attr_begin(&out, "qmgr.trigger");
    attr_end(&out);
    if (write(fd, out.data, out.len) < 0)
        log_debug("trigger qmgr: %s", strerror(errno));
    close(fd);
    buf_free(&out);
}

void cleanup_log_received(const struct cleanup_msg *m, struct maillog_received *ev,
                          const char *first)
{
    ev->queue_id = m->queue_id;
    ev->sender = buf_cstr(&m->sender);
    ev->size = (long long)m->content_bytes;
    ev->nrcpts = m->rcpts.count;
    ev->msgid = buf_cstr(&m->message_id);
    ev->hold = m->hold.len > 0;
    if (maillog_get_format() == MAILLOG_POSTFIX) { /* else the from= line carries them */
        log_info("%s: %s", m->queue_id, first);
        log_info("%s: message-id=%s", m->queue_id, buf_cstr(&m->message_id));
    }
    if (m->hold.len > 0)
        log_info("%s: hold: %s", m->queue_id, buf_cstr(&m->hold));
    maillog_log_received(ev);
    stats_count_received(m->client_addr.len ? "smtp" : "local", m->content_bytes);
}

static void cleanup_log_accepted(const struct cleanup_msg *m)
{
    buf_t first = BUF_INIT;
    struct maillog_received ev = {
        .proto = m->protocol.len ? buf_cstr(&m->protocol) : "SMTP",
        .daemon = buf_cstr(&m->listener),
        .client_name = m->client_name.len ? buf_cstr(&m->client_name) : "localhost",
        .client_addr = m->client_addr.len ? buf_cstr(&m->client_addr) : "127.0.0.1",
    };

    buf_printf(&first, "client=%s[%s]", m->client_name.len ? buf_cstr(&m->client_name) : "local",
               m->client_addr.len ? buf_cstr(&m->client_addr) : "127.0.0.1");
    if (m->listener.len)
        buf_printf(&first, ", listener=%s", buf_cstr(&m->listener));
    if (m->sasl_username.len)
        buf_printf(&first, ", sasl_method=%s, sasl_username=%s", buf_cstr(&m->sasl_method),
                   buf_cstr(&m->sasl_username));
    cleanup_log_received(m, &ev, buf_cstr(&first));
    buf_free(&first);
}

/* cleanup_commit_sync - make every written file of the batch durable: one
 * syncfs for several files, else (one file, or syncfs failed) an fsync each,
 * which also finds out which file has the problem */
static void cleanup_commit_sync(struct cleanup_conn *list, size_t written)
{
    struct cleanup_conn *c = list;

    if (written > 1) {
        while (c && c->msg.status != CLEANUP_OK)
            c = c->next_commit;
        if (c && syncfs(c->msg.fd) == 0)
            return;
        log_warn("syncfs of the queue file system: %s; syncing each file", strerror(errno));
    }
    for (c = list; c; c = c->next_commit)
        if (c->msg.status == CLEANUP_OK)
            cleanup_msg_sync(&c->msg);
}

/* cleanup_commit - the group commit described at the top of this file */
static void cleanup_commit(evutil_socket_t fd, short what, void *arg)
{
    struct cleanup_conn *list = commit_list, *c, *next;
    int published = 0, held = 0;
    size_t written = 0;

    commit_list = NULL;
    for (c = list; c; c = c->next_commit)
        written += cleanup_msg_finish(&c->msg) == 0;
    cleanup_commit_sync(list, written);
    for (c = list; c; c = c->next_commit)
        if (c->msg.status == CLEANUP_OK && cleanup_msg_publish(&c->msg) == 0)
            published++;
    for (c = list; c; c = c->next_commit)
        if (c->msg.status == CLEANUP_OK && c->msg.hold.len > 0)
            held++;
    if ((published > held && fsync_dir("incoming") < 0) || (held && fsync_dir("hold") < 0)) {
        log_error("fsync incoming/ or hold/: %s", strerror(errno));
        for (c = list; c; c = c->next_commit)
            if (c->msg.status == CLEANUP_OK) {
                unlink(buf_cstr(&c->msg.final_path));
                cleanup_msg_fail(&c->msg, CLEANUP_TEMPFAIL, "451", "4.3.0",
                                 "Error: queue file write error");
                published--;
            }
    }
    for (c = list; c; c = next) {
        next = c->next_commit;
        if (c->msg.status == CLEANUP_OK)
            cleanup_log_accepted(&c->msg);
        else
            log_info("%s: reject: %s %s %s", c->msg.queue_id[0] ? c->msg.queue_id : "NOQUEUE",
                     buf_cstr(&c->msg.code), buf_cstr(&c->msg.dsn), buf_cstr(&c->msg.text));
        cleanup_reply(c);
        cleanup_msg_free(&c->msg);
        c->state = CONN_IDLE;
    }
    if (published > 0)
        cleanup_trigger_qmgr();
}

static void cleanup_queue_commit(struct cleanup_conn *c)
{
    c->state = CONN_COMMIT;
    c->next_commit = commit_list;
    commit_list = c;
    event_active(commit_ev, EV_TIMEOUT, 0);
}

/* cleanup_import_milters - take over the conversations smtpd exported
 * with this submit request; -1 (drop the client) when they are malformed */
static int cleanup_import_milters(struct cleanup_conn *c, const struct attr_msg *req)
{
    milter_facts_init(&c->facts);
    milter_facts_import(&c->facts, req);
    milter_facts_set(&c->facts, MILTER_FACT_QUEUE_ID, c->msg.queue_id);
    for (size_t k = 0; k < c->milter_fd_count; k++) {
        struct milter *m = milter_import(svc.base, req, k, c->milter_fds[k], c->msg.queue_id,
                                         milter_facts_macro, &c->facts);
        c->milter_fds[k] = -1;
        if (m == NULL) {
            for (size_t j = k + 1; j < c->milter_fd_count; j++)
                close(c->milter_fds[j]);
            c->milter_fd_count = 0;
            log_warn("cleanup protocol error: malformed milter state");
            return -1;
        }
        c->milters[c->milter_count++] = m;
    }
    c->milter_fd_count = 0;
    return 0;
}

/* cleanup_milters_done - the content phase is over: refusals and discards
 * are answered at once, the rest joins the group commit */
static void cleanup_milters_done(void *arg)
{
    struct cleanup_conn *c = arg;

    c->run = NULL;
    cleanup_conn_drop_milters(c, 0);
    if (c->msg.status == CLEANUP_OK && !c->msg.milter_discarded) {
        cleanup_queue_commit(c);
        return;
    }
    cleanup_reply(c);
    cleanup_msg_free(&c->msg);
    c->state = CONN_IDLE;
}

/* cleanup_start_milters - write the file out, then the content phase */
static void cleanup_start_milters(struct cleanup_conn *c)
{
    if (cleanup_msg_finish(&c->msg) < 0) {
        cleanup_conn_drop_milters(c, 1);
        cleanup_queue_commit(c); /* answers the failure */
        return;
    }
    milter_facts_set(&c->facts, MILTER_FACT_MSG_ID, buf_cstr(&c->msg.message_id));
    c->state = CONN_MILTER;
    c->run = cleanup_milter_content(svc.base, &c->msg, c->milters, c->milter_count,
                                    cleanup_milters_done, c);
}

/* cleanup_submit_waits - the dry pass of a cleanup.submit in the
 * connection's scope (a new message: the scope is reset first); 1 when it
 * waits for a remote answer */
static int cleanup_submit_waits(struct cleanup_conn *c, const struct attr_msg *req)
{
    if (!c->submit_again)
        table_proxy_scope_reset(c->scope);
    c->submit_again = 0;
    if (c->tables_failed)
        return 0;
    table_proxy_scope_enter(c->scope);
    cleanup_msg_lookups(&settings, req);
    table_proxy_scope_leave();
    c->submit_again = table_proxy_scope_pending(c->scope);
    return c->submit_again;
}

/* cleanup_submit - begin a message; 1: the request waits for remote tables */
static int cleanup_submit(struct cleanup_conn *c, const struct attr_msg *req)
{
    if (cleanup_submit_waits(c, req))
        return 1;
    c->tables_failed = 0;
    table_proxy_scope_enter(c->scope);
    c->state = cleanup_msg_begin(&c->msg, &settings, req) == 0 ? CONN_DATA : CONN_DISCARD;
    table_proxy_scope_leave();
    if (c->state == CONN_DATA) {
        c->msg.scope = c->scope;
        return cleanup_import_milters(c, req);
    }
    cleanup_conn_drop_milters(c, 0); /* refused at once: smtpd takes them back */
    return 0;
}

/* cleanup_handle - one decoded request; -1 drops the peer, 1 keeps it
 * unhandled until remote tables answer */
static int cleanup_handle(struct cleanup_conn *c, const struct attr_msg *req)
{
    const char *proto = attr_proto(req);
    size_t len;
    const char *data;

    if (c->state == CONN_IDLE && strcmp(proto, "cleanup.submit") == 0) {
        if (milter_import_count(req) != c->milter_fd_count) {
            log_warn("cleanup protocol error: %zu milter sockets for %zu conversations",
                     c->milter_fd_count, milter_import_count(req));
            return -1;
        }
        return cleanup_submit(c, req);
    }
    if ((c->state == CONN_DATA || c->state == CONN_DISCARD) && strcmp(proto, "cleanup.data") == 0) {
        data = attr_get(req, "data", &len);
        if (data == NULL)
            return -1;
        if (c->state == CONN_DATA)
            cleanup_msg_data(&c->msg, data, len);
        return 0;
    }
    if ((c->state == CONN_DATA || c->state == CONN_DISCARD) && strcmp(proto, "cleanup.end") == 0) {
        const char *hold = attr_get(req, "hold", NULL);
        if (c->state == CONN_DATA)
            cleanup_msg_end_of_data(&c->msg);
        if (c->state == CONN_DATA && c->msg.tables_wait)
            return 1; /* handled again once the header section is written */
        if (c->state == CONN_DATA && hold != NULL && c->msg.hold.len == 0)
            cleanup_msg_hold(&c->msg, hold);
        if (c->state == CONN_DATA && c->milter_count > 0)
            cleanup_start_milters(c);
        else
            cleanup_queue_commit(c);
        return 0;
    }
    if ((c->state == CONN_DATA || c->state == CONN_DISCARD) &&
        strcmp(proto, "cleanup.abort") == 0) {
        cleanup_msg_discard(&c->msg);
        cleanup_msg_free(&c->msg);
        cleanup_conn_drop_milters(c, 0);
        c->state = CONN_IDLE;
        return 0;
    }
    log_warn("cleanup protocol error: unexpected request '%.40s'", proto);
    return -1;
}

static void cleanup_wait_first_byte(struct cleanup_conn *c);
static void cleanup_on_read(struct bufferevent *bev, void *arg);

/* cleanup_on_tables - the remote answers are in: a header section that
 * waited is written, then the kept and buffered requests are handled */
static void cleanup_on_tables(void *arg)
{
    struct cleanup_conn *c = arg;

    if (c->state == CONN_DATA && c->msg.tables_wait)
        cleanup_msg_tables_answered(&c->msg);
    bufferevent_enable(c->bev, EV_READ);
    cleanup_on_read(c->bev, c);
}

/* cleanup_tables_wait - the request just handled (kept: r = 1) waits for
 * remote answers: read nothing until they are in; 0 when it cannot wait
 * (the lookups then fail: 451) */
static int cleanup_tables_wait(struct cleanup_conn *c, int r)
{
    if (r == 0 && (c->state != CONN_DATA || !c->msg.tables_wait))
        return 0;
    if (table_proxy_scope_wait(c->scope, svc.base, cleanup_on_tables, c) == 0) {
        bufferevent_disable(c->bev, EV_READ);
        return 1;
    }
    log_warn("cannot wait for tern-proxymap; the lookups fail");
    c->tables_failed = 1;
    if (c->state == CONN_DATA && c->msg.tables_wait) {
        c->msg.tables_wait = 0;
        cleanup_msg_fail(&c->msg, CLEANUP_TEMPFAIL, "451", "4.3.0", "Error: table lookup failure");
    }
    return 0;
}

static void cleanup_on_read(struct bufferevent *bev, void *arg)
{
    struct cleanup_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    while (c->state != CONN_COMMIT && c->state != CONN_MILTER &&
           !table_proxy_scope_waiting(c->scope)) {
        size_t avail = evbuffer_get_length(in), used;
        if (avail == 0 && c->state == CONN_IDLE &&
            evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
            cleanup_wait_first_byte(c); /* after an abort */
            return;
        }
        if (avail < 4)
            return;
        const char *data = (const char *)evbuffer_pullup(
            in, (ev_ssize_t)(avail < ATTR_MAX_MESSAGE + 4 ? avail : ATTR_MAX_MESSAGE + 4));
        int r = attr_decode(data, avail, &used, &c->req);
        if (r == 0)
            return;
        if (r > 0)
            r = cleanup_handle(c, &c->req);
        if (r < 0) {
            log_warn("dropping a cleanup client that sent a malformed request");
            cleanup_conn_close(c);
            return;
        }
        if (r == 0)
            evbuffer_drain(in, used);
        if (cleanup_tables_wait(c, r))
            return;
    }
}

static void cleanup_on_write(struct bufferevent *bev, void *arg)
{
    struct cleanup_conn *c = arg;

    if (c->state != CONN_IDLE)
        return;
    /* reply sent: requests that arrived meanwhile can be handled now; with
     * nothing pending the next message may start with milter sockets */
    if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
        cleanup_on_read(bev, arg);
    else
        cleanup_wait_first_byte(c);
}

static void cleanup_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct cleanup_conn *c = arg;

    if (c->state == CONN_COMMIT) {
        /* the client went away while its message commits: unlink it from
         * the commit list and throw the message away */
        struct cleanup_conn **pp = &commit_list;
        while (*pp && *pp != c)
            pp = &(*pp)->next_commit;
        if (*pp)
            *pp = c->next_commit;
        cleanup_msg_discard(&c->msg);
        c->state = CONN_DISCARD;
    }
    cleanup_conn_close(c);
}

/* cleanup_start_reading - attribute messages from here on; first is the
 * byte already read (-1: none) */
static void cleanup_start_reading(struct cleanup_conn *c, int first)
{
    struct timeval tv = {CLEANUP_IDLE_TIMEOUT, 0};
    char byte = (char)first;

    c->bev = bufferevent_socket_new(svc.base, c->fd, 0);
    if (first >= 0)
        evbuffer_prepend(bufferevent_get_input(c->bev), &byte, 1);
    bufferevent_setcb(c->bev, cleanup_on_read, cleanup_on_write, cleanup_on_event, c);
    bufferevent_set_timeouts(c->bev, &tv, NULL);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (first >= 0)
        cleanup_on_read(c->bev, c);
}

/* cleanup_on_first_byte - MILTER_FD_MARK with milter sockets, or the start
 * of an attribute message */
static void cleanup_on_first_byte(evutil_socket_t fd, short what, void *arg)
{
    struct cleanup_conn *c = arg;
    struct timeval tv = {CLEANUP_IDLE_TIMEOUT, 0};
    size_t n = 0;
    int fds[MILTER_MAX];
    int byte = (what & EV_READ) ? milter_fd_recv(c->fd, fds, &n) : -1;

    if (byte < 0 && (what & EV_READ) && (errno == EAGAIN || errno == EINTR)) {
        event_add(c->first_ev, &tv);
        return;
    }
    if (byte < 0 || (byte == MILTER_FD_MARK && c->milter_fd_count > 0)) {
        for (size_t i = 0; byte >= 0 && i < n; i++)
            close(fds[i]);
        cleanup_conn_close(c); /* gone, idle too long, or a second mark */
        return;
    }
    if (byte == MILTER_FD_MARK) {
        memcpy(c->milter_fds, fds, n * sizeof(*fds));
        c->milter_fd_count = n;
        event_add(c->first_ev, &tv); /* the attribute message follows */
        return;
    }
    for (size_t i = 0; i < n; i++) /* sockets without the mark: not ours */
        close(fds[i]);
    cleanup_start_reading(c, (unsigned char)byte);
}

/* cleanup_wait_first_byte - between messages: no bufferevent reads ahead,
 * so milter sockets sent with the next message are not lost */
static void cleanup_wait_first_byte(struct cleanup_conn *c)
{
    struct timeval tv = {CLEANUP_IDLE_TIMEOUT, 0};

    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->first_ev == NULL)
        c->first_ev = event_new(svc.base, c->fd, EV_READ, cleanup_on_first_byte, c);
    event_add(c->first_ev, &tv);
}

static void cleanup_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                              int socklen, void *arg)
{
    struct cleanup_conn *c = xcalloc(1, sizeof(*c));

    c->fd = fd;
    evutil_make_socket_nonblocking(fd);
    attr_msg_init(&c->req);
    c->state = CONN_IDLE;
    c->scope = table_proxy_scope_new();
    conn_count++;
    cleanup_title();
    cleanup_wait_first_byte(c);
}

static void cleanup_drain(void *ctx)
{
    pickup_stop();
    for (size_t i = 0; i < svc.listen_count; i++) {
        evconnlistener_free(listeners[i]);
        listeners[i] = NULL;
    }
    if (conn_count == 0)
        service_stop(&svc);
}

/* cleanup_header_networks - local_header_rewrite_clients: permit (every
 * client), permit_mynetworks, or networks; a bad item is fatal */
static void cleanup_header_networks(const struct config *cfg)
{
    size_t n, k, nets = 0;
    char *const *items = config_list(cfg, "local_header_rewrite_clients", &n);
    char *const *mynetworks = config_list(cfg, "mynetworks", &k);

    settings.header_nets = xcalloc(n + k + 1, sizeof(*settings.header_nets));
    for (size_t i = 0; i < n; i++) {
        if (strcmp(items[i], "permit") == 0) {
            settings.header_rewrite_all = 1;
        } else if (strcmp(items[i], "permit_mynetworks") == 0) {
            for (size_t j = 0; j < k; j++)
                if (netaddr_parse_net(mynetworks[j], &settings.header_nets[nets]) == 0)
                    nets++;
        } else if (netaddr_parse_net(items[i], &settings.header_nets[nets]) == 0) {
            nets++;
        } else {
            log_fatal("%s: local_header_rewrite_clients: bad item '%s' (permit, "
                      "permit_mynetworks, or a network)",
                      config_origin(cfg, "local_header_rewrite_clients"), items[i]);
        }
    }
    settings.header_net_count = nets;
}

static void cleanup_read_settings(const struct config *cfg)
{
    buf_t err = BUF_INIT;

    if ((settings.route = route_open(cfg, &err)) == NULL)
        log_fatal("%s", buf_cstr(&err));
    buf_free(&err);
    route_preload(settings.route, NULL);
    cleanup_header_networks(cfg);
    settings.myhostname = config_str(cfg, "myhostname");
    settings.myorigin = config_str(cfg, "myorigin");
    settings.hopcount_limit = config_int(cfg, "hopcount_limit");
    settings.header_size_limit = config_size(cfg, "header_size_limit");
    settings.message_size_limit = config_size(cfg, "message_size_limit");
    if (settings.message_size_limit > 0) /* room for the headers we add */
        settings.message_size_limit += 64 * 1024;
}

int main(int argc, char **argv)
{
    service_init(&svc, "cleanup", argc, argv);
    cleanup_read_settings(svc.cfg);
    if (svc.listen_count == 0)
        log_fatal("no listening socket: tern-cleanup is started by tern-master");
    service_drop_privileges(&svc);
    commit_ev = event_new(svc.base, -1, 0, cleanup_commit, NULL);
    if (svc.listen_count > 1) /* fd 4: public/pickup */
        pickup_start(&svc, svc.listen_fds[--svc.listen_count], &settings);
    for (size_t i = 0; i < svc.listen_count; i++) {
        listeners[i] = evconnlistener_new(svc.base, cleanup_on_accept, NULL, LEV_OPT_CLOSE_ON_FREE,
                                          -1, svc.listen_fds[i]);
        if (listeners[i] == NULL)
            log_fatal("cannot listen on fd %d", svc.listen_fds[i]);
    }
    svc.on_drain = cleanup_drain;
    int rc = service_run(&svc);
    route_close(settings.route);
    free(settings.header_nets);
    return rc;
}
