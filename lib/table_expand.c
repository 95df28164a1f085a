/*
 * table_expand - Postfix's %-expansion of remote table templates, the
 * escaping of LDAP filters, DNs and SQL literals, and the "domain"
 * restriction (lib/table_expand.h).
 */
#include <string.h>
#include <strings.h>

#include "table_expand.h"

/* what a template takes from its value and from its key */
struct table_expand_needs {
    int value_user;   /* %u */
    int value_domain; /* %d */
    int key_user;     /* %U */
    int key_domain;   /* %D, %1..%9 */
    int labels;       /* highest N of %N */
};

/* one address cut at its last '@' */
struct table_expand_addr {
    const char *all;
    const char *user;   /* == all */
    size_t user_len;    /* the whole string when there is no '@' */
    const char *domain; /* after the last '@', or NULL */
};

/* table_expand_scan - the needs of format; 0, or -1 on an unknown % */
static int table_expand_scan(const char *format, struct table_expand_needs *n, const char **reason)
{
    const char *p;

    memset(n, 0, sizeof *n);
    for (p = format; *p; p++) {
        if (*p != '%')
            continue;
        switch (*++p) {
        case '%':
        case 's':
        case 'S':
            break;
        case 'u':
            n->value_user = 1;
            break;
        case 'd':
            n->value_domain = 1;
            break;
        case 'U':
            n->key_user = 1;
            break;
        case 'D':
            n->key_domain = 1;
            break;
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7':
        case '8':
        case '9':
            n->key_domain = 1;
            if (*p - '0' > n->labels)
                n->labels = *p - '0';
            break;
        default:
            *reason = *p ? "unknown % expansion in template" : "template ends with '%'";
            return -1;
        }
    }
    return 0;
}

/* table_expand_check - see table_expand.h */
int table_expand_check(const char *format, const char **reason)
{
    struct table_expand_needs n;

    return table_expand_scan(format, &n, reason);
}

/* table_expand_split - cut s at its last '@'; -1 (skip) when the template
 * needs a domain s lacks, or a local part s has empty */
static int table_expand_split(const char *s, int need_user, int need_domain,
                              struct table_expand_addr *a, const char **reason)
{
    const char *at = strrchr(s, '@');

    a->all = s;
    a->user = s;
    a->user_len = at ? (size_t)(at - s) : strlen(s);
    a->domain = at ? at + 1 : NULL;
    if (need_domain && (a->domain == NULL || *a->domain == 0)) {
        *reason = "the key has no domain part";
        return -1;
    }
    if (need_user && at == s) {
        *reason = "the key has an empty local part";
        return -1;
    }
    return 0;
}

/* table_expand_label - the n-th label of domain from the right (1 is the
 * last); -1 when there are fewer labels or that one is empty */
static int table_expand_label(const char *domain, int n, const char **label, size_t *len)
{
    const char *end = domain + strlen(domain);
    const char *start = end;

    for (;;) {
        start = end;
        while (start > domain && start[-1] != '.')
            start--;
        if (--n == 0)
            break;
        if (start == domain)
            return -1;
        end = start - 1;
    }
    if (start == end)
        return -1;
    *label = start;
    *len = (size_t)(end - start);
    return 0;
}

/* table_expand_labels_ok - every label %1..%labels needs is there */
static int table_expand_labels_ok(const char *domain, int labels, const char **reason)
{
    const char *label;
    size_t len;
    int i;

    for (i = 1; i <= labels; i++) {
        if (table_expand_label(domain, i, &label, &len) < 0) {
            *reason = "the key's domain has too few labels for the template";
            return -1;
        }
    }
    return 0;
}

/* table_expand_put - one substituted piece through escape */
static int table_expand_put(buf_t *out, const char *s, size_t len, table_expand_escape_fn escape)
{
    if (escape)
        return escape(out, s, len);
    buf_append(out, s, len);
    return 0;
}

/* table_expand_piece - the text one % letter stands for */
static void table_expand_piece(char c, const struct table_expand_addr *v,
                               const struct table_expand_addr *k, const char **s, size_t *len)
{
    const struct table_expand_addr *a = (c == 'u' || c == 'd' || c == 's') ? v : k;

    if (c == 's' || c == 'S') {
        *s = a->all;
        *len = strlen(a->all);
    } else if (c == 'u' || c == 'U') {
        *s = a->user;
        *len = a->user_len;
    } else if (c == 'd' || c == 'D') {
        *s = a->domain;
        *len = strlen(a->domain);
    } else {
        /* table_expand_labels_ok has vouched for this label */
        (void)table_expand_label(a->domain, c - '0', s, len);
    }
}

