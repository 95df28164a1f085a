/*
 * test_netaddr - unit tests for lib/netaddr: CIDR parsing in every accepted
 * form, matching (prefix boundaries, IPv4-mapped IPv6 clients), formatting,
 * and host:port splitting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cmocka.h>

#include "netaddr.h"

/* sock_of - a sockaddr for a literal IPv4 or IPv6 address */
static const struct sockaddr *sock_of(const char *ip, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    return (const struct sockaddr *)ss;
}

/* in_net - 1 when ip is inside the network text */
static int in_net(const char *ip, const char *net)
{
    struct netaddr_net n;
    struct sockaddr_storage ss;

    if (netaddr_parse_net(net, &n) != 0)
        fail_msg("network '%s' rejected", net);
    return netaddr_match(sock_of(ip, &ss), &n, 1);
}

/* test_netaddr_parses_every_documented_form */
static void test_netaddr_parses_every_documented_form(void **state)
{
    struct netaddr_net n;

    assert_int_equal(netaddr_parse_net("127.0.0.0/8", &n), 0);
    assert_int_equal(n.family, AF_INET);
    assert_int_equal(n.prefix, 8);
    assert_int_equal(n.addr[0], 127);
    assert_int_equal(netaddr_parse_net("192.0.2.1", &n), 0);
    assert_int_equal(n.family, AF_INET);
    assert_int_equal(n.prefix, 32);
    assert_int_equal(netaddr_parse_net("[::1]/128", &n), 0);
    assert_int_equal(n.family, AF_INET6);
    assert_int_equal(n.prefix, 128);
    assert_int_equal(n.addr[15], 1);
    assert_int_equal(netaddr_parse_net("::1", &n), 0);
    assert_int_equal(n.family, AF_INET6);
    assert_int_equal(n.prefix, 128);
    assert_int_equal(netaddr_parse_net("[2001:db8::]/32", &n), 0);
    assert_int_equal(n.family, AF_INET6);
    assert_int_equal(n.prefix, 32);
    assert_int_equal(n.addr[0], 0x20);
    assert_int_equal(n.addr[1], 0x01);
    assert_int_equal(netaddr_parse_net("0.0.0.0/0", &n), 0);
    assert_int_equal(n.prefix, 0);
}

