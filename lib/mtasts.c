/*
 * mtasts - MTA-STS TXT records, policy files and MX matching (RFC 8461);
 * the contract is in mtasts.h.  Plain ASCII tests throughout: the locale
 * must not change what a policy means.
 */
#include <stdlib.h>
#include <string.h>

#include "mtasts.h"
#include "smtp_ext.h"

#define MTASTS_MAX_NAME 32 /* field name: 1 + 31 characters */
#define MTASTS_MAX_AGE_DIGITS 10

/* the parser's state while it reads one policy */
struct mtasts_reader {
    struct mtasts_policy *policy;
    buf_t *err;
    size_t line;
    size_t mx_cap;
    int seen_version, seen_mode, seen_max_age;
};

static int mtasts_is_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* mtasts_is_name_char - a character of a field name after the first */
static int mtasts_is_name_char(int c)
{
    return mtasts_is_alnum(c) || c == '_' || c == '-' || c == '.';
}

static int mtasts_is_blank(int c)
{
    return c == ' ' || c == '\t';
}

static int mtasts_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static const char *mtasts_skip_blanks(const char *s)
{
    while (mtasts_is_blank((unsigned char)*s))
        s++;
    return s;
}

/* mtasts_name_length - the length of a field name at the start of s[0..n)
 * (a letter or digit, then letters, digits, '_', '-', '.'), 0 when there is
 * none or it is longer than MTASTS_MAX_NAME */
static size_t mtasts_name_length(const char *s, size_t n)
{
    size_t k = 0;

    if (n == 0 || !mtasts_is_alnum((unsigned char)s[0]))
        return 0;
    while (k < n && mtasts_is_name_char((unsigned char)s[k]))
        k++;
    return k > MTASTS_MAX_NAME ? 0 : k;
}

/* ---- the TXT record */

static int mtasts_txt_fail(buf_t *err, const char *why)
{
    buf_printf(err, "MTA-STS TXT record: %s", why);
    return -1;
}

/* mtasts_txt_field - parse "name=value" at s; the end of the field, or NULL
 * when s does not start with one */
static const char *mtasts_txt_field(const char *s, size_t *name_len, const char **value)
{
    const char *e;

    *name_len = mtasts_name_length(s, strlen(s));
    if (*name_len == 0 || s[*name_len] != '=')
        return NULL;
    *value = e = s + *name_len + 1;
    while ((unsigned char)*e > 0x20 && (unsigned char)*e < 0x7f && *e != '=' && *e != ';')
        e++;
    return e == *value ? NULL : e;
}

/* mtasts_txt_id - check and store the value of id= */
static int mtasts_txt_id(const char *value, size_t n, buf_t *id, buf_t *err)
{
    if (n > MTASTS_MAX_ID)
        return mtasts_txt_fail(err, "id longer than 32 characters");
    for (size_t i = 0; i < n; i++)
        if (!mtasts_is_alnum((unsigned char)value[i]))
            return mtasts_txt_fail(err, "id holds a character other than a letter or digit");
    buf_reset(id);
    buf_append(id, value, n);
    return 0;
}

int mtasts_txt_parse(const char *txt, buf_t *id, buf_t *err)
{
    const char *s, *value, *end;
    size_t name_len;
    int have_id = 0;

    if (strncmp(txt, "v=STSv1", 7) != 0)
        return mtasts_txt_fail(err, "does not start with v=STSv1");
    for (s = mtasts_skip_blanks(txt + 7); *s != 0; s = mtasts_skip_blanks(end)) {
        if (*s != ';')
            return mtasts_txt_fail(err, "fields must be separated by ';'");
        s = mtasts_skip_blanks(s + 1);
        if (*s == 0)
            break;
        if ((end = mtasts_txt_field(s, &name_len, &value)) == NULL)
            return mtasts_txt_fail(err, "a field is not name=value");
        if (name_len != 2 || memcmp(s, "id", 2) != 0)
            continue; /* an extension: ignored */
        if (have_id++)
            return mtasts_txt_fail(err, "more than one id");
        if (mtasts_txt_id(value, (size_t)(end - value), id, err) < 0)
            return -1;
    }
    return have_id ? 0 : mtasts_txt_fail(err, "no id");
}

