/*
 * test_cleanup_milter - unit tests for cleanup/milter_model.c: the header
 * section as cleanup's milters see and change it (insert, change, delete,
 * add; indexes past the end; folding both ways; the leading space) and the
 * address and body helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cleanup.h"

static const char section[] = "Received: from a by b;\r\n"
                              "\tSun, 1 Jan 2026 00:00:00 +0000\r\n"
                              "Subject: one\r\n"
                              "X-A: first\r\n"
                              "x-a: second\r\n"
                              "Date: today\r\n";

/* written - the section after the changes */
static void assert_written(const struct cleanup_milter_headers *h, const char *want)
{
    buf_t out = BUF_INIT;

    cleanup_milter_headers_write(h, &out);
    assert_string_equal(buf_cstr(&out), want);
    buf_free(&out);
}

static void parse(struct cleanup_milter_headers *h)
{
    cleanup_milter_headers_init(h);
    cleanup_milter_headers_parse(h, section, strlen(section));
}

static void test_parse_keeps_folding_and_writes_back_unchanged(void **state)
{
    struct cleanup_milter_headers h;

    parse(&h);
    assert_int_equal(h.count, 5);
    assert_string_equal(h.v[0].name, "Received");
    assert_string_equal(h.v[0].value, " from a by b;\r\n\tSun, 1 Jan 2026 00:00:00 +0000");
    assert_int_equal(h.changed, 0);
    assert_written(&h, section);
    cleanup_milter_headers_free(&h);
}

static void test_value_out_strips_one_space_and_cr(void **state)
{
    buf_t v = BUF_INIT;

    cleanup_milter_value_out(" from a by b;\r\n\tSun", 0, &v);
    assert_string_equal(buf_cstr(&v), "from a by b;\n\tSun");
    cleanup_milter_value_out("  two", 0, &v);
    assert_string_equal(buf_cstr(&v), " two");
    cleanup_milter_value_out(" kept", 1, &v);
    assert_string_equal(buf_cstr(&v), " kept");
    buf_free(&v);
}

static void test_add_goes_last_with_folding(void **state)
{
    struct cleanup_milter_headers h;

    parse(&h);
    cleanup_milter_headers_add(&h, "X-Test", "1", 0);
    cleanup_milter_headers_add(&h, "X-Fold", "a\n\tb\nc\n", 0);
    assert_int_equal(h.changed, 1);
    assert_string_equal(h.v[5].value, " 1");
    assert_string_equal(h.v[6].value, " a\r\n\tb\r\n\tc");
    cleanup_milter_headers_free(&h);
}

static void test_add_with_leadspc_keeps_value_as_given(void **state)
{
    struct cleanup_milter_headers h;

    parse(&h);
    cleanup_milter_headers_add(&h, "X-Raw", "\tv", 1);
    assert_string_equal(h.v[5].value, "\tv");
    cleanup_milter_headers_free(&h);
}

static void test_insert_zero_is_before_received(void **state)
{
    struct cleanup_milter_headers h;

    parse(&h);
    cleanup_milter_headers_insert(&h, 0, "DKIM-Signature", "v=1", 0);
    assert_string_equal(h.v[0].name, "DKIM-Signature");
    assert_string_equal(h.v[1].name, "Received");
    cleanup_milter_headers_insert(&h, 2, "X-Mid", "m", 0);
    assert_string_equal(h.v[2].name, "X-Mid");
    assert_string_equal(h.v[3].name, "Subject");
    cleanup_milter_headers_free(&h);
}

static void test_insert_past_end_appends(void **state)
{
    struct cleanup_milter_headers h;

    parse(&h);
    cleanup_milter_headers_insert(&h, 99, "X-End", "e", 0);
    assert_int_equal(h.count, 6);
    assert_string_equal(h.v[5].name, "X-End");
    cleanup_milter_headers_free(&h);
}

