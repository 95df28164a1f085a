/*
 * fuzz_attr - libFuzzer target for lib/attr: every byte a peer process sends
 * over IPC goes through attr_decode.  Decodes as many messages as the input
 * holds and reads every decoded attribute, so a decoder that lets a bad
 * length through shows up as an out-of-bounds read.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"

static volatile unsigned fuzz_attr_sink;

/* fuzz_attr_touch - read every byte of a decoded message */
static void fuzz_attr_touch(const struct attr_msg *m)
{
    long long n;

    for (size_t i = 0; i < m->count; i++) {
        size_t nlen = strlen(m->v[i].name);
        if (nlen == 0 || nlen > ATTR_MAX_NAME || m->v[i].value[m->v[i].len] != 0)
            abort();
        for (size_t j = 0; j < m->v[i].len; j++)
            fuzz_attr_sink += (unsigned char)m->v[i].value[j];
    }
    if (strcmp(m->v[0].name, "proto") != 0)
        abort();
    (void)attr_proto(m);
    (void)attr_get(m, "rcpt", NULL);
    (void)attr_get_int(m, "size", 0, 1LL << 40, &n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct attr_msg m;
    size_t off = 0, used = 0;

    attr_msg_init(&m);
    while (off < size) {
        int rc = attr_decode((const char *)data + off, size - off, &used, &m);
        if (rc <= 0)
            break;
        if (used < 4 || used > size - off)
            abort();
        fuzz_attr_touch(&m);
        off += used;
    }
    attr_msg_free(&m);
    return 0;
}
