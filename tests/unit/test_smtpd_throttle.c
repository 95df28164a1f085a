/*
 * test_smtpd_throttle - unit tests for smtpd_connection_rate_throttle's
 * pace (smtpd/throttle.c): the workers' shares add up to the rate, each
 * worker spaces its accepts 1 / share apart and never saves up a burst, a
 * worker without a share is closed, and master's TERN_SMTPD_WORKER parses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "throttle.h"

#define EPSILON 1e-9

/* test_shares_add_up_to_the_rate */
static void test_shares_add_up_to_the_rate(void **state)
{
    static const long long rates[] = {1, 2, 5, 7, 10, 100, 1001};

    for (size_t r = 0; r < sizeof(rates) / sizeof(rates[0]); r++)
        for (long long count = 1; count <= 32; count++) {
            long long sum = 0, low = rates[r], high = 0;

            for (long long i = 0; i < count; i++) {
                long long share = smtpd_throttle_share(rates[r], i, count);
                sum += share;
                low = share < low ? share : low;
                high = share > high ? share : high;
            }
            assert_int_equal(sum, rates[r]);
            assert_true(high - low <= 1);
        }
    assert_int_equal(smtpd_throttle_share(5, 0, 2), 3);
    assert_int_equal(smtpd_throttle_share(5, 1, 2), 2);
    assert_int_equal(smtpd_throttle_share(0, 0, 2), 0);
}

/* test_one_worker_spaces_accepts_a_fifth_of_a_second_apart */
static void test_one_worker_spaces_accepts_a_fifth_of_a_second_apart(void **state)
{
    struct smtpd_throttle t;
    double now = 1000.0;

    smtpd_throttle_init(&t, 5, 0, 1);
    assert_false(t.closed);
    /* 20 clients at once: the caller accepts the next when told to */
    for (int i = 0; i < 20; i++) {
        double wait = smtpd_throttle_take(&t, now);
        assert_true(wait > 0.2 - EPSILON && wait < 0.2 + EPSILON);
        now += wait;
    }
    assert_true(now - 1000.0 > 4.0 - EPSILON && now - 1000.0 < 4.0 + EPSILON);
}

/* test_late_accepts_keep_to_the_schedule */
static void test_late_accepts_keep_to_the_schedule(void **state)
{
    struct smtpd_throttle t;
    double now = 10.0;

    smtpd_throttle_init(&t, 5, 0, 1);
    /* each rest ends 15 ms late: the accepts still come 5 a second */
    for (int i = 0; i < 20; i++)
        now += smtpd_throttle_take(&t, now) + 0.015;
    assert_true(now - 10.0 < 4.0 + 0.015 + EPSILON);
}

/* test_a_gap_longer_than_the_tolerance_restarts_the_schedule */
static void test_a_gap_longer_than_the_tolerance_restarts_the_schedule(void **state)
{
    struct smtpd_throttle t;
    double wait;

    smtpd_throttle_init(&t, 1, 0, 1);
    assert_true(smtpd_throttle_take(&t, 100.0) > 1.0 - EPSILON);
    /* the next client comes half a second after it could have: it is not
     * followed by one half a second later, but a whole second later */
    wait = smtpd_throttle_take(&t, 101.5);
    assert_true(wait > 1.0 - EPSILON && wait < 1.0 + EPSILON);
}

/* test_idle_time_is_not_saved_up_for_a_burst */
static void test_idle_time_is_not_saved_up_for_a_burst(void **state)
{
    struct smtpd_throttle t;

    smtpd_throttle_init(&t, 10, 0, 1);
    assert_true(smtpd_throttle_take(&t, 50.0) > 0.1 - EPSILON);
    /* an hour idle: still one accept, then a tenth of a second's rest */
    double wait = smtpd_throttle_take(&t, 3650.0);
    assert_true(wait > 0.1 - EPSILON && wait < 0.1 + EPSILON);
}

/* test_a_worker_without_a_share_is_closed */
static void test_a_worker_without_a_share_is_closed(void **state)
{
    struct smtpd_throttle t;

    smtpd_throttle_init(&t, 2, 2, 4);
    assert_true(t.closed);
    smtpd_throttle_init(&t, 2, 1, 4);
    assert_false(t.closed);
    assert_true(t.interval > 1.0 - EPSILON && t.interval < 1.0 + EPSILON);
}

/* test_off_never_waits */
static void test_off_never_waits(void **state)
{
    struct smtpd_throttle t;

    smtpd_throttle_init(&t, 0, 3, 4);
    assert_false(t.closed);
    for (int i = 0; i < 100; i++)
        assert_true(smtpd_throttle_take(&t, 7.0) == 0);
}

/* test_worker_place_parses_index_over_count */
static void test_worker_place_parses_index_over_count(void **state)
{
    long long index = -1, count = -1;

    assert_int_equal(smtpd_throttle_worker_parse("1/2", &index, &count), 0);
    assert_int_equal(index, 1);
    assert_int_equal(count, 2);
    assert_int_equal(smtpd_throttle_worker_parse("2/2", &index, &count), -1);
    assert_int_equal(smtpd_throttle_worker_parse("-1/2", &index, &count), -1);
    assert_int_equal(smtpd_throttle_worker_parse("0/0", &index, &count), -1);
    assert_int_equal(smtpd_throttle_worker_parse("0/2x", &index, &count), -1);
    assert_int_equal(smtpd_throttle_worker_parse("", &index, &count), -1);
    assert_int_equal(smtpd_throttle_worker_parse(NULL, &index, &count), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shares_add_up_to_the_rate),
        cmocka_unit_test(test_one_worker_spaces_accepts_a_fifth_of_a_second_apart),
        cmocka_unit_test(test_late_accepts_keep_to_the_schedule),
        cmocka_unit_test(test_a_gap_longer_than_the_tolerance_restarts_the_schedule),
        cmocka_unit_test(test_idle_time_is_not_saved_up_for_a_burst),
        cmocka_unit_test(test_a_worker_without_a_share_is_closed),
        cmocka_unit_test(test_off_never_waits),
        cmocka_unit_test(test_worker_place_parses_index_over_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
