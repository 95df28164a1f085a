/*
 * test_metrics_render - tern-metrics' exposition text (metrics/render.c):
 * OpenMetrics families, counters with _total, labels of one and two
 * names, histogram buckets, the queue figures, "# EOF"; the older
 * Prometheus text format; no counter file at all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics.h"
#include "stats.h"

static struct metrics_queue queues[METRICS_QUEUE_COUNT];

/* render - the text of a file with a few counters in it */
static void render(enum metrics_format format, int with_file, buf_t *out)
{
    char dir[] = "/tmp/test_metrics_render_XXXXXX", path[128];
    struct stats_file *f = NULL;

    assert_non_null(mkdtemp(dir));
    stats_path(dir, path, sizeof(path));
    assert_int_equal(stats_file_prepare(path, getuid(), getgid()), 0);
    assert_int_equal(stats_attach(dir), 0);
    stats_count_received("smtp", 2048);
    stats_count_result(STATS_TLS, "smtpd", 1);
    stats_count_session(1);
    stats_observe(STATS_DELAY, "local", 2.5);
    for (size_t i = 0; i < METRICS_QUEUE_COUNT; i++)
        queues[i] = (struct metrics_queue){metrics_queue_names[i], (long long)i, 60 * (long long)i};
    if (with_file)
        f = stats_file_open(path, 0);
    metrics_render(f, queues, format, out);
    stats_file_close(f);
    unlink(path);
    rmdir(dir);
}

static void test_openmetrics_text(void **state)
{
    buf_t out = BUF_INIT;
    const char *t;

    render(METRICS_OPENMETRICS, 1, &out);
    t = buf_cstr(&out);
    assert_non_null(strstr(t, "# TYPE tern_messages_received counter\n"));
    assert_non_null(strstr(t, "\ntern_messages_received_total{origin=\"smtp\"} 1\n"));
    assert_non_null(strstr(t, "\ntern_received_bytes_total{origin=\"smtp\"} 2048\n"));
    assert_non_null(strstr(t, "\ntern_tls_handshakes_total{side=\"smtpd\",result=\"ok\"} 1\n"));
    assert_non_null(strstr(t, "\ntern_smtpd_sessions_open 1\n"));
    assert_non_null(strstr(t, "\ntern_smtpd_sessions_total 1\n"));
    assert_non_null(
        strstr(t, "\ntern_delivery_delay_seconds_bucket{transport=\"local\",le=\"1.0\"} 0\n"));
    assert_non_null(
        strstr(t, "\ntern_delivery_delay_seconds_bucket{transport=\"local\",le=\"5.0\"} 1\n"));
    assert_non_null(
        strstr(t, "\ntern_delivery_delay_seconds_bucket{transport=\"local\",le=\"+Inf\"} 1\n"));
    assert_non_null(strstr(t, "\ntern_delivery_delay_seconds_sum{transport=\"local\"} 2.500\n"));
    assert_non_null(strstr(t, "\ntern_queue_messages{queue=\"deferred\"} 3\n"));
    assert_non_null(strstr(t, "\ntern_queue_oldest_age_seconds{queue=\"hold\"} 240\n"));
    assert_non_null(strstr(t, "# TYPE tern_stats_dropped counter\ntern_stats_dropped_total 0\n"));
    assert_null(strstr(t, "# TYPE tern_messages_received_total"));
    assert_true(out.len > 6 && strcmp(t + out.len - 6, "# EOF\n") == 0);
    buf_free(&out);
}

static void test_prometheus_text_names_the_family_with_total(void **state)
{
    buf_t out = BUF_INIT;
    const char *t;

    render(METRICS_PROMETHEUS_TEXT, 1, &out);
    t = buf_cstr(&out);
    assert_non_null(strstr(t, "# TYPE tern_messages_received_total counter\n"));
    assert_non_null(strstr(t, "# TYPE tern_delivery_delay_seconds histogram\n"));
    assert_non_null(strstr(t, "# TYPE tern_stats_dropped_total counter\n"));
    assert_null(strstr(t, "# EOF"));
    buf_free(&out);
}

static void test_without_a_file_only_the_queue_figures(void **state)
{
    buf_t out = BUF_INIT;
    const char *t;

    render(METRICS_OPENMETRICS, 0, &out);
    t = buf_cstr(&out);
    assert_non_null(strstr(t, "# TYPE tern_messages_received counter\n"));
    assert_null(strstr(t, "tern_messages_received_total{"));
    assert_non_null(strstr(t, "\ntern_queue_messages{queue=\"maildrop\"} 0\n"));
    assert_null(strstr(t, "tern_stats_reset_timestamp_seconds"));
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openmetrics_text),
        cmocka_unit_test(test_prometheus_text_names_the_family_with_total),
        cmocka_unit_test(test_without_a_file_only_the_queue_figures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
