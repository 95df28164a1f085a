/*
 * auth - SMTP AUTH (RFC 4954) in tern-smtpd (see auth.h, docs/auth.md).
 *
 * What EHLO offers is computed once per listener at start, as root, with
 * the same Cyrus set-up as tern-auth (lib/auth_sasl.h): one list without
 * TLS, one with.  The exchange itself runs in tern-auth: the AUTH command
 * opens a connection to it (auth_stream.c) and every client response is
 * relayed there, decoded; while tern-auth thinks, the session reads
 * nothing (SESSION_AUTH_WAIT), as message.c waits for cleanup.  A failure
 * is answered after SMTPD_AUTH_FAILURE_DELAY on a timer (never a sleep)
 * and counts as an error like every 4xx/5xx reply.  Nothing here logs a
 * response, a challenge or a password.
 *
 * An exchange holds a tern-auth process, so a client may not park it: one
 * address has at most smtpd_sasl_exchange_limit exchanges connected to
 * tern-auth at once in this worker (one more gets 454), and a client that
 * does not answer a 334 within smtpd_sasl_response_timeout loses its
 * tern-auth connection (the process ends) and gets 454 when it answers.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "attr.h"
#include "auth.h"
#include "auth_sasl.h"
#include "auth_stream.h"
#include "config.h"
#include "log.h"
#include "route.h"
#include "session.h"
#include "smtpd_tables.h"
#include "smtpd_tls.h"
#include "stats.h"

/* how long a failed AUTH waits for its reply (seconds) */
#define SMTPD_AUTH_FAILURE_DELAY 1
/* longest user name or reason taken from tern-auth */
#define SMTPD_AUTH_TEXT_MAX 200
/* longest challenge taken from tern-auth */
#define SMTPD_AUTH_CHALLENGE_MAX (16 * 1024)
/* the wait for tern-auth beyond its own auth_time_limit */
#define SMTPD_AUTH_WAIT_SLACK 5
#define SMTPD_AUTH_TEMPFAIL "454 4.7.0 Temporary authentication failure"

/* one listener's AUTH offer */
struct smtpd_auth {
    char *mechs_plain; /* "CRAM-MD5 DIGEST-MD5", "" when none */
    char *mechs_tls;
    long long wait;             /* seconds to wait for one answer of tern-auth */
    long long response_timeout; /* seconds a client has to answer a 334 */
    long long exchange_limit;   /* exchanges per client address at once; 0: no limit */
};

/* the exchange in progress (s->auth_state) */
struct smtpd_auth_exchange {
    struct session *s;
    struct smtpd_auth_stream *stream;
    char mech[PROTO_AUTH_MECH_MAX + 1];
    struct event *delay;  /* a failure's reply waits on it */
    struct event *expire; /* the client's time to answer a 334 */
    int counted;          /* holds one of its address' exchange slots */
    buf_t reply;
};

/* exchanges connected to tern-auth per client address, in this worker */
struct smtpd_auth_slots {
    char ip[64];
    long long count;
};
static struct smtpd_auth_slots *smtpd_auth_slots;
static size_t smtpd_auth_slot_count;

/* ---- set-up */

/* smtpd_auth_lists - the mechanisms of one listener, without and with TLS */
static int smtpd_auth_lists(struct smtpd_auth *a, const struct config *conf, buf_t *err)
{
    struct auth_sasl_settings st;
    buf_t plain = BUF_INIT, tls = BUF_INIT;
    int rc = -1;

    if (auth_sasl_settings_load(&st, conf, err) < 0)
        log_fatal("%s", buf_cstr(err));
    if (auth_sasl_mechanisms(&st, 0, &plain, err) == 0 &&
        auth_sasl_mechanisms(&st, AUTH_SASL_TLS_SSF, &tls, err) == 0) {
        a->mechs_plain = buf_steal(&plain);
        a->mechs_tls = buf_steal(&tls);
        rc = 0;
    }
    auth_sasl_settings_free(&st);
    buf_free(&plain);
    buf_free(&tls);
    return rc;
}

