/*
 * fuzz_stats_file - libFuzzer target for lib/stats' reader and
 * tern-metrics' exposition (metrics/render.c): the counter file is a file,
 * and a file is not trusted.  The first input byte chooses where the rest
 * lands in a file of the right size made by stats_file_prepare: at 0 (the
 * header: the file must then be refused or read) or in the slots (every
 * slot read must be a known metric with a clean label).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "metrics.h"
#include "stats.h"

static char fuzz_path[] = "/tmp/fuzz_stats_XXXXXX";

/* fuzz_stats_read - every slot: a known metric and a clean label */
static void fuzz_stats_read(const struct stats_file *f)
{
    static const struct metrics_queue q[METRICS_QUEUE_COUNT];
    struct stats_sample s;
    buf_t out = BUF_INIT;

    for (size_t i = 0; i < STATS_SLOTS; i++) {
        if (!stats_slot_read(f, i, &s))
            continue;
        if (s.metric >= STATS_METRIC_COUNT || s.label[0] == 0 ||
            strspn(s.label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.,-") !=
                strlen(s.label))
            abort();
    }
    metrics_render(f, q, METRICS_OPENMETRICS, &out);
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    struct stats_file *f;
    struct stat st;

    if (fd < 0 && (fd = mkstemp(fuzz_path)) < 0)
        abort();
    if (size < 1)
        return 0;
    unlink(fuzz_path);
    if (stats_file_prepare(fuzz_path, getuid(), getgid()) < 0 || stat(fuzz_path, &st) < 0)
        abort();
    FILE *fp = fopen(fuzz_path, "r+");
    if (fp == NULL)
        abort();
    off_t at = data[0] & 1 ? 64 : 0;
    size_t n = size - 1;
    if ((off_t)n > st.st_size - at)
        n = (size_t)(st.st_size - at);
    fseek(fp, at, SEEK_SET);
    fwrite(data + 1, 1, n, fp);
    fclose(fp);
    if ((f = stats_file_open(fuzz_path, 0)) != NULL) {
        fuzz_stats_read(f);
        stats_file_close(f);
    }
    return 0;
}
