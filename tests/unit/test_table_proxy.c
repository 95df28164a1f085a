/*
 * test_table_proxy - unit tests for lib/proxymap_proto (the messages, and
 * their refusal of malformed ones) and lib/table_proxy's asynchronous
 * scopes against a fake tern-proxymap on the test's own event loop
 * (private/proxymap in a temporary directory): requests recorded, sent in
 * one wait, answers matched by id whatever their order, a wait at a time,
 * failures as TABLE_TEMPFAIL, cancellation by free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "proxymap_proto.h"
#include "service.h"
#include "table_proxy.h"

/* decode_one - attr_decode of a whole encoded message */
static void decode_one(const buf_t *b, struct attr_msg *m)
{
    size_t used = 0;

    assert_int_equal(attr_decode(b->data, b->len, &used, m), 1);
    assert_int_equal(used, b->len);
}

static void test_request_round_trip(void **state)
{
    struct proxymap_request in = {42, "ldap:/etc/tern/x.cf", TABLE_CASE_SENSITIVE, "Joe@Ex"}, out;
    buf_t b = BUF_INIT;
    struct attr_msg m;

    attr_msg_init(&m);
    proxymap_request_encode(&b, &in);
    decode_one(&b, &m);
    assert_int_equal(proxymap_request_parse(&m, &out), 0);
    assert_int_equal(out.id, 42);
    assert_string_equal(out.table, "ldap:/etc/tern/x.cf");
    assert_int_equal(out.flags, TABLE_CASE_SENSITIVE);
    assert_string_equal(out.key, "Joe@Ex");
    attr_msg_free(&m);
    buf_free(&b);
}

/* parse_request - proxymap_request_parse of a message built by hand */
static int parse_request(const char *id, const char *table, const char *flags, const char *key)
{
    buf_t b = BUF_INIT;
    struct attr_msg m;
    struct proxymap_request r;
    int rc;

    attr_msg_init(&m);
    attr_begin(&b, "proxymap.lookup");
    if (id)
        attr_add_str(&b, "id", id);
    if (table)
        attr_add_str(&b, "table", table);
    if (flags)
        attr_add_str(&b, "flags", flags);
    if (key)
        attr_add(&b, "key", key, strlen(key) + (strcmp(key, "nul") == 0));
    attr_end(&b);
    decode_one(&b, &m);
    rc = proxymap_request_parse(&m, &r);
    attr_msg_free(&m);
    buf_free(&b);
    return rc;
}

static void test_request_malformed_is_refused(void **state)
{
    char long_key[TABLE_KEY_MAX + 2];

    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = 0;
    assert_int_equal(parse_request("1", "texthash:/x", "0", "k"), 0);
    assert_int_equal(parse_request(NULL, "texthash:/x", "0", "k"), -1);
    assert_int_equal(parse_request("-1", "texthash:/x", "0", "k"), -1);
    assert_int_equal(parse_request("1", NULL, "0", "k"), -1);
    assert_int_equal(parse_request("1", "", "0", "k"), -1);
    assert_int_equal(parse_request("1", "texthash:/x", "8", "k"), -1);
    assert_int_equal(parse_request("1", "texthash:/x", NULL, "k"), -1);
    assert_int_equal(parse_request("1", "texthash:/x", "0", NULL), -1);
    assert_int_equal(parse_request("1", "texthash:/x", "0", ""), -1);
    assert_int_equal(parse_request("1", "texthash:/x", "0", "nul"), -1);
    assert_int_equal(parse_request("1", "texthash:/x", "0", long_key), -1);
}

/* reply_round_trip - in encoded into b, decoded into m and parsed into out */
static int reply_round_trip(const struct proxymap_reply *in, struct proxymap_reply *out,
                            struct attr_msg *m, buf_t *b)
{
    attr_msg_init(m);
    proxymap_reply_encode(b, in);
    decode_one(b, m);
    return proxymap_reply_parse(m, out);
}

