/*
 * test_dns_dnssec - the AD bit (dns_answer.secure) and TLSA records of lib/dns
 * against a real validating unbound (tests/dnssec/make_zone.sh through
 * dnssec_fixture), the authoritative nsd behind it and a dnsmasq, none of
 * which validate.
 */
#include <event2/event.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "dns.h"
#include "dnsmasq_fixture.h"
#include "dnssec_fixture.h"

static struct dnssec_fixture dnssec;
static struct dnsmasq_fixture dnsmasq;

/* one lookup run to completion on a fresh loop: dns_query of type for name,
 * or with nexthop dns_resolve_nexthop of name (use_mx) */
struct run {
    const char *name;
    enum dns_qtype type;
    int nexthop, use_mx;
    struct event_base *base;
    struct dns_answer *ans;
    struct dns_result *res;
};

static void on_answer(struct dns_answer *ans, void *arg)
{
    struct run *r = arg;

    r->ans = ans;
    event_base_loopbreak(r->base);
}

static void on_nexthop(struct dns_result *res, void *arg)
{
    struct run *r = arg;

    r->res = res;
    event_base_loopbreak(r->base);
}

/* run - r's lookup at 127.0.0.1:port until its callback */
static void run(int port, struct run *r)
{
    char server[64];
    char *servers[2] = {server, NULL};
    buf_t err = BUF_INIT;
    struct dns_ctx *ctx;

    r->base = event_base_new();
    snprintf(server, sizeof(server), "127.0.0.1:%d", port);
    ctx = dns_create(r->base, servers, 2, &err);
    assert_non_null(ctx);
    if (r->nexthop)
        dns_resolve_nexthop(ctx, r->name, r->use_mx, 25, on_nexthop, r);
    else
        dns_query(ctx, r->name, r->type, on_answer, r);
    event_base_dispatch(r->base);
    dns_free(ctx);
    event_base_free(r->base);
    buf_free(&err);
}

/* ask - dns_query of type for name at 127.0.0.1:port; the answer */
static struct dns_answer *ask(int port, const char *name, enum dns_qtype type)
{
    struct run r = {.name = name, .type = type};

    run(port, &r);
    assert_non_null(r.ans);
    return r.ans;
}

/* expect - ask and check status, the first record (NULL: none) and secure */
static void expect(int port, const char *name, enum dns_qtype type, enum dns_status status,
                   const char *first, int secure)
{
    struct dns_answer *ans = ask(port, name, type);

    assert_int_equal(ans->status, status);
    if (first != NULL)
        assert_string_equal(ans->v[0], first);
    else
        assert_int_equal(ans->count, 0);
    assert_int_equal(ans->secure, secure);
    dns_answer_free(ans);
}

static void test_signed_a_via_validating_resolver_is_secure(void **state)
{
    struct dns_answer *ans = ask(dnssec.resolver_port, "mx.dane.test", DNS_QA);

    assert_int_equal(ans->status, DNS_OK);
    assert_int_equal(ans->count, 1);
    assert_string_equal(ans->v[0], "127.0.0.1");
    assert_int_equal(ans->secure, 1);
    dns_answer_free(ans);
}

static void test_signed_mx_via_validating_resolver_is_secure(void **state)
{
    expect(dnssec.resolver_port, "dane.test", DNS_QMX, DNS_OK, "mx.dane.test", 1);
}

static void test_tlsa_record_parsed_exactly(void **state)
{
    expect(dnssec.resolver_port, "_25._tcp.mx.dane.test", DNS_QTLSA, DNS_OK, DNSSEC_FIXTURE_TLSA,
           1);
}

static void test_tlsa_nodata_is_notfound(void **state)
{
    expect(dnssec.resolver_port, "mx.dane.test", DNS_QTLSA, DNS_NOTFOUND, NULL, 0);
}

static void test_signed_nxdomain_is_notfound(void **state)
{
    expect(dnssec.resolver_port, "nosuch.dane.test", DNS_QA, DNS_NOTFOUND, NULL, 0);
}

static void test_unsigned_zone_is_not_secure(void **state)
{
    expect(dnssec.resolver_port, "mx.plain.test", DNS_QA, DNS_OK, "127.0.0.1", 0);
}

