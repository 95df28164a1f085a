/*
 * json - the JSON string writer (see json.h).
 */
#include "json.h"

size_t json_utf8_len(const unsigned char *s)
{
    size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;

    if (s[0] < 0x80)
        return s[0] ? 1 : 0;
    if (s[0] >= 0xf5 || (s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

void json_put_string(buf_t *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");

    buf_putc(out, '"');
    while (*p) {
        if (*p == '"' || *p == '\\') {
            buf_putc(out, '\\');
            buf_putc(out, *p++);
        } else if (*p < 0x20 || *p == 0x7f) {
            buf_printf(out, "\\u%04x", *p++);
        } else if (*p < 0x80) {
            buf_putc(out, *p++);
        } else {
            size_t n = json_utf8_len(p);
            if (n == 0) {
                buf_puts(out, "\\ufffd");
                p++;
            } else {
                buf_append(out, p, n);
                p += n;
            }
        }
    }
    buf_putc(out, '"');
}
