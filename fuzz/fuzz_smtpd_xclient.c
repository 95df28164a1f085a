/*
 * fuzz_smtpd_xclient - libFuzzer target for smtpd/xclient_proto.c: the
 * arguments of XCLIENT and XFORWARD come from a proxy or content filter that
 * is trusted to name the client, not to send well-formed bytes.  Byte 0
 * picks the command (even XCLIENT, odd XFORWARD); the rest, up to a NUL, is
 * the argument.  Promises checked (abort when broken): a refusal is one
 * printable "501 5.5.4 " line; an accepted value is printable, at most 255
 * bytes, free of the characters that would break a Received header in
 * NAME, HELO and IDENT, and an accepted ADDR is an IPv4 or IPv6 address.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../smtpd/xclient.h"

/* fuzz_check_value - printable, bounded, and header-safe where it matters */
static void fuzz_check_value(const struct smtpd_xclient_args *a, int x)
{
    const buf_t *v = &a->value[x];

    if (v->len > SMTPD_XCLIENT_VALUE_MAX)
        abort();
    for (size_t i = 0; i < v->len; i++) {
        unsigned char c = (unsigned char)v->data[i];
        if (c < 0x20 || c > 0x7e)
            abort();
        if ((x == SMTPD_XATTR_NAME || x == SMTPD_XATTR_HELO || x == SMTPD_XATTR_IDENT) &&
            strchr(" <>()\\\";@", c) != NULL)
            abort();
    }
    if (!smtpd_xclient_has(a, x) && v->len != 0)
        abort();
}

/* fuzz_check_reply - one printable 501 line */
static void fuzz_check_reply(const buf_t *reply)
{
    if (reply->len < 10 || strncmp(reply->data, "501 5.5.4 ", 10) != 0)
        abort();
    for (size_t i = 0; i < reply->len; i++)
        if ((unsigned char)reply->data[i] < 0x20 || (unsigned char)reply->data[i] > 0x7e)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtpd_xclient_args a;
    buf_t arg = BUF_INIT, reply = BUF_INIT;
    int xforward;

    if (size < 1)
        return 0;
    xforward = data[0] & 1;
    buf_append(&arg, data + 1, strnlen((const char *)data + 1, size - 1));
    smtpd_xclient_args_init(&a);
    if (smtpd_xclient_parse(buf_cstr(&arg), xforward, &a, &reply) < 0) {
        fuzz_check_reply(&reply);
    } else {
        if (reply.len != 0)
            abort();
        for (int x = 0; x < SMTPD_XATTR_COUNT; x++)
            fuzz_check_value(&a, x);
        if (smtpd_xclient_has(&a, SMTPD_XATTR_ADDR) && a.addr.ss_family != AF_INET &&
            a.addr.ss_family != AF_INET6)
            abort();
    }
    smtpd_xclient_args_free(&a);
    buf_free(&arg);
    buf_free(&reply);
    return 0;
}
