/*
 * test_policy_client - smtpd/policy_client.c against a tiny policy server
 * that runs on the same event loop (loopback TCP or a UNIX socket), whose
 * behaviour each test chooses: answer, stay silent, close mid-reply, answer
 * without action=, send an over-long line, close after each reply.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "buf.h"
#include "policy_client.h"

enum server_mode {
    SERVER_ANSWER,      /* "action=DUNNO conn=N req=M" */
    SERVER_SILENT,      /* reads, never answers */
    SERVER_HALF_REPLY,  /* a part of a reply, then close */
    SERVER_NO_ACTION,   /* a complete reply without action= */
    SERVER_LONG_LINE,   /* action= of 5000 bytes */
    SERVER_CLOSE_AFTER, /* answers, then closes */
    SERVER_CLOSE_FIRST, /* closes its first connection without a word, answers on the others */
};

#define SERVER_CONNS 32

struct server_conn {
    struct bufferevent *bev;
    int id;
    int requests;
};

struct server {
    struct evconnlistener *listener;
    enum server_mode mode;
    int accepted;
    int requests;
    int closed_by_client;
    struct server_conn *conns[SERVER_CONNS];
    char endpoint[160];
    char path[100];
};

struct answer {
    int called;
    int status;
    char action[256];
};

struct fixture {
    struct event_base *base;
    struct server server;
    struct smtpd_policy_clients *clients;
    int answered;
};

static struct fixture fx;

/* ---- the server */

static void server_conn_free(struct server_conn *sc)
{
    int i;

    for (i = 0; i < SERVER_CONNS; i++)
        if (fx.server.conns[i] == sc)
            fx.server.conns[i] = NULL;
    bufferevent_free(sc->bev);
    free(sc);
}

static void server_send(struct server_conn *sc, const char *text)
{
    ssize_t n = write(bufferevent_getfd(sc->bev), text, strlen(text));

    assert_int_equal(n, (ssize_t)strlen(text));
}

/* server_answer - one complete request came: reply as the mode says; 1
 * when the connection was closed */
static int server_answer(struct server_conn *sc)
{
    char reply[6000];

    sc->requests++;
    fx.server.requests++;
    switch (fx.server.mode) {
    case SERVER_SILENT:
        return 0;
    case SERVER_HALF_REPLY:
        server_send(sc, "action=DEF");
        server_conn_free(sc);
        return 1;
    case SERVER_NO_ACTION:
        server_send(sc, "foo=bar\n\n");
        return 0;
    case SERVER_LONG_LINE:
        memset(reply, 'x', sizeof(reply));
        memcpy(reply, "action=", 7);
        memcpy(reply + 5000, "\n\n", 3);
        server_send(sc, reply);
        return 0;
    case SERVER_CLOSE_FIRST:
        if (sc->id == 1) {
            server_conn_free(sc);
            return 1;
        }
        break;
    default:
        break;
    }
    snprintf(reply, sizeof(reply), "foo=skipped\naction=DUNNO conn=%d req=%d\n\n", sc->id,
             sc->requests);
    server_send(sc, reply);
    if (fx.server.mode == SERVER_CLOSE_AFTER) {
        server_conn_free(sc);
        return 1;
    }
    return 0;
}

static void server_on_read(struct bufferevent *bev, void *arg)
{
    struct server_conn *sc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_ptr end;

    for (;;) {
        end = evbuffer_search(in, "\n\n", 2, NULL);
        if (end.pos < 0)
            return;
        evbuffer_drain(in, (size_t)end.pos + 2);
        if (server_answer(sc))
            return;
    }
}

static void server_on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        fx.server.closed_by_client++;
        server_conn_free(arg);
    }
}

static void server_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                             int salen, void *arg)
{
    struct server_conn *sc = calloc(1, sizeof(*sc));
    int i;

    (void)l;
    (void)sa;
    (void)salen;
    (void)arg;
    sc->bev = bufferevent_socket_new(fx.base, fd, BEV_OPT_CLOSE_ON_FREE);
    sc->id = ++fx.server.accepted;
    for (i = 0; i < SERVER_CONNS && fx.server.conns[i] != NULL; i++)
        ;
    assert_true(i < SERVER_CONNS);
    fx.server.conns[i] = sc;
    bufferevent_setcb(sc->bev, server_on_read, NULL, server_on_event, sc);
    bufferevent_enable(sc->bev, EV_READ);
}

/* server_start_inet - listen on a free loopback port */
static void server_start_inet(enum server_mode mode)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fx.server.mode = mode;
    fx.server.listener =
        evconnlistener_new_bind(fx.base, server_on_accept, NULL, LEV_OPT_CLOSE_ON_FREE, 16,
                                (struct sockaddr *)&sin, sizeof(sin));
    assert_non_null(fx.server.listener);
    getsockname(evconnlistener_get_fd(fx.server.listener), (struct sockaddr *)&sin, &len);
    snprintf(fx.server.endpoint, sizeof(fx.server.endpoint), "inet:127.0.0.1:%d",
             ntohs(sin.sin_port));
}

