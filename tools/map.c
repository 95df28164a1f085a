/*
 * map - `tern map` (also run as postmap), and newaliases (see map.h).
 *
 *   tern map [-a] [-f] [TYPE:]FILE     build FILE's table file for TYPE
 *                                      (lmdb, hash, btree, dbm; default lmdb)
 *   tern map -A [[TYPE:]FILE]          build as aliases, print the summary
 *   tern map [-a] -q KEY [type:]FILE   print KEY's value
 *   tern map [-a] -s [type:]FILE       print every entry
 *   tern map [-a] -d KEY [TYPE:]FILE   delete KEY from FILE, then rebuild
 *   postmap [-f] [-q KEY | -s | -d KEY] [type:]FILE ...   (-c, -u, -v, -w,
 *                                      -o, -N, -n: accepted, no effect)
 *
 * Exit codes: 0 ok; 1 not found, bad usage or a build error (the message
 * names file:line); 75 (EX_TEMPFAIL) when a table cannot be read.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "map.h"
#include "table.h"

enum map_mode { MAP_BUILD, MAP_ALIASES, MAP_QUERY, MAP_DUMP, MAP_DELETE };

struct map_opts {
    enum map_mode mode;
    int flags;
    const char *key;
    char **targets; /* one for tern map; one or more for postmap */
    int ntargets;
};

static const char *map_prog = "tern map"; /* for messages: or "postmap" */

static void map_usage(FILE *fp)
{
    fprintf(fp, "usage: tern map [-a] [-f] [TYPE:]FILE     build FILE's table (FILE.lmdb, .db, "
                ".dir)\n"
                "       tern map -A [[TYPE:]FILE]          build an alias file and print a "
                "summary\n"
                "                                          (no FILE: every table in "
                "alias_database)\n"
                "       tern map [-a] -q KEY [type:]FILE   print the value of KEY\n"
                "       tern map [-a] -s [type:]FILE       print every entry\n"
                "       tern map [-a] -d KEY [TYPE:]FILE   delete KEY from FILE and rebuild\n"
                "  -a  alias syntax \"name: value\"   -f  keep the case of keys\n"
                "built types (TYPE): lmdb (default) -> FILE.lmdb, hash and btree -> FILE.db,\n"
                "                    dbm -> FILE.dir (and an empty FILE.pag)\n"
                "other types: texthash, inline, static, cidr, regexp, unix; optional:TYPE:...\n"
                "remote types (-q only): ldap:FILE.cf, pgsql:FILE.cf, socketmap:..., "
                "proxy:TYPE:NAME\n");
}

/* map_is_plain - a bare FILE, which means lmdb:FILE */
static int map_is_plain(const char *target)
{
    return strchr(target, ':') == NULL || target[0] == '/' || target[0] == '.';
}

/* map_target - the type and the text file of a build target; -1 after a
 * message when the type is not one that is built */
static int map_target(const char *target, buf_t *type, const char **file)
{
    buf_t path = BUF_INIT;
    int optional, ok;

    if (map_is_plain(target)) {
        buf_set(type, "lmdb");
        *file = target;
        return 0;
    }
    ok = table_spec_split(target, type, file, &optional) == 0 &&
         table_file_path(buf_cstr(type), *file, &path) == 0;
    buf_free(&path);
    if (!ok)
        fprintf(stderr, "%s: %s: only lmdb, hash, btree and dbm tables are built\n", map_prog,
                target);
    return ok ? 0 : -1;
}

/* map_spec_of - "type:FILE" for target; plain FILE means lmdb:FILE */
static void map_spec_of(const char *target, buf_t *spec)
{
    buf_reset(spec);
    if (map_is_plain(target))
        buf_puts(spec, "lmdb:");
    buf_puts(spec, target);
}

/* map_print_summary - sendmail's newaliases line */
static void map_print_summary(const char *file, const struct table_build_stats *st)
{
    printf("%s: %zu aliases, longest %zu bytes, %zu bytes total\n", file, st->entries, st->longest,
           st->total);
}

/* map_build - the table file of [TYPE:]FILE from FILE; summary printed for
 * alias builds */
static int map_build(const char *target, int flags, int summary)
{
    const char *file;
    struct table_build_stats st;
    buf_t err = BUF_INIT, type = BUF_INIT;
    int rc = 1;

    if (map_target(target, &type, &file) < 0)
        goto done;
    if (table_build(type.data, file, flags, &st, &err) < 0) {
        fprintf(stderr, "%s: %s\n", map_prog, buf_cstr(&err));
        goto done;
    }
    if (summary)
        map_print_summary(file, &st);
    rc = 0;
done:
    buf_free(&err);
    buf_free(&type);
    return rc;
}

/* map_open - the table named by target, or NULL after a message */
static struct table *map_open(const char *target, int flags)
{
    buf_t spec = BUF_INIT, err = BUF_INIT;
    struct table *t;

