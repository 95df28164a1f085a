/*
 * tlsrpt_report - `tern tlsrpt [-d DAYS] [DOMAIN]`: the TLS-RPT (RFC 8460)
 * session counts that tern-smtp keeps in data_directory/tlsrpt/ (lib/tlsrpt.h),
 * one line per UTC day, policy domain and policy type (docs/tlsrpt.md).
 *
 * Called from tools/tern.c with argv[0] = "tlsrpt".  Returns the exit
 * status: 0 ok (also when nothing is recorded), 1 error, 2 usage.
 */
#ifndef TERN_TOOLS_TLSRPT_REPORT_H
#define TERN_TOOLS_TLSRPT_REPORT_H

struct config;

/* tern_tlsrpt_main - run `tern tlsrpt` with cfg's data_directory */
int tern_tlsrpt_main(int argc, char **argv, const struct config *cfg);

#endif