/* test_netaddr_rejects_malformed_networks */
static void test_netaddr_rejects_malformed_networks(void **state)
{
    static const char *bad[] = {"",
                                "/8",
                                "127.0.0.0/",
                                "127.0.0.0/33",
                                "127.0.0.0/-1",
                                "127.0.0.0/8x",
                                "1.2.3",
                                "256.0.0.0",
                                "[::1",
                                "::1]",
                                "[]",
                                "[::1]/129",
                                "example.org",
                                "[127.0.0.1",
                                "1.2.3.4.5"};
    struct netaddr_net n;
    char longer[300];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (netaddr_parse_net(bad[i], &n) == 0)
            fail_msg("network '%s' accepted", bad[i]);
    memset(longer, '1', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = 0;
    assert_int_equal(netaddr_parse_net(longer, &n), -1);
}

/* test_netaddr_match_respects_prefix_boundaries */
static void test_netaddr_match_respects_prefix_boundaries(void **state)
{
    assert_true(in_net("127.0.0.1", "127.0.0.0/8"));
    assert_true(in_net("127.255.255.255", "127.0.0.0/8"));
    assert_false(in_net("128.0.0.1", "127.0.0.0/8"));
    assert_true(in_net("192.0.2.129", "192.0.2.128/25"));
    assert_false(in_net("192.0.2.127", "192.0.2.128/25"));
    assert_true(in_net("10.1.2.3", "10.1.2.3"));
    assert_false(in_net("10.1.2.4", "10.1.2.3"));
    assert_true(in_net("203.0.113.9", "0.0.0.0/0"));
    assert_true(in_net("2001:db8:ffff::1", "[2001:db8::]/32"));
    assert_false(in_net("2001:db9::1", "[2001:db8::]/32"));
    assert_true(in_net("2001:db8::1", "2001:db8::/127"));
    assert_false(in_net("2001:db8::2", "2001:db8::/127"));
    assert_true(in_net("::1", "[::1]/128"));
    assert_false(in_net("::2", "[::1]/128"));
}

/* test_netaddr_families_do_not_cross_match */
static void test_netaddr_families_do_not_cross_match(void **state)
{
    assert_false(in_net("::1", "127.0.0.0/8"));
    assert_false(in_net("127.0.0.1", "[::1]/128"));
    assert_false(in_net("127.0.0.1", "[::]/0"));
}

/* test_netaddr_ipv4_mapped_client_matches_ipv4_network */
static void test_netaddr_ipv4_mapped_client_matches_ipv4_network(void **state)
{
    assert_true(in_net("::ffff:127.0.0.1", "127.0.0.0/8"));
    assert_true(in_net("::ffff:192.0.2.200", "192.0.2.192/26"));
    assert_false(in_net("::ffff:192.0.2.1", "192.0.2.192/26"));
    assert_false(in_net("::ffff:10.0.0.1", "127.0.0.0/8"));
}

/* test_netaddr_match_searches_the_whole_list */
static void test_netaddr_match_searches_the_whole_list(void **state)
{
    struct netaddr_net nets[3];
    struct sockaddr_storage ss;
    struct sockaddr_un un;

    assert_int_equal(netaddr_parse_net("10.0.0.0/8", &nets[0]), 0);
    assert_int_equal(netaddr_parse_net("[::1]/128", &nets[1]), 0);
    assert_int_equal(netaddr_parse_net("192.0.2.0/24", &nets[2]), 0);
    assert_true(netaddr_match(sock_of("192.0.2.7", &ss), nets, 3));
    assert_true(netaddr_match(sock_of("::1", &ss), nets, 3));
    assert_false(netaddr_match(sock_of("198.51.100.1", &ss), nets, 3));
    assert_false(netaddr_match(sock_of("192.0.2.7", &ss), nets, 0));
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    assert_false(netaddr_match((const struct sockaddr *)&un, nets, 3));
}

/* test_netaddr_format_shows_mapped_addresses_as_ipv4 */
static void test_netaddr_format_shows_mapped_addresses_as_ipv4(void **state)
{
    struct sockaddr_storage ss;
    char out[64];

    netaddr_format(sock_of("192.0.2.1", &ss), out, sizeof(out));
    assert_string_equal(out, "192.0.2.1");
    netaddr_format(sock_of("2001:db8::1", &ss), out, sizeof(out));
    assert_string_equal(out, "2001:db8::1");
    netaddr_format(sock_of("::ffff:127.0.0.1", &ss), out, sizeof(out));
    assert_string_equal(out, "127.0.0.1");
}

/* test_netaddr_hostport_splits_all_forms */
static void test_netaddr_hostport_splits_all_forms(void **state)
{
    char host[64];
    int port = 0, br = -1;

    assert_int_equal(netaddr_parse_hostport("mx.example.org", host, sizeof(host), &port, 25, &br),
                     0);
    assert_string_equal(host, "mx.example.org");
    assert_int_equal(port, 25);
    assert_int_equal(br, 0);
    assert_int_equal(
        netaddr_parse_hostport("mx.example.org:2525", host, sizeof(host), &port, 25, &br), 0);
    assert_string_equal(host, "mx.example.org");
    assert_int_equal(port, 2525);
    assert_int_equal(netaddr_parse_hostport("[mx.example.org]", host, sizeof(host), &port, 25, &br),
                     0);
    assert_string_equal(host, "mx.example.org");
    assert_int_equal(port, 25);
    assert_int_equal(br, 1);
    assert_int_equal(netaddr_parse_hostport("[::1]:587", host, sizeof(host), &port, 25, &br), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 587);
    assert_int_equal(br, 1);
    assert_int_equal(netaddr_parse_hostport("::1", host, sizeof(host), &port, 25, &br), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 25);
}

/* test_netaddr_hostport_rejects_bad_ports_and_brackets */
static void test_netaddr_hostport_rejects_bad_ports_and_brackets(void **state)
{
    static const char *bad[] = {"",     "h:0",   "h:65536", "h:x",    "h:",   ":25",
                                "[::1", "[]:25", "[::1]x",  "[::1]:", "h:25x"};
    char host[64], tiny[4];
    int port, br;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (netaddr_parse_hostport(bad[i], host, sizeof(host), &port, 25, &br) == 0)
            fail_msg("'%s' accepted as host '%s' port %d", bad[i], host, port);
    assert_int_equal(netaddr_parse_hostport("longhost", tiny, sizeof(tiny), &port, 25, &br), -1);
    assert_int_equal(netaddr_parse_hostport("abc", tiny, sizeof(tiny), &port, 25, &br), 0);
    assert_string_equal(tiny, "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_netaddr_parses_every_documented_form),
        cmocka_unit_test(test_netaddr_rejects_malformed_networks),
        cmocka_unit_test(test_netaddr_match_respects_prefix_boundaries),
        cmocka_unit_test(test_netaddr_families_do_not_cross_match),
        cmocka_unit_test(test_netaddr_ipv4_mapped_client_matches_ipv4_network),
        cmocka_unit_test(test_netaddr_match_searches_the_whole_list),
        cmocka_unit_test(test_netaddr_format_shows_mapped_addresses_as_ipv4),
        cmocka_unit_test(test_netaddr_hostport_splits_all_forms),
        cmocka_unit_test(test_netaddr_hostport_rejects_bad_ports_and_brackets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
