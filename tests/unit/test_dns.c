/*
 * test_dns - lib/dns against a real dnsmasq started on a free loopback port,
 * and against a UDP socket that never answers.
 */
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "buf.h"
#include "dns.h"
#include "dnsmasq_fixture.h"

static struct dnsmasq_fixture fx;

static int group_setup(void **state)
{
    static const char *const records[] = {"--local=/test/",
                                          "--mx-host=mx.test,mx1.mx.test,20",
                                          "--mx-host=mx.test,mx2.mx.test,10",
                                          "--mx-host=mx.test,mx3.mx.test,30",
                                          "--host-record=mx1.mx.test,127.0.0.11",
                                          "--host-record=mx2.mx.test,127.0.0.12,::1",
                                          "--host-record=mx3.mx.test,127.0.0.13",
                                          "--host-record=plain.test,127.0.0.20",
                                          "--host-record=brk.test,127.0.0.21",
                                          "--mx-host=brk.test,mx1.mx.test,10",
                                          NULL};

    return dnsmasq_fixture_start(&fx, records);
}

static int group_teardown(void **state)
{
    dnsmasq_fixture_stop(&fx);
    return 0;
}

/* one resolution, run to completion on a fresh loop */
struct run {
    struct event_base *base;
    struct dns_result *res;
    int calls;
};

static void on_result(struct dns_result *res, void *arg)
{
    struct run *r = arg;

    r->res = res;
    r->calls++;
    event_base_loopbreak(r->base);
}

/* resolve - resolve name against server, return the result (caller frees) */
static struct dns_result *resolve_via(int port, long long timeout, const char *name, int use_mx,
                                      double *elapsed)
{
    struct run r = {0};
    char server[64];
    char *servers[2] = {server, NULL};
    buf_t err = BUF_INIT;
    struct dns_ctx *ctx;
    struct timeval guard = {20, 0};
    struct timespec t0, t1;

    snprintf(server, sizeof(server), "127.0.0.1:%d", port);
    r.base = event_base_new();
    ctx = dns_create(r.base, servers, timeout, &err);
    assert_non_null(ctx);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dns_resolve_nexthop(ctx, name, use_mx, 25, on_result, &r);
    assert_int_equal(r.calls, 0); /* never called synchronously */
    event_base_loopexit(r.base, &guard);
    event_base_dispatch(r.base);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (elapsed)
        *elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_int_equal(r.calls, 1);
    dns_free(ctx);
    event_base_free(r.base);
    buf_free(&err);
    return r.res;
}

static struct dns_result *resolve(const char *name, int use_mx)
{
    return resolve_via(fx.port, 2, name, use_mx, NULL);
}

/* host_addr - the printable address of result host i */
static const char *host_addr(const struct dns_result *res, size_t i, char *out, size_t outlen)
{
    const struct sockaddr *sa = (const struct sockaddr *)&res->hosts[i].addr;

    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outlen);
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)outlen);
    return out;
}

