/*
 * tern-showq - the queue listing service behind mailq and `tern queue list`.
 *
 * master execs `tern-showq -c DIR` with public/showq as fd 3 and the queue
 * directory as cwd.  Each client sends one `proto=showq.list` with
 * `format=sendmail|json` (lib/attr.h); showq checks restrict_queue_listing
 * against the peer's SO_PEERCRED uid (root and mail_owner are always
 * allowed), writes the listing as plain bytes (no attr framing) and closes.
 * A refused client gets the one line QUEUE_LIST_DENIED.  The listing itself
 * is lib/queue_list.c, shared with `tern queue list` (docs/queue-tools.md).
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attr.h"
#include "buf.h"
#include "config.h"
#include "log.h"
#include "privacy.h"
#include "privs.h"
#include "queue_list.h"
#include "service.h"

/* a request is one small attr message; a bigger one is garbage */
#define SHOWQ_MAX_REQUEST 4096
/* clients served at once, and how long one may take to ask and to read */
#define SHOWQ_CLIENT_LIMIT 64
#define SHOWQ_CLIENT_TIMEOUT_SECONDS 30

struct showq {
    struct service *svc;
    struct evconnlistener *listener;
    const char *queue_dir; /* printed in the sendmail header line */
    uid_t owner_uid;       /* mail_owner: always allowed */
    int restrict_listing;
    size_t client_count;
};

struct showq_client {
    struct showq *sq;
    struct bufferevent *bev;
    uid_t uid; /* from SO_PEERCRED; (uid_t)-1 when unknown */
    int answered;
};

/* showq_check_drained - when draining and no client is left, exit */
static void showq_check_drained(struct showq *sq)
{
    if (sq->svc->draining && sq->client_count == 0)
        service_stop(sq->svc);
}

/* client_close - drop a client */
static void client_close(struct showq_client *c)
{
    struct showq *sq = c->sq;

    sq->client_count--;
    bufferevent_free(c->bev);
    free(c);
    showq_check_drained(sq);
}

/* client_allowed - restrict_queue_listing (or restrictmailq): only root and mail_owner */
static int client_allowed(const struct showq_client *c)
{
    const struct showq *sq = c->sq;

    return !sq->restrict_listing || c->uid == 0 || c->uid == sq->owner_uid || c->uid == geteuid();
}

/* client_answer - the listing (or the refusal) for one request */
static void client_answer(struct showq_client *c, const struct attr_msg *am)
{
    const char *format = attr_get(am, "format", NULL);
    struct queue_list ql;
    buf_t out = BUF_INIT, err = BUF_INIT;

    queue_list_init(&ql);
    if (!client_allowed(c)) {
        log_info("queue listing refused to uid %ld (restrict_queue_listing = yes)", (long)c->uid);
        buf_puts(&out, QUEUE_LIST_DENIED);
    } else if (queue_list_scan(".", &ql, &err) < 0) {
        log_warn("%s", buf_cstr(&err));
        buf_printf(&out, "%s\n", buf_cstr(&err));
    } else if (format && strcmp(format, "json") == 0) {
        queue_list_format_json(&ql, &out);
    } else {
        queue_list_format_sendmail(&ql, c->sq->queue_dir, &out);
    }
    bufferevent_write(c->bev, out.data ? out.data : "", out.len);
    queue_list_free(&ql);
    buf_free(&out);
    buf_free(&err);
}

/* client_write_cb - the whole answer is out: close */
static void client_write_cb(struct bufferevent *bev, void *arg)
{
    struct showq_client *c = arg;

    if (c->answered)
        client_close(c);
}

