/*
 * proctitle - what `ps` shows for a tern process (SPEC OPS-04).
 *
 * Linux has no setproctitle(3); like Postfix and OpenSSH we overwrite the
 * memory that holds argv[] and, after it, environ[] (contiguous on Linux), so
 * /proc/PID/cmdline -- and therefore `ps -eo args` -- shows the new text.
 * proctitle_init moves the environment and the argument strings to the heap
 * first: argv[i] and getenv keep working after every proctitle_set.
 *
 * Callers: service_init (every service), the master.  A title is short and
 * must never hold a secret or a full address list: a queue ID, a host, an IP
 * address, one local user, counters.  The text is truncated to the space the
 * original command line and environment occupied.
 *
 * Not async-signal-safe; call from the event loop only.
 */
#ifndef TERN_PROCTITLE_H
#define TERN_PROCTITLE_H

/* proctitle_init - take over argv's memory for titles "PROGRAM: ..."
 * (program: "tern-smtpd", copied); once, before proctitle_set.  Until the
 * first proctitle_set ps shows the original command line.  On failure (no
 * memory) titles are silently left alone. */
void proctitle_init(int argc, char **argv, const char *program);
/* proctitle_set - "PROGRAM: " followed by the formatted text, e.g.
 * proctitle_set("%d sessions", n) */
void proctitle_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
