/*
 * table_pgsql - the pgsql:/PATH.cf table type (Postfix's pgsql_table(5)),
 * opened directly by tern-proxymap and the tools (lib/table_proxy.h).
 *
 * A lookup folds the key (unless TABLE_CASE_SENSITIVE), checks the "domain"
 * list, expands "query" with every piece of the key escaped as the inside
 * of a '...' literal (table_expand_escape_sql_literal: the .cf author writes
 * the quotes, as for Postfix), and sends it on the kept connection.  Every
 * field of every row that is not NULL goes through result_format; the
 * results are joined with "," (as Postfix does); no result is "not found".
 *
 * Connections: made at the first lookup, kept.  The hosts are tried in the
 * order written, each bounded by connect_timeout = the .cf timeout; once up,
 * the connection gets statement_timeout (timeout * 1000 ms) and
 * standard_conforming_strings = on (the escaping relies on it).  A query is
 * sent asynchronously and waited for with poll, so a server that stops
 * answering costs at most timeout + 1 seconds.  A failed or timed-out query
 * drops the connection and is tried once more, from the next host on;
 * failing again it is TABLE_TEMPFAIL with one warning naming the table and
 * the reasons (libpq's messages; the password is never logged).
 *
 * Thread safety: no static mutable state; each struct table is used by one
 * thread at a time.
 */
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "table_cf.h"
#include "table_expand.h"
#include "table_impl.h"

#define PGSQL_MAX_PARAMS 10

struct pgsql_table {
    struct table_pgsql_cf cf;
    PGconn *conn;
    size_t host; /* the host conn is connected to */
    size_t next; /* the host to try first at the next connect */
};

/* pgsql_reason - append libpq's message (one line, no trailing newline) */
static void pgsql_reason(buf_t *why, const char *host, const char *msg)
{
    if (why->len > 0)
        buf_puts(why, "; ");
    buf_printf(why, "%s: ", host);
    for (const char *s = msg; *s; s++)
        if (*s != '\n' || s[1] != 0)
            buf_putc(why, *s == '\n' || *s == '\r' ? ' ' : *s);
}

/* pgsql_host_name - host as written, for messages */
static void pgsql_host_name(const struct table_pgsql_host *h, buf_t *out)
{
    buf_reset(out);
    if (h->is_unix)
        buf_printf(out, "unix:%s", h->host);
    else
        buf_printf(out, strchr(h->host, ':') ? "[%s]:%u" : "%s:%u", h->host, h->port);
}

/* pgsql_now_ms - the monotonic clock in milliseconds */
static long long pgsql_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* pgsql_wait_idle - wait until conn has a whole result to give: 0, or -1
 * with why (timeout, lost connection) */
static int pgsql_wait_idle(PGconn *conn, long long deadline, buf_t *why, const char *host)
{
    while (PQisBusy(conn)) {
        struct pollfd pfd = {PQsocket(conn), POLLIN, 0};
        long long left = deadline - pgsql_now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
            pgsql_reason(why, host, "no answer in time");
            return -1;
        }
        if (!PQconsumeInput(conn)) {
            pgsql_reason(why, host, PQerrorMessage(conn));
            return -1;
        }
    }
    return 0;
}

/* pgsql_exec - send sql, wait at most timeout + 1 s for its results: the
 * last result, or the first failed one; NULL with why when none came */
static PGresult *pgsql_exec(PGconn *conn, const char *sql, int timeout, buf_t *why,
                            const char *host)
{
    long long deadline = pgsql_now_ms() + (timeout + 1) * 1000LL;
    PGresult *keep = NULL, *r;

    if (!PQsendQuery(conn, sql)) {
        pgsql_reason(why, host, PQerrorMessage(conn));
        return NULL;
    }
    for (;;) {
        if (pgsql_wait_idle(conn, deadline, why, host) < 0) {
            PQclear(keep);
            return NULL;
        }
        if ((r = PQgetResult(conn)) == NULL)
            return keep;
        if (keep != NULL && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
            PQclear(r);
            continue;
        }
        PQclear(keep);
        keep = r;
    }
}

