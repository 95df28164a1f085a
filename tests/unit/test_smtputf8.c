/*
 * test_smtputf8 - unit tests for lib/smtputf8: the UTF-8 decoder against
 * RFC 3629's edge cases (overlongs, surrogates, the end of Unicode,
 * truncation), address forms, IDNA2008 A-labels through libidn2, the
 * "without SMTPUTF8" form of an address and the log-safe form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtputf8.h"

/* form - smtputf8_form on a C string */
static enum smtputf8_form form(const char *s)
{
    return smtputf8_form(s, strlen(s));
}

/* decode - the length smtputf8_decode gives a C string, code point in *cp */
static size_t decode(const char *s, uint32_t *cp)
{
    return smtputf8_decode((const unsigned char *)s, strlen(s), cp);
}

/* test_decode_accepts_each_length_and_the_boundaries */
static void test_decode_accepts_each_length_and_the_boundaries(void **state)
{
    uint32_t cp = 0;

    assert_int_equal(decode("A", &cp), 1);
    assert_int_equal(cp, 0x41);
    assert_int_equal(decode("\xC2\x80", &cp), 2);
    assert_int_equal(cp, 0x80);
    assert_int_equal(decode("\xC3\xBC", &cp), 2); /* ü */
    assert_int_equal(cp, 0xFC);
    assert_int_equal(decode("\xE0\xA0\x80", &cp), 3);
    assert_int_equal(cp, 0x800);
    assert_int_equal(decode("\xED\x9F\xBF", &cp), 3);
    assert_int_equal(cp, 0xD7FF);
    assert_int_equal(decode("\xEE\x80\x80", &cp), 3);
    assert_int_equal(cp, 0xE000);
    assert_int_equal(decode("\xEF\xBF\xBF", &cp), 3);
    assert_int_equal(cp, 0xFFFF);
    assert_int_equal(decode("\xF0\x90\x80\x80", &cp), 4);
    assert_int_equal(cp, 0x10000);
    assert_int_equal(decode("\xF4\x8F\xBF\xBF", &cp), 4);
    assert_int_equal(cp, 0x10FFFF);
}

/* test_decode_refuses_overlongs_surrogates_and_beyond_unicode */
static void test_decode_refuses_overlongs_surrogates_and_beyond_unicode(void **state)
{
    static const char *bad[] = {
        "\xC0\xAF",         /* overlong '/' */
        "\xC1\xBF",         /* overlong */
        "\xE0\x80\xAF",     /* overlong '/' in three */
        "\xE0\x9F\xBF",     /* overlong U+07FF */
        "\xF0\x80\x80\xAF", /* overlong in four */
        "\xF0\x8F\xBF\xBF", /* overlong U+FFFF */
        "\xED\xA0\x80",     /* U+D800 */
        "\xED\xBF\xBF",     /* U+DFFF */
        "\xF4\x90\x80\x80", /* U+110000 */
        "\xF5\x80\x80\x80", /* no such lead byte */
        "\xFF",
        "\x80", /* a continuation alone */
        "\xC3", /* truncated */
        "\xE2\x82",
        "\xF0\x9F\x98",
        "\xC3\x28", /* a lead byte without continuation */
        "\xE2\x28\xA1",
        "\xF0\x9F\x28\x80",
    };
    uint32_t cp;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(decode(bad[i], &cp), 0);
    assert_int_equal(smtputf8_decode((const unsigned char *)"", 0, &cp), 0);
}

