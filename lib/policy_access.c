/*
 * policy_access - access table values (Postfix access(5), sendmail's
 * access file), the key orders lookups use, and reply templates.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "policy_impl.h"
#include "table_proxy.h"
#include "route.h"

void policy_access_value_init(struct policy_access_value *v)
{
    memset(v, 0, sizeof(*v));
    buf_init(&v->text);
}

void policy_access_value_free(struct policy_access_value *v)
{
    buf_free(&v->text);
}

/* policy_word - value starts with word (any case) followed by the end, a
 * blank or (colon set) ':'; *rest gets what follows, blanks skipped */
static int policy_word(const char *value, const char *word, int colon, const char **rest)
{
    size_t n = strlen(word);
    const char *p = value + n;

    if (strncasecmp(value, word, n) != 0 ||
        (*p && *p != ' ' && *p != '\t' && !(colon && *p == ':')))
        return 0;
    if (colon && *p == ':')
        p++;
    while (*p == ' ' || *p == '\t')
        p++;
    *rest = p;
    return 1;
}

/* policy_dsn_length - the length of a "D.S.N" (class 4 or 5, then one to
 * three digits twice) at p followed by a blank or the end, else 0 */
static size_t policy_dsn_length(const char *p)
{
    const char *q = p + 2;

    if ((p[0] != '4' && p[0] != '5') || p[1] != '.')
        return 0;
    for (int part = 0; part < 2; part++) {
        size_t n = strspn(q, "0123456789");
        if (n < 1 || n > 3 || (part == 0 && q[n] != '.'))
            return 0;
        q += n + (part == 0);
    }
    return *q == 0 || *q == ' ' || *q == '\t' ? (size_t)(q - p) : 0;
}

/* policy_access_code - "NNN [D.S.N] text": the DSN's class follows the
 * code (Postfix's smtpd_check does the same) */
static int policy_access_code(const char *value, struct policy_access_value *out)
{
    const char *p = value + 3;
    size_t n;

    if (!(value[0] == '4' || value[0] == '5') || !isdigit((unsigned char)value[1]) ||
        !isdigit((unsigned char)value[2]) || (value[3] && value[3] != ' ' && value[3] != '\t'))
        return 0;
    snprintf(out->code, sizeof(out->code), "%.3s", value);
    p += strspn(p, " \t");
    if ((n = policy_dsn_length(p)) > 0) {
        snprintf(out->dsn, sizeof(out->dsn), "%c%.*s", value[0], (int)n - 1, p + 1);
        p += n;
        p += strspn(p, " \t");
    }
    buf_set(&out->text, p);
    out->action = value[0] == '4' ? POLICY_ACT_DEFER : POLICY_ACT_REJECT;
    return 1;
}

/* policy_access_error - sendmail's ERROR:"550 text", ERROR:5.7.1:550 text,
 * ERROR:550 text */
static void policy_access_error(const char *rest, struct policy_access_value *out)
{
    struct route_reply rp;
    buf_t plain = BUF_INIT;
    size_t n = strlen(rest);

    if (n >= 2 && rest[0] == '"' && rest[n - 1] == '"')
        buf_append(&plain, rest + 1, n - 2);
    else
        buf_puts(&plain, rest);
    route_reply_init(&rp);
    route_error_parse(buf_cstr(&plain), 'e', &rp);
    snprintf(out->code, sizeof(out->code), "%s", rp.code);
    snprintf(out->dsn, sizeof(out->dsn), "%s", rp.dsn);
    buf_set(&out->text, buf_cstr(&rp.text));
    out->action = rp.code[0] == '4' ? POLICY_ACT_DEFER : POLICY_ACT_REJECT;
    route_reply_free(&rp);
    buf_free(&plain);
}

/* the keywords: name, action, whether text may follow (1), must follow
 * (2) or must not (0) */
static const struct {
    const char *word;
    enum policy_action action;
    int text;
} policy_access_words[] = {
    {"OK", POLICY_ACT_OK, 0},
    {"RELAY", POLICY_ACT_RELAY, 0},
    {"REJECT", POLICY_ACT_REJECT, 1},
    {"DEFER_IF_REJECT", POLICY_ACT_DEFER_IF_REJECT, 1},
    {"DEFER_IF_PERMIT", POLICY_ACT_DEFER_IF_PERMIT, 1},
    {"DEFER", POLICY_ACT_DEFER, 1},
    {"DISCARD", POLICY_ACT_DISCARD, 1},
    {"HOLD", POLICY_ACT_HOLD, 1},
    {"PREPEND", POLICY_ACT_PREPEND, 2},
    {"REDIRECT", POLICY_ACT_REDIRECT, 2},
    {"WARN", POLICY_ACT_WARN, 1},
    {"DUNNO", POLICY_ACT_DUNNO, 0},
    {"SKIP", POLICY_ACT_DUNNO, 0},
    {"FRIEND", POLICY_ACT_FRIEND, 0},
    {"HATER", POLICY_ACT_HATER, 0},
};

