/*
 * check_sasl - the SMTP AUTH part of `tern check` (see check_sasl.c).
 */
#ifndef TERN_TOOLS_CHECK_SASL_H
#define TERN_TOOLS_CHECK_SASL_H

struct config;

/* check_sasl - print every AUTH problem (and warning) of the listeners;
 * returns the number of problems */
int check_sasl(const struct config *cfg);

#endif
