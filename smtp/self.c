/*
 * self - this host's addresses and the MX list cut (see self.h).
 */
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "self.h"

#define SELF_MAX_HOST 256

void smtp_self_init(struct smtp_self *self)
{
    memset(self, 0, sizeof(*self));
}

void smtp_self_free(struct smtp_self *self)
{
    free(self->v);
    smtp_self_init(self);
}

/* self_add_net - append net with port */
static void self_add_net(struct smtp_self *self, const struct netaddr_net *net, int port)
{
    if (self->count == self->cap) {
        self->cap = self->cap ? 2 * self->cap : 8;
        self->v = xrealloc(self->v, self->cap * sizeof(*self->v));
    }
    self->v[self->count].net = *net;
    self->v[self->count].port = port;
    self->count++;
}

/* self_add_text - append the network or address text (known to be good) */
static void self_add_text(struct smtp_self *self, const char *text, int port)
{
    struct netaddr_net net;

    if (netaddr_parse_net(text, &net) == 0)
        self_add_net(self, &net, port);
}

/* self_add_sockaddr - append one interface address (v4 or v6, else nothing) */
static void self_add_sockaddr(struct smtp_self *self, const struct sockaddr *sa, int port)
{
    struct netaddr_net net;

    memset(&net, 0, sizeof(net));
    net.family = sa->sa_family;
    if (sa->sa_family == AF_INET) {
        memcpy(net.addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        net.prefix = 32;
    } else if (sa->sa_family == AF_INET6) {
        memcpy(net.addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        net.prefix = 128;
    } else {
        return;
    }
    self_add_net(self, &net, port);
}

/* self_add_wildcard - every local address of family (0: both), loopback too */
static void self_add_wildcard(struct smtp_self *self, int family, const struct ifaddrs *ifa,
                              int port)
{
    if (family != AF_INET6)
        self_add_text(self, "127.0.0.0/8", port);
    if (family != AF_INET)
        self_add_text(self, "::1", port);
    for (; ifa; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr == NULL)
            continue;
        if (family == 0 || ifa->ifa_addr->sa_family == family)
            self_add_sockaddr(self, ifa->ifa_addr, port);
    }
}

/* self_wildcard_family - AF_INET for 0.0.0.0, AF_INET6 for ::, 0 for *,
 * -1 when host is a plain address */
static int self_wildcard_family(const char *host)
{
    if (strcmp(host, "*") == 0)
        return 0;
    if (strcmp(host, "0.0.0.0") == 0)
        return AF_INET;
    if (strcmp(host, "::") == 0)
        return AF_INET6;
    return -1;
}

int smtp_self_add_listener(struct smtp_self *self, const char *spec, const struct ifaddrs *ifa,
                           buf_t *err)
{
    char host[SELF_MAX_HOST];
    int port, bracketed, family;
    struct netaddr_net net;

    if (netaddr_parse_hostport(spec, host, sizeof(host), &port, 25, &bracketed) < 0) {
        buf_printf(err, "smtpd_listen: bad address '%s' (expected host:port)", spec);
        return -1;
    }
    family = self_wildcard_family(host);
    if (family >= 0) {
        self_add_wildcard(self, family, ifa, port);
        return 0;
    }
    if (netaddr_parse_net(host, &net) < 0 || strchr(host, '/') != NULL) {
        buf_printf(err, "smtpd_listen: '%s' is not a numeric IP address", spec);
        return -1;
    }
    self_add_net(self, &net, port);
    return 0;
}

int smtp_self_add_proxy(struct smtp_self *self, const char *spec, int default_port, buf_t *err)
{
    char host[SELF_MAX_HOST];
    int port, bracketed;
    struct netaddr_net net;

    if (netaddr_parse_hostport(spec, host, sizeof(host), &port, default_port, &bracketed) < 0 ||
        strchr(host, '/') != NULL || netaddr_parse_net(host, &net) < 0) {
        buf_printf(err, "proxy_interfaces: '%s' is not an IP address (or [address]:port)", spec);
        return -1;
    }
    self_add_net(self, &net, port);
    return 0;
}

/* self_port_of - the port of an AF_INET / AF_INET6 address, -1 otherwise */
static int self_port_of(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return -1;
}

int smtp_self_is(const struct smtp_self *self, const struct sockaddr *sa)
{
    int port = self_port_of(sa);

    for (size_t i = 0; port >= 0 && i < self->count; i++)
        if (self->v[i].port == port && netaddr_match(sa, &self->v[i].net, 1))
            return 1;
    return 0;
}

/* self_truncate - drop hosts[from..count) */
static void self_truncate(struct dns_result *res, size_t from)
{
    for (size_t i = from; i < res->count; i++) {
        free(res->hosts[i].hostname);
        res->hosts[i].hostname = NULL;
    }
    res->count = from;
}

enum smtp_self_verdict smtp_self_mx_cut(const struct smtp_self *self, struct dns_result *res,
                                        int *preference, buf_t *host)
{
    size_t i, cut;
    int pref;

    for (i = 0; i < res->count; i++)
        if (smtp_self_is(self, (const struct sockaddr *)&res->hosts[i].addr))
            break;
    if (i == res->count)
        return SMTP_SELF_NONE;
    pref = res->hosts[i].preference;
    *preference = pref;
    buf_puts(host, res->hosts[i].hostname);
    for (cut = 0; cut < res->count && res->hosts[cut].preference < pref; cut++)
        ;
    self_truncate(res, cut);
    if (res->count > 0)
        return SMTP_SELF_CUT;
    return res->best_preference < pref ? SMTP_SELF_NO_PRIMARY : SMTP_SELF_LOOP;
}
