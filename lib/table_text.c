/*
 * table_text - the sendmail/Postfix text format (see table.h): the
 * logical-line reader shared by lmdb builds, texthash:, cidr: and regexp:;
 * key/value splitting and case folding; the in-memory index behind
 * texthash: and inline:; and the atomic delete of one key (tern map -d).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "safefile.h"
#include "table_impl.h"

#define TEXT_WHITE " \t"

void table_where(buf_t *out, const char *path, size_t lineno)
{
    buf_reset(out);
    buf_printf(out, "%s:%zu", path, lineno);
}

void table_dir_of(const char *path, buf_t *dir)
{
    const char *slash = strrchr(path, '/');

    buf_reset(dir);
    if (slash == NULL)
        buf_set(dir, ".");
    else if (slash == path)
        buf_set(dir, "/");
    else
        buf_append(dir, path, (size_t)(slash - path));
}

void table_sync_dir_of(const char *path)
{
    buf_t dir = BUF_INIT;

    table_dir_of(path, &dir);
    (void)fsync_dir(dir.data);
    buf_free(&dir);
}

int table_text_open(struct table_text *r, const char *path, buf_t *err)
{
    memset(r, 0, sizeof(*r));
    r->path = path;
    r->fp = fopen(path, "re");
    if (r->fp == NULL) {
        buf_printf(err, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

void table_text_close(struct table_text *r)
{
    if (r->fp)
        fclose(r->fp);
    r->fp = NULL;
    buf_free(&r->pending);
}

/* text_strip_right - drop trailing white space and CR */
static void text_strip_right(buf_t *line)
{
    while (line->len > 0 && isspace((unsigned char)line->data[line->len - 1]))
        line->len--;
    if (line->data)
        line->data[line->len] = 0;
}

/* text_read_raw - one physical line, newline removed: 1, 0 at end, -1 */
static int text_read_raw(FILE *fp, const char *path, size_t lineno, buf_t *line, buf_t *err)
{
    int c;

    buf_reset(line);
    buf_reserve(line, 1);
    line->data[0] = 0;
    while ((c = getc_unlocked(fp)) != EOF && c != '\n') {
        if (c == 0) {
            buf_printf(err, "%s:%zu: NUL byte in line", path, lineno);
            return -1;
        }
        if (line->len >= TABLE_LINE_MAX) {
            buf_printf(err, "%s:%zu: line longer than %d bytes", path, lineno, TABLE_LINE_MAX);
            return -1;
        }
        buf_putc(line, c);
    }
    if (ferror(fp)) {
        buf_printf(err, "%s:%zu: read error: %s", path, lineno, strerror(errno));
        return -1;
    }
    return c == EOF && line->len == 0 ? 0 : 1;
}

/* text_next_physical - the pending line or a fresh one, right-stripped */
static int text_next_physical(struct table_text *r, buf_t *phys, size_t *n, buf_t *err)
{
    if (r->pending_lineno) {
        buf_set(phys, buf_cstr(&r->pending));
        *n = r->pending_lineno;
        r->pending_lineno = 0;
        return 1;
    }
    int rc = text_read_raw(r->fp, r->path, r->lineno + 1, phys, err);
    if (rc <= 0)
        return rc;
    *n = ++r->lineno;
    text_strip_right(phys);
    return 1;
}

/* text_append_continuation - add " text" to the entry, bounded */
static int text_append_continuation(struct table_text *r, buf_t *line, const char *text, size_t n,
                                    buf_t *err)
{
    if (line->len + 1 + strlen(text) > TABLE_ENTRY_MAX) {
        buf_printf(err, "%s:%zu: entry longer than %d bytes", r->path, n, TABLE_ENTRY_MAX);
        return -1;
    }
    buf_putc(line, ' ');
    buf_puts(line, text);
    return 0;
}

int table_text_next(struct table_text *r, buf_t *line, size_t *lineno, buf_t *err)
{
    buf_t phys = BUF_INIT;
    int have = 0, rc;
    size_t n;

    buf_reset(line);
    while ((rc = text_next_physical(r, &phys, &n, err)) > 0) {
        const char *p = buf_cstr(&phys), *q = p + strspn(p, TEXT_WHITE);
        if (*q == 0 || *q == '#')
            continue;
        if (q != p) {
            if (!have) {
                buf_printf(err, "%s:%zu: continuation line without an entry before it", r->path, n);
                rc = -1;
                break;
            }
            if ((rc = text_append_continuation(r, line, q, n, err)) < 0)
                break;
            continue;
        }
        if (have) {
            buf_set(&r->pending, p);
            r->pending_lineno = n;
            break;
        }
        buf_set(line, p);
        *lineno = n;
        have = 1;
    }
    buf_free(&phys);
    return rc < 0 ? -1 : have;
}

