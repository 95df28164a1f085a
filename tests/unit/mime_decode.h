/*
 * mime_decode - small, strict quoted-printable and base64 decoders for the
 * tests of lib/mime_downgrade (tests/unit/test_mime_downgrade.c and
 * fuzz/fuzz_mime_downgrade.c): written apart from the encoder, so that a
 * round trip through both proves the encoding, not the code's agreement
 * with itself.  Header-only (static functions).
 */
#ifndef TERN_TEST_MIME_DECODE_H
#define TERN_TEST_MIME_DECODE_H

#include <stddef.h>
#include <string.h>

#include "buf.h"

/* mime_decode_hex - the value of a hex digit (upper case, as RFC 2045
 * wants from an encoder), or -1 */
static int mime_decode_hex(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* mime_decode_qp - decode quoted-printable text whose line end is eol into
 * out; -1 on a bad escape, a line over 76 characters, a byte an encoder
 * must escape, or white space before a line end */
static int mime_decode_qp(const char *p, size_t n, const char *eol, buf_t *out)
{
    size_t eol_len = strlen(eol), col = 0;

    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)p[i];
        if (n - i >= eol_len && memcmp(p + i, eol, eol_len) == 0) {
            if (i > 0 && (p[i - 1] == ' ' || p[i - 1] == '\t'))
                return -1;
            buf_append(out, eol, eol_len);
            i += eol_len;
            col = 0;
            continue;
        }
        if (++col > 76 || ch > 126 || (ch < 32 && ch != '\t'))
            return -1;
        if (ch != '=') {
            buf_putc(out, ch);
            i++;
            continue;
        }
        if (n - i - 1 >= eol_len && memcmp(p + i + 1, eol, eol_len) == 0) {
            i += 1 + eol_len; /* soft line break */
            col = 0;
            continue;
        }
        if (n - i < 3 || mime_decode_hex(p[i + 1]) < 0 || mime_decode_hex(p[i + 2]) < 0)
            return -1;
        buf_putc(out, mime_decode_hex(p[i + 1]) * 16 + mime_decode_hex(p[i + 2]));
        i += 3;
        col += 2;
    }
    if (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        return -1;
    return 0;
}

/* mime_decode_base64_value - a base64 digit's value, or -1 */
static int mime_decode_base64_value(char ch)
{
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *at = ch ? strchr(alphabet, ch) : NULL;

    return at ? (int)(at - alphabet) : -1;
}

/* mime_decode_base64 - decode base64 (CR and LF between groups skipped)
 * into out; -1 on any other byte, a short group or data after padding */
static int mime_decode_base64(const char *p, size_t n, buf_t *out)
{
    int group[4], have = 0, padded = 0;

    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r' || p[i] == '\n')
            continue;
        if (padded && p[i] != '=')
            return -1;
        if (p[i] == '=') {
            if (have < 2)
                return -1;
            padded++;
            group[have++] = 0;
        } else if ((group[have++] = mime_decode_base64_value(p[i])) < 0) {
            return -1;
        }
        if (have < 4)
            continue;
        unsigned long v = (unsigned long)group[0] << 18 | group[1] << 12 | group[2] << 6 | group[3];
        buf_putc(out, (int)(v >> 16) & 255);
        if (padded < 2)
            buf_putc(out, (int)(v >> 8) & 255);
        if (padded < 1)
            buf_putc(out, (int)v & 255);
        have = 0;
        if (padded)
            padded = 3; /* nothing may follow a padded group */
    }
    return have == 0 ? 0 : -1;
}

#endif
