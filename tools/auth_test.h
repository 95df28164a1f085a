/*
 * auth_test - `tern auth-test USER`: check a password exactly as tern-auth
 * would (DIAG-09, docs/auth.md).
 */
#ifndef TERN_TOOLS_AUTH_TEST_H
#define TERN_TOOLS_AUTH_TEST_H

struct config;

/* tern_auth_test_main - argv[0] is "auth-test"; exit code 0 accepted, 1
 * refused (or no answer), 2 usage or set-up error */
int tern_auth_test_main(int argc, char **argv, const struct config *cfg);

#endif
