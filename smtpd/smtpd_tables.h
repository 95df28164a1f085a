/*
 * smtpd_tables - remote tables (lib/table_proxy.h) on smtpd's event loop.
 *
 * Each session has one lookup scope; its answers are kept for the
 * transaction (smtpd_tables_transaction forgets them at MAIL).  VRFY and
 * EXPN outside a transaction forget theirs once answered
 * (smtpd_tables_forget), and a scope holding SMTPD_TABLES_MAX_ANSWERS is
 * emptied after an evaluation that is decided, so that a session cannot
 * grow it without bound.  Code that
 * looks tables up at a stage runs between smtpd_tables_enter and
 * smtpd_tables_leave; when leave returns 1 the evaluation's result is void
 * (a remote answer is not in yet): the caller says nothing to the client and
 * the waiter it named is run again once every answer is in:
 *   SMTPD_TABLES_POLICY  - the policy stage (smtpd_policy.c) is evaluated again
 *   SMTPD_TABLES_COMMAND - the command line being handled is dispatched again
 *                          (the session reads nothing meanwhile:
 *                          SESSION_TABLES_WAIT)
 *   SMTPD_TABLES_GREET   - the greet pause is decided again (the greeting is
 *                          held meanwhile)
 * A failed or timed-out answer is a temporary failure of the evaluation run
 * again (451 4.3.0), never "not found".  A session freed while waiting
 * cancels its wait (smtpd_tables_session_end).
 */
#ifndef TERN_SMTPD_SMTPD_TABLES_H
#define TERN_SMTPD_SMTPD_TABLES_H

struct session;

/* the answers a session's scope holds before it is emptied */
#define SMTPD_TABLES_MAX_ANSWERS 1000

enum smtpd_tables_waiter {
    SMTPD_TABLES_POLICY = 1,
    SMTPD_TABLES_COMMAND = 2,
    SMTPD_TABLES_GREET = 4,
};

/* smtpd_tables_enter - remote lookups from now on consult s's scope */
void smtpd_tables_enter(struct session *s);
/* smtpd_tables_leave - 1 when the evaluation since enter waits for an
 * answer (its result is void; waiter runs again when it is in), else 0 */
int smtpd_tables_leave(struct session *s, enum smtpd_tables_waiter waiter);
/* smtpd_tables_transaction - a new transaction (MAIL): forget the answers,
 * unless this MAIL is the one run again after its wait */
void smtpd_tables_transaction(struct session *s);
/* smtpd_tables_forget - a command outside a transaction (VRFY, EXPN) is
 * answered: forget the answers, unless a wait is out */
void smtpd_tables_forget(struct session *s);
/* smtpd_tables_session_end - cancel a wait and free the scope */
void smtpd_tables_session_end(struct session *s);

#endif
