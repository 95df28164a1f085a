/*
 * render - the exposition text of tern-metrics (see metrics.h).
 *
 * OpenMetrics 1.0: a counter family "tern_x" has samples "tern_x_total";
 * the text ends with "# EOF".  The older Prometheus text format (0.0.4),
 * for a scraper that asks for text/plain only, names the family
 * "tern_x_total" and has no "# EOF".  Label values come from the counter
 * file already cut to [A-Za-z0-9_.-] (lib/stats.h): nothing to escape.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "metrics.h"
#include "stats.h"

const char *const metrics_queue_names[METRICS_QUEUE_COUNT] = {"maildrop", "incoming", "active",
                                                              "deferred", "hold"};

/* metrics_labels - {a="x",b="y"} of names "a,b" and values "x,y" (extra
 * ends with a last pair, e.g. le="1.0", or is NULL); -1 when the counts
 * of names and values differ */
static int metrics_labels(const char *names, const char *values, const char *extra, buf_t *out)
{
    size_t nn, vn;
    int first = 1;

    if (*names == 0) {
        if (extra != NULL)
            buf_printf(out, "{%s}", extra);
        return 0;
    }
    buf_putc(out, '{');
    for (;;) {
        nn = strcspn(names, ",");
        vn = strcspn(values, ",");
        buf_printf(out, "%s%.*s=\"%.*s\"", first ? "" : ",", (int)nn, names, (int)vn, values);
        first = 0;
        names += nn;
        values += vn;
        if (*names == 0 || *values == 0)
            break;
        names++;
        values++;
    }
    if (*names != 0 || *values != 0)
        return -1;
    if (extra != NULL)
        buf_printf(out, ",%s", extra);
    buf_putc(out, '}');
    return 0;
}

/* metrics_sample - "NAMESUFFIX{labels} value" */
static void metrics_sample(const struct stats_metric_def *d, const char *suffix, const char *label,
                           const char *extra, const char *value, buf_t *out)
{
    buf_t labels = BUF_INIT;

    if (metrics_labels(d->labels, label, extra, &labels) == 0)
        buf_printf(out, "%s%s%s %s\n", d->name, suffix, buf_cstr(&labels), value);
    buf_free(&labels);
}

/* metrics_histogram - the cumulative buckets, count and sum of one slot */
static void metrics_histogram(const struct stats_metric_def *d, const struct stats_sample *s,
                              buf_t *out)
{
    uint64_t total = 0;
    char le[48], value[48];

    for (size_t b = 0; b < STATS_BUCKETS; b++) {
        total += s->values[b];
        if (b + 1 < STATS_BUCKETS)
            snprintf(le, sizeof(le), "le=\"%.1f\"", stats_bucket_bounds[b]);
        else
            snprintf(le, sizeof(le), "le=\"+Inf\"");
        snprintf(value, sizeof(value), "%llu", (unsigned long long)total);
        metrics_sample(d, "_bucket", s->label, le, value, out);
    }
    snprintf(value, sizeof(value), "%llu", (unsigned long long)s->values[STATS_HIST_COUNT]);
    metrics_sample(d, "_count", s->label, NULL, value, out);
    snprintf(value, sizeof(value), "%.3f", (double)s->values[STATS_HIST_SUM_MS] / 1000.0);
    metrics_sample(d, "_sum", s->label, NULL, value, out);
}

/* metrics_family_samples - every slot of metric m */
static void metrics_family_samples(const struct stats_file *f, enum stats_metric m,
                                   const char *suffix, buf_t *out)
{
    const struct stats_metric_def *d = &stats_metrics[m];
    struct stats_sample s;
    char value[32];

    for (size_t i = 0; f != NULL && i < STATS_SLOTS; i++) {
        if (!stats_slot_read(f, i, &s) || s.metric != m)
            continue;
        if (d->kind == STATS_HISTOGRAM) {
            metrics_histogram(d, &s, out);
            continue;
        }
        if (d->kind == STATS_GAUGE)
            snprintf(value, sizeof(value), "%lld", (long long)(int64_t)s.values[0]);
        else
            snprintf(value, sizeof(value), "%llu", (unsigned long long)s.values[0]);
        metrics_sample(d, suffix, s.label, NULL, value, out);
    }
}

/* metrics_family - HELP, TYPE and the samples of one metric */
static void metrics_family(const struct stats_file *f, enum stats_metric m,
                           enum metrics_format format, buf_t *out)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    const struct stats_metric_def *d = &stats_metrics[m];
    const char *suffix = d->kind == STATS_COUNTER ? "_total" : "";
    const char *family_suffix = format == METRICS_PROMETHEUS_TEXT ? suffix : "";

    buf_printf(out, "# HELP %s%s %s\n", d->name, family_suffix, d->help);
    buf_printf(out, "# TYPE %s%s %s\n", d->name, family_suffix, types[d->kind]);
    metrics_family_samples(f, m, suffix, out);
}

/* metrics_queue_families - the queue figures, computed at scrape time */
static void metrics_queue_families(const struct metrics_queue *q, buf_t *out)
{
    buf_puts(out, "# HELP tern_queue_messages Messages in each queue directory (counted "
                  "at scrape time).\n# TYPE tern_queue_messages gauge\n");
    for (size_t i = 0; i < METRICS_QUEUE_COUNT; i++)
        buf_printf(out, "tern_queue_messages{queue=\"%s\"} %lld\n", q[i].name, q[i].messages);
    buf_puts(out, "# HELP tern_queue_oldest_age_seconds Age of the oldest message in each "
                  "queue directory.\n# TYPE tern_queue_oldest_age_seconds gauge\n");
    for (size_t i = 0; i < METRICS_QUEUE_COUNT; i++)
        buf_printf(out, "tern_queue_oldest_age_seconds{queue=\"%s\"} %lld\n", q[i].name,
                   q[i].oldest_age);
}

/* metrics_file_families - the figures of the counter file itself */
static void metrics_file_families(const struct stats_file *f, enum metrics_format format,
                                  buf_t *out)
{
    const char *family =
        format == METRICS_PROMETHEUS_TEXT ? "tern_stats_dropped_total" : "tern_stats_dropped";

    buf_puts(out, "# HELP tern_stats_reset_timestamp_seconds When the counters were last "
                  "zeroed (tern stats -r).\n# TYPE tern_stats_reset_timestamp_seconds gauge\n");
    buf_printf(out, "tern_stats_reset_timestamp_seconds %lld\n", stats_file_reset_time(f));
    buf_printf(out,
               "# HELP %s Counter updates lost: the counter file's table was full, or a slot "
               "was left half-claimed by a killed process (freed at the next start).\n"
               "# TYPE %s counter\ntern_stats_dropped_total %llu\n",
               family, family, stats_file_dropped(f));
}

void metrics_render(const struct stats_file *f, const struct metrics_queue *q,
                    enum metrics_format format, buf_t *out)
{
    for (int m = 0; m < STATS_METRIC_COUNT; m++)
        metrics_family(f, (enum stats_metric)m, format, out);
    metrics_queue_families(q, out);
    if (f != NULL)
        metrics_file_families(f, format, out);
    if (format == METRICS_OPENMETRICS)
        buf_puts(out, "# EOF\n");
}
