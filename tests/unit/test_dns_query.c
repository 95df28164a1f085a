/*
 * test_dns_query - the policy lookups of lib/dns (dns_query,
 * dns_domain_check, dns_client_name, dns_cancel) against a real dnsmasq on a
 * free loopback port, a UDP socket that never answers and a port where
 * nothing listens.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <cmocka.h>

#include "buf.h"
#include "dns.h"
#include "dnsmasq_fixture.h"

static struct dnsmasq_fixture fx;

/* five character-strings of 250 bytes: one TXT record longer than DNS_MAX_TXT */
static char long_txt[64 + 5 * 251];

/* what a test asks */
enum question_kind { ASK_QUERY, ASK_DOMAIN, ASK_CLIENT };

struct question {
    enum question_kind kind;
    const char *name; /* the name, domain or client address */
    enum dns_qtype type;
};

/* one lookup run to completion on a fresh loop */
struct run {
    struct event_base *base;
    struct dns_answer *ans;
    struct dns_client_name *cn;
    int calls;
    double elapsed;
};

static void on_answer(struct dns_answer *ans, void *arg)
{
    struct run *r = arg;

    r->ans = ans;
    r->calls++;
    event_base_loopbreak(r->base);
}

static void on_client_name(struct dns_client_name *cn, void *arg)
{
    struct run *r = arg;

    r->cn = cn;
    r->calls++;
    event_base_loopbreak(r->base);
}

/* new_ctx - a resolver on base asking 127.0.0.1:port */
static struct dns_ctx *new_ctx(struct event_base *base, int port, long long timeout)
{
    char server[64];
    char *servers[2] = {server, NULL};
    buf_t err = BUF_INIT;
    struct dns_ctx *ctx;

    snprintf(server, sizeof(server), "127.0.0.1:%d", port);
    ctx = dns_create(base, servers, timeout, &err);
    assert_non_null(ctx);
    buf_free(&err);
    return ctx;
}

/* client_addr - the sockaddr of a printable address */
static const struct sockaddr *client_addr(const char *text, struct sockaddr_storage *ss)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
    } else {
        assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
        sin6->sin6_family = AF_INET6;
    }
    return (const struct sockaddr *)ss;
}

/* start - start the lookup of q */
static struct dns_pending *start(struct dns_ctx *ctx, const struct question *q, struct run *r)
{
    struct sockaddr_storage ss;

    switch (q->kind) {
    case ASK_QUERY:
        return dns_query(ctx, q->name, q->type, on_answer, r);
    case ASK_DOMAIN:
        return dns_domain_check(ctx, q->name, on_answer, r);
    case ASK_CLIENT:
        return dns_client_name(ctx, client_addr(q->name, &ss), on_client_name, r);
    }
    return NULL;
}

/* run_via - ask q of the server on port, wait for the one callback */
static void run_via(int port, long long timeout, const struct question *q, struct run *r)
{
    struct timeval guard = {20, 0};
    struct timespec t0, t1;
    struct dns_ctx *ctx;

    memset(r, 0, sizeof(*r));
    r->base = event_base_new();
    ctx = new_ctx(r->base, port, timeout);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_non_null(start(ctx, q, r));
    assert_int_equal(r->calls, 0); /* never called from inside the call */
    event_base_loopexit(r->base, &guard);
    event_base_dispatch(r->base);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r->elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_int_equal(r->calls, 1);
    dns_free(ctx);
    event_base_free(r->base);
}

static struct dns_answer *query(const char *name, enum dns_qtype type)
{
    struct question q = {ASK_QUERY, name, type};
    struct run r;

    run_via(fx.port, 2, &q, &r);
    return r.ans;
}

static struct dns_answer *domain_check(const char *domain)
{
    struct question q = {ASK_DOMAIN, domain, DNS_QMX};
    struct run r;

    run_via(fx.port, 2, &q, &r);
    return r.ans;
}

static struct dns_client_name *client_name(const char *addr)
{
    struct question q = {ASK_CLIENT, addr, DNS_QPTR};
    struct run r;

    run_via(fx.port, 2, &q, &r);
    return r.cn;
}

/* has - 1 when the answer holds text */
static int has(const struct dns_answer *ans, const char *text)
{
    for (size_t i = 0; i < ans->count; i++) {
        if (strcmp(ans->v[i], text) == 0)
            return 1;
    }
    return 0;
}