/* test_form_tells_ascii_utf8_and_invalid */
static void test_form_tells_ascii_utf8_and_invalid(void **state)
{
    assert_int_equal(form("alice@example.org"), SMTPUTF8_ASCII);
    assert_int_equal(form(""), SMTPUTF8_ASCII);
    assert_int_equal(form("j\xC3\xB6rg@b\xC3\xBC"
                          "cher.example"),
                     SMTPUTF8_UTF8);
    assert_int_equal(
        form("\xE7\x94\xA8\xE6\x88\xB7@\xE4\xBE\x8B\xE5\xAD\x90.\xE5\xB9\xBF\xE5\x91\x8A"),
        SMTPUTF8_UTF8);
    assert_int_equal(form("\xF0\x9F\x93\xA7@example.org"), SMTPUTF8_UTF8); /* U+1F4E7 */
    assert_int_equal(form("a\xC0\xAF@example.org"), SMTPUTF8_INVALID);
    assert_int_equal(form("a\xED\xA0\x80@example.org"), SMTPUTF8_INVALID);
    assert_int_equal(form("j\xF6rg@example.org"), SMTPUTF8_INVALID); /* Latin-1 */
}

/* test_form_refuses_controls_in_ascii_and_c1 */
static void test_form_refuses_controls_in_ascii_and_c1(void **state)
{
    assert_int_equal(form("a\tb@example.org"), SMTPUTF8_INVALID);
    assert_int_equal(form("a\r\nRCPT TO:<x>@example.org"), SMTPUTF8_INVALID);
    assert_int_equal(form("a\x7F@example.org"), SMTPUTF8_INVALID);
    assert_int_equal(form("a\xC2\x85@example.org"), SMTPUTF8_INVALID); /* NEL */
    assert_int_equal(form("a\xC2\x9F@example.org"), SMTPUTF8_INVALID);
    assert_int_equal(form("a\xC2\xA0@example.org"), SMTPUTF8_UTF8); /* NBSP is not C1 */
    assert_int_equal(smtputf8_form("a\0b", 3), SMTPUTF8_INVALID);
    assert_true(smtputf8_is_control(0));
    assert_false(smtputf8_is_control(' '));
    assert_false(smtputf8_is_control(0xA0));
}

/* test_is_ascii_looks_at_the_high_bit_only */
static void test_is_ascii_looks_at_the_high_bit_only(void **state)
{
    assert_true(smtputf8_is_ascii("postmaster", 10));
    assert_true(smtputf8_is_ascii("a\tb", 3));
    assert_false(smtputf8_is_ascii("b\xC3\xBC", 3));
    assert_false(smtputf8_is_ascii("\x80", 1));
    assert_true(smtputf8_is_ascii("b\xC3\xBC", 1)); /* the length is honoured */
}

/* to_ascii - smtputf8_domain_to_ascii into a fresh string */
static int to_ascii(const char *domain, buf_t *out)
{
    buf_reset(out);
    return smtputf8_domain_to_ascii(domain, out);
}

/* test_domain_to_ascii_makes_a_labels */
static void test_domain_to_ascii_makes_a_labels(void **state)
{
    buf_t out = BUF_INIT;

    assert_int_equal(to_ascii("b\xC3\xBC"
                              "cher.example",
                              &out),
                     0);
    assert_string_equal(buf_cstr(&out), "xn--bcher-kva.example");
    /* UTS #46 maps case: BÜCHER */
    assert_int_equal(to_ascii("B\xC3\x9C"
                              "CHER.example",
                              &out),
                     0);
    assert_string_equal(buf_cstr(&out), "xn--bcher-kva.example");
    /* non-transitional: ß stays ß (IDNA2008), not "ss" (IDNA2003) */
    assert_int_equal(to_ascii("fa\xC3\x9F.de", &out), 0);
    assert_string_equal(buf_cstr(&out), "xn--fa-hia.de");
    /* IANA's test domain 例子.测试 */
    assert_int_equal(to_ascii("\xE4\xBE\x8B\xE5\xAD\x90.\xE6\xB5\x8B\xE8\xAF\x95", &out), 0);
    assert_string_equal(buf_cstr(&out), "xn--fsqu00a.xn--0zwm56d");
    /* a fullwidth Ａ is mapped to a */
    assert_int_equal(to_ascii("\xEF\xBC\xA1\xC3\xBC.example", &out), 0);
    assert_string_equal(buf_cstr(&out), "xn--a-eha.example");
    buf_free(&out);
}

