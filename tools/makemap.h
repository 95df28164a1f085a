/*
 * makemap - sendmail's makemap command line over tern's tables (the
 * sendmail binary runs it when argv[0] is "makemap"; docs/tables.md):
 *
 *   makemap [-C file] [-N] [-c size] [-D char] [-d] [-e] [-f] [-l] [-o] [-r]
 *           [-s] [-t delim] [-u] [-v] maptype mapname
 *
 * reads "key value" lines on standard input and builds maptype's file for
 * mapname (hash, btree -> mapname.db; dbm -> mapname.dir and .pag; lmdb ->
 * mapname.lmdb) with table_build_from, so the new file replaces the old one
 * atomically.  -u prints the map as "key<TAB>value" lines instead.
 *
 * The input syntax is sendmail's, not the text format of table.h: no
 * continuation lines (a line that starts with white space is an error),
 * comments only where the comment character starts the line.  A bad line
 * or a duplicate key is reported as "makemap: MAP: line N: ..." and
 * skipped; the map is still written and the exit status is EX_DATAERR.
 *
 * Exit codes (sysexits.h, as sendmail's makemap): 0 ok; 64 bad usage; 65 a
 * line was skipped or a key was a duplicate; 73 the map cannot be created
 * or opened (unknown type, missing directory, not an LMDB file); 74 a read
 * or write error.
 */
#ifndef TERN_TOOLS_MAKEMAP_H
#define TERN_TOOLS_MAKEMAP_H

#include "buf.h"

/* how an input line is split */
struct makemap_syntax {
    int sep;         /* key/value separator; 0: any white space */
    int comment;     /* a line starting with it is skipped; 0: none */
    int fold;        /* fold keys to lower case (not -f) */
    int allow_empty; /* an empty value is allowed (-e) */
};

enum makemap_line { MAKEMAP_SKIP, MAKEMAP_ENTRY, MAKEMAP_BAD };

/* makemap_parse_line - one input line (without its newline) into key and
 * value: MAKEMAP_ENTRY, MAKEMAP_SKIP for a blank or comment line, or
 * MAKEMAP_BAD with why ("no RHS for LHS x").  Pure: no I/O. */
enum makemap_line makemap_parse_line(const char *line, size_t len, const struct makemap_syntax *syn,
                                     buf_t *key, buf_t *value, buf_t *why);

/* tern_makemap_main - the command; returns the exit code */
int tern_makemap_main(int argc, char **argv);

#endif