static void test_reply_round_trip_and_refusals(void **state)
{
    struct proxymap_reply in = {7, TABLE_FOUND, "v a l", 5, 0}, out;
    buf_t b = BUF_INIT;
    struct attr_msg m;

    assert_int_equal(reply_round_trip(&in, &out, &m, &b), 0);
    assert_int_equal(out.id, 7);
    assert_int_equal(out.status, TABLE_FOUND);
    assert_string_equal(out.value, "v a l");
    buf_reset(&b);
    attr_begin(&b, "proxymap.reply");
    attr_add_str(&b, "id", "7");
    attr_add_str(&b, "status", "found"); /* found without a value */
    attr_end(&b);
    decode_one(&b, &m);
    assert_int_equal(proxymap_reply_parse(&m, &out), -1);
    buf_reset(&b);
    attr_begin(&b, "proxymap.reply");
    attr_add_str(&b, "id", "7");
    attr_add_str(&b, "status", "FOUND");
    attr_end(&b);
    decode_one(&b, &m);
    assert_int_equal(proxymap_reply_parse(&m, &out), -1);
    attr_msg_free(&m);
    buf_free(&b);
}

/* ---- a fake tern-proxymap: "a" is found ("A-value"), anything else not;
 * the replies of one read go back in reverse order */

/* one event loop for the whole run, as in a service: the client's
 * connection is per process */
static struct event_base *test_base;

struct fake {
    struct event_base *base;
    struct evconnlistener *listener;
    struct bufferevent *bev;
    struct attr_msg msg;
    int requests;
    int accepts;
    int silent; /* read but never answer */
    int done_calls;
    char dir[64];
};

static void fake_on_read(struct bufferevent *bev, void *arg)
{
    struct fake *f = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    buf_t replies[16];
    int n = 0;
    size_t used;

    while (n < 16 && attr_decode((const char *)evbuffer_pullup(in, -1), evbuffer_get_length(in),
                                 &used, &f->msg) == 1) {
        struct proxymap_request r;
        evbuffer_drain(in, used);
        assert_int_equal(proxymap_request_parse(&f->msg, &r), 0);
        f->requests++;
        int found = strcmp(r.key, "a") == 0;
        struct proxymap_reply rep = {r.id, found ? TABLE_FOUND : TABLE_NOTFOUND, "A-value", 7, 0};
        if (strcmp(r.key, "crlf") == 0) /* a value proxymap should have refused */
            rep = (struct proxymap_reply){r.id, TABLE_FOUND, "x\r\n250 2.0.0 Ok", 15, 0};
        else if (strcmp(r.key, "nul") == 0)
            rep = (struct proxymap_reply){r.id, TABLE_FOUND, "x\0y", 3, 0};
        buf_init(&replies[n]);
        proxymap_reply_encode(&replies[n++], &rep);
    }
    while (n-- > 0) {
        if (!f->silent)
            bufferevent_write(bev, replies[n].data, replies[n].len);
        buf_free(&replies[n]);
    }
}

static void fake_on_event(struct bufferevent *bev, short what, void *arg)
{
}

static void fake_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                           int len, void *arg)
{
    struct fake *f = arg;

    f->accepts++;
    f->bev = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(f->bev, fake_on_read, NULL, fake_on_event, f);
    bufferevent_enable(f->bev, EV_READ | EV_WRITE);
}

static int fake_setup(void **state)
{
    struct fake *f = calloc(1, sizeof(*f));
    struct sockaddr_un sun = {.sun_family = AF_UNIX};

    snprintf(f->dir, sizeof(f->dir), "/tmp/test_table_proxy.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(chdir(f->dir), 0);
    assert_int_equal(mkdir("private", 0700), 0);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "private/proxymap");
    f->base = test_base;
    attr_msg_init(&f->msg);
    f->listener = evconnlistener_new_bind(f->base, fake_on_accept, f, LEV_OPT_CLOSE_ON_FREE, -1,
                                          (struct sockaddr *)&sun, sizeof(sun));
    assert_non_null(f->listener);
    table_proxy_default(1);
    *state = f;
    return 0;
}

