/*
 * smtpd_tables - remote tables on smtpd's event loop (smtpd_tables.h).
 */
#include <stdlib.h>

#include "buf.h"
#include "greet.h"
#include "log.h"
#include "session.h"
#include "smtpd.h"
#include "smtpd_policy.h"
#include "smtpd_tables.h"
#include "table_proxy.h"

/* a session's part (s->tables) */
struct smtpd_tables {
    struct table_proxy_scope *scope;
    unsigned waiters; /* enum smtpd_tables_waiter bits to run again */
    buf_t line;       /* SMTPD_TABLES_COMMAND: the command line */
    int rerun;        /* the command runs again after its wait */
    int answering;    /* the waiters run again: their answers are needed */
};

/* smtpd_tables_of - the session's part, made at first use */
static struct smtpd_tables *smtpd_tables_of(struct session *s)
{
    if (s->tables == NULL) {
        s->tables = xcalloc(1, sizeof(*s->tables));
        s->tables->scope = table_proxy_scope_new();
    }
    return s->tables;
}

void smtpd_tables_enter(struct session *s)
{
    table_proxy_scope_enter(smtpd_tables_of(s)->scope);
}

/* smtpd_tables_command_again - the command's answers are in: run it again */
static void smtpd_tables_command_again(struct session *s)
{
    struct smtpd_tables *t = s->tables;
    buf_t line = BUF_INIT;

    if (s->state != SESSION_TABLES_WAIT) /* closing meanwhile */
        return;
    s->state = SESSION_CMD;
    buf_append(&line, t->line.data, t->line.len);
    t->rerun = 1;
    session_command_run(s, buf_cstr(&line), line.len);
    t->rerun = 0;
    buf_wipe(&line);
    buf_free(&line);
    if (s->state == SESSION_CMD || s->state == SESSION_AUTH)
        session_resume_input(s);
}

/* smtpd_tables_on_answers - the scope's wait is over: run the waiters
 * again (each may start a new wait) */
static void smtpd_tables_on_answers(void *ctx)
{
    struct session *s = ctx;
    unsigned waiters = s->tables->waiters;

    s->tables->waiters = 0;
    s->tables->answering = 1;
    if (waiters & SMTPD_TABLES_GREET) {
        smtpd_greet_start(s);
        session_greet_release(s);
    }
    if (waiters & SMTPD_TABLES_POLICY)
        smtpd_policy_tables_answered(s);
    s->tables->answering = 0; /* the last waiter: nothing after it needs the answers */
    if (waiters & SMTPD_TABLES_COMMAND)
        smtpd_tables_command_again(s);
}

/* smtpd_tables_park - what the waiter does until the answers are in */
static void smtpd_tables_park(struct session *s, enum smtpd_tables_waiter waiter)
{
    struct smtpd_tables *t = s->tables;

    if (waiter == SMTPD_TABLES_GREET) {
        session_greet_hold(s);
    } else if (waiter == SMTPD_TABLES_COMMAND) {
        buf_reset(&t->line);
        buf_append(&t->line, s->line.data, s->line.len);
        s->state = SESSION_TABLES_WAIT;
        session_pause_input(s);
    }
}

/* smtpd_tables_trim - a decided evaluation: empty a full scope, unless a
 * wait is out or other waiters run again with its answers */
static void smtpd_tables_trim(struct session *s)
{
    struct smtpd_tables *t = s->tables;

    if (!t->answering && !table_proxy_scope_waiting(t->scope) &&
        table_proxy_scope_size(t->scope) >= SMTPD_TABLES_MAX_ANSWERS)
        table_proxy_scope_reset(t->scope);
}

int smtpd_tables_leave(struct session *s, enum smtpd_tables_waiter waiter)
{
    struct smtpd_tables *t = s->tables;

    table_proxy_scope_leave();
    if (!table_proxy_scope_pending(t->scope) || s->state == SESSION_CLOSING) {
        smtpd_tables_trim(s);
        return 0;
    }
    if (!table_proxy_scope_waiting(t->scope) &&
        table_proxy_scope_wait(t->scope, s->server->svc.base, smtpd_tables_on_answers, s) < 0) {
        log_warn("%s: cannot ask tern-proxymap; the lookup fails", s->client);
        return 0; /* the evaluation's temporary failure stands */
    }
    t->waiters |= (unsigned)waiter;
    smtpd_tables_park(s, waiter);
    return 1;
}

void smtpd_tables_transaction(struct session *s)
{
    if (s->tables != NULL && !s->tables->rerun)
        table_proxy_scope_reset(s->tables->scope);
}

void smtpd_tables_forget(struct session *s)
{
    if (s->tables != NULL && !s->have_mail && !table_proxy_scope_waiting(s->tables->scope))
        table_proxy_scope_reset(s->tables->scope);
}

void smtpd_tables_session_end(struct session *s)
{
    if (s->tables == NULL)
        return;
    table_proxy_scope_free(s->tables->scope);
    buf_wipe(&s->tables->line);
    buf_free(&s->tables->line);
    free(s->tables);
    s->tables = NULL;
}
