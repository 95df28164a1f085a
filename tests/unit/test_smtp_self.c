/*
 * test_smtp_self - unit tests for smtp/self.c (SPEC ROUTE-09): which
 * address and port is this host (listeners, wildcard listeners over the
 * interface list and loopback, proxy_interfaces), and the MX list cut:
 * backup MX, best MX, a primary without addresses, nothing of ours.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "dns.h"
#include "self.h"

/* sock_of - ip:port as a sockaddr */
static const struct sockaddr *sock_of(const char *ip, int port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((unsigned short)port);
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((unsigned short)port);
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    return (const struct sockaddr *)ss;
}

/* is_self - 1 when ip:port is this host for self */
static int is_self(const struct smtp_self *self, const char *ip, int port)
{
    struct sockaddr_storage ss;

    return smtp_self_is(self, sock_of(ip, port, &ss));
}

/* add_listener - one smtpd_listen item that must be accepted */
static void add_listener(struct smtp_self *self, const char *spec, const struct ifaddrs *ifa)
{
    buf_t err = BUF_INIT;

    if (smtp_self_add_listener(self, spec, ifa, &err) != 0)
        fail_msg("listener '%s' refused: %s", spec, buf_cstr(&err));
    buf_free(&err);
}

static void test_smtp_self_listener_address_and_port_both_count(void **state)
{
    struct smtp_self self;

    smtp_self_init(&self);
    add_listener(&self, "127.0.0.1:2525", NULL);
    add_listener(&self, "[::1]:2526", NULL);
    assert_true(is_self(&self, "127.0.0.1", 2525));
    assert_false(is_self(&self, "127.0.0.1", 25)); /* a sink on another port is not us */
    assert_false(is_self(&self, "127.0.0.2", 2525));
    assert_true(is_self(&self, "::1", 2526));
    assert_false(is_self(&self, "::1", 2525));
    assert_true(is_self(&self, "::ffff:127.0.0.1", 2525)); /* mapped is the same address */
    smtp_self_free(&self);
}

/* fake_ifaddrs - a two-entry interface list (one v4, one v6) */
struct fake_if {
    struct ifaddrs ifa[3];
    struct sockaddr_storage addr[3];
};

static const struct ifaddrs *fake_interfaces(struct fake_if *f)
{
    memset(f, 0, sizeof(*f));
    f->ifa[0].ifa_addr = (struct sockaddr *)sock_of("192.0.2.7", 0, &f->addr[0]);
    f->ifa[0].ifa_next = &f->ifa[1];
    f->ifa[1].ifa_addr = (struct sockaddr *)sock_of("2001:db8::7", 0, &f->addr[1]);
    f->ifa[1].ifa_next = &f->ifa[2];
    f->ifa[2].ifa_addr = NULL; /* an interface without an address */
    return f->ifa;
}

static void test_smtp_self_wildcard_v4_means_interfaces_and_loopback(void **state)
{
    struct smtp_self self;
    struct fake_if f;

    smtp_self_init(&self);
    add_listener(&self, "0.0.0.0:25", fake_interfaces(&f));
    assert_true(is_self(&self, "192.0.2.7", 25));
    assert_true(is_self(&self, "127.0.0.1", 25));
    assert_true(is_self(&self, "127.3.4.5", 25)); /* all of 127.0.0.0/8 */
    assert_false(is_self(&self, "192.0.2.8", 25));
    assert_false(is_self(&self, "192.0.2.7", 26));
    assert_false(is_self(&self, "2001:db8::7", 25)); /* 0.0.0.0 is IPv4 only */
    assert_false(is_self(&self, "::1", 25));
    smtp_self_free(&self);
}

static void test_smtp_self_wildcard_v6_and_star(void **state)
{
    struct smtp_self self;
    struct fake_if f;

    smtp_self_init(&self);
    add_listener(&self, "[::]:25", fake_interfaces(&f));
    assert_true(is_self(&self, "2001:db8::7", 25));
    assert_true(is_self(&self, "::1", 25));
    assert_false(is_self(&self, "192.0.2.7", 25));
    smtp_self_free(&self);
    smtp_self_init(&self);
    add_listener(&self, "*:587", fake_interfaces(&f));
    assert_true(is_self(&self, "2001:db8::7", 587));
    assert_true(is_self(&self, "192.0.2.7", 587));
    assert_true(is_self(&self, "127.0.0.1", 587));
    assert_false(is_self(&self, "127.0.0.1", 25));
    smtp_self_free(&self);
}

static void test_smtp_self_proxy_interfaces_use_the_default_port(void **state)
{
    struct smtp_self self;
    buf_t err = BUF_INIT;

    smtp_self_init(&self);
    assert_int_equal(smtp_self_add_proxy(&self, "198.51.100.9", 25, &err), 0);
    assert_int_equal(smtp_self_add_proxy(&self, "[2001:db8::9]", 25, &err), 0);
    assert_int_equal(smtp_self_add_proxy(&self, "[198.51.100.10]:2525", 25, &err), 0);
    assert_true(is_self(&self, "198.51.100.9", 25));
    assert_false(is_self(&self, "198.51.100.9", 2525));
    assert_true(is_self(&self, "2001:db8::9", 25));
    assert_true(is_self(&self, "198.51.100.10", 2525));
    assert_int_equal(smtp_self_add_proxy(&self, "mx.example.com", 25, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "mx.example.com"));
    buf_reset(&err);
    assert_int_equal(smtp_self_add_proxy(&self, "10.0.0.0/8", 25, &err), -1);
    buf_free(&err);
    smtp_self_free(&self);
}