/* pgsql_ok - 1 when r is a successful result; else the reason into why */
static int pgsql_ok(PGresult *r, buf_t *why, const char *host)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return 1;
    if (r != NULL)
        pgsql_reason(why, host, PQresultErrorMessage(r));
    return 0;
}

/* pgsql_connect_one - connect to host h and prepare the session: the
 * connection, or NULL with why */
static PGconn *pgsql_connect_one(const struct table_pgsql_cf *c, const struct table_pgsql_host *h,
                                 buf_t *why, const char *name)
{
    const char *keys[PGSQL_MAX_PARAMS], *values[PGSQL_MAX_PARAMS];
    char port[16], timeout[16];
    int n = 0;
    PGconn *conn;
    PGresult *r;
    buf_t setup = BUF_INIT;

    snprintf(port, sizeof(port), "%u", h->port);
    snprintf(timeout, sizeof(timeout), "%d", c->timeout);
    keys[n] = "host", values[n++] = h->host;
    if (!h->is_unix)
        keys[n] = "port", values[n++] = port;
    keys[n] = "dbname", values[n++] = c->dbname;
    if (*c->user)
        keys[n] = "user", values[n++] = c->user;
    if (*c->password)
        keys[n] = "password", values[n++] = c->password;
    keys[n] = "connect_timeout", values[n++] = timeout;
    keys[n] = "client_encoding", values[n++] = c->encoding;
    keys[n] = "application_name", values[n++] = "tern";
    keys[n] = NULL, values[n] = NULL;
    conn = PQconnectdbParams(keys, values, 0);
    if (PQstatus(conn) != CONNECTION_OK) {
        pgsql_reason(why, name, PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    buf_printf(&setup, "SET statement_timeout = %lld; SET standard_conforming_strings = on",
               c->timeout * 1000LL);
    r = pgsql_exec(conn, setup.data, c->timeout, why, name);
    buf_free(&setup);
    if (!pgsql_ok(r, why, name)) {
        PQclear(r);
        PQfinish(conn);
        return NULL;
    }
    PQclear(r);
    return conn;
}

/* pgsql_connect - connect to the first host that answers, from p->next on
 * (wrapping around): 0, or -1 with every host's reason in why */
static int pgsql_connect(struct pgsql_table *p, buf_t *why)
{
    size_t count = p->cf.hosts.count;
    buf_t name = BUF_INIT;

    for (size_t i = 0; i < count && p->conn == NULL; i++) {
        size_t h = (p->next + i) % count;
        pgsql_host_name(&p->cf.hosts.v[h], &name);
        p->conn = pgsql_connect_one(&p->cf, &p->cf.hosts.v[h], why, name.data);
        p->host = h;
    }
    buf_free(&name);
    return p->conn ? 0 : -1;
}

/* pgsql_drop - close the connection; the next connect starts at the host
 * after the one that failed */
static void pgsql_drop(struct pgsql_table *p)
{
    PQfinish(p->conn);
    p->conn = NULL;
    p->next = (p->host + 1) % p->cf.hosts.count;
}

/* pgsql_query - run sql, once more from the next host when the connection
 * fails: the rows, or NULL with why.  A statement error on a good connection
 * (a key the server cannot take, e.g. invalid UTF-8) keeps the connection
 * and is not retried: a client must not be able to force reconnects. */
static PGresult *pgsql_query(struct pgsql_table *p, const char *sql, buf_t *why)
{
    buf_t name = BUF_INIT;
    PGresult *r = NULL;

    for (int attempt = 0; attempt < 2 && r == NULL; attempt++) {
        if (p->conn == NULL && pgsql_connect(p, why) < 0)
            break;
        pgsql_host_name(&p->cf.hosts.v[p->host], &name);
        r = pgsql_exec(p->conn, sql, p->cf.timeout, why, name.data);
        if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK)
            break;
        pgsql_ok(r, why, name.data);
        int statement_error = r != NULL && PQstatus(p->conn) == CONNECTION_OK;
        PQclear(r);
        r = NULL;
        if (statement_error)
            break;
        pgsql_drop(p);
    }
    buf_free(&name);
    return r;
}

/* pgsql_format - every non-NULL field of rows through result_format, joined
 * with ",", into value */
static enum table_result pgsql_format(struct table *t, PGresult *rows, const char *key,
                                      buf_t *value)
{
    struct pgsql_table *p = t->impl;
    buf_t out = BUF_INIT, one = BUF_INIT;
    int count = 0, nrows = PQntuples(rows), nfields = PQnfields(rows);
    enum table_result res = TABLE_FOUND;
    const char *reason;

    for (int r = 0; r < nrows && res == TABLE_FOUND; r++)
        for (int f = 0; f < nfields && res == TABLE_FOUND; f++) {
            buf_reset(&one);
            if (PQgetisnull(rows, r, f) ||
                table_expand(p->cf.result_format, PQgetvalue(rows, r, f), key, NULL, &one,
                             &reason) != TABLE_EXPAND_OK)
                continue;
            if (p->cf.expansion_limit > 0 && ++count > p->cf.expansion_limit) {
                log_warn("%s: lookup of %s: more than %d results (expansion_limit)", t->spec, key,
                         p->cf.expansion_limit);
                res = TABLE_TEMPFAIL;
            }
            if (out.len > 0)
                buf_puts(&out, ",");
            buf_append(&out, one.data, one.len);
        }
    if (res == TABLE_FOUND && out.len == 0)
        res = TABLE_NOTFOUND;
    if (res == TABLE_FOUND)
        buf_set(value, out.data);
    buf_free(&out);
    buf_free(&one);
    return res;
}

static enum table_result pgsql_lookup(struct table *t, const char *key, buf_t *value)
{
    struct pgsql_table *p = t->impl;
    buf_t folded = BUF_INIT, sql = BUF_INIT, why = BUF_INIT;
    const char *k = table_key_fold(key, t->flags, &folded), *reason = "";
    enum table_result res = TABLE_NOTFOUND;
    enum table_expand_status st = TABLE_EXPAND_SKIP;
    PGresult *rows;

    if (table_expand_domain_allowed((const char *const *)p->cf.domain.v, p->cf.domain.count, k))
        st = table_expand(p->cf.query, k, NULL, table_expand_escape_sql_literal, &sql, &reason);
    if (st == TABLE_EXPAND_ERROR) {
        log_warn("%s: lookup of %s: %s", t->spec, k, reason);
        res = TABLE_TEMPFAIL;
    } else if (st == TABLE_EXPAND_OK) {
        if ((rows = pgsql_query(p, sql.data, &why)) != NULL)
            res = pgsql_format(t, rows, k, value);
        else {
            log_warn("%s: lookup of %s failed: %s", t->spec, k, why.data);
            res = TABLE_TEMPFAIL;
        }
        PQclear(rows);
    }
    buf_free(&folded);
    buf_free(&sql);
    buf_free(&why);
    return res;
}

static void pgsql_close(struct table *t)
{
    struct pgsql_table *p = t->impl;

    if (p->conn != NULL)
        PQfinish(p->conn);
    table_pgsql_cf_free(&p->cf);
    free(p);
}

static const struct table_ops pgsql_ops = {"pgsql", 0, pgsql_lookup, NULL, pgsql_close, NULL};

int table_open_pgsql(struct table *t, const char *name, buf_t *err)
{
    struct table_cf cf;
    struct pgsql_table *p = xcalloc(1, sizeof(*p));
    int rc = table_cf_read(&cf, name, err);

    if (rc == 0)
        rc = table_pgsql_cf_load(&p->cf, &cf, err);
    table_cf_free(&cf);
    if (rc < 0) { /* table_pgsql_cf_load has freed what it made */
        free(p);
        return -1;
    }
    t->impl = p;
    t->ops = &pgsql_ops;
    return 0;
}

/* table_pgsql_link - referenced by table_remote_link (table_ldap.c) so that
 * a program that links the LDAP client links this one too */
void table_pgsql_link(void)
{
}
