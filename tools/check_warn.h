/*
 * check_warn - the warnings of `tern check` (SPEC SPAM-10, OPS-06): settings
 * that work but are dangerous.  A warning does not change the exit status.
 * Each is one line "tern: warning: FILE[:LINE]: what; hint", naming the
 * config line that causes it (the file alone for a default value).
 */
#ifndef TERN_TOOLS_CHECK_WARN_H
#define TERN_TOOLS_CHECK_WARN_H

struct config;

/* a mynetworks entry wider than this lets half the Internet relay */
#define CHECK_WARN_MIN_PREFIX_V4 8
#define CHECK_WARN_MIN_PREFIX_V6 32

/* check_warn - print one warning line; origin is "file:line" or a file */
void check_warn(const char *origin, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* check_warnings - print the warnings about mynetworks, table and key
 * file permissions, the greet pause and AUTH without TLS; the count
 * (the open-relay probe is in check_policy) */
int check_warnings(const struct config *cfg);

#endif
