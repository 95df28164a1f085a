/*
 * generic - smtp_generic_maps (sendmail's genericstable): the sender
 * addresses of a message as it leaves by SMTP.  The envelope sender is
 * mapped for MAIL FROM; the sender headers (From:, Sender:, Reply-To: ...:
 * lib/hdraddr's sender class) when the content is sent: the header section
 * is read from the queue file, rewritten, and sent in place of the
 * original bytes.  The lookups are lib/route's (the canonical maps' keys
 * and value forms).  Not for LMTP, which delivers to local mailboxes.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "hdraddr.h"
#include "route.h"
#include "smtp.h"

/* the largest header section rewritten: a larger one is sent unchanged */
#define GENERIC_HEADERS_MAX (1024 * 1024)
#define GENERIC_READ 65536

int smtp_generic_sender(const struct smtp_env *env, const char *sender, buf_t *out)
{
    struct route_reply why;
    int rc;

    buf_set(out, sender);
    if (env->generic == NULL || *sender == 0)
        return 0;
    route_reply_init(&why);
    rc = route_rewrite_generic(env->generic, sender, out, &why);
    route_reply_free(&why);
    return rc;
}

/* the header rewrite's context: a failed lookup is remembered, never taken
 * for "unchanged" */
struct generic_headers_ctx {
    struct route *generic;
    int failed;
};

/* generic_header_address - one address of a sender header */
static int generic_header_address(enum hdraddr_class cls, const char *addr, buf_t *out, void *arg)
{
    struct generic_headers_ctx *ctx = arg;
    struct route_reply why;
    int rc;

    (void)cls;
    route_reply_init(&why);
    rc = route_rewrite_generic(ctx->generic, addr, out, &why);
    route_reply_free(&why);
    if (rc == ROUTE_TEMPFAIL)
        ctx->failed = 1;
    return rc > 0;
}

/* generic_header_end - the length of the header section in b, its empty
 * line included; 0 when b holds no complete one */
static size_t generic_header_end(const buf_t *b)
{
    for (size_t i = 0; i + 1 < b->len; i++) {
        if (b->data[i] != '\n')
            continue;
        if (b->data[i + 1] == '\n')
            return i + 2;
        if (b->data[i + 1] == '\r' && i + 2 < b->len && b->data[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* generic_read_headers - the content's header section into b; its length,
 * or 0 (none within the limit, or a read error) */
static size_t generic_read_headers(int qfd, long long offset, long long length, buf_t *b)
{
    size_t end = 0;

    while (end == 0 && (long long)b->len < length && b->len < GENERIC_HEADERS_MAX) {
        size_t want = GENERIC_READ;
        ssize_t n;
        if ((long long)(b->len + want) > length)
            want = (size_t)(length - (long long)b->len);
        buf_reserve(b, want);
        n = pread(qfd, b->data + b->len, want, (off_t)(offset + (long long)b->len));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        b->len += (size_t)n;
        b->data[b->len] = 0;
        end = generic_header_end(b);
    }
    return end;
}

int smtp_generic_headers(const struct smtp_env *env, int qfd, long long offset, long long length,
                         buf_t *out, size_t *replaced)
{
    struct generic_headers_ctx ctx = {env->generic, 0};
    buf_t hdrs = BUF_INIT;
    size_t end;
    int changed = 0;

    buf_reset(out);
    *replaced = 0;
    if (env->generic == NULL)
        return 0;
    end = generic_read_headers(qfd, offset, length, &hdrs);
    if (end > 0)
        changed = hdraddr_rewrite_section(hdrs.data, end, 1 << HDRADDR_SENDER,
                                          generic_header_address, &ctx, out);
    buf_free(&hdrs);
    if (ctx.failed || changed <= 0) {
        buf_reset(out);
        return ctx.failed ? ROUTE_TEMPFAIL : 0;
    }
    *replaced = end;
    return 1;
}
