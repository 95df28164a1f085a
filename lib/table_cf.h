/*
 * table_cf - the configuration files of the remote tables: ldap:/PATH.cf
 * and pgsql:/PATH.cf, written as Postfix writes them (ldap_table(5),
 * pgsql_table(5)), so a site's existing files work unchanged.
 *
 * Who calls it: the lookup service (tern-proxymap) when it opens a remote
 * table, `tern check` and `tern map -q`.  Everything here is pure (bytes in,
 * a parsed configuration out) except table_cf_read, which opens the file.
 * docs/remote-tables.md is the user's page for the settings below.
 *
 * File format (Postfix's main.cf syntax, without its $name expansion):
 *   - "key = value" lines; white space around '=' is optional, the value's
 *     leading and trailing white space is dropped, an empty value is allowed;
 *   - a line whose first non-blank byte is '#' is a comment, a blank line is
 *     skipped; '#' after a value is part of the value (as in Postfix);
 *   - a line that starts with white space continues the value before it
 *     (joined with one space), also across comment and blank lines;
 *   - '$' is literal: unlike main.cf, a .cf value never names a parameter.
 * Bounds: a physical line is at most TABLE_CF_LINE_MAX bytes, a joined value
 * at most TABLE_CF_VALUE_MAX, a file at most TABLE_CF_ENTRIES_MAX settings; a
 * NUL byte, a key that is not [A-Za-z0-9_]+, a line without '=', a key given
 * twice: all are errors naming FILE:LINE.
 *
 * Permissions (table_cf_check_mode): a file that holds a password (bind_pw
 * or password) must not be readable by others, and no .cf file may be
 * writable by others (it chooses where lookups go); the message names the
 * file and the chmod command that fixes it.  A value is never written into
 * a message, so a password cannot leak into a log; table_cf_free wipes the
 * values before it frees them.
 *
 * Typed views (table_ldap_cf_load, table_pgsql_cf_load): every setting the
 * man page documents is either parsed, or refused with "KEY is not
 * supported" and the reason: never ignored.  A key the man page does not know
 * is "unknown setting".  The defaults are Postfix's, except where marked
 * "tern:" below.  Expansions (%s %u %d %1-%9, %% and, in result_format only,
 * %S %U %D) are checked here; they are performed by the table code.
 *
 * Error convention: 0 ok, -1 with err set (one line, "FILE:LINE: ..." when
 * a line is to blame, "FILE: ..." otherwise).  Not thread-safe; no globals.
 */
#ifndef TERN_TABLE_CF_H
#define TERN_TABLE_CF_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

#define TABLE_CF_LINE_MAX 4096
#define TABLE_CF_VALUE_MAX 16384
#define TABLE_CF_ENTRIES_MAX 256
#define TABLE_CF_LIST_MAX 64 /* items in one list setting */

struct table_cf_entry {
    char *key;
    char *value;
    size_t line; /* where the key was written */
};

struct table_cf {
    char *path; /* as given, for messages */
    struct table_cf_entry *v;
    size_t count;
};

/* table_cf_parse - parse text[0..len) (the contents of path) into cf;
 * cf is initialised here, table_cf_free it even after an error */
int table_cf_parse(struct table_cf *cf, const char *path, const char *text, size_t len, buf_t *err);
/* table_cf_check_mode - the permission rule above for a file of this mode */
int table_cf_check_mode(const struct table_cf *cf, mode_t mode, buf_t *err);
/* table_cf_read - open path (a regular file), parse it, check its mode */
int table_cf_read(struct table_cf *cf, const char *path, buf_t *err);
/* table_cf_get - the entry for key, or NULL */
const struct table_cf_entry *table_cf_get(const struct table_cf *cf, const char *key);
/* table_cf_free - wipe and free everything cf holds */
void table_cf_free(struct table_cf *cf);

/* a list setting: items split at commas and white space, none empty */
struct table_cf_list {
    char **v;
    size_t count;
};

/* ---- ldap:/PATH.cf (ldap_table(5)) ---- */

enum table_ldap_scheme { TABLE_LDAP_LDAP, TABLE_LDAP_LDAPS, TABLE_LDAP_LDAPI };
enum table_ldap_scope { TABLE_LDAP_SCOPE_SUB, TABLE_LDAP_SCOPE_ONE, TABLE_LDAP_SCOPE_BASE };