static int host_port(const struct dns_result *res, size_t i)
{
    const struct sockaddr *sa = (const struct sockaddr *)&res->hosts[i].addr;

    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

static void test_mx_hosts_sorted_by_preference(void **state)
{
    struct dns_result *res = resolve("mx.test", 1);
    char a[64];

    assert_int_equal(res->status, DNS_OK);
    assert_int_equal(res->count, 4);
    assert_string_equal(res->hosts[0].hostname, "mx2.mx.test");
    assert_int_equal(res->hosts[0].preference, 10);
    assert_string_equal(host_addr(res, 0, a, sizeof(a)), "127.0.0.12");
    assert_string_equal(res->hosts[1].hostname, "mx2.mx.test");
    assert_string_equal(host_addr(res, 1, a, sizeof(a)), "::1");
    assert_string_equal(res->hosts[2].hostname, "mx1.mx.test");
    assert_int_equal(res->hosts[2].preference, 20);
    assert_string_equal(host_addr(res, 2, a, sizeof(a)), "127.0.0.11");
    assert_string_equal(res->hosts[3].hostname, "mx3.mx.test");
    assert_string_equal(host_addr(res, 3, a, sizeof(a)), "127.0.0.13");
    assert_int_equal(host_port(res, 3), 25);
    dns_result_free(res);
}

static void test_name_without_mx_uses_its_address(void **state)
{
    struct dns_result *res = resolve("plain.test", 1);
    char a[64];

    assert_int_equal(res->status, DNS_OK);
    assert_int_equal(res->count, 1);
    assert_string_equal(res->hosts[0].hostname, "plain.test");
    assert_int_equal(res->hosts[0].preference, 0);
    assert_string_equal(host_addr(res, 0, a, sizeof(a)), "127.0.0.20");
    dns_result_free(res);
}

static void test_nxdomain_is_notfound(void **state)
{
    struct dns_result *res = resolve("nosuch.test", 1);

    assert_int_equal(res->status, DNS_NOTFOUND);
    assert_int_equal(res->count, 0);
    assert_string_equal(res->reason, "Host or domain name not found. Name service error for "
                                     "name=nosuch.test type=MX: Host not found");
    dns_result_free(res);
}

static void test_bracketed_host_skips_mx(void **state)
{
    /* brk.test has an MX pointing at mx1 (127.0.0.11), but [brk.test] is itself */
    struct dns_result *res = resolve("brk.test", 0);
    char a[64];

    assert_int_equal(res->status, DNS_OK);
    assert_int_equal(res->count, 1);
    assert_string_equal(res->hosts[0].hostname, "brk.test");
    assert_string_equal(host_addr(res, 0, a, sizeof(a)), "127.0.0.21");
    dns_result_free(res);

    res = resolve("brk.test", 1);
    assert_int_equal(res->status, DNS_OK);
    assert_string_equal(res->hosts[0].hostname, "mx1.mx.test");
    dns_result_free(res);
}

static void test_bracketed_unknown_host_is_notfound(void **state)
{
    struct dns_result *res = resolve("nosuch.test", 0);

    assert_int_equal(res->status, DNS_NOTFOUND);
    assert_non_null(strstr(res->reason, "name=nosuch.test type=A"));
    dns_result_free(res);
}

static void test_ip_literal_needs_no_dns(void **state)
{
    /* the silent server would time out if DNS were asked */
    double elapsed;
    struct dns_result *res = resolve_via(fx.silent_port, 5, "127.0.0.9", 1, &elapsed);
    char a[64];

    assert_int_equal(res->status, DNS_OK);
    assert_int_equal(res->count, 1);
    assert_string_equal(host_addr(res, 0, a, sizeof(a)), "127.0.0.9");
    assert_true(elapsed < 1.0);
    dns_result_free(res);

    res = resolve_via(fx.silent_port, 5, "::1", 0, &elapsed);
    assert_int_equal(res->status, DNS_OK);
    assert_string_equal(host_addr(res, 0, a, sizeof(a)), "::1");
    dns_result_free(res);
}

static void test_silent_server_is_tempfail_within_timeout(void **state)
{
    double elapsed;
    struct dns_result *res = resolve_via(fx.silent_port, 1, "mx.test", 1, &elapsed);

    assert_int_equal(res->status, DNS_TEMPFAIL);
    assert_int_equal(res->count, 0);
    assert_non_null(strstr(res->reason, "type=MX: Host not found, try again"));
    /* two tries, the second with twice the timeout */
    assert_true(elapsed >= 0.9);
    assert_true(elapsed < 5.0);
    dns_result_free(res);
}

static void test_bad_server_list_is_an_error(void **state)
{
    struct event_base *base = event_base_new();
    char *servers[] = {"not an address", NULL};
    buf_t err = BUF_INIT;

    assert_null(dns_create(base, servers, 5, &err));
    assert_non_null(strstr(buf_cstr(&err), "dns_servers"));
    buf_free(&err);
    event_base_free(base);
}

static void test_free_with_pending_lookup_calls_nothing(void **state)
{
    struct run r = {0};
    char server[64];
    char *servers[2] = {server, NULL};
    buf_t err = BUF_INIT;
    struct dns_ctx *ctx;

    snprintf(server, sizeof(server), "127.0.0.1:%d", fx.silent_port);
    r.base = event_base_new();
    ctx = dns_create(r.base, servers, 5, &err);
    assert_non_null(ctx);
    dns_resolve_nexthop(ctx, "mx.test", 1, 25, on_result, &r);
    dns_resolve_nexthop(ctx, "127.0.0.1", 1, 25, on_result, &r);
    event_base_loop(r.base, EVLOOP_NONBLOCK);
    assert_int_equal(r.calls, 1); /* only the literal */
    dns_result_free(r.res);
    dns_free(ctx);
    assert_int_equal(r.calls, 1);
    event_base_free(r.base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mx_hosts_sorted_by_preference),
        cmocka_unit_test(test_name_without_mx_uses_its_address),
        cmocka_unit_test(test_nxdomain_is_notfound),
        cmocka_unit_test(test_bracketed_host_skips_mx),
        cmocka_unit_test(test_bracketed_unknown_host_is_notfound),
        cmocka_unit_test(test_ip_literal_needs_no_dns),
        cmocka_unit_test(test_silent_server_is_tempfail_within_timeout),
        cmocka_unit_test(test_bad_server_list_is_an_error),
        cmocka_unit_test(test_free_with_pending_lookup_calls_nothing),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
