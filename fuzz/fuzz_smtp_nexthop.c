/*
 * fuzz_smtp_nexthop - libFuzzer target for smtp/nexthop.c: the next hop of
 * a delivery request comes from transport_maps, relayhost and recipient
 * domains.  The first byte picks SMTP or LMTP, the rest is the text; a
 * parsed next hop must be bounded: a host that fits, a port in range, a
 * UNIX path that fits a sockaddr_un.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../smtp/nexthop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_nexthop h;
    char *text;
    int lmtp;

    if (size == 0)
        return 0;
    lmtp = data[0] & 1;
    text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    if (smtp_nexthop_parse(text, lmtp, lmtp ? 24 : 25, &h) == 0) {
        if (memchr(h.host, 0, sizeof(h.host)) == NULL || h.host[0] == 0)
            abort();
        if (h.kind == SMTP_NEXTHOP_UNIX && (!lmtp || strlen(h.host) >= SMTP_NEXTHOP_MAX_PATH))
            abort();
        if (h.kind == SMTP_NEXTHOP_INET && (h.port < 1 || h.port > 65535))
            abort();
        if (lmtp && h.use_mx)
            abort();
    }
    free(text);
    return 0;
}
