/*
 * netaddr - IP addresses and CIDR networks (mynetworks).
 *
 * Accepted forms: 127.0.0.0/8, 192.0.2.1, [::1]/128, ::1, [2001:db8::]/32.
 */
#ifndef TERN_NETADDR_H
#define TERN_NETADDR_H

#include <sys/socket.h>
#include <stddef.h>

struct netaddr_net {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int prefix;
};

/* netaddr_parse_net - 0 ok, -1 bad */
int netaddr_parse_net(const char *s, struct netaddr_net *out);
/* netaddr_parse_addr - one address ("192.0.2.1", "2001:db8::1", "[::1]")
 * into a sockaddr with port 0; 0 ok, -1 bad */
int netaddr_parse_addr(const char *s, struct sockaddr_storage *out);
/* netaddr_in_list - 1 when sa is inside any of nets */
int netaddr_match(const struct sockaddr *sa, const struct netaddr_net *nets, size_t count);
/* netaddr_format - "192.0.2.1" or "2001:db8::1" (IPv4-mapped shown as IPv4) */
void netaddr_format(const struct sockaddr *sa, char *out, size_t outlen);
/* netaddr_parse_hostport - split "host:port", "[host]:port", "[v6]:port";
 * *bracketed set when the host was in brackets; port defaults to defport.
 * 0 ok, -1 bad */
int netaddr_parse_hostport(const char *s, char *host, size_t hostlen, int *port, int defport,
                           int *bracketed);

#endif
