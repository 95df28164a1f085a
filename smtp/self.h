/*
 * self - "this host" for MX loop detection in tern-smtp (SPEC ROUTE-09).
 *
 * This host is every address AND port on which this tern's smtpd listens
 * (smtpd_listen; a wildcard listener "*", 0.0.0.0 or [::] stands for every
 * address of a local interface in its family, all of 127.0.0.0/8 and ::1),
 * plus every address of proxy_interfaces (NAT, a proxy in front) with port
 * smtp_default_port.  The port matters: a sink behind an MX on 127.0.0.1
 * with another port than smtpd's is somebody else.
 *
 * tern-smtp builds the set once at start (main.c, before the privilege
 * drop) and cuts every MX list with it (session.c): when an MX host's
 * address is this host, only the more preferred hosts stay (we are a backup
 * MX); when nothing stays, the mail loops back to us.  Everything here is
 * pure (the interface list is passed in), so the unit tests call it
 * directly.  Functions return 0 / -1 with the reason appended to err.
 */
#ifndef TERN_SMTP_SELF_H
#define TERN_SMTP_SELF_H

#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"
#include "netaddr.h"

struct ifaddrs;
struct dns_result;

struct smtp_self_addr {
    struct netaddr_net net; /* one address (a full prefix) or 127.0.0.0/8 */
    int port;
};

struct smtp_self {
    struct smtp_self_addr *v;
    size_t count;
    size_t cap;
};

/* what smtp_self_mx_cut did to an MX list */
enum smtp_self_verdict {
    SMTP_SELF_NONE,       /* no address is this host: the list is unchanged */
    SMTP_SELF_CUT,        /* this host and every less preferred one removed; hosts remain */
    SMTP_SELF_LOOP,       /* the best MX is this host: nothing remains */
    SMTP_SELF_NO_PRIMARY, /* nothing remains, but a more preferred MX had no address */
};

void smtp_self_init(struct smtp_self *self);
void smtp_self_free(struct smtp_self *self);
/* smtp_self_add_listener - one smtpd_listen item ("127.0.0.1:25",
 * "[::1]:25", "0.0.0.0:25", "*:25"); ifa: the local interfaces for a
 * wildcard (getifaddrs; may be NULL) */
int smtp_self_add_listener(struct smtp_self *self, const char *spec, const struct ifaddrs *ifa,
                           buf_t *err);
/* smtp_self_add_proxy - one proxy_interfaces item: an IP address, [v6] or
 * [addr]:port; the port defaults to default_port */
int smtp_self_add_proxy(struct smtp_self *self, const char *spec, int default_port, buf_t *err);
/* smtp_self_is - 1 when sa (an AF_INET / AF_INET6 address with its port)
 * is this host */
int smtp_self_is(const struct smtp_self *self, const struct sockaddr *sa);
/* smtp_self_mx_cut - apply ROUTE-09 to res, an MX list sorted by
 * preference: find the first address that is this host and drop every host
 * with that preference or a higher one (freeing them).  *preference and
 * host (appended) say where the cut was, for the log. */
enum smtp_self_verdict smtp_self_mx_cut(const struct smtp_self *self, struct dns_result *res,
                                        int *preference, buf_t *host);

#endif