void smtpd_auth_init(struct smtpd_config *cfg, const struct config *conf)
{
    struct smtpd_auth *a;
    buf_t err = BUF_INIT;

    cfg->auth = NULL;
    if (!config_bool(conf, "smtpd_sasl_auth_enable"))
        return;
    a = xcalloc(1, sizeof(*a));
    a->wait = config_time(conf, "auth_time_limit") + SMTPD_AUTH_WAIT_SLACK;
    a->response_timeout = config_time(conf, "smtpd_sasl_response_timeout");
    if (a->response_timeout > config_time(conf, "smtpd_timeout"))
        a->response_timeout = config_time(conf, "smtpd_timeout");
    a->exchange_limit = config_int(conf, "smtpd_sasl_exchange_limit");
    if (auth_sasl_init(conf, &err) < 0 || smtpd_auth_lists(a, conf, &err) < 0) {
        log_error("listener %s: AUTH is not offered: %s", cfg->listener, buf_cstr(&err));
        free(a);
        a = NULL;
    } else if (a->mechs_plain[0] == '\0' && a->mechs_tls[0] == '\0') {
        log_warn("listener %s: smtpd_sasl_auth_enable = yes, but SASL offers no mechanism "
                 "(mech_list in %s.conf? a sasldb without users?)",
                 cfg->listener, config_str(conf, "smtpd_sasl_path"));
    }
    cfg->auth = a;
    buf_free(&err);
}

void smtpd_auth_setup_end(void)
{
    auth_sasl_done();
}

void smtpd_auth_free(struct smtpd_config *cfg)
{
    if (cfg->auth != NULL) {
        free(cfg->auth->mechs_plain);
        free(cfg->auth->mechs_tls);
        free(cfg->auth);
    }
    cfg->auth = NULL;
}

/* ---- the offer */

/* smtpd_auth_mechs - what this session may use now */
static const char *smtpd_auth_mechs(const struct session *s)
{
    return s->tls_active ? s->cfg->auth->mechs_tls : s->cfg->auth->mechs_plain;
}

/* smtpd_auth_listed - mech is a word of list */
static int smtpd_auth_listed(const char *list, const char *mech)
{
    size_t len = strlen(mech);

    for (const char *p = list; *p != '\0';) {
        size_t n = strcspn(p, " ");
        if (n == len && strncmp(p, mech, len) == 0)
            return 1;
        p += n + (p[n] == ' ');
    }
    return 0;
}

int smtpd_auth_ehlo(const struct session *s, buf_t *out)
{
    if (s->cfg->auth == NULL || smtpd_tls_required(s) || smtpd_auth_mechs(s)[0] == '\0')
        return 0;
    buf_printf(out, "AUTH %s", smtpd_auth_mechs(s));
    return 1;
}

/* ---- exchanges per client address */

/* smtpd_auth_slot - the entry of ip, made when make is set; NULL when none */
static struct smtpd_auth_slots *smtpd_auth_slot(const char *ip, int make)
{
    for (size_t i = 0; i < smtpd_auth_slot_count; i++)
        if (strcmp(smtpd_auth_slots[i].ip, ip) == 0)
            return &smtpd_auth_slots[i];
    if (!make)
        return NULL;
    smtpd_auth_slots =
        xrealloc(smtpd_auth_slots, (smtpd_auth_slot_count + 1) * sizeof(*smtpd_auth_slots));
    snprintf(smtpd_auth_slots[smtpd_auth_slot_count].ip, sizeof(smtpd_auth_slots->ip), "%s", ip);
    smtpd_auth_slots[smtpd_auth_slot_count].count = 0;
    return &smtpd_auth_slots[smtpd_auth_slot_count++];
}

/* smtpd_auth_slot_take - count the exchange against its address; -1 when
 * the address is at smtpd_sasl_exchange_limit */
static int smtpd_auth_slot_take(struct smtpd_auth_exchange *x)
{
    long long limit = x->s->cfg->auth->exchange_limit;
    struct smtpd_auth_slots *slot = smtpd_auth_slot(x->s->ip, 1);

    if (limit > 0 && slot->count >= limit) {
        if (slot->count == 0)
            smtpd_auth_slot_count--; /* made just now: the last entry */
        return -1;
    }
    slot->count++;
    x->counted = 1;
    return 0;
}

