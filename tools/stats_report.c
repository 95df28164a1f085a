/*
 * stats_report - `tern stats` (see stats_report.h).
 *
 * Columns as sendmail's mailstats prints them: msgsfr and bytes_from are
 * messages received (by origin: "smtp" for SMTP, "local" for the local
 * submission), msgsto and bytes_to recipients delivered by each transport,
 * msgsrej what smtpd refused (on the smtp line: sendmail counts a refusal
 * against the mailer it arrived by), msgsdis messages discarded.  Bytes are
 * in kilobytes, rounded up, as mailstats does.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "stats.h"
#include "stats_report.h"

#define STATS_REPORT_ROWS 64

struct stats_row {
    char name[STATS_LABEL_MAX];
    unsigned long long from, bytes_from, to, bytes_to, rejected, discarded;
};

struct stats_table {
    struct stats_row rows[STATS_REPORT_ROWS];
    size_t count;
};

/* stats_table_row - the row called name, added if new (NULL when full) */
static struct stats_row *stats_table_row(struct stats_table *t, const char *name)
{
    for (size_t i = 0; i < t->count; i++)
        if (strcmp(t->rows[i].name, name) == 0)
            return &t->rows[i];
    if (t->count == STATS_REPORT_ROWS)
        return NULL;
    memset(&t->rows[t->count], 0, sizeof(t->rows[0]));
    snprintf(t->rows[t->count].name, sizeof(t->rows[0].name), "%s", name);
    return &t->rows[t->count++];
}

/* stats_table_add - one counter slot into its row and column */
static void stats_table_add(struct stats_table *t, const struct stats_sample *s)
{
    unsigned long long v = s->values[0];
    struct stats_row *r;
    const char *name = s->metric == STATS_REJECTED ? "smtp" : s->label;

    if (s->metric != STATS_RECEIVED && s->metric != STATS_RECEIVED_BYTES &&
        s->metric != STATS_DELIVERED && s->metric != STATS_DELIVERED_BYTES &&
        s->metric != STATS_REJECTED && s->metric != STATS_DISCARDED)
        return;
    if ((r = stats_table_row(t, name)) == NULL)
        return;
    r->from += s->metric == STATS_RECEIVED ? v : 0;
    r->bytes_from += s->metric == STATS_RECEIVED_BYTES ? v : 0;
    r->to += s->metric == STATS_DELIVERED ? v : 0;
    r->bytes_to += s->metric == STATS_DELIVERED_BYTES ? v : 0;
    r->rejected += s->metric == STATS_REJECTED ? v : 0;
    r->discarded += s->metric == STATS_DISCARDED ? v : 0;
}

/* stats_row_print - one line: "M msgsfr bytes_from msgsto bytes_to msgsrej msgsdis name" */
static void stats_row_print(const char *mark, const struct stats_row *r, const char *name)
{
    printf("%2s %8llu %10lluK %8llu %10lluK %8llu %8llu  %s\n", mark, r->from,
           (r->bytes_from + 1023) / 1024, r->to, (r->bytes_to + 1023) / 1024, r->rejected,
           r->discarded, name);
}

/* stats_report_print - the table and the total line */
static void stats_report_print(const struct stats_file *f)
{
    static struct stats_table t;
    struct stats_sample s;
    struct stats_row total;
    time_t since = (time_t)stats_file_reset_time(f);
    char when[64], mark[24];

    t.count = 0;
    for (size_t i = 0; i < STATS_SLOTS; i++)
        if (stats_slot_read(f, i, &s))
            stats_table_add(&t, &s);
    strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", localtime(&since));
    printf("Statistics from %s\n", when);
    printf(" M   msgsfr  bytes_from   msgsto    bytes_to  msgsrej  msgsdis  Mailer\n");
    memset(&total, 0, sizeof(total));
    for (size_t i = 0; i < t.count; i++) {
        const struct stats_row *r = &t.rows[i];
        snprintf(mark, sizeof(mark), "%zu", i);
        stats_row_print(mark, r, r->name);
        total.from += r->from;
        total.bytes_from += r->bytes_from;
        total.to += r->to;
        total.bytes_to += r->bytes_to;
        total.rejected += r->rejected;
        total.discarded += r->discarded;
    }
    printf("=================================================================================\n");
    stats_row_print("T", &total, "");
}

int tern_stats_main(int argc, char **argv, const struct config *cfg)
{
    int reset = argc == 2 && (strcmp(argv[1], "-r") == 0 || strcmp(argv[1], "reset") == 0);
    char path[4096];
    struct stats_file *f;

    if (argc > 2 || (argc == 2 && !reset)) {
        fprintf(stderr, "usage: tern stats [-r]\n");
        return 2;
    }
    if (stats_path(config_str(cfg, "data_directory"), path, sizeof(path)) < 0 ||
        (f = stats_file_open(path, reset)) == NULL) {
        fprintf(stderr, "tern stats: %s: %m (tern makes it at its first start)\n", path);
        return 1;
    }
    stats_report_print(f);
    if (reset) {
        stats_file_reset(f);
        printf("counters reset\n");
    }
    stats_file_close(f);
    return 0;
}
