/*
 * ident - RFC 1413 lookups of the client (sendmail's TO_IDENT; SPEC
 * SMTP-25): off by default.  With smtpd_ident_lookup = yes the greeting
 * waits (session_greet_hold) for the client's identd: a connection from
 * our address of the session to the client's port 113, one query
 * "CLIENTPORT, OURPORT", one reply line "... : USERID : OS : user".  The
 * answer shows in the HELO reply and the Received: header
 * (IDENT:user@name); no answer within smtpd_ident_timeout, a refusal or an
 * error reply just means no ident.  Non-blocking, on the session's loop.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "ident.h"
#include "proto.h"
#include "log.h"
#include "session.h"

#define SMTPD_IDENT_PORT 113
#define SMTPD_IDENT_LINE_MAX 1000 /* RFC 1413 */

/* smtpd_ident_port - the port of an address */
static int smtpd_ident_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* smtpd_ident_done - the lookup is over (user may be NULL) */
static void smtpd_ident_done(struct session *s, const char *user)
{
    if (s->ident_bev != NULL) {
        bufferevent_free(s->ident_bev);
        s->ident_bev = NULL;
    }
    if (user != NULL && *user) {
        free(s->ident_user);
        s->ident_user = xstrdup(user);
        log_info("ident: %s is %s", s->client, user);
    }
    session_greet_release(s);
}

/* smtpd_ident_on_read - the reply line */
static void smtpd_ident_on_read(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char *line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF);
    buf_t user = BUF_INIT;

    if (line == NULL) {
        if (evbuffer_get_length(in) > SMTPD_IDENT_LINE_MAX)
            smtpd_ident_done(s, NULL);
        return;
    }
    smtpd_ident_done(s, proto_ident_parse(line, &user) == 0 ? buf_cstr(&user) : NULL);
    free(line);
    buf_free(&user);
}

/* smtpd_ident_on_event - connected (send the query), or failed */
static void smtpd_ident_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct session *s = arg;
    struct sockaddr_storage local;
    socklen_t len = sizeof(local);

    if (what & BEV_EVENT_CONNECTED) {
        if (getsockname(bufferevent_getfd(s->bev), (struct sockaddr *)&local, &len) < 0) {
            smtpd_ident_done(s, NULL);
            return;
        }
        evbuffer_add_printf(bufferevent_get_output(bev), "%d, %d\r\n", smtpd_ident_port(&s->sa),
                            smtpd_ident_port(&local));
        return;
    }
    smtpd_ident_done(s, NULL); /* refused, timeout, EOF */
}

void smtpd_ident_start(struct session *s, long long timeout)
{
    struct sockaddr_storage local, peer = s->sa;
    socklen_t len = sizeof(local);
    struct timeval tv = {(time_t)timeout, 0};
    int fd;

    if (getsockname(bufferevent_getfd(s->bev), (struct sockaddr *)&local, &len) < 0)
        return;
    fd = socket(peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    /* from the address the client connected to, any port */
    if (local.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&local)->sin6_port = 0;
    else
        ((struct sockaddr_in *)&local)->sin_port = 0;
    if (peer.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&peer)->sin6_port = htons(SMTPD_IDENT_PORT);
    else
        ((struct sockaddr_in *)&peer)->sin_port = htons(SMTPD_IDENT_PORT);
    if (bind(fd, (struct sockaddr *)&local, len) < 0) {
        close(fd);
        return;
    }
    s->ident_bev = bufferevent_socket_new(s->server->svc.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (s->ident_bev == NULL) {
        close(fd);
        return;
    }
    bufferevent_setcb(s->ident_bev, smtpd_ident_on_read, NULL, smtpd_ident_on_event, s);
    bufferevent_set_timeouts(s->ident_bev, &tv, &tv);
    session_greet_hold(s);
    if (bufferevent_socket_connect(s->ident_bev, (struct sockaddr *)&peer,
                                   peer.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                              : sizeof(struct sockaddr_in)) < 0) {
        smtpd_ident_done(s, NULL);
        return;
    }
    bufferevent_enable(s->ident_bev, EV_READ | EV_WRITE);
}

void smtpd_ident_end(struct session *s)
{
    if (s->ident_bev != NULL) {
        bufferevent_free(s->ident_bev);
        s->ident_bev = NULL;
    }
    free(s->ident_user);
    s->ident_user = NULL;
}