static void test_query_a_found(void **state)
{
    struct dns_answer *ans = query("a.test", DNS_QA);

    assert_int_equal(ans->status, DNS_OK);
    assert_int_equal(ans->count, 1);
    assert_string_equal(ans->v[0], "127.0.0.2");
    assert_null(ans->v[1]);
    assert_string_equal(ans->reason, "");
    dns_answer_free(ans);
}

static void test_query_nxdomain_is_notfound(void **state)
{
    struct dns_answer *ans = query("nosuch.test", DNS_QA);

    assert_int_equal(ans->status, DNS_NOTFOUND);
    assert_int_equal(ans->count, 0);
    assert_string_equal(ans->reason, "Host or domain name not found. Name service error for "
                                     "name=nosuch.test type=A: Host not found");
    dns_answer_free(ans);
}

static void test_query_nodata_is_notfound(void **state)
{
    struct dns_answer *ans = query("aonly.test", DNS_QTXT);

    assert_int_equal(ans->status, DNS_NOTFOUND);
    assert_int_equal(ans->count, 0);
    assert_non_null(strstr(ans->reason, "type=TXT: Host found but no data record"));
    dns_answer_free(ans);
}

static void test_query_aaaa_as_text(void **state)
{
    struct dns_answer *ans = query("v6only.test", DNS_QAAAA);

    assert_int_equal(ans->status, DNS_OK);
    assert_int_equal(ans->count, 1);
    assert_string_equal(ans->v[0], "fd00::9");
    dns_answer_free(ans);
}

static void test_query_txt_of_a_blocklist_entry(void **state)
{
    struct dns_answer *ans = query("5.0.0.127.bl.test", DNS_QTXT);

    assert_int_equal(ans->status, DNS_OK);
    assert_int_equal(ans->count, 1);
    assert_string_equal(ans->v[0], "listed");
    dns_answer_free(ans);
}

static void test_query_txt_joins_the_strings_of_each_record(void **state)
{
    struct dns_answer *ans = query("multi.test", DNS_QTXT);

    assert_int_equal(ans->status, DNS_OK);
    assert_int_equal(ans->count, 2);
    assert_true(has(ans, "part one part two"));
    assert_true(has(ans, "other"));
    dns_answer_free(ans);
}

static void test_query_txt_record_is_bounded(void **state)
{
    struct dns_answer *ans = query("long.test", DNS_QTXT);

    assert_int_equal(ans->status, DNS_OK);
    assert_int_equal(ans->count, 1);
    assert_int_equal(strlen(ans->v[0]), DNS_MAX_TXT);
    assert_int_equal(strspn(ans->v[0], "x"), DNS_MAX_TXT);
    dns_answer_free(ans);
}

static void test_query_ptr_lists_every_name(void **state)
{
    struct dns_answer *ans = query("7.0.0.127.in-addr.arpa", DNS_QPTR);

    assert_int_equal(ans->status, DNS_OK);
    assert_int_equal(ans->count, 2);
    assert_true(has(ans, "nowhere.test"));
    assert_true(has(ans, "second.test"));
    dns_answer_free(ans);
}

static void test_query_mx_sorted_by_preference(void **state)
{
    struct dns_answer *ans = query("mx.test", DNS_QMX);

    assert_int_equal(ans->status, DNS_OK);
    assert_int_equal(ans->count, 3);
    assert_string_equal(ans->v[0], "mail1.mx.test");
    assert_string_equal(ans->v[1], "mail2.mx.test");
    assert_string_equal(ans->v[2], "mail3.mx.test");
    dns_answer_free(ans);
}

static void test_query_overlong_name_is_notfound_without_dns(void **state)
{
    char name[300];
    struct question q = {ASK_QUERY, name, DNS_QA};
    struct run r;

    memset(name, 'a', 254);
    name[254] = 0;
    run_via(fx.silent_port, 5, &q, &r);
    assert_int_equal(r.ans->status, DNS_NOTFOUND);
    assert_true(r.elapsed < 1.0);
    dns_answer_free(r.ans);
}

