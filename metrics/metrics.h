/*
 * metrics - internal interfaces of tern-metrics, the OpenMetrics endpoint.
 *
 * render.c turns the counter file (lib/stats.h) and a scan of the queue
 * directories into exposition text, without I/O, so a unit test calls it
 * directly; queue_scan.c counts the files of each queue directory; main.c
 * serves GET /metrics with libmicrohttpd.
 */
#ifndef TERN_METRICS_H
#define TERN_METRICS_H

#include <stddef.h>
#include <time.h>

#include "buf.h"

struct stats_file;

/* at most this many entries are read in one queue directory per scrape */
#define METRICS_SCAN_MAX 100000

struct metrics_queue {
    const char *name;     /* "deferred" */
    long long messages;   /* files seen (capped at METRICS_SCAN_MAX) */
    long long oldest_age; /* seconds since the oldest arrival; 0 when empty */
};

#define METRICS_QUEUE_COUNT 5
extern const char *const metrics_queue_names[METRICS_QUEUE_COUNT];

enum metrics_format { METRICS_OPENMETRICS, METRICS_PROMETHEUS_TEXT };

/* metrics_render - the exposition of f (may be NULL: no counters) and the
 * queue figures q[METRICS_QUEUE_COUNT] into out */
void metrics_render(const struct stats_file *f, const struct metrics_queue *q,
                    enum metrics_format format, buf_t *out);

/* metrics_queue_scan - count the files of every queue directory (paths
 * relative to the current directory, the queue_directory) into
 * q[METRICS_QUEUE_COUNT] */
void metrics_queue_scan(struct metrics_queue *q, time_t now);

#endif
