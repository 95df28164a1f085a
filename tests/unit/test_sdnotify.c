/*
 * test_sdnotify - unit tests for lib/sdnotify: NOTIFY_SOCKET's two address
 * forms, and the datagram received on a socket the test made, in the file
 * system and in the abstract namespace.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "sdnotify.h"

/* test_sdnotify_bind - a datagram socket bound to a NOTIFY_SOCKET value */
static int test_sdnotify_bind(const char *where)
{
    struct sockaddr_un sa;
    socklen_t len;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_int_equal(sdnotify_address(where, &sa, &len), 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
    return fd;
}

/* test_sdnotify_roundtrip - state sent with NOTIFY_SOCKET=where arrives,
 * byte for byte, on a socket the test bound there */
static void test_sdnotify_roundtrip(const char *where, const char *state)
{
    int fd = test_sdnotify_bind(where);
    char text[256];
    ssize_t n;

    setenv("NOTIFY_SOCKET", where, 1);
    assert_int_equal(sdnotify_send(state), 0);
    n = recv(fd, text, sizeof(text) - 1, MSG_DONTWAIT);
    assert_true(n > 0);
    text[n] = 0;
    assert_string_equal(text, state);
    close(fd);
}

static void test_sdnotify_address_reads_a_path(void **state)
{
    struct sockaddr_un sa;
    socklen_t len = 0;

    assert_int_equal(sdnotify_address("/run/systemd/notify", &sa, &len), 0);
    assert_int_equal(sa.sun_family, AF_UNIX);
    assert_string_equal(sa.sun_path, "/run/systemd/notify");
    assert_int_equal(len,
                     offsetof(struct sockaddr_un, sun_path) + strlen("/run/systemd/notify") + 1);
}

static void test_sdnotify_address_reads_an_abstract_name(void **state)
{
    struct sockaddr_un sa;
    socklen_t len = 0;

    assert_int_equal(sdnotify_address("@tern/x", &sa, &len), 0);
    assert_int_equal(sa.sun_path[0], 0);
    assert_memory_equal(sa.sun_path + 1, "tern/x", 6);
    /* the length counts the name exactly: no trailing NUL in the name */
    assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 7);
}

static void test_sdnotify_address_refuses_what_is_no_address(void **state)
{
    struct sockaddr_un sa;
    socklen_t len = 0;
    char longest[sizeof(sa.sun_path) + 2];

    assert_int_equal(sdnotify_address(NULL, &sa, &len), -1);
    assert_int_equal(sdnotify_address("", &sa, &len), -1);
    assert_int_equal(sdnotify_address("@", &sa, &len), -1);
    assert_int_equal(sdnotify_address("relative/notify", &sa, &len), -1);
    memset(longest, 'a', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = 0;
    longest[0] = '/';
    assert_int_equal(sdnotify_address(longest, &sa, &len), -1);
    /* a path must leave room for its NUL; an abstract name may fill sun_path */
    longest[sizeof(sa.sun_path)] = 0;
    assert_int_equal(sdnotify_address(longest, &sa, &len), -1);
    longest[0] = '@';
    assert_int_equal(sdnotify_address(longest, &sa, &len), 0);
    assert_int_equal(len, sizeof(struct sockaddr_un));
}

static void test_sdnotify_send_reaches_a_path_socket(void **state)
{
    char dir[] = "/tmp/test_sdnotify_XXXXXX";
    char path[64];

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/notify", dir);
    test_sdnotify_roundtrip(path, "READY=1\nSTATUS=up");
    unlink(path);
    rmdir(dir);
}

static void test_sdnotify_send_reaches_an_abstract_socket(void **state)
{
    char name[64];

    snprintf(name, sizeof(name), "@tern-test-sdnotify-%ld", (long)getpid());
    test_sdnotify_roundtrip(name, "STOPPING=1");
}

static void test_sdnotify_send_without_socket_is_a_no_op(void **state)
{
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(sdnotify_send("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "@tern-test-sdnotify-nobody-listens", 1);
    assert_int_equal(sdnotify_send("READY=1"), -1);
    setenv("NOTIFY_SOCKET", "not-an-address", 1);
    assert_int_equal(sdnotify_send("READY=1"), -1);
    unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sdnotify_address_reads_a_path),
        cmocka_unit_test(test_sdnotify_address_reads_an_abstract_name),
        cmocka_unit_test(test_sdnotify_address_refuses_what_is_no_address),
        cmocka_unit_test(test_sdnotify_send_reaches_a_path_socket),
        cmocka_unit_test(test_sdnotify_send_reaches_an_abstract_socket),
        cmocka_unit_test(test_sdnotify_send_without_socket_is_a_no_op),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
