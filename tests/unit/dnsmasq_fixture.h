/*
 * dnsmasq_fixture - a real DNS server for the lib/dns unit tests: dnsmasq in
 * the foreground on a free 127.0.0.1 port, serving only the records given on
 * its command line (no upstream, no hosts file), and a UDP socket that never
 * answers.  Used by test_dns and test_dns_query; a test that cannot start
 * dnsmasq must fail, not skip.
 */
#ifndef TERN_DNSMASQ_FIXTURE_H
#define TERN_DNSMASQ_FIXTURE_H

#include <sys/types.h>

struct dnsmasq_fixture {
    pid_t pid;
    int port;        /* where dnsmasq answers */
    int silent_fd;   /* bound UDP socket nobody reads */
    int silent_port; /* its port */
};

/* dnsmasq_fixture_start - start dnsmasq with records (NULL-terminated dnsmasq
 * options such as "--host-record=a.test,127.0.0.2") and wait until it accepts
 * TCP connections, and bind the silent socket; 0, or -1 (message on stderr) */
int dnsmasq_fixture_start(struct dnsmasq_fixture *fx, const char *const *records);
/* dnsmasq_fixture_stop - stop dnsmasq, close the silent socket */
void dnsmasq_fixture_stop(struct dnsmasq_fixture *fx);
/* dnsmasq_fixture_free_port - a 127.0.0.1 port bound by nothing (best effort), or -1 */
int dnsmasq_fixture_free_port(void);

#endif
