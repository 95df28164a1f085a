/*
 * test_table_socketmap - lib/table_socketmap.c's connection handling, which
 * one `tern map -q` per lookup cannot show: the connection is kept between
 * lookups, a kept connection the server closed is made again once, and a
 * TEMP reply drops the connection.  The server is a child process on a
 * unix socket that serves a script of connections and replies.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "netstring.h"
#include "table.h"

/* the replies of each connection the child accepts, in order; NULL ends a
 * connection (the child closes it after answering the ones before) */
static const char *const script[] = {"OK one",    NULL, "OK two",   "NOTFOUND ",
                                     "TEMP busy", NULL, "OK three", NULL};
#define SCRIPT_CONNECTIONS 3

/* server_read_request - consume one netstring from fd: 0, or -1 at EOF */
static int server_read_request(int fd)
{
    char c;
    size_t len = 0;

    while (read(fd, &c, 1) == 1 && c != ':')
        len = len * 10 + (size_t)(c - '0');
    if (c != ':')
        return -1;
    for (size_t i = 0; i <= len; i++)
        if (read(fd, &c, 1) != 1)
            return -1;
    return 0;
}

/* server_run - the child: serve script on listener, then exit */
static void server_run(int listener)
{
    size_t step = 0;

    for (int n = 0; n < SCRIPT_CONNECTIONS; n++, step++) {
        int fd = accept(listener, NULL, NULL);
        for (; fd >= 0 && script[step] != NULL; step++) {
            buf_t out = BUF_INIT;
            if (server_read_request(fd) < 0)
                _exit(1);
            netstring_encode(&out, script[step], strlen(script[step]));
            if (write(fd, out.data, out.len) != (ssize_t)out.len)
                _exit(1);
            buf_free(&out);
        }
        close(fd);
    }
    _exit(0);
}

/* server_start - a listener at path and its child: the child's pid */
static pid_t server_start(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    pid_t pid;

    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    unlink(path);
    assert_int_equal(bind(listener, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(listen(listener, 4), 0);
    if ((pid = fork()) == 0)
        server_run(listener);
    close(listener);
    return pid;
}

/* test_socketmap_keeps_connection_and_reconnects_once */
static void test_socketmap_keeps_connection_and_reconnects_once(void **state)
{
    char path[64], spec[128];
    buf_t err = BUF_INIT, value = BUF_INIT;
    struct table *t;
    int status;
    pid_t pid;

    signal(SIGPIPE, SIG_IGN);
    snprintf(path, sizeof(path), "/tmp/test_socketmap.%d", (int)getpid());
    pid = server_start(path);
    snprintf(spec, sizeof(spec), "socketmap:unix:%s:virtual", path);
    t = table_open(spec, 0, &err);
    assert_non_null(t);
    assert_int_equal(table_lookup(t, "a", &value), TABLE_FOUND);
    assert_string_equal(value.data, "one");
    /* the server closed the first connection: made again, once */
    assert_int_equal(table_lookup(t, "b", &value), TABLE_FOUND);
    assert_string_equal(value.data, "two");
    /* kept: the same (second) connection answers */
    assert_int_equal(table_lookup(t, "c", &value), TABLE_NOTFOUND);
    /* TEMP drops the connection: the next lookup is on a third one */
    assert_int_equal(table_lookup(t, "d", &value), TABLE_TEMPFAIL);
    assert_int_equal(table_lookup(t, "e", &value), TABLE_FOUND);
    assert_string_equal(value.data, "three");
    table_close(t);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    unlink(path);
    buf_free(&value);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_socketmap_keeps_connection_and_reconnects_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