/* server_start_unix - listen on a socket in a fresh directory */
static void server_start_unix(enum server_mode mode)
{
    struct sockaddr_un sun;
    char dir[] = "/tmp/test_policy_client.XXXXXX";

    assert_non_null(mkdtemp(dir));
    snprintf(fx.server.path, sizeof(fx.server.path), "%s/policy", dir);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", fx.server.path);
    fx.server.mode = mode;
    fx.server.listener =
        evconnlistener_new_bind(fx.base, server_on_accept, NULL, LEV_OPT_CLOSE_ON_FREE, 16,
                                (struct sockaddr *)&sun, sizeof(sun));
    assert_non_null(fx.server.listener);
    snprintf(fx.server.endpoint, sizeof(fx.server.endpoint), "unix:%s", fx.server.path);
}

/* ---- the client side */

static void on_answer(void *ctx, int status, const char *action)
{
    struct answer *a = ctx;

    a->called++;
    a->status = status;
    snprintf(a->action, sizeof(a->action), "%s", action);
    fx.answered++;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(int *)arg = 1;
}

/* run_until - run the loop until want answers came or seconds passed */
static void run_until(int want, double seconds)
{
    int expired = 0;
    struct timeval tv = {(time_t)seconds, (suseconds_t)((seconds - (long)seconds) * 1e6)};
    struct event *deadline = evtimer_new(fx.base, on_deadline, &expired);

    evtimer_add(deadline, &tv);
    while (fx.answered < want && !expired)
        event_base_loop(fx.base, EVLOOP_ONCE);
    event_free(deadline);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const buf_t *request(void)
{
    static buf_t req = BUF_INIT;

    buf_set(&req, "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.1\n"
                  "sender=a@example.com\nrecipient=b@example.org\n\n");
    return &req;
}

static struct smtpd_policy_query *ask(struct answer *a)
{
    return smtpd_policy_client_ask(fx.clients, fx.server.endpoint, request(), on_answer, a);
}

static int setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof(fx));
    fx.base = event_base_new();
    fx.clients = smtpd_policy_clients_new(fx.base, 1, 300, 1000);
    return 0;
}

static int teardown(void **state)
{
    int i;

    (void)state;
    smtpd_policy_clients_free(fx.clients);
    for (i = 0; i < SERVER_CONNS; i++)
        if (fx.server.conns[i] != NULL)
            server_conn_free(fx.server.conns[i]);
    if (fx.server.listener != NULL)
        evconnlistener_free(fx.server.listener);
    if (fx.server.path[0] != 0) {
        unlink(fx.server.path);
        *strrchr(fx.server.path, '/') = 0;
        rmdir(fx.server.path);
    }
    event_base_free(fx.base);
    return 0;
}

/* ---- tests */

/* expect_answer - the server behaves as mode says: one query gets status
 * and exactly text (status 0) or a reason containing text (-1) */
static void expect_answer(enum server_mode mode, int status, const char *text)
{
    struct answer a = {0};

    server_start_inet(mode);
    ask(&a);
    run_until(1, 5);
    assert_int_equal(a.called, 1);
    assert_int_equal(a.status, status);
    if (status == 0)
        assert_string_equal(a.action, text);
    else
        assert_non_null(strstr(a.action, text));
}

static void test_request_gets_its_action(void **state)
{
    (void)state;
    expect_answer(SERVER_ANSWER, 0, "DUNNO conn=1 req=1");
}

/* ask_in_sequence - n queries, each asked once the one before it is answered */
static void ask_in_sequence(enum server_mode mode, struct answer *answers, int n)
{
    int i;

    server_start_inet(mode);
    for (i = 0; i < n; i++) {
        ask(&answers[i]);
        run_until(i + 1, 5);
        assert_int_equal(answers[i].called, 1);
        assert_int_equal(answers[i].status, 0);
    }
}

static void test_two_requests_in_sequence_share_one_connection(void **state)
{
    struct answer a[2] = {{0}};

    (void)state;
    ask_in_sequence(SERVER_ANSWER, a, 2);
    assert_string_equal(a[0].action, "DUNNO conn=1 req=1");
    assert_string_equal(a[1].action, "DUNNO conn=1 req=2");
    assert_int_equal(fx.server.accepted, 1);
}

