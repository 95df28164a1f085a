/*
 * table - lookup tables named "type:name" (DESIGN §6).
 *
 * Types:
 *   lmdb:/path      reads /path.lmdb, built from the text file /path by
 *                   `tern map` (temp file + rename, so a rebuild is atomic);
 *                   an open table notices a rebuilt file (inode/mtime change)
 *                   at the next lookup and reopens it: no restart needed.
 *   texthash:/path  the text file itself, read into memory at open.
 *   inline:{k1=v1, k2=v2}   inline pairs.
 *   static:value    every key maps to value.
 *   cidr:/path      "network/prefix  value" lines, first match wins.
 *   regexp:/path    "/regex/flags  value" lines (POSIX ERE; flag i = case
 *                   insensitive), first match wins; $1..$9 substituted.
 *   unix:passwd.byname  key = login name (getpwnam, never folded), value =
 *                   the home directory (local_recipient_maps).
 * regexp:, cidr: and static: are "pattern" tables: the lookup helpers below
 * give them the full key only (never the shortened forms), like Postfix.
 *
 * Text format (sendmail's and Postfix's): "key<white space>value" lines,
 * '#' comment lines, a line starting with white space continues the previous
 * value.  For alias files (table_open with TABLE_ALIASES) the format is
 * "name: value" instead.  Keys are case-folded unless TABLE_CASE_SENSITIVE.
 * Duplicate keys: the first wins and a warning names file:line.
 *
 * Bounds: a physical line is at most TABLE_LINE_MAX bytes, a joined entry
 * at most TABLE_ENTRY_MAX, a key at most TABLE_KEY_MAX (LMDB's limit); a
 * longer key in a file is an error, a longer key at lookup is not found.
 *
 * lmdb files remember how they were built (alias syntax, case folding) in a
 * key that starts with a NUL byte, so lookups and dumps follow the build.
 *
 * Errors: table_open fails with a message naming the table (and file:line
 * for a syntax error); a lookup that cannot be answered (file vanished,
 * LMDB error) returns TABLE_TEMPFAIL — never a silent "not found".
 * Not thread-safe; one struct table per process and user.
 */
#ifndef TERN_TABLE_H
#define TERN_TABLE_H

#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"

#define TABLE_ALIASES 0x1        /* "name: value" syntax */
#define TABLE_CASE_SENSITIVE 0x2 /* do not fold keys */

#define TABLE_KEY_MAX 511             /* bytes in a key */
#define TABLE_LINE_MAX 65536          /* bytes in one physical line */
#define TABLE_ENTRY_MAX (1024 * 1024) /* bytes in a key + continued value */

enum table_result { TABLE_NOTFOUND = 0, TABLE_FOUND = 1, TABLE_TEMPFAIL = -1 };

struct table;

/* table_open - open "type:name"; NULL with err set on failure */
struct table *table_open(const char *spec, int flags, buf_t *err);
/* table_close - release */
void table_close(struct table *t);
/* table_name - the "type:name" it was opened with */
const char *table_name(const struct table *t);
/* table_flags - TABLE_* flags in effect (lmdb: as built) */
int table_flags(const struct table *t);
/* table_lookup - exact key; on TABLE_FOUND the value is copied into value
 * (value is left alone otherwise) */
enum table_result table_lookup(struct table *t, const char *key, buf_t *value);
/* table_is_pattern - 1 for regexp:, cidr:, static: (full keys only) */
int table_is_pattern(const struct table *t);
/* table_generation - changes when the table's contents may have changed
 * (lmdb: each reopen after a rebuild; other types never change) */
unsigned long table_generation(struct table *t);
/* table_spec_known - 1 when spec starts with a known "type:" */
int table_spec_known(const char *spec);
/* table_set_probe - every table_lookup from now on also calls fn with the
 * table's spec, the key and the result (value on TABLE_FOUND, else NULL);
 * NULL stops it.  For tern trace; a service never sets it. */
typedef void (*table_probe_fn)(const char *spec, const char *key, enum table_result res,
                               const char *value, void *ctx);
void table_set_probe(table_probe_fn fn, void *ctx);
/* table_walk - call fn(key, value, ctx) for every entry (lmdb: key order;
 * texthash, inline: file order) until fn returns non-zero; -1 with err when
 * the type cannot be listed (static, cidr, regexp, unix) or cannot be read */
typedef int (*table_walk_fn)(const char *key, const char *value, void *ctx);
int table_walk(struct table *t, table_walk_fn fn, void *ctx, buf_t *err);

/* a list of tables searched in order (e.g. alias_maps = a, b) */
struct table_list {
    struct table **v;
    size_t count;
};

/* table_list_open - open every spec; -1 with err naming the bad one */
int table_list_open(struct table_list *l, char *const *specs, size_t count, int flags, buf_t *err);
void table_list_close(struct table_list *l);
enum table_result table_list_lookup(struct table_list *l, const char *key, buf_t *value);

/* Lookup orders (DESIGN §6).  delimiter is recipient_delimiter ("" = none).
 * table_lookup_addr tries user+ext@domain, user@domain, user+ext, user,
 * @domain; matched_key (if non-NULL) receives the key that matched. */
enum table_result table_lookup_addr(struct table_list *l, const char *addr, const char *delimiter,
                                    buf_t *value, buf_t *matched_key);
/* table_lookup_domain - domain, then its parents as ".parent" when
 * parents is set (a.b.c: a.b.c, .b.c, .c) */
enum table_result table_lookup_domain(struct table_list *l, const char *domain, int parents,
                                      buf_t *value);
/* table_lookup_ip - 1.2.3.4, 1.2.3, 1.2, 1 (IPv6: full, then shorter
 * prefixes at ':' boundaries); cidr: tables match the address itself */
enum table_result table_lookup_ip(struct table_list *l, const struct sockaddr *sa, buf_t *value);

/* table_build - build path.lmdb from the text file path (tern map,
 * newaliases): temp + rename.  stats: entries, longest value, total bytes
 * (for "N aliases, longest L bytes, T bytes total").  -1 with err
 * ("file:line: ...") on failure; warnings (duplicates) go to the log. */
struct table_build_stats {
    size_t entries;
    size_t longest;
    size_t total;
};
int table_build(const char *path, int flags, struct table_build_stats *stats, buf_t *err);
/* table_build_flags - the flags path.lmdb was built with, -1 if unreadable */
int table_build_flags(const char *path);
/* table_text_delete - remove key's entry (its line and continuation lines;
 * comments stay) from the text file path by an atomic rewrite (temp file in
 * the same directory, same mode, fsync, rename).  1 deleted, 0 not found
 * (file unchanged), -1 with err.  Does not rebuild path.lmdb. */
int table_text_delete(const char *path, const char *key, int flags, buf_t *err);

#endif