const char *table_key_fold(const char *key, int flags, buf_t *tmp)
{
    if (flags & TABLE_CASE_SENSITIVE)
        return key;
    buf_reset(tmp);
    for (const char *p = key; *p; p++)
        buf_putc(tmp, tolower((unsigned char)*p));
    return buf_cstr(tmp);
}

/* text_key_length - length of the key at the start of line; *rest after it */
static size_t text_key_length(const char *line, int flags, const char **rest)
{
    size_t n;

    if (flags & TABLE_ALIASES) {
        const char *colon = strchr(line, ':');
        if (colon == NULL) {
            *rest = NULL;
            return 0;
        }
        *rest = colon + 1;
        n = (size_t)(colon - line);
        while (n > 0 && strchr(TEXT_WHITE, line[n - 1]))
            n--;
        return n;
    }
    n = strcspn(line, TEXT_WHITE);
    *rest = line + n;
    return n;
}

/* text_key_check - the key is non-empty, bounded and (aliases) one word */
static int text_key_check(const char *line, size_t n, const char *rest, int flags,
                          const char *where, buf_t *err)
{
    if (rest == NULL) {
        buf_printf(err, "%s: expected \"name: value\" (no colon)", where);
        return -1;
    }
    if (n == 0) {
        buf_printf(err, "%s: empty key", where);
        return -1;
    }
    if (n > TABLE_KEY_MAX) {
        buf_printf(err, "%s: key longer than %d bytes", where, TABLE_KEY_MAX);
        return -1;
    }
    if ((flags & TABLE_ALIASES) && strcspn(line, TEXT_WHITE) < n) {
        buf_printf(err, "%s: alias name contains white space", where);
        return -1;
    }
    return 0;
}

int table_text_split(const char *line, int flags, buf_t *key, buf_t *value, const char *where,
                     buf_t *err)
{
    const char *rest;
    size_t n = text_key_length(line, flags, &rest);
    buf_t raw = BUF_INIT, tmp = BUF_INIT;

    if (text_key_check(line, n, rest, flags, where, err) < 0)
        return -1;
    rest += strspn(rest, TEXT_WHITE);
    if (*rest == 0) {
        buf_printf(err, "%s: no value for key \"%.*s\"", where, (int)n, line);
        return -1;
    }
    buf_append(&raw, line, n);
    buf_set(key, table_key_fold(buf_cstr(&raw), flags, &tmp));
    buf_set(value, rest);
    buf_free(&raw);
    buf_free(&tmp);
    return 0;
}

/* ---- table_mem: insertion-ordered entries with an open-addressing index */

