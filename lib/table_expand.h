/*
 * table_expand - the %-expansion of a remote table's query and result
 * templates, exactly as Postfix's ldap_table(5) and pgsql_table(5) define
 * it (their query_filter / query / result_format / search_base), with the
 * escaping each backend needs, and their "domain" restriction.  Used by
 * the lookup service (issue 14's ldap: and pgsql: tables) before a query
 * is sent, so that no byte of a lookup key can change what is asked.
 *
 * Expansions, lower case from value, upper case from key:
 *     %%       a literal '%'
 *     %s       the whole value
 *     %u       the local part of value (before its last '@'), or the
 *              whole value when it has no '@'; an empty local part
 *              ("@example.com") skips the query
 *     %d       the domain part of value (after its last '@'); a value
 *              without '@' or with nothing after it skips the query
 *     %S %U %D the same taken from key
 *     %1..%9   the domain labels of key (of value in a query), counted
 *              from the right: for user@mail.example.com %1 is "com",
 *              %2 "example", %3 "mail"; a domain with fewer labels than
 *              the highest %N of the template skips the query
 * In a query template key is NULL and the upper-case forms act exactly
 * like the lower-case ones (both read the lookup key).  In a result
 * template value is the result from the directory and key the lookup key.
 * Any other character after '%', or a '%' at the end, is an error in the
 * template (table_expand_check refuses it when the table is opened).
 *
 * Every substituted piece goes through the escape callback (NULL: copied
 * as is), which appends to out and returns 0, or -1 when it refuses the
 * bytes (SQL: a NUL); literal template text is never escaped.
 *
 * Departures from Postfix, on purpose:
 *   - Postfix pools the %-needs of a table's query and result templates
 *     before deciding to skip a query; here each template's needs are its
 *     own, so a key the result template cannot use is skipped when the
 *     result is expanded (Postfix warns and drops it then too).
 *   - A domain with an empty label among the ones %1..%9 need (leading,
 *     doubled or trailing dot) skips the query; Postfix's label splitting
 *     ignores empty labels in some versions.
 *   - The domain list holds domain names (and "!name"); Postfix also
 *     accepts /file/name and type:table entries there.
 *   - Keys are not case-folded here: the table layer folds them.
 *
 * Pure functions: no allocation except into the caller's buf_t, no I/O.
 */
#ifndef TERN_TABLE_EXPAND_H
#define TERN_TABLE_EXPAND_H

#include <stddef.h>

#include "buf.h"

enum table_expand_status {
    TABLE_EXPAND_ERROR = -1, /* bad template, or the escape refused a piece */
    TABLE_EXPAND_SKIP = 0,   /* the key lacks what the template needs: do not query */
    TABLE_EXPAND_OK = 1      /* out holds the expansion */
};

/* an escape callback: append s[0..len) escaped to out; 0 ok, -1 refused */
typedef int (*table_expand_escape_fn)(buf_t *out, const char *s, size_t len);

/* table_expand_check - 0 when format's % sequences are all known, else -1
 * with *reason (static) */
int table_expand_check(const char *format, const char **reason);
/* table_expand - append the expansion of format to out (nothing is
 * appended unless TABLE_EXPAND_OK); *reason (static) says why on SKIP and
 * ERROR.  value is the lookup key (query) or the result (result template);
 * key is NULL (query) or the lookup key (result template).  An empty
 * value skips, as in Postfix. */
enum table_expand_status table_expand(const char *format, const char *value, const char *key,
                                      table_expand_escape_fn escape, buf_t *out,
                                      const char **reason);
/* table_expand_domain_allowed - Postfix's "domain" setting: 1 when key may
 * be looked up, 0 when the lookup is skipped.  With count 0 every key may;
 * otherwise only user@domain with a non-empty user whose domain (after the
 * last '@') equals, ignoring case, an entry of domains; the first entry
 * that matches decides, and one written "!name" refuses. */
int table_expand_domain_allowed(const char *const *domains, size_t count, const char *key);

/* table_expand_escape_ldap_filter - RFC 4515 value in a search filter:
 * '*' '(' ')' '\' NUL, control characters and every non-ASCII byte as \xx */
int table_expand_escape_ldap_filter(buf_t *out, const char *s, size_t len);
/* table_expand_escape_ldap_dn - RFC 4514 attribute value in a DN
 * (search_base): '"' '+' ',' ';' '<' '>' '=' '\' NUL, control characters,
 * non-ASCII bytes, a leading '#' or space and a trailing space as \xx */
int table_expand_escape_ldap_dn(buf_t *out, const char *s, size_t len);
/* table_expand_escape_sql_literal - the inside of a PostgreSQL '...'
 * literal with standard_conforming_strings on (the default since 9.1; the
 * connection must not turn it off, and the template must not use E'...'):
 * a quote is doubled, a backslash is an ordinary character; -1 on a NUL */
int table_expand_escape_sql_literal(buf_t *out, const char *s, size_t len);

#endif
