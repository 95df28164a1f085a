/*
 * makemap - sendmail's makemap (see makemap.h): the pure line parser, the
 * standard-input source for table_build_from, -u and the option parsing.
 *
 * Options: -e (empty values), -f (keep case), -l (list types), -o (append),
 * -r (replace duplicates), -t delim, -D char, -u (dump), -v (print each
 * entry).  -N, -c size, -s, -C file and -d are accepted and do nothing:
 * LMDB keys never include the NUL, there is no cache to size, the file is
 * always replaced by rename, tern reads no sendmail.cf, and one key has one
 * value.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "makemap.h"
#include "table.h"

static const char *const makemap_types[] = {"hash", "btree", "dbm", "lmdb", NULL};

struct makemap_opts {
    struct makemap_syntax syn;
    int append, replace, dump, verbose;
    const char *type;
    const char *name;
};

/* the state of one build from standard input */
struct makemap_input {
    const struct makemap_opts *o;
    FILE *fp;
    size_t lineno;
    int status; /* EX_OK, or EX_DATAERR after a skipped line */
    buf_t line;
};

/* makemap_is_sep - c ends the key (and is skipped before the value) */
static int makemap_is_sep(const struct makemap_syntax *syn, int c)
{
    return syn->sep ? c == syn->sep : c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

enum makemap_line makemap_parse_line(const char *line, size_t len, const struct makemap_syntax *syn,
                                     buf_t *key, buf_t *value, buf_t *why)
{
    size_t k = 0, v;

    if (memchr(line, 0, len)) {
        buf_set(why, "NUL byte in line");
        return MAKEMAP_BAD;
    }
    while (len > 0 && isspace((unsigned char)line[len - 1]))
        len--; /* trailing white space and a CR are never part of the value */
    if (len == 0 || (syn->comment && line[0] == syn->comment))
        return MAKEMAP_SKIP;
    if (!syn->sep && isspace((unsigned char)line[0])) {
        buf_set(why, "syntax error (leading space)");
        return MAKEMAP_BAD;
    }
    while (k < len && !makemap_is_sep(syn, line[k]))
        k++;
    for (v = k; v < len && makemap_is_sep(syn, line[v]); v++)
        ;
    buf_reset(key);
    for (size_t i = 0; i < k; i++)
        buf_putc(key, syn->fold ? tolower((unsigned char)line[i]) : line[i]);
    buf_reset(value);
    buf_append(value, line + v, len - v);
    buf_reset(why);
    if (k == 0)
        buf_set(why, "empty key");
    else if (k > TABLE_KEY_MAX)
        buf_printf(why, "key longer than %d bytes", TABLE_KEY_MAX);
    else if (v == len && !syn->allow_empty)
        buf_printf(why, "no RHS for LHS %s", key->data);
    return why->len ? MAKEMAP_BAD : MAKEMAP_ENTRY;
}

/* makemap_read_line - one physical line into in->line: 1, 0 at the end,
 * -1 on a read error; a line longer than TABLE_LINE_MAX is cut there and
 * its rest discarded (2) */
static int makemap_read_line(struct makemap_input *in)
{
    int c, cut = 0;

    buf_reset(&in->line);
    while ((c = getc(in->fp)) != EOF && c != '\n') {
        if (in->line.len < TABLE_LINE_MAX)
            buf_putc(&in->line, c);
        else
            cut = 1;
    }
    if (ferror(in->fp))
        return -1;
    if (c == EOF && in->line.len == 0 && !cut)
        return 0;
    in->lineno++;
    return cut ? 2 : 1;
}

/* makemap_complain - "makemap: MAP: line N: what"; the exit status says so */
static void makemap_complain(struct makemap_input *in, const char *what)
{
    fprintf(stderr, "makemap: %s: line %zu: %s\n", in->o->name, in->lineno, what);
    in->status = EX_DATAERR;
}

/* makemap_next - the next good entry (table_build_source); bad lines are
 * reported and skipped */
static int makemap_next(void *ctx, buf_t *key, buf_t *value, buf_t *where, buf_t *err)
{
    struct makemap_input *in = ctx;
    buf_t why = BUF_INIT;
    int rc;

    while ((rc = makemap_read_line(in)) > 0) {
        if (rc == 2) {
            buf_printf(&why, "line too long (%d bytes max)", TABLE_LINE_MAX);
            makemap_complain(in, why.data);
            continue;
        }
        enum makemap_line r = makemap_parse_line(in->line.data ? in->line.data : "", in->line.len,
                                                 &in->o->syn, key, value, &why);
        if (r == MAKEMAP_BAD)
            makemap_complain(in, why.data);
        if (r != MAKEMAP_ENTRY)
            continue;
        buf_reset(where);
        buf_printf(where, "%s: line %zu", in->o->name, in->lineno);
        if (in->o->verbose)
            printf("key=`%s', val=`%s'\n", key->data, buf_cstr(value));
        break;
    }
    buf_free(&why);
    if (rc < 0)
        buf_printf(err, "standard input: read error after line %zu", in->lineno);
    return rc < 0 ? -1 : rc > 0;
}

/* makemap_duplicate - sendmail's message; the first value stays */
static void makemap_duplicate(void *ctx, const char *key, const char *where)
{
    struct makemap_input *in = ctx;

    fprintf(stderr, "makemap: %s: key %s: duplicate key\n", where, key);
    in->status = EX_DATAERR;
}

/* makemap_build - the map from standard input */
static int makemap_build(const struct makemap_opts *o)
{
    struct makemap_input in = {o, stdin, 0, EX_OK, BUF_INIT};
    struct table_build_request req = {o->type, o->name, o->syn.fold ? 0 : TABLE_CASE_SENSITIVE,
                                      o->replace, o->append};
    struct table_build_source src = {makemap_next, makemap_duplicate, &in, 0};
    buf_t err = BUF_INIT;
    struct stat st;
    enum table_build_status rc;

    if (fstat(fileno(stdin), &st) == 0 && S_ISREG(st.st_mode))
        src.size_hint = (size_t)st.st_size + 1;
    rc = table_build_from(&req, &src, NULL, &err);
    if (rc != TABLE_BUILD_OK)
        fprintf(stderr, "makemap: %s: %s\n", o->name, buf_cstr(&err));
    buf_free(&err);
    buf_free(&in.line);
    if (rc == TABLE_BUILD_CREATE)
        return EX_CANTCREAT;
    return rc == TABLE_BUILD_OK ? in.status : EX_IOERR;
}

/* makemap_print - one "key<sep>value" line of -u */
static int makemap_print(const char *key, const char *value, void *ctx)
{
    printf("%s%c%s\n", key, *(const int *)ctx, value);
    return 0;
}

/* makemap_dump - -u: every entry of the map */
static int makemap_dump(const struct makemap_opts *o)
{
    buf_t spec = BUF_INIT, err = BUF_INIT;
    struct table *t;
    int sep = o->syn.sep ? o->syn.sep : '\t', rc = EX_OK;

    buf_printf(&spec, "%s:%s", o->type, o->name);
    if ((t = table_open(spec.data, 0, &err)) == NULL) {
        fprintf(stderr, "makemap: %s\n", err.data);
        rc = EX_CANTCREAT;
    } else if (table_walk(t, makemap_print, &sep, &err) < 0) {
        fprintf(stderr, "makemap: %s: %s\n", o->name, err.data);
        rc = EX_IOERR;
    }
    if (t)
        table_close(t);
    buf_free(&spec);
    buf_free(&err);
    return fflush(stdout) == 0 || rc != EX_OK ? rc : EX_IOERR;
}

static int makemap_usage(void)
{
    fprintf(stderr, "Usage: makemap [-C cffile] [-N] [-c cachesize] [-D commentchar]\n"
                    "               [-d] [-e] [-f] [-l] [-o] [-r] [-s] [-t delimiter]\n"
                    "               [-u] [-v] type mapname\n");
    return EX_USAGE;
}

/* makemap_list_types - -l */
static int makemap_list_types(void)
{
    for (int i = 0; makemap_types[i]; i++)
        printf("%s\n", makemap_types[i]);
    return EX_OK;
}

/* makemap_option - one option letter into o; -1 bad usage, 1 done (-l) */
static int makemap_option(int c, const char *arg, struct makemap_opts *o)
{
    switch (c) {
    case 'C': /* sendmail.cf: tern reads none */
    case 'N': /* NUL-terminated keys: LMDB keys carry their length */
    case 'c': /* cache size */
    case 'd': /* duplicate keys in a btree: one key has one value */
    case 's': /* unsafe paths: the file is always replaced by rename */
        return 0;
    case 'D':
        o->syn.comment = (unsigned char)arg[0];
        return 0;
    case 'e':
        o->syn.allow_empty = 1;
        return 0;
    case 'f':
        o->syn.fold = 0;
        return 0;
    case 'l':
        return 1;
    case 'o':
        o->append = 1;
        return 0;
    case 'r':
        o->replace = 1;
        return 0;
    case 't':
        if (arg[0] == 0)
            fprintf(stderr, "Invalid separator\n");
        else
            o->syn.sep = (unsigned char)arg[0];
        return 0;
    case 'u':
        o->dump = 1;
        return 0;
    case 'v':
        o->verbose = 1;
        return 0;
    default:
        return -1;
    }
}

/* makemap_known_type - type is one makemap builds */
static int makemap_known_type(const char *type)
{
    for (int i = 0; makemap_types[i]; i++)
        if (strcmp(makemap_types[i], type) == 0)
            return 1;
    return 0;
}

int tern_makemap_main(int argc, char **argv)
{
    struct makemap_opts o = {{0, '#', 1, 0}, 0, 0, 0, 0, NULL, NULL};
    int c, rc;

    optind = 1;
    while ((c = getopt(argc, argv, "C:D:Nc:deflorst:uv")) != -1)
        if ((rc = makemap_option(c, optarg, &o)) != 0)
            return rc > 0 ? makemap_list_types() : makemap_usage();
    if (argc - optind != 2)
        return makemap_usage();
    o.type = argv[optind];
    o.name = argv[optind + 1];
    if (!makemap_known_type(o.type)) {
        fprintf(stderr,
                "makemap: error opening type %s map %s: unsupported map type "
                "(makemap -l lists the types)\n",
                o.type, o.name);
        return EX_CANTCREAT;
    }
    return o.dump ? makemap_dump(&o) : makemap_build(&o);
}
