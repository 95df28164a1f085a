/*
 * fuzz_proxymap_proto - the proxymap.lookup and proxymap.reply parsers
 * (lib/proxymap_proto.c) on attr messages decoded from the input: whatever
 * a peer of private/proxymap sends.  A message that parses is encoded again
 * and must parse to the same fields.
 */
#include <stdint.h>
#include <string.h>

#include "proxymap_proto.h"

/* reparse - decode the message in b into m (1) or trap */
static void reparse(buf_t *b, struct attr_msg *m)
{
    size_t used;

    if (attr_decode(b->data, b->len, &used, m) != 1)
        __builtin_trap();
    buf_free(b);
}

static void fuzz_request(const struct attr_msg *m, struct attr_msg *m2)
{
    struct proxymap_request r, again;
    buf_t b = BUF_INIT;

    if (proxymap_request_parse(m, &r) < 0)
        return;
    proxymap_request_encode(&b, &r);
    reparse(&b, m2);
    if (proxymap_request_parse(m2, &again) < 0 || again.id != r.id || again.flags != r.flags ||
        strcmp(again.table, r.table) != 0 || strcmp(again.key, r.key) != 0)
        __builtin_trap();
}

static void fuzz_reply(const struct attr_msg *m, struct attr_msg *m2)
{
    struct proxymap_reply r, again;
    buf_t b = BUF_INIT;

    if (proxymap_reply_parse(m, &r) < 0)
        return;
    proxymap_reply_encode(&b, &r);
    reparse(&b, m2);
    if (proxymap_reply_parse(m2, &again) < 0 || again.id != r.id || again.status != r.status ||
        again.value_len != r.value_len)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct attr_msg m, m2;
    size_t used;

    attr_msg_init(&m);
    attr_msg_init(&m2);
    if (attr_decode((const char *)data, size, &used, &m) == 1) {
        fuzz_request(&m, &m2);
        fuzz_reply(&m, &m2);
    }
    attr_msg_free(&m);
    attr_msg_free(&m2);
    return 0;
}