/* test_domain_to_ascii_keeps_ascii_and_literals */
static void test_domain_to_ascii_keeps_ascii_and_literals(void **state)
{
    buf_t out = BUF_INIT;

    assert_int_equal(to_ascii("Example.ORG", &out), 0);
    assert_string_equal(buf_cstr(&out), "Example.ORG");
    assert_int_equal(to_ascii("[192.0.2.1]", &out), 0);
    assert_string_equal(buf_cstr(&out), "[192.0.2.1]");
    assert_int_equal(to_ascii("_dmarc.example.org", &out), 0);
    buf_free(&out);
}

/* test_domain_to_ascii_refuses_what_idna2008_refuses */
static void test_domain_to_ascii_refuses_what_idna2008_refuses(void **state)
{
    buf_t out = BUF_INIT;

    buf_puts(&out, "kept");
    assert_int_equal(smtputf8_domain_to_ascii("", &out), -1);
    assert_int_equal(smtputf8_domain_to_ascii("b\xFC"
                                              "cher.example",
                                              &out),
                     -1); /* Latin-1 */
    assert_int_equal(smtputf8_domain_to_ascii("b\xC3\xBC\ncher.example", &out), -1);
    assert_int_equal(smtputf8_domain_to_ascii("[b\xC3\xBC]", &out), -1);
    /* a label of 64 bytes once converted */
    assert_int_equal(
        smtputf8_domain_to_ascii("\xC3\xBC"
                                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                 ".example",
                                 &out),
        -1);
    /* U+2615 HOT BEVERAGE is fine; U+00A0 NBSP is disallowed in a label */
    assert_int_equal(smtputf8_domain_to_ascii("a\xC2\xA0"
                                              "b.example",
                                              &out),
                     -1);
    assert_string_equal(buf_cstr(&out), "kept");
    buf_free(&out);
}

/* address - smtputf8_address_to_ascii into a fresh string */
static int address(const char *addr, buf_t *out)
{
    buf_reset(out);
    return smtputf8_address_to_ascii(addr, out);
}

/* test_address_reaches_plain_hop_when_local_part_is_ascii */
static void test_address_reaches_plain_hop_when_local_part_is_ascii(void **state)
{
    buf_t out = BUF_INIT;

    assert_int_equal(address("info@b\xC3\xBC"
                             "cher.example",
                             &out),
                     0);
    assert_string_equal(buf_cstr(&out), "info@xn--bcher-kva.example");
    assert_int_equal(address("alice@example.org", &out), 0);
    assert_string_equal(buf_cstr(&out), "alice@example.org");
    /* the domain is after the last '@' of a quoted local part */
    assert_int_equal(address("\"a@b\"@b\xC3\xBC"
                             "cher.example",
                             &out),
                     0);
    assert_string_equal(buf_cstr(&out), "\"a@b\"@xn--bcher-kva.example");
    assert_int_equal(address("", &out), 0);
    assert_string_equal(buf_cstr(&out), "");
    assert_int_equal(address("postmaster", &out), 0);
    assert_string_equal(buf_cstr(&out), "postmaster");
    /* an ASCII domain is not checked here: that is the address parser's job */
    assert_int_equal(address("bob@[192.0.2.1]", &out), 0);
    assert_string_equal(buf_cstr(&out), "bob@[192.0.2.1]");
    buf_free(&out);
}

/* test_address_needs_smtputf8_for_utf8_local_part_or_bad_domain */
static void test_address_needs_smtputf8_for_utf8_local_part_or_bad_domain(void **state)
{
    buf_t out = BUF_INIT;

    buf_puts(&out, "x");
    assert_int_equal(smtputf8_address_to_ascii("j\xC3\xB6rg@example.org", &out), -1);
    assert_int_equal(smtputf8_address_to_ascii("j\xC3\xB6rg", &out), -1);
    assert_int_equal(smtputf8_address_to_ascii("info@a\xC2\xA0"
                                               "b.example",
                                               &out),
                     -1);
    assert_int_equal(smtputf8_address_to_ascii("info@", &out), -1);
    assert_int_equal(smtputf8_address_to_ascii("a\tb@example.org", &out), -1);
    assert_string_equal(buf_cstr(&out), "x"); /* nothing half-written */
    buf_free(&out);
}

