/*
 * table - "type:name" lookup tables (see table.h): the type dispatch, table
 * lists, optional tables, and the lookup orders of DESIGN §6 for addresses,
 * domains and IP addresses.  The types live in table_lmdb.c (lmdb:, hash:,
 * btree:, dbm:), table_text.c (texthash:, inline:, static:), table_cidr.c,
 * table_regexp.c and table_unix.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "netaddr.h"
#include "table_impl.h"

/* what table_open does when an optional table's file is missing */
enum table_kind {
    TABLE_KIND_OTHER,  /* no file (inline:, static:, unix:) */
    TABLE_KIND_TEXT,   /* a text file read at open: missing = empty */
    TABLE_KIND_BUILT,  /* an LMDB file: the opener handles it */
    TABLE_KIND_REMOTE, /* ldap:, pgsql:, socketmap:: through tern-proxymap in a service */
};

struct table_type {
    const char *name; /* "lmdb" */
    enum table_kind kind;
    int (*open)(struct table *t, const char *name, buf_t *err);
};

/* The LDAP and PostgreSQL clients (libldap, libpq and what they pull in:
 * GnuTLS, Kerberos, ...) are linked only into the programs that call
 * table_remote_link() (tern-proxymap, the tern tool): elsewhere these
 * pointers are NULL and the tables go through tern-proxymap, so every
 * other program starts and stays small (docs/internals.md). */
#pragma weak table_open_ldap
#pragma weak table_open_pgsql

static const struct table_type table_types[] = {
    {"lmdb", TABLE_KIND_BUILT, table_open_lmdb},
    {"hash", TABLE_KIND_BUILT, table_open_lmdb},
    {"btree", TABLE_KIND_BUILT, table_open_lmdb},
    {"dbm", TABLE_KIND_BUILT, table_open_lmdb},
    {"texthash", TABLE_KIND_TEXT, table_open_texthash},
    {"inline", TABLE_KIND_OTHER, table_open_inline},
    {"static", TABLE_KIND_OTHER, table_open_static},
    {"cidr", TABLE_KIND_TEXT, table_open_cidr},
    {"regexp", TABLE_KIND_TEXT, table_open_regexp},
    {"unix", TABLE_KIND_OTHER, table_open_unix},
    {"ldap", TABLE_KIND_REMOTE, table_open_ldap},
    {"pgsql", TABLE_KIND_REMOTE, table_open_pgsql},
    {"socketmap", TABLE_KIND_REMOTE, table_open_socketmap},
    {"proxy", TABLE_KIND_OTHER, table_open_proxy},
    {NULL, TABLE_KIND_OTHER, NULL},
};

/* table_parse - the type of "[optional:]type:name", *name and *optional;
 * NULL for an unknown type */
static const struct table_type *table_parse(const char *spec, const char **name, int *optional)
{
    size_t n = strlen(TABLE_OPTIONAL_PREFIX);

    *optional = strncmp(spec, TABLE_OPTIONAL_PREFIX, n) == 0;
    if (*optional)
        spec += n;
    for (const struct table_type *tt = table_types; tt->name; tt++) {
        n = strlen(tt->name);
        if (strncmp(spec, tt->name, n) == 0 && spec[n] == ':') {
            *name = spec + n + 1;
            return tt;
        }
    }
    return NULL;
}

int table_spec_split(const char *spec, buf_t *type, const char **name, int *optional)
{
    const struct table_type *tt = table_parse(spec, name, optional);

    if (tt == NULL)
        return -1;
    buf_set(type, tt->name);
    return 0;
}

void table_warn_missing(const struct table *t, const char *path)
{
    static char **warned; /* every path warned about in this process */
    static size_t count;

    for (size_t i = 0; i < count; i++)
        if (strcmp(warned[i], path) == 0)
            return;
    warned = xrealloc(warned, (count + 1) * sizeof(char *));
    warned[count++] = xstrdup(path);
    log_warn("%s: %s does not exist; the optional table is empty", t->spec, path);
}

/* ---- the empty table that stands for a missing optional text file */

static enum table_result empty_lookup(struct table *t, const char *key, buf_t *value)
{
    return TABLE_NOTFOUND;
}

static int empty_walk(struct table *t, table_walk_fn fn, void *ctx, buf_t *err)
{
    return 0;
}

static void empty_close(struct table *t)
{
}

static const struct table_ops empty_ops = {"empty", 0, empty_lookup, empty_walk, empty_close, NULL};

/* table_open_missing - an optional text table whose file does not exist,
 * or remote one whose .cf file does not (ldap:/PATH, pgsql:/PATH; not
 * socketmap:inet:...), becomes empty: 1, else 0 (open it normally) */
static int table_open_missing(struct table *t, const struct table_type *tt, const char *name)
{
    struct stat st;
    int has_file = tt->kind == TABLE_KIND_TEXT || (tt->kind == TABLE_KIND_REMOTE && name[0] == '/');

    if (!(t->flags & TABLE_OPTIONAL) || !has_file || stat(name, &st) == 0 || errno != ENOENT)
        return 0;
    table_warn_missing(t, name);
    t->ops = &empty_ops;
    return 1;
}

struct table *table_open(const char *spec, int flags, buf_t *err)
{
    const char *name;
    int optional;
    const struct table_type *tt = table_parse(spec, &name, &optional);
    struct table *t;
    buf_t why = BUF_INIT;
    int rc = 0;

