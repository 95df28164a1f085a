/*
 * fuzz_socketmap_proto - libFuzzer target for lib/netstring and
 * lib/socketmap_proto: a socketmap server's reply bytes.  Byte 0 is the
 * netstring limit for the plain decode (0-255).  A decoded netstring lies
 * inside the input, ends with ',', encodes back to the same bytes (but for
 * leading zeros of the length) and every shorter prefix needs more; every
 * refusal has a reason; a parsed reply's text lies inside its netstring,
 * holds no control character but TAB, and OK is never empty.  The input
 * up to a NUL and after it, as map name and key, builds a request that
 * decodes to "MAP KEY".
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netstring.h"
#include "socketmap_proto.h"

/* check_netstring - the decoder's promises on data */
static void check_netstring(const char *data, size_t size, size_t max)
{
    struct netstring ns;
    const char *reason = NULL;
    buf_t again = BUF_INIT;
    enum netstring_status st = netstring_decode(data, size, max, &ns, &reason);

    if (st == NETSTRING_ERROR && reason == NULL)
        abort();
    if (st != NETSTRING_DONE)
        return;
    if (ns.len > max || ns.used > size || ns.payload < data ||
        ns.payload + ns.len != data + ns.used - 1 || data[ns.used - 1] != ',')
        abort();
    if (netstring_decode(data, ns.used - 1, max, &ns, &reason) != NETSTRING_MORE)
        abort();
    (void)netstring_decode(data, size, max, &ns, &reason);
    netstring_encode(&again, ns.payload, ns.len);
    if (data[0] != '0' || data[1] == ':')
        if (again.len != ns.used || memcmp(again.data, data, ns.used) != 0)
            abort();
    buf_free(&again);
}

/* check_reply - the reply parser's promises on data */
static void check_reply(const char *data, size_t size)
{
    struct socketmap_reply r;
    enum socketmap_status st = socketmap_proto_reply_parse(data, size, &r);
    size_t i;

    if (st == SOCKETMAP_PROTOCOL && r.why == NULL)
        abort();
    if (st == SOCKETMAP_MORE || st == SOCKETMAP_PROTOCOL)
        return;
    if (st < SOCKETMAP_OK || st > SOCKETMAP_PERM || r.used > size || r.text < data ||
        r.text + r.len > data + r.used - 1 || (st == SOCKETMAP_OK && r.len == 0) ||
        (st == SOCKETMAP_NOTFOUND && r.len != 0))
        abort();
    for (i = 0; i < r.len; i++)
        if (((unsigned char)r.text[i] < ' ' && r.text[i] != '\t') || r.text[i] == 0x7f)
            abort();
}

/* check_request - a request decodes to "MAP KEY" */
static void check_request(const char *data, size_t size)
{
    char *s = malloc(size + 1);
    const char *key;
    buf_t req = BUF_INIT;
    buf_t want = BUF_INIT;
    struct netstring ns;
    const char *reason = NULL;

    memcpy(s, data, size);
    s[size] = 0;
    key = strlen(s) < size ? s + strlen(s) + 1 : "k";
    if (socketmap_proto_request(&req, s, key) == 0) {
        buf_printf(&want, "%s %s", s, key);
        if (netstring_decode(req.data, req.len, req.len, &ns, &reason) != NETSTRING_DONE ||
            ns.used != req.len || ns.len != want.len || memcmp(ns.payload, want.data, ns.len))
            abort();
    } else if (req.len != 0) {
        abort();
    }
    buf_free(&req);
    buf_free(&want);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;

    if (size == 0)
        return 0;
    check_netstring(text + 1, size - 1, data[0]);
    check_netstring(text, size, SIZE_MAX);
    check_reply(text, size);
    check_request(text, size);
    return 0;
}
