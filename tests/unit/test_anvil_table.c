/*
 * test_anvil_table - unit tests for tern-anvil's counters (anvil/anvil_table.c):
 * concurrent connections per client and per owner, Postfix's rate window
 * (it opens at the first event and restarts with the first event one time
 * unit later, resetting every rate of the client), a vanished owner's
 * connections released, idle entries expired, and the statistics' maxima.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "anvil_table.h"

#define UNIT 60
#define T0 ((time_t)1000000)

/* test_connect_counts_concurrent_connections_across_owners */
static void test_connect_counts_concurrent_connections_across_owners(void **state)
{
    struct anvil_table *t = anvil_table_new(UNIT);
    long long count, rate;

    anvil_table_connect(t, "smtp:192.0.2.1", 1, T0, &count, &rate);
    assert_int_equal(count, 1);
    anvil_table_connect(t, "smtp:192.0.2.1", 2, T0, &count, &rate);
    assert_int_equal(count, 2);
    assert_int_equal(rate, 2);
    anvil_table_connect(t, "smtp:192.0.2.2", 2, T0, &count, &rate);
    assert_int_equal(count, 1); /* another client */
    assert_int_equal(anvil_table_disconnect(t, "smtp:192.0.2.1", 1, T0 + 1), 1);
    anvil_table_connect(t, "smtp:192.0.2.1", 1, T0 + 2, &count, &rate);
    assert_int_equal(count, 2);
    assert_int_equal(rate, 3); /* disconnects do not lower the rate */
    anvil_table_free(t);
}

/* test_disconnect_not_held_by_the_owner_is_ignored */
static void test_disconnect_not_held_by_the_owner_is_ignored(void **state)
{
    struct anvil_table *t = anvil_table_new(UNIT);
    long long count, rate;

    assert_int_equal(anvil_table_disconnect(t, "smtp:192.0.2.1", 1, T0), 0);
    anvil_table_connect(t, "smtp:192.0.2.1", 1, T0, &count, &rate);
    assert_int_equal(anvil_table_disconnect(t, "smtp:192.0.2.1", 2, T0), 0);
    assert_int_equal(anvil_table_disconnect(t, "smtp:192.0.2.1", 1, T0), 1);
    assert_int_equal(anvil_table_disconnect(t, "smtp:192.0.2.1", 1, T0), 0); /* never below 0 */
    anvil_table_connect(t, "smtp:192.0.2.1", 1, T0, &count, &rate);
    assert_int_equal(count, 1);
    anvil_table_free(t);
}

/* test_rate_window_restarts_one_unit_after_the_first_event */
static void test_rate_window_restarts_one_unit_after_the_first_event(void **state)
{
    struct anvil_table *t = anvil_table_new(UNIT);

    assert_int_equal(anvil_table_event(t, "smtp:a", ANVIL_RATE_MESSAGE, T0), 1);
    assert_int_equal(anvil_table_event(t, "smtp:a", ANVIL_RATE_MESSAGE, T0 + 30), 2);
    assert_int_equal(anvil_table_event(t, "smtp:a", ANVIL_RATE_MESSAGE, T0 + UNIT - 1), 3);
    /* one unit after the window opened: a new window */
    assert_int_equal(anvil_table_event(t, "smtp:a", ANVIL_RATE_MESSAGE, T0 + UNIT), 1);
    assert_int_equal(anvil_table_event(t, "smtp:a", ANVIL_RATE_MESSAGE, T0 + UNIT + 59), 2);
    assert_int_equal(anvil_table_event(t, "smtp:a", ANVIL_RATE_MESSAGE, T0 + 3 * UNIT), 1);
    anvil_table_free(t);
}

/* test_rates_are_separate_but_reset_together */
static void test_rates_are_separate_but_reset_together(void **state)
{
    struct anvil_table *t = anvil_table_new(UNIT);
    long long count, rate;

    anvil_table_connect(t, "smtp:a", 1, T0, &count, &rate);
    assert_int_equal(anvil_table_event(t, "smtp:a", ANVIL_RATE_RECIPIENT, T0), 1);
    assert_int_equal(anvil_table_event(t, "smtp:a", ANVIL_RATE_RECIPIENT, T0), 2);
    assert_int_equal(anvil_table_event(t, "smtp:a", ANVIL_RATE_AUTH, T0), 1);
    assert_int_equal(anvil_table_event(t, "smtp:a", ANVIL_RATE_MESSAGE, T0), 1);
    assert_int_equal(anvil_table_event(t, "submission:a", ANVIL_RATE_MESSAGE, T0), 1);
    /* the auth event of the next window resets the recipient rate too */
    assert_int_equal(anvil_table_event(t, "smtp:a", ANVIL_RATE_AUTH, T0 + UNIT), 1);
    assert_int_equal(anvil_table_event(t, "smtp:a", ANVIL_RATE_RECIPIENT, T0 + UNIT), 1);
    anvil_table_connect(t, "smtp:a", 1, T0 + UNIT, &count, &rate);
    assert_int_equal(count, 2); /* the count is not a rate */
    assert_int_equal(rate, 1);
    assert_int_equal(anvil_table_event(t, "smtp:a", ANVIL_RATE_CONNECT, T0), 0); /* not an event */
    anvil_table_free(t);
}

/* test_connection_rate_over_limit_at_the_fourth_connect */
static void test_connection_rate_over_limit_at_the_fourth_connect(void **state)
{
    struct anvil_table *t = anvil_table_new(UNIT);
    long long count, rate;

    for (int i = 1; i <= 4; i++) {
        anvil_table_connect(t, "smtp:a", 1, T0 + i, &count, &rate);
        assert_int_equal(anvil_table_disconnect(t, "smtp:a", 1, T0 + i), 1);
        assert_int_equal(rate, i);
        assert_int_equal(count, 1);
    }
    anvil_table_free(t);
}

