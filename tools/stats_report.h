/*
 * stats_report - `tern stats [-r]`: sendmail mailstats-like totals per
 * transport since the last reset, read from the counter file that every
 * service adds to (data_directory/stats, lib/stats.h; docs/metrics.md).
 * Works with tern stopped: it only reads the file.  -r (or "reset") prints
 * the totals, then zeroes them and records the reset time (sendmail's
 * `mailstats -p`).
 *
 * Called from tools/tern.c with argv[0] = "stats".  Returns the exit
 * status: 0 ok (also when nothing was counted yet), 1 error, 2 usage.
 */
#ifndef TERN_TOOLS_STATS_REPORT_H
#define TERN_TOOLS_STATS_REPORT_H

struct config;

/* tern_stats_main - run `tern stats` with cfg's data_directory */
int tern_stats_main(int argc, char **argv, const struct config *cfg);

#endif