static void test_smtp_self_bad_listener_is_an_error(void **state)
{
    struct smtp_self self;
    buf_t err = BUF_INIT;

    smtp_self_init(&self);
    assert_int_equal(smtp_self_add_listener(&self, "mail.example.com:25", NULL, &err), -1);
    assert_int_equal(smtp_self_add_listener(&self, "127.0.0.1:", NULL, &err), -1);
    buf_free(&err);
    smtp_self_free(&self);
}

/* mx_list - a DNS answer: n hosts "name pref ip", port 25 */
static struct dns_result *mx_list(int best, size_t n, const char *const *names, const int *prefs,
                                  const char *const *ips)
{
    struct dns_result *res = xcalloc(1, sizeof(*res));

    res->reason = xstrdup("");
    res->hosts = xcalloc(n ? n : 1, sizeof(*res->hosts));
    res->best_preference = best;
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage ss;
        const struct sockaddr *sa = sock_of(ips[i], 25, &ss);
        res->hosts[i].hostname = xstrdup(names[i]);
        res->hosts[i].preference = prefs[i];
        memcpy(&res->hosts[i].addr, sa, sizeof(ss));
        res->hosts[i].addrlen =
            sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    }
    res->count = n;
    return res;
}

/* self_at - this host is 192.0.2.1:25 */
static void self_at(struct smtp_self *self)
{
    smtp_self_init(self);
    add_listener(self, "192.0.2.1:25", NULL);
}

static void test_smtp_self_cut_keeps_only_more_preferred_hosts(void **state)
{
    static const char *const names[] = {"a", "a", "me", "b", "c"};
    static const int prefs[] = {10, 10, 20, 20, 30};
    static const char *const ips[] = {"192.0.2.10", "192.0.2.11", "192.0.2.1", "192.0.2.20",
                                      "192.0.2.30"};
    struct dns_result *res = mx_list(10, 5, names, prefs, ips);
    struct smtp_self self;
    buf_t host = BUF_INIT;
    int pref = -1;

    self_at(&self);
    assert_int_equal(smtp_self_mx_cut(&self, res, &pref, &host), SMTP_SELF_CUT);
    assert_int_equal(pref, 20);
    assert_string_equal(buf_cstr(&host), "me");
    assert_int_equal(res->count, 2); /* b at our preference goes too */
    assert_string_equal(res->hosts[0].hostname, "a");
    assert_string_equal(res->hosts[1].hostname, "a");
    dns_result_free(res);
    buf_free(&host);
    smtp_self_free(&self);
}

static void test_smtp_self_best_mx_is_a_loop(void **state)
{
    static const char *const names[] = {"me", "other", "b"};
    static const int prefs[] = {5, 5, 10};
    static const char *const ips[] = {"192.0.2.1", "192.0.2.2", "192.0.2.3"};
    struct dns_result *res = mx_list(5, 3, names, prefs, ips);
    struct smtp_self self;
    buf_t host = BUF_INIT;
    int pref = -1;

    self_at(&self);
    assert_int_equal(smtp_self_mx_cut(&self, res, &pref, &host), SMTP_SELF_LOOP);
    assert_int_equal(pref, 5);
    assert_int_equal(res->count, 0);
    dns_result_free(res);
    buf_free(&host);
    smtp_self_free(&self);
}

static void test_smtp_self_unreachable_primary_is_not_a_loop(void **state)
{
    /* MX 10 had no address (not in the list), MX 20 is us */
    static const char *const names[] = {"me"};
    static const int prefs[] = {20};
    static const char *const ips[] = {"192.0.2.1"};
    struct dns_result *res = mx_list(10, 1, names, prefs, ips);
    struct smtp_self self;
    buf_t host = BUF_INIT;
    int pref = -1;

    self_at(&self);
    assert_int_equal(smtp_self_mx_cut(&self, res, &pref, &host), SMTP_SELF_NO_PRIMARY);
    assert_int_equal(res->count, 0);
    dns_result_free(res);
    buf_free(&host);
    smtp_self_free(&self);
}

static void test_smtp_self_other_port_or_address_leaves_the_list_alone(void **state)
{
    static const char *const names[] = {"x", "y"};
    static const int prefs[] = {10, 20};
    static const char *const ips[] = {"192.0.2.9", "2001:db8::1"};
    struct dns_result *res = mx_list(10, 2, names, prefs, ips);
    struct smtp_self self;
    buf_t host = BUF_INIT;
    int pref = -1;

    smtp_self_init(&self);
    add_listener(&self, "192.0.2.9:2525", NULL); /* our address, another port */
    assert_int_equal(smtp_self_mx_cut(&self, res, &pref, &host), SMTP_SELF_NONE);
    assert_int_equal(res->count, 2);
    assert_int_equal(pref, -1);
    dns_result_free(res);
    buf_free(&host);
    smtp_self_free(&self);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smtp_self_listener_address_and_port_both_count),
        cmocka_unit_test(test_smtp_self_wildcard_v4_means_interfaces_and_loopback),
        cmocka_unit_test(test_smtp_self_wildcard_v6_and_star),
        cmocka_unit_test(test_smtp_self_proxy_interfaces_use_the_default_port),
        cmocka_unit_test(test_smtp_self_bad_listener_is_an_error),
        cmocka_unit_test(test_smtp_self_cut_keeps_only_more_preferred_hosts),
        cmocka_unit_test(test_smtp_self_best_mx_is_a_loop),
        cmocka_unit_test(test_smtp_self_unreachable_primary_is_not_a_loop),
        cmocka_unit_test(test_smtp_self_other_port_or_address_leaves_the_list_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