int policy_access_parse(const char *value, struct policy_access_value *out, buf_t *err)
{
    const char *rest;
    const char *p = value;

    out->code[0] = out->dsn[0] = 0;
    buf_reset(&out->text);
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == 0) {
        buf_set(err, "empty access table value");
        return -1;
    }
    if (strspn(p, "0123456789") == strlen(p)) { /* Postfix: a number means OK */
        out->action = POLICY_ACT_OK;
        return 0;
    }
    if (policy_access_code(p, out))
        return 0;
    if (policy_word(p, "ERROR", 1, &rest)) {
        if (*rest == 0) {
            buf_set(err, "ERROR: without a reply");
            return -1;
        }
        policy_access_error(rest, out);
        return 0;
    }
    if (policy_word(p, "QUARANTINE", 1, &rest)) {
        out->action = POLICY_ACT_HOLD;
        buf_set(&out->text, rest);
        return 0;
    }
    for (size_t i = 0; i < sizeof(policy_access_words) / sizeof(policy_access_words[0]); i++) {
        if (!policy_word(p, policy_access_words[i].word, 0, &rest))
            continue;
        if (policy_access_words[i].text == 0 && *rest) {
            buf_printf(err, "%s takes no text: \"%s\"", policy_access_words[i].word, value);
            return -1;
        }
        if (policy_access_words[i].text == 2 && *rest == 0) {
            buf_printf(err, "%s needs an argument", policy_access_words[i].word);
            return -1;
        }
        out->action = policy_access_words[i].action;
        buf_set(&out->text, rest);
        if (out->action == POLICY_ACT_PREPEND && strchr(rest, ':') == NULL) {
            buf_printf(err, "PREPEND needs a header (\"Name: value\"): \"%s\"", rest);
            return -1;
        }
        return 0;
    }
    if (islower((unsigned char)*p) &&
        strspn(p, "abcdefghijklmnopqrstuvwxyz_0123456789") == strlen(p)) {
        out->action = POLICY_ACT_RESTRICTION;
        buf_set(&out->text, p);
        return 0;
    }
    buf_printf(err, "unknown access table value \"%s\"", value);
    return -1;
}

/* ---- key orders */

/* policy_keys_add - append one key, lower-cased */
static void policy_keys_add(struct policy_keys *k, const char *key, size_t len)
{
    char *copy = xmalloc(len + 1);

    for (size_t i = 0; i < len; i++)
        copy[i] = (char)tolower((unsigned char)key[i]);
    copy[len] = 0;
    for (size_t i = 0; i < k->count; i++) {
        if (strcmp(k->v[i], copy) == 0) {
            free(copy);
            return;
        }
    }
    k->v = xrealloc(k->v, (k->count + 1) * sizeof(*k->v));
    k->v[k->count++] = copy;
}

void policy_keys_free(struct policy_keys *k)
{
    for (size_t i = 0; i < k->count; i++)
        free(k->v[i]);
    free(k->v);
    k->v = NULL;
    k->count = 0;
}

void policy_keys_domain(const char *domain, struct policy_keys *k)
{
    const char *p = domain;
    size_t len = strlen(domain);

    while (len > 0 && domain[len - 1] == '.')
        len--;
    while (p < domain + len) {
        policy_keys_add(k, p, (size_t)(domain + len - p));
        p = memchr(p, '.', (size_t)(domain + len - p));
        if (p == NULL)
            break;
        p++;
    }
}

void policy_keys_address(const char *addr, const char *delimiters, struct policy_keys *k)
{
    const char *at = strrchr(addr, '@');
    buf_t local = BUF_INIT;
    buf_t key = BUF_INIT;
    size_t base;

    if (at == NULL) { /* an unqualified name: itself, then name@ */
        policy_keys_add(k, addr, strlen(addr));
        buf_printf(&key, "%s@", addr);
        policy_keys_add(k, key.data, key.len);
        buf_free(&key);
        return;
    }
    buf_append(&local, addr, (size_t)(at - addr));
    base = addr_base_length(buf_cstr(&local), local.len, delimiters);
    policy_keys_add(k, addr, strlen(addr));
    if (base < local.len) {
        buf_printf(&key, "%.*s%s", (int)base, local.data, at);
        policy_keys_add(k, key.data, key.len);
    }
    if (at[1])
        policy_keys_domain(at + 1, k);
    buf_reset(&key);
    buf_printf(&key, "%s@", buf_cstr(&local));
    policy_keys_add(k, key.data, key.len);
    if (base < local.len) {
        buf_reset(&key);
        buf_printf(&key, "%.*s@", (int)base, local.data);
        policy_keys_add(k, key.data, key.len);
    }
    buf_free(&local);
    buf_free(&key);
}