static size_t mem_hash(const char *s)
{
    size_t h = 14695981039346656037ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* mem_slot - the slot holding key, or the empty slot where it would go */
static size_t mem_slot(const struct table_mem *m, const char *key)
{
    size_t i = mem_hash(key) & (m->nslots - 1);

    while (m->slots[i] && strcmp(m->keys[m->slots[i] - 1], key) != 0)
        i = (i + 1) & (m->nslots - 1);
    return i;
}

/* mem_grow_index - double the index and re-insert every key */
static void mem_grow_index(struct table_mem *m)
{
    free(m->slots);
    m->nslots = m->nslots ? m->nslots * 2 : 64;
    m->slots = xcalloc(m->nslots, sizeof(size_t));
    for (size_t k = 0; k < m->count; k++)
        m->slots[mem_slot(m, m->keys[k])] = k + 1;
}

int table_mem_add(struct table_mem *m, const char *key, const char *value)
{
    if ((m->count + 1) * 2 > m->nslots)
        mem_grow_index(m);
    size_t i = mem_slot(m, key);
    if (m->slots[i])
        return 1;
    if (m->count == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->keys = xrealloc(m->keys, m->cap * sizeof(char *));
        m->values = xrealloc(m->values, m->cap * sizeof(char *));
    }
    m->keys[m->count] = xstrdup(key);
    m->values[m->count] = xstrdup(value);
    m->slots[i] = ++m->count;
    return 0;
}

const char *table_mem_find(const struct table_mem *m, const char *key)
{
    if (m->nslots == 0)
        return NULL;
    size_t i = mem_slot(m, key);
    return m->slots[i] ? m->values[m->slots[i] - 1] : NULL;
}

void table_mem_free(struct table_mem *m)
{
    for (size_t k = 0; k < m->count; k++) {
        free(m->keys[k]);
        free(m->values[k]);
    }
    free(m->keys);
    free(m->values);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

/* ---- texthash: and inline: share the in-memory lookup */

static enum table_result mem_lookup(struct table *t, const char *key, buf_t *value)
{
    buf_t tmp = BUF_INIT;
    const char *v = table_mem_find(t->impl, table_key_fold(key, t->flags, &tmp));

    buf_free(&tmp);
    if (v == NULL)
        return TABLE_NOTFOUND;
    buf_set(value, v);
    return TABLE_FOUND;
}

static int mem_walk(struct table *t, table_walk_fn fn, void *ctx, buf_t *err)
{
    struct table_mem *m = t->impl;

    for (size_t k = 0; k < m->count; k++)
        if (fn(m->keys[k], m->values[k], ctx))
            break;
    return 0;
}

static void mem_close(struct table *t)
{
    table_mem_free(t->impl);
    free(t->impl);
}

static const struct table_ops texthash_ops = {"texthash", 0, mem_lookup, mem_walk, mem_close, NULL};
static const struct table_ops inline_ops = {"inline", 0, mem_lookup, mem_walk, mem_close, NULL};

/* texthash_load - every entry of the file into m; duplicates warned */
static int texthash_load(struct table_mem *m, const char *path, int flags, buf_t *err)
{
    struct table_text r;
    buf_t line = BUF_INIT, key = BUF_INIT, value = BUF_INIT, where = BUF_INIT;
    size_t lineno = 0;
    int rc;

    if (table_text_open(&r, path, err) < 0)
        return -1;
    while ((rc = table_text_next(&r, &line, &lineno, err)) > 0) {
        table_where(&where, path, lineno);
        if ((rc = table_text_split(buf_cstr(&line), flags, &key, &value, where.data, err)) < 0)
            break;
        if (table_mem_add(m, key.data, value.data))
            log_warn("%s: duplicate key \"%s\" ignored (the first one wins)", where.data, key.data);
    }
    table_text_close(&r);
    buf_free(&line);
    buf_free(&key);
    buf_free(&value);
    buf_free(&where);
    return rc < 0 ? -1 : 0;
}

int table_open_texthash(struct table *t, const char *name, buf_t *err)
{
    struct table_mem *m = xcalloc(1, sizeof(*m));

    if (texthash_load(m, name, t->flags, err) < 0) {
        table_mem_free(m);
        free(m);
        return -1;
    }
    t->ops = &texthash_ops;
    t->impl = m;
    return 0;
}

/* inline_item_end - end of one item: the next top-level comma or end */
static const char *inline_item_end(const char *p, const char *end)
{
    int depth = 0;

    for (; p < end; p++) {
        if (*p == '{')
            depth++;
        else if (*p == '}' && depth > 0)
            depth--;
        else if (*p == ',' && depth == 0)
            break;
    }
    return p;
}

/* inline_trim - [*s, *e) without white space and one pair of braces */
static void inline_trim(const char **s, const char **e)
{
    while (*s < *e && isspace((unsigned char)**s))
        (*s)++;
    while (*e > *s && isspace((unsigned char)(*e)[-1]))
        (*e)--;
    if (*e - *s >= 2 && **s == '{' && (*e)[-1] == '}') {
        (*s)++;
        (*e)--;
        inline_trim(s, e);
    }
}

/* inline_add_item - "key=value" into m */
static int inline_add_item(struct table_mem *m, const char *s, const char *e, int flags, buf_t *err)
{
    const char *eq = memchr(s, '=', (size_t)(e - s));
    const char *ks = s, *ke = eq, *vs = eq ? eq + 1 : NULL, *ve = e;
    buf_t key = BUF_INIT, value = BUF_INIT, tmp = BUF_INIT;

    if (eq)
        inline_trim(&ks, &ke);
    if (eq == NULL || ke == ks || ke - ks > TABLE_KEY_MAX) {
        buf_printf(err, "expected key=value, not \"%.*s\"", (int)(e - s), s);
        return -1;
    }
    inline_trim(&vs, &ve);
    buf_append(&key, ks, (size_t)(ke - ks));
    buf_append(&value, vs, (size_t)(ve - vs));
    if (table_mem_add(m, table_key_fold(buf_cstr(&key), flags, &tmp), buf_cstr(&value)))
        log_warn("inline table: duplicate key \"%s\" ignored (the first one wins)", key.data);
    buf_free(&key);
    buf_free(&value);
    buf_free(&tmp);
    return 0;
}

int table_open_inline(struct table *t, const char *name, buf_t *err)
{
    size_t n = strlen(name);
    struct table_mem *m = xcalloc(1, sizeof(*m));

    if (n < 2 || name[0] != '{' || name[n - 1] != '}') {
        buf_printf(err, "expected inline:{key=value, ...}");
        free(m);
        return -1;
    }
    const char *p = name + 1, *end = name + n - 1;
    while (p < end) {
        const char *e = inline_item_end(p, end), *s = p, *se = e;
        inline_trim(&s, &se);
        if (se > s && inline_add_item(m, s, se, t->flags, err) < 0) {
            table_mem_free(m);
            free(m);
            return -1;
        }
        p = e < end ? e + 1 : end;
    }
    t->ops = &inline_ops;
    t->impl = m;
    return 0;
}

/* ---- static: every key maps to the value */

static enum table_result static_lookup(struct table *t, const char *key, buf_t *value)
{
    buf_set(value, t->impl);
    return TABLE_FOUND;
}

static void static_close(struct table *t)
{
    free(t->impl);
}

static const struct table_ops static_ops = {"static", 1, static_lookup, NULL, static_close, NULL};

int table_open_static(struct table *t, const char *name, buf_t *err)
{
    const char *s = name, *e = name + strlen(name);

    inline_trim(&s, &e);
    t->impl = xstrndup(s, (size_t)(e - s));
    t->ops = &static_ops;
    return 0;
}

/* ---- tern map -d: rewrite the text file without one key */

/* delete_line_matches - the first line of an entry whose key is key */
static int delete_line_matches(const char *line, const char *key, int flags)
{
    const char *rest;
    size_t n = text_key_length(line, flags, &rest);
    buf_t raw = BUF_INIT, tmp = BUF_INIT;
    int match;

    buf_append(&raw, line, n);
    match = rest && n > 0 && strcmp(table_key_fold(buf_cstr(&raw), flags, &tmp), key) == 0;
    buf_free(&raw);
    buf_free(&tmp);
    return match;
}

/* delete_copy - copy in to out without key's lines; 1 found, 0 not, -1 */
static int delete_copy(FILE *in, FILE *out, const char *path, const char *key, int flags,
                       buf_t *err)
{
    buf_t line = BUF_INIT;
    int found = 0, skipping = 0, rc;
    size_t lineno = 0;

    while ((rc = text_read_raw(in, path, ++lineno, &line, err)) > 0) {
        const char *p = buf_cstr(&line), *q = p + strspn(p, TEXT_WHITE " \r");
        if (*q && *q != '#') {
            if (q == p)
                skipping = delete_line_matches(p, key, flags);
            found |= skipping;
            if (skipping)
                continue;
        }
        fputs(p, out);
        fputc('\n', out);
    }
    buf_free(&line);
    return rc < 0 ? -1 : found;
}

/* delete_commit - make the temp file durable, give it mode/owner, rename */
static int delete_commit(FILE *out, const char *tmp, const char *path, const struct stat *st,
                         buf_t *err)
{
    int fd = fileno(out);

    if (fflush(out) != 0 || fchmod(fd, st->st_mode & 07777) < 0 ||
        (geteuid() == 0 && fchown(fd, st->st_uid, st->st_gid) < 0) || fsync(fd) < 0) {
        buf_printf(err, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (rename(tmp, path) < 0) {
        buf_printf(err, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        return -1;
    }
    table_sync_dir_of(path);
    return 0;
}

int table_text_delete(const char *path, const char *key, int flags, buf_t *err)
{
    buf_t tmp = BUF_INIT, folded = BUF_INIT;
    struct stat st;
    FILE *in = fopen(path, "re"), *out = NULL;
    int rc = -1, fd;

    if (in == NULL || fstat(fileno(in), &st) < 0) {
        buf_printf(err, "cannot open %s: %s", path, strerror(errno));
        goto done;
    }
    buf_printf(&tmp, "%s.XXXXXX", path);
    if ((fd = mkstemp(tmp.data)) < 0) {
        buf_printf(err, "cannot create %s: %s", tmp.data, strerror(errno));
        goto done;
    }
    if ((out = fdopen(fd, "w")) == NULL) {
        buf_printf(err, "cannot create %s: %s", tmp.data, strerror(errno));
        close(fd);
        unlink(tmp.data);
        goto done;
    }
    rc = delete_copy(in, out, path, table_key_fold(key, flags, &folded), flags, err);
    if (rc == 1 && delete_commit(out, tmp.data, path, &st, err) < 0)
        rc = -1;
done:
    if (out) {
        fclose(out);
        if (rc != 1)
            unlink(tmp.data);
    }
    if (in)
        fclose(in);
    buf_free(&tmp);
    buf_free(&folded);
    return rc;
}