/* ---- the policy file */

static int mtasts_policy_fail(struct mtasts_reader *r, const char *why)
{
    buf_printf(r->err, "MTA-STS policy line %zu: %s", r->line, why);
    return -1;
}

/* mtasts_value_is - value[0..n) is exactly word */
static int mtasts_value_is(const char *value, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(value, word, n) == 0;
}

static int mtasts_policy_mode(struct mtasts_reader *r, const char *value, size_t n)
{
    if (r->seen_mode++)
        return mtasts_policy_fail(r, "mode given twice");
    if (mtasts_value_is(value, n, "enforce"))
        r->policy->mode = MTASTS_MODE_ENFORCE;
    else if (mtasts_value_is(value, n, "testing"))
        r->policy->mode = MTASTS_MODE_TESTING;
    else if (mtasts_value_is(value, n, "none"))
        r->policy->mode = MTASTS_MODE_NONE;
    else
        return mtasts_policy_fail(r, "mode is not enforce, testing or none");
    return 0;
}

static int mtasts_policy_max_age(struct mtasts_reader *r, const char *value, size_t n)
{
    long long age = 0;

    if (r->seen_max_age++)
        return mtasts_policy_fail(r, "max_age given twice");
    if (n > MTASTS_MAX_AGE_DIGITS)
        return mtasts_policy_fail(r, "max_age has more than 10 digits");
    for (size_t i = 0; i < n; i++) {
        if (value[i] < '0' || value[i] > '9')
            return mtasts_policy_fail(r, "max_age is not a number of seconds");
        age = age * 10 + (value[i] - '0');
    }
    if (age > MTASTS_MAX_AGE)
        return mtasts_policy_fail(r, "max_age is over 31557600");
    r->policy->max_age = age;
    return 0;
}

static int mtasts_policy_mx(struct mtasts_reader *r, const char *value, size_t n)
{
    struct mtasts_policy *p = r->policy;
    size_t skip = n > 2 && memcmp(value, "*.", 2) == 0 ? 2 : 0;
    char *pattern;

    if (p->mx_count >= MTASTS_MAX_MX)
        return mtasts_policy_fail(r, "more than 100 mx lines");
    if (!smtp_ext_domain_valid(value + skip, n - skip))
        return mtasts_policy_fail(r, "mx is not a host name or *. and a host name");
    pattern = xstrndup(value, n);
    for (size_t i = 0; i < n; i++)
        pattern[i] = (char)mtasts_lower((unsigned char)pattern[i]);
    if (p->mx_count == r->mx_cap) {
        r->mx_cap = r->mx_cap ? 2 * r->mx_cap : 4;
        p->mx = xrealloc(p->mx, r->mx_cap * sizeof(*p->mx));
    }
    p->mx[p->mx_count++] = pattern;
    return 0;
}

/* mtasts_policy_field - one "key: value" line, without its line end and
 * trailing blanks */
static int mtasts_policy_field(struct mtasts_reader *r, const char *s, size_t n)
{
    size_t key = mtasts_name_length(s, n);
    const char *value;

    if (key == 0 || key == n || s[key] != ':')
        return mtasts_policy_fail(r, "not a key: value line");
    value = s + key + 1;
    while (value < s + n && mtasts_is_blank((unsigned char)*value))
        value++;
    if (value == s + n)
        return mtasts_policy_fail(r, "empty value");
    n -= (size_t)(value - s);
    if (mtasts_value_is(s, key, "version")) {
        if (r->seen_version++)
            return mtasts_policy_fail(r, "version given twice");
        if (!mtasts_value_is(value, n, "STSv1"))
            return mtasts_policy_fail(r, "version is not STSv1");
        return 0;
    }
    if (mtasts_value_is(s, key, "mode"))
        return mtasts_policy_mode(r, value, n);
    if (mtasts_value_is(s, key, "max_age"))
        return mtasts_policy_max_age(r, value, n);
    if (mtasts_value_is(s, key, "mx"))
        return mtasts_policy_mx(r, value, n);
    return 0; /* unknown keys are ignored */
}

