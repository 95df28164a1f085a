/*
 * table_impl - what the table types (lib/table_*.c) share; private to them.
 *
 * Each type fills struct table's ops and impl from its opener.  The text
 * reader joins continuation lines and splits "key value" / "name: value";
 * table_mem is the in-memory index behind texthash: and inline:.
 */
#ifndef TERN_TABLE_IMPL_H
#define TERN_TABLE_IMPL_H

#include <stdio.h>

#include "buf.h"
#include "table.h"

struct table_ops {
    const char *type;
    int pattern; /* matches whole keys only: no shortened lookup forms */
    enum table_result (*lookup)(struct table *t, const char *key, buf_t *value);
    int (*walk)(struct table *t, table_walk_fn fn, void *ctx, buf_t *err); /* NULL: unlistable */
    void (*close)(struct table *t);
    unsigned long (*generation)(struct table *t); /* NULL: contents never change */
};

struct table {
    const struct table_ops *ops;
    char *spec;
    const char *type; /* "hash": the type named in spec */
    int flags;
    void *impl;
};

/* table_warn_missing - the warning for an optional table whose file path
 * does not exist: logged once per path and process */
void table_warn_missing(const struct table *t, const char *path);

/* openers: name is the part after "type:"; -1 with err (without the spec).
 * table_open_lmdb serves lmdb, hash, btree and dbm (t->type tells which) and
 * handles TABLE_OPTIONAL itself; for the other file types table_open makes
 * a missing optional file an empty table before the opener is called. */
int table_open_lmdb(struct table *t, const char *name, buf_t *err);
int table_open_texthash(struct table *t, const char *name, buf_t *err);
int table_open_inline(struct table *t, const char *name, buf_t *err);
int table_open_static(struct table *t, const char *name, buf_t *err);
int table_open_cidr(struct table *t, const char *name, buf_t *err);
int table_open_regexp(struct table *t, const char *name, buf_t *err);
int table_open_unix(struct table *t, const char *name, buf_t *err);
/* the remote types, opened directly (tern-proxymap, tools): name is the .cf
 * path (ldap, pgsql) or "inet:host:port:map" / "unix:/path:map" (socketmap).
 * Each struct table is used by one thread at a time: tern-proxymap opens one
 * per pooled connection.  A lookup that cannot be answered (server down,
 * timeout, protocol error) is TABLE_TEMPFAIL with the reason logged. */
int table_open_ldap(struct table *t, const char *name, buf_t *err);
int table_open_pgsql(struct table *t, const char *name, buf_t *err);
/* table_pgsql_link - an empty anchor: table_remote_link (table_ldap.c) calls it
 * so that table_pgsql.c is linked wherever table_ldap.c is */
void table_pgsql_link(void);
int table_open_socketmap(struct table *t, const char *name, buf_t *err);
/* table_open_proxy - name is the inner "TYPE:NAME": through tern-proxymap
 * when table_proxy_default is on, else the inner table opened directly */
/* table_open_proxy_remote - proxy:NAME through tern-proxymap, also where the
 * proxy is not the default (table.c: a type whose client is not linked) */
int table_open_proxy_remote(struct table *t, const char *name, buf_t *err);
int table_open_proxy(struct table *t, const char *name, buf_t *err);
/* table_proxy_is_default - table_proxy_default's setting */
int table_proxy_is_default(void);

/* the logical-line reader */
struct table_text {
    FILE *fp;
    const char *path;
    size_t lineno;         /* physical lines read */
    buf_t pending;         /* a line read ahead, not yet returned */
    size_t pending_lineno; /* 0: none */
};

/* table_text_open - fopen path for reading; -1 with err */
int table_text_open(struct table_text *r, const char *path, buf_t *err);
/* table_text_close - release */
void table_text_close(struct table_text *r);
/* table_text_next - next entry, continuation lines joined by one space,
 * comments and blank lines skipped: 1 got one (*lineno = its first line),
 * 0 at end, -1 with err "path:line: ..." */
int table_text_next(struct table_text *r, buf_t *line, size_t *lineno, buf_t *err);
/* table_text_split - "key value" (or "name: value" with TABLE_ALIASES) into
 * key (folded unless TABLE_CASE_SENSITIVE) and value; -1 with err */
int table_text_split(const char *line, int flags, buf_t *key, buf_t *value, const char *where,
                     buf_t *err);
/* table_key_fold - key as looked up under flags: folded copy in tmp, or key */
const char *table_key_fold(const char *key, int flags, buf_t *tmp);
/* table_where - "path:line" for messages */
void table_where(buf_t *out, const char *path, size_t lineno);
/* table_dir_of - the directory that holds path ("." for a bare name) */
void table_dir_of(const char *path, buf_t *dir);
/* table_sync_dir_of - make a rename to path durable (fsync its directory) */
void table_sync_dir_of(const char *path);

/* table_mem - keys in insertion order with a hash index */
struct table_mem {
    char **keys;
    char **values;
    size_t count, cap;
    size_t *slots; /* index + 1; 0 = empty */
    size_t nslots;
};

/* table_mem_add - 0 added, 1 key already present (first wins) */
int table_mem_add(struct table_mem *m, const char *key, const char *value);
/* table_mem_find - the value or NULL */
const char *table_mem_find(const struct table_mem *m, const char *key);
void table_mem_free(struct table_mem *m);

#endif
