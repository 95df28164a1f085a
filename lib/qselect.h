/*
 * qselect - sendmail's queue-run selectors, shared by the sendmail command
 * (which checks the -q argument) and qmgr (which applies it to a run).
 *
 * A selector is "" (every message) or an optional '!' (negation), a kind
 * R (a pending recipient), S (the sender) or I (the queue ID), and a
 * non-empty substring of at most QSELECT_MAX_NEEDLE bytes, matched without
 * regard to case.  qselect_q_arg sorts out what followed sendmail's -q:
 * an interval ("1h", "30m"), a foreground run with a selector, or garbage.
 * Pure functions: no I/O; strings are borrowed from the caller.
 */
#ifndef TERN_QSELECT_H
#define TERN_QSELECT_H

#include <stddef.h>

#define QSELECT_MAX_NEEDLE 1024
/* the refusal text for a malformed selector */
#define QSELECT_SYNTAX "bad selector: expected [!]R<substring>, [!]S<substring> or [!]I<substring>"

struct qselect {
    char kind;          /* 0 (all), 'R', 'S' or 'I' */
    int negate;         /* '!': messages that do not match */
    const char *needle; /* points into the parsed text; "" when kind is 0 */
};

/* what followed -q */
enum qselect_arg { QSELECT_RUN, QSELECT_INTERVAL, QSELECT_BAD };

/* qselect_parse - "" or [!]{R,S,I}substr into sel; 0 ok, -1 malformed */
int qselect_parse(const char *text, struct qselect *sel);
/* qselect_q_arg - classify the text after -q: QSELECT_INTERVAL sets
 * *seconds (> 0); QSELECT_RUN leaves the selector text (after an optional
 * leading 'f', sendmail's "foreground") in *selector */
enum qselect_arg qselect_q_arg(const char *arg, long long *seconds, const char **selector);
/* qselect_match - 1 when the message matches sel: its queue ID, sender and
 * the addresses of its pending recipients (count of them) */
int qselect_match(const struct qselect *sel, const char *id, const char *sender,
                  const char *const *rcpts, size_t count);

#endif