    map_spec_of(target, &spec);
    if ((t = table_open(spec.data, flags, &err)) == NULL)
        fprintf(stderr, "%s: %s\n", map_prog, buf_cstr(&err));
    buf_free(&spec);
    buf_free(&err);
    return t;
}

/* map_query_one - KEY in one table: 0 found (printed), 1 not, 75 */
static int map_query_one(const char *target, const struct map_opts *o)
{
    struct table *t = map_open(target, o->flags);
    buf_t value = BUF_INIT;
    enum table_result r;

    if (t == NULL)
        return EX_TEMPFAIL;
    r = table_lookup(t, o->key, &value);
    if (r == TABLE_FOUND)
        printf("%s\n", buf_cstr(&value));
    else if (r == TABLE_TEMPFAIL)
        fprintf(stderr, "%s: %s: cannot be read\n", map_prog, table_name(t));
    table_close(t);
    buf_free(&value);
    return r == TABLE_FOUND ? 0 : r == TABLE_NOTFOUND ? 1 : EX_TEMPFAIL;
}

/* map_query - the first table that has KEY answers */
static int map_query(const struct map_opts *o)
{
    int rc = 1;

    for (int i = 0; i < o->ntargets && rc != 0; i++) {
        int one = map_query_one(o->targets[i], o);
        if (one == 0 || rc == 1)
            rc = one;
    }
    return rc;
}

/* map_print_entry - one "key value" or "key: value" line */
static int map_print_entry(const char *key, const char *value, void *ctx)
{
    printf("%s%s %s\n", key, *(const int *)ctx & TABLE_ALIASES ? ":" : "", value);
    return 0;
}

/* map_listable - types whose entries can be listed (others: usage error) */
static int map_listable(const char *spec)
{
    static const char *const listable[] = {"lmdb",     "hash",   "btree", "dbm",
                                           "texthash", "inline", NULL};
    buf_t type = BUF_INIT;
    const char *name;
    int optional, found = 0;

    if (table_spec_split(spec, &type, &name, &optional) == 0)
        for (int i = 0; listable[i]; i++)
            found |= strcmp(listable[i], type.data) == 0;
    buf_free(&type);
    return found;
}

/* map_dump_one - every entry of one table */
static int map_dump_one(const char *target, const struct map_opts *o)
{
    struct table *t = map_open(target, o->flags);
    buf_t err = BUF_INIT;
    int flags, rc = 0;

    if (t == NULL)
        return EX_TEMPFAIL;
    flags = table_flags(t);
    if (table_walk(t, map_print_entry, &flags, &err) < 0) {
        fprintf(stderr, "%s: %s\n", map_prog, buf_cstr(&err));
        rc = map_listable(table_name(t)) ? EX_TEMPFAIL : 1;
    }
    table_close(t);
    buf_free(&err);
    return rc;
}

static int map_dump(const struct map_opts *o)
{
    int rc = 0;

    for (int i = 0; i < o->ntargets; i++) {
        int one = map_dump_one(o->targets[i], o);
        if (one != 0 && rc != EX_TEMPFAIL)
            rc = one;
    }
    return rc;
}

/* map_delete_one - remove the key from the text file, then rebuild */
static int map_delete_one(const char *target, const struct map_opts *o)
{
    const char *file;
    buf_t err = BUF_INIT, type = BUF_INIT;
    int flags = o->flags, built, rc;

    if (map_target(target, &type, &file) < 0) {
        buf_free(&type);
        return 1;
    }
    if ((built = table_build_flags(type.data, file)) >= 0)
        flags |= built; /* delete with the syntax the table was built with */
    rc = table_text_delete(file, o->key, flags, &err);
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", map_prog, buf_cstr(&err));
    if (rc > 0 && table_build(type.data, file, flags, NULL, &err) < 0) {
        fprintf(stderr, "%s: %s\n", map_prog, buf_cstr(&err));
        rc = -1;
    }
    buf_free(&err);
    buf_free(&type);
    return rc > 0 ? 0 : 1;
}

static int map_delete(const struct map_opts *o)
{
    int rc = 0;

    for (int i = 0; i < o->ntargets; i++)
        if (map_delete_one(o->targets[i], o) != 0)
            rc = 1;
    return rc;
}

/* map_newaliases_default - -A without FILE: load the config */
static int map_newaliases_default(const char *config_dir_arg)
{
    struct config *cfg;
    buf_t err = BUF_INIT;
    int rc;

    if (config_load(config_default_dir(config_dir_arg), &cfg, &err) < 0) {
        fprintf(stderr, "%s: %s\n", map_prog, buf_cstr(&err));
        buf_free(&err);
        return 1;
    }
    rc = tern_map_newaliases(cfg);
    config_free(cfg);
    return rc;
}

/* map_alias_database_entry - 1 when newaliases builds spec: an lmdb, hash,
 * btree or dbm table whose text file exists or is not optional */
static int map_alias_database_entry(const char *spec)
{
    buf_t type = BUF_INIT, path = BUF_INIT;
    const char *file;
    struct stat st;
    int optional, built;

    built = table_spec_split(spec, &type, &file, &optional) == 0 &&
            table_file_path(type.data, file, &path) == 0 &&
            !(optional && stat(file, &st) < 0 && errno == ENOENT);
    buf_free(&type);
    buf_free(&path);
    return built;
}

