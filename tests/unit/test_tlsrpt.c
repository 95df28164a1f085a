/*
 * test_tlsrpt - unit tests for lib/tlsrpt: counts are kept per day, domain,
 * type, result and MX host, two flushes add up, the walk gives every stored
 * count in key order, days older than TLSRPT_KEEP_DAYS are dropped, a
 * reader in another process sees the last flush while the writer stays
 * open, and input that is not RFC 8460's is not counted.
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
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "tlsrpt.h"

#define DAY 86400
#define NOW ((time_t)1796515200) /* 2026-12-06 00:00:00 UTC */

/* what a walk saw: one "day domain type result mx count" line per entry */
struct seen {
    buf_t lines;
    size_t count;
};

static int collect(const struct tlsrpt_entry *e, void *ctx)
{
    struct seen *s = ctx;

    buf_printf(&s->lines, "%s %s %s %s %s %llu\n", e->day, e->domain, e->policy_type, e->result,
               e->mx_host[0] ? e->mx_host : "-", (unsigned long long)e->count);
    s->count++;
    return 0;
}

/* walk - every stored entry of dir as text, read by a child process as
 * `tern tlsrpt` would: LMDB allows one environment per process, and the
 * tests keep a writer open */
static void walk(const char *dir, struct seen *s)
{
    char chunk[4096];
    int fds[2];
    int status = 0;
    ssize_t n;
    pid_t pid;

    buf_reset(&s->lines);
    s->count = 0;
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        buf_t err = BUF_INIT;
        int rc = tlsrpt_walk(dir, collect, s, &err);
        close(fds[0]);
        if (write(fds[1], s->lines.data, s->lines.len) != (ssize_t)s->lines.len)
            rc = -1;
        _exit(rc == 0 ? 0 : 1);
    }
    close(fds[1]);
    while ((n = read(fds[0], chunk, sizeof(chunk))) > 0)
        buf_append(&s->lines, chunk, (size_t)n);
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    for (size_t i = 0; i < s->lines.len; i++)
        s->count += s->lines.data[i] == '\n';
}

static int setup(void **state)
{
    char *dir = strdup("/tmp/test_tlsrpt.XXXXXX");

    assert_non_null(mkdtemp(dir));
    *state = dir;
    return 0;
}

static int teardown(void **state)
{
    char *dir = *state;
    buf_t cmd = BUF_INIT;

    buf_printf(&cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(buf_cstr(&cmd)), 0);
    buf_free(&cmd);
    free(dir);
    return 0;
}

/* open_store - tlsrpt_open that must work */
static struct tlsrpt *open_store(const char *dir)
{
    buf_t err = BUF_INIT;
    struct tlsrpt *t = tlsrpt_open(dir, &err);

    assert_non_null(t);
    buf_free(&err);
    return t;
}

static void flush_at(struct tlsrpt *t, time_t now)
{
    buf_t err = BUF_INIT;

    assert_int_equal(tlsrpt_flush_at(t, now, &err), 0);
    buf_free(&err);
}

static void test_counts_are_kept_per_key_and_walked_in_order(void **state)
{
    const char *dir = *state;
    struct tlsrpt *t = open_store(dir);
    struct seen s = {BUF_INIT, 0};

    tlsrpt_count_at(t, NOW, "Example.COM.", "sts", "success", "MX1.example.com");
    tlsrpt_count_at(t, NOW + 60, "example.com", "sts", "success", "mx1.example.com");
    tlsrpt_count_at(t, NOW, "example.com", "sts", "certificate-host-mismatch", "");
    tlsrpt_count_at(t, NOW - DAY, "b.example", "tlsa", "dane-required", "mx.b.example");
    walk(dir, &s);
    assert_int_equal(s.count, 0); /* nothing before the flush */
    flush_at(t, NOW);
    walk(dir, &s);
    assert_string_equal(buf_cstr(&s.lines),
                        "2026-12-05 b.example tlsa dane-required mx.b.example 1\n"
                        "2026-12-06 example.com sts certificate-host-mismatch - 1\n"
                        "2026-12-06 example.com sts success mx1.example.com 2\n");
    tlsrpt_close(t);
    buf_free(&s.lines);
}

static void test_two_flushes_add_up(void **state)
{
    const char *dir = *state;
    struct tlsrpt *t = open_store(dir);
    struct seen s = {BUF_INIT, 0};

    tlsrpt_count_at(t, NOW, "example.com", "no-policy-found", "success", "");
    flush_at(t, NOW);
    tlsrpt_count_at(t, NOW, "example.com", "no-policy-found", "success", "");
    tlsrpt_count_at(t, NOW, "example.com", "no-policy-found", "success", "");
    flush_at(t, NOW);
    flush_at(t, NOW); /* nothing pending: nothing changes */
    tlsrpt_close(t);
    t = open_store(dir); /* the counts survive a restart, and close flushed */
    tlsrpt_count_at(t, NOW, "example.com", "no-policy-found", "success", "");
    tlsrpt_close(t);
    walk(dir, &s);
    assert_string_equal(buf_cstr(&s.lines), "2026-12-06 example.com no-policy-found success - 4\n");
    buf_free(&s.lines);
}

