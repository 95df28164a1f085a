/*
 * haproxy_proto - HAProxy's PROXY protocol header, v1 text and v2 binary
 * (lib/haproxy_proto.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "haproxy_proto.h"

static const char haproxy_v1_prefix[] = "PROXY ";
static const unsigned char haproxy_v2_signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                                       0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

#define HAPROXY_V1_FIELDS 5 /* protocol, source, destination, source port, destination port */

/* a v1 field: into the caller's bytes, not NUL-terminated */
struct haproxy_field {
    const char *p;
    size_t len;
};

/* haproxy_error - fail h with why */
static enum haproxy_proto_status haproxy_error(struct haproxy_proto_header *h, const char *why)
{
    h->why = why;
    return HAPROXY_PROTO_ERROR;
}

/* haproxy_done - succeed with kind after used bytes */
static enum haproxy_proto_status haproxy_done(struct haproxy_proto_header *h,
                                              enum haproxy_proto_kind kind, size_t used)
{
    h->kind = kind;
    h->used = used;
    return HAPROXY_PROTO_DONE;
}

/* haproxy_prefix_matches - the first min(len, plen) bytes of data are prefix's */
static int haproxy_prefix_matches(const unsigned char *data, size_t len, const void *prefix,
                                  size_t plen)
{
    return memcmp(data, prefix, len < plen ? len : plen) == 0;
}

/* haproxy_set_address - family's raw address and a port into ss */
static void haproxy_set_address(struct sockaddr_storage *ss, int family, const void *addr,
                                uint16_t port_net)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;

        sin->sin_family = AF_INET;
        sin->sin_port = port_net;
        memcpy(&sin->sin_addr, addr, 4);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = port_net;
        memcpy(&sin6->sin6_addr, addr, 16);
    }
}

/* haproxy_v1_port - a decimal port without leading zeros; -1 bad */
static long haproxy_v1_port(const struct haproxy_field *f)
{
    long value = 0;
    size_t i;

    if (f->len == 0 || f->len > 5 || (f->len > 1 && f->p[0] == '0'))
        return -1;
    for (i = 0; i < f->len; i++) {
        if (f->p[i] < '0' || f->p[i] > '9')
            return -1;
        value = value * 10 + (f->p[i] - '0');
    }
    return value <= 65535 ? value : -1;
}

/* haproxy_v1_address - the address in f, of family, into out; -1 bad */
static int haproxy_v1_address(const struct haproxy_field *f, int family, unsigned char *out)
{
    char text[INET6_ADDRSTRLEN];

    if (f->len == 0 || f->len >= sizeof text || memchr(f->p, 0, f->len) != NULL)
        return -1;
    memcpy(text, f->p, f->len);
    text[f->len] = 0;
    return inet_pton(family, text, out) == 1 ? 0 : -1;
}

/* haproxy_v1_split - the space-separated fields of line[0..len); -1 when
 * there are not exactly HAPROXY_V1_FIELDS or one is empty */
static int haproxy_v1_split(const char *line, size_t len, struct haproxy_field *fields)
{
    size_t n = 0;
    const char *end = line + len;

    while (n < HAPROXY_V1_FIELDS) {
        const char *space = memchr(line, ' ', (size_t)(end - line));
        const char *stop = space ? space : end;

        if (stop == line)
            return -1;
        fields[n].p = line;
        fields[n].len = (size_t)(stop - line);
        n++;
        if (space == NULL)
            break;
        line = space + 1;
    }
    return n == HAPROXY_V1_FIELDS && fields[n - 1].p + fields[n - 1].len == end ? 0 : -1;
}

/* haproxy_v1_fields - the TCP4/TCP6 fields into h; NULL ok, else why */
static const char *haproxy_v1_fields(const struct haproxy_field *fields, int family,
                                     struct haproxy_proto_header *h)
{
    unsigned char src[16], dst[16];
    long sport = haproxy_v1_port(&fields[3]);
    long dport = haproxy_v1_port(&fields[4]);

