/*
 * test_buf - unit tests for lib/buf: growth, NUL termination, the editing
 * helpers and the xmalloc family.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

/* test_buf_unallocated_cstr_is_empty_string - BUF_INIT needs no allocation */
static void test_buf_unallocated_cstr_is_empty_string(void **state)
{
    buf_t b = BUF_INIT;

    assert_null(b.data);
    assert_string_equal(buf_cstr(&b), "");
    buf_reset(&b);
    buf_truncate(&b, 0);
    buf_consume(&b, 10);
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_cstr(&b), "");
    buf_free(&b);
}

/* test_buf_append_keeps_nul_termination - data[len] is always 0 */
static void test_buf_append_keeps_nul_termination(void **state)
{
    buf_t b = BUF_INIT;

    buf_append(&b, "abc", 3);
    assert_int_equal(b.len, 3);
    assert_int_equal(b.data[3], 0);
    buf_append(&b, "", 0);
    assert_int_equal(b.data[3], 0);
    buf_putc(&b, 'd');
    buf_puts(&b, "ef");
    assert_int_equal(b.len, 6);
    assert_string_equal(b.data, "abcdef");
    assert_true(b.cap > b.len);
    buf_free(&b);
}

/* test_buf_grows_to_hold_large_input - many small appends, all bytes kept */
static void test_buf_grows_to_hold_large_input(void **state)
{
    buf_t b = BUF_INIT;
    const size_t n = 300000;

    for (size_t i = 0; i < n; i++) {
        buf_putc(&b, 'a' + (int)(i % 26));
        assert_true(b.cap >= b.len + 1);
    }
    assert_int_equal(b.len, n);
    assert_int_equal(b.data[n], 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(b.data[i], 'a' + (int)(i % 26));
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

/* test_buf_reserve_makes_room_without_changing_len */
static void test_buf_reserve_makes_room_without_changing_len(void **state)
{
    buf_t b = BUF_INIT;

    buf_puts(&b, "xy");
    buf_reserve(&b, 100000);
    assert_int_equal(b.len, 2);
    assert_true(b.cap >= 100003);
    assert_string_equal(b.data, "xy");
    buf_free(&b);
}

/* test_buf_binary_data_with_nul_bytes_is_counted - len counts embedded NULs */
static void test_buf_binary_data_with_nul_bytes_is_counted(void **state)
{
    buf_t b = BUF_INIT;
    static const char bin[] = {'a', 0, 'b', 0, 0};

    buf_append(&b, bin, sizeof(bin));
    assert_int_equal(b.len, sizeof(bin));
    assert_memory_equal(b.data, bin, sizeof(bin));
    assert_int_equal(b.data[sizeof(bin)], 0);
    buf_free(&b);
}

/* test_buf_printf_appends_long_formatted_text - output longer than first cap */
static void test_buf_printf_appends_long_formatted_text(void **state)
{
    buf_t b = BUF_INIT;
    char big[1000];

    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    buf_puts(&b, "<");
    buf_printf(&b, "%d-%s-%s", 42, "x", big);
    assert_int_equal(b.len, 1 + 5 + strlen(big));
    assert_int_equal(strncmp(b.data, "<42-x-zzz", 9), 0);
    assert_int_equal(b.data[b.len], 0);
    assert_int_equal(strlen(b.data), b.len);
    buf_free(&b);
}

/* test_buf_set_replaces_contents */
static void test_buf_set_replaces_contents(void **state)
{
    buf_t b = BUF_INIT;

    buf_puts(&b, "a long old value");
    buf_set(&b, "new");
    assert_string_equal(b.data, "new");
    assert_int_equal(b.len, 3);
    buf_free(&b);
}

/* test_buf_consume_drops_prefix_and_all_when_over_len */
static void test_buf_consume_drops_prefix_and_all_when_over_len(void **state)
{
    buf_t b = BUF_INIT;

    buf_puts(&b, "hello world");
    buf_consume(&b, 6);
    assert_string_equal(b.data, "world");
    assert_int_equal(b.len, 5);
    buf_consume(&b, 5);
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_cstr(&b), "");
    buf_puts(&b, "abc");
    buf_consume(&b, 1000);
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_cstr(&b), "");
    buf_free(&b);
}

/* test_buf_truncate_only_shortens */
static void test_buf_truncate_only_shortens(void **state)
{
    buf_t b = BUF_INIT;

    buf_puts(&b, "abcdef");
    buf_truncate(&b, 10);
    assert_string_equal(b.data, "abcdef");
    buf_truncate(&b, 3);
    assert_string_equal(b.data, "abc");
    assert_int_equal(b.len, 3);
    buf_free(&b);
}

/* test_buf_reset_keeps_memory_and_empties */
static void test_buf_reset_keeps_memory_and_empties(void **state)
{
    buf_t b = BUF_INIT;

    buf_puts(&b, "something");
    size_t cap = b.cap;
    char *data = b.data;
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap);
    assert_ptr_equal(b.data, data);
    assert_string_equal(b.data, "");
    buf_free(&b);
}

/* test_buf_steal_hands_over_string_and_empties_buffer */
static void test_buf_steal_hands_over_string_and_empties_buffer(void **state)
{
    buf_t b = BUF_INIT;

    buf_puts(&b, "mine");
    char *s = buf_steal(&b);
    assert_string_equal(s, "mine");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(s);
    s = buf_steal(&b); /* an empty buffer still gives a real string */
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
}

/* test_xstrndup_stops_at_n_or_nul */
static void test_xstrndup_stops_at_n_or_nul(void **state)
{
    char *a = xstrndup("abcdef", 3);
    char *b = xstrndup("ab", 10);
    char *c = xstrdup("");
    void *z = xmalloc(0);
    void *y = xcalloc(0, 0);

    assert_string_equal(a, "abc");
    assert_string_equal(b, "ab");
    assert_string_equal(c, "");
    assert_non_null(z);
    assert_non_null(y);
    z = xrealloc(z, 0);
    assert_non_null(z);
    free(a);
    free(b);
    free(c);
    free(z);
    free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_unallocated_cstr_is_empty_string),
        cmocka_unit_test(test_buf_append_keeps_nul_termination),
        cmocka_unit_test(test_buf_grows_to_hold_large_input),
        cmocka_unit_test(test_buf_reserve_makes_room_without_changing_len),
        cmocka_unit_test(test_buf_binary_data_with_nul_bytes_is_counted),
        cmocka_unit_test(test_buf_printf_appends_long_formatted_text),
        cmocka_unit_test(test_buf_set_replaces_contents),
        cmocka_unit_test(test_buf_consume_drops_prefix_and_all_when_over_len),
        cmocka_unit_test(test_buf_truncate_only_shortens),
        cmocka_unit_test(test_buf_reset_keeps_memory_and_empties),
        cmocka_unit_test(test_buf_steal_hands_over_string_and_empties_buffer),
        cmocka_unit_test(test_xstrndup_stops_at_n_or_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
