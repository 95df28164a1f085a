/*
 * table_regexp - regexp:/path tables: "/regex/flags  value" lines, POSIX
 * extended regular expressions (regcomp), searched in file order, first
 * match wins.  Flag i: ignore case.  "\/" is a literal slash.  In the value,
 * $1..$9 (or ${1}..${9}) are replaced by the matched groups, $$ by "$".
 */
#include <ctype.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "table_impl.h"

#define REGEXP_GROUPS 10

struct regexp_entry {
    regex_t re;
    char *value;
};

struct table_regexp {
    struct regexp_entry *v;
    size_t count, cap;
};

/* regexp_group - the group number at s ("1" or "{1}"); *len consumed */
static int regexp_group(const char *s, size_t *len)
{
    if (isdigit((unsigned char)s[0]) && s[0] != '0') {
        *len = 1;
        return s[0] - '0';
    }
    if (s[0] == '{' && isdigit((unsigned char)s[1]) && s[1] != '0' && s[2] == '}') {
        *len = 3;
        return s[1] - '0';
    }
    return -1;
}

/* regexp_expand - value with $N replaced by the groups of key */
static void regexp_expand(const char *value, const char *key, const regmatch_t *m, buf_t *out)
{
    size_t len;
    int g;

    buf_reset(out);
    for (const char *p = value; *p && out->len < TABLE_ENTRY_MAX; p++) {
        if (*p != '$') {
            buf_putc(out, *p);
        } else if (p[1] == '$') {
            buf_putc(out, '$');
            p++;
        } else if ((g = regexp_group(p + 1, &len)) > 0) {
            if (m[g].rm_so >= 0)
                buf_append(out, key + m[g].rm_so, (size_t)(m[g].rm_eo - m[g].rm_so));
            p += len;
        } else {
            buf_putc(out, '$');
        }
    }
}

static enum table_result regexp_lookup(struct table *t, const char *key, buf_t *value)
{
    struct table_regexp *x = t->impl;
    regmatch_t m[REGEXP_GROUPS];

    for (size_t i = 0; i < x->count; i++) {
        if (regexec(&x->v[i].re, key, REGEXP_GROUPS, m, 0) == 0) {
            regexp_expand(x->v[i].value, key, m, value);
            return TABLE_FOUND;
        }
    }
    return TABLE_NOTFOUND;
}

static void regexp_free(struct table_regexp *x)
{
    for (size_t i = 0; i < x->count; i++) {
        regfree(&x->v[i].re);
        free(x->v[i].value);
    }
    free(x->v);
    free(x);
}

static void regexp_close(struct table *t)
{
    regexp_free(t->impl);
}

static const struct table_ops regexp_ops = {"regexp", 1, regexp_lookup, NULL, regexp_close, NULL};

/* regexp_pattern - the text between the slashes into re; end after it */
static const char *regexp_pattern(const char *line, buf_t *re, const char *where, buf_t *err)
{
    const char *p = line + 1;

    if (line[0] != '/') {
        buf_printf(err, "%s: expected \"/regex/flags value\"", where);
        return NULL;
    }
    for (; *p && *p != '/'; p++) {
        if (p[0] == '\\' && p[1] == '/')
            p++;
        else if (p[0] == '\\' && p[1])
            buf_putc(re, *p++);
        buf_putc(re, *p);
    }
    if (*p != '/') {
        buf_printf(err, "%s: no closing / after the regular expression", where);
        return NULL;
    }
    return p + 1;
}

/* regexp_flags - the flag letters at *p into regcomp flags; -1 on a bad one */
static int regexp_flags(const char **p, const char *where, buf_t *err)
{
    int cflags = REG_EXTENDED;

    for (; **p && !isspace((unsigned char)**p); (*p)++) {
        if (**p != 'i') {
            buf_printf(err, "%s: unknown regexp flag '%c' (known: i)", where, **p);
            return -1;
        }
        cflags |= REG_ICASE;
    }
    return cflags;
}

/* regexp_compile - compile re into the next entry with value */
static int regexp_compile(struct table_regexp *x, const char *re, int cflags, const char *value,
                          const char *where, buf_t *err)
{
    char msg[256];
    int rc;

    if (x->count == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 16;
        x->v = xrealloc(x->v, x->cap * sizeof(*x->v));
    }
    if ((rc = regcomp(&x->v[x->count].re, re, cflags)) != 0) {
        regerror(rc, &x->v[x->count].re, msg, sizeof(msg));
        buf_printf(err, "%s: bad regular expression: %s", where, msg);
        return -1;
    }
    x->v[x->count++].value = xstrdup(value);
    return 0;
}

/* regexp_add - one "/regex/flags value" line */
static int regexp_add(struct table_regexp *x, const char *line, const char *where, buf_t *err)
{
    buf_t re = BUF_INIT;
    const char *p = regexp_pattern(line, &re, where, err);
    int cflags = p ? regexp_flags(&p, where, err) : -1, rc = -1;

    if (cflags >= 0) {
        p += strspn(p, " \t");
        if (*p == 0)
            buf_printf(err, "%s: no value after the regular expression", where);
        else
            rc = regexp_compile(x, buf_cstr(&re), cflags, p, where, err);
    }
    buf_free(&re);
    return rc;
}

int table_open_regexp(struct table *t, const char *name, buf_t *err)
{
    struct table_regexp *x = xcalloc(1, sizeof(*x));
    struct table_text r;
    buf_t line = BUF_INIT, where = BUF_INIT;
    size_t lineno = 0;
    int rc;

    if (table_text_open(&r, name, err) < 0) {
        free(x);
        return -1;
    }
    while ((rc = table_text_next(&r, &line, &lineno, err)) > 0) {
        table_where(&where, name, lineno);
        if ((rc = regexp_add(x, line.data, where.data, err)) < 0)
            break;
    }
    table_text_close(&r);
    buf_free(&line);
    buf_free(&where);
    if (rc < 0) {
        regexp_free(x);
        return -1;
    }
    t->ops = &regexp_ops;
    t->impl = x;
    return 0;
}