/* smtpd_auth_slot_give - the exchange no longer holds tern-auth */
static void smtpd_auth_slot_give(struct smtpd_auth_exchange *x)
{
    struct smtpd_auth_slots *slot = x->counted ? smtpd_auth_slot(x->s->ip, 0) : NULL;

    x->counted = 0;
    if (slot == NULL || --slot->count > 0)
        return;
    *slot = smtpd_auth_slots[--smtpd_auth_slot_count];
    if (smtpd_auth_slot_count == 0) {
        free(smtpd_auth_slots);
        smtpd_auth_slots = NULL;
    }
}

/* ---- the exchange */

/* smtpd_auth_detach - close the connection to tern-auth (its process
 * ends), give back the address' slot, stop waiting for the client */
static void smtpd_auth_detach(struct smtpd_auth_exchange *x)
{
    smtpd_auth_stream_close(x->stream);
    x->stream = NULL;
    smtpd_auth_slot_give(x);
    if (x->expire != NULL)
        event_free(x->expire);
    x->expire = NULL;
}

/* smtpd_auth_exchange_free - drop the connection to tern-auth and the timers */
static void smtpd_auth_exchange_free(struct session *s)
{
    struct smtpd_auth_exchange *x = s->auth_state;

    if (x == NULL)
        return;
    smtpd_auth_detach(x);
    if (x->delay != NULL)
        event_free(x->delay);
    buf_free(&x->reply);
    free(x);
    s->auth_state = NULL;
}

/* smtpd_auth_finish - the exchange is over: reply and read commands again */
static void smtpd_auth_finish(struct session *s, const char *reply)
{
    buf_t text = BUF_INIT;

    buf_set(&text, reply);
    smtpd_auth_exchange_free(s);
    s->state = SESSION_CMD;
    session_reply(s, "%s", buf_cstr(&text));
    buf_free(&text);
    session_resume_input(s);
}

/* smtpd_auth_on_delay - a failure's delay is over */
static void smtpd_auth_on_delay(evutil_socket_t fd, short what, void *arg)
{
    struct smtpd_auth_exchange *x = arg;

    smtpd_auth_finish(x->s, buf_cstr(&x->reply));
}

/* smtpd_auth_failed - log now, answer after the delay (temp: 454, else 535) */
static void smtpd_auth_failed(struct smtpd_auth_exchange *x, int temp, const char *reason)
{
    struct timeval tv = {SMTPD_AUTH_FAILURE_DELAY, 0};

    log_warn("%s: SASL %s authentication failed: %s", x->s->client, x->mech, reason);
    stats_count_result(STATS_AUTH, "smtpd", 0);
    smtpd_auth_detach(x);
    buf_reset(&x->reply);
    if (temp)
        buf_set(&x->reply, SMTPD_AUTH_TEMPFAIL);
    else
        buf_printf(&x->reply, "535 5.7.8 Error: authentication failed: %s", reason);
    x->s->state = SESSION_AUTH_WAIT;
    session_pause_input(x->s);
    x->delay = evtimer_new(bufferevent_get_base(x->s->bev), smtpd_auth_on_delay, x);
    evtimer_add(x->delay, &tv);
}

/* smtpd_auth_success - 235: the session is authenticated */
static void smtpd_auth_success(struct smtpd_auth_exchange *x, const char *name, size_t len)
{
    struct session *s = x->s;
    buf_t user = BUF_INIT;

    proto_printable(name, len, SMTPD_AUTH_TEXT_MAX, &user);
    s->sasl_username = buf_steal(&user);
    s->sasl_method = xstrdup(x->mech);
    /* sendmail's line (AUTH-13); the message's client= line has Postfix's */
    log_info("AUTH=server, relay=%s, authid=%s, mech=%s, tls=%s", s->client, s->sasl_username,
             s->sasl_method, s->tls_active ? "yes" : "no");
    stats_count_result(STATS_AUTH, "smtpd", 1);
    smtpd_auth_finish(s, "235 2.7.0 Authentication successful");
}

/* smtpd_auth_on_expire - no response to the 334 in time: free tern-auth
 * now; the response, when it comes, gets 454 (smtpd_auth_input) */
static void smtpd_auth_on_expire(evutil_socket_t fd, short what, void *arg)
{
    struct smtpd_auth_exchange *x = arg;

    log_warn("%s: SASL %s authentication failed: no response to the challenge "
             "within smtpd_sasl_response_timeout (%llds)",
             x->s->client, x->mech, x->s->cfg->auth->response_timeout);
    smtpd_auth_detach(x);
}

