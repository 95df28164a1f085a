/*
 * exchange - one SMTP AUTH exchange in its own tern-auth process (auth.h).
 *
 * smtpd sends auth.start (listener, mechanism, the initial response if the
 * client gave one, the TLS cipher's bits, the client's address), then one
 * auth.step per client response; every request gets one auth.reply
 * (docs/internals.md).  The exchange ends with a final reply, when smtpd
 * closes the connection (the client aborted, went away or took longer than
 * smtpd_sasl_response_timeout to answer a 334), when the next auth.step
 * does not come within smtpd_sasl_response_timeout plus a few seconds, or
 * when a step takes longer than auth_time_limit: the alarm then ends the
 * process and smtpd, seeing the connection close, answers 454.  No SASL
 * step runs for a connection smtpd has already closed.  Each request is
 * wiped (its whole buffer) once it has been used.  Nothing here logs a
 * response or a challenge.
 */
#include <poll.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sasl/sasl.h>

#include "attr.h"
#include "auth.h"
#include "log.h"

/* longest client response and mechanism name accepted from smtpd */
#define AUTH_EXCHANGE_RESPONSE_MAX (64 * 1024)
#define AUTH_EXCHANGE_MECH_MAX 20
/* extra seconds smtpd gets beyond the client's time to answer a 334 */
#define AUTH_EXCHANGE_WAIT_SLACK 5

struct auth_exchange {
    const struct auth_exchange_env *env;
    const struct auth_policy *policy;
    int fd;
    sasl_conn_t *conn;
    struct attr_msg req;
    char mech[AUTH_EXCHANGE_MECH_MAX + 1];
};

/* auth_exchange_policy - the policy of a listener, or NULL */
static const struct auth_policy *auth_exchange_policy(const struct auth_exchange_env *env,
                                                      const char *listener)
{
    for (size_t i = 0; listener != NULL && i < env->policy_count; i++)
        if (strcmp(env->policies[i].listener, listener) == 0)
            return &env->policies[i];
    return NULL;
}

