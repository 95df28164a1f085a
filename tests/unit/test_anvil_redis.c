/*
 * test_anvil_redis - unit tests for tern-anvil's Redis backend
 * (anvil/anvil_redis.c): the anvil_backend forms it accepts and refuses,
 * and a Redis that is not there refusing every request at once (the
 * caller counts locally).  The shared counting itself, a hung and a killed
 * Redis are in tests/integration/test_anvil_redis.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "anvil_redis.h"

/* test_parse_accepts_host_port_ipv6_and_unix */
static void test_parse_accepts_host_port_ipv6_and_unix(void **state)
{
    struct anvil_redis_addr a;
    const char *why = NULL;

    assert_int_equal(anvil_redis_parse("redis:127.0.0.1:6379", &a, &why), 0);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 6379);
    assert_string_equal(a.path, "");
    assert_int_equal(anvil_redis_parse("redis:redis.example:1", &a, &why), 0);
    assert_string_equal(a.host, "redis.example");
    assert_int_equal(anvil_redis_parse("redis:[::1]:6380", &a, &why), 0);
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 6380);
    assert_int_equal(anvil_redis_parse("redis:unix:/run/redis/redis.sock", &a, &why), 0);
    assert_string_equal(a.path, "/run/redis/redis.sock");
    assert_string_equal(a.host, "");
}

/* test_parse_refuses_bad_forms_with_a_reason */
static void test_parse_refuses_bad_forms_with_a_reason(void **state)
{
    static const char *bad[] = {
        "",
        "redis",
        "memcache:h:1",
        "redis:",
        "redis:host",
        "redis::1",
        "redis:h:0",
        "redis:h:65536",
        "redis:h:12x",
        "redis:h:",
        "redis:[::1:1",
        "redis:[]:1",
        "redis:unix:relative",
        "redis:unix:",
        "redis:a/b:1",
    };
    struct anvil_redis_addr a;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *why = NULL;
        if (anvil_redis_parse(bad[i], &a, &why) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_non_null(why);
    }
}

/* test_incr_is_refused_at_once_while_redis_is_absent */
static void test_incr_is_refused_at_once_while_redis_is_absent(void **state)
{
    struct event_base *base = event_base_new();
    struct anvil_redis_addr a;
    const char *why = NULL;
    struct anvil_redis *r;

    assert_int_equal(anvil_redis_parse("redis:unix:/nonexistent/redis.sock", &a, &why), 0);
    r = anvil_redis_new(base, &a, 60);
    assert_int_equal(anvil_redis_incr(r, ANVIL_RATE_CONNECT, "smtp:192.0.2.1", 1000, NULL, NULL),
                     -1);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(anvil_redis_incr(r, ANVIL_RATE_MESSAGE, "smtp:192.0.2.1", 1000, NULL, NULL),
                     -1);
    anvil_redis_free(r);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts_host_port_ipv6_and_unix),
        cmocka_unit_test(test_parse_refuses_bad_forms_with_a_reason),
        cmocka_unit_test(test_incr_is_refused_at_once_while_redis_is_absent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