int tern_map_newaliases(const struct config *cfg)
{
    size_t n;
    char *const *specs = config_list(cfg, "alias_database", &n);
    int rc = 0;

    for (size_t i = 0; i < n; i++)
        if (map_alias_database_entry(specs[i]) && map_build(specs[i], TABLE_ALIASES, 1) != 0)
            rc = 1;
    return rc;
}

/* map_print_alias - one "key:value" line, as praliases prints it */
static int map_print_alias(const char *key, const char *value, void *ctx)
{
    printf("%s:%s\n", key, value);
    return 0;
}

int tern_map_praliases(const struct config *cfg, int argc, char **argv)
{
    size_t n;
    char *const *specs = config_list(cfg, "alias_maps", &n);
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        buf_t err = BUF_INIT, value = BUF_INIT;
        struct table *t = table_open(specs[i], TABLE_ALIASES, &err);
        if (t == NULL) {
            fprintf(stderr, "praliases: %s\n", buf_cstr(&err));
            rc = EX_TEMPFAIL;
        } else if (argc == 0) {
            if (table_walk(t, map_print_alias, NULL, &err) < 0) {
                fprintf(stderr, "praliases: %s\n", buf_cstr(&err));
                rc = EX_TEMPFAIL;
            }
            printf("@:@\n"); /* sendmail's end-of-database sentinel */
        } else {
            for (int k = 0; k < argc; k++) {
                buf_t key = BUF_INIT;
                for (const char *p = argv[k]; *p; p++)
                    buf_putc(&key, tolower((unsigned char)*p));
                if (table_lookup(t, buf_cstr(&key), &value) == TABLE_FOUND)
                    printf("%s:%s\n", buf_cstr(&key), buf_cstr(&value));
                buf_free(&key);
            }
        }
        if (t)
            table_close(t);
        buf_free(&err);
        buf_free(&value);
    }
    return rc;
}

/* map_parse - options into o; -1 on bad usage.  postmap takes its own
 * option letters and several tables. */
static int map_parse(int argc, char **argv, struct map_opts *o, int postmap)
{
    int c;

    memset(o, 0, sizeof(*o));
    optind = 1;
    while ((c = getopt(argc, argv, postmap ? "+c:fq:sd:uvwoNn" : "+aAfq:sd:h")) != -1) {
        switch (c) {
        case 'c': /* postmap's config directory: nothing here reads it */
        case 'u': /* postmap's "no UTF-8 checks": tern map makes none */
        case 'v':
        case 'w':
        case 'o':
        case 'N':
        case 'n':
            break;
        case 'a':
            o->flags |= TABLE_ALIASES;
            break;
        case 'A':
            o->mode = MAP_ALIASES;
            o->flags |= TABLE_ALIASES;
            break;
        case 'f':
            o->flags |= TABLE_CASE_SENSITIVE;
            break;
        case 'q':
            o->mode = MAP_QUERY;
            o->key = optarg;
            break;
        case 's':
            o->mode = MAP_DUMP;
            break;
        case 'd':
            o->mode = MAP_DELETE;
            o->key = optarg;
            break;
        default:
            return -1;
        }
    }
    o->targets = argv + optind;
    o->ntargets = argc - optind;
    if ((o->ntargets > 1 && !postmap) || (o->ntargets == 0 && o->mode != MAP_ALIASES))
        return -1;
    return 0;
}

/* map_run - the chosen mode */
static int map_run(const struct map_opts *o, const char *config_dir_arg)
{
    int rc = 0;

    switch (o->mode) {
    case MAP_QUERY:
        return map_query(o);
    case MAP_DUMP:
        return map_dump(o);
    case MAP_DELETE:
        return map_delete(o);
    case MAP_ALIASES:
        return o->ntargets ? map_build(o->targets[0], o->flags, 1)
                           : map_newaliases_default(config_dir_arg);
    default:
        for (int i = 0; i < o->ntargets; i++)
            if (map_build(o->targets[i], o->flags, 0) != 0)
                rc = 1;
        return rc;
    }
}

int tern_map_postmap(int argc, char **argv)
{
    struct map_opts o;

    map_prog = "postmap";
    if (map_parse(argc, argv, &o, 1) < 0) {
        fprintf(stderr, "usage: postmap [-f] [-c dir] [-q key | -s | -d key] [type:]file ...\n"
                        "  (a plain file means lmdb:file; -u -v -w -o -N -n have no effect)\n");
        return 1;
    }
    return map_run(&o, NULL);
}

int tern_map_main(int argc, char **argv, const char *config_dir_arg)
{
    struct map_opts o;

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        map_usage(stdout);
        return 0;
    }
    if (map_parse(argc, argv, &o, 0) < 0) {
        map_usage(stderr);
        return 1;
    }
    return map_run(&o, config_dir_arg);
}