static void test_parallel_requests_use_at_most_eight_connections(void **state)
{
    struct answer a[20];
    int i;

    (void)state;
    memset(a, 0, sizeof(a));
    server_start_inet(SERVER_ANSWER);
    for (i = 0; i < 20; i++)
        ask(&a[i]);
    run_until(20, 5);
    for (i = 0; i < 20; i++) {
        assert_int_equal(a[i].called, 1);
        assert_int_equal(a[i].status, 0);
    }
    assert_int_equal(fx.server.accepted, SMTPD_POLICY_CLIENT_MAX_CONNS);
    assert_int_equal(fx.server.requests, 20);
}

static void test_silent_server_fails_after_the_timeout(void **state)
{
    struct answer a = {0};
    double start = now();

    (void)state;
    server_start_inet(SERVER_SILENT);
    ask(&a);
    run_until(1, 5);
    assert_int_equal(a.status, -1);
    assert_non_null(strstr(a.action, "no complete reply within 1s"));
    assert_true(now() - start >= 0.9 && now() - start < 3);
    run_until(2, 0.2);
    assert_int_equal(fx.server.closed_by_client, 1);
}

static void test_server_closing_mid_reply_fails(void **state)
{
    (void)state;
    expect_answer(SERVER_HALF_REPLY, -1, "lost the connection");
    assert_int_equal(fx.server.requests, 1); /* no retry once part of the reply came */
}

static void test_reply_without_action_fails(void **state)
{
    (void)state;
    expect_answer(SERVER_NO_ACTION, -1, "no action=");
}

static void test_overlong_reply_line_fails(void **state)
{
    (void)state;
    expect_answer(SERVER_LONG_LINE, -1, "longer than 4096");
}

static void test_cancel_before_reply_calls_nothing_and_closes(void **state)
{
    struct answer a = {0}, b = {0};
    struct smtpd_policy_query *q;

    (void)state;
    server_start_inet(SERVER_SILENT);
    q = ask(&a);
    run_until(1, 0.3);
    assert_int_equal(fx.server.requests, 1);
    smtpd_policy_client_cancel(q);
    run_until(1, 1.5); /* past the 1 s timeout: no late callback */
    assert_int_equal(a.called, 0);
    assert_int_equal(fx.server.closed_by_client, 1);
    /* a cancelled waiting query and one whose answer is due are forgotten too */
    smtpd_policy_client_cancel(ask(&b));
    q = smtpd_policy_client_ask(fx.clients, "unix:/nonexistent/policy", request(), on_answer, &b);
    smtpd_policy_client_cancel(q);
    run_until(1, 0.2);
    assert_int_equal(b.called, 0);
}

static void test_unix_endpoint_and_bare_path(void **state)
{
    struct answer a = {0}, b = {0};

    (void)state;
    server_start_unix(SERVER_ANSWER);
    ask(&a);
    run_until(1, 5);
    assert_int_equal(a.status, 0);
    assert_string_equal(a.action, "DUNNO conn=1 req=1");
    smtpd_policy_client_ask(fx.clients, fx.server.path, request(), on_answer, &b);
    run_until(2, 5);
    assert_int_equal(b.status, 0);
    assert_string_equal(b.action, "DUNNO conn=2 req=1"); /* another endpoint, another pool */
}

static void test_connection_refused_fails_fast(void **state)
{
    struct answer a = {0};
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    double start;

    (void)state;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    getsockname(fd, (struct sockaddr *)&sin, &len);
    close(fd); /* the port is free and nobody listens */
    snprintf(fx.server.endpoint, sizeof(fx.server.endpoint), "inet:localhost:%d",
             ntohs(sin.sin_port));
    start = now();
    ask(&a);
    run_until(1, 5);
    assert_int_equal(a.status, -1);
    assert_non_null(strstr(a.action, "refused"));
    assert_true(now() - start < 0.5);
}

static void test_callback_never_runs_inside_ask(void **state)
{
    struct answer a = {0}, b = {0}, c = {0};
    buf_t bad = BUF_INIT;

    (void)state;
    smtpd_policy_client_ask(fx.clients, "unix:/nonexistent/policy", request(), on_answer, &a);
    smtpd_policy_client_ask(fx.clients, "inet:mail.example:10023", request(), on_answer, &b);
    buf_set(&bad, "request=smtpd_access_policy\n\nsender=x\n\n");
    smtpd_policy_client_ask(fx.clients, "unix:/nonexistent/policy", &bad, on_answer, &c);
    assert_int_equal(a.called + b.called + c.called, 0);
    run_until(3, 2);
    assert_int_equal(a.status, -1);
    assert_non_null(strstr(a.action, "No such file"));
    assert_int_equal(b.status, -1);
    assert_non_null(strstr(b.action, "numeric address"));
    assert_int_equal(c.status, -1);
    assert_non_null(strstr(c.action, "malformed request"));
    buf_free(&bad);
}

static void test_server_closing_after_each_reply_is_fine(void **state)
{
    struct answer a[3] = {{0}};

    (void)state;
    ask_in_sequence(SERVER_CLOSE_AFTER, a, 3);
    assert_string_equal(a[2].action, "DUNNO conn=3 req=1");
}

