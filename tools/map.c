/*
 * map - `tern map`, tern's postmap/makemap, and newaliases (see map.h).
 *
 *   tern map [-a] [-f] FILE           build FILE.lmdb from the text FILE
 *   tern map -A [FILE]                build as aliases, print the summary
 *   tern map [-a] -q KEY [type:]FILE  print KEY's value
 *   tern map [-a] -s [type:]FILE      print every entry
 *   tern map [-a] -d KEY FILE         delete KEY from FILE, then rebuild
 *
 * Exit codes: 0 ok; 1 not found, bad usage or a build error (the message
 * names file:line); 75 (EX_TEMPFAIL) when a table cannot be read.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
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
    const char *target;
};

static void map_usage(FILE *fp)
{
    fprintf(fp, "usage: tern map [-a] [-f] FILE            build FILE.lmdb from FILE\n"
                "       tern map -A [FILE]                 build an alias file and print a "
                "summary\n"
                "                                          (no FILE: every lmdb: table in "
                "alias_database)\n"
                "       tern map [-a] -q KEY [type:]FILE   print the value of KEY\n"
                "       tern map [-a] -s [type:]FILE       print every entry\n"
                "       tern map [-a] -d KEY FILE          delete KEY from FILE and rebuild\n"
                "  -a  alias syntax \"name: value\"   -f  keep the case of keys\n"
                "types: lmdb (default), texthash, inline, static, cidr, regexp, unix\n");
}

/* map_file_of - the text file of "lmdb:FILE" or "FILE"; NULL for another type */
static const char *map_file_of(const char *target)
{
    if (strncmp(target, "lmdb:", 5) == 0)
        return target + 5;
    if (strchr(target, ':') == NULL || target[0] == '/' || target[0] == '.')
        return target;
    return NULL;
}

/* map_spec_of - "type:FILE" for target; plain FILE means lmdb:FILE */
static void map_spec_of(const char *target, buf_t *spec)
{
    buf_reset(spec);
    if (strchr(target, ':') == NULL || target[0] == '/' || target[0] == '.')
        buf_puts(spec, "lmdb:");
    buf_puts(spec, target);
}

/* map_print_summary - sendmail's newaliases line */
static void map_print_summary(const char *file, const struct table_build_stats *st)
{
    printf("%s: %zu aliases, longest %zu bytes, %zu bytes total\n", file, st->entries, st->longest,
           st->total);
}

/* map_build - FILE.lmdb from FILE; summary printed for alias builds */
static int map_build(const char *target, int flags, int summary)
{
    const char *file = map_file_of(target);
    struct table_build_stats st;
    buf_t err = BUF_INIT;

    if (file == NULL) {
        fprintf(stderr, "tern map: %s: only lmdb: tables are built\n", target);
        return 1;
    }
    if (table_build(file, flags, &st, &err) < 0) {
        fprintf(stderr, "tern map: %s\n", buf_cstr(&err));
        buf_free(&err);
        return 1;
    }
    if (summary)
        map_print_summary(file, &st);
    return 0;
}

/* map_open - the table named by target, or NULL after a message */
static struct table *map_open(const char *target, int flags)
{
    buf_t spec = BUF_INIT, err = BUF_INIT;
    struct table *t;

    map_spec_of(target, &spec);
    if ((t = table_open(spec.data, flags, &err)) == NULL)
        fprintf(stderr, "tern map: %s\n", buf_cstr(&err));
    buf_free(&spec);
    buf_free(&err);
    return t;
}

