/*
 * smtputf8 - RFC 6531/6532 address checks (see smtputf8.h).
 */
#include <stdlib.h>
#include <string.h>

#include <idn2.h>

#include "addr.h"
#include "smtp_ext.h"
#include "smtputf8.h"

/* smtputf8_continuation - 1 when b is a UTF-8 continuation byte in [lo, hi] */
static int smtputf8_continuation(unsigned char b, unsigned char lo, unsigned char hi)
{
    return b >= lo && b <= hi;
}

/* smtputf8_decode - one code point; RFC 3629's table of well-formed sequences */
size_t smtputf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n, i;

    if (len == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        n = 2;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        n = 3;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        n = 4;
    else
        return 0; /* a continuation byte, C0/C1 (overlong), F5..FF */
    if (len < n)
        return 0;
    if (s[0] == 0xE0)
        lo = 0xA0; /* overlong */
    else if (s[0] == 0xED)
        hi = 0x9F; /* surrogates */
    else if (s[0] == 0xF0)
        lo = 0x90; /* overlong */
    else if (s[0] == 0xF4)
        hi = 0x8F; /* above U+10FFFF */
    if (!smtputf8_continuation(s[1], lo, hi))
        return 0;
    *cp = s[0] & (0xFF >> (n + 1));
    for (i = 1; i < n; i++) {
        if (i > 1 && !smtputf8_continuation(s[i], 0x80, 0xBF))
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3F);
    }
    return n;
}

/* smtputf8_is_control - C0, DEL, C1 */
int smtputf8_is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

/* smtputf8_is_ascii - no byte with the high bit */
int smtputf8_is_ascii(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 0;
    return 1;
}

/* smtputf8_form - ASCII, UTF-8 or invalid */
enum smtputf8_form smtputf8_form(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    enum smtputf8_form form = SMTPUTF8_ASCII;
    uint32_t cp;
    size_t i = 0, n;

    while (i < len) {
        n = smtputf8_decode(p + i, len - i, &cp);
        if (n == 0 || smtputf8_is_control(cp))
            return SMTPUTF8_INVALID;
        if (n > 1)
            form = SMTPUTF8_UTF8;
        i += n;
    }
    return form;
}

/* smtputf8_domain_to_ascii - A-labels through libidn2 */
int smtputf8_domain_to_ascii(const char *domain, buf_t *out)
{
    size_t len = strlen(domain);
    enum smtputf8_form form = smtputf8_form(domain, len);
    char *alabels = NULL;

    if (len == 0 || form == SMTPUTF8_INVALID)
        return -1;
    if (form == SMTPUTF8_ASCII) {
        buf_append(out, domain, len);
        return 0;
    }
    if (domain[0] == '[')
        return -1; /* an address literal is ASCII or nothing */
    if (idn2_to_ascii_8z(domain, &alabels, IDN2_NONTRANSITIONAL) != IDN2_OK)
        return -1;
    /* UTS #46 maps some characters to ASCII that no host name may hold
     * (U+00A0 to ' ', U+FF3F to '_'), and libidn2 lets them through */
    if (!smtp_ext_domain_valid(alabels, strlen(alabels))) {
        idn2_free(alabels);
        return -1;
    }
    buf_puts(out, alabels);
    idn2_free(alabels);
    return 0;
}

/* smtputf8_address_to_ascii - local part ASCII, domain to A-labels */
int smtputf8_address_to_ascii(const char *addr, buf_t *out)
{
    const char *domain = addr_domain(addr);
    size_t local_len = domain ? (size_t)(domain - 1 - addr) : strlen(addr);
    size_t mark = out->len;

    if (smtputf8_form(addr, local_len) != SMTPUTF8_ASCII)
        return -1;
    buf_append(out, addr, local_len);
    if (domain == NULL)
        return 0;
    buf_putc(out, '@');
    if (smtputf8_domain_to_ascii(domain, out) < 0) {
        buf_truncate(out, mark);
        return -1;
    }
    return 0;
}

/* smtputf8_is_invisible - formatting characters that can make a log line
 * read as something else: zero-width, bidi marks and overrides, line and
 * paragraph separators, word joiners and isolates, the BOM */
static int smtputf8_is_invisible(uint32_t cp)
{
    return (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202E) ||
           (cp >= 0x2060 && cp <= 0x206F) || cp == 0xFEFF || cp == 0x061C;
}

/* smtputf8_log_safe - printable text, everything else escaped */
void smtputf8_log_safe(const char *s, size_t len, buf_t *out)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t cp;
    size_t i = 0, n;

    while (i < len) {
        n = smtputf8_decode(p + i, len - i, &cp);
        if (n == 0) {
            buf_printf(out, "\\x%02X", p[i]);
            i++;
            continue;
        }
        if (cp == '\\')
            buf_puts(out, "\\\\");
        else if (smtputf8_is_control(cp) || smtputf8_is_invisible(cp))
            buf_printf(out, "\\u{%04X}", (unsigned)cp);
        else
            buf_append(out, p + i, n);
        i += n;
    }
}
