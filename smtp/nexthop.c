/*
 * nexthop - next-hop forms of the SMTP and LMTP clients (see nexthop.h).
 */
#include <string.h>

#include "netaddr.h"
#include "nexthop.h"

/* smtp_nexthop_unix - "unix:PATH": a non-empty path that fits a sockaddr_un */
static int smtp_nexthop_unix(const char *path, struct smtp_nexthop *out)
{
    size_t len = strlen(path);

    if (len == 0 || len >= SMTP_NEXTHOP_MAX_PATH)
        return -1;
    out->kind = SMTP_NEXTHOP_UNIX;
    memcpy(out->host, path, len + 1);
    out->port = 0;
    out->use_mx = 0;
    return 0;
}

/* smtp_nexthop_parse - see nexthop.h */
int smtp_nexthop_parse(const char *text, int lmtp, int default_port, struct smtp_nexthop *out)
{
    int bracketed = 0;

    memset(out, 0, sizeof(*out));
    if (lmtp && strncmp(text, "unix:", 5) == 0)
        return smtp_nexthop_unix(text + 5, out);
    if (lmtp && strncmp(text, "inet:", 5) == 0)
        text += 5;
    if (netaddr_parse_hostport(text, out->host, sizeof(out->host), &out->port, default_port,
                               &bracketed) < 0)
        return -1;
    out->kind = SMTP_NEXTHOP_INET;
    out->use_mx = !lmtp && !bracketed;
    return 0;
}