    if (haproxy_v1_address(&fields[1], family, src) < 0)
        return "v1 source address does not parse";
    if (haproxy_v1_address(&fields[2], family, dst) < 0)
        return "v1 destination address does not parse";
    if (sport < 0 || dport < 0)
        return "v1 port is not a decimal number 0-65535";
    haproxy_set_address(&h->source, family, src, htons((uint16_t)sport));
    haproxy_set_address(&h->destination, family, dst, htons((uint16_t)dport));
    return NULL;
}

/* haproxy_v1_line - the line between "PROXY " and CR LF (len bytes) */
static enum haproxy_proto_status haproxy_v1_line(const char *line, size_t len, size_t used,
                                                 struct haproxy_proto_header *h)
{
    struct haproxy_field fields[HAPROXY_V1_FIELDS];
    const char *why;
    int family;

    if (len >= 7 && memcmp(line, "UNKNOWN", 7) == 0 && (len == 7 || line[7] == ' '))
        return haproxy_done(h, HAPROXY_PROTO_UNKNOWN, used);
    if (haproxy_v1_split(line, len, fields) < 0)
        return haproxy_error(h, "v1 line is not PROXY TCP4|TCP6 src dst sport dport");
    if (fields[0].len == 4 && memcmp(fields[0].p, "TCP4", 4) == 0)
        family = AF_INET;
    else if (fields[0].len == 4 && memcmp(fields[0].p, "TCP6", 4) == 0)
        family = AF_INET6;
    else
        return haproxy_error(h, "v1 protocol is not TCP4, TCP6 or UNKNOWN");
    why = haproxy_v1_fields(fields, family, h);
    if (why != NULL)
        return haproxy_error(h, why);
    return haproxy_done(h, HAPROXY_PROTO_PROXIED, used);
}

/* haproxy_v1_parse - a v1 line at the front of data; its "PROXY " prefix
 * matches, so no CR or LF comes before byte 6 */
static enum haproxy_proto_status haproxy_v1_parse(const char *data, size_t len,
                                                  struct haproxy_proto_header *h)
{
    size_t limit = len < HAPROXY_PROTO_V1_MAX ? len : HAPROXY_PROTO_V1_MAX;
    size_t i;

    h->version = 1;
    for (i = 0; i < limit; i++) {
        if (data[i] == '\n')
            return haproxy_error(h, "v1 line ends without CR");
        if (data[i] != '\r')
            continue;
        if (i + 1 == HAPROXY_PROTO_V1_MAX)
            return haproxy_error(h, "v1 line longer than 107 bytes");
        if (i + 1 == len)
            return HAPROXY_PROTO_NEED_MORE;
        if (data[i + 1] != '\n')
            return haproxy_error(h, "v1 line has a CR without LF");
        return haproxy_v1_line(data + sizeof haproxy_v1_prefix - 1,
                               i - (sizeof haproxy_v1_prefix - 1), i + 2, h);
    }
    if (len >= HAPROXY_PROTO_V1_MAX)
        return haproxy_error(h, "v1 line longer than 107 bytes");
    return HAPROXY_PROTO_NEED_MORE;
}

/* haproxy_v2_tlvs - the TLVs in p[0..len) each fit; NULL ok, else why */
static const char *haproxy_v2_tlvs(const unsigned char *p, size_t len)
{
    size_t at = 0;

    while (at < len) {
        size_t value_len;

        if (len - at < 3)
            return "v2 TLV header runs past the block";
        value_len = ((size_t)p[at + 1] << 8) | p[at + 2];
        if (len - at - 3 < value_len)
            return "v2 TLV value runs past the block";
        at += 3 + value_len;
    }
    return NULL;
}

/* haproxy_v2_inet - the PROXY addresses of family after the fixed part */
static enum haproxy_proto_status haproxy_v2_inet(const unsigned char *block, size_t block_len,
                                                 int family, struct haproxy_proto_header *h)
{
    size_t alen = family == AF_INET ? 4 : 16;
    uint16_t sport, dport;
    const char *why;

    if (block_len < 2 * alen + 4)
        return haproxy_error(h, "v2 length shorter than its addresses");
    why = haproxy_v2_tlvs(block + 2 * alen + 4, block_len - 2 * alen - 4);
    if (why != NULL)
        return haproxy_error(h, why);
    memcpy(&sport, block + 2 * alen, 2);
    memcpy(&dport, block + 2 * alen + 2, 2);
    haproxy_set_address(&h->source, family, block, sport);
    haproxy_set_address(&h->destination, family, block + alen, dport);
    return haproxy_done(h, HAPROXY_PROTO_PROXIED, HAPROXY_PROTO_V2_FIXED + block_len);
}

