/*
 * map - `tern map` (also postmap) and newaliases: build, query, dump and
 * delete lookup tables (lib/table.h).  Called from tools/tern.c's dispatch
 * and from the sendmail-compatible front-ends (argv[0] postmap, newaliases,
 * praliases; makemap is tools/makemap.h).
 */
#ifndef TERN_TOOLS_MAP_H
#define TERN_TOOLS_MAP_H

struct config;

/* tern_map_main - `tern map ...`; argv[0] is "map"; returns the exit code:
 * 0 ok, 1 not found or error, 75 (EX_TEMPFAIL) table unreadable */
int tern_map_main(int argc, char **argv, const char *config_dir_arg);
/* tern_map_postmap - Postfix's postmap command line for the same work:
 * postmap [-f] [-q KEY | -s | -d KEY] [type:]FILE ...; tern map's exit codes */
int tern_map_postmap(int argc, char **argv);
/* tern_map_newaliases - build every lmdb:, hash:, btree: and dbm: table in
 * alias_database as an alias file (an optional: one whose text file is
 * missing is skipped) and print "FILE: N aliases, longest L bytes, T bytes
 * total" per file; returns the exit code (0, or 1 after any failure) */
int tern_map_newaliases(const struct config *cfg);
/* tern_map_praliases - print every alias of alias_maps as "key:value" (then
 * sendmail's "@:@" sentinel), or only the named ones; exit code */
int tern_map_praliases(const struct config *cfg, int argc, char **argv);

#endif