static void test_unsigned_tlsa_is_not_secure(void **state)
{
    expect(dnssec.resolver_port, "_25._tcp.mx.plain.test", DNS_QTLSA, DNS_OK, DNSSEC_FIXTURE_TLSA,
           0);
}

static void test_bogus_zone_is_tempfail(void **state)
{
    expect(dnssec.resolver_port, "mx.bogus.test", DNS_QA, DNS_TEMPFAIL, NULL, 0);
}

static void test_bogus_tlsa_is_tempfail(void **state)
{
    expect(dnssec.resolver_port, "_25._tcp.mx.bogus.test", DNS_QTLSA, DNS_TEMPFAIL, NULL, 0);
}

static void test_authoritative_server_is_not_secure(void **state)
{
    expect(dnssec.auth_port, "mx.dane.test", DNS_QA, DNS_OK, "127.0.0.1", 0);
}

static void test_authoritative_tlsa_is_not_secure(void **state)
{
    struct dns_answer *ans = ask(dnssec.auth_port, "_25._tcp.mx.dane.test", DNS_QTLSA);

    assert_int_equal(ans->status, DNS_OK);
    assert_string_equal(ans->v[0], DNSSEC_FIXTURE_TLSA); /* the RRSIG beside it is skipped */
    assert_null(ans->v[1]);
    assert_int_equal(ans->secure, 0);
    dns_answer_free(ans);
}

static void test_dnsmasq_is_not_secure(void **state)
{
    expect(dnsmasq.port, "mx.dane.test", DNS_QA, DNS_OK, "127.0.0.1", 0);
}

static void test_tlsa_from_dnsmasq_as_text(void **state)
{
    struct dns_answer *ans = ask(dnsmasq.port, "_25._tcp.two.test", DNS_QTLSA);

    assert_int_equal(ans->status, DNS_OK);
    assert_int_equal(ans->count, 2);
    /* dnsmasq's order is its own */
    assert_true(strcmp(ans->v[0], "2 0 1 00ff") == 0 || strcmp(ans->v[1], "2 0 1 00ff") == 0);
    assert_true(strcmp(ans->v[0], "3 1 2 0a0b") == 0 || strcmp(ans->v[1], "3 1 2 0a0b") == 0);
    assert_int_equal(ans->secure, 0);
    dns_answer_free(ans);
}

static void test_tlsa_without_data_is_passed_on_for_dane_to_refuse(void **state)
{
    expect(dnsmasq.port, "_25._tcp.empty.test", DNS_QTLSA, DNS_OK, "3 1 1 ", 0);
}

static void test_tlsa_shorter_than_three_octets_is_tempfail(void **state)
{
    expect(dnsmasq.port, "_25._tcp.short.test", DNS_QTLSA, DNS_TEMPFAIL, NULL, 0);
}

/* resolve - dns_resolve_nexthop of name through the validating resolver */
static struct dns_result *resolve(const char *name, int use_mx)
{
    struct run r = {.name = name, .nexthop = 1, .use_mx = use_mx};

    run(dnssec.resolver_port, &r);
    assert_non_null(r.res);
    return r.res;
}

/* expect_nexthop - resolve name: DNS_OK, one host named host (127.0.0.1),
 * and the two DNSSEC flags */
static void expect_nexthop(const char *name, int use_mx, const char *host, int mx_secure,
                           int host_secure)
{
    struct dns_result *res = resolve(name, use_mx);

    assert_int_equal(res->status, DNS_OK);
    assert_int_equal(res->count, 1);
    assert_string_equal(res->hosts[0].hostname, host);
    assert_int_equal(res->mx_secure, mx_secure);
    assert_int_equal(res->hosts[0].secure, host_secure);
    dns_result_free(res);
}

static void test_nexthop_signed_mx_and_address_are_secure(void **state)
{
    expect_nexthop("dane.test", 1, "mx.dane.test", 1, 1);
}

static void test_nexthop_signed_mx_to_unsigned_host_is_secure_mx_only(void **state)
{
    expect_nexthop("other.dane.test", 1, "mx.plain.test", 1, 0);
}

static void test_nexthop_signed_name_without_mx_is_secure(void **state)
{
    expect_nexthop("nomx.dane.test", 1, "nomx.dane.test", 1, 1);
}

static void test_nexthop_bracketed_signed_host_is_secure(void **state)
{
    expect_nexthop("mx.dane.test", 0, "mx.dane.test", 1, 1);
}

