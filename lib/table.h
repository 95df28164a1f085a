/*
 * table - lookup tables named "type:name" (DESIGN §6).
 *
 * Types:
 *   lmdb:/path      reads /path.lmdb, built from the text file /path by
 *                   `tern map` (temp file + rename, so a rebuild is atomic);
 *                   an open table notices a rebuilt file (inode/mtime change)
 *                   at the next lookup and reopens it: no restart needed.
 *   hash:/path, btree:/path, dbm:/path  the same LMDB tables under sendmail's
 *                   file names (/path.db, /path.db, /path.dir + an empty
 *                   /path.pag), built by makemap or `tern map TYPE:/path`;
 *                   table_file_path is the one place that names them.
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
 * LMDB error) returns TABLE_TEMPFAIL — never a silent "not found".  A file
 * that is not an LMDB file (a Berkeley DB left by sendmail) is named in the
 * message together with the command that rebuilds it.
 *
 * Optional tables ("optional:" before any spec, or TABLE_OPTIONAL; sendmail's
 * "-o"): a file that does not exist makes the table empty instead of an
 * error, and one warning per file and process names it.  The LMDB types look
 * again before every lookup, so a file that appears is used from then on and
 * one that disappears makes the table empty again.  Only a missing file
 * (ENOENT) is forgiven: an unreadable or foreign file is still an error.
 * Not thread-safe; one struct table per process and user.
 */
#ifndef TERN_TABLE_H
#define TERN_TABLE_H

#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"

#define TABLE_ALIASES 0x1        /* "name: value" syntax */
#define TABLE_CASE_SENSITIVE 0x2 /* do not fold keys */
#define TABLE_OPTIONAL 0x4       /* a missing file is an empty table */

#define TABLE_OPTIONAL_PREFIX "optional:"

#define TABLE_KEY_MAX 511             /* bytes in a key */
#define TABLE_LINE_MAX 65536          /* bytes in one physical line */
#define TABLE_ENTRY_MAX (1024 * 1024) /* bytes in a key + continued value */

enum table_result { TABLE_NOTFOUND = 0, TABLE_FOUND = 1, TABLE_TEMPFAIL = -1 };

struct table;

/* table_remote_link - link the LDAP and PostgreSQL clients into this
 * program, so that ldap: and pgsql: tables open directly where the proxy is
 * not the default (tern-proxymap, the tern tool).  Programs that do not call
 * it open them through tern-proxymap whatever table_proxy_default says. */
void table_remote_link(void);

/* table_open - open "[optional:]type:name"; NULL with err set on failure */
struct table *table_open(const char *spec, int flags, buf_t *err);
/* table_spec_split - "[optional:]type:name" into the type (without the
 * colon, copied into type), *name (pointing into spec) and *optional;
 * -1 when spec names no known type */
int table_spec_split(const char *spec, buf_t *type, const char **name, int *optional);
/* table_file_path - the file a built table of type keeps for name: lmdb ->
 * name.lmdb, hash and btree -> name.db, dbm -> name.dir; a name that
 * already ends so is the file itself (sendmail's "hash /x/map.db"); -1
 * (path untouched) for a type that is not built (texthash, cidr, ...) */
int table_file_path(const char *type, const char *name, buf_t *path);
/* table_close - release */
void table_close(struct table *t);
/* table_name - the spec it was opened with, "optional:" included */
const char *table_name(const struct table *t);
/* table_flags - TABLE_* flags in effect (lmdb types: as built) */
int table_flags(const struct table *t);
/* table_refresh_next - start a new refresh epoch.  By default an lmdb
 * table stat()s its file before every lookup to notice a rebuild; once a
 * process has called this (smtpd: at every new session and every MAIL), it
 * checks once per epoch instead -- a rebuilt map is used from the next
 * session or transaction on, without a stat() per key. */
void table_refresh_next(void);
/* table_refresh_epoch - the current epoch, 0 when the process never called
 * table_refresh_next (check before every lookup) */
