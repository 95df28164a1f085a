/*
 * check_remote - the remote tables part of `tern check` (see check_remote.c).
 */
#ifndef TERN_TOOLS_CHECK_REMOTE_H
#define TERN_TOOLS_CHECK_REMOTE_H

struct config;

/* check_remote - open every remote table (ldap:, pgsql:, socketmap:,
 * proxy:) the configuration names, once each, and look one probe key up;
 * prints a line per table that cannot be opened or queried and returns
 * their number */
int check_remote(const struct config *cfg);

#endif