/* mtasts_policy_line - check one line for control characters, drop its
 * trailing blanks and parse it; empty lines are skipped */
static int mtasts_policy_line(struct mtasts_reader *r, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return mtasts_policy_fail(r, "control character");
    }
    while (n > 0 && mtasts_is_blank((unsigned char)s[n - 1]))
        n--;
    return n == 0 ? 0 : mtasts_policy_field(r, s, n);
}

/* mtasts_policy_required - the fields every policy must have */
static int mtasts_policy_required(struct mtasts_reader *r)
{
    const char *missing = NULL;

    if (!r->seen_version)
        missing = "no version";
    else if (!r->seen_mode)
        missing = "no mode";
    else if (!r->seen_max_age)
        missing = "no max_age";
    else if (r->policy->mx_count == 0 && r->policy->mode != MTASTS_MODE_NONE)
        missing = "no mx";
    if (missing == NULL)
        return 0;
    buf_printf(r->err, "MTA-STS policy: %s", missing);
    return -1;
}

int mtasts_policy_parse(const char *text, size_t len, struct mtasts_policy *p, buf_t *err)
{
    struct mtasts_reader r = {p, err, 0, 0, 0, 0, 0};
    size_t pos = 0;
    int rc = 0;

    memset(p, 0, sizeof(*p));
    if (len > MTASTS_MAX_POLICY) {
        buf_printf(err, "MTA-STS policy: longer than %d bytes", MTASTS_MAX_POLICY);
        return -1;
    }
    while (rc == 0 && pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        size_t n = end - pos;
        if (nl != NULL && n > 0 && text[end - 1] == '\r')
            n--;
        r.line++;
        rc = mtasts_policy_line(&r, text + pos, n);
        pos = end + 1;
    }
    if (rc == 0)
        rc = mtasts_policy_required(&r);
    if (rc < 0)
        mtasts_policy_free(p);
    return rc;
}

/* mtasts_policy_copy - see mtasts.h */
void mtasts_policy_copy(struct mtasts_policy *dst, const struct mtasts_policy *src)
{
    dst->mode = src->mode;
    dst->max_age = src->max_age;
    dst->mx_count = src->mx_count;
    dst->mx = xcalloc(src->mx_count + 1, sizeof(*dst->mx));
    for (size_t i = 0; i < src->mx_count; i++)
        dst->mx[i] = xstrdup(src->mx[i]);
}

void mtasts_policy_free(struct mtasts_policy *p)
{
    for (size_t i = 0; i < p->mx_count; i++)
        free(p->mx[i]);
    free(p->mx);
    memset(p, 0, sizeof(*p));
}

/* ---- matching */

/* mtasts_pattern_match - pattern (lower-case) against host[0..n), a valid
 * host name */
static int mtasts_pattern_match(const char *pattern, const char *host, size_t n)
{
    if (pattern[0] == '*') {
        const char *dot = memchr(host, '.', n);
        if (dot == NULL)
            return 0;
        n -= (size_t)(dot + 1 - host);
        host = dot + 1;
        pattern += 2;
    }
    if (strlen(pattern) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (mtasts_lower((unsigned char)host[i]) != pattern[i])
            return 0;
    return 1;
}

int mtasts_mx_match(const struct mtasts_policy *p, const char *mx_host)
{
    size_t n = strlen(mx_host);

    if (n > 0 && mx_host[n - 1] == '.')
        n--;
    if (!smtp_ext_domain_valid(mx_host, n))
        return 0;
    for (size_t i = 0; i < p->mx_count; i++)
        if (mtasts_pattern_match(p->mx[i], mx_host, n))
            return 1;
    return 0;
}
