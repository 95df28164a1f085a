/*
 * throttle - smtpd_connection_rate_throttle, sendmail's
 * ConnectionRateThrottle (docs/smtpd.md, "Connection and rate limits"):
 * the pace of one worker's accepts on one listener.
 *
 * The rate N is for the whole host, per listener (sendmail counts per
 * daemon).  The workers share the listening sockets, so each takes a fixed
 * share of N (smtpd_throttle_share: N / workers, the remainder one each to
 * the first workers) and the shares add up to N; no worker asks another,
 * and nothing is on the accept path but a clock read.  A worker accepts one
 * connection, then waits 1 / share seconds before the next (a token bucket
 * that holds one token): connections are spread evenly, never in bursts.
 * The rests keep to a schedule, so a timer that fires a few ms late does
 * not slow the rate down.
 * Meanwhile the others wait in the kernel's listen queue; none is refused.
 * A worker whose share is 0 (N below smtpd_workers) does not accept on that
 * listener at all.
 *
 * Pure: no I/O, no clock; main.c disables and re-enables the listeners.
 */
#ifndef TERN_SMTPD_THROTTLE_H
#define TERN_SMTPD_THROTTLE_H

/* one worker's pace on one listener */
struct smtpd_throttle {
    double interval; /* seconds from one accept to the next; 0: no throttle */
    int closed;      /* the share is 0: never accept */
    double next;     /* when the next accept may come (the caller's clock) */
};

/* smtpd_throttle_worker_parse - TERN_SMTPD_WORKER "INDEX/COUNT" (from
 * master) into index and count; 0 when valid (0 <= index < count), -1 */
int smtpd_throttle_worker_parse(const char *text, long long *index, long long *count);
/* smtpd_throttle_share - worker index's part of rate connections per
 * second among count workers; the shares of 0 .. count-1 add up to rate */
long long smtpd_throttle_share(long long rate, long long index, long long count);
/* smtpd_throttle_init - the pace of worker index of count for rate (0: off) */
void smtpd_throttle_init(struct smtpd_throttle *t, long long rate, long long index,
                         long long count);
/* smtpd_throttle_take - a connection was accepted at now (seconds): the
 * seconds until the next may be; 0 when the throttle is off */
double smtpd_throttle_take(struct smtpd_throttle *t, double now);

#endif
