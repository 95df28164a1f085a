/*
 * fuzz_smtp_reply - libFuzzer target for smtp/reply.c: what a remote SMTP
 * server sends is untrusted.  Splits the input into CRLF/LF lines, feeds them
 * to the reply parser, and runs the DSN and EHLO parsers on every complete
 * reply.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../smtp/reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *end = p + size;
    struct smtp_reply r;
    struct smtp_ehlo e;
    char dsn[16];

    smtp_reply_init(&r);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        int rc;
        if (len > 0 && p[len - 1] == '\r')
            len--;
        rc = smtp_reply_feed(&r, p, len);
        if (rc == 1) {
            smtp_reply_dsn(&r, dsn, sizeof(dsn));
            smtp_ehlo_parse(&r, &e);
        }
        if (rc != 0)
            smtp_reply_reset(&r);
        p = nl ? nl + 1 : end;
    }
    smtp_reply_free(&r);
    return 0;
}
