/*
 * check_tls - the TLS part of `tern check` (see check_tls.c).
 */
#ifndef TERN_TOOLS_CHECK_TLS_H
#define TERN_TOOLS_CHECK_TLS_H

struct config;

/* check_tls - print every TLS problem (and warning) of the listeners;
 * returns the number of problems */
int check_tls(const struct config *cfg);

#endif
