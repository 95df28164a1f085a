/*
 * test_qselect - unit tests for lib/qselect: what follows sendmail's -q
 * (an interval, a selector, f for foreground, garbage) and how a selector
 * matches a message (substring, any case, negated with '!').
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "qselect.h"

static const char *const rcpts[] = {"x@a.test", "Y@B.test"};

/* test_q_arg_interval_takes_units */
static void test_q_arg_interval_takes_units(void **state)
{
    long long seconds = 0;
    const char *sel = NULL;

    assert_int_equal(qselect_q_arg("1h", &seconds, &sel), QSELECT_INTERVAL);
    assert_int_equal(seconds, 3600);
    assert_int_equal(qselect_q_arg("30m", &seconds, &sel), QSELECT_INTERVAL);
    assert_int_equal(seconds, 1800);
    assert_int_equal(qselect_q_arg("0", &seconds, &sel), QSELECT_BAD);
    assert_int_equal(qselect_q_arg("1x", &seconds, &sel), QSELECT_BAD);
}

/* test_q_arg_run_with_selector_and_foreground_f */
static void test_q_arg_run_with_selector_and_foreground_f(void **state)
{
    long long seconds = 0;
    const char *sel = NULL;

    assert_int_equal(qselect_q_arg("", &seconds, &sel), QSELECT_RUN);
    assert_string_equal(sel, "");
    assert_int_equal(qselect_q_arg("f", &seconds, &sel), QSELECT_RUN);
    assert_string_equal(sel, "");
    assert_int_equal(qselect_q_arg("R@a.test", &seconds, &sel), QSELECT_RUN);
    assert_string_equal(sel, "R@a.test");
    assert_int_equal(qselect_q_arg("f!Sboss", &seconds, &sel), QSELECT_RUN);
    assert_string_equal(sel, "!Sboss");
    assert_int_equal(qselect_q_arg("X", &seconds, &sel), QSELECT_BAD);
    assert_int_equal(qselect_q_arg("R", &seconds, &sel), QSELECT_BAD);
    assert_int_equal(qselect_q_arg("!", &seconds, &sel), QSELECT_BAD);
}

/* test_parse_refuses_control_characters_and_long_needles */
static void test_parse_refuses_control_characters_and_long_needles(void **state)
{
    struct qselect sel;
    char big[QSELECT_MAX_NEEDLE + 3];

    assert_int_equal(qselect_parse("Ra\nb", &sel), -1);
    assert_int_equal(qselect_parse("!!Ra", &sel), -1);
    memset(big, 'a', sizeof(big) - 1);
    big[0] = 'R';
    big[sizeof(big) - 1] = 0;
    assert_int_equal(qselect_parse(big, &sel), -1);
    big[sizeof(big) - 2] = 0;
    assert_int_equal(qselect_parse(big, &sel), 0);
    assert_int_equal(qselect_parse(NULL, &sel), 0);
    assert_int_equal(sel.kind, 0);
}

/* test_match_by_recipient_sender_and_id_ignoring_case */
static void test_match_by_recipient_sender_and_id_ignoring_case(void **state)
{
    struct qselect sel;

    assert_int_equal(qselect_parse("R@b.TEST", &sel), 0);
    assert_true(qselect_match(&sel, "1xaOmG0rAYp1", "boss@x", rcpts, 2));
    assert_false(qselect_match(&sel, "1xaOmG0rAYp1", "boss@x", rcpts, 1));
    assert_int_equal(qselect_parse("Sboss@", &sel), 0);
    assert_true(qselect_match(&sel, "1xaOmG0rAYp1", "Boss@x", rcpts, 2));
    assert_false(qselect_match(&sel, "1xaOmG0rAYp1", NULL, rcpts, 2));
    assert_int_equal(qselect_parse("IaOmG", &sel), 0);
    assert_true(qselect_match(&sel, "1xaOmG0rAYp1", "", rcpts, 0));
    assert_int_equal(qselect_parse("", &sel), 0);
    assert_true(qselect_match(&sel, "1xaOmG0rAYp1", "", rcpts, 0));
}

/* test_negation_selects_the_others */
static void test_negation_selects_the_others(void **state)
{
    struct qselect sel;

    assert_int_equal(qselect_parse("!R@a.test", &sel), 0);
    assert_true(sel.negate);
    assert_false(qselect_match(&sel, "1xaOmG0rAYp1", "", rcpts, 2));
    assert_true(qselect_match(&sel, "1xaOmG0rAYp1", "", rcpts + 1, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q_arg_interval_takes_units),
        cmocka_unit_test(test_q_arg_run_with_selector_and_foreground_f),
        cmocka_unit_test(test_parse_refuses_control_characters_and_long_needles),
        cmocka_unit_test(test_match_by_recipient_sender_and_id_ignoring_case),
        cmocka_unit_test(test_negation_selects_the_others),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