/* test_owner_gone_releases_its_connections_only */
static void test_owner_gone_releases_its_connections_only(void **state)
{
    struct anvil_table *t = anvil_table_new(UNIT);
    long long count, rate;

    anvil_table_connect(t, "smtp:a", 1, T0, &count, &rate);
    anvil_table_connect(t, "smtp:a", 1, T0, &count, &rate);
    anvil_table_connect(t, "smtp:a", 2, T0, &count, &rate);
    anvil_table_connect(t, "smtp:b", 1, T0, &count, &rate);
    anvil_table_owner_gone(t, 1, T0 + 1);
    anvil_table_connect(t, "smtp:a", 3, T0 + 1, &count, &rate);
    assert_int_equal(count, 2); /* owner 2's and this one */
    assert_int_equal(rate, 4);  /* the window is not reset */
    anvil_table_connect(t, "smtp:b", 3, T0 + 1, &count, &rate);
    assert_int_equal(count, 1);
    anvil_table_free(t);
}

/* test_expire_removes_only_idle_entries_with_an_old_window */
static void test_expire_removes_only_idle_entries_with_an_old_window(void **state)
{
    struct anvil_table *t = anvil_table_new(UNIT);
    long long count, rate;

    anvil_table_connect(t, "smtp:held", 1, T0, &count, &rate);
    anvil_table_event(t, "smtp:recent", ANVIL_RATE_MESSAGE, T0 + UNIT - 1);
    anvil_table_event(t, "smtp:old", ANVIL_RATE_MESSAGE, T0);
    assert_int_equal(anvil_table_size(t), 3);
    anvil_table_expire(t, T0 + UNIT);
    assert_int_equal(anvil_table_size(t), 2); /* smtp:old is gone */
    anvil_table_expire(t, T0 + 2 * UNIT);
    assert_int_equal(anvil_table_size(t), 1); /* smtp:held has a connection */
    assert_int_equal(anvil_table_disconnect(t, "smtp:held", 1, T0 + 2 * UNIT), 1);
    anvil_table_expire(t, T0 + 2 * UNIT);
    assert_int_equal(anvil_table_size(t), 0);
    anvil_table_free(t);
}

/* test_many_clients_survive_growth */
static void test_many_clients_survive_growth(void **state)
{
    struct anvil_table *t = anvil_table_new(UNIT);
    char ident[64];
    long long count, rate;

    for (int i = 0; i < 5000; i++) {
        snprintf(ident, sizeof(ident), "smtp:10.0.%d.%d", i / 256, i % 256);
        anvil_table_connect(t, ident, 1, T0, &count, &rate);
        assert_int_equal(count, 1);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(ident, sizeof(ident), "smtp:10.0.%d.%d", i / 256, i % 256);
        anvil_table_connect(t, ident, 2, T0, &count, &rate);
        assert_int_equal(count, 2);
    }
    assert_int_equal(anvil_table_size(t), 5000);
    anvil_table_owner_gone(t, 1, T0 + UNIT);
    anvil_table_owner_gone(t, 2, T0 + UNIT);
    assert_int_equal(anvil_table_size(t), 0);
    anvil_table_free(t);
}

/* test_stats_keep_the_maxima_until_reset */
static void test_stats_keep_the_maxima_until_reset(void **state)
{
    struct anvil_table *t = anvil_table_new(UNIT);
    const struct anvil_stats *st = anvil_table_stats(t);
    long long count, rate;

    anvil_table_connect(t, "smtp:a", 1, T0, &count, &rate);
    anvil_table_connect(t, "smtp:b", 1, T0 + 1, &count, &rate);
    anvil_table_connect(t, "smtp:b", 1, T0 + 2, &count, &rate);
    anvil_table_event(t, "smtp:a", ANVIL_RATE_RECIPIENT, T0 + 3);
    assert_int_equal(st->count.value, 2);
    assert_string_equal(st->count.ident, "smtp:b");
    assert_int_equal(st->count.when, T0 + 2);
    assert_int_equal(st->rate[ANVIL_RATE_CONNECT].value, 2);
    assert_int_equal(st->rate[ANVIL_RATE_RECIPIENT].value, 1);
    assert_string_equal(st->rate[ANVIL_RATE_RECIPIENT].ident, "smtp:a");
    assert_int_equal(st->rate[ANVIL_RATE_MESSAGE].value, 0);
    assert_int_equal(st->cache.value, 2);
    anvil_table_stats_reset(t);
    assert_int_equal(st->count.value, 0);
    assert_string_equal(anvil_rate_name(ANVIL_RATE_AUTH), "auth");
    anvil_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_counts_concurrent_connections_across_owners),
        cmocka_unit_test(test_disconnect_not_held_by_the_owner_is_ignored),
        cmocka_unit_test(test_rate_window_restarts_one_unit_after_the_first_event),
        cmocka_unit_test(test_rates_are_separate_but_reset_together),
        cmocka_unit_test(test_connection_rate_over_limit_at_the_fourth_connect),
        cmocka_unit_test(test_owner_gone_releases_its_connections_only),
        cmocka_unit_test(test_expire_removes_only_idle_entries_with_an_old_window),
        cmocka_unit_test(test_many_clients_survive_growth),
        cmocka_unit_test(test_stats_keep_the_maxima_until_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
