/*
 * fuzz_haproxy_proto - libFuzzer target for lib/haproxy_proto: the first
 * bytes a listener behind a load balancer reads.  Every refusal has a
 * reason; NEED_MORE never asks past HAPROXY_PROTO_MAX_HEADER bytes; a
 * parsed header lies inside the input (a v1 one ends in CR LF within 107
 * bytes, a v2 one is its announced length), every shorter prefix of it
 * needs more and bytes after it change nothing; PROXIED addresses share
 * one family; a v1 TCP4 line prints back from its addresses byte for byte.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "haproxy_proto.h"

/* check_v1_tcp4 - the line data[0..used) is the one h's addresses print */
static void check_v1_tcp4(const uint8_t *data, const struct haproxy_proto_header *h)
{
    const struct sockaddr_in *src = (const struct sockaddr_in *)&h->source;
    const struct sockaddr_in *dst = (const struct sockaddr_in *)&h->destination;
    char s[INET_ADDRSTRLEN], d[INET_ADDRSTRLEN], line[HAPROXY_PROTO_V1_MAX + 1];
    int n;

    if (!inet_ntop(AF_INET, &src->sin_addr, s, sizeof s) ||
        !inet_ntop(AF_INET, &dst->sin_addr, d, sizeof d))
        abort();
    n = snprintf(line, sizeof line, "PROXY TCP4 %s %s %u %u\r\n", s, d, ntohs(src->sin_port),
                 ntohs(dst->sin_port));
    if (n < 0 || (size_t)n != h->used || memcmp(line, data, h->used) != 0)
        abort();
}

/* check_done - the promises of a parsed header */
static void check_done(const uint8_t *data, size_t size, const struct haproxy_proto_header *h)
{
    struct haproxy_proto_header again;
    size_t i;

    if (h->used == 0 || h->used > size || h->used > HAPROXY_PROTO_MAX_HEADER)
        abort();
    if (h->version == 1 &&
        (h->used > HAPROXY_PROTO_V1_MAX || data[h->used - 2] != '\r' || data[h->used - 1] != '\n'))
        abort();
    if (h->version == 2 && h->used != HAPROXY_PROTO_V2_FIXED + ((size_t)data[14] << 8 | data[15]))
        abort();
    if (h->version != 1 && h->version != 2)
        abort();
    if (h->kind == HAPROXY_PROTO_PROXIED &&
        ((h->source.ss_family != AF_INET && h->source.ss_family != AF_INET6) ||
         h->source.ss_family != h->destination.ss_family))
        abort();
    if (h->version == 1 && h->kind == HAPROXY_PROTO_PROXIED && h->source.ss_family == AF_INET)
        check_v1_tcp4(data, h);
    for (i = 0; i < h->used; i++)
        if (haproxy_proto_parse(data, i, &again) != HAPROXY_PROTO_NEED_MORE)
            abort();
    if (haproxy_proto_parse(data, h->used, &again) != HAPROXY_PROTO_DONE ||
        memcmp(&again, h, sizeof again) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct haproxy_proto_header h;

    switch (haproxy_proto_parse(data, size, &h)) {
    case HAPROXY_PROTO_ERROR:
        if (h.why == NULL)
            abort();
        break;
    case HAPROXY_PROTO_NEED_MORE:
        if (size >= HAPROXY_PROTO_MAX_HEADER)
            abort();
        break;
    case HAPROXY_PROTO_DONE:
        check_done(data, size, &h);
        break;
    }
    return 0;
}
