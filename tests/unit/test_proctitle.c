/*
 * test_proctitle - unit tests for lib/proctitle: /proc/self/cmdline shows
 * the title, the argument strings and the environment stay readable after
 * the overwrite, and a title longer than the space is cut, not spilled.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proctitle.h"

static char **test_argv;
static char test_argv0[256]; /* the program name before the overwrite */

/* test_cmdline - /proc/self/cmdline up to its first NUL */
static void test_cmdline(char *out, size_t len)
{
    int fd = open("/proc/self/cmdline", O_RDONLY);
    ssize_t n;

    assert_true(fd >= 0);
    n = read(fd, out, len - 1);
    close(fd);
    assert_true(n > 0);
    out[n] = '\0';
}

static void test_proctitle_shows_in_cmdline(void **state)
{
    char line[4096];

    proctitle_set("%d sessions, last [%s]", 3, "192.0.2.1");
    test_cmdline(line, sizeof(line));
    assert_string_equal(line, "test-proctitle: 3 sessions, last [192.0.2.1]");
}

static void test_proctitle_keeps_argv_and_environ(void **state)
{
    proctitle_set("x");
    assert_string_equal(test_argv[0], test_argv0);
    assert_string_equal(getenv("PROCTITLE_TEST"), "kept");
}

static void test_proctitle_long_title_is_cut(void **state)
{
    char line[65536];
    static char big[100000];

    memset(big, 'a', sizeof(big) - 1);
    proctitle_set("%s", big);
    test_cmdline(line, sizeof(line));
    assert_true(strncmp(line, "test-proctitle: aaaa", 20) == 0);
    assert_true(strlen(line) < sizeof(big) - 1);
    assert_string_equal(getenv("PROCTITLE_TEST"), "kept");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proctitle_shows_in_cmdline),
        cmocka_unit_test(test_proctitle_keeps_argv_and_environ),
        cmocka_unit_test(test_proctitle_long_title_is_cut),
    };

    /* the environment must be set before proctitle_init moves it */
    if (getenv("PROCTITLE_TEST") == NULL) {
        setenv("PROCTITLE_TEST", "kept", 1);
        execv("/proc/self/exe", argv);
        return 1;
    }
    snprintf(test_argv0, sizeof(test_argv0), "%s", argv[0]);
    test_argv = argv;
    proctitle_init(argc, argv, "test-proctitle");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
