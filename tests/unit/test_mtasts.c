/*
 * test_mtasts - unit tests for lib/mtasts (RFC 8461): the TXT record and the
 * policy file from the RFC's examples are accepted, with LF or CRLF; missing
 * or repeated required fields, bad values and oversized input are refused
 * with a reason; an "*." pattern stands for exactly one label.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mtasts.h"

/* the policy of RFC 8461 3.2 */
#define RFC_POLICY                                                                                 \
    "version: STSv1\n"                                                                             \
    "mode: enforce\n"                                                                              \
    "mx: mail.example.com\n"                                                                       \
    "mx: *.example.net\n"                                                                          \
    "mx: backupmx.example.com\n"                                                                   \
    "max_age: 604800\n"

/* txt_ok - parse txt, expect success, compare the id */
static void txt_ok(const char *txt, const char *want_id)
{
    buf_t id = BUF_INIT, err = BUF_INIT;

    if (mtasts_txt_parse(txt, &id, &err) != 0)
        fail_msg("'%s' refused: %s", txt, buf_cstr(&err));
    assert_string_equal(buf_cstr(&id), want_id);
    buf_free(&id);
    buf_free(&err);
}

/* txt_bad - parse txt, expect a refusal with a reason */
static void txt_bad(const char *txt)
{
    buf_t id = BUF_INIT, err = BUF_INIT;

    if (mtasts_txt_parse(txt, &id, &err) == 0)
        fail_msg("'%s' accepted with id '%s'", txt, buf_cstr(&id));
    assert_true(err.len > 0);
    buf_free(&id);
    buf_free(&err);
}

/* policy_parse - parse a C string; the result, err kept in *err */
static int policy_parse(const char *text, struct mtasts_policy *p, buf_t *err)
{
    buf_reset(err);
    return mtasts_policy_parse(text, strlen(text), p, err);
}

/* policy_ok - expect text accepted into p */
static void policy_ok(const char *text, struct mtasts_policy *p)
{
    buf_t err = BUF_INIT;

    if (policy_parse(text, p, &err) != 0)
        fail_msg("refused (%s): %s", buf_cstr(&err), text);
    buf_free(&err);
}

/* policy_bad - expect text refused with a reason containing why */
static void policy_bad(const char *text, const char *why)
{
    struct mtasts_policy p;
    buf_t err = BUF_INIT;

    if (policy_parse(text, &p, &err) == 0)
        fail_msg("accepted: %s", text);
    if (strstr(buf_cstr(&err), why) == NULL)
        fail_msg("reason '%s' does not say '%s'", buf_cstr(&err), why);
    assert_null(p.mx);
    assert_int_equal(p.mx_count, 0);
    mtasts_policy_free(&p);
    buf_free(&err);
}

/* test_txt_rfc_example_is_accepted */
static void test_txt_rfc_example_is_accepted(void **state)
{
    txt_ok("v=STSv1; id=20160831085700Z;", "20160831085700Z");
    txt_ok("v=STSv1; id=20160831085700Z", "20160831085700Z");
    txt_ok("v=STSv1;id=abc", "abc");
    txt_ok("v=STSv1 \t; \tid=abc \t; \t", "abc");
    txt_ok("v=STSv1; id=12345678901234567890123456789012;", "12345678901234567890123456789012");
}

/* test_txt_unknown_fields_are_ignored */
static void test_txt_unknown_fields_are_ignored(void **state)
{
    txt_ok("v=STSv1; foo=bar; id=x1; rua=mailto:a@b.example; x_y.z-1=~!", "x1");
    txt_ok("v=STSv1; v=other; id=Z9", "Z9");
}

/* test_txt_refused_without_version_first */
static void test_txt_refused_without_version_first(void **state)
{
    txt_bad("id=20160831085700Z; v=STSv1;");
    txt_bad(" v=STSv1; id=1");
    txt_bad("v=STSv2; id=1");
    txt_bad("v=stsv1; id=1");
    txt_bad("v=STSv1x; id=1");
    txt_bad("");
}