/* table_expand_write - the expansion proper, once every part is known */
static int table_expand_write(const char *format, const struct table_expand_addr *v,
                              const struct table_expand_addr *k, table_expand_escape_fn escape,
                              buf_t *out)
{
    const char *p;
    const char *s = "";
    size_t len = 0;

    for (p = format; *p; p++) {
        if (*p != '%') {
            buf_putc(out, *p);
            continue;
        }
        if (*++p == '%') {
            buf_putc(out, '%');
            continue;
        }
        table_expand_piece(*p, v, k, &s, &len);
        if (table_expand_put(out, s, len, escape) < 0)
            return -1;
    }
    return 0;
}

/* table_expand - see table_expand.h */
enum table_expand_status table_expand(const char *format, const char *value, const char *key,
                                      table_expand_escape_fn escape, buf_t *out,
                                      const char **reason)
{
    struct table_expand_needs n;
    struct table_expand_addr v;
    struct table_expand_addr k;
    size_t mark = out->len;

    if (table_expand_scan(format, &n, reason) < 0)
        return TABLE_EXPAND_ERROR;
    if (*value == 0) {
        *reason = key ? "empty lookup result" : "empty lookup key";
        return TABLE_EXPAND_SKIP;
    }
    if (key == NULL) {
        n.value_user |= n.key_user;
        n.value_domain |= n.key_domain;
        n.key_user = n.key_domain = 0;
    }
    if (table_expand_split(value, n.value_user, n.value_domain, &v, reason) < 0)
        return TABLE_EXPAND_SKIP;
    k = v;
    if (key && table_expand_split(key, n.key_user, n.key_domain, &k, reason) < 0)
        return TABLE_EXPAND_SKIP;
    if (n.labels && table_expand_labels_ok(k.domain, n.labels, reason) < 0)
        return TABLE_EXPAND_SKIP;
    if (table_expand_write(format, &v, &k, escape, out) < 0) {
        buf_truncate(out, mark);
        *reason = "the key holds a byte the backend cannot take";
        return TABLE_EXPAND_ERROR;
    }
    return TABLE_EXPAND_OK;
}

/* table_expand_domain_allowed - see table_expand.h */
int table_expand_domain_allowed(const char *const *domains, size_t count, const char *key)
{
    const char *at = strrchr(key, '@');
    size_t i;

    if (count == 0)
        return 1;
    if (at == NULL || at == key)
        return 0;
    for (i = 0; i < count; i++) {
        const char *name = domains[i];
        int negate = name[0] == '!';

        if (strcasecmp(name + negate, at + 1) == 0)
            return !negate;
    }
    return 0;
}

/* table_expand_hex - append \xx for byte c */
static void table_expand_hex(buf_t *out, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";

    buf_putc(out, '\\');
    buf_putc(out, hex[c >> 4]);
    buf_putc(out, hex[c & 15]);
}

/* table_expand_unsafe - a control character or a non-ASCII byte */
static int table_expand_unsafe(unsigned char c)
{
    return c < ' ' || c >= 0x7f;
}

/* table_expand_escape_ldap_filter - see table_expand.h */
int table_expand_escape_ldap_filter(buf_t *out, const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (table_expand_unsafe(c) || strchr("*()\\", c))
            table_expand_hex(out, c);
        else
            buf_putc(out, c);
    }
    return 0;
}

/* table_expand_escape_ldap_dn - see table_expand.h */
int table_expand_escape_ldap_dn(buf_t *out, const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int edge = (i == 0 && (c == ' ' || c == '#')) || (i == len - 1 && c == ' ');

        if (edge || table_expand_unsafe(c) || strchr("\"+,;<>=\\", c))
            table_expand_hex(out, c);
        else
            buf_putc(out, c);
    }
    return 0;
}

/* table_expand_escape_sql_literal - see table_expand.h */
int table_expand_escape_sql_literal(buf_t *out, const char *s, size_t len)
{
    if (memchr(s, 0, len))
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\'')
            buf_putc(out, '\'');
        buf_putc(out, s[i]);
    }
    return 0;
}