    if (tt == NULL) {
        buf_printf(
            err,
            "%s: unknown table type (known: lmdb, hash, btree, dbm, texthash, inline, "
            "static, cidr, regexp, unix, ldap, pgsql, socketmap, proxy; optional: before any "
            "of them)",
            spec);
        return NULL;
    }
    t = xcalloc(1, sizeof(*t));
    t->spec = xstrdup(spec);
    t->type = tt->name;
    t->flags = flags | (optional ? TABLE_OPTIONAL : 0);
    if (tt->kind == TABLE_KIND_REMOTE && tt->open == NULL) /* client not linked in */
        rc =
            table_open_proxy_remote(t, spec + (optional ? strlen(TABLE_OPTIONAL_PREFIX) : 0), &why);
    else if (tt->kind == TABLE_KIND_REMOTE && table_proxy_is_default())
        rc = table_open_proxy(t, spec + (optional ? strlen(TABLE_OPTIONAL_PREFIX) : 0), &why);
    else if (!table_open_missing(t, tt, name))
        rc = tt->open(t, name, &why);
    if (rc < 0) {
        buf_printf(err, "%s: %s", spec, buf_cstr(&why));
        buf_free(&why);
        free(t->spec);
        free(t);
        return NULL;
    }
    buf_free(&why);
    return t;
}

void table_close(struct table *t)
{
    if (t == NULL)
        return;
    t->ops->close(t);
    free(t->spec);
    free(t);
}

const char *table_name(const struct table *t)
{
    return t->spec;
}

int table_flags(const struct table *t)
{
    return t->flags;
}

static table_probe_fn table_probe;
static void *table_probe_ctx;

void table_set_probe(table_probe_fn fn, void *ctx)
{
    table_probe = fn;
    table_probe_ctx = ctx;
}

enum table_result table_lookup(struct table *t, const char *key, buf_t *value)
{
    enum table_result r = TABLE_NOTFOUND;

    if (*key != 0 && strlen(key) <= TABLE_KEY_MAX)
        r = t->ops->lookup(t, key, value);
    if (table_probe)
        table_probe(t->spec, key, r, r == TABLE_FOUND ? buf_cstr(value) : NULL, table_probe_ctx);
    return r;
}

int table_is_pattern(const struct table *t)
{
    return t->ops->pattern;
}

unsigned long table_generation(struct table *t)
{
    return t->ops->generation ? t->ops->generation(t) : 0;
}

int table_spec_known(const char *spec)
{
    const char *name;
    int optional;

    return table_parse(spec, &name, &optional) != NULL;
}

int table_walk(struct table *t, table_walk_fn fn, void *ctx, buf_t *err)
{
    if (t->ops->walk == NULL) {
        buf_printf(err, "%s: %s: tables cannot be listed", t->spec, t->ops->type);
        return -1;
    }
    return t->ops->walk(t, fn, ctx, err);
}

/* ---- lists */

int table_list_open(struct table_list *l, char *const *specs, size_t count, int flags, buf_t *err)
{
    l->v = xcalloc(count ? count : 1, sizeof(struct table *));
    l->count = 0;
    for (size_t i = 0; i < count; i++) {
        if ((l->v[i] = table_open(specs[i], flags, err)) == NULL) {
            table_list_close(l);
            return -1;
        }
        l->count++;
    }
    return 0;
}

void table_list_close(struct table_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        table_close(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->count = 0;
}

/* table_list_find - key in every table in order; pattern tables only
 * when the key is the full one */
static enum table_result table_list_find(struct table_list *l, const char *key, int full,
                                         buf_t *value)
{
    enum table_result r;

    for (size_t i = 0; i < l->count; i++) {
        if (!full && l->v[i]->ops->pattern)
            continue;
        if ((r = table_lookup(l->v[i], key, value)) != TABLE_NOTFOUND)
            return r;
    }
    return TABLE_NOTFOUND;
}

enum table_result table_list_lookup(struct table_list *l, const char *key, buf_t *value)
{
    return table_list_find(l, key, 1, value);
}

/* ---- lookup orders (DESIGN §6) */

static unsigned long table_epoch;

void table_refresh_next(void)
{
    if (++table_epoch == 0)
        table_epoch = 1;
}

unsigned long table_refresh_epoch(void)
{
    return table_epoch;
}

int table_text_clean(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c < ' ' && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

int table_ip_shorten(char *text, int sep)
{
    char *p = strrchr(text, sep);

    if (p == NULL)
        return 0;
    while (p > text && p[-1] == sep)
        p--;
    *p = 0;
    return p > text;
}

enum table_result table_lookup_ip(struct table_list *l, const struct sockaddr *sa, buf_t *value)
{
    char text[INET6_ADDRSTRLEN + 1];
    enum table_result r;
    int sep;

    netaddr_format(sa, text, sizeof(text));
    if (strcmp(text, "unknown") == 0)
        return TABLE_NOTFOUND;
    sep = strchr(text, ':') ? ':' : '.';
    r = table_list_find(l, text, 1, value);
    while (r == TABLE_NOTFOUND && table_ip_shorten(text, sep))
        r = table_list_find(l, text, 0, value);
    return r;
}