static void test_domain_check_ok_via_mx(void **state)
{
    struct dns_answer *ans = domain_check("mx.test");

    assert_int_equal(ans->status, DNS_OK);
    assert_string_equal(ans->v[0], "mail1.mx.test");
    dns_answer_free(ans);
}

static void test_domain_check_null_mx_exists(void **state)
{
    struct dns_answer *ans = domain_check("nullmx.test");

    assert_int_equal(ans->status, DNS_OK);
    assert_int_equal(ans->count, 1);
    assert_string_equal(ans->v[0], ".");
    dns_answer_free(ans);
}

static void test_domain_check_ok_via_a_only(void **state)
{
    struct dns_answer *ans = domain_check("aonly.test");

    assert_int_equal(ans->status, DNS_OK);
    assert_int_equal(ans->count, 1);
    assert_string_equal(ans->v[0], "127.0.0.8");
    dns_answer_free(ans);
}

static void test_domain_check_ok_via_aaaa_only(void **state)
{
    struct dns_answer *ans = domain_check("v6only.test");

    assert_int_equal(ans->status, DNS_OK);
    assert_string_equal(ans->v[0], "fd00::9");
    dns_answer_free(ans);
}

static void test_domain_check_nxdomain_is_notfound(void **state)
{
    struct dns_answer *ans = domain_check("nosuch.test");

    assert_int_equal(ans->status, DNS_NOTFOUND);
    assert_int_equal(ans->count, 0);
    assert_non_null(strstr(ans->reason, "name=nosuch.test type=MX: Host not found"));
    dns_answer_free(ans);
}

static void test_domain_check_ip_literal_needs_no_dns(void **state)
{
    struct question q = {ASK_DOMAIN, "[192.0.2.1]", DNS_QMX};
    struct run r;

    run_via(fx.silent_port, 5, &q, &r);
    assert_int_equal(r.ans->status, DNS_OK);
    assert_string_equal(r.ans->v[0], "192.0.2.1");
    assert_true(r.elapsed < 1.0);
    dns_answer_free(r.ans);

    q.name = "[IPv6:2001:db8::1]";
    run_via(fx.silent_port, 5, &q, &r);
    assert_int_equal(r.ans->status, DNS_OK);
    assert_string_equal(r.ans->v[0], "2001:db8::1");
    dns_answer_free(r.ans);

    q.name = "[300.1.1.1]";
    run_via(fx.silent_port, 5, &q, &r);
    assert_int_equal(r.ans->status, DNS_NOTFOUND);
    assert_true(r.elapsed < 1.0);
    dns_answer_free(r.ans);
}

static void test_client_name_verified(void **state)
{
    struct dns_client_name *cn = client_name("127.0.0.5");

    assert_int_equal(cn->status, DNS_OK);
    assert_string_equal(cn->name, "host.dialup.test");
    assert_string_equal(cn->reverse_name, "host.dialup.test");
    assert_int_equal(cn->reverse_status, DNS_OK);
    dns_client_name_free(cn);
}

static void test_client_name_is_lower_case(void **state)
{
    struct dns_client_name *cn = client_name("127.0.0.9");

    assert_int_equal(cn->status, DNS_OK);
    assert_string_equal(cn->name, "mixed.case.test");
    dns_client_name_free(cn);
}

static void test_client_name_not_verified_when_ptr_name_has_no_address(void **state)
{
    struct dns_client_name *cn = client_name("127.0.0.6");

    assert_int_equal(cn->status, DNS_NOTFOUND);
    assert_string_equal(cn->name, "unknown");
    assert_string_equal(cn->reverse_name, "liar.test");
    assert_int_equal(cn->reverse_status, DNS_OK);
    dns_client_name_free(cn);
}

static void test_client_name_any_ptr_name_may_confirm(void **state)
{
    struct dns_client_name *cn = client_name("127.0.0.7");

    assert_int_equal(cn->status, DNS_OK);
    assert_string_equal(cn->name, "second.test");
    /* the first PTR name in the server's order */
    assert_true(strcmp(cn->reverse_name, "second.test") == 0 ||
                strcmp(cn->reverse_name, "nowhere.test") == 0);
    dns_client_name_free(cn);
}