static int map_query(const struct map_opts *o)
{
    struct table *t = map_open(o->target, o->flags);
    buf_t value = BUF_INIT;
    enum table_result r;

    if (t == NULL)
        return EX_TEMPFAIL;
    r = table_lookup(t, o->key, &value);
    if (r == TABLE_FOUND)
        printf("%s\n", buf_cstr(&value));
    else if (r == TABLE_TEMPFAIL)
        fprintf(stderr, "tern map: %s: cannot be read\n", table_name(t));
    table_close(t);
    buf_free(&value);
    return r == TABLE_FOUND ? 0 : r == TABLE_NOTFOUND ? 1 : EX_TEMPFAIL;
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
    return strncmp(spec, "lmdb:", 5) == 0 || strncmp(spec, "texthash:", 9) == 0 ||
           strncmp(spec, "inline:", 7) == 0;
}

static int map_dump(const struct map_opts *o)
{
    struct table *t = map_open(o->target, o->flags);
    buf_t err = BUF_INIT;
    int flags, rc = 0;

    if (t == NULL)
        return EX_TEMPFAIL;
    flags = table_flags(t);
    if (table_walk(t, map_print_entry, &flags, &err) < 0) {
        fprintf(stderr, "tern map: %s\n", buf_cstr(&err));
        rc = map_listable(table_name(t)) ? EX_TEMPFAIL : 1;
    }
    table_close(t);
    buf_free(&err);
    return rc;
}

/* map_delete - remove the key from the text file, then rebuild */
static int map_delete(const struct map_opts *o)
{
    const char *file = map_file_of(o->target);
    buf_t err = BUF_INIT;
    int flags = o->flags, built = file ? table_build_flags(file) : -1, rc;

    if (file == NULL) {
        fprintf(stderr, "tern map: %s: -d works on lmdb: tables only\n", o->target);
        return 1;
    }
    if (built >= 0)
        flags |= built; /* delete with the syntax the table was built with */
    rc = table_text_delete(file, o->key, flags, &err);
    if (rc < 0)
        fprintf(stderr, "tern map: %s\n", buf_cstr(&err));
    buf_free(&err);
    if (rc <= 0)
        return 1;
    return map_build(file, flags, 0);
}

/* map_newaliases_default - -A without FILE: load the config */
static int map_newaliases_default(const char *config_dir_arg)
{
    struct config *cfg;
    buf_t err = BUF_INIT;
    int rc;

    if (config_load(config_default_dir(config_dir_arg), &cfg, &err) < 0) {
        fprintf(stderr, "tern map: %s\n", buf_cstr(&err));
        buf_free(&err);
        return 1;
    }
    rc = tern_map_newaliases(cfg);
    config_free(cfg);
    return rc;
}

int tern_map_newaliases(const struct config *cfg)
{
    size_t n;
    char *const *specs = config_list(cfg, "alias_database", &n);
    int rc = 0;

    for (size_t i = 0; i < n; i++)
        if (strncmp(specs[i], "lmdb:", 5) == 0 && map_build(specs[i], TABLE_ALIASES, 1) != 0)
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

/* map_parse - options into o; -1 on bad usage */
static int map_parse(int argc, char **argv, struct map_opts *o)
{
    int c;

    memset(o, 0, sizeof(*o));
    optind = 1;
    while ((c = getopt(argc, argv, "+aAfq:sd:h")) != -1) {
        switch (c) {
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
    if (argc - optind > 1 || (argc - optind == 0 && o->mode != MAP_ALIASES))
        return -1;
    o->target = optind < argc ? argv[optind] : NULL;
    return 0;
}

int tern_map_main(int argc, char **argv, const char *config_dir_arg)
{
    struct map_opts o;

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        map_usage(stdout);
        return 0;
    }
    if (map_parse(argc, argv, &o) < 0) {
        map_usage(stderr);
        return 1;
    }
    switch (o.mode) {
    case MAP_QUERY:
        return map_query(&o);
    case MAP_DUMP:
        return map_dump(&o);
    case MAP_DELETE:
        return map_delete(&o);
    case MAP_ALIASES:
        return o.target ? map_build(o.target, o.flags, 1) : map_newaliases_default(config_dir_arg);
    default:
        return map_build(o.target, o.flags, 0);
    }
}