static void test_nexthop_unsigned_zone_is_not_secure(void **state)
{
    expect_nexthop("plain.test", 1, "mx.plain.test", 0, 0);
}

static void test_nexthop_bracketed_unsigned_host_is_not_secure(void **state)
{
    expect_nexthop("mx.plain.test", 0, "mx.plain.test", 0, 0);
}

static void test_nexthop_ip_literal_is_not_secure(void **state)
{
    struct dns_result *res = resolve("127.0.0.1", 1);

    assert_int_equal(res->status, DNS_OK);
    assert_int_equal(res->count, 1);
    assert_int_equal(res->mx_secure, 0);
    assert_int_equal(res->hosts[0].secure, 0);
    dns_result_free(res);
}

static void test_nexthop_bogus_zone_is_tempfail(void **state)
{
    struct dns_result *res = resolve("bogus.test", 1);

    assert_int_equal(res->status, DNS_TEMPFAIL);
    assert_int_equal(res->count, 0);
    assert_int_equal(res->mx_secure, 0);
    dns_result_free(res);
}

static void test_nexthop_bracketed_bogus_host_is_tempfail(void **state)
{
    struct dns_result *res = resolve("mx.bogus.test", 0);

    assert_int_equal(res->status, DNS_TEMPFAIL);
    assert_int_equal(res->count, 0);
    dns_result_free(res);
}

int main(void)
{
    static const char *const records[] = {
        "--host-record=mx.dane.test,127.0.0.1",     "--dns-rr=_25._tcp.two.test,52,020001:00ff",
        "--dns-rr=_25._tcp.two.test,52,0301020a0b", "--dns-rr=_25._tcp.empty.test,52,030101",
        "--dns-rr=_25._tcp.short.test,52,0301",     NULL,
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signed_a_via_validating_resolver_is_secure),
        cmocka_unit_test(test_signed_mx_via_validating_resolver_is_secure),
        cmocka_unit_test(test_tlsa_record_parsed_exactly),
        cmocka_unit_test(test_tlsa_nodata_is_notfound),
        cmocka_unit_test(test_signed_nxdomain_is_notfound),
        cmocka_unit_test(test_unsigned_zone_is_not_secure),
        cmocka_unit_test(test_unsigned_tlsa_is_not_secure),
        cmocka_unit_test(test_bogus_zone_is_tempfail),
        cmocka_unit_test(test_bogus_tlsa_is_tempfail),
        cmocka_unit_test(test_authoritative_server_is_not_secure),
        cmocka_unit_test(test_authoritative_tlsa_is_not_secure),
        cmocka_unit_test(test_dnsmasq_is_not_secure),
        cmocka_unit_test(test_tlsa_from_dnsmasq_as_text),
        cmocka_unit_test(test_tlsa_without_data_is_passed_on_for_dane_to_refuse),
        cmocka_unit_test(test_tlsa_shorter_than_three_octets_is_tempfail),
        cmocka_unit_test(test_nexthop_signed_mx_and_address_are_secure),
        cmocka_unit_test(test_nexthop_signed_mx_to_unsigned_host_is_secure_mx_only),
        cmocka_unit_test(test_nexthop_signed_name_without_mx_is_secure),
        cmocka_unit_test(test_nexthop_bracketed_signed_host_is_secure),
        cmocka_unit_test(test_nexthop_unsigned_zone_is_not_secure),
        cmocka_unit_test(test_nexthop_bracketed_unsigned_host_is_not_secure),
        cmocka_unit_test(test_nexthop_ip_literal_is_not_secure),
        cmocka_unit_test(test_nexthop_bogus_zone_is_tempfail),
        cmocka_unit_test(test_nexthop_bracketed_bogus_host_is_tempfail),
    };
    int failed;

    if (dnssec_fixture_start(&dnssec) < 0 || dnsmasq_fixture_start(&dnsmasq, records) < 0) {
        dnssec_fixture_stop(&dnssec);
        dnsmasq_fixture_stop(&dnsmasq);
        fprintf(stderr, "test_dns_dnssec: FAIL: cannot start nsd/unbound/dnsmasq\n");
        return 1; /* a missing DNS server fails the test, never skips it */
    }
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    dnssec_fixture_stop(&dnssec);
    dnsmasq_fixture_stop(&dnsmasq);
    return failed;
}
