/*
 * table_cf_impl - what the typed views of lib/table_cf share: a table of
 * the settings a view knows (name, kind, where it goes, default), loaded
 * and freed by one piece of code.  Only lib/table_cf*.c include this.
 */
#ifndef TERN_TABLE_CF_IMPL_H
#define TERN_TABLE_CF_IMPL_H

#include <stddef.h>

#include "buf.h"
#include "table_cf.h"

enum table_cf_kind {
    TABLE_CF_STR,           /* char *, any text */
    TABLE_CF_EXPAND,        /* char *, %% %s %u %d %1-%9 checked */
    TABLE_CF_EXPAND_RESULT, /* char *, as EXPAND and %S %U %D */
    TABLE_CF_INT,           /* int in [min, max], decimal */
    TABLE_CF_WORD,          /* int, the index of the value in words */
    TABLE_CF_LIST,          /* struct table_cf_list */
    TABLE_CF_DOMAINS,       /* struct table_cf_list of names (no "type:table") */
    TABLE_CF_OWN,           /* known, parsed by the view itself */
    TABLE_CF_REFUSED,       /* known and refused: words says why */
};

struct table_cf_field {
    const char *name;
    enum table_cf_kind kind;
    size_t offset;       /* into the view */
    const char *initial; /* the default, parsed like a value; NULL = required */
    int min, max;        /* TABLE_CF_INT */
    const char *words;   /* TABLE_CF_WORD: "no yes"; TABLE_CF_REFUSED: why */
};

/* table_cf_fields_load - every entry of cf must name one of fields (else
 * "unknown setting" for type); each field gets its value or its default */
int table_cf_fields_load(void *view, const struct table_cf_field *fields, size_t nfields,
                         const struct table_cf *cf, const char *type, buf_t *err);
/* table_cf_fields_free - free (and wipe) what table_cf_fields_load set */
void table_cf_fields_free(void *view, const struct table_cf_field *fields, size_t nfields);
/* table_cf_where - "FILE:LINE" of key's entry, or "FILE" when it has none */
void table_cf_where(buf_t *out, const struct table_cf *cf, const char *key);
/* table_cf_refuse - "FILE[:LINE]: why" for key's line; returns -1 */
int table_cf_refuse(const struct table_cf *cf, const char *key, const char *why, buf_t *err);
/* table_cf_quote - append at most 64 bytes of value, non-printables as '?' */
void table_cf_quote(buf_t *out, const char *value);
/* table_cf_list_parse - append the items of s (split at commas and white
 * space) to list; -1 when that makes more than TABLE_CF_LIST_MAX */
int table_cf_list_parse(const char *s, struct table_cf_list *list);
void table_cf_list_free(struct table_cf_list *list);
/* table_cf_list_get - the items of key, fallback when it is absent or
 * empty; -1 with err set when there are too many */
int table_cf_list_get(const struct table_cf *cf, const char *key, const char *fallback,
                      struct table_cf_list *list, buf_t *err);
/* table_cf_port - parse a decimal TCP port 1..65535; 0 ok, -1 bad */
int table_cf_port(const char *s, size_t len, unsigned *port);
/* table_cf_host_ok - a host name or IPv4 address (letters, digits, '.',
 * '-', '_'), or with brackets allowed an IPv6 address (hex, ':', '.') */
int table_cf_host_ok(const char *s, size_t len, int v6);
/* table_cf_split_host_port - "host", "host:port", "[v6]", "[v6]:port";
 * *host is malloc'ed (brackets removed), *port left alone when absent */
int table_cf_split_host_port(const char *item, char **host, unsigned *port);

#endif
