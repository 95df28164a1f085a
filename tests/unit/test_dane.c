/*
 * test_dane - unit tests for lib/dane (RFC 7672): TLSA texts as lib/dns
 * prints them are parsed exactly; bad numbers, bad hex, missing or oversized
 * data and digests of the wrong length are malformed; only DANE-TA and
 * DANE-EE with known selectors and matching types are usable; a set keeps
 * the usable records and counts the rest; the owner name is
 * "_PORT._tcp.HOST".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "dane.h"

/* sha256("") as lib/dns prints a TLSA record's data */
#define SHA256_HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA512_HEX SHA256_HEX SHA256_HEX

/* repeat_hex - "ab" n times (n bytes of data), malloc'ed */
static char *repeat_hex(const char *prefix, size_t n)
{
    size_t plen = strlen(prefix);
    char *s = malloc(plen + 2 * n + 1);

    memcpy(s, prefix, plen);
    for (size_t i = 0; i < n; i++)
        memcpy(s + plen + 2 * i, "ab", 2);
    s[plen + 2 * n] = 0;
    return s;
}

/* parse_bad - text is malformed and leaves r empty */
static void parse_bad(const char *text)
{
    struct dane_tlsa r = {1, 1, 1, (unsigned char *)"x", 1};

    if (dane_tlsa_parse(text, &r) != -1)
        fail_msg("'%s' accepted", text);
    assert_null(r.data);
    assert_int_equal(r.len, 0);
}

/* usable - parse text (well-formed) and say whether it is usable */
static int usable(const char *text)
{
    struct dane_tlsa r;
    int u;

    if (dane_tlsa_parse(text, &r) != 0)
        fail_msg("'%s' refused", text);
    u = dane_tlsa_usable(&r);
    free(r.data);
    return u;
}

static void test_dane_ee_spki_sha256_parsed_exactly(void **state)
{
    struct dane_tlsa r;

    assert_int_equal(dane_tlsa_parse("3 1 1 " SHA256_HEX, &r), 0);
    assert_int_equal(r.usage, 3);
    assert_int_equal(r.selector, 1);
    assert_int_equal(r.mtype, 1);
    assert_int_equal(r.len, 32);
    assert_int_equal(r.data[0], 0xe3);
    assert_int_equal(r.data[31], 0x55);
    free(r.data);
}

static void test_upper_case_hex_and_full_data_accepted(void **state)
{
    struct dane_tlsa r;

    assert_int_equal(dane_tlsa_parse("2 0 0 00FFaB", &r), 0);
    assert_int_equal(r.len, 3);
    assert_memory_equal(r.data, "\x00\xff\xab", 3);
    free(r.data);
}

static void test_sha512_needs_64_bytes(void **state)
{
    struct dane_tlsa r;

    assert_int_equal(dane_tlsa_parse("3 1 2 " SHA512_HEX, &r), 0);
    assert_int_equal(r.len, 64);
    free(r.data);
    parse_bad("3 1 2 " SHA256_HEX);
}

static void test_sha256_needs_32_bytes(void **state)
{
    parse_bad("3 1 1 " SHA512_HEX);
    parse_bad("3 1 1 e3b0");
}

static void test_bad_numbers_are_malformed(void **state)
{
    parse_bad("");
    parse_bad("3");
    parse_bad("3 1 1");
    parse_bad("256 1 1 " SHA256_HEX);
    parse_bad("3 1 1000 " SHA256_HEX);
    parse_bad("-3 1 1 " SHA256_HEX);
    parse_bad("x 1 1 " SHA256_HEX);
    parse_bad("3  1 1 " SHA256_HEX);
    parse_bad(" 3 1 1 " SHA256_HEX);
    parse_bad("3\t1 1 " SHA256_HEX);
}

static void test_bad_hex_is_malformed(void **state)
{
    parse_bad("3 1 0 abc");
    parse_bad("3 1 0 zz");
    parse_bad("3 1 0 ab cd");
    parse_bad("3 1 1 " SHA256_HEX " ");
    parse_bad("3 1 0 0x00");
}

static void test_missing_data_is_malformed(void **state)
{
    parse_bad("3 1 1 ");
    parse_bad("2 0 0 ");
}