/* auth_exchange_mech_ok - RFC 4422 mechanism name: 1-20 of A-Z 0-9 - _ */
static int auth_exchange_mech_ok(const char *mech)
{
    size_t n = strlen(mech);

    if (n == 0 || n > AUTH_EXCHANGE_MECH_MAX)
        return 0;
    return strspn(mech, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n;
}

/* auth_exchange_reply - send one auth.reply; -1 when smtpd is gone */
static int auth_exchange_reply(struct auth_exchange *x, const char *status, const char *name,
                               const char *value, size_t len)
{
    buf_t out = BUF_INIT;
    int rc;

    attr_begin(&out, "auth.reply");
    attr_add_str(&out, "status", status);
    if (name != NULL)
        attr_add(&out, name, value, len);
    attr_end(&out);
    rc = attr_write_fd(x->fd, &out);
    buf_free(&out);
    return rc;
}

/* auth_exchange_read - the next request of proto; -1 on EOF, timeout or garbage */
static int auth_exchange_read(struct auth_exchange *x, const char *proto)
{
    int wait =
        (int)(x->policy != NULL ? x->policy->response_timeout : 0) + AUTH_EXCHANGE_WAIT_SLACK;
    const char *got;

    attr_msg_wipe(&x->req); /* the last response: no copy survives the next read */
    if (attr_read_fd(x->fd, &x->req, wait) < 0)
        return -1;
    got = attr_proto(&x->req);
    if (got == NULL || strcmp(got, proto) != 0) {
        log_warn("auth: smtpd sent %s where %s was due; ending the exchange",
                 got != NULL ? "an unexpected request" : "garbage", proto);
        return -1;
    }
    return 0;
}

/* auth_exchange_response - the response attribute: 1 present, 0 absent, -1 too long */
static int auth_exchange_response(struct auth_exchange *x, const char **data, size_t *len)
{
    *data = attr_get(&x->req, "response", len);
    if (*data == NULL)
        return 0;
    return *len > AUTH_EXCHANGE_RESPONSE_MAX ? -1 : 1;
}

/* auth_exchange_open - check auth.start and make the SASL connection; -1
 * with the refusal already sent */
static int auth_exchange_open(struct auth_exchange *x)
{
    const char *mech = attr_get(&x->req, "mechanism", NULL);
    const char *addr = attr_get(&x->req, "client_addr", NULL);
    const char *port = attr_get(&x->req, "client_port", NULL);
    long long ssf = 0;
    buf_t client = BUF_INIT;
    buf_t err = BUF_INIT;

    x->policy = auth_exchange_policy(x->env, attr_get(&x->req, "listener", NULL));
    if (x->policy == NULL || mech == NULL || !auth_exchange_mech_ok(mech) ||
        attr_get_int(&x->req, "tls_ssf", 0, 65535, &ssf) < 0) {
        log_warn("auth: malformed auth.start from smtpd (or AUTH not enabled on its listener)");
        auth_exchange_reply(x, "tempfail", "reason", "bad request", 11);
        return -1;
    }
    snprintf(x->mech, sizeof(x->mech), "%s", mech);
    if (addr != NULL)
        auth_sasl_set_log_client(addr);
    if (addr != NULL && port != NULL)
        buf_printf(&client, "%s;%s", addr, port);
    x->conn = auth_sasl_conn_new(&x->policy->sasl, (unsigned)ssf,
                                 client.len > 0 ? buf_cstr(&client) : NULL, &err);
    buf_free(&client);
    if (x->conn == NULL) {
        log_warn("auth: %s", buf_cstr(&err));
        auth_exchange_reply(x, "tempfail", "reason", "SASL set-up failed", 18);
    }
    buf_free(&err);
    return x->conn != NULL ? 0 : -1;
}

/* auth_exchange_answer - turn a SASL result into the reply; 1 when the
 * exchange goes on */
static int auth_exchange_answer(struct auth_exchange *x, int rc, const char *out, unsigned outlen)
{
    static const char *const names[] = {
        [AUTH_SASL_OK] = "ok",         [AUTH_SASL_CONTINUE] = "continue",
        [AUTH_SASL_FAIL] = "fail",     [AUTH_SASL_TEMPFAIL] = "tempfail",
        [AUTH_SASL_NOMECH] = "nomech", [AUTH_SASL_ENCRYPT] = "encrypt",
    };
    buf_t text = BUF_INIT;
    enum auth_sasl_status st = auth_sasl_outcome(rc, &text);
    int more = 0;

    if (st == AUTH_SASL_OK && auth_sasl_username(x->conn, &text) < 0) {
        st = AUTH_SASL_TEMPFAIL;
        buf_set(&text, "no user name from SASL");
    }
    if (st == AUTH_SASL_CONTINUE)
        more =
            auth_exchange_reply(x, names[st], "challenge", out ? out : "", out ? outlen : 0) == 0;
    else
        auth_exchange_reply(x, names[st], st == AUTH_SASL_OK ? "username" : "reason",
                            buf_cstr(&text), text.len);
    buf_free(&text);
    return more;
}

int auth_peer_gone(int fd)
{
    struct pollfd pfd = {fd, POLLRDHUP, 0};

    return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* auth_exchange_step - run one SASL call under the time limit */
static int auth_exchange_step(struct auth_exchange *x, int first, const char *in, size_t len,
                              const char **out, unsigned *outlen)
{
    int rc;

    alarm((unsigned)x->env->time_limit);
    if (first)
        rc = sasl_server_start(x->conn, x->mech, in, (unsigned)len, out, outlen);
    else
        rc = sasl_server_step(x->conn, in, (unsigned)len, out, outlen);
    alarm(0);
    return rc;
}

/* auth_exchange_loop - start, then a step per response while SASL wants more */
static void auth_exchange_loop(struct auth_exchange *x)
{
    const char *in = NULL;
    const char *out = NULL;
    unsigned outlen = 0;
    size_t len = 0;
    int first = 1;
    int have;
    int rc;

    for (;;) {
        have = auth_exchange_response(x, &in, &len);
        if (have < 0 || (!first && have == 0)) {
            auth_exchange_reply(x, "fail", "reason", "malformed response", 18);
            return;
        }
        if (auth_peer_gone(x->fd)) {
            log_info("auth: smtpd closed the connection before the %s step; nothing done", x->mech);
            return;
        }
        rc = auth_exchange_step(x, first, in, len, &out, &outlen);
        if (!auth_exchange_answer(x, rc, out, outlen))
            return;
        first = 0;
        if (auth_exchange_read(x, "auth.step") < 0)
            return;
    }
}

void auth_exchange_run(const struct auth_exchange_env *env, int fd)
{
    struct auth_exchange x;

    memset(&x, 0, sizeof(x));
    x.env = env;
    x.fd = fd;
    attr_msg_init(&x.req);
    signal(SIGALRM, SIG_DFL);
    if (fcntl(fd, F_SETFL, 0) == 0 && auth_exchange_read(&x, "auth.start") == 0 &&
        auth_exchange_open(&x) == 0)
        auth_exchange_loop(&x);
    if (x.conn != NULL)
        sasl_dispose(&x.conn);
    attr_msg_wipe(&x.req);
    attr_msg_free(&x.req);
}