static void test_request_lost_on_a_broken_connection_is_sent_again_once(void **state)
{
    (void)state;
    expect_answer(SERVER_CLOSE_FIRST, 0, "DUNNO conn=2 req=1");
}

static void test_idle_connection_is_replaced_after_max_idle(void **state)
{
    struct answer a = {0}, b = {0};

    (void)state;
    smtpd_policy_clients_free(fx.clients);
    fx.clients = smtpd_policy_clients_new(fx.base, 1, 1, 1000);
    server_start_inet(SERVER_ANSWER);
    ask(&a);
    run_until(1, 5);
    run_until(2, 1.3);
    assert_int_equal(fx.server.closed_by_client, 1);
    ask(&b);
    run_until(2, 5);
    assert_string_equal(b.action, "DUNNO conn=2 req=1");
}

static void test_endpoint_check_accepts_numeric_hosts_and_paths(void **state)
{
    const char *good[] = {"inet:127.0.0.1:10023", "inet:localhost:9998",
                          "inet:[::1]:10023",     "unix:/var/spool/postfix/private/policy",
                          "private/policy",       "unix:private/policy"};
    const char *bad[] = {"inet:mail.example:10023",
                         "inet:127.0.0.1",
                         "inet:127.0.0.1:0",
                         "inet:::1:10023",
                         "tcp:127.0.0.1:10023",
                         "unix:",
                         "",
                         "inet:127.0.0.1:port"};
    buf_t err = BUF_INIT;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(smtpd_policy_endpoint_check(good[i], &err), 0);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_reset(&err);
        assert_int_equal(smtpd_policy_endpoint_check(bad[i], &err), -1);
        assert_true(err.len > 0);
    }
    buf_reset(&err);
    smtpd_policy_endpoint_check("inet:mail.example:10023", &err);
    assert_string_equal(err.data, "inet:mail.example:10023: the host must be a numeric address "
                                  "or localhost (a name would need a blocking lookup)");
    buf_free(&err);
}

/* parse - smtpd_policy_reply_parse on a C string */
static int parse(const char *reply, size_t *used, buf_t *action)
{
    buf_t err = BUF_INIT;
    int rc;

    buf_reset(action);
    rc = smtpd_policy_reply_parse(reply, strlen(reply), used, action, &err);
    buf_free(&err);
    return rc;
}

static void test_reply_parser(void **state)
{
    buf_t action = BUF_INIT;
    size_t used = 0;
    buf_t many = BUF_INIT;
    int i;

    (void)state;
    assert_int_equal(parse("action=DUNNO\n\nnext", &used, &action), 1);
    assert_int_equal(used, 14);
    assert_string_equal(action.data, "DUNNO");
    assert_int_equal(parse("action=defer_if_permit Greylisted, see x\r\n\r\n", &used, &action), 1);
    assert_string_equal(action.data, "defer_if_permit Greylisted, see x");
    assert_int_equal(parse("x=1\naction=OK\ny=2\n\n", &used, &action), 1);
    assert_string_equal(action.data, "OK");
    assert_int_equal(parse("action=DUNNO\n", &used, &action), 0);
    assert_int_equal(parse("action=DU", &used, &action), 0);
    assert_int_equal(parse("", &used, &action), 0);
    assert_int_equal(parse("\n", &used, &action), -1);
    assert_int_equal(parse("action=\n\n", &used, &action), -1);
    assert_int_equal(parse("action=A\naction=B\n\n", &used, &action), -1);
    assert_int_equal(parse("no equals sign\n\n", &used, &action), -1);
    assert_int_equal(parse("=x\n\n", &used, &action), -1);
    for (i = 0; i < SMTPD_POLICY_REPLY_LINES; i++)
        buf_puts(&many, "x=1\n");
    assert_int_equal(parse(buf_cstr(&many), &used, &action), 0);
    buf_puts(&many, "action=OK\n\n");
    assert_int_equal(parse(buf_cstr(&many), &used, &action), -1);
    buf_free(&many);
    buf_free(&action);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_gets_its_action, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_requests_in_sequence_share_one_connection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_parallel_requests_use_at_most_eight_connections, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_silent_server_fails_after_the_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_server_closing_mid_reply_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_without_action_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlong_reply_line_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_before_reply_calls_nothing_and_closes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unix_endpoint_and_bare_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused_fails_fast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_never_runs_inside_ask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_closing_after_each_reply_is_fine, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_request_lost_on_a_broken_connection_is_sent_again_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_connection_is_replaced_after_max_idle, setup,
                                        teardown),
        cmocka_unit_test(test_endpoint_check_accepts_numeric_hosts_and_paths),
        cmocka_unit_test(test_reply_parser),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
