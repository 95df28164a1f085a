/*
 * sendmail_addr - RFC 5322 address lists for sendmail -t and its arguments.
 *
 * lib/hdraddr parses the list (display names, comments, quoting, groups,
 * source routes, folding); this file turns its addresses into envelope
 * recipients.  Groups give their members, an empty group
 * ("undisclosed-recipients:;") gives nothing.  An element that is no
 * address ("Joe Smith", "<>"), an address that cannot be an envelope
 * address, or a list hdraddr refuses (unbalanced '<', '"', '(' ...) is an
 * error: sendmail must not drop a recipient the user meant.
 */
#include <string.h>

#include "addr.h"
#include "hdraddr.h"
#include "sendmail.h"

#define SENDMAIL_ADDR_SHOW 200 /* bytes of bad input shown in an error */

struct sendmail_addr_ctx {
    struct submission *s;
    buf_t err; /* the first error */
};

int sendmail_addr_valid(const char *addr)
{
    int quoted = 0;
    size_t n = strlen(addr);

    if (n == 0 || n > ADDR_MAX_LENGTH || addr[0] == '-')
        return 0;
    for (const char *p = addr; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 32 || c == 127)
            return 0;
        if (c == '\\' && quoted && p[1]) {
            p++;
            continue;
        }
        if (c == '"')
            quoted = !quoted;
        else if (!quoted && strchr(" \t<>(),;", c))
            return 0;
    }
    return !quoted;
}

/* sendmail_addr_bad - "bad address syntax: TEXT", line breaks as spaces */
static void sendmail_addr_bad(buf_t *err, const char *text, size_t len)
{
    buf_puts(err, "bad address syntax: ");
    for (size_t i = 0; i < len && i < SENDMAIL_ADDR_SHOW; i++)
        buf_putc(err, (text[i] == '\r' || text[i] == '\n') ? ' ' : text[i]);
}

/* sendmail_addr_take - hdraddr callback: one address becomes a recipient */
static int sendmail_addr_take(const char *addr, buf_t *out, void *ctx)
{
    struct sendmail_addr_ctx *c = ctx;

    if (c->err.len > 0)
        return 0;
    if (!sendmail_addr_valid(addr))
        sendmail_addr_bad(&c->err, addr, strlen(addr));
    else if (submission_add_rcpt(c->s, addr) < 0)
        buf_printf(&c->err, "too many recipients (limit %d)", SENDMAIL_MAX_RCPTS);
    return 0;
}

/* sendmail_addr_other - hdraddr callback: an element that is no address */
static void sendmail_addr_other(const char *text, size_t len, void *ctx)
{
    struct sendmail_addr_ctx *c = ctx;

    if (c->err.len == 0)
        sendmail_addr_bad(&c->err, text, len);
}

int sendmail_addr_list(const char *text, struct submission *s, buf_t *err)
{
    struct sendmail_addr_ctx c = {s, BUF_INIT};
    int rc = 0;

    if (hdraddr_scan(text, strlen(text), sendmail_addr_take, sendmail_addr_other, &c) < 0)
        sendmail_addr_bad(&c.err, text, strlen(text));
    if (c.err.len > 0) {
        buf_append(err, c.err.data, c.err.len);
        rc = -1;
    }
    buf_free(&c.err);
    return rc;
}
