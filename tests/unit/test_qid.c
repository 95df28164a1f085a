/*
 * test_qid - unit tests for lib/qid: new IDs are valid, distinct and sort by
 * arrival; qid_valid refuses anything that could escape a queue directory;
 * qid_hash_dir names one of the 16 hash directories; qid_arrival reads the
 * arrival second back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "qid.h"

#define QID_MANY 20000

/* test_qid_new_is_valid_and_terminated */
static void test_qid_new_is_valid_and_terminated(void **state)
{
    char id[QID_LEN + 2];

    memset(id, 'x', sizeof(id));
    qid_new(id);
    assert_int_equal(strlen(id), QID_LEN);
    assert_true(qid_valid(id));
}

/* test_qid_later_ids_sort_after_earlier_ones */
static void test_qid_later_ids_sort_after_earlier_ones(void **state)
{
    char prev[QID_LEN + 1], next[QID_LEN + 1];
    struct timespec ms = {0, 1000 * 1000};

    qid_new(prev);
    for (int i = 0; i < 50; i++) {
        nanosleep(&ms, NULL);
        qid_new(next);
        if (strcmp(prev, next) >= 0)
            fail_msg("%s was made after %s but does not sort after it", next, prev);
        memcpy(prev, next, sizeof(prev));
    }
}

/* test_qid_ids_sort_across_a_second_boundary */
static void test_qid_ids_sort_across_a_second_boundary(void **state)
{
    char a[QID_LEN + 1], b[QID_LEN + 1];
    struct timespec t = {1, 100 * 1000 * 1000};

    qid_new(a);
    nanosleep(&t, NULL);
    qid_new(b);
    assert_true(strcmp(a, b) < 0);
    assert_true(memcmp(a, b, 6) < 0); /* the seconds part moved */
}

static int qid_cmp(const void *x, const void *y)
{
    return strcmp((const char *)x, (const char *)y);
}

/* test_qid_ids_made_in_a_burst_are_distinct */
static void test_qid_ids_made_in_a_burst_are_distinct(void **state)
{
    char(*ids)[QID_LEN + 1] = calloc(QID_MANY, sizeof(*ids));

    assert_non_null(ids);
    for (int i = 0; i < QID_MANY; i++)
        qid_new(ids[i]);
    qsort(ids, QID_MANY, sizeof(*ids), qid_cmp);
    for (int i = 1; i < QID_MANY; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            fail_msg("duplicate queue ID %s", ids[i]);
    free(ids);
}

/* test_qid_valid_rejects_bad_ids */
static void test_qid_valid_rejects_bad_ids(void **state)
{
    static const char *bad[] = {"",
                                "ABC",
                                "0123456789A",
                                "0123456789ABC",
                                "../../etc/pw",
                                "0123456789A/",
                                "0123456789A.",
                                "0123456789A ",
                                "0123456789A-",
                                "0123456789A\n",
                                ("01234\x80"
                                 "6789AB"),
                                ".tmp.0123456"};

    assert_true(qid_valid("0123456789AB"));
    assert_true(qid_valid("zzzzzzzzzzzz"));
    assert_true(qid_valid("aZ09aZ09aZ09"));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (qid_valid(bad[i]))
            fail_msg("'%s' accepted as a queue ID", bad[i]);
}

/* test_qid_hash_dir_is_one_hex_digit_and_stable */
static void test_qid_hash_dir_is_one_hex_digit_and_stable(void **state)
{
    char id[QID_LEN + 1];
    int seen[16] = {0};
    int distinct = 0;

    for (int i = 0; i < 2000; i++) {
        qid_new(id);
        char h = qid_hash_dir(id);
        assert_non_null(strchr("0123456789abcdef", h));
        assert_int_equal(qid_hash_dir(id), h);
        seen[h <= '9' ? h - '0' : h - 'a' + 10] = 1;
    }
    for (int i = 0; i < 16; i++)
        distinct += seen[i];
    assert_true(distinct >= 12); /* IDs spread over the hash directories */
}

static void test_qid_arrival_is_the_second_the_id_was_made(void **state)
{
    char id[QID_LEN + 1];
    time_t before = time(NULL), after;

    qid_new(id);
    after = time(NULL);
    assert_true(qid_arrival(id) >= (long long)before && qid_arrival(id) <= (long long)after);
    assert_int_equal(qid_arrival("000000000000"), 0);
    assert_int_equal(qid_arrival("000010000000"), 62);
    assert_int_equal(qid_arrival("not-an-id"), -1);
    assert_int_equal(qid_arrival("../../etc/pa"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qid_new_is_valid_and_terminated),
        cmocka_unit_test(test_qid_later_ids_sort_after_earlier_ones),
        cmocka_unit_test(test_qid_ids_sort_across_a_second_boundary),
        cmocka_unit_test(test_qid_ids_made_in_a_burst_are_distinct),
        cmocka_unit_test(test_qid_valid_rejects_bad_ids),
        cmocka_unit_test(test_qid_hash_dir_is_one_hex_digit_and_stable),
        cmocka_unit_test(test_qid_arrival_is_the_second_the_id_was_made),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
