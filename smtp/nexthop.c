/*
 * nexthop - next-hop forms of the SMTP and LMTP clients (see nexthop.h).
 */
#include <string.h>

#include "netaddr.h"
#include "nexthop.h"
#include "smtputf8.h"

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
/* smtp_nexthop_alabels - an international host name as A-labels, the
 * form DNS knows (SMTPUTF8: "bücher.example" -> "xn--bcher-kva.example");
 * -1 when it has none or it does not fit */
static int smtp_nexthop_alabels(struct smtp_nexthop *out)
{
    buf_t alabel = BUF_INIT;
    int rc = -1;

    if (smtputf8_is_ascii(out->host, strlen(out->host)))
        return 0;
    if (smtputf8_domain_to_ascii(out->host, &alabel) == 0 && alabel.len < sizeof(out->host)) {
        memcpy(out->host, alabel.data, alabel.len + 1);
        rc = 0;
    }
    buf_free(&alabel);
    return rc;
}

int smtp_nexthop_parse(const char *text, int lmtp, int default_port, struct smtp_nexthop *out)
{
    int bracketed = 0;

    memset(out, 0, sizeof(*out));
    if (lmtp && strncmp(text, "unix:", 5) == 0)
        return smtp_nexthop_unix(text + 5, out);
    if (lmtp && strncmp(text, "inet:", 5) == 0)
        text += 5;
    if (netaddr_parse_hostport(text, out->host, sizeof(out->host), &out->port, default_port,
                               &bracketed) < 0 ||
        smtp_nexthop_alabels(out) < 0)
        return -1;
    out->kind = SMTP_NEXTHOP_INET;
    out->use_mx = !lmtp && !bracketed;
    return 0;
}
