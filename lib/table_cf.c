/*
 * table_cf - reading a remote table's NAME.cf (see table_cf.h): the file,
 * its permissions, and the field tables the typed views are made of.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "table_cf.h"
#include "table_cf_impl.h"

#define TABLE_CF_FILE_MAX (1024 * 1024)

/* the settings whose value is a secret */
static const char *const table_cf_secret_keys[] = {"bind_pw", "password"};

/* cf_wipe_free - zero a string, then free it */
static void cf_wipe_free(char *s)
{
    if (s == NULL)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

const struct table_cf_entry *table_cf_get(const struct table_cf *cf, const char *key)
{
    for (size_t i = 0; i < cf->count; i++)
        if (strcmp(cf->v[i].key, key) == 0)
            return &cf->v[i];
    return NULL;
}

void table_cf_free(struct table_cf *cf)
{
    for (size_t i = 0; i < cf->count; i++) {
        free(cf->v[i].key);
        cf_wipe_free(cf->v[i].value);
    }
    free(cf->v);
    free(cf->path);
    memset(cf, 0, sizeof(*cf));
}

/* cf_is_blank - space or tab */
static int cf_is_blank(int c)
{
    return c == ' ' || c == '\t';
}

/* cf_trim - drop leading and trailing blanks of [*s, *s + *n) */
static void cf_trim(const char **s, size_t *n)
{
    while (*n > 0 && cf_is_blank((unsigned char)**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && cf_is_blank((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

/* cf_is_key_char - [A-Za-z0-9_] */
static int cf_is_key_char(int c)
{
    return isascii(c) && (isalnum(c) || c == '_');
}

/* cf_add - a new entry for key (value filled in by the caller) */
static int cf_add(struct table_cf *cf, const char *key, size_t klen, size_t line, buf_t *err)
{
    char *k = xstrndup(key, klen);
    const struct table_cf_entry *old = table_cf_get(cf, k);

    if (old != NULL) {
        buf_printf(err, "%s:%zu: %s given twice (first at line %zu)", cf->path, line, k, old->line);
        free(k);
        return -1;
    }
    if (cf->count >= TABLE_CF_ENTRIES_MAX) {
        buf_printf(err, "%s:%zu: more than %d settings", cf->path, line, TABLE_CF_ENTRIES_MAX);
        free(k);
        return -1;
    }
    cf->v = xrealloc(cf->v, (cf->count + 1) * sizeof(*cf->v));
    cf->v[cf->count].key = k;
    cf->v[cf->count].value = NULL;
    cf->v[cf->count].line = line;
    cf->count++;
    return 0;
}

/* cf_finish_value - the joined value becomes the last entry's */
static void cf_finish_value(struct table_cf *cf, buf_t *value)
{
    if (cf->count == 0 || cf->v[cf->count - 1].value != NULL)
        return;
    cf->v[cf->count - 1].value = xstrndup(buf_cstr(value), value->len);
    buf_wipe(value);
}

/* cf_append - add [s, s + n) to the value being joined */
static int cf_append(struct table_cf *cf, buf_t *value, const char *s, size_t n, size_t line,
                     buf_t *err)
{
    if (value->len + n + 1 > TABLE_CF_VALUE_MAX) {
        buf_printf(err, "%s:%zu: value longer than %d bytes", cf->path, line, TABLE_CF_VALUE_MAX);
        return -1;
    }
    if (value->len > 0 && n > 0)
        buf_putc(value, ' ');
    buf_append(value, s, n);
    return 0;
}

/* cf_parse_setting - "key = value" at the start of a line */
static int cf_parse_setting(struct table_cf *cf, buf_t *value, const char *s, size_t n, size_t line,
                            buf_t *err)
{
    size_t k = 0;

    while (k < n && cf_is_key_char((unsigned char)s[k]))
        k++;
    size_t eq = k;
    while (eq < n && cf_is_blank((unsigned char)s[eq]))
        eq++;
    if (k == 0 || eq >= n || s[eq] != '=') {
        buf_printf(err, "%s:%zu: expected \"name = value\"", cf->path, line);
        return -1;
    }
    cf_finish_value(cf, value);
    if (cf_add(cf, s, k, line, err) < 0)
        return -1;
    const char *v = s + eq + 1;
    size_t vlen = n - eq - 1;
    cf_trim(&v, &vlen);
    return cf_append(cf, value, v, vlen, line, err);
}

/* cf_parse_line - one physical line (no newline) */
static int cf_parse_line(struct table_cf *cf, buf_t *value, const char *s, size_t n, size_t line,
                         buf_t *err)
{
    if (n > 0 && s[n - 1] == '\r')
        n--;
    if (n > TABLE_CF_LINE_MAX) {
        buf_printf(err, "%s:%zu: line longer than %d bytes", cf->path, line, TABLE_CF_LINE_MAX);
        return -1;
    }
    if (memchr(s, '\0', n) != NULL) {
        buf_printf(err, "%s:%zu: NUL byte in line", cf->path, line);
        return -1;
    }
    const char *t = s;
    size_t tn = n;
    cf_trim(&t, &tn);
    if (tn == 0 || t[0] == '#')
        return 0;
    if (!cf_is_blank((unsigned char)s[0]))
        return cf_parse_setting(cf, value, s, n, line, err);
    if (cf->count == 0) {
        buf_printf(err, "%s:%zu: continuation line without a setting before it", cf->path, line);
        return -1;
    }
    return cf_append(cf, value, t, tn, line, err);
}

int table_cf_parse(struct table_cf *cf, const char *path, const char *text, size_t len, buf_t *err)
{
    buf_t value = BUF_INIT;
    size_t pos = 0, line = 0;
    int rc = 0;

    memset(cf, 0, sizeof(*cf));
    cf->path = xstrdup(path);
    while (pos < len && rc == 0) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        rc = cf_parse_line(cf, &value, text + pos, n, ++line, err);
        pos += n + 1;
    }
    if (rc == 0)
        cf_finish_value(cf, &value);
    buf_wipe(&value);
    buf_free(&value);
    return rc;
}

/* cf_secret_key - the first setting of cf that holds a secret, or NULL */
static const char *cf_secret_key(const struct table_cf *cf)
{
    for (size_t i = 0; i < sizeof(table_cf_secret_keys) / sizeof(table_cf_secret_keys[0]); i++)
        if (table_cf_get(cf, table_cf_secret_keys[i]) != NULL)
            return table_cf_secret_keys[i];
    return NULL;
}

int table_cf_check_mode(const struct table_cf *cf, mode_t mode, buf_t *err)
{
    const char *secret = cf_secret_key(cf);

    if (mode & S_IWOTH) {
        buf_printf(err, "%s: writable by others, who could redirect the lookups; run: chmod o-w %s",
                   cf->path, cf->path);
        return -1;
    }
    if (secret != NULL && (mode & S_IROTH)) {
        buf_printf(err, "%s: holds a password (%s) and is readable by others; run: chmod o-r %s",
                   cf->path, secret, cf->path);
        return -1;
    }
    return 0;
}

/* cf_read_fd - the whole regular file behind fd, at most TABLE_CF_FILE_MAX */
static int cf_read_fd(int fd, const char *path, buf_t *text, struct stat *st, buf_t *err)
{
    char chunk[4096];
    ssize_t n;

    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        buf_printf(err, "%s: not a regular file", path);
        return -1;
    }
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || text->len + (size_t)n > TABLE_CF_FILE_MAX) {
            buf_printf(err, "%s: %s", path, n < 0 ? strerror(errno) : "larger than 1 MiB");
            explicit_bzero(chunk, sizeof(chunk));
            return -1;
        }
        buf_append(text, chunk, (size_t)n);
    }
    explicit_bzero(chunk, sizeof(chunk));
    return 0;
}

int table_cf_read(struct table_cf *cf, const char *path, buf_t *err)
{
    buf_t text = BUF_INIT;
    struct stat st;
    int rc = -1;

    memset(cf, 0, sizeof(*cf));
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        buf_printf(err, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (cf_read_fd(fd, path, &text, &st, err) == 0 &&
        table_cf_parse(cf, path, text.data ? text.data : "", text.len, err) == 0)
        rc = table_cf_check_mode(cf, st.st_mode, err);
    close(fd);
    buf_wipe(&text);
    buf_free(&text);
    return rc;
}

/* ---- the field tables of the typed views ---- */

void table_cf_where(buf_t *out, const struct table_cf *cf, const char *key)
{
    const struct table_cf_entry *e = table_cf_get(cf, key);

    if (e != NULL)
        buf_printf(out, "%s:%zu", cf->path, e->line);
    else
        buf_puts(out, cf->path);
}

int table_cf_refuse(const struct table_cf *cf, const char *key, const char *why, buf_t *err)
{
    table_cf_where(err, cf, key);
    buf_printf(err, ": %s", why);
    return -1;
}

void table_cf_quote(buf_t *out, const char *value)
{
    size_t i;

    buf_putc(out, '"');
    for (i = 0; value[i] && i < 64; i++)
        buf_putc(out, isprint((unsigned char)value[i]) ? value[i] : '?');
    buf_puts(out, value[i] ? "...\"" : "\"");
}

/* cf_field_error - "FILE[:LINE]: name: " for a message about a field */
static void cf_field_error(buf_t *err, const struct table_cf *cf, const char *name)
{
    table_cf_where(err, cf, name);
    buf_printf(err, ": %s: ", name);
}

/* cf_expand_ok - every '%' starts one of the expansions allowed */
static int cf_expand_ok(const char *s, int result, char *bad)
{
    for (const char *p = strchr(s, '%'); p != NULL; p = strchr(p + 2, '%')) {
        if (p[1] == '\0' || strchr(result ? "%sud123456789SUD" : "%sud123456789", p[1]) == NULL) {
            *bad = p[1];
            return 0;
        }
    }
    return 1;
}

/* cf_parse_int - decimal digits only, in [min, max] */
static int cf_parse_int(const char *s, int min, int max, int *out)
{
    long v = 0;

    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s) || (v = v * 10 + (*s - '0')) > INT_MAX)
            return -1;
    }
    if (v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

/* cf_parse_word - the index of s (case-insensitive) among words */
static int cf_parse_word(const char *s, const char *words, int *out)
{
    size_t n = strlen(s);
    int i = 0;

    for (const char *w = words; *w; i++) {
        size_t wn = strcspn(w, " ");
        if (wn == n && n > 0 && strncasecmp(w, s, n) == 0) {
            *out = i;
            return 0;
        }
        w += wn + (w[wn] == ' ');
    }
    return -1;
}

int table_cf_list_parse(const char *s, struct table_cf_list *list)
{
    const char *sep = ", \t";

    while (*(s += strspn(s, sep))) {
        size_t n = strcspn(s, sep);
        if (list->count >= TABLE_CF_LIST_MAX)
            return -1;
        list->v = xrealloc(list->v, (list->count + 1) * sizeof(*list->v));
        list->v[list->count++] = xstrndup(s, n);
        s += n;
    }
    return 0;
}

void table_cf_list_free(struct table_cf_list *list)
{
    for (size_t j = 0; j < list->count; j++)
        free(list->v[j]);
    free(list->v);
    memset(list, 0, sizeof(*list));
}

int table_cf_list_get(const struct table_cf *cf, const char *key, const char *fallback,
                      struct table_cf_list *list, buf_t *err)
{
    const struct table_cf_entry *e = table_cf_get(cf, key);
    int rc = table_cf_list_parse(e ? e->value : "", list);

    if (rc == 0 && list->count == 0)
        rc = table_cf_list_parse(fallback, list);
    if (rc < 0) {
        cf_field_error(err, cf, key);
        buf_printf(err, "more than %d items", TABLE_CF_LIST_MAX);
    }
    return rc;
}

/* cf_field_set - parse value into the field; -1 with err set */
static int cf_field_set(void *view, const struct table_cf_field *f, const char *value,
                        const struct table_cf *cf, buf_t *err)
{
    char *at = (char *)view + f->offset;
    char bad = 0;

    switch (f->kind) {
    case TABLE_CF_EXPAND:
    case TABLE_CF_EXPAND_RESULT:
        if (!cf_expand_ok(value, f->kind == TABLE_CF_EXPAND_RESULT, &bad)) {
            cf_field_error(err, cf, f->name);
            buf_printf(
                err, "unknown expansion \"%%%c\" (use %s)", isprint((unsigned char)bad) ? bad : '?',
                f->kind == TABLE_CF_EXPAND ? "%s %u %d %1-%9 %%" : "%s %u %d %1-%9 %S %U %D %%");
            return -1;
        }
        /* fall through */
    case TABLE_CF_STR:
        *(char **)at = xstrdup(value);
        return 0;
    case TABLE_CF_INT:
        if (cf_parse_int(value, f->min, f->max, (int *)at) == 0)
            return 0;
        cf_field_error(err, cf, f->name);
        table_cf_quote(err, value);
        buf_printf(err, " is not a number from %d to %d", f->min, f->max);
        return -1;
    case TABLE_CF_WORD:
        if (cf_parse_word(value, f->words, (int *)at) == 0)
            return 0;
        cf_field_error(err, cf, f->name);
        table_cf_quote(err, value);
        buf_printf(err, " is not one of: %s", f->words);
        return -1;
    case TABLE_CF_LIST:
        return table_cf_list_get(cf, f->name, value, (struct table_cf_list *)at, err);
    case TABLE_CF_DOMAINS:
        if (strchr(value, ':') == NULL)
            return table_cf_list_get(cf, f->name, value, (struct table_cf_list *)at, err);
        cf_field_error(err, cf, f->name);
        buf_puts(err, "a table here is not supported yet; list the domains");
        return -1;
    default:
        return 0;
    }
}

/* cf_field_find - the field called name, or NULL */
static const struct table_cf_field *cf_field_find(const struct table_cf_field *fields,
                                                  size_t nfields, const char *name)
{
    for (size_t i = 0; i < nfields; i++)
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i];
    return NULL;
}

/* cf_fields_known - every entry names a field that is not refused */
static int cf_fields_known(const struct table_cf_field *fields, size_t nfields,
                           const struct table_cf *cf, const char *type, buf_t *err)
{
    for (size_t i = 0; i < cf->count; i++) {
        const struct table_cf_field *f = cf_field_find(fields, nfields, cf->v[i].key);
        if (f == NULL) {
            buf_printf(err, "%s:%zu: unknown setting \"%s\" for a %s table", cf->path,
                       cf->v[i].line, cf->v[i].key, type);
            return -1;
        }
        if (f->kind == TABLE_CF_REFUSED) {
            buf_printf(err, "%s:%zu: %s is not supported: %s", cf->path, cf->v[i].line, f->name,
                       f->words);
            return -1;
        }
    }
    return 0;
}

int table_cf_fields_load(void *view, const struct table_cf_field *fields, size_t nfields,
                         const struct table_cf *cf, const char *type, buf_t *err)
{
    if (cf_fields_known(fields, nfields, cf, type, err) < 0)
        return -1;
    for (size_t i = 0; i < nfields; i++) {
        const struct table_cf_field *f = &fields[i];
        const struct table_cf_entry *e = table_cf_get(cf, f->name);
        if (f->kind == TABLE_CF_OWN || f->kind == TABLE_CF_REFUSED)
            continue;
        if (e == NULL && f->initial == NULL) {
            buf_printf(err, "%s: %s is required in a %s table", cf->path, f->name, type);
            return -1;
        }
        if (cf_field_set(view, f, e ? e->value : f->initial, cf, err) < 0)
            return -1;
    }
    return 0;
}

void table_cf_fields_free(void *view, const struct table_cf_field *fields, size_t nfields)
{
    for (size_t i = 0; i < nfields; i++) {
        char *at = (char *)view + fields[i].offset;
        struct table_cf_list *list = (struct table_cf_list *)at;
        switch (fields[i].kind) {
        case TABLE_CF_STR:
        case TABLE_CF_EXPAND:
        case TABLE_CF_EXPAND_RESULT:
            cf_wipe_free(*(char **)at);
            *(char **)at = NULL;
            break;
        case TABLE_CF_LIST:
        case TABLE_CF_DOMAINS:
            table_cf_list_free(list);
            break;
        default:
            break;
        }
    }
}

/* ---- host names and ports, shared by server_host and hosts ---- */

int table_cf_port(const char *s, size_t len, unsigned *port)
{
    unsigned v = 0;

    if (len == 0 || len > 5)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *port = v;
    return 0;
}

int table_cf_host_ok(const char *s, size_t len, int v6)
{
    if (len == 0 || len > 255)
        return 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (v6 ? !(isxdigit(c) || c == ':' || c == '.')
               : !(isascii(c) && (isalnum(c) || c == '.' || c == '-' || c == '_')))
            return 0;
    }
    return 1;
}

int table_cf_split_host_port(const char *item, char **host, unsigned *port)
{
    const char *h = item, *rest;
    size_t hlen;
    int v6 = item[0] == '[';

    if (v6) {
        const char *close = strchr(item, ']');
        if (close == NULL)
            return -1;
        h = item + 1;
        hlen = (size_t)(close - h);
        rest = close + 1;
    } else {
        hlen = strcspn(item, ":");
        rest = item + hlen;
    }
    if (!table_cf_host_ok(h, hlen, v6))
        return -1;
    if (*rest != '\0' && (*rest != ':' || table_cf_port(rest + 1, strlen(rest + 1), port) < 0))
        return -1;
    *host = xstrndup(h, hlen);
    return 0;
}
