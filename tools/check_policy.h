/*
 * check_policy - the restriction lists in `tern check` (check_policy.c).
 */
#ifndef TERN_TOOLS_CHECK_POLICY_H
#define TERN_TOOLS_CHECK_POLICY_H

struct config;

/* check_policy - print every restriction-list problem of the listeners and
 * a warning for an open relay; returns the number of problems */
int check_policy(const struct config *cfg);

#endif