struct table_ldap_server {
    enum table_ldap_scheme scheme;
    char *host;    /* host name or IPv6 address without brackets; ldapi: the
                      decoded socket path ("" = libldap's default socket) */
    unsigned port; /* 0 for ldapi */
    char *url;     /* normalised, for ldap_initialize: scheme://host:port/ */
};

struct table_ldap_servers {
    struct table_ldap_server *v;
    size_t count;
};

struct table_ldap_cf {
    /* server_host (default localhost): ldap://, ldaps://, ldapi:// URLs or
     * host[:port] ([v6addr]:port); tried in the order written (failover).
     * A bare host uses server_port; a URL without a port its scheme's
     * (389, 636).  Any path, DN or ?extension after the host is refused. */
    struct table_ldap_servers servers;
    unsigned server_port;                          /* default 389 */
    char *search_base;                             /* default "" (expansions as query_filter) */
    char *query_filter;                            /* default (mailacceptinggeneralid=%s) */
    char *result_format;                           /* default %s */
    struct table_cf_list result_attribute;         /* default maildrop */
    struct table_cf_list special_result_attribute; /* default none */
    struct table_cf_list leaf_result_attribute;    /* default none */
    enum table_ldap_scope scope;                   /* sub | one | base; default sub */
    int bind;                    /* yes (1, default) | no (0); sasl is refused: not supported yet */
    char *bind_dn;               /* default "" */
    char *bind_pw;               /* default ""; wiped by table_ldap_cf_free */
    int start_tls;               /* yes | no (default); needs version 3 and a ldap:// server */
    char *tls_ca_cert_file;      /* default "" (libldap's default CAs) */
    int tls_require_cert;        /* yes | no (default), as Postfix */
    int timeout;                 /* seconds, 1..3600, default 10 */
    int size_limit;              /* entries, 0 = no limit (default) */
    struct table_cf_list domain; /* default none = every key; names only,
                                    a table there is not supported yet */
    int dereference;             /* 0 never (default), 1 searching, 2 finding, 3 always */
    int version;                 /* 2 or 3; tern: default 3 (Postfix: 2) */
    int expansion_limit;         /* 0 = no limit (default) */
    int recursion_limit;         /* default 1000, at least 1 */
};

/* table_ldap_cf_load - the ldap view of cf (defaults filled in) */
int table_ldap_cf_load(struct table_ldap_cf *c, const struct table_cf *cf, buf_t *err);
void table_ldap_cf_free(struct table_ldap_cf *c);

/* ---- pgsql:/PATH.cf (pgsql_table(5)) ---- */

struct table_pgsql_host {
    int is_unix;   /* unix:/dir (libpq: the directory that holds the socket) */
    char *host;    /* host name, IPv6 address without brackets, or the dir */
    unsigned port; /* default 5432; 0 for unix: */
};

struct table_pgsql_hosts {
    struct table_pgsql_host *v;
    size_t count;
};

struct table_pgsql_cf {
    /* hosts (default localhost): host, host:port, [v6addr]:port,
     * inet:host[:port], unix:/dir.  Postfix tries them in random order;
     * tern: in the order written, like server_host (failover is then
     * predictable).  postgresql:// URIs are not supported yet. */
    struct table_pgsql_hosts hosts;
    char *dbname;                /* required */
    char *user;                  /* default "" (libpq's default) */
    char *password;              /* default ""; wiped by table_pgsql_cf_free */
    char *query;                 /* required (tern: the legacy select_field, table,
                                    where_field, additional_conditions are refused) */
    char *result_format;         /* default %s */
    struct table_cf_list domain; /* as ldap */
    int expansion_limit;         /* 0 = no limit (default) */
    int timeout;                 /* tern: connect and query timeout in
                                    seconds, 1..3600, default 10 */
    char *encoding;              /* default UTF8 (Postfix 3.8) */
};

/* table_pgsql_cf_load - the pgsql view of cf (defaults filled in) */
int table_pgsql_cf_load(struct table_pgsql_cf *c, const struct table_cf *cf, buf_t *err);
void table_pgsql_cf_free(struct table_pgsql_cf *c);

#endif
