/*
 * addr - SMTP path parsing and address helpers (see addr.h).
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "addr.h"

/* addr_scan_mailbox - check a mailbox (local@domain or local); 0 ok */
static int addr_scan_mailbox(const char *s, size_t n, const char **err)
{
    size_t i = 0;
    int quoted = 0, at = 0;

    if (n > ADDR_MAX_LENGTH) {
        *err = "address too long";
        return -1;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 32 || c == 127) {
            *err = "control character in address";
            return -1;
        }
        if (quoted) {
            if (c == '\\' && i + 1 < n) {
                unsigned char e = (unsigned char)s[++i];
                if (e < 32 || e == 127) {
                    *err = "control character in address";
                    return -1;
                }
            } else if (c == '"')
                quoted = 0;
            continue;
        }
        if (c == '"' && !at) {
            quoted = 1;
        } else if (c == '@') {
            if (i == 0) {
                *err = "empty local part";
                return -1;
            }
            at = 1;
        } else if (c == ' ' || c == '<' || c == '>' || c == '(' || c == ')' || c == ',' ||
                   c == ';' || c == '\\') {
            *err = "bad character in address";
            return -1;
        }
    }
    if (quoted) {
        *err = "unterminated quoted string";
        return -1;
    }
    if (n > 0 && s[n - 1] == '@') {
        *err = "empty domain";
        return -1;
    }
    return 0;
}

/* addr_skip_route - skip "@a,@b:" at the start of a path; 0 ok */
static int addr_skip_route(const char **p, const char *end, const char **err)
{
    const char *s = *p;
    const char *colon;

    if (s >= end || *s != '@')
        return 0;
    colon = memchr(s, ':', (size_t)(end - s));
    if (colon == NULL) {
        *err = "source route without ':'";
        return -1;
    }
    for (const char *q = s; q < colon; q++) {
        if (!(isalnum((unsigned char)*q) || *q == '@' || *q == ',' || *q == '.' || *q == '-' ||
              *q == '[' || *q == ']')) {
            *err = "bad source route";
            return -1;
        }
    }
    *p = colon + 1;
    return 0;
}

/* addr_find_close - the '>' that ends a path, skipping quoted strings */
static const char *addr_find_close(const char *s)
{
    int quoted = 0;
    for (; *s; s++) {
        if (quoted && *s == '\\' && s[1])
            s++;
        else if (*s == '"')
            quoted = !quoted;
        else if (!quoted && *s == '>')
            return s;
    }
    return NULL;
}

int addr_parse_path(const char *arg, buf_t *addr, const char **params, const char **err)
{
    const char *p = arg, *start, *end;

    buf_reset(addr);
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '<') {
        start = p + 1;
        end = addr_find_close(start);
        if (end == NULL) {
            *err = "missing '>'";
            return -1;
        }
        int routed = *start == '@';
        if (addr_skip_route(&start, end, err) < 0)
            return -1;
        if (routed && start == end) {
            *err = "source route without a mailbox";
            return -1;
        }
        p = end + 1;
        if (*p && *p != ' ' && *p != '\t') {
            *err = "garbage after '>'";
            return -1;
        }
    } else {
        int quoted = 0;
        start = p;
        for (; *p && (quoted || (*p != ' ' && *p != '\t')); p++) {
            if (quoted && *p == '\\' && p[1])
                p++;
            else if (*p == '"')
                quoted = !quoted;
        }
        end = p;
        if (end == start) {
            *err = "missing address";
            return -1;
        }
    }
    if (addr_scan_mailbox(start, (size_t)(end - start), err) < 0)
        return -1;
    buf_append(addr, start, (size_t)(end - start));
    while (*p == ' ' || *p == '\t')
        p++;
    *params = p;
    return 0;
}

const char *addr_domain(const char *addr)
{
    const char *at = NULL;
    int quoted = 0;
    for (const char *p = addr; *p; p++) {
        if (quoted && *p == '\\' && p[1])
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (!quoted && *p == '@')
            at = p;
    }
    return at ? at + 1 : NULL;
}

void addr_local_part(const char *addr, buf_t *out)
{
    const char *d = addr_domain(addr);
    buf_reset(out);
    buf_append(out, addr, d ? (size_t)(d - 1 - addr) : strlen(addr));
}

int addr_is_qualified(const char *addr)
{
    const char *d = addr_domain(addr);
    return d != NULL && *d != 0;
}

void addr_qualify(buf_t *addr, const char *domain)
{
    if (addr->len == 0 || addr_is_qualified(buf_cstr(addr)))
        return;
    buf_putc(addr, '@');
    buf_puts(addr, domain);
}

size_t addr_base_length(const char *local, size_t n, const char *delimiters)
{
    if (delimiters == NULL || *delimiters == 0)
        return n;
    for (size_t i = 1; i < n; i++)
        if (strchr(delimiters, local[i]))
            return i;
    return n;
}

int addr_domain_in_list(const char *domain, char *const *list)
{
    size_t n;
    if (domain == NULL || list == NULL)
        return 0;
    n = strlen(domain);
    if (n > 0 && domain[n - 1] == '.')
        n--;
    for (; *list; list++)
        if (strlen(*list) == n && strncasecmp(*list, domain, n) == 0)
            return 1;
    return 0;
}

int xtext_decode(const char *in, buf_t *out)
{
    static const char hex[] = "0123456789ABCDEF";
    buf_reset(out);
    for (const char *p = in; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '+') {
            const char *h1 = p[1] ? strchr(hex, p[1]) : NULL;
            const char *h2 = (h1 && p[2]) ? strchr(hex, p[2]) : NULL;
            if (!h1 || !h2)
                return -1;
            buf_putc(out, (int)((h1 - hex) * 16 + (h2 - hex)));
            p += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return -1;
        } else {
            buf_putc(out, c);
        }
    }
    return 0;
}

void xtext_encode(const char *in, buf_t *out)
{
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (*p < 33 || *p > 126 || *p == '+' || *p == '=')
            buf_printf(out, "+%02X", *p);
        else
            buf_putc(out, *p);
    }
}