static void test_change_counts_occurrences_in_any_case(void **state)
{
    struct cleanup_milter_headers h;

    parse(&h);
    cleanup_milter_headers_change(&h, 2, "X-A", "new", 0);
    assert_string_equal(h.v[2].value, " first");
    assert_string_equal(h.v[3].name, "x-a");
    assert_string_equal(h.v[3].value, " new");
    cleanup_milter_headers_change(&h, 0, "x-A", "zero", 0); /* 0 counts as 1 */
    assert_string_equal(h.v[2].value, " zero");
    cleanup_milter_headers_free(&h);
}

static void test_change_empty_value_deletes(void **state)
{
    struct cleanup_milter_headers h;

    parse(&h);
    cleanup_milter_headers_change(&h, 1, "Subject", "", 0);
    assert_int_equal(h.count, 4);
    assert_int_equal(h.changed, 1);
    assert_written(&h, "Received: from a by b;\r\n"
                       "\tSun, 1 Jan 2026 00:00:00 +0000\r\n"
                       "X-A: first\r\n"
                       "x-a: second\r\n"
                       "Date: today\r\n");
    cleanup_milter_headers_free(&h);
}

static void test_change_beyond_occurrences_adds(void **state)
{
    struct cleanup_milter_headers h;

    parse(&h);
    cleanup_milter_headers_change(&h, 3, "X-A", "third", 0);
    assert_int_equal(h.count, 6);
    assert_string_equal(h.v[5].name, "X-A");
    assert_string_equal(h.v[5].value, " third");
    cleanup_milter_headers_change(&h, 1, "X-None", "", 0); /* deleting nothing */
    assert_int_equal(h.count, 6);
    cleanup_milter_headers_free(&h);
}

static void test_change_folds_new_value(void **state)
{
    struct cleanup_milter_headers h;

    parse(&h);
    cleanup_milter_headers_change(&h, 1, "Subject", "a\r\n b", 0);
    assert_string_equal(h.v[1].value, " a\r\n b");
    cleanup_milter_headers_free(&h);
}

static void test_line_without_colon_is_written_back(void **state)
{
    struct cleanup_milter_headers h;
    static const char odd[] = "Odd line\r\nA: b\r\n";

    cleanup_milter_headers_init(&h);
    cleanup_milter_headers_parse(&h, odd, strlen(odd));
    assert_int_equal(h.count, 2);
    assert_null(h.v[0].value);
    assert_written(&h, odd);
    cleanup_milter_headers_free(&h);
}

static void test_addr_match_ignores_brackets_and_case(void **state)
{
    buf_t a = BUF_INIT;

    assert_true(cleanup_milter_addr_match("bob@example.test", "<Bob@Example.test>"));
    assert_true(cleanup_milter_addr_match("bob@example.test", " bob@example.test "));
    assert_false(cleanup_milter_addr_match("bob@example.test", "bo@example.test"));
    cleanup_milter_addr_strip("<x@y>", &a);
    assert_string_equal(buf_cstr(&a), "x@y");
    cleanup_milter_addr_strip("<>", &a);
    assert_string_equal(buf_cstr(&a), "");
    buf_free(&a);
}

static void test_body_bare_lf_becomes_crlf(void **state)
{
    buf_t b = BUF_INIT;

    cleanup_milter_body_crlf("a\nb\r\nc\n", 7, &b);
    assert_int_equal(b.len, 9);
    assert_memory_equal(b.data, "a\r\nb\r\nc\r\n", 9);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_keeps_folding_and_writes_back_unchanged),
        cmocka_unit_test(test_value_out_strips_one_space_and_cr),
        cmocka_unit_test(test_add_goes_last_with_folding),
        cmocka_unit_test(test_add_with_leadspc_keeps_value_as_given),
        cmocka_unit_test(test_insert_zero_is_before_received),
        cmocka_unit_test(test_insert_past_end_appends),
        cmocka_unit_test(test_change_counts_occurrences_in_any_case),
        cmocka_unit_test(test_change_empty_value_deletes),
        cmocka_unit_test(test_change_beyond_occurrences_adds),
        cmocka_unit_test(test_change_folds_new_value),
        cmocka_unit_test(test_line_without_colon_is_written_back),
        cmocka_unit_test(test_addr_match_ignores_brackets_and_case),
        cmocka_unit_test(test_body_bare_lf_becomes_crlf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