static void test_data_over_1024_bytes_is_malformed(void **state)
{
    char *max = repeat_hex("3 0 0 ", DANE_TLSA_MAX_DATA);
    char *over = repeat_hex("3 0 0 ", DANE_TLSA_MAX_DATA + 1);
    struct dane_tlsa r;

    assert_int_equal(dane_tlsa_parse(max, &r), 0);
    assert_int_equal(r.len, DANE_TLSA_MAX_DATA);
    free(r.data);
    parse_bad(over);
    free(max);
    free(over);
}

static void test_only_dane_ta_and_dane_ee_are_usable(void **state)
{
    assert_true(usable("3 1 1 " SHA256_HEX));
    assert_true(usable("3 0 1 " SHA256_HEX));
    assert_true(usable("2 0 1 " SHA256_HEX));
    assert_true(usable("2 1 2 " SHA512_HEX));
    assert_true(usable("3 1 0 00ff"));
    assert_false(usable("0 0 1 " SHA256_HEX));
    assert_false(usable("1 0 1 " SHA256_HEX));
    assert_false(usable("4 0 1 " SHA256_HEX));
    assert_false(usable("255 1 1 " SHA256_HEX));
}

static void test_unknown_selector_or_mtype_is_unusable(void **state)
{
    assert_false(usable("3 2 1 " SHA256_HEX));
    assert_false(usable("3 255 1 " SHA256_HEX));
    assert_false(usable("3 1 3 00ff"));
    assert_false(usable("3 1 255 00ff"));
}

static void test_set_keeps_usable_records_in_order(void **state)
{
    char *texts[] = {
        "0 0 1 " SHA256_HEX, "3 1 1 " SHA256_HEX, "garbage", "2 0 0 0102", "3 1 1 ", NULL};
    struct dane_tlsa *set;
    size_t count;

    assert_int_equal(dane_tlsa_set(texts, &set, &count), 3);
    assert_int_equal(count, 2);
    assert_int_equal(set[0].usage, 3);
    assert_int_equal(set[0].len, 32);
    assert_int_equal(set[1].usage, 2);
    assert_memory_equal(set[1].data, "\x01\x02", 2);
    dane_tlsa_free(set, count);
}

static void test_set_with_nothing_usable_is_empty_and_counted(void **state)
{
    char *texts[] = {"1 1 1 " SHA256_HEX, "3 1 1 zz", NULL};
    struct dane_tlsa *set = (struct dane_tlsa *)texts;
    size_t count = 9;

    assert_int_equal(dane_tlsa_set(texts, &set, &count), 2);
    assert_int_equal(count, 0);
    assert_null(set);
    dane_tlsa_free(set, count);
}

static void test_set_of_no_texts_is_empty(void **state)
{
    char *none[] = {NULL};
    struct dane_tlsa *set;
    size_t count;

    assert_int_equal(dane_tlsa_set(none, &set, &count), 0);
    assert_int_equal(count, 0);
    assert_null(set);
    assert_int_equal(dane_tlsa_set(NULL, &set, &count), 0);
    assert_null(set);
}

static void test_tlsa_name_of_host_and_port(void **state)
{
    buf_t name = BUF_INIT;

    buf_puts(&name, "old contents");
    dane_tlsa_name("mx.example.com", 25, &name);
    assert_string_equal(buf_cstr(&name), "_25._tcp.mx.example.com");
    dane_tlsa_name("mx.example.com.", 2525, &name);
    assert_string_equal(buf_cstr(&name), "_2525._tcp.mx.example.com");
    buf_free(&name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dane_ee_spki_sha256_parsed_exactly),
        cmocka_unit_test(test_upper_case_hex_and_full_data_accepted),
        cmocka_unit_test(test_sha512_needs_64_bytes),
        cmocka_unit_test(test_sha256_needs_32_bytes),
        cmocka_unit_test(test_bad_numbers_are_malformed),
        cmocka_unit_test(test_bad_hex_is_malformed),
        cmocka_unit_test(test_missing_data_is_malformed),
        cmocka_unit_test(test_data_over_1024_bytes_is_malformed),
        cmocka_unit_test(test_only_dane_ta_and_dane_ee_are_usable),
        cmocka_unit_test(test_unknown_selector_or_mtype_is_unusable),
        cmocka_unit_test(test_set_keeps_usable_records_in_order),
        cmocka_unit_test(test_set_with_nothing_usable_is_empty_and_counted),
        cmocka_unit_test(test_set_of_no_texts_is_empty),
        cmocka_unit_test(test_tlsa_name_of_host_and_port),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
