/*
 * test_stats - unit tests for lib/stats: increments from several processes
 * add up exactly, labelled slots are claimed once, a foreign or corrupt file
 * is rebuilt (and never trusted), a slot left claiming neither stalls an add
 * nor outlives a start, the histogram buckets, a reset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "stats.h"

#define CHILDREN 4
#define ADDS_PER_CHILD 20000

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_stats_XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    stats_path(fx->dir, fx->path, sizeof(fx->path));
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    unlink(fx->path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* value - values[0] of (metric, label) in the file, -1 when absent; fails
 * the test when the pair has more than one slot */
static long long value(const char *path, enum stats_metric metric, const char *label)
{
    struct stats_file *f = stats_file_open(path, 0);
    struct stats_sample s;
    long long v = -1;

    assert_non_null(f);
    for (size_t i = 0; i < STATS_SLOTS; i++) {
        if (!stats_slot_read(f, i, &s) || s.metric != metric || strcmp(s.label, label) != 0)
            continue;
        assert_int_equal(v, -1);
        v = (long long)s.values[0];
    }
    stats_file_close(f);
    return v;
}

static void test_increments_from_forked_processes_add_up_exactly(void **state)
{
    struct fixture *fx = *state;
    pid_t pids[CHILDREN];

    assert_int_equal(stats_file_prepare(fx->path, getuid(), getgid()), 0);
    for (int c = 0; c < CHILDREN; c++) {
        pids[c] = fork();
        assert_true(pids[c] >= 0);
        if (pids[c] == 0) {
            char own[32];
            if (stats_attach(fx->dir) < 0)
                _exit(1);
            snprintf(own, sizeof(own), "child%d", c);
            for (int i = 0; i < ADDS_PER_CHILD; i++) {
                stats_add(STATS_RECEIVED, "smtp", 1);
                stats_add(STATS_RECEIVED_BYTES, "smtp", 10);
                stats_add(STATS_DELIVERED, own, 1);
                /* every child claims the same new labels at the same time */
                if (i % 100 == 0) {
                    char shared[32];
                    snprintf(shared, sizeof(shared), "t%d", i / 100);
                    stats_add(STATS_DEFERRED, shared, 1);
                }
            }
            _exit(0);
        }
    }
    for (int c = 0; c < CHILDREN; c++) {
        int status;
        assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    assert_int_equal(value(fx->path, STATS_RECEIVED, "smtp"), CHILDREN * ADDS_PER_CHILD);
    assert_int_equal(value(fx->path, STATS_RECEIVED_BYTES, "smtp"),
                     10LL * CHILDREN * ADDS_PER_CHILD);
    assert_int_equal(value(fx->path, STATS_DELIVERED, "child0"), ADDS_PER_CHILD);
    assert_int_equal(value(fx->path, STATS_DELIVERED, "child3"), ADDS_PER_CHILD);
    for (int k = 0; k < ADDS_PER_CHILD / 100; k++) {
        char shared[32];
        snprintf(shared, sizeof(shared), "t%d", k);
        assert_int_equal(value(fx->path, STATS_DEFERRED, shared), CHILDREN);
    }
}

static void test_labels_are_separate_and_cleaned(void **state)
{
    struct fixture *fx = *state;
    char clean[STATS_LABEL_MAX];

    assert_int_equal(stats_file_prepare(fx->path, getuid(), getgid()), 0);
    assert_int_equal(stats_attach(fx->dir), 0);
    stats_add(STATS_REJECTED, "relay", 2);
    stats_add(STATS_REJECTED, "rbl", 1);
    stats_add(STATS_REJECTED, "bad \"label\"\n{x}", 1);
    stats_add(STATS_REJECTED, "", 1);
    stats_count_result(STATS_TLS, "smtpd", 0);
    stats_count_delivery("smtp:[mx.example]:25", "bounce", 100, 0);
    stats_count_delivery("local", "sent", 100, 0);
    assert_int_equal(value(fx->path, STATS_REJECTED, "relay"), 2);
    assert_int_equal(value(fx->path, STATS_REJECTED, "rbl"), 1);
    assert_int_equal(value(fx->path, STATS_REJECTED, "bad__label___x_"), 1);
    assert_int_equal(value(fx->path, STATS_REJECTED, "none"), 1);
    assert_int_equal(value(fx->path, STATS_TLS, "smtpd,failed"), 1);
    assert_int_equal(value(fx->path, STATS_BOUNCED, "smtp"), 1);
    assert_int_equal(value(fx->path, STATS_DELIVERED, "local"), 1);
    assert_int_equal(value(fx->path, STATS_DELIVERED_BYTES, "local"), 100);
    assert_int_equal(value(fx->path, STATS_DELIVERED, "smtp"), -1);
    stats_label_clean("a-very-long-label-that-goes-on-and-on-past-the-limit-of-the-slot", clean,
                      sizeof(clean));
    assert_int_equal(strlen(clean), STATS_LABEL_MAX - 1);
}

static void test_a_full_table_drops_new_labels_and_keeps_the_old(void **state)
{
    struct fixture *fx = *state;
    struct stats_file *f;
    char label[32];

    assert_int_equal(stats_file_prepare(fx->path, getuid(), getgid()), 0);
    assert_int_equal(stats_attach(fx->dir), 0);
    for (int i = 0; i < STATS_SLOTS + 50; i++) {
        snprintf(label, sizeof(label), "l%d", i);
        stats_add(STATS_REJECTED, label, 1);
    }
    stats_add(STATS_REJECTED, "l0", 1);
    assert_int_equal(value(fx->path, STATS_REJECTED, "l0"), 2);
    assert_int_equal(value(fx->path, STATS_REJECTED, "l1060"), -1);
    f = stats_file_open(fx->path, 0);
    assert_non_null(f);
    assert_int_equal(stats_file_dropped(f), 50);
    stats_file_close(f);
}

/* write_file - path holds exactly these bytes */
static void write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

static void test_a_foreign_file_is_rebuilt_never_trusted(void **state)
{
    struct fixture *fx = *state;
    struct stats_file *f;
    struct stat st;
    char *junk;

    write_file(fx->path, "not a stats file\n", 17);
    f = stats_file_open(fx->path, 0);
    assert_null(f);
    assert_int_equal(stats_attach(fx->dir), -1); /* counts privately, nothing breaks */
    stats_add(STATS_RECEIVED, "smtp", 1);
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_size, 17);
    assert_int_equal(stats_file_prepare(fx->path, getuid(), getgid()), 0);
    assert_int_equal(value(fx->path, STATS_RECEIVED, "smtp"), -1);
    /* the right size, the wrong magic */
    assert_int_equal(stat(fx->path, &st), 0);
    junk = malloc((size_t)st.st_size);
    memset(junk, 0x5a, (size_t)st.st_size);
    write_file(fx->path, junk, (size_t)st.st_size);
    free(junk);
    assert_null(stats_file_open(fx->path, 0));
    assert_int_equal(stats_file_prepare(fx->path, getuid(), getgid()), 0);
    f = stats_file_open(fx->path, 0);
    assert_non_null(f);
    stats_file_close(f);
}

