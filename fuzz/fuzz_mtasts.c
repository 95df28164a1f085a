/*
 * fuzz_mtasts - libFuzzer target for lib/mtasts.c (RFC 8461): the input is
 * a policy file, then after the first NUL a TXT record, then after the next
 * NUL an MX host name.  An accepted policy has a known mode, a max_age in
 * range, 1 to 100 mx patterns (none only with mode none), each lower-case
 * host name characters with "*" only as a whole first label; every pattern
 * matches a host made from it; matching is deterministic and ignores case
 * and one trailing dot.  An accepted TXT id is 1 to 32 letters and digits;
 * every refusal comes with a reason.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtasts.h"

/* fuzz_mtasts_pattern_ok - lower-case letters, digits, '-' and '.', with
 * "*." allowed only at the start, no empty label, at most 255 bytes */
static int fuzz_mtasts_pattern_ok(const char *s)
{
    size_t n = strlen(s);

    if (strncmp(s, "*.", 2) == 0)
        s += 2;
    if (n == 0 || n > 255 || *s == '.' || *s == 0 || s[strlen(s) - 1] == '.' ||
        strstr(s, "..") != NULL)
        return 0;
    for (; *s != 0; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '.'))
            return 0;
    return 1;
}

/* fuzz_mtasts_check_pattern - pattern i matches the host it stands for */
static void fuzz_mtasts_check_pattern(const struct mtasts_policy *p, const char *pattern)
{
    char host[300];

    if (!fuzz_mtasts_pattern_ok(pattern))
        abort();
    if (pattern[0] == '*') {
        snprintf(host, sizeof(host), "x%s", pattern + 1);
        if (strlen(pattern) <= 253 && mtasts_mx_match(p, host) != 1)
            abort();
    } else if (mtasts_mx_match(p, pattern) != 1) {
        abort();
    }
}

static void fuzz_mtasts_check_policy(const struct mtasts_policy *p)
{
    if (p->mode != MTASTS_MODE_NONE && p->mode != MTASTS_MODE_TESTING &&
        p->mode != MTASTS_MODE_ENFORCE)
        abort();
    if (p->max_age < 0 || p->max_age > MTASTS_MAX_AGE || p->mx_count > MTASTS_MAX_MX)
        abort();
    if (p->mx_count == 0 && p->mode != MTASTS_MODE_NONE)
        abort();
    for (size_t i = 0; i < p->mx_count; i++)
        fuzz_mtasts_check_pattern(p, p->mx[i]);
}

/* fuzz_mtasts_check_match - the same answer twice, upper-cased and with a
 * trailing dot */
static void fuzz_mtasts_check_match(const struct mtasts_policy *p, const char *host)
{
    size_t n = strlen(host);
    char *variant = malloc(n + 2);
    int m = mtasts_mx_match(p, host);

    if ((m != 0 && m != 1) || mtasts_mx_match(p, host) != m)
        abort();
    for (size_t i = 0; i <= n; i++)
        variant[i] = host[i] >= 'a' && host[i] <= 'z' ? (char)(host[i] - 'a' + 'A') : host[i];
    if (mtasts_mx_match(p, variant) != m)
        abort();
    if (n > 0 && host[n - 1] != '.') {
        variant[n] = '.';
        variant[n + 1] = 0;
        if (mtasts_mx_match(p, variant) != m)
            abort();
    }
    free(variant);
}

static void fuzz_mtasts_txt(const char *txt)
{
    buf_t id = BUF_INIT, err = BUF_INIT;

    if (mtasts_txt_parse(txt, &id, &err) == 0) {
        if (id.len == 0 || id.len > MTASTS_MAX_ID || strlen(buf_cstr(&id)) != id.len)
            abort();
        for (size_t i = 0; i < id.len; i++)
            if (!((id.data[i] >= 'a' && id.data[i] <= 'z') ||
                  (id.data[i] >= 'A' && id.data[i] <= 'Z') ||
                  (id.data[i] >= '0' && id.data[i] <= '9')))
                abort();
    } else if (err.len == 0) {
        abort();
    }
    buf_free(&id);
    buf_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t policy_len = nul != NULL ? (size_t)(nul - data) : size;
    char *rest = malloc(size + 2);
    struct mtasts_policy p;
    buf_t err = BUF_INIT;
    const char *txt, *host;

    /* the part after the policy, NUL-terminated twice so both fields exist */
    memcpy(rest, data + policy_len, size - policy_len);
    rest[size - policy_len] = 0;
    rest[size - policy_len + 1] = 0;
    txt = nul != NULL ? rest + 1 : rest;
    host = txt + strlen(txt) + 1; /* at most the second terminating NUL */
    fuzz_mtasts_txt(txt);
    if (mtasts_policy_parse((const char *)data, policy_len, &p, &err) == 0) {
        fuzz_mtasts_check_policy(&p);
        fuzz_mtasts_check_match(&p, host);
    } else if (err.len == 0 || p.mx != NULL || p.mx_count != 0) {
        abort();
    }
    mtasts_policy_free(&p);
    buf_free(&err);
    free(rest);
    return 0;
}