void policy_keys_ip(const char *ip, struct policy_keys *k)
{
    char text[80];
    int sep = strchr(ip, ':') ? ':' : '.';

    snprintf(text, sizeof(text), "%s", ip);
    if (strcmp(text, "unknown") == 0 || text[0] == 0)
        return;
    do
        policy_keys_add(k, text, strlen(text));
    while (table_ip_shorten(text, sep));
}

enum table_result policy_table_find(struct table_list *l, const struct policy_keys *k,
                                    const char *tag, int untagged, buf_t *value, buf_t *matched)
{
    buf_t key = BUF_INIT;
    enum table_result res = TABLE_NOTFOUND;

    /* an order: table_order_next asks the keys after one whose remote
     * answer is not in yet in the same round trip (table_proxy.h) */
    for (size_t t = 0; t < l->count && table_order_next(res); t++) {
        size_t n = table_is_pattern(l->v[t]) && k->count > 0 ? 1 : k->count;
        for (size_t i = 0; i < n && table_order_next(res); i++) {
            for (int tagged = tag != NULL; tagged >= 0 && table_order_next(res); tagged--) {
                if (!tagged && tag != NULL && !untagged)
                    break;
                buf_reset(&key);
                if (tagged)
                    buf_puts(&key, tag);
                buf_puts(&key, k->v[i]);
                if (key.len > TABLE_KEY_MAX)
                    continue;
                res = table_order_result(res, table_lookup(l->v[t], buf_cstr(&key), value));
            }
        }
    }
    if (res == TABLE_FOUND && matched != NULL)
        buf_set(matched, buf_cstr(&key));
    buf_free(&key);
    return res;
}

void policy_reply_sendmail(buf_t *out, const char *code, const char *dsn, const char *echo,
                           const char *text)
{
    buf_reset(out);
    buf_printf(out, "%s %s %s... %s", code, dsn, echo, text);
}

/* ---- reply templates */

/* policy_var - the value of name in vars, or NULL */
static const char *policy_var(const char *const *vars, const char *name, size_t len)
{
    for (size_t i = 0; vars && vars[i]; i += 2)
        if (strlen(vars[i]) == len && strncmp(vars[i], name, len) == 0)
            return vars[i + 1];
    return NULL;
}

void policy_expand_reply(const char *template, const char *const *vars, buf_t *out)
{
    const char *p = template;

    while (*p) {
        const char *name, *end;
        size_t len;
        const char *value;

        if (*p != '$') {
            buf_putc(out, *p++);
            continue;
        }
        p++;
        if (*p == '$') {
            buf_putc(out, *p++);
            continue;
        }
        if (*p == '&') /* sendmail's "expand at run time" marker */
            p++;
        if (*p == '{') {
            const char *close = strchr(p, '}');
            const char *op;
            if (close == NULL) {
                buf_putc(out, '$');
                continue;
            }
            name = p + 1;
            op = name;
            while (op < close && (isalnum((unsigned char)*op) || *op == '_'))
                op++;
            len = (size_t)(op - name);
            value = policy_var(vars, name, len);
            if (op < close && (*op == '?' || *op == ':')) {
                int set = value != NULL && *value;
                if ((*op == '?' && set) || (*op == ':' && !set)) {
                    buf_t inner = BUF_INIT;
                    buf_append(&inner, op + 1, (size_t)(close - op - 1));
                    policy_expand_reply(buf_cstr(&inner), vars, out);
                    buf_free(&inner);
                }
            } else if (value != NULL) {
                buf_puts(out, value);
            }
            p = close + 1;
            continue;
        }
        name = p;
        end = p;
        while (isalnum((unsigned char)*end) || *end == '_')
            end++;
        len = (size_t)(end - name);
        value = len ? policy_var(vars, name, len) : NULL;
        if (value != NULL)
            buf_puts(out, value);
        else if (len == 0)
            buf_putc(out, '$');
        p = end;
    }
}