/* smtpd_auth_challenge - 334: wait for the client's response */
static void smtpd_auth_challenge(struct smtpd_auth_exchange *x, const char *data, size_t len)
{
    struct session *s = x->s;
    struct timeval tv = {(time_t)s->cfg->auth->response_timeout, 0};
    buf_t line = BUF_INIT;

    if (len > SMTPD_AUTH_CHALLENGE_MAX) {
        smtpd_auth_failed(x, 1, "tern-auth sent an oversized challenge");
        return;
    }
    proto_base64_encode(data, len, &line);
    s->state = SESSION_AUTH;
    session_reply(s, "334 %s", buf_cstr(&line));
    buf_free(&line);
    if (x->expire == NULL)
        x->expire = evtimer_new(bufferevent_get_base(s->bev), smtpd_auth_on_expire, x);
    evtimer_add(x->expire, &tv);
    session_resume_input(s);
}

/* smtpd_auth_refuse_mech - 504, or 538 when the mechanism waits for TLS
 * and nothing at all is offered without it */
static void smtpd_auth_refuse_mech(struct session *s, const char *mech, int encrypt)
{
    buf_t name = BUF_INIT; /* mech may live in the exchange freed here */

    buf_set(&name, mech);
    smtpd_auth_exchange_free(s);
    s->state = SESSION_CMD;
    if (encrypt)
        session_reply(s, "538 5.7.11 Encryption required for requested authentication mechanism");
    else
        session_reply(s, "504 5.3.3 AUTH mechanism %s not available", buf_cstr(&name));
    buf_free(&name);
    session_resume_input(s);
}

/* smtpd_auth_failed_with - a refusal or a temporary failure with
 * tern-auth's reason */
static void smtpd_auth_failed_with(struct smtpd_auth_exchange *x, const struct attr_msg *m,
                                   int temp)
{
    size_t len = 0;
    const char *value = attr_get(m, "reason", &len);
    buf_t reason = BUF_INIT;

    if (value == NULL || len == 0)
        buf_set(&reason, "bad reply from tern-auth");
    else
        proto_printable(value, len, SMTPD_AUTH_TEXT_MAX, &reason);
    smtpd_auth_failed(x, temp, buf_cstr(&reason));
    buf_free(&reason);
}

/* smtpd_auth_on_reply - tern-auth answered (NULL: it could not) */
static void smtpd_auth_on_reply(void *ctx, const struct attr_msg *m)
{
    struct smtpd_auth_exchange *x = ctx;
    const char *proto = m != NULL ? attr_proto(m) : NULL;
    const char *status = m != NULL ? attr_get(m, "status", NULL) : NULL;
    const char *value = NULL;
    size_t len = 0;

    if (proto == NULL || strcmp(proto, "auth.reply") != 0 || status == NULL)
        smtpd_auth_failed(x, 1,
                          m == NULL ? "no answer from tern-auth" : "bad reply from tern-auth");
    else if (strcmp(status, "ok") == 0 && (value = attr_get(m, "username", &len)) != NULL &&
             len > 0)
        smtpd_auth_success(x, value, len);
    else if (strcmp(status, "continue") == 0 && (value = attr_get(m, "challenge", &len)) != NULL)
        smtpd_auth_challenge(x, value, len);
    else if (strcmp(status, "nomech") == 0 || strcmp(status, "encrypt") == 0)
        smtpd_auth_refuse_mech(x->s, x->mech, status[0] == 'e');
    else
        smtpd_auth_failed_with(x, m, strcmp(status, "fail") != 0);
}

/* smtpd_auth_client_port - the client's TCP port, as text */
static void smtpd_auth_client_port(const struct session *s, buf_t *out)
{
    const struct sockaddr *sa = (const struct sockaddr *)&s->sa;
    unsigned port = 0;

    if (sa->sa_family == AF_INET)
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    else if (sa->sa_family == AF_INET6)
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    buf_printf(out, "%u", port);
}