static void test_a_link_in_its_place_is_replaced_not_given_away(void **state)
{
    struct fixture *fx = *state;
    char victim[160];
    struct stat st;
    struct stats_file *f;

    snprintf(victim, sizeof(victim), "%s/victim", fx->dir);
    write_file(victim, "secret\n", 7);
    assert_int_equal(link(victim, fx->path), 0);
    assert_int_equal(stats_file_prepare(fx->path, getuid(), getgid()), 0);
    assert_int_equal(stat(victim, &st), 0);
    assert_int_equal(st.st_size, 7);
    assert_int_equal(st.st_nlink, 1);
    assert_int_equal(unlink(fx->path), 0);
    assert_int_equal(symlink(victim, fx->path), 0);
    assert_int_equal(stats_file_prepare(fx->path, getuid(), getgid()), 0);
    assert_int_equal(lstat(fx->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(stat(victim, &st), 0);
    assert_int_equal(st.st_size, 7);
    f = stats_file_open(fx->path, 0);
    assert_non_null(f);
    stats_file_close(f);
    unlink(victim);
}

static void test_a_corrupt_slot_is_skipped(void **state)
{
    struct fixture *fx = *state;
    struct stats_file *f;
    struct stats_sample s;
    size_t ready = 0;
    FILE *fp;
    long label_at;

    assert_int_equal(stats_file_prepare(fx->path, getuid(), getgid()), 0);
    assert_int_equal(stats_attach(fx->dir), 0);
    stats_add(STATS_RECEIVED, "smtp", 5);
    /* overwrite every label byte of every slot (64-byte header; a slot is
     * state, metric, label, values): no NUL, bytes a label never holds */
    fp = fopen(fx->path, "r+");
    assert_non_null(fp);
    for (size_t i = 0; i < STATS_SLOTS; i++) {
        char bad[STATS_LABEL_MAX];
        memset(bad, '"', sizeof(bad));
        label_at = 64 + (long)(i * (8 + STATS_LABEL_MAX + 8 * STATS_VALUES)) + 8;
        fseek(fp, label_at, SEEK_SET);
        fwrite(bad, 1, sizeof(bad), fp);
    }
    fclose(fp);
    f = stats_file_open(fx->path, 0);
    assert_non_null(f);
    for (size_t i = 0; i < STATS_SLOTS; i++)
        ready += stats_slot_read(f, i, &s);
    assert_int_equal(ready, 0);
    assert_int_equal(stats_slot_read(f, STATS_SLOTS, &s), 0);
    stats_file_close(f);
}

/* set_every_state - write state into every slot of the file (the layout of
 * test_a_corrupt_slot_is_skipped: the state is a slot's first 4 bytes) */
static void set_every_state(const char *path, uint32_t state)
{
    FILE *fp = fopen(path, "r+");

    assert_non_null(fp);
    for (size_t i = 0; i < STATS_SLOTS; i++) {
        fseek(fp, 64 + (long)(i * (8 + STATS_LABEL_MAX + 8 * STATS_VALUES)), SEEK_SET);
        assert_int_equal(fwrite(&state, sizeof(state), 1, fp), 1);
    }
    fclose(fp);
}

static double seconds_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_a_slot_left_claiming_drops_the_add_at_once_and_start_frees_it(void **state)
{
    struct fixture *fx = *state;
    struct stats_file *f;
    double started;

    assert_int_equal(stats_file_prepare(fx->path, getuid(), getgid()), 0);
    assert_int_equal(stats_attach(fx->dir), 0);
    set_every_state(fx->path, 1); /* STATS_CLAIMING: as if killed mid-claim */
    started = seconds_now();
    for (int i = 0; i < 200; i++)
        stats_add(STATS_RECEIVED, "smtp", 1);
    /* 200 waits of 10000 yields took seconds; 200 of a few take well under */
    assert_true(seconds_now() - started < 1.0);
    f = stats_file_open(fx->path, 0);
    assert_non_null(f);
    assert_int_equal(stats_file_dropped(f), 200);
    stats_file_close(f);
    /* master's start frees the slots; the next add lands, the drops stay */
    assert_int_equal(stats_file_prepare(fx->path, getuid(), getgid()), 0);
    stats_add(STATS_RECEIVED, "smtp", 1);
    assert_int_equal(value(fx->path, STATS_RECEIVED, "smtp"), 1);
    f = stats_file_open(fx->path, 1);
    assert_non_null(f);
    assert_int_equal(stats_file_dropped(f), 200);
    stats_file_reset(f);
    assert_int_equal(stats_file_dropped(f), 0);
    stats_file_close(f);
}

/* a slot whose metric another process changes after the check: the reader
 * copies it once, so out->metric is always in range */
static void test_a_slot_read_uses_the_metric_it_checked(void **state)
{
    struct fixture *fx = *state;
    struct stats_file *f;
    struct stats_sample s;
    uint32_t bad = 0xffffffffu;
    size_t found = 0;
    FILE *fp;

    assert_int_equal(stats_file_prepare(fx->path, getuid(), getgid()), 0);
    assert_int_equal(stats_attach(fx->dir), 0);
    stats_add(STATS_RECEIVED, "smtp", 1);
    f = stats_file_open(fx->path, 0);
    assert_non_null(f);
    fp = fopen(fx->path, "r+");
    assert_non_null(fp);
    for (size_t i = 0; i < STATS_SLOTS; i++) {
        if (!stats_slot_read(f, i, &s))
            continue;
        found++;
        assert_true(s.metric < STATS_METRIC_COUNT);
        fseek(fp, 64 + (long)(i * (8 + STATS_LABEL_MAX + 8 * STATS_VALUES)) + 4, SEEK_SET);
        assert_int_equal(fwrite(&bad, sizeof(bad), 1, fp), 1);
        fflush(fp);
        assert_int_equal(stats_slot_read(f, i, &s), 0);
    }
    fclose(fp);
    assert_int_equal(found, 1);
    stats_file_close(f);
    /* master's start and a reset read it without indexing out of range */
    assert_int_equal(stats_file_prepare(fx->path, getuid(), getgid()), 0);
}

static void test_histogram_buckets_count_and_sum(void **state)
{
    struct fixture *fx = *state;
    struct stats_file *f;
    struct stats_sample s;
    int found = 0;

    assert_int_equal(stats_file_prepare(fx->path, getuid(), getgid()), 0);
    assert_int_equal(stats_attach(fx->dir), 0);
    stats_observe(STATS_DELAY, "smtp", 0.5);
    stats_observe(STATS_DELAY, "smtp", 7);
    stats_observe(STATS_DELAY, "smtp", 1e6);
    stats_observe(STATS_DELAY, "smtp", -3); /* a clock step back counts as 0 */
    f = stats_file_open(fx->path, 0);
    assert_non_null(f);
    for (size_t i = 0; i < STATS_SLOTS; i++) {
        if (!stats_slot_read(f, i, &s) || s.metric != STATS_DELAY)
            continue;
        found++;
        assert_int_equal(s.values[0], 1); /* -3: le 0.1 */
        assert_int_equal(s.values[2], 1); /* 0.5: le 0.5 */
        assert_int_equal(s.values[5], 1); /* 7: le 10 */
        assert_int_equal(s.values[STATS_BUCKETS - 1], 1);
        assert_int_equal(s.values[STATS_HIST_COUNT], 4);
        assert_int_equal(s.values[STATS_HIST_SUM_MS], 500 + 7000 + 1000000000ULL);
    }
    assert_int_equal(found, 1);
    stats_file_close(f);
}

static void test_reset_zeroes_counters_not_gauges(void **state)
{
    struct fixture *fx = *state;
    struct stats_file *f;

    assert_int_equal(stats_file_prepare(fx->path, getuid(), getgid()), 0);
    assert_int_equal(stats_attach(fx->dir), 0);
    stats_count_received("local", 300);
    stats_count_session(1);
    stats_count_session(1);
    stats_count_session(0);
    f = stats_file_open(fx->path, 1);
    assert_non_null(f);
    stats_file_reset(f);
    assert_true(stats_file_reset_time(f) > 0);
    stats_file_close(f);
    assert_int_equal(value(fx->path, STATS_RECEIVED, "local"), 0);
    assert_int_equal(value(fx->path, STATS_SESSIONS, "none"), 0);
    assert_int_equal(value(fx->path, STATS_SESSIONS_OPEN, "none"), 1);
    stats_count_session(0);
    assert_int_equal(value(fx->path, STATS_SESSIONS_OPEN, "none"), 0);
    /* master's start zeroes the gauges: nothing is open before the services */
    stats_count_session(1);
    assert_int_equal(stats_file_prepare(fx->path, getuid(), getgid()), 0);
    assert_int_equal(value(fx->path, STATS_SESSIONS_OPEN, "none"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_increments_from_forked_processes_add_up_exactly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_labels_are_separate_and_cleaned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_full_table_drops_new_labels_and_keeps_the_old, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_foreign_file_is_rebuilt_never_trusted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_link_in_its_place_is_replaced_not_given_away, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_corrupt_slot_is_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_slot_left_claiming_drops_the_add_at_once_and_start_frees_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_slot_read_uses_the_metric_it_checked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_histogram_buckets_count_and_sum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_zeroes_counters_not_gauges, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
