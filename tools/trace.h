/*
 * trace - explaining what tern does with an address, for the administrator:
 * `tern trace`, `sendmail -bt` (address test mode) and `sendmail -bv`.
 *
 * Every decision comes from the code the services run: lib/route (RCPT
 * verdict, canonical maps, masquerading, virtual aliases, transport_maps,
 * the address classes), local/ expansion (aliases, :include:, .forward,
 * without delivering) and lib/dns (the live MX list).  Nothing is
 * delivered, queued or changed.  Output goes to stdout: text (one step per
 * line, indented by depth) or, with -j, one JSON object per line.
 */
#ifndef TERN_TOOLS_TRACE_H
#define TERN_TOOLS_TRACE_H

#include <stddef.h>

struct config;

/* tern_trace_main - `tern trace [--from A] [--client IP] [--helo H]
 * [--no-dns] [-j] ADDR...`; argv[0] is "trace"; exit code 0, 1 when an
 * address would be refused or is undeliverable, 2 usage, 75 tempfail */
int tern_trace_main(int argc, char **argv, const struct config *cfg);
/* trace_address_test - sendmail -bt: read test lines from stdin */
int trace_address_test(const struct config *cfg);
/* trace_verify - sendmail -bv: "ADDR... deliverable: mailer M, host H,
 * user U" per final destination; exit 0, or EX_NOUSER when one is not */
int trace_verify(const struct config *cfg, char *const *addrs, size_t count);

#endif