/* smtpd_auth_tls_ssf - the cipher's bits under TLS, 0 without */
static unsigned smtpd_auth_tls_ssf(struct session *s)
{
    SSL *ssl = s->tls_active ? bufferevent_openssl_get_ssl(s->bev) : NULL;
    int bits = ssl != NULL ? SSL_get_cipher_bits(ssl, NULL) : 0;

    return bits > 0 ? (unsigned)bits : 0;
}

/* smtpd_auth_wipe - overwrite and free a buffer that held a client response */
static void smtpd_auth_wipe(buf_t *b)
{
    buf_wipe(b); /* the whole allocation, not just len */
    buf_free(b);
}

/* smtpd_auth_send - one request to tern-auth; the response is wiped after */
static void smtpd_auth_send(struct smtpd_auth_exchange *x, buf_t *msg)
{
    x->s->state = SESSION_AUTH_WAIT;
    session_pause_input(x->s);
    if (x->expire != NULL)
        evtimer_del(x->expire);
    smtpd_auth_stream_send(x->stream, msg);
    smtpd_auth_wipe(msg);
}

/* smtpd_auth_start - open the exchange with auth.start */
static void smtpd_auth_start(struct session *s, const char *mech, const buf_t *response)
{
    struct smtpd_auth_exchange *x = xcalloc(1, sizeof(*x));
    buf_t msg = BUF_INIT, port = BUF_INIT;

    x->s = s;
    snprintf(x->mech, sizeof(x->mech), "%s", mech);
    s->auth_state = x;
    if (smtpd_auth_slot_take(x) < 0) {
        smtpd_auth_failed(x, 1,
                          "too many AUTH exchanges in progress from this address "
                          "(smtpd_sasl_exchange_limit)");
        return;
    }
    x->stream = smtpd_auth_stream_open(bufferevent_get_base(s->bev), s->cfg->auth->wait,
                                       smtpd_auth_on_reply, x);
    if (x->stream == NULL) {
        smtpd_auth_failed(x, 1, "tern-auth is not reachable");
        return;
    }
    smtpd_auth_client_port(s, &port);
    /* room for it all first: growing would leave a copy of the response */
    buf_reserve(&msg, (response != NULL ? response->len : 0) + 512);
    attr_begin(&msg, "auth.start");
    attr_add_str(&msg, "listener", s->cfg->listener);
    attr_add_str(&msg, "mechanism", mech);
    if (response != NULL)
        attr_add(&msg, "response", response->data ? response->data : "", response->len);
    attr_add_int(&msg, "tls_ssf", smtpd_auth_tls_ssf(s));
    attr_add_str(&msg, "client_addr", s->ip);
    attr_add_str(&msg, "client_port", buf_cstr(&port));
    attr_end(&msg);
    buf_free(&port);
    smtpd_auth_send(x, &msg);
}

/* smtpd_auth_refusal - why AUTH cannot start now, as the reply; NULL: it can */
static const char *smtpd_auth_refusal(const struct session *s)
{
    if (s->cfg->auth == NULL)
        return "503 5.5.1 Error: authentication not enabled";
    if (!s->esmtp)
        return "503 5.5.1 Error: send EHLO first";
    if (s->sasl_username != NULL)
        return "503 5.5.0 Already Authenticated";
    if (s->have_mail)
        return "503 5.5.0 AUTH not permitted during a mail transaction";
    return NULL;
}

/* smtpd_auth_mech_allowed - 0 when mech is on offer now; else the reply */
static int smtpd_auth_mech_allowed(struct session *s, const char *mech)
{
    const char *now = smtpd_auth_mechs(s);

    if (smtpd_auth_listed(now, mech))
        return 0;
    if (now[0] == '\0' && !s->tls_active && smtpd_auth_listed(s->cfg->auth->mechs_tls, mech))
        session_reply(s, "538 5.7.11 Encryption required for requested authentication mechanism");
    else
        session_reply(s, "504 5.3.3 AUTH mechanism %s not available", mech);
    return -1;
}