static void test_client_name_without_ptr_is_notfound(void **state)
{
    struct dns_client_name *cn = client_name("127.0.0.99");

    assert_int_equal(cn->status, DNS_NOTFOUND);
    assert_string_equal(cn->name, "unknown");
    assert_string_equal(cn->reverse_name, "unknown");
    assert_int_equal(cn->reverse_status, DNS_NOTFOUND);
    dns_client_name_free(cn);
}

static void test_client_name_ipv6(void **state)
{
    struct dns_client_name *cn = client_name("fd00::5");

    assert_int_equal(cn->status, DNS_OK);
    assert_string_equal(cn->name, "v6host.test");
    dns_client_name_free(cn);
}

static void test_client_name_ipv4_mapped_is_ipv4(void **state)
{
    struct dns_client_name *cn = client_name("::ffff:127.0.0.5");

    assert_int_equal(cn->status, DNS_OK);
    assert_string_equal(cn->name, "host.dialup.test");
    dns_client_name_free(cn);
}

/* assert_tempfail_via - every kind of lookup is DNS_TEMPFAIL against port */
static void assert_tempfail_via(int port)
{
    struct question q = {ASK_QUERY, "a.test", DNS_QA};
    struct run r;

    run_via(port, 1, &q, &r);
    assert_int_equal(r.ans->status, DNS_TEMPFAIL);
    assert_non_null(strstr(r.ans->reason, "type=A: Host not found, try again"));
    assert_true(r.elapsed < 5.0);
    dns_answer_free(r.ans);

    q.kind = ASK_DOMAIN;
    run_via(port, 1, &q, &r);
    assert_int_equal(r.ans->status, DNS_TEMPFAIL);
    dns_answer_free(r.ans);

    q.kind = ASK_CLIENT;
    q.name = "127.0.0.5";
    run_via(port, 1, &q, &r);
    assert_int_equal(r.cn->status, DNS_TEMPFAIL);
    assert_int_equal(r.cn->reverse_status, DNS_TEMPFAIL);
    assert_string_equal(r.cn->name, "unknown");
    assert_string_equal(r.cn->reverse_name, "unknown");
    dns_client_name_free(r.cn);
}

static void test_silent_server_is_tempfail(void **state)
{
    assert_tempfail_via(fx.silent_port);
}

static void test_refusing_port_is_tempfail(void **state)
{
    int port = dnsmasq_fixture_free_port();

    assert_true(port > 0);
    assert_tempfail_via(port);
}

