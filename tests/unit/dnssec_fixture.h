/*
 * dnssec_fixture - a validating resolver for the lib/dns unit tests:
 * tests/dnssec/make_zone.sh writes a signed zone (dane.test), a zone with
 * expired signatures (bogus.test) and an unsigned one (plain.test) into a
 * fresh directory under /tmp, nsd serves them on one free 127.0.0.1 port and
 * unbound validates them on another (trust anchors: the DS records of
 * dane.test and bogus.test).  Both run in the foreground as children of the
 * test.  A test that cannot start them must fail, not skip.
 */
#ifndef TERN_DNSSEC_FIXTURE_H
#define TERN_DNSSEC_FIXTURE_H

#include <sys/types.h>

/* the TLSA record of _25._tcp.mx.dane.test as lib/dns prints it */
#define DNSSEC_FIXTURE_TLSA "3 1 1 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct dnssec_fixture {
    char dir[64];   /* zones, keys, configs and logs */
    pid_t auth_pid; /* nsd: authoritative, never sets AD */
    int auth_port;
    pid_t resolver_pid; /* unbound: validating, val-permissive-mode: no */
    int resolver_port;
};

/* dnssec_fixture_start - make the zones, start nsd and unbound, wait until
 * unbound answers mx.dane.test with AD; 0, or -1 (message on stderr) */
int dnssec_fixture_start(struct dnssec_fixture *fx);
/* dnssec_fixture_stop - stop both servers, remove the directory */
void dnssec_fixture_stop(struct dnssec_fixture *fx);

#endif
