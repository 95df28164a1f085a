/*
 * nexthop - what the `nexthop` of a delivery request names, for the SMTP
 * and the LMTP client (docs/internals.md, docs/lmtp.md).  Pure: text in, a
 * parsed next hop out, no I/O, no DNS.
 *
 * SMTP: `domain` (MX, then A/AAAA), `host:port`, `[host]` and `[host]:port`
 * (no MX lookup), `[ipv6]:port`; the port defaults to smtp_default_port.
 * LMTP (RFC 2033; like Postfix's lmtp): `unix:/path` (or a path relative to
 * queue_directory, e.g. `unix:private/dovecot-lmtp`), `inet:host:port`, and
 * every TCP form above, never with an MX lookup; the port defaults to
 * lmtp_tcp_port.  An international host name is turned into A-labels
 * (SMTPUTF8, docs/smtputf8.md): DNS is only ever asked for those.
 */
#ifndef TERN_SMTP_NEXTHOP_H
#define TERN_SMTP_NEXTHOP_H

#define SMTP_NEXTHOP_MAX_HOST 256
#define SMTP_NEXTHOP_MAX_PATH 108 /* sizeof(sockaddr_un.sun_path) on Linux */

enum smtp_nexthop_kind { SMTP_NEXTHOP_INET, SMTP_NEXTHOP_UNIX };

struct smtp_nexthop {
    enum smtp_nexthop_kind kind;
    char host[SMTP_NEXTHOP_MAX_HOST]; /* INET: name or address without brackets; UNIX: the path */
    int port;                         /* INET only */
    int use_mx;                       /* SMTP to a name that was not [bracketed] */
};

/* smtp_nexthop_parse - text as an SMTP (lmtp = 0) or LMTP (lmtp = 1) next
 * hop, default_port when it names no port; 0 ok, -1 malformed */
int smtp_nexthop_parse(const char *text, int lmtp, int default_port, struct smtp_nexthop *out);

#endif