/* run_for - run base for ms milliseconds */
static void run_for(struct event_base *base, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static void test_cancel_before_callback(void **state)
{
    struct run r = {0};
    struct dns_ctx *ctx;
    struct sockaddr_storage ss;

    r.base = event_base_new();
    ctx = new_ctx(r.base, fx.port, 2);
    dns_cancel(dns_query(ctx, "a.test", DNS_QA, on_answer, &r)); /* query in flight */
    dns_cancel(dns_domain_check(ctx, "mx.test", on_answer, &r)); /* first of three */
    dns_cancel(dns_client_name(ctx, client_addr("127.0.0.5", &ss), on_client_name, &r));
    dns_cancel(dns_domain_check(ctx, "[192.0.2.1]", on_answer, &r)); /* callback scheduled */
    dns_cancel(dns_query(ctx, "", DNS_QA, on_answer, &r));           /* callback scheduled */
    dns_cancel(NULL);
    run_for(r.base, 500); /* the answers come and are dropped */
    assert_int_equal(r.calls, 0);
    dns_free(ctx);
    event_base_free(r.base);
}

static void test_free_with_pending_lookups_calls_nothing(void **state)
{
    struct run r = {0};
    struct dns_ctx *ctx;
    struct sockaddr_storage ss;

    r.base = event_base_new();
    ctx = new_ctx(r.base, fx.silent_port, 5);
    dns_query(ctx, "5.0.0.127.bl.test", DNS_QTXT, on_answer, &r);
    dns_domain_check(ctx, "mx.test", on_answer, &r);
    dns_client_name(ctx, client_addr("fd00::5", &ss), on_client_name, &r);
    dns_cancel(dns_query(ctx, "a.test", DNS_QA, on_answer, &r)); /* cancelled, still in flight */
    dns_domain_check(ctx, "[192.0.2.1]", on_answer, &r);         /* callback scheduled */
    event_base_loop(r.base, EVLOOP_NONBLOCK);
    assert_int_equal(r.calls, 1); /* only the literal */
    dns_answer_free(r.ans);
    dns_domain_check(ctx, "[192.0.2.2]", on_answer, &r); /* scheduled, never run */
    dns_free(ctx);
    run_for(r.base, 100);
    assert_int_equal(r.calls, 1);
    event_base_free(r.base);
}

/* start_dnsmasq - the zone of these tests */
static int start_dnsmasq(void)
{
    int n = snprintf(long_txt, sizeof(long_txt), "--txt-record=long.test");
    const char *records[] = {"--local=/test/",
                             "--local=/127.in-addr.arpa/",
                             "--local=/ip6.arpa/",
                             "--address=/a.test/127.0.0.2",
                             "--host-record=aonly.test,127.0.0.8",
                             "--host-record=v6only.test,fd00::9",
                             "--host-record=host.dialup.test,127.0.0.5",
                             "--ptr-record=6.0.0.127.in-addr.arpa,liar.test",
                             "--ptr-record=7.0.0.127.in-addr.arpa,nowhere.test",
                             "--ptr-record=7.0.0.127.in-addr.arpa,second.test",
                             "--host-record=second.test,127.0.0.7",
                             "--host-record=Mixed.Case.test,127.0.0.9",
                             "--host-record=v6host.test,fd00::5",
                             "--txt-record=5.0.0.127.bl.test,listed",
                             "--txt-record=multi.test,part one ,part two",
                             "--txt-record=multi.test,other",
                             long_txt,
                             "--mx-host=mx.test,mail2.mx.test,20",
                             "--mx-host=mx.test,mail3.mx.test,30",
                             "--mx-host=mx.test,mail1.mx.test,10",
                             "--mx-host=nullmx.test,.,0",
                             NULL};

    for (int i = 0; i < 5; i++) {
        long_txt[n++] = ',';
        memset(long_txt + n, 'x', 250);
        n += 250;
    }
    long_txt[n] = 0;
    return dnsmasq_fixture_start(&fx, records);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_a_found),
        cmocka_unit_test(test_query_nxdomain_is_notfound),
        cmocka_unit_test(test_query_nodata_is_notfound),
        cmocka_unit_test(test_query_aaaa_as_text),
        cmocka_unit_test(test_query_txt_of_a_blocklist_entry),
        cmocka_unit_test(test_query_txt_joins_the_strings_of_each_record),
        cmocka_unit_test(test_query_txt_record_is_bounded),
        cmocka_unit_test(test_query_ptr_lists_every_name),
        cmocka_unit_test(test_query_mx_sorted_by_preference),
        cmocka_unit_test(test_query_overlong_name_is_notfound_without_dns),
        cmocka_unit_test(test_domain_check_ok_via_mx),
        cmocka_unit_test(test_domain_check_null_mx_exists),
        cmocka_unit_test(test_domain_check_ok_via_a_only),
        cmocka_unit_test(test_domain_check_ok_via_aaaa_only),
        cmocka_unit_test(test_domain_check_nxdomain_is_notfound),
        cmocka_unit_test(test_domain_check_ip_literal_needs_no_dns),
        cmocka_unit_test(test_client_name_verified),
        cmocka_unit_test(test_client_name_is_lower_case),
        cmocka_unit_test(test_client_name_not_verified_when_ptr_name_has_no_address),
        cmocka_unit_test(test_client_name_any_ptr_name_may_confirm),
        cmocka_unit_test(test_client_name_without_ptr_is_notfound),
        cmocka_unit_test(test_client_name_ipv6),
        cmocka_unit_test(test_client_name_ipv4_mapped_is_ipv4),
        cmocka_unit_test(test_silent_server_is_tempfail),
        cmocka_unit_test(test_refusing_port_is_tempfail),
        cmocka_unit_test(test_cancel_before_callback),
        cmocka_unit_test(test_free_with_pending_lookups_calls_nothing),
    };
    int failed;

    if (start_dnsmasq() < 0) {
        dnsmasq_fixture_stop(&fx);
        fprintf(stderr, "test_dns_query: FAIL: cannot start dnsmasq\n");
        return 1; /* a missing DNS server fails the test, never skips it */
    }
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    dnsmasq_fixture_stop(&fx);
    return failed;
}