/* test_txt_refused_with_bad_or_missing_id */
static void test_txt_refused_with_bad_or_missing_id(void **state)
{
    txt_bad("v=STSv1;");
    txt_bad("v=STSv1");
    txt_bad("v=STSv1; foo=bar");
    txt_bad("v=STSv1; id=");
    txt_bad("v=STSv1; id=abc-def");
    txt_bad("v=STSv1; id=123456789012345678901234567890123");
    txt_bad("v=STSv1; id=a; id=b");
    txt_bad("v=STSv1; ID=a");
}

/* test_txt_refused_when_malformed */
static void test_txt_refused_when_malformed(void **state)
{
    txt_bad("v=STSv1; id=a;; foo=b");
    txt_bad("v=STSv1 id=a");
    txt_bad("v=STSv1; id=a b");
    txt_bad("v=STSv1; id=a; foo");
    txt_bad("v=STSv1; id=a; =b");
    txt_bad("v=STSv1; id=a; foo==b");
    txt_bad("v=STSv1; id=a; foo=b\r\n");
    txt_bad("v=STSv1; id=a; _foo=b");
}

/* test_policy_rfc_example_is_accepted_with_lf_and_crlf */
static void test_policy_rfc_example_is_accepted_with_lf_and_crlf(void **state)
{
    const char *crlf = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
                       "mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";
    const char *texts[] = {RFC_POLICY, crlf};
    struct mtasts_policy p;

    for (size_t i = 0; i < 2; i++) {
        policy_ok(texts[i], &p);
        assert_int_equal(p.mode, MTASTS_MODE_ENFORCE);
        assert_int_equal(p.max_age, 604800);
        assert_int_equal(p.mx_count, 3);
        assert_string_equal(p.mx[0], "mail.example.com");
        assert_string_equal(p.mx[1], "*.example.net");
        assert_string_equal(p.mx[2], "backupmx.example.com");
        mtasts_policy_free(&p);
        assert_null(p.mx);
    }
}

/* test_policy_accepts_blanks_unknown_keys_and_no_final_newline */
static void test_policy_accepts_blanks_unknown_keys_and_no_final_newline(void **state)
{
    struct mtasts_policy p;

    policy_ok("\nversion:STSv1 \t\nfoo_bar.x: some \xc3\xa9 value\n\n"
              "mode:\ttesting\r\nMX: ignored\nmx: MX1.Example.COM  \nmax_age: 0",
              &p);
    assert_int_equal(p.mode, MTASTS_MODE_TESTING);
    assert_int_equal(p.max_age, 0);
    assert_int_equal(p.mx_count, 1);
    assert_string_equal(p.mx[0], "mx1.example.com");
    mtasts_policy_free(&p);
}

/* test_policy_mode_none_needs_no_mx */
static void test_policy_mode_none_needs_no_mx(void **state)
{
    struct mtasts_policy p;

    policy_ok("version: STSv1\nmode: none\nmax_age: 31557600\n", &p);
    assert_int_equal(p.mode, MTASTS_MODE_NONE);
    assert_int_equal(p.max_age, 31557600);
    assert_int_equal(p.mx_count, 0);
    assert_int_equal(mtasts_mx_match(&p, "mx.example.com"), 0);
    mtasts_policy_free(&p);
}

/* test_policy_refused_when_a_required_field_is_missing */
static void test_policy_refused_when_a_required_field_is_missing(void **state)
{
    policy_bad("mode: enforce\nmx: a.example\nmax_age: 1\n", "no version");
    policy_bad("version: STSv1\nmx: a.example\nmax_age: 1\n", "no mode");
    policy_bad("version: STSv1\nmode: enforce\nmx: a.example\n", "no max_age");
    policy_bad("version: STSv1\nmode: enforce\nmax_age: 1\n", "no mx");
    policy_bad("version: STSv1\nmode: testing\nmax_age: 1\n", "no mx");
    policy_bad("", "no version");
}

/* test_policy_refused_when_a_field_is_repeated */
static void test_policy_refused_when_a_field_is_repeated(void **state)
{
    policy_bad(RFC_POLICY "version: STSv1\n", "version given twice");
    policy_bad(RFC_POLICY "mode: enforce\n", "mode given twice");
    policy_bad(RFC_POLICY "max_age: 604800\n", "max_age given twice");
}

