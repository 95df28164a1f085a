/*
 * smtp_body - the way a message's content goes out: streamed, converted
 * to 7-bit, or in BDAT chunks (smtp_body.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mime_downgrade.h"
#include "smtp_body.h"

/* smtp_body_init - see smtp_body.h */
void smtp_body_init(struct smtp_body *b)
{
    memset(b, 0, sizeof(*b));
    buf_init(&b->copy);
    b->mode = SMTP_BODY_STREAM;
}

/* smtp_body_free - see smtp_body.h */
void smtp_body_free(struct smtp_body *b)
{
    buf_free(&b->copy);
    smtp_body_init(b);
}

/* smtp_body_choose - see smtp_body.h */
enum smtp_body_mode smtp_body_choose(const struct smtp_body_policy *p,
                                     const struct delivery_request *req, const struct smtp_ehlo *e)
{
    if (req->body_binary && e->chunking && e->binarymime)
        return SMTP_BODY_BDAT;
    if (e->eightbitmime && !req->body_binary)
        return SMTP_BODY_STREAM;
    if (p->conversion_disabled)
        return SMTP_BODY_STREAM;
    if (p->bounce_8bit && req->body_8bit)
        return SMTP_BODY_BOUNCE;
    return SMTP_BODY_CONVERT; /* unmarked content too: converted if 8-bit bytes show up */
}

/* smtp_body_fail - *err = status, dsn, reason; -1 */
static int smtp_body_fail(struct smtp_body_error *err, enum delivery_status status, const char *dsn,
                          const char *reason)
{
    err->status = status;
    err->dsn = dsn;
    err->reason = reason;
    return -1;
}

/* smtp_body_read - append n bytes of qfd at offset to out; 0 or -1 (errno) */
static int smtp_body_read(int qfd, long long offset, long long n, buf_t *out)
{
    buf_reserve(out, (size_t)n);
    while (n > 0) {
        ssize_t got = pread(qfd, out->data + out->len, (size_t)n, (off_t)offset);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (got == 0)
                errno = EIO; /* the file is shorter than the queue manager said */
            return -1;
        }
        out->len += (size_t)got;
        offset += got;
        n -= got;
    }
    out->data[out->len] = '\0';
    return 0;
}

/* smtp_body_load - b->copy = headers, then the content after `replaced` bytes */
static int smtp_body_load(struct smtp_body *b, const struct delivery_request *req, int qfd,
                          const buf_t *headers, size_t replaced, struct smtp_body_error *err)
{
    buf_reset(&b->copy);
    if (headers != NULL)
        buf_append(&b->copy, headers->data, headers->len);
    else
        replaced = 0;
    if (smtp_body_read(qfd, req->content_offset + (long long)replaced,
                       req->content_length - (long long)replaced, &b->copy) == 0)
        return 0;
    snprintf(err->err_text, sizeof(err->err_text), "error reading queue file %s: %s", req->path,
             strerror(errno));
    return smtp_body_fail(err, DELIVERY_DEFER, "4.3.0", err->err_text);
}

/* smtp_body_downgrade - b->copy made 7-bit with lib/mime_downgrade.h */
static int smtp_body_downgrade(struct smtp_body *b, struct smtp_body_error *err)
{
    struct mime_downgrade d;
    enum mime_downgrade_status st;

    mime_downgrade_init(&d);
    st = mime_downgrade_run(&d, b->copy.data, b->copy.len);
    if (st == MIME_DOWNGRADE_REFUSED) {
        snprintf(err->err_text, sizeof(err->err_text),
                 "8-bit message cannot be converted to 7-bit for a server without 8BITMIME: %s",
                 d.reason);
        mime_downgrade_free(&d);
        return smtp_body_fail(err, DELIVERY_BOUNCE, "5.6.3", err->err_text);
    }
    buf_free(&b->copy);
    b->copy = d.out; /* the result moves over */
    buf_init(&d.out);
    b->converted = st == MIME_DOWNGRADE_DONE;
    mime_downgrade_free(&d);
    return 0;
}

/* smtp_body_convert - see smtp_body.h */
int smtp_body_convert(struct smtp_body *b, const struct smtp_body_policy *p,
                      const struct delivery_request *req, int qfd, const buf_t *headers,
                      size_t replaced, struct smtp_body_error *err)
{
    b->converted = 0;
    if (p->load_limit > 0 && req->content_length > p->load_limit) {
        if (!req->body_8bit) { /* not declared 8-bit and too big to look: as before */
            b->mode = SMTP_BODY_STREAM;
            return 0;
        }
        return smtp_body_fail(err, DELIVERY_BOUNCE, "5.6.3",
                              "8-bit message too large to convert to 7-bit for a server "
                              "without 8BITMIME");
    }
    if (smtp_body_load(b, req, qfd, headers, replaced, err) < 0)
        return -1;
    b->mode = SMTP_BODY_CONVERT;
    if (!mime_downgrade_needed(b->copy.data, b->copy.len))
        return 0;
    if (p->bounce_8bit)
        return smtp_body_fail(err, DELIVERY_BOUNCE, "5.6.3",
                              "8-bit message and a server without 8BITMIME "
                              "(smtp_8bit_downgrade = bounce)");
    return smtp_body_downgrade(b, err);
}

/* smtp_body_mail_param - see smtp_body.h */
void smtp_body_mail_param(const struct smtp_body *b, const struct delivery_request *req,
                          const struct smtp_ehlo *e, buf_t *out)
{
    if (b->mode == SMTP_BODY_BDAT)
        buf_puts(out, " BODY=BINARYMIME");
    else if (req->body_8bit && e->eightbitmime && !b->converted)
        buf_puts(out, " BODY=8BITMIME");
}

/* smtp_body_size - see smtp_body.h */
long long smtp_body_size(const struct smtp_body *b, const struct delivery_request *req)
{
    return b->converted ? (long long)b->copy.len : req->size;
}

/* smtp_body_bdat_command - see smtp_body.h */
long long smtp_body_bdat_command(long long pos, long long total, long long chunk, buf_t *out)
{
    long long n = total - pos < chunk ? total - pos : chunk;

    if (n < 0)
        n = 0;
    buf_printf(out, "BDAT %lld%s\r\n", n, pos + n >= total ? " LAST" : "");
    return n;
}
