/*
 * anvil_table - tern-anvil's counters, one entry per client ident
 * ("smtp:192.0.2.1"): concurrent connections and the rates of connections,
 * messages (MAIL), recipients (RCPT) and AUTH commands, with Postfix
 * anvil's semantics (docs/internals.md, "anvil protocol").
 *
 * Pure: no I/O, no clock.  The caller passes the time of each event and
 * does the logging; tests/unit/test_anvil_table.c drives it directly.
 *
 * Rates count events per time unit (anvil_rate_time_unit) in Postfix's
 * window: it opens at a client's first event, and the first event at or
 * after start + unit opens a new one, resetting every rate of that client
 * together.  So a rate is "events since the window opened", at most the
 * number of events in the last two units, never fewer than those in the
 * last one.
 *
 * Connections are counted per owner (an smtpd worker's connection to
 * tern-anvil): anvil_table_owner_gone forgets what a vanished worker still
 * held, so a crashed worker cannot leave its clients counted forever.
 *
 * An entry with no connection whose window has expired carries nothing:
 * anvil_table_expire removes it (its next event would reset it anyway).
 * Counters saturate at LLONG_MAX; memory is freed by anvil_table_free.
 */
#ifndef TERN_ANVIL_TABLE_H
#define TERN_ANVIL_TABLE_H

#include <stddef.h>
#include <time.h>

/* longest ident accepted ("submission:" and an IPv6 address fit easily) */
#define ANVIL_IDENT_MAX 128

enum anvil_rate {
    ANVIL_RATE_CONNECT, /* counted by anvil_table_connect */
    ANVIL_RATE_MESSAGE,
    ANVIL_RATE_RECIPIENT,
    ANVIL_RATE_AUTH,
    ANVIL_RATE_COUNT
};

/* the largest value seen of one counter since the last reset, and where */
struct anvil_max {
    long long value; /* 0: nothing seen */
    char ident[ANVIL_IDENT_MAX + 1];
    time_t when;
};

struct anvil_stats {
    struct anvil_max count;                  /* concurrent connections */
    struct anvil_max rate[ANVIL_RATE_COUNT]; /* per time unit */
    struct anvil_max cache;                  /* entries in the table (ident unused) */
};

struct anvil_table;

/* anvil_table_new - an empty table; time_unit in seconds (at least 1) */
struct anvil_table *anvil_table_new(long long time_unit);
void anvil_table_free(struct anvil_table *t);

/* anvil_table_connect - one more connection of ident, held by owner:
 * *count is the concurrent connections of ident now (this one included),
 * *rate its connections in the current window */
void anvil_table_connect(struct anvil_table *t, const char *ident, unsigned long owner, time_t now,
                         long long *count, long long *rate);
/* anvil_table_disconnect - one connection of ident held by owner ended; a
 * disconnect that owner does not hold is ignored (0), else 1 */
int anvil_table_disconnect(struct anvil_table *t, const char *ident, unsigned long owner,
                           time_t now);
/* anvil_table_event - one message, recipient or AUTH of ident (what is
 * not ANVIL_RATE_CONNECT); returns its rate in the current window */
long long anvil_table_event(struct anvil_table *t, const char *ident, enum anvil_rate what,
                            time_t now);
/* anvil_table_owner_gone - owner vanished: release every connection it held */
void anvil_table_owner_gone(struct anvil_table *t, unsigned long owner, time_t now);
/* anvil_table_expire - remove the entries that carry nothing at now */
void anvil_table_expire(struct anvil_table *t, time_t now);
/* anvil_table_size - entries in the table */
size_t anvil_table_size(const struct anvil_table *t);

/* anvil_table_stats - the maxima since the last anvil_table_stats_reset */
const struct anvil_stats *anvil_table_stats(const struct anvil_table *t);
void anvil_table_stats_reset(struct anvil_table *t);
/* anvil_rate_name - "connection", "message", "recipient", "auth" */
const char *anvil_rate_name(enum anvil_rate what);

#endif