/* test_policy_refused_with_bad_values */
static void test_policy_refused_with_bad_values(void **state)
{
    policy_bad("version: STSv2\n", "line 1: version is not STSv1");
    policy_bad("version: stsv1\n", "version is not STSv1");
    policy_bad("version: STSv1\nmode: Enforce\n", "line 2: mode is not");
    policy_bad("version: STSv1\nmode: enforce now\n", "mode is not");
    policy_bad("max_age: 31557601\n", "over 31557600");
    policy_bad("max_age: 99999999999\n", "more than 10 digits");
    policy_bad("max_age: -1\n", "not a number");
    policy_bad("max_age: +1\n", "not a number");
    policy_bad("max_age: 1 2\n", "not a number");
    policy_bad("mode:\n", "empty value");
    policy_bad("mode: \t\n", "empty value");
}

/* test_policy_refused_with_bad_mx_patterns */
static void test_policy_refused_with_bad_mx_patterns(void **state)
{
    const char *bad[] = {"mx: *\n",
                         "mx: *.\n",
                         "mx: **.example.com\n",
                         "mx: a.*.example\n",
                         "mx: mx.example.com.\n",
                         "mx: .example.com\n",
                         "mx: a..example\n",
                         "mx: -a.example\n",
                         "mx: a-.example\n",
                         "mx: a_b.example\n",
                         "mx: a b.example\n",
                         "mx: [192.0.2.1]\n",
                         "mx: *example.com\n"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        policy_bad(bad[i], "mx is not a host name");
}

/* test_policy_refused_when_malformed */
static void test_policy_refused_when_malformed(void **state)
{
    struct mtasts_policy p;
    buf_t err = BUF_INIT;

    policy_bad("version STSv1\n", "not a key: value line");
    policy_bad(" version: STSv1\n", "not a key: value line");
    policy_bad("version : STSv1\n", "not a key: value line");
    policy_bad("version: STSv1\rmode: enforce\n", "control character");
    policy_bad("version: STSv1\r", "control character");
    policy_bad("version: STSv1\nfoo: a\x01\n", "line 2: control character");
    /* a NUL inside the text */
    assert_int_equal(mtasts_policy_parse("version: STSv1\0\n", 16, &p, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "control character"));
    buf_free(&err);
}

/* test_policy_bounds_on_size_and_mx_count */
static void test_policy_bounds_on_size_and_mx_count(void **state)
{
    struct mtasts_policy p;
    buf_t text = BUF_INIT, err = BUF_INIT;

    buf_puts(&text, "version: STSv1\nmode: enforce\nmax_age: 86400\n");
    for (int i = 0; i < MTASTS_MAX_MX; i++)
        buf_printf(&text, "mx: mx%d.example.com\n", i);
    assert_int_equal(mtasts_policy_parse(text.data, text.len, &p, &err), 0);
    assert_int_equal(p.mx_count, MTASTS_MAX_MX);
    assert_int_equal(mtasts_mx_match(&p, "mx99.example.com"), 1);
    mtasts_policy_free(&p);
    buf_puts(&text, "mx: one-more.example.com\n");
    assert_int_equal(mtasts_policy_parse(text.data, text.len, &p, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "more than 100 mx lines"));

    /* padding with an ignored key up to exactly the limit is fine, a byte more is not */
    buf_reset(&text);
    buf_puts(&text, "version: STSv1\nmode: none\nmax_age: 1\npad: ");
    while (text.len < MTASTS_MAX_POLICY)
        buf_putc(&text, 'x');
    buf_reset(&err);
    assert_int_equal(mtasts_policy_parse(text.data, text.len, &p, &err), 0);
    mtasts_policy_free(&p);
    buf_putc(&text, 'x');
    assert_int_equal(mtasts_policy_parse(text.data, text.len, &p, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "longer than 65536 bytes"));
    buf_free(&text);
    buf_free(&err);
}

/* test_policy_host_length_limits */
static void test_policy_host_length_limits(void **state)
{
    struct mtasts_policy p;
    buf_t text = BUF_INIT;
    char label[65];

    memset(label, 'a', 64);
    label[64] = 0;
    buf_printf(&text, "version: STSv1\nmode: enforce\nmax_age: 1\nmx: %.63s.example\n", label);
    policy_ok(buf_cstr(&text), &p);
    mtasts_policy_free(&p);
    buf_reset(&text);
    buf_printf(&text, "mx: %s.example\n", label);
    policy_bad(buf_cstr(&text), "mx is not a host name");

    /* 3 x 63 + 61 + 3 dots = 253 bytes after the "*.", one more is too long */
    buf_reset(&text);
    buf_printf(&text, "version: STSv1\nmode: enforce\nmax_age: 1\nmx: *.%.63s.%.63s.%.63s.%.61s\n",
               label, label, label, label);
    policy_ok(buf_cstr(&text), &p);
    mtasts_policy_free(&p);
    buf_reset(&text);
    buf_printf(&text, "mx: %.63s.%.63s.%.63s.%.62s\n", label, label, label, label);
    policy_bad(buf_cstr(&text), "mx is not a host name");
    buf_free(&text);
}

/* test_mx_match_exact_and_wildcard_rules */
static void test_mx_match_exact_and_wildcard_rules(void **state)
{
    struct mtasts_policy p;

    policy_ok(
        "version: STSv1\nmode: enforce\nmax_age: 1\nmx: mail.example.com\nmx: *.example.net\n", &p);
    assert_int_equal(mtasts_mx_match(&p, "mail.example.com"), 1);
    assert_int_equal(mtasts_mx_match(&p, "MAIL.Example.COM"), 1);
    assert_int_equal(mtasts_mx_match(&p, "mail.example.com."), 1);
    assert_int_equal(mtasts_mx_match(&p, "mx1.example.net"), 1);
    assert_int_equal(mtasts_mx_match(&p, "MX1.EXAMPLE.NET."), 1);
    /* RFC 8461 4.1: the wildcard is one label, never zero or two */
    assert_int_equal(mtasts_mx_match(&p, "example.net"), 0);
    assert_int_equal(mtasts_mx_match(&p, "a.b.example.net"), 0);
    assert_int_equal(mtasts_mx_match(&p, ".example.net"), 0);
    assert_int_equal(mtasts_mx_match(&p, "*.example.net"), 0);
    /* exact patterns do not match below or above themselves */
    assert_int_equal(mtasts_mx_match(&p, "x.mail.example.com"), 0);
    assert_int_equal(mtasts_mx_match(&p, "example.com"), 0);
    assert_int_equal(mtasts_mx_match(&p, "mail.example.co"), 0);
    assert_int_equal(mtasts_mx_match(&p, "mail.example.comm"), 0);
    assert_int_equal(mtasts_mx_match(&p, "mail.example.com.."), 0);
    assert_int_equal(mtasts_mx_match(&p, ""), 0);
    assert_int_equal(mtasts_mx_match(&p, "."), 0);
    mtasts_policy_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_txt_rfc_example_is_accepted),
        cmocka_unit_test(test_txt_unknown_fields_are_ignored),
        cmocka_unit_test(test_txt_refused_without_version_first),
        cmocka_unit_test(test_txt_refused_with_bad_or_missing_id),
        cmocka_unit_test(test_txt_refused_when_malformed),
        cmocka_unit_test(test_policy_rfc_example_is_accepted_with_lf_and_crlf),
        cmocka_unit_test(test_policy_accepts_blanks_unknown_keys_and_no_final_newline),
        cmocka_unit_test(test_policy_mode_none_needs_no_mx),
        cmocka_unit_test(test_policy_refused_when_a_required_field_is_missing),
        cmocka_unit_test(test_policy_refused_when_a_field_is_repeated),
        cmocka_unit_test(test_policy_refused_with_bad_values),
        cmocka_unit_test(test_policy_refused_with_bad_mx_patterns),
        cmocka_unit_test(test_policy_refused_when_malformed),
        cmocka_unit_test(test_policy_bounds_on_size_and_mx_count),
        cmocka_unit_test(test_policy_host_length_limits),
        cmocka_unit_test(test_mx_match_exact_and_wildcard_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
