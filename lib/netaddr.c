/*
 * netaddr - IP addresses and CIDR matching (see netaddr.h).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

int netaddr_parse_net(const char *s, struct netaddr_net *out)
{
    char host[128];
    const char *slash = strrchr(s, '/');
    size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
    int max;

    if (hlen == 0 || hlen >= sizeof(host))
        return -1;
    memcpy(host, s, hlen);
    host[hlen] = 0;
    if (host[0] == '[') {
        if (hlen < 3 || host[hlen - 1] != ']')
            return -1;
        memmove(host, host + 1, hlen - 2);
        host[hlen - 2] = 0;
    }
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    out->prefix = max;
    if (slash) {
        char *end;
        if (!isdigit((unsigned char)slash[1]))
            return -1;
        long p = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || p < 0 || p > max)
            return -1;
        out->prefix = (int)p;
    }
    return 0;
}

/* netaddr_bytes - the address bytes of sa; IPv4-mapped IPv6 becomes IPv4 */
static int netaddr_bytes(const struct sockaddr *sa, unsigned char *out)
{
    if (sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return AF_INET;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            memcpy(out, a->s6_addr + 12, 4);
            return AF_INET;
        }
        memcpy(out, a->s6_addr, 16);
        return AF_INET6;
    }
    return -1;
}

/* netaddr_prefix_equal - the first bits of a and b are equal */
static int netaddr_prefix_equal(const unsigned char *a, const unsigned char *b, int bits)
{
    int bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)bytes) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

int netaddr_match(const struct sockaddr *sa, const struct netaddr_net *nets, size_t count)
{
    unsigned char a[16];
    int family = netaddr_bytes(sa, a);

    for (size_t i = 0; i < count; i++)
        if (nets[i].family == family && netaddr_prefix_equal(a, nets[i].addr, nets[i].prefix))
            return 1;
    return 0;
}

void netaddr_format(const struct sockaddr *sa, char *out, size_t outlen)
{
    unsigned char a[16];
    int family = netaddr_bytes(sa, a);

    if (family < 0 || inet_ntop(family, a, out, (socklen_t)outlen) == NULL)
        snprintf(out, outlen, "unknown");
}

int netaddr_parse_hostport(const char *s, char *host, size_t hostlen, int *port, int defport,
                           int *bracketed)
{
    const char *hend, *rest;

    *bracketed = 0;
    if (*s == '[') {
        hend = strchr(s, ']');
        if (hend == NULL)
            return -1;
        s++;
        rest = hend + 1;
        *bracketed = 1;
    } else {
        hend = strrchr(s, ':');
        if (hend && strchr(s, ':') != hend) /* bare IPv6 without brackets */
            hend = NULL;
        if (hend == NULL)
            hend = s + strlen(s);
        rest = hend;
    }
    if (hend == s || (size_t)(hend - s) >= hostlen)
        return -1;
    memcpy(host, s, (size_t)(hend - s));
    host[hend - s] = 0;
    *port = defport;
    if (*rest == ':') {
        char *end;
        if (!isdigit((unsigned char)rest[1]))
            return -1;
        long p = strtol(rest + 1, &end, 10);
        if (end == rest + 1 || *end || p <= 0 || p > 65535)
            return -1;
        *port = (int)p;
    } else if (*rest) {
        return -1;
    }
    return 0;
}

int netaddr_parse_addr(const char *s, struct sockaddr_storage *out)
{
    struct netaddr_net net;

    memset(out, 0, sizeof(*out));
    if (strchr(s, '/') || netaddr_parse_net(s, &net) < 0)
        return -1;
    if (net.family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)out;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, net.addr, 4);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, net.addr, 16);
    }
    return 0;
}