static int fake_teardown(void **state)
{
    struct fake *f = *state;

    if (f->bev)
        bufferevent_free(f->bev);
    if (f->listener)
        evconnlistener_free(f->listener);
    for (int i = 0; i < 3; i++) /* the client sees the close and drops its connection */
        event_base_loop(f->base, EVLOOP_NONBLOCK);
    attr_msg_free(&f->msg);
    unlink("private/proxymap");
    rmdir("private");
    assert_int_equal(chdir("/"), 0);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void on_done(void *ctx)
{
    struct fake *f = ctx;

    f->done_calls++;
    event_base_loopbreak(f->base);
}

/* open_remote - a proxy table (no file is opened: the lookups go to the fake) */
static struct table *open_remote(void)
{
    buf_t err = BUF_INIT;
    struct table *t = table_open("proxy:texthash:/nonexistent/map", 0, &err);

    assert_non_null(t);
    assert_true(table_is_remote(t));
    buf_free(&err);
    return t;
}

static void test_scope_asks_waits_and_answers(void **state)
{
    struct fake *f = *state;
    struct table *t = open_remote();
    struct table_proxy_scope *s = table_proxy_scope_new();
    buf_t v = BUF_INIT;

    table_proxy_scope_enter(s);
    assert_int_equal(table_proxy_scope_pending_now(), 0);
    assert_int_equal(table_lookup(t, "a", &v), TABLE_TEMPFAIL);
    assert_int_equal(table_proxy_scope_pending_now(), 1); /* not answered yet */
    assert_int_equal(table_lookup(t, "b", &v), TABLE_TEMPFAIL);
    assert_int_equal(table_lookup(t, "a", &v), TABLE_TEMPFAIL); /* asked once */
    assert_int_equal(table_proxy_scope_size(s), 2);
    table_proxy_scope_leave();
    assert_int_equal(table_proxy_scope_pending_now(), 0); /* no scope entered */
    assert_int_equal(table_proxy_scope_pending(s), 1);
    assert_int_equal(table_proxy_scope_wait(s, f->base, on_done, f), 0);
    assert_int_equal(table_proxy_scope_waiting(s), 1);
    assert_int_equal(table_proxy_scope_wait(s, f->base, on_done, f), -1);
    event_base_dispatch(f->base);
    assert_int_equal(f->done_calls, 1);
    assert_int_equal(f->requests, 2);
    assert_int_equal(table_proxy_scope_waiting(s), 0);
    table_proxy_scope_enter(s);
    assert_int_equal(table_lookup(t, "a", &v), TABLE_FOUND);
    assert_string_equal(buf_cstr(&v), "A-value");
    assert_int_equal(table_lookup(t, "b", &v), TABLE_NOTFOUND);
    table_proxy_scope_leave();
    assert_int_equal(table_proxy_scope_pending(s), 0);
    assert_int_equal(table_proxy_scope_wait(s, f->base, on_done, f), -1); /* nothing asked */
    table_proxy_scope_reset(s);
    table_proxy_scope_enter(s);
    assert_int_equal(table_lookup(t, "a", &v), TABLE_TEMPFAIL); /* forgotten */
    table_proxy_scope_leave();
    assert_int_equal(table_proxy_scope_pending(s), 1);
    table_proxy_scope_free(s);
    table_close(t);
    buf_free(&v);
}

static void test_value_check_refuses_control_bytes_and_size(void **state)
{
    char *big = malloc(PROXYMAP_VALUE_MAX + 1);

    assert_int_equal(proxymap_value_check("OK fine\tvalue \xc3\xa9", 16), 0);
    assert_int_equal(proxymap_value_check("", 0), 0);
    assert_int_equal(proxymap_value_check("REJECT x\r\n250 2.0.0 Ok", 22), -1);
    assert_int_equal(proxymap_value_check("PREPEND X-A: 1\nBcc: x", 21), -1);
    assert_int_equal(proxymap_value_check("a\rb", 3), -1);
    assert_int_equal(proxymap_value_check("a\0b", 3), -1);
    assert_int_equal(proxymap_value_check("a\x1b[0m", 5), -1);
    assert_int_equal(proxymap_value_check("a\x7f", 2), -1);
    memset(big, 'x', PROXYMAP_VALUE_MAX + 1);
    assert_int_equal(proxymap_value_check(big, PROXYMAP_VALUE_MAX), 0);
    assert_int_equal(proxymap_value_check(big, PROXYMAP_VALUE_MAX + 1), -1);
    free(big);
}

static void test_reply_with_a_bad_value_is_a_tempfail_not_malformed(void **state)
{
    struct proxymap_reply in = {9, TABLE_FOUND, "x\r\ny", 4, 0}, out;
    buf_t b = BUF_INIT;
    struct attr_msg m;

    assert_int_equal(reply_round_trip(&in, &out, &m, &b), 0);
    assert_int_equal(out.id, 9);
    assert_int_equal(out.status, TABLE_TEMPFAIL);
    assert_int_equal(out.refused, 1);
    assert_null(out.value);
    attr_msg_free(&m);
    buf_free(&b);
}

/* ask_in_two_scopes - s asks the keys (NULL-terminated), s2 asks key2;
 * both wait */
static void ask_in_two_scopes(struct fake *f, struct table *t, struct table_proxy_scope *s,
                              const char *const *keys, struct table_proxy_scope *s2,
                              const char *key2)
{
    buf_t v = BUF_INIT;

    table_proxy_scope_enter(s);
    for (; *keys != NULL; keys++)
        assert_int_equal(table_lookup(t, *keys, &v), TABLE_TEMPFAIL);
    table_proxy_scope_enter(s2);
    assert_int_equal(table_lookup(t, key2, &v), TABLE_TEMPFAIL);
    table_proxy_scope_leave();
    assert_int_equal(table_proxy_scope_wait(s, f->base, on_done, f), 0);
    assert_int_equal(table_proxy_scope_wait(s2, f->base, on_done, f), 0);
    buf_free(&v);
}

/* a bad value fails its own request: the connection and the other scope's
 * lookups on it go on */
static void test_scope_bad_value_fails_only_its_request(void **state)
{
    struct fake *f = *state;
    struct table *t = open_remote();
    struct table_proxy_scope *s = table_proxy_scope_new(), *s2 = table_proxy_scope_new();
    buf_t v = BUF_INIT;
    static const char *const bad[] = {"crlf", "nul", NULL};

    ask_in_two_scopes(f, t, s, bad, s2, "a");
    while (f->done_calls < 2)
        event_base_dispatch(f->base);
    table_proxy_scope_enter(s);
    assert_int_equal(table_lookup(t, "crlf", &v), TABLE_TEMPFAIL);
    assert_int_equal(table_lookup(t, "nul", &v), TABLE_TEMPFAIL);
    assert_int_equal(table_proxy_scope_pending(s), 0);
    table_proxy_scope_enter(s2);
    assert_int_equal(table_lookup(t, "a", &v), TABLE_FOUND);
    assert_string_equal(buf_cstr(&v), "A-value");
    table_proxy_scope_leave();
    table_proxy_scope_reset(s2); /* the same connection serves the next wait */
    table_proxy_scope_enter(s2);
    assert_int_equal(table_lookup(t, "b", &v), TABLE_TEMPFAIL);
    table_proxy_scope_leave();
    assert_int_equal(table_proxy_scope_wait(s2, f->base, on_done, f), 0);
    while (f->done_calls < 3)
        event_base_dispatch(f->base);
    table_proxy_scope_enter(s2);
    assert_int_equal(table_lookup(t, "b", &v), TABLE_NOTFOUND);
    table_proxy_scope_leave();
    assert_int_equal(f->accepts, 1);
    table_proxy_scope_free(s);
    table_proxy_scope_free(s2);
    table_close(t);
    buf_free(&v);
}

static void test_scope_free_cancels_the_wait(void **state)
{
    struct fake *f = *state;
    struct table *t = open_remote();
    struct table_proxy_scope *s = table_proxy_scope_new(), *s2 = table_proxy_scope_new();
    buf_t v = BUF_INIT;
    static const char *const a[] = {"a", NULL};

    ask_in_two_scopes(f, t, s, a, s2, "b");
    table_proxy_scope_free(s); /* its answer arrives and is ignored */
    event_base_dispatch(f->base);
    assert_int_equal(f->done_calls, 1); /* s2's only */
    table_proxy_scope_enter(s2);
    assert_int_equal(table_lookup(t, "b", &v), TABLE_NOTFOUND);
    table_proxy_scope_leave();
    table_proxy_scope_free(s2);
    table_close(t);
    buf_free(&v);
}

static void test_scope_service_down_is_tempfail(void **state)
{
    struct fake *f = *state;
    struct table *t = open_remote();
    struct table_proxy_scope *s = table_proxy_scope_new();
    buf_t v = BUF_INIT;

    evconnlistener_free(f->listener);
    f->listener = NULL;
    unlink("private/proxymap");
    table_proxy_scope_enter(s);
    assert_int_equal(table_lookup(t, "a", &v), TABLE_TEMPFAIL);
    table_proxy_scope_leave();
    assert_int_equal(table_proxy_scope_wait(s, f->base, on_done, f), 0);
    assert_int_equal(f->done_calls, 0); /* from the loop, not from wait */
    event_base_dispatch(f->base);
    assert_int_equal(f->done_calls, 1);
    table_proxy_scope_enter(s);
    assert_int_equal(table_lookup(t, "a", &v), TABLE_TEMPFAIL); /* the answer: a failure */
    assert_int_equal(table_proxy_scope_pending_now(), 0);       /* a failure to log */
    table_proxy_scope_leave();
    assert_int_equal(table_proxy_scope_pending(s), 0);
    assert_int_equal(table_lookup(t, "a", &v), TABLE_TEMPFAIL); /* sync: no service */
    table_proxy_scope_free(s);
    table_close(t);
    buf_free(&v);
}

static void test_scope_connection_loss_is_tempfail(void **state)
{
    struct fake *f = *state;
    struct table *t = open_remote();
    struct table_proxy_scope *s = table_proxy_scope_new();
    buf_t v = BUF_INIT;

    f->silent = 1;
    table_proxy_scope_enter(s);
    assert_int_equal(table_lookup(t, "a", &v), TABLE_TEMPFAIL);
    table_proxy_scope_leave();
    assert_int_equal(table_proxy_scope_wait(s, f->base, on_done, f), 0);
    while (f->requests == 0)
        event_base_loop(f->base, EVLOOP_ONCE);
    bufferevent_free(f->bev); /* the service dies with the request out */
    f->bev = NULL;
    event_base_dispatch(f->base);
    assert_int_equal(f->done_calls, 1);
    table_proxy_scope_enter(s);
    assert_int_equal(table_lookup(t, "a", &v), TABLE_TEMPFAIL);
    table_proxy_scope_leave();
    assert_int_equal(table_proxy_scope_pending(s), 0);
    table_proxy_scope_free(s);
    table_close(t);
    buf_free(&v);
}

static void test_direct_when_not_default(void **state)
{
    buf_t err = BUF_INIT, v = BUF_INIT;
    struct table *t;

    table_proxy_default(0);
    t = table_open("proxy:inline:{k=v}", 0, &err);
    assert_non_null(t);
    assert_false(table_is_remote(t));
    assert_int_equal(table_lookup(t, "K", &v), TABLE_FOUND);
    assert_string_equal(buf_cstr(&v), "v");
    table_close(t);
    assert_null(table_open("proxy:proxy:inline:{k=v}", 0, &err));
    assert_null(table_open("proxy:nosuch:x", 0, &err));
    buf_free(&err);
    buf_free(&v);
}

/* a service whose accept backlog is full: the synchronous client's connect
 * gives up after its timeout instead of hanging in connect(2) */
static void test_connect_to_a_full_backlog_times_out(void **state)
{
    char dir[] = "/tmp/test_table_proxy_bl.XXXXXX", path[64];
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int lfd, fds[64], n = 0, fd;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/s", dir);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(listen(lfd, 0), 0); /* never accepted */
    while (n < 64 && (fds[n] = unix_connect(path, 1)) >= 0)
        n++;
    assert_true(n < 64 && errno == EAGAIN);
    time_t start = time(NULL);
    fd = unix_connect_timeout(path, 1);
    assert_int_equal(fd, -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(time(NULL) - start <= 3);
    close(lfd);
    while (n-- > 0)
        close(fds[n]);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0); /* a listener with room: connected, blocking */
    unlink(path);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    fd = unix_connect_timeout(path, 1);
    assert_true(fd >= 0);
    assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    close(fd);
    close(lfd);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_round_trip),
        cmocka_unit_test(test_request_malformed_is_refused),
        cmocka_unit_test(test_reply_round_trip_and_refusals),
        cmocka_unit_test(test_value_check_refuses_control_bytes_and_size),
        cmocka_unit_test(test_connect_to_a_full_backlog_times_out),
        cmocka_unit_test(test_reply_with_a_bad_value_is_a_tempfail_not_malformed),
        cmocka_unit_test_setup_teardown(test_scope_bad_value_fails_only_its_request, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(test_scope_asks_waits_and_answers, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(test_scope_free_cancels_the_wait, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(test_scope_service_down_is_tempfail, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(test_scope_connection_loss_is_tempfail, fake_setup,
                                        fake_teardown),
        cmocka_unit_test(test_direct_when_not_default),
    };
    int rc;

    test_base = event_base_new();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    event_base_free(test_base);
    return rc;
}
