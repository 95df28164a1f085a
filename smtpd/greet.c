/*
 * greet - the greet pause and the early talker (sendmail's greet_pause;
 * docs/smtpd.md "Greet pause").
 *
 * A pause is one greet hold (session_greet_hold) plus a libevent timer.
 * While it runs the session keeps reading: session.c hands any input that
 * arrives before the greeting to smtpd_greet_early_input, which leaves the
 * bytes buffered.  A client that talks during the pause is an early talker:
 * like sendmail, tern answers at once (it does not wait for the rest of the
 * pause) with "554 HOST ESMTP not accepting messages" and logs
 * "rejecting commands from unknown[IP] [IP] due to pre-greeting traffic
 * after N seconds".  From then on each of its lines is answered and nothing
 * is done: HELO/EHLO get sendmail 8.17's "554 5.5.0 SMTP protocol error",
 * MAIL, RCPT, DATA and BDAT "550 5.0.0 Command rejected" (BDAT's chunk
 * is read and dropped first), QUIT "221 2.0.0 HOST
 * closing connection", any other line "500 5.5.1 Command unrecognized" (so
 * the message lines after the refused DATA are 500 each, as in the seed).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "greet.h"
#include "log.h"
#include "session.h"
#include "smtpd_policy.h"
#include "smtpd_tables.h"

/* the longest pause accepted (sendmail recommends 1-5 s) */
#define GREET_PAUSE_MAX_MS (3600LL * 1000)
/* input kept from an early talker before the greeting is sent */
#define GREET_EARLY_INPUT_MAX (64 * 1024)

int smtpd_greet_pause_parse(const char *text, long long *ms)
{
    char *end;
    long long v;

    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || v > GREET_PAUSE_MAX_MS)
        return -1;
    if (strcmp(end, "ms") != 0) {
        if (strcmp(end, "s") != 0 && *end != '\0')
            return -1;
        v *= 1000;
    }
    if (v > GREET_PAUSE_MAX_MS)
        return -1;
    *ms = v;
    return 0;
}

/* smtpd_greet_pause_ms - the one place that decides the pause: the access
 * map's GreetPause: entries win over smtpd_greet_pause and the mynetworks
 * exemption (GreetPause:10.1 0) */
long long smtpd_greet_pause_ms(struct session *s)
{
    struct policy_facts f;

    smtpd_policy_facts(s, &f);
    return policy_greet_pause(s->cfg->policy, &f, s->cfg->greet_pause_ms);
}

/* greet_stop_timer - the pause is over, one way or the other */
static void greet_stop_timer(struct session *s)
{
    if (s->greet_timer == NULL)
        return;
    event_free(s->greet_timer);
    s->greet_timer = NULL;
}

/* greet_on_timer - a polite client: the 220 (unless something else holds it) */
static void greet_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;

    greet_stop_timer(s);
    session_greet_release(s);
}

void smtpd_greet_start(struct session *s)
{
    long long ms;
    struct timeval tv;

    smtpd_tables_enter(s);
    ms = smtpd_greet_pause_ms(s);
    if (smtpd_tables_leave(s, SMTPD_TABLES_GREET))
        return; /* the greeting is held until the access map answers */
    if (ms <= 0 || s->state == SESSION_CLOSING)
        return;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    s->greet_timer = evtimer_new(s->server->svc.base, greet_on_timer, s);
    if (s->greet_timer == NULL) {
        log_warn("greet pause for %s: cannot create a timer; greeting at once", s->client);
        return;
    }
    s->greet_started = time(NULL);
    session_greet_hold(s);
    evtimer_add(s->greet_timer, &tv);
    /* bytes that came while the client's name was looked up are early too */
    if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0)
        smtpd_greet_early_input(s);
}

/* smtpd_greet_early_input - bytes before the greeting: during the pause
 * the client is an early talker; otherwise (another hold) they wait */
void smtpd_greet_early_input(struct session *s)
{
    if (s->greet_timer == NULL) {
        if (evbuffer_get_length(bufferevent_get_input(s->bev)) > GREET_EARLY_INPUT_MAX)
            session_pause_input(s); /* session_greet reads again */
        return;
    }
    greet_stop_timer(s);
    s->greet_rejecting = 1;
    log_info("rejecting commands from %s [%s] due to pre-greeting traffic after %lld seconds",
             s->client, s->ip, (long long)(time(NULL) - s->greet_started));
    session_greet_release(s); /* the 554, then the buffered lines */
}

void smtpd_greet_refusal(struct session *s, buf_t *text)
{
    buf_reset(text);
    buf_printf(text, "554 %s ESMTP not accepting messages", s->cfg->myhostname);
}

void smtpd_greet_session_end(struct session *s)
{
    greet_stop_timer(s);
}

enum proto_cmd smtpd_greet_rejecting(struct session *s, enum proto_cmd cmd, const char *arg)
{
    switch (cmd) {
    case PROTO_CMD_BDAT: /* its chunk is dropped, not read as lines */
        smtpd_bdat_refuse(s, arg, "550 5.0.0 Command rejected");
        return SMTPD_GREET_ANSWERED;
    case PROTO_CMD_HELO:
    case PROTO_CMD_EHLO:
        session_reply(s, "554 5.5.0 SMTP protocol error");
        return SMTPD_GREET_ANSWERED;
    case PROTO_CMD_MAIL:
    case PROTO_CMD_RCPT:
    case PROTO_CMD_DATA:
        session_reply(s, "550 5.0.0 Command rejected");
        return SMTPD_GREET_ANSWERED;
    case PROTO_CMD_QUIT:
        return PROTO_CMD_QUIT;
    default:
        return PROTO_CMD_UNKNOWN;
    }
}
