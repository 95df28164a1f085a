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

extern char **environ;

static char **test_argv;
static char test_argv0[256];  /* the program name before the overwrite */
static size_t test_area_size; /* argv[0] to the end of the last contiguous env string */
static char **test_env;       /* copies of the original environment strings */

/* test_record_area - the space proctitle_init may use, and the environment,
 * measured before it moves anything */
static void test_record_area(int argc, char **argv)
{
    char *end = argv[0];
    size_t n = 0;

    for (int i = 0; i < argc; i++)
        if (argv[i] == end)
            end = argv[i] + strlen(argv[i]) + 1;
    for (; environ[n] != NULL; n++)
        if (environ[n] == end)
            end = environ[n] + strlen(environ[n]) + 1;
    test_area_size = (size_t)(end - argv[0]);
    test_env = calloc(n + 1, sizeof(*test_env));
    for (size_t i = 0; i < n; i++)
        test_env[i] = strdup(environ[i]);
}

/* test_env_intact - every original variable reads back unchanged */
static void test_env_intact(void)
{
    for (size_t i = 0; test_env[i] != NULL; i++) {
        char *eq = strchr(test_env[i], '=');
        if (eq == NULL)
            continue;
        char *name = strndup(test_env[i], (size_t)(eq - test_env[i]));
        assert_non_null(getenv(name));
        assert_string_equal(getenv(name), eq + 1);
        free(name);
    }
}

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
    static char line[1 << 20];
    static char big[1 << 20];

    memset(big, 'a', sizeof(big) - 1);
    assert_true(test_area_size + 1 < sizeof(line));
    proctitle_set("%s", big);
    test_cmdline(line, sizeof(line));
    assert_true(strncmp(line, "test-proctitle: aaaa", 20) == 0);
    /* the title and its NUL fill the area but one byte: cut, not spilled */
    assert_int_equal(strlen(line), test_area_size - 2);
    assert_string_equal(getenv("PROCTITLE_TEST"), "kept");
    test_env_intact();
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
    test_record_area(argc, argv);
    proctitle_init(argc, argv, "test-proctitle");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
