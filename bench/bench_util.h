/*
 * bench_util - what bench/tls_source and bench/tls_sink share: fatal errors,
 * clocks, and the epoll interest of non-blocking sockets and SSL objects.
 *
 * Both are single-threaded load tools (not installed); a fatal error prints
 * "PROGNAME: message" on stderr and exits 2.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdint.h>

#include <openssl/ssl.h>

/* bench_progname - the prefix of bench_die's message; set by main() */
extern const char *bench_progname;

/* bench_die - print "PROGNAME: message" on stderr and exit 2 */
__attribute__((format(printf, 1, 2), noreturn)) void bench_die(const char *fmt, ...);

/* bench_now - CLOCK_MONOTONIC in seconds */
double bench_now(void);

/* bench_cpu_seconds - this process's user + system CPU time in seconds */
double bench_cpu_seconds(void);

/* bench_ssl_want - the epoll interest (EPOLLIN, EPOLLOUT) an SSL call that
 * returned r waits for, or 0 when it failed */
uint32_t bench_ssl_want(SSL *ssl, int r);

/* bench_epoll_set - make fd's interest in epoll set ep ev (data ptr), adding
 * it when *current is 0; *current is the interest now; dies on error */
void bench_epoll_set(int ep, int fd, uint32_t *current, uint32_t ev, void *ptr);

#endif
