/*
 * test_loadavg - unit tests for lib/loadavg: the first number of
 * /proc/loadavg's format, limits, and a file rewritten between reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "loadavg.h"

static void test_loadavg_parse_takes_the_first_number(void **state)
{
    double v = -1;

    assert_int_equal(loadavg_parse("0.52 0.58 0.59 1/467 12345\n", &v), 0);
    assert_true(v > 0.51 && v < 0.53);
    assert_int_equal(loadavg_parse("15\n", &v), 0);
    assert_true(v == 15);
    assert_int_equal(loadavg_parse("12.5", &v), 0);
    assert_true(v == 12.5);
}

static void test_loadavg_parse_refuses_what_is_not_a_load(void **state)
{
    static const char *bad[] = {"", "x", "-1", "nan", "inf", "1e999", "12abc", "0x10", " "};
    double v = 7;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(loadavg_parse(bad[i], &v), -1);
    assert_true(v == 7);
    assert_int_equal(loadavg_limit_parse("0", &v), 0);
    assert_true(v == 0);
}

static void test_loadavg_read_sees_a_rewritten_file(void **state)
{
    char path[] = "/tmp/test_loadavg_XXXXXX";
    int fd = mkstemp(path);
    struct loadavg_source src;
    double v = 0;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, "3 2 1\n", 6), 6);
    loadavg_open(&src, path);
    assert_int_equal(loadavg_read(&src, &v), 0);
    assert_true(v == 3);
    FILE *f = fopen(path, "w");
    fputs("14.25\n", f);
    fclose(f);
    assert_int_equal(loadavg_read(&src, &v), 0);
    assert_true(v == 14.25);
    unlink(path); /* gone (a chroot without it): the file kept open */
    assert_int_equal(loadavg_read(&src, &v), 0);
    assert_true(v == 14.25);
    loadavg_close(&src);
    close(fd);
}

static void test_loadavg_missing_file_is_unknown(void **state)
{
    struct loadavg_source src;
    double v = 0;

    loadavg_open(&src, "/nonexistent/loadavg");
    assert_int_equal(loadavg_read(&src, &v), -1);
    loadavg_close(&src);
    loadavg_open(&src, "");
    assert_string_equal(src.path, LOADAVG_DEFAULT_FILE);
    loadavg_close(&src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loadavg_parse_takes_the_first_number),
        cmocka_unit_test(test_loadavg_parse_refuses_what_is_not_a_load),
        cmocka_unit_test(test_loadavg_read_sees_a_rewritten_file),
        cmocka_unit_test(test_loadavg_missing_file_is_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
