/*
 * test_smtp_nexthop - unit tests for smtp/nexthop.c: every next-hop form of
 * the SMTP and the LMTP client, MX lookup only for an unbracketed SMTP
 * name, default ports, and what is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nexthop.h"

/* parse_ok - parse text, which must succeed */
static struct smtp_nexthop parse_ok(const char *text, int lmtp, int defport)
{
    struct smtp_nexthop h;

    if (smtp_nexthop_parse(text, lmtp, defport, &h) != 0)
        fail_msg("'%s' refused (lmtp=%d)", text, lmtp);
    return h;
}

static void test_smtp_nexthop_smtp_name_uses_mx_brackets_do_not(void **state)
{
    struct smtp_nexthop h = parse_ok("example.com", 0, 25);

    assert_int_equal(h.kind, SMTP_NEXTHOP_INET);
    assert_string_equal(h.host, "example.com");
    assert_int_equal(h.port, 25);
    assert_true(h.use_mx);
    h = parse_ok("example.com:2525", 0, 25);
    assert_true(h.use_mx);
    assert_int_equal(h.port, 2525);
    h = parse_ok("[mail.example.com]", 0, 25);
    assert_false(h.use_mx);
    assert_string_equal(h.host, "mail.example.com");
    h = parse_ok("[2001:db8::1]:587", 0, 25);
    assert_false(h.use_mx);
    assert_string_equal(h.host, "2001:db8::1");
    assert_int_equal(h.port, 587);
}

static void test_smtp_nexthop_international_names_become_a_labels(void **state)
{
    struct smtp_nexthop h = parse_ok("b\xc3\xbc"
                                     "cher.example",
                                     0, 25);

    assert_string_equal(h.host, "xn--bcher-kva.example");
    assert_true(h.use_mx);
    h = parse_ok("[m\xc3\xbcnchen.example]:2525", 0, 25);
    assert_string_equal(h.host, "xn--mnchen-3ya.example");
    assert_int_equal(h.port, 2525);
    assert_int_equal(smtp_nexthop_parse("a\x80.example", 0, 25, &h), -1);
}

static void test_smtp_nexthop_smtp_knows_no_unix_sockets(void **state)
{
    struct smtp_nexthop h;

    assert_int_equal(smtp_nexthop_parse("unix:/run/x", 0, 25, &h), -1);
}

static void test_smtp_nexthop_lmtp_unix_socket_paths(void **state)
{
    struct smtp_nexthop h = parse_ok("unix:/run/dovecot/lmtp", 1, 24);

    assert_int_equal(h.kind, SMTP_NEXTHOP_UNIX);
    assert_string_equal(h.host, "/run/dovecot/lmtp");
    assert_false(h.use_mx);
    h = parse_ok("unix:private/dovecot-lmtp", 1, 24); /* relative to queue_directory */
    assert_int_equal(h.kind, SMTP_NEXTHOP_UNIX);
    assert_string_equal(h.host, "private/dovecot-lmtp");
}

static void test_smtp_nexthop_lmtp_unix_path_bounds(void **state)
{
    char path[200];
    struct smtp_nexthop h;

    assert_int_equal(smtp_nexthop_parse("unix:", 1, 24, &h), -1);
    memcpy(path, "unix:", 5);
    memset(path + 5, 'a', SMTP_NEXTHOP_MAX_PATH - 1);
    path[5 + SMTP_NEXTHOP_MAX_PATH - 1] = 0; /* the longest that fits sun_path */
    assert_int_equal(smtp_nexthop_parse(path, 1, 24, &h), 0);
    path[5 + SMTP_NEXTHOP_MAX_PATH - 1] = 'a';
    path[5 + SMTP_NEXTHOP_MAX_PATH] = 0;
    assert_int_equal(smtp_nexthop_parse(path, 1, 24, &h), -1);
}

static void test_smtp_nexthop_lmtp_tcp_forms_never_use_mx(void **state)
{
    struct smtp_nexthop h = parse_ok("inet:mail.example.com:2424", 1, 24);

    assert_int_equal(h.kind, SMTP_NEXTHOP_INET);
    assert_string_equal(h.host, "mail.example.com");
    assert_int_equal(h.port, 2424);
    assert_false(h.use_mx);
    h = parse_ok("inet:127.0.0.1", 1, 24);
    assert_string_equal(h.host, "127.0.0.1");
    assert_int_equal(h.port, 24);
    h = parse_ok("mail.example.com", 1, 24);
    assert_false(h.use_mx);
    assert_int_equal(h.port, 24);
    h = parse_ok("[127.0.0.1]:10024", 1, 24);
    assert_string_equal(h.host, "127.0.0.1");
    assert_int_equal(h.port, 10024);
    h = parse_ok("[::1]:24", 1, 24);
    assert_string_equal(h.host, "::1");
    h = parse_ok("[lmtp.example.com]", 1, 24);
    assert_string_equal(h.host, "lmtp.example.com");
    assert_int_equal(h.port, 24);
    assert_false(h.use_mx);
}

static void test_smtp_nexthop_rejects_malformed(void **state)
{
    struct smtp_nexthop h;
    static const char *const bad[] = {"",           "[",        "[]",   "host:", "host:0",
                                      "host:65536", "host:24x", "[::1", "inet:", "[h]x"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (smtp_nexthop_parse(bad[i], 1, 24, &h) != -1)
            fail_msg("lmtp accepted '%s'", bad[i]);
        if (smtp_nexthop_parse(bad[i], 0, 25, &h) != -1)
            fail_msg("smtp accepted '%s'", bad[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smtp_nexthop_smtp_name_uses_mx_brackets_do_not),
        cmocka_unit_test(test_smtp_nexthop_international_names_become_a_labels),
        cmocka_unit_test(test_smtp_nexthop_smtp_knows_no_unix_sockets),
        cmocka_unit_test(test_smtp_nexthop_lmtp_unix_socket_paths),
        cmocka_unit_test(test_smtp_nexthop_lmtp_unix_path_bounds),
        cmocka_unit_test(test_smtp_nexthop_lmtp_tcp_forms_never_use_mx),
        cmocka_unit_test(test_smtp_nexthop_rejects_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