void smtpd_auth_command(struct session *s, const char *arg)
{
    const char *refusal = smtpd_auth_refusal(s);
    const char *initial = NULL;
    buf_t mech = BUF_INIT, reply = BUF_INIT, response = BUF_INIT;

    if (refusal != NULL)
        session_reply(s, "%s", refusal);
    else if (proto_auth_parse(arg, &mech, &initial, &reply) < 0)
        session_reply(s, "%s", buf_cstr(&reply));
    else if (smtpd_auth_mech_allowed(s, buf_cstr(&mech)) < 0)
        ; /* answered */
    else if (initial != NULL &&
             proto_auth_response(initial, strlen(initial), 1, &response, &reply) < 0)
        session_reply(s, "%s", buf_cstr(&reply));
    else
        smtpd_auth_start(s, buf_cstr(&mech), initial != NULL ? &response : NULL);
    smtpd_auth_wipe(&response);
    buf_free(&mech);
    buf_free(&reply);
}

void smtpd_auth_input(struct session *s, const char *line, size_t len)
{
    struct smtpd_auth_exchange *x = s->auth_state;
    buf_t response = BUF_INIT, reply = BUF_INIT, msg = BUF_INIT;
    int rc = proto_auth_response(line, len, 0, &response, &reply);

    if (rc == 0 && x != NULL && x->stream == NULL) {
        /* too late: smtpd_auth_on_expire freed tern-auth */
        smtpd_auth_exchange_free(s);
        s->state = SESSION_CMD;
        session_reply(s, "%s", SMTPD_AUTH_TEMPFAIL);
    } else if (rc == 0 && x != NULL) {
        buf_reserve(&msg, response.len + 64); /* no growth, no copy */
        attr_begin(&msg, "auth.step");
        attr_add(&msg, "response", response.data ? response.data : "", response.len);
        attr_end(&msg);
        smtpd_auth_send(x, &msg);
    } else {
        smtpd_auth_exchange_free(s);
        s->state = SESSION_CMD;
        session_reply(s, "%s", rc < 0 ? buf_cstr(&reply) : "501 5.0.0 AUTH aborted");
    }
    smtpd_auth_wipe(&response);
    buf_free(&reply);
}

void smtpd_auth_line_too_long(struct session *s)
{
    smtpd_auth_exchange_free(s);
    s->state = SESSION_CMD;
    session_reply(s, "500 5.5.6 Authentication Exchange line is too long");
}

void smtpd_auth_session_end(struct session *s)
{
    smtpd_auth_exchange_free(s);
    if (s->state == SESSION_AUTH || s->state == SESSION_AUTH_WAIT)
        s->state = SESSION_CMD;
}

/* ---- reject_sender_login_mismatch */

/* smtpd_auth_owner - the login is one of the owners (comma/space list) */
static int smtpd_auth_owner(const char *owners, const char *login)
{
    char *copy = xstrdup(owners);
    char *save = NULL;
    int found = 0;

    for (char *w = strtok_r(copy, ", \t", &save); w != NULL && !found;
         w = strtok_r(NULL, ", \t", &save))
        found = strcasecmp(w, login) == 0;
    free(copy);
    return found;
}

int smtpd_auth_sender_check(struct session *s, const char *sender, buf_t *reply)
{
    buf_t owners = BUF_INIT;
    buf_t addr = BUF_INIT;
    enum table_result res;
    int rc = 0;

    if (!s->cfg->sender_login_mismatch || sender[0] == '\0')
        return 0;
    smtpd_tables_enter(s);
    res = route_sender_logins(s->cfg->route, sender, &owners);
    if (smtpd_tables_leave(s, SMTPD_TABLES_COMMAND)) {
        buf_free(&owners);
        return 1;
    }
    proto_printable(sender, strlen(sender), ADDR_LOG_MAX, &addr);
    buf_reset(reply);
    if (res == TABLE_TEMPFAIL)
        buf_printf(reply, "451 4.3.0 <%s>: Temporary lookup failure", buf_cstr(&addr));
    else if (s->sasl_username != NULL &&
             (res != TABLE_FOUND || !smtpd_auth_owner(buf_cstr(&owners), s->sasl_username)))
        buf_printf(reply, "553 5.7.1 <%s>: Sender address rejected: not owned by user %s",
                   buf_cstr(&addr), s->sasl_username);
    else if (s->sasl_username == NULL && res == TABLE_FOUND)
        buf_printf(reply, "553 5.7.1 <%s>: Sender address rejected: not logged in",
                   buf_cstr(&addr));
    rc = reply->len > 0 ? -1 : 0;
    buf_free(&owners);
    buf_free(&addr);
    return rc;
}