static void test_old_days_are_pruned(void **state)
{
    const char *dir = *state;
    struct tlsrpt *t = open_store(dir);
    struct seen s = {BUF_INIT, 0};

    tlsrpt_count_at(t, NOW - 40 * DAY, "old.example", "sts", "success", "");
    tlsrpt_count_at(t, NOW - 29 * DAY, "kept.example", "sts", "success", "");
    tlsrpt_count_at(t, NOW - 30 * DAY, "gone.example", "sts", "success", "");
    flush_at(t, NOW - 40 * DAY); /* then every day was recent: all stored */
    walk(dir, &s);
    assert_int_equal(s.count, 3);
    flush_at(t, NOW); /* TLSRPT_KEEP_DAYS later: today and 29 days back stay */
    walk(dir, &s);
    assert_string_equal(buf_cstr(&s.lines), "2026-11-07 kept.example sts success - 1\n");
    tlsrpt_close(t);
    buf_free(&s.lines);
}

static void test_reader_sees_flushes_while_the_writer_is_open(void **state)
{
    const char *dir = *state;
    struct tlsrpt *t = open_store(dir);
    struct seen s = {BUF_INIT, 0};

    tlsrpt_count_at(t, NOW, "example.com", "sts", "sts-policy-invalid", "");
    flush_at(t, NOW);
    tlsrpt_count_at(t, NOW, "example.com", "sts", "sts-policy-invalid", ""); /* not flushed */
    walk(dir, &s); /* a child process: it sees the last flush, not what is pending */
    assert_string_equal(buf_cstr(&s.lines), "2026-12-06 example.com sts sts-policy-invalid - 1\n");
    flush_at(t, NOW); /* the writer goes on after the reader */
    tlsrpt_close(t);
    walk(dir, &s);
    assert_string_equal(buf_cstr(&s.lines), "2026-12-06 example.com sts sts-policy-invalid - 2\n");
    buf_free(&s.lines);
}

static void test_bad_input_is_not_counted(void **state)
{
    const char *dir = *state;
    struct tlsrpt *t = open_store(dir);
    struct seen s = {BUF_INIT, 0};
    char long_name[TLSRPT_MAX_NAME + 2];

    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    tlsrpt_count_at(t, NOW, "example.com", "dane", "success", "");
    tlsrpt_count_at(t, NOW, "example.com", "sts", "certificate-revoked", "");
    tlsrpt_count_at(t, NOW, "", "sts", "success", "");
    tlsrpt_count_at(t, NOW, "exa mple.com", "sts", "success", "");
    tlsrpt_count_at(t, NOW, "example.com", "sts", "success", "mx\r\n.example.com");
    tlsrpt_count_at(t, NOW, long_name, "sts", "success", "");
    tlsrpt_count_at(NULL, NOW, "example.com", "sts", "success", "");
    flush_at(t, NOW);
    walk(dir, &s);
    assert_int_equal(s.count, 0);
    assert_true(tlsrpt_result_valid("validation-failure"));
    assert_false(tlsrpt_result_valid("failure"));
    assert_true(tlsrpt_policy_type_valid("tlsa"));
    tlsrpt_close(t);
    buf_free(&s.lines);
}

static void test_pending_counts_are_bounded(void **state)
{
    const char *dir = *state;
    struct tlsrpt *t = open_store(dir);
    struct seen s = {BUF_INIT, 0};
    char name[64];

    for (int i = 0; i <= TLSRPT_MAX_PENDING; i++) {
        snprintf(name, sizeof(name), "d%d.example", i);
        tlsrpt_count(t, name, "sts", "success", "");
    }
    walk(dir, &s); /* the one past the bound flushed the others first */
    assert_int_equal(s.count, TLSRPT_MAX_PENDING);
    tlsrpt_close(t);
    walk(dir, &s);
    assert_int_equal(s.count, TLSRPT_MAX_PENDING + 1);
    buf_free(&s.lines);
}

static void test_missing_store_has_no_entries(void **state)
{
    const char *dir = *state;
    struct seen s = {BUF_INIT, 0};
    buf_t err = BUF_INIT;
    struct stat st;

    walk(dir, &s);
    assert_int_equal(s.count, 0);
    buf_printf(&err, "%s/tlsrpt", dir);
    assert_int_equal(stat(buf_cstr(&err), &st), -1); /* the reader created nothing */
    buf_reset(&err);
    assert_null(tlsrpt_open("/nonexistent/tern-data", &err));
    assert_non_null(strstr(buf_cstr(&err), "/nonexistent/tern-data"));
    buf_free(&err);
    buf_free(&s.lines);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counts_are_kept_per_key_and_walked_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_two_flushes_add_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_days_are_pruned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_sees_flushes_while_the_writer_is_open, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_is_not_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_counts_are_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_store_has_no_entries, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
