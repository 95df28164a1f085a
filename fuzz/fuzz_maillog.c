/*
 * fuzz_maillog - libFuzzer target for lib/maillog.c and lib/json.c: the
 * fields of a log event come from outside (host names from DNS, reply
 * text, addresses, Message-IDs).  The input is split at NUL bytes into the
 * relay, the reason and the recipient; every format must write exactly one
 * line (no newline) and the json form must stay within its quotes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "maillog.h"

/* next_field - the next NUL-terminated piece of text, or "" at the end */
static const char *next_field(const char **p, const char *end)
{
    const char *s = *p;

    if (s >= end)
        return "";
    *p = s + strlen(s) + 1;
    return s;
}

/* check_line - one line, and a json line balanced in its quotes */
static void check_line(const buf_t *out, int json)
{
    int in_string = 0;

    if (memchr(out->data, '\n', out->len) || memchr(out->data, '\r', out->len))
        abort();
    for (size_t i = 0; json && i < out->len; i++) {
        if (out->data[i] == '\\' && in_string)
            i++;
        else if (out->data[i] == '"')
            in_string = !in_string;
        else if (in_string && (unsigned char)out->data[i] < 0x20)
            abort();
    }
    if (in_string)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    const char *p = text, *end = text + size;
    struct maillog_delivery d = {.queue_id = "4Rb2k1", .dsn = "2.0.0", .status = "sent"};
    buf_t out = BUF_INIT;

    memcpy(text, data, size);
    text[size] = 0;
    d.relay = next_field(&p, end);
    d.reason = next_field(&p, end);
    d.rcpt = next_field(&p, end);
    /* the producers never pass line ends: log_emit turns them into spaces */
    if (strpbrk(d.relay, "\r\n") || strpbrk(d.rcpt, "\r\n") || strpbrk(d.reason, "\r\n")) {
        free(text);
        return 0;
    }
    for (int f = MAILLOG_POSTFIX; f <= MAILLOG_JSON; f++) {
        buf_reset(&out);
        maillog_format_delivery((enum maillog_format)f, &d, &out);
        check_line(&out, f == MAILLOG_JSON);
    }
    buf_reset(&out);
    maillog_sendmail_relay(d.relay, &out);
    buf_reset(&out);
    json_put_string(&out, text);
    check_line(&out, 1);
    buf_free(&out);
    free(text);
    return 0;
}