/* haproxy_v2_proxy - a PROXY command's block, by family/transport */
static enum haproxy_proto_status haproxy_v2_proxy(const unsigned char *data, size_t block_len,
                                                  struct haproxy_proto_header *h)
{
    const unsigned char *block = data + HAPROXY_PROTO_V2_FIXED;
    size_t used = HAPROXY_PROTO_V2_FIXED + block_len;
    const char *why;

    switch (data[13]) {
    case 0x00: /* UNSPEC: the spec says ignore the block */
        return haproxy_done(h, HAPROXY_PROTO_UNKNOWN, used);
    case 0x11:
        return haproxy_v2_inet(block, block_len, AF_INET, h);
    case 0x21:
        return haproxy_v2_inet(block, block_len, AF_INET6, h);
    case 0x31:
        if (block_len < 216)
            return haproxy_error(h, "v2 length shorter than its addresses");
        why = haproxy_v2_tlvs(block + 216, block_len - 216);
        return why ? haproxy_error(h, why) : haproxy_done(h, HAPROXY_PROTO_UNKNOWN, used);
    case 0x12:
    case 0x22:
    case 0x32:
        return haproxy_error(h, "v2 datagram transport on a stream listener");
    default:
        return haproxy_error(h, "v2 unknown address family or transport");
    }
}

/* haproxy_v2_parse - a v2 header at the front of data (its signature
 * matches as far as it goes) */
static enum haproxy_proto_status haproxy_v2_parse(const unsigned char *data, size_t len,
                                                  struct haproxy_proto_header *h)
{
    size_t block_len;

    h->version = 2;
    if (len > 12 && (data[12] >> 4) != 2)
        return haproxy_error(h, "v2 unknown version");
    if (len > 12 && (data[12] & 0x0f) > 1)
        return haproxy_error(h, "v2 unknown command");
    if (len < HAPROXY_PROTO_V2_FIXED)
        return HAPROXY_PROTO_NEED_MORE;
    block_len = ((size_t)data[14] << 8) | data[15];
    if (block_len > HAPROXY_PROTO_V2_MAX_BLOCK)
        return haproxy_error(h, "v2 length over 536 bytes");
    if (len < HAPROXY_PROTO_V2_FIXED + block_len)
        return HAPROXY_PROTO_NEED_MORE;
    if ((data[12] & 0x0f) == 0) /* LOCAL: the block is discarded unread */
        return haproxy_done(h, HAPROXY_PROTO_LOCAL, HAPROXY_PROTO_V2_FIXED + block_len);
    return haproxy_v2_proxy(data, block_len, h);
}

/* haproxy_proto_parse - see haproxy_proto.h */
enum haproxy_proto_status haproxy_proto_parse(const void *data, size_t len,
                                              struct haproxy_proto_header *h)
{
    const unsigned char *bytes = data;

    memset(h, 0, sizeof *h);
    if (len == 0)
        return HAPROXY_PROTO_NEED_MORE;
    if (haproxy_prefix_matches(bytes, len, haproxy_v1_prefix, sizeof haproxy_v1_prefix - 1))
        return haproxy_v1_parse(data, len, h);
    if (haproxy_prefix_matches(bytes, len, haproxy_v2_signature, sizeof haproxy_v2_signature))
        return haproxy_v2_parse(bytes, len, h);
    return haproxy_error(h, "not a PROXY protocol header");
}

/* haproxy_proto_kind_name - see haproxy_proto.h */
const char *haproxy_proto_kind_name(enum haproxy_proto_kind kind)
{
    switch (kind) {
    case HAPROXY_PROTO_PROXIED:
        return "PROXIED";
    case HAPROXY_PROTO_LOCAL:
        return "LOCAL";
    case HAPROXY_PROTO_UNKNOWN:
        return "UNKNOWN";
    }
    return "?";
}
