/*
 * milter_model - the header section of a queued message as a list, and the
 * changes milters make to it (pure: no I/O, no logging; tests/unit).
 *
 * A header keeps its name and its raw value: everything after the colon,
 * the leading space and the folding "\r\n" included, without the final
 * CRLF, so an unchanged header is written back byte for byte.  Milters see
 * and give values with "\n" between folded lines (sendmail's and
 * libmilter's form) and, unless SMFIP_HDR_LEADSPC was agreed, without the
 * one space after the colon.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"

void cleanup_milter_headers_init(struct cleanup_milter_headers *h)
{
    memset(h, 0, sizeof(*h));
}

void cleanup_milter_headers_free(struct cleanup_milter_headers *h)
{
    for (size_t i = 0; i < h->count; i++) {
        free(h->v[i].name);
        free(h->v[i].value);
    }
    free(h->v);
    cleanup_milter_headers_init(h);
}

/* cleanup_milter_headers_make_room - a free slot at position at */
static struct cleanup_milter_header *
cleanup_milter_headers_make_room(struct cleanup_milter_headers *h, size_t at)
{
    if (h->count == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 16;
        h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
    }
    memmove(&h->v[at + 1], &h->v[at], (h->count - at) * sizeof(*h->v));
    h->count++;
    return &h->v[at];
}

/* cleanup_milter_headers_line - one unfolded line of the section (without
 * its line end): a new header, or the continuation of the last one */
static void cleanup_milter_headers_line(struct cleanup_milter_headers *h, const char *line,
                                        size_t len)
{
    const char *colon = memchr(line, ':', len);
    struct cleanup_milter_header *last = h->count ? &h->v[h->count - 1] : NULL;

    if (last && last->value && len > 0 && (line[0] == ' ' || line[0] == '\t')) {
        buf_t v = BUF_INIT;
        buf_printf(&v, "%s\r\n%.*s", last->value, (int)len, line);
        free(last->value);
        last->value = buf_steal(&v);
        return;
    }
    struct cleanup_milter_header *hd = cleanup_milter_headers_make_room(h, h->count);
    hd->name = xstrndup(line, colon ? (size_t)(colon - line) : len);
    hd->value = colon ? xstrndup(colon + 1, len - (size_t)(colon - line) - 1) : NULL;
}

void cleanup_milter_headers_parse(struct cleanup_milter_headers *h, const char *data, size_t len)
{
    const char *p = data, *end = data + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        cleanup_milter_headers_line(h, p, n);
        p = nl ? nl + 1 : end;
    }
}

void cleanup_milter_headers_write(const struct cleanup_milter_headers *h, buf_t *out)
{
    for (size_t i = 0; i < h->count; i++) {
        buf_puts(out, h->v[i].name);
        if (h->v[i].value) {
            buf_putc(out, ':');
            buf_puts(out, h->v[i].value);
        }
        buf_puts(out, "\r\n");
    }
}

void cleanup_milter_value_out(const char *raw, int leadspc, buf_t *out)
{
    buf_reset(out);
    if (!leadspc && *raw == ' ')
        raw++;
    for (; *raw; raw++)
        if (!(raw[0] == '\r' && raw[1] == '\n'))
            buf_putc(out, *raw);
}

void cleanup_milter_value_in(const char *value, int leadspc, buf_t *out)
{
    size_t n = strlen(value);

    buf_reset(out);
    while (n > 0 && (value[n - 1] == '\n' || value[n - 1] == '\r'))
        n--;
    if (!leadspc)
        buf_putc(out, ' ');
    for (size_t i = 0; i < n; i++) {
        if (value[i] == '\r' && i + 1 < n && value[i + 1] == '\n')
            continue;
        if (value[i] != '\n') {
            buf_putc(out, value[i]);
            continue;
        }
        buf_puts(out, "\r\n");
        if (i + 1 < n && value[i + 1] != ' ' && value[i + 1] != '\t')
            buf_putc(out, '\t'); /* a continuation line must start with white space */
    }
}

/* cleanup_milter_headers_put - a new header (name, the milter's value) at */
static void cleanup_milter_headers_put(struct cleanup_milter_headers *h, size_t at,
                                       const char *name, const char *value, int leadspc)
{
    struct cleanup_milter_header *hd = cleanup_milter_headers_make_room(h, at);
    buf_t v = BUF_INIT;

    cleanup_milter_value_in(value, leadspc, &v);
    hd->name = xstrdup(name);
    hd->value = buf_steal(&v);
    h->changed = 1;
}

void cleanup_milter_headers_add(struct cleanup_milter_headers *h, const char *name,
                                const char *value, int leadspc)
{
    cleanup_milter_headers_put(h, h->count, name, value, leadspc);
}

void cleanup_milter_headers_insert(struct cleanup_milter_headers *h, size_t index, const char *name,
                                   const char *value, int leadspc)
{
    cleanup_milter_headers_put(h, index < h->count ? index : h->count, name, value, leadspc);
}

/* cleanup_milter_headers_find - the position of the index-th (from 1)
 * header called name, or h->count when there are fewer */
static size_t cleanup_milter_headers_find(const struct cleanup_milter_headers *h, const char *name,
                                          size_t index)
{
    size_t seen = 0;

    for (size_t i = 0; i < h->count; i++)
        if (h->v[i].value && strcasecmp(h->v[i].name, name) == 0 && ++seen >= index)
            return i;
    return h->count;
}

void cleanup_milter_headers_change(struct cleanup_milter_headers *h, size_t index, const char *name,
                                   const char *value, int leadspc)
{
    size_t at = cleanup_milter_headers_find(h, name, index ? index : 1);
    buf_t v = BUF_INIT;

    if (at == h->count) { /* no such occurrence: sendmail adds the header */
        if (*value)
            cleanup_milter_headers_add(h, name, value, leadspc);
        return;
    }
    h->changed = 1;
    if (*value == 0) {
        free(h->v[at].name);
        free(h->v[at].value);
        memmove(&h->v[at], &h->v[at + 1], (h->count - at - 1) * sizeof(*h->v));
        h->count--;
        return;
    }
    cleanup_milter_value_in(value, leadspc, &v);
    free(h->v[at].value);
    h->v[at].value = buf_steal(&v);
}

/* cleanup_milter_addr_span - addr without surrounding <> and white space */
static const char *cleanup_milter_addr_span(const char *addr, size_t *len)
{
    const char *end = addr + strlen(addr);

    while (*addr == ' ' || *addr == '\t')
        addr++;
    while (end > addr && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (end - addr >= 2 && *addr == '<' && end[-1] == '>') {
        addr++;
        end--;
    }
    *len = (size_t)(end - addr);
    return addr;
}

void cleanup_milter_addr_strip(const char *addr, buf_t *out)
{
    size_t n;
    const char *p = cleanup_milter_addr_span(addr, &n);

    buf_reset(out);
    buf_append(out, p, n);
}

int cleanup_milter_addr_match(const char *rcpt, const char *pattern)
{
    size_t a, b;
    const char *x = cleanup_milter_addr_span(rcpt, &a);
    const char *y = cleanup_milter_addr_span(pattern, &b);

    return a == b && strncasecmp(x, y, a) == 0;
}

void cleanup_milter_body_crlf(const char *data, size_t len, buf_t *out)
{
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
            buf_putc(out, '\r');
        buf_putc(out, data[i]);
    }
}
