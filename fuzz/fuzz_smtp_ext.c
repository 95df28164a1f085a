/*
 * fuzz_smtp_ext - libFuzzer target for lib/smtp_ext.c: the arguments of
 * BDAT and ETRN come from any client, the help file from the admin.  Byte 0
 * picks the parser (0 BDAT, 1 ETRN, 2 help file with the topic after the
 * first NUL); the rest is the input.  Every result must keep the contract
 * of smtp_ext.h: sizes in bounds, valid lower-case domains, and HELP
 * replies made of well-formed lines that fit RFC 5321's 512 bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_ext.h"

#define FUZZ_BDAT_MAX 1000000

/* fuzz_bdat - a parse is a size within the bound or a reply */
static void fuzz_bdat(const char *arg)
{
    struct smtp_ext_bdat b;
    buf_t reply = BUF_INIT;
    enum smtp_ext_status st = smtp_ext_bdat_parse(arg, FUZZ_BDAT_MAX, &b, &reply);

    if (st == SMTP_EXT_OK && (b.size < 0 || b.size > FUZZ_BDAT_MAX || reply.len != 0))
        abort();
    if (st == SMTP_EXT_TOO_BIG && (b.size <= FUZZ_BDAT_MAX || strncmp(reply.data, "552 ", 4)))
        abort();
    if (st == SMTP_EXT_SYNTAX && strncmp(buf_cstr(&reply), "501 5.5.4 ", 10) != 0)
        abort();
    buf_free(&reply);
}

/* fuzz_etrn - a parsed domain passes the domain check, in lower case */
static void fuzz_etrn(const char *arg)
{
    enum smtp_ext_etrn_form form;
    buf_t name = BUF_INIT, reply = BUF_INIT;
    size_t i;

    if (smtp_ext_etrn_parse(arg, &form, &name, &reply) == 0) {
        if (name.len == 0 || reply.len != 0)
            abort();
        if (form != SMTP_EXT_ETRN_QUEUE && !smtp_ext_domain_valid(name.data, name.len))
            abort();
        for (i = 0; form != SMTP_EXT_ETRN_QUEUE && i < name.len; i++)
            if (name.data[i] >= 'A' && name.data[i] <= 'Z')
                abort();
    } else if (strncmp(buf_cstr(&reply), "501 5.5.4 ", 10) != 0 || name.len != 0) {
        abort();
    }
    buf_free(&name);
    buf_free(&reply);
}

/* fuzz_reply_check - lines joined by CRLF, each "214-", "214 ", "504 " or
 * "502 " and at most 510 bytes, no other CR or LF, the last one final */
static void fuzz_reply_check(const buf_t *reply)
{
    const char *p = reply->data, *end = reply->data + reply->len, *crlf;
    size_t n;

    for (;;) {
        crlf = memmem(p, (size_t)(end - p), "\r\n", 2);
        n = crlf ? (size_t)(crlf - p) : (size_t)(end - p);

        if (n < 4 || n > 510 || memchr(p, '\r', n) || memchr(p, '\n', n) || memchr(p, 0, n))
            abort();
        if (crlf ? strncmp(p, "214-", 4) != 0 : p[3] != ' ')
            abort();
        if (crlf == NULL)
            break;
        p = crlf + 2;
    }
}

/* fuzz_help - the help file, then a reply for the topic */
static void fuzz_help(const char *data, size_t len)
{
    struct smtp_ext_helpfile hf;
    const char *nul = memchr(data, 0, len);
    buf_t reply = BUF_INIT;

    smtp_ext_helpfile_init(&hf);
    smtp_ext_helpfile_parse(data, nul ? (size_t)(nul - data) : len, &hf);
    smtp_ext_help_reply(&hf, nul ? nul + 1 : "", "8.17.1 $v\r\n", &reply);
    fuzz_reply_check(&reply);
    smtp_ext_helpfile_free(&hf);
    buf_free(&reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if (size == 0)
        return 0;
    text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    switch (data[0] % 3) {
    case 0:
        fuzz_bdat(text);
        break;
    case 1:
        fuzz_etrn(text);
        break;
    default:
        fuzz_help(text, size - 1);
        break;
    }
    free(text);
    return 0;
}
