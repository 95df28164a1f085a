/*
 * fuzz_smtpd_cmd - libFuzzer target for smtpd/proto: SMTP command lines,
 * MAIL/RCPT arguments with ESMTP parameters, and DATA content all come
 * straight from clients.  The first input byte picks the mode; the rest is
 * the client's bytes.  Promises checked (abort when broken): a reply is one
 * line "NNN text" with no CR/LF; echoes are printable ASCII or valid UTF-8
 * (SMTPUTF8); an address that proto_address_check passes is ASCII, or
 * valid UTF-8 under SMTPUTF8 only; decoded content holds
 * only CRLF line ends; feeding the content in pieces gives the same result
 * as feeding it at once.  The command bytes are also an identd reply line
 * (proto_ident_parse).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../smtpd/proto.h"
#include "buf.h"
#include "smtputf8.h"

/* fuzz_printable - every byte is printable ASCII */
static void fuzz_check_printable(const buf_t *b)
{
    for (size_t i = 0; i < b->len; i++) {
        if ((unsigned char)b->data[i] < 0x20 || (unsigned char)b->data[i] > 0x7e)
            abort();
    }
}

/* fuzz_check_echo - printable ASCII, or valid UTF-8 (RFC 6531) */
static void fuzz_check_echo(const buf_t *b)
{
    if (smtputf8_form(b->data, b->len) != SMTPUTF8_UTF8)
        fuzz_check_printable(b);
}

/* fuzz_check_reply - "NNN " then printable text */
static void fuzz_check_reply(const buf_t *reply)
{
    if (reply->len < 4 || reply->data[0] < '2' || reply->data[0] > '5' || reply->data[3] != ' ')
        abort();
    fuzz_check_printable(reply);
}

/* fuzz_check_address - proto_address_check with and without SMTPUTF8 */
static void fuzz_check_address(const buf_t *addr)
{
    buf_t reply = BUF_INIT;

    for (int smtputf8 = 0; smtputf8 <= 1; smtputf8++) {
        enum smtputf8_form form = smtputf8_form(addr->data, addr->len);
        if (proto_address_check(buf_cstr(addr), smtputf8, smtputf8, &reply) < 0)
            fuzz_check_reply(&reply);
        else if (form == SMTPUTF8_INVALID || (form == SMTPUTF8_UTF8 && !smtputf8))
            abort();
    }
    buf_free(&reply);
}

/* fuzz_command - one command line */
static void fuzz_command(const char *line)
{
    const char *arg = NULL;
    enum proto_cmd cmd = proto_cmd_parse(line, &arg);
    struct proto_mail m;
    struct proto_rcpt r;
    buf_t reply = BUF_INIT;

    if (arg == NULL || arg < line || arg > line + strlen(line))
        abort();
    proto_mail_init(&m);
    proto_rcpt_init(&r);
    if (cmd == PROTO_CMD_MAIL || cmd == PROTO_CMD_UNKNOWN) {
        if (proto_mail_parse(arg, 1000, &m, &reply) == 0) {
            fuzz_check_echo(&m.echo);
            fuzz_check_address(&m.addr);
        } else {
            fuzz_check_reply(&reply);
        }
    }
    if (cmd == PROTO_CMD_RCPT || cmd == PROTO_CMD_UNKNOWN) {
        if (proto_rcpt_parse(arg, &r, &reply) == 0) {
            fuzz_check_echo(&r.echo);
            fuzz_check_printable(&r.orcpt);
            fuzz_check_address(&r.addr);
        } else {
            fuzz_check_reply(&reply);
        }
    }
    proto_mail_free(&m);
    proto_rcpt_free(&r);
    buf_free(&reply);
}

/* fuzz_check_crlf - only CRLF pairs as line ends */
static void fuzz_check_crlf(const buf_t *b)
{
    for (size_t i = 0; i < b->len; i++) {
        if (b->data[i] == '\r' && (i + 1 >= b->len || b->data[i + 1] != '\n'))
            abort();
        if (b->data[i] == '\n' && (i == 0 || b->data[i - 1] != '\r'))
            abort();
    }
}

/* fuzz_data - DATA content, whole and in pieces of 1..7 bytes */
static void fuzz_data(const char *in, size_t len)
{
    struct proto_data_decoder d;
    buf_t whole = BUF_INIT;
    buf_t split = BUF_INIT;
    int done_whole = 0;
    int done = 0;
    size_t used_whole;
    size_t used = 0;

    proto_data_init(&d);
    used_whole = proto_data_decode(&d, in, len, &whole, &done_whole);
    if (used_whole > len || (!done_whole && used_whole != len))
        abort();
    proto_data_init(&d);
    while (!done && used < len) {
        size_t n = 1 + (used % 7);
        if (n > len - used)
            n = len - used;
        used += proto_data_decode(&d, in + used, n, &split, &done);
    }
    if (done != done_whole || used != used_whole || split.len != whole.len ||
        (whole.len > 0 && memcmp(split.data, whole.data, whole.len) != 0))
        abort();
    if (done)
        fuzz_check_crlf(&whole);
    buf_free(&whole);
    buf_free(&split);
}

/* fuzz_ident - the same bytes as an identd's reply line (RFC 1413): the
 * user is printable, bounded, and has no '@' */
static void fuzz_ident(const char *line)
{
    buf_t user = BUF_INIT;

    if (proto_ident_parse(line, &user) == 0) {
        fuzz_check_printable(&user);
        if (user.len == 0 || user.len > PROTO_IDENT_USER_MAX || memchr(user.data, '@', user.len))
            abort();
    }
    buf_free(&user);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if (size < 1)
        return 0;
    if (data[0] & 1) {
        fuzz_data((const char *)data + 1, size - 1);
        return 0;
    }
    text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    text[strcspn(text, "\r\n")] = '\0';
    fuzz_command(text);
    fuzz_ident(text);
    free(text);
    return 0;
}
