/*
 * dane - TLSA records for DANE (RFC 7672): parse, judge, name.  Contract in
 * dane.h.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dane.h"

/* dane_number - a decimal 0-255 of 1 to 3 digits at *p, ended by a space;
 * *p moves past the space.  -1 when there is none. */
static int dane_number(const char **p)
{
    const char *s = *p;
    int n = 0, digits = 0;

    for (; *s >= '0' && *s <= '9' && digits < 3; s++, digits++)
        n = n * 10 + (*s - '0');
    if (digits == 0 || *s != ' ' || n > 255)
        return -1;
    *p = s + 1;
    return n;
}

/* dane_hex_digit - the value of one hex digit (either case), -1 when c is
 * none */
static int dane_hex_digit(char c)
{
    static const char digits[] = "0123456789abcdef";
    const char *d = c != 0 ? strchr(digits, tolower((unsigned char)c)) : NULL;

    return d != NULL ? (int)(d - digits) : -1;
}

/* dane_data_len_ok - len fits mtype (a digest has its length; unknown
 * matching types are judged by dane_tlsa_usable, not here) */
static int dane_data_len_ok(int mtype, size_t len)
{
    if (len == 0 || len > DANE_TLSA_MAX_DATA)
        return 0;
    if (mtype == DANE_MTYPE_SHA256)
        return len == 32;
    if (mtype == DANE_MTYPE_SHA512)
        return len == 64;
    return 1;
}

/* dane_hex_decode - the hex text hex into a malloc'ed *data of *len bytes;
 * -1 on an odd length or a non-hex digit */
static int dane_hex_decode(const char *hex, unsigned char **data, size_t *len)
{
    size_t n = strlen(hex);
    unsigned char *d;

    if (n % 2 != 0 || n / 2 > DANE_TLSA_MAX_DATA)
        return -1;
    d = xmalloc(n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = dane_hex_digit(hex[2 * i]), lo = dane_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(d);
            return -1;
        }
        d[i] = (unsigned char)(hi << 4 | lo);
    }
    *data = d;
    *len = n / 2;
    return 0;
}

/* dane_tlsa_parse - see dane.h */
int dane_tlsa_parse(const char *text, struct dane_tlsa *r)
{
    const char *p = text;
    int usage, selector, mtype;

    memset(r, 0, sizeof(*r));
    usage = dane_number(&p);
    selector = usage < 0 ? -1 : dane_number(&p);
    mtype = selector < 0 ? -1 : dane_number(&p);
    if (mtype < 0 || dane_hex_decode(p, &r->data, &r->len) < 0)
        return -1;
    if (!dane_data_len_ok(mtype, r->len)) {
        free(r->data);
        memset(r, 0, sizeof(*r));
        return -1;
    }
    r->usage = (unsigned char)usage;
    r->selector = (unsigned char)selector;
    r->mtype = (unsigned char)mtype;
    return 0;
}

/* dane_tlsa_usable - see dane.h */
int dane_tlsa_usable(const struct dane_tlsa *r)
{
    if (r->usage != DANE_USAGE_DANE_TA && r->usage != DANE_USAGE_DANE_EE)
        return 0;
    if (r->selector != DANE_SELECTOR_CERT && r->selector != DANE_SELECTOR_SPKI)
        return 0;
    if (r->mtype > DANE_MTYPE_SHA512)
        return 0;
    return r->data != NULL && dane_data_len_ok(r->mtype, r->len);
}

/* dane_tlsa_set - see dane.h */
size_t dane_tlsa_set(char *const *texts, struct dane_tlsa **out, size_t *count)
{
    size_t n = 0, dropped = 0;

    *out = NULL;
    *count = 0;
    while (texts != NULL && texts[n] != NULL)
        n++;
    if (n == 0)
        return 0;
    *out = xcalloc(n, sizeof(**out));
    for (size_t i = 0; i < n; i++) {
        struct dane_tlsa r;
        if (dane_tlsa_parse(texts[i], &r) == 0 && dane_tlsa_usable(&r)) {
            (*out)[(*count)++] = r;
            continue;
        }
        free(r.data);
        dropped++;
    }
    if (*count == 0) {
        free(*out);
        *out = NULL;
    }
    return dropped;
}

/* dane_tlsa_free - see dane.h */
void dane_tlsa_free(struct dane_tlsa *set, size_t count)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        free(set[i].data);
    free(set);
}

/* dane_tlsa_name - see dane.h */
void dane_tlsa_name(const char *host, int port, buf_t *out)
{
    size_t n = strlen(host);

    if (n > 0 && host[n - 1] == '.')
        n--;
    buf_reset(out);
    buf_printf(out, "_%d._tcp.%.*s", port, (int)n, host);
}
