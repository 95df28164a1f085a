/*
 * test_addr - unit tests for lib/addr: SMTP path parsing (null path, bare
 * addresses, quoted local parts, source routes, ESMTP parameters, bad
 * syntax), the local-part/domain helpers and RFC 3461 xtext.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "addr.h"
#include "buf.h"

/* expect_path - arg parses to want_addr with want_params left over */
static void expect_path(const char *arg, const char *want_addr, const char *want_params)
{
    buf_t a = BUF_INIT;
    const char *params = NULL, *err = NULL;

    if (addr_parse_path(arg, &a, &params, &err) != 0)
        fail_msg("'%s' rejected: %s", arg, err ? err : "(no reason)");
    if (strcmp(buf_cstr(&a), want_addr) != 0)
        fail_msg("'%s' gave address '%s', want '%s'", arg, buf_cstr(&a), want_addr);
    assert_non_null(params);
    if (strcmp(params, want_params) != 0)
        fail_msg("'%s' gave params '%s', want '%s'", arg, params, want_params);
    buf_free(&a);
}

/* expect_bad_path - arg is rejected with a reason */
static void expect_bad_path(const char *arg)
{
    buf_t a = BUF_INIT;
    const char *params = NULL, *err = NULL;

    if (addr_parse_path(arg, &a, &params, &err) != -1)
        fail_msg("'%s' accepted as '%s'", arg, buf_cstr(&a));
    assert_non_null(err);
    assert_true(strlen(err) > 0);
    buf_free(&a);
}

/* test_addr_angle_path_and_params */
static void test_addr_angle_path_and_params(void **state)
{
    expect_path("<user@example.org>", "user@example.org", "");
    expect_path(" <user@example.org>", "user@example.org", "");
    expect_path("<user@example.org> SIZE=1000 BODY=8BITMIME", "user@example.org",
                "SIZE=1000 BODY=8BITMIME");
    expect_path("<user@example.org>\t  NOTIFY=NEVER", "user@example.org", "NOTIFY=NEVER");
    expect_path("<user@[192.0.2.1]>", "user@[192.0.2.1]", "");
    expect_path("<postmaster>", "postmaster", "");
}

/* test_addr_null_path_gives_empty_address */
static void test_addr_null_path_gives_empty_address(void **state)
{
    expect_path("<>", "", "");
    expect_path("<> SIZE=10", "", "SIZE=10");
}

/* test_addr_bare_address_is_accepted_leniently */
static void test_addr_bare_address_is_accepted_leniently(void **state)
{
    expect_path("user@example.org", "user@example.org", "");
    expect_path("  user@example.org SIZE=5", "user@example.org", "SIZE=5");
    expect_path("\"a b\"@example.org SIZE=5", "\"a b\"@example.org", "SIZE=5");
}

/* test_addr_quoted_local_part_is_kept_as_given */
static void test_addr_quoted_local_part_is_kept_as_given(void **state)
{
    expect_path("<\"john doe\"@example.org>", "\"john doe\"@example.org", "");
    expect_path("<\"a>b\"@example.org> SIZE=1", "\"a>b\"@example.org", "SIZE=1");
    expect_path("<\"a\\\"b\"@example.org>", "\"a\\\"b\"@example.org", "");
    expect_path("<\"x@y\"@example.org>", "\"x@y\"@example.org", "");
    expect_path("<\"a,b;c(d)\"@example.org>", "\"a,b;c(d)\"@example.org", "");
}

/* test_addr_source_route_is_dropped */
static void test_addr_source_route_is_dropped(void **state)
{
    expect_path("<@relay.example:user@example.org>", "user@example.org", "");
    expect_path("<@a.example,@b.example:user@example.org> SIZE=1", "user@example.org", "SIZE=1");
    expect_path("<@[192.0.2.1]:user@example.org>", "user@example.org", "");
    expect_path("<@a.example,@b.example:\"q u\"@example.org>", "\"q u\"@example.org", "");
}

/* test_addr_bad_source_route_is_rejected */
static void test_addr_bad_source_route_is_rejected(void **state)
{
    expect_bad_path("<@relay.example user@example.org>");
    expect_bad_path("<@a b:user@example.org>");
    expect_bad_path("<@a!b:user@example.org>");
}

