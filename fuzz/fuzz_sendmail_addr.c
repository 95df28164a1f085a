/*
 * fuzz_sendmail_addr - libFuzzer target for tools/sendmail_addr.c: the
 * To:/Cc:/Bcc: address lists `sendmail -t` reads from a user's stdin
 * (display names, groups, comments, quoting, folding).  Every address the
 * list parser accepts must pass sendmail_addr_valid (it becomes an envelope
 * recipient and an argument of terndrop), and a rejection says why.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "sendmail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct submission s;
    buf_t text = BUF_INIT, err = BUF_INIT;

    buf_append(&text, data, size);
    submission_init(&s);
    /* a header value is a C string: stop at a NUL like the reader does */
    if (sendmail_addr_list(buf_cstr(&text), &s, &err) < 0 && err.len == 0)
        abort();
    for (size_t i = 0; i < s.rcpt_count; i++)
        if (!sendmail_addr_valid(s.rcpts[i]) || s.rcpts[i][0] == '-')
            abort();
    submission_free(&s);
    buf_free(&text);
    buf_free(&err);
    return 0;
}