unsigned long table_refresh_epoch(void);
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
/* table_walk - call fn(key, value, ctx) for every entry (lmdb types: key order;
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

/* Lookup orders of addresses and domains live with the code that needs
 * them (lib/route: transport_maps, canonical and virtual maps,
 * local_recipient_maps); they use table_lookup and table_is_pattern. */
/* table_lookup_ip - 1.2.3.4, 1.2.3, 1.2, 1 (IPv6: full, then shorter
 * prefixes at ':' boundaries); cidr: tables match the address itself */
enum table_result table_lookup_ip(struct table_list *l, const struct sockaddr *sa, buf_t *value);
/* table_ip_shorten - the next shorter key of that order: drop the last
 * sep ('.' or ':') field of text in place; 0 when nothing is left */
int table_ip_shorten(char *text, int sep);
/* table_text_clean - 1 when text has no NUL, CR, LF or other control byte
 * but TAB (a remote table's value that may reach an SMTP reply or a header) */
int table_text_clean(const char *text, size_t len);

/* Building (tern map, newaliases, makemap).  A build writes a temp file in
 * the directory of the type's file, fsyncs it and renames it into place, so
 * readers see the old table or the new one, never a half-built one.  The
 * new file's permission bits are those of the text file name when it
 * exists, else those of the file being replaced, else 0640 in a set-gid
 * directory (whose group the kernel gives it) and 0644 elsewhere; group and
 * world write bits are always dropped.  As root the owner follows the same
 * file (the group only outside a set-gid directory).  The file records the
 * flags it was built with (TABLE_ALIASES, TABLE_CASE_SENSITIVE). */
struct table_build_stats {
    size_t entries;
    size_t longest; /* longest value */
    size_t total;   /* bytes of keys and values */
};

/* where the entries come from: next() gives 1 with key (already folded as
 * wanted), value and where ("file:line", for messages) set, 0 at the end,
 * -1 with err to abandon the build.  duplicate(), when set, is told about
 * a key seen before instead of the default log warning. */
struct table_build_source {
    int (*next)(void *ctx, buf_t *key, buf_t *value, buf_t *where, buf_t *err);
    void (*duplicate)(void *ctx, const char *key, const char *where);
    void *ctx;
    size_t size_hint; /* bytes of input if known, else 0 */
};

struct table_build_request {
    const char *type; /* lmdb, hash, btree or dbm */
    const char *name; /* the base name (the text file, makemap's mapname) */
    int flags;        /* recorded in the file */
    int replace;      /* a duplicate key replaces the value (makemap -r) */
    int append;       /* keep the existing file's entries (makemap -o) */
};

enum table_build_status {
    TABLE_BUILD_OK = 0,
    TABLE_BUILD_INPUT = -1,  /* the source failed (err names file:line) */
    TABLE_BUILD_CREATE = -2, /* cannot create the file, or open the old one */
    TABLE_BUILD_WRITE = -3,  /* cannot write, sync or rename it */
};

/* table_build_from - build req's file from src; stats (may be NULL) for
 * "N aliases, longest L bytes, T bytes total" */
enum table_build_status table_build_from(const struct table_build_request *req,
                                         const struct table_build_source *src,
                                         struct table_build_stats *stats, buf_t *err);
/* table_build - build type's file for the text file path (the text format
 * above; a duplicate is warned about in the log); -1 with err ("file:line:
 * ...") on failure, and when path names the table file itself */
int table_build(const char *type, const char *path, int flags, struct table_build_stats *stats,
                buf_t *err);
/* table_build_flags - the flags type's file for path was built with, -1 if
 * unreadable */
int table_build_flags(const char *type, const char *path);
/* table_text_delete - remove key's entry (its line and continuation lines;
 * comments stay) from the text file path by an atomic rewrite (temp file in
 * the same directory, same mode, fsync, rename).  1 deleted, 0 not found
 * (file unchanged), -1 with err.  Does not rebuild path.lmdb. */
int table_text_delete(const char *path, const char *key, int flags, buf_t *err);

#endif