/* test_addr_source_route_without_mailbox_is_rejected - RFC 5321 Path is
 * "<" [ A-d-l ":" ] Mailbox ">": only <> is the null path */
static void test_addr_source_route_without_mailbox_is_rejected(void **state)
{
    expect_bad_path("<@a.example:>");
    expect_bad_path("<@a.example,@b.example:> SIZE=1");
}

/* test_addr_bad_syntax_is_rejected */
static void test_addr_bad_syntax_is_rejected(void **state)
{
    expect_bad_path("");
    expect_bad_path("   ");
    expect_bad_path("<user@example.org");
    expect_bad_path("<user@example.org>junk");
    expect_bad_path("<user@example.org>>");
    expect_bad_path("<us er@example.org>");
    expect_bad_path("<user@exa<mple.org>");
    expect_bad_path("<@example.org>");
    expect_bad_path("<user@>");
    expect_bad_path("<\"unterminated@example.org>");
    expect_bad_path("<user\r@example.org>");
    expect_bad_path("<user\x01@example.org>");
    expect_bad_path("<user\x7f@example.org>");
    expect_bad_path("<a\\b@example.org>");
    expect_bad_path("<a,b@example.org>");
    expect_bad_path("<a;b@example.org>");
}

/* test_addr_quoted_pair_with_control_character_is_rejected - RFC 5321
 * quoted-pairSMTP is "\\" %d32-126: a backslash must not smuggle CR, LF or
 * other control characters into an address (found by fuzz_addr) */
static void test_addr_quoted_pair_with_control_character_is_rejected(void **state)
{
    expect_bad_path("<\"a\\\nb\"@example.org>");
    expect_bad_path("<\"a\\\rb\"@example.org>");
    expect_bad_path("\"a\\\rb\"@example.org");
    expect_bad_path("<\"a\\\x01\"@example.org>");
}

/* test_addr_length_is_bounded */
static void test_addr_length_is_bounded(void **state)
{
    buf_t arg = BUF_INIT, want = BUF_INIT;

    buf_putc(&arg, '<');
    for (int i = 0; i < ADDR_MAX_LENGTH - 12; i++)
        buf_putc(&want, 'a');
    buf_puts(&want, "@example.org");
    assert_int_equal(want.len, ADDR_MAX_LENGTH);
    buf_puts(&arg, want.data);
    buf_putc(&arg, '>');
    expect_path(arg.data, want.data, "");
    buf_reset(&arg);
    buf_puts(&arg, "<a");
    buf_puts(&arg, want.data);
    buf_putc(&arg, '>');
    expect_bad_path(arg.data);
    buf_free(&arg);
    buf_free(&want);
}

/* test_addr_domain_skips_quoted_at_signs */
static void test_addr_domain_skips_quoted_at_signs(void **state)
{
    buf_t lp = BUF_INIT;

    assert_string_equal(addr_domain("user@example.org"), "example.org");
    assert_string_equal(addr_domain("\"a@b\"@example.org"), "example.org");
    assert_null(addr_domain("\"a@b\""));
    assert_null(addr_domain("postmaster"));
    assert_string_equal(addr_domain("user@"), "");
    addr_local_part("\"a@b\"@example.org", &lp);
    assert_string_equal(lp.data, "\"a@b\"");
    addr_local_part("postmaster", &lp);
    assert_string_equal(lp.data, "postmaster");
    buf_free(&lp);
}

/* test_addr_qualify_only_touches_unqualified_nonempty_addresses */
static void test_addr_qualify_only_touches_unqualified_nonempty_addresses(void **state)
{
    buf_t a = BUF_INIT;

    assert_false(addr_is_qualified("user"));
    assert_false(addr_is_qualified("user@"));
    assert_false(addr_is_qualified(""));
    assert_true(addr_is_qualified("user@example.org"));
    buf_set(&a, "user");
    addr_qualify(&a, "example.org");
    assert_string_equal(a.data, "user@example.org");
    addr_qualify(&a, "other.example");
    assert_string_equal(a.data, "user@example.org");
    buf_reset(&a);
    addr_qualify(&a, "example.org");
    assert_int_equal(a.len, 0);
    buf_set(&a, "\"x@y\"");
    addr_qualify(&a, "example.org");
    assert_string_equal(a.data, "\"x@y\"@example.org");
    buf_free(&a);
}