/* client_read_cb - one request, then answer and stop reading */
static void client_read_cb(struct bufferevent *bev, void *arg)
{
    struct showq_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in), used;
    struct attr_msg am;
    int rc;

    if (c->answered)
        return;
    attr_msg_init(&am);
    rc = attr_decode((const char *)evbuffer_pullup(in, -1), len, &used, &am);
    if (rc < 0 || (rc == 0 && len >= SHOWQ_MAX_REQUEST) ||
        (rc == 1 && strcmp(attr_proto(&am), "showq.list") != 0)) {
        log_warn("public/showq: malformed request, client dropped");
        attr_msg_free(&am);
        client_close(c);
        return;
    }
    if (rc == 1) {
        c->answered = 1;
        bufferevent_disable(bev, EV_READ);
        client_answer(c, &am);
    }
    attr_msg_free(&am);
}

/* client_event_cb - EOF, error or timeout */
static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    client_close(arg);
}

/* client_peer_uid - the connecting process's uid, or (uid_t)-1 */
static uid_t client_peer_uid(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred))
        return (uid_t)-1;
    return cred.uid;
}

/* showq_accept_cb - a new client of public/showq */
static void showq_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                            int socklen, void *arg)
{
    struct showq *sq = arg;
    struct timeval timeout = {SHOWQ_CLIENT_TIMEOUT_SECONDS, 0};
    struct showq_client *c;

    if (sq->client_count >= SHOWQ_CLIENT_LIMIT) {
        log_warn("public/showq: too many clients, connection refused");
        close(fd);
        return;
    }
    c = xcalloc(1, sizeof(*c));
    c->sq = sq;
    c->uid = client_peer_uid(fd);
    c->bev = bufferevent_socket_new(sq->svc->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        close(fd);
        free(c);
        return;
    }
    sq->client_count++;
    bufferevent_setcb(c->bev, client_read_cb, client_write_cb, client_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, SHOWQ_MAX_REQUEST);
    bufferevent_set_timeouts(c->bev, &timeout, &timeout);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* showq_on_drain - SIGHUP: take no new client, finish the ones we have */
static void showq_on_drain(void *arg)
{
    struct showq *sq = arg;

    evconnlistener_disable(sq->listener);
    showq_check_drained(sq);
}

/* showq_owner_uid - mail_owner's uid (ourselves when not started as root) */
static uid_t showq_owner_uid(const struct config *cfg)
{
    uid_t uid;
    gid_t gid;

    if (geteuid() != 0 || privs_lookup(config_str(cfg, "mail_owner"), &uid, &gid) < 0)
        return geteuid();
    return uid;
}

/* showq_privacy - smtpd_privacy_flags (restrictmailq); fatal on a bad word */
static unsigned showq_privacy(const struct config *cfg)
{
    unsigned flags = 0;
    buf_t err = BUF_INIT;

    if (privacy_flags_get(cfg, &flags, &err) < 0)
        log_fatal("%s", buf_cstr(&err));
    buf_free(&err);
    return flags;
}

int main(int argc, char **argv)
{
    struct service svc;
    struct showq sq;
    int rc;

    memset(&sq, 0, sizeof(sq));
    service_init(&svc, "showq", argc, argv);
    if (svc.listen_count < 1)
        log_fatal("no listening socket: tern-showq expects public/showq as fd 3 from master");
    sq.svc = &svc;
    sq.queue_dir = config_str(svc.cfg, "queue_directory");
    sq.restrict_listing = config_bool(svc.cfg, "restrict_queue_listing") ||
                          (showq_privacy(svc.cfg) & PRIVACY_RESTRICTMAILQ);
    sq.owner_uid = showq_owner_uid(svc.cfg);
    svc.ctx = &sq;
    svc.on_drain = showq_on_drain;
    service_drop_privileges(&svc);
    if (set_nonblock(svc.listen_fds[0]) < 0)
        log_fatal("public/showq: cannot make the socket non-blocking: %m");
    sq.listener =
        evconnlistener_new(svc.base, showq_accept_cb, &sq,
                           LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, svc.listen_fds[0]);
    if (sq.listener == NULL)
        log_fatal("public/showq: cannot set up the listener");
    rc = service_run(&svc);
    evconnlistener_free(sq.listener);
    config_free(svc.cfg);
    return rc;
}