/* safe - smtputf8_log_safe of len bytes into a fresh string */
static const char *safe(const char *s, size_t len, buf_t *out)
{
    buf_reset(out);
    smtputf8_log_safe(s, len, out);
    return buf_cstr(out);
}

/* test_log_safe_keeps_printable_utf8 */
static void test_log_safe_keeps_printable_utf8(void **state)
{
    buf_t out = BUF_INIT;
    const char *jorg = "j\xC3\xB6rg@b\xC3\xBC"
                       "cher.example \xF0\x9F\x93\xA7";

    assert_string_equal(safe(jorg, strlen(jorg), &out), jorg);
    assert_string_equal(safe("alice@example.org", 17, &out), "alice@example.org");
    buf_free(&out);
}

/* test_log_safe_escapes_controls_invisibles_and_bad_bytes */
static void test_log_safe_escapes_controls_invisibles_and_bad_bytes(void **state)
{
    buf_t out = BUF_INIT;

    assert_string_equal(safe("a\r\nb", 4, &out), "a\\u{000D}\\u{000A}b");
    assert_string_equal(safe("a\0b", 3, &out), "a\\u{0000}b");
    assert_string_equal(safe("a\x7F", 2, &out), "a\\u{007F}");
    assert_string_equal(safe("a\xC2\x85", 3, &out), "a\\u{0085}");
    assert_string_equal(safe("\xE2\x80\xAE"
                             "gpj.exe",
                             10, &out),
                        "\\u{202E}gpj.exe"); /* RLO */
    assert_string_equal(safe("a\xE2\x80\x8B"
                             "b",
                             5, &out),
                        "a\\u{200B}b");
    assert_string_equal(safe("\xEF\xBB\xBF", 3, &out), "\\u{FEFF}");
    assert_string_equal(safe("j\xF6rg", 4, &out), "j\\xF6rg");
    assert_string_equal(safe("\xC0\xAF", 2, &out), "\\xC0\\xAF");
    assert_string_equal(safe("\xE2\x82", 2, &out), "\\xE2\\x82");
    /* an escape the client wrote itself stays distinguishable */
    assert_string_equal(safe("\\xF6", 4, &out), "\\\\xF6");
    assert_int_equal(smtputf8_form(out.data, out.len), SMTPUTF8_ASCII);
    buf_free(&out);
}

/* test_log_safe_appends */
static void test_log_safe_appends(void **state)
{
    buf_t out = BUF_INIT;

    buf_puts(&out, "from=<");
    smtputf8_log_safe("a\nb", 3, &out);
    buf_putc(&out, '>');
    assert_string_equal(buf_cstr(&out), "from=<a\\u{000A}b>");
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_accepts_each_length_and_the_boundaries),
        cmocka_unit_test(test_decode_refuses_overlongs_surrogates_and_beyond_unicode),
        cmocka_unit_test(test_form_tells_ascii_utf8_and_invalid),
        cmocka_unit_test(test_form_refuses_controls_in_ascii_and_c1),
        cmocka_unit_test(test_is_ascii_looks_at_the_high_bit_only),
        cmocka_unit_test(test_domain_to_ascii_makes_a_labels),
        cmocka_unit_test(test_domain_to_ascii_keeps_ascii_and_literals),
        cmocka_unit_test(test_domain_to_ascii_refuses_what_idna2008_refuses),
        cmocka_unit_test(test_address_reaches_plain_hop_when_local_part_is_ascii),
        cmocka_unit_test(test_address_needs_smtputf8_for_utf8_local_part_or_bad_domain),
        cmocka_unit_test(test_log_safe_keeps_printable_utf8),
        cmocka_unit_test(test_log_safe_escapes_controls_invisibles_and_bad_bytes),
        cmocka_unit_test(test_log_safe_appends),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