/* test_addr_domain_in_list_ignores_case_and_trailing_dot */
static void test_addr_domain_in_list_ignores_case_and_trailing_dot(void **state)
{
    char *list[] = {"example.org", "localhost", NULL};
    char *empty[] = {NULL};

    assert_true(addr_domain_in_list("example.org", list));
    assert_true(addr_domain_in_list("EXAMPLE.Org", list));
    assert_true(addr_domain_in_list("localhost.", list));
    assert_false(addr_domain_in_list("sub.example.org", list));
    assert_false(addr_domain_in_list("example.or", list));
    assert_false(addr_domain_in_list("", list));
    assert_false(addr_domain_in_list("example.org", empty));
    assert_false(addr_domain_in_list(NULL, list));
    assert_false(addr_domain_in_list("example.org", NULL));
}

/* test_xtext_decodes_hex_escapes_and_rejects_malformed */
static void test_xtext_decodes_hex_escapes_and_rejects_malformed(void **state)
{
    static const char *bad[] = {"a+",  "a+4", "+4G",  "+zz",        "+2b",
                                "a=b", "a b", "\x7f", "caf\xc3\xa9"};
    buf_t out = BUF_INIT;

    assert_int_equal(xtext_decode("rfc822;user+2Bx@example.org", &out), 0);
    assert_string_equal(out.data, "rfc822;user+x@example.org");
    assert_int_equal(xtext_decode("a+3Db+20c", &out), 0);
    assert_string_equal(out.data, "a=b c");
    assert_int_equal(xtext_decode("", &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(xtext_decode("+00", &out), 0);
    assert_int_equal(out.len, 1);
    assert_int_equal(out.data[0], 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (xtext_decode(bad[i], &out) != -1)
            fail_msg("xtext '%s' accepted", bad[i]);
    buf_free(&out);
}

/* test_xtext_encode_round_trips_every_byte */
static void test_xtext_encode_round_trips_every_byte(void **state)
{
    char all[256];
    buf_t enc = BUF_INIT, dec = BUF_INIT;

    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    all[255] = 0;
    xtext_encode(all, &enc);
    for (size_t i = 0; i < enc.len; i++) {
        unsigned char c = (unsigned char)enc.data[i];
        assert_true(c >= 33 && c <= 126 && c != '=');
    }
    assert_int_equal(xtext_decode(enc.data, &dec), 0);
    assert_int_equal(dec.len, 255);
    assert_memory_equal(dec.data, all, 255);
    buf_reset(&enc);
    xtext_encode("a+b=c", &enc);
    assert_string_equal(enc.data, "a+2Bb+3Dc");
    buf_free(&enc);
    buf_free(&dec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_angle_path_and_params),
        cmocka_unit_test(test_addr_null_path_gives_empty_address),
        cmocka_unit_test(test_addr_bare_address_is_accepted_leniently),
        cmocka_unit_test(test_addr_quoted_local_part_is_kept_as_given),
        cmocka_unit_test(test_addr_source_route_is_dropped),
        cmocka_unit_test(test_addr_bad_source_route_is_rejected),
        cmocka_unit_test(test_addr_source_route_without_mailbox_is_rejected),
        cmocka_unit_test(test_addr_bad_syntax_is_rejected),
        cmocka_unit_test(test_addr_quoted_pair_with_control_character_is_rejected),
        cmocka_unit_test(test_addr_length_is_bounded),
        cmocka_unit_test(test_addr_domain_skips_quoted_at_signs),
        cmocka_unit_test(test_addr_qualify_only_touches_unqualified_nonempty_addresses),
        cmocka_unit_test(test_addr_domain_in_list_ignores_case_and_trailing_dot),
        cmocka_unit_test(test_xtext_decodes_hex_escapes_and_rejects_malformed),
        cmocka_unit_test(test_xtext_encode_round_trips_every_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
