/*
 * fuzz_smtputf8 - libFuzzer target for lib/smtputf8.c: addresses with
 * UTF-8 come from any client.  The input is the address.  Checks: the
 * decoder agrees with a re-encoding of what it decoded, the log-safe form
 * is always valid UTF-8 without controls, the A-label forms are ASCII.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtputf8.h"

/* fuzz_encode - the UTF-8 of cp */
static size_t fuzz_encode(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* fuzz_decoder - every decoded code point is in range and re-encodes to
 * the same bytes (so no overlong form was accepted) */
static void fuzz_decoder(const uint8_t *data, size_t size)
{
    unsigned char again[4];
    uint32_t cp;
    size_t i = 0, n;

    while (i < size) {
        n = smtputf8_decode(data + i, size - i, &cp);
        if (n == 0) {
            i++;
            continue;
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            abort();
        if (fuzz_encode(cp, again) != n || memcmp(again, data + i, n) != 0)
            abort();
        i += n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum smtputf8_form form = smtputf8_form((const char *)data, size);
    buf_t safe = BUF_INIT, ascii = BUF_INIT;
    char *text;

    fuzz_decoder(data, size);
    if (form == SMTPUTF8_ASCII && !smtputf8_is_ascii((const char *)data, size))
        abort();
    smtputf8_log_safe((const char *)data, size, &safe);
    if (smtputf8_form(safe.data ? safe.data : "", safe.len) == SMTPUTF8_INVALID)
        abort();
    text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    if (smtputf8_address_to_ascii(text, &ascii) == 0 &&
        smtputf8_form(buf_cstr(&ascii), ascii.len) != SMTPUTF8_ASCII)
        abort();
    buf_reset(&ascii);
    if (smtputf8_domain_to_ascii(text, &ascii) == 0 && !smtputf8_is_ascii(ascii.data, ascii.len))
        abort();
    free(text);
    buf_free(&safe);
    buf_free(&ascii);
    return 0;
}
