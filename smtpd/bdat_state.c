/*
 * bdat_state - CHUNKING without I/O (bdat_state.h).
 *
 * Failed chunks are read and dropped to keep the stream in step (RFC 3030
 * section 2: a server that offers PIPELINING must accept and discard the
 * chunks already in the pipeline), but not forever: once the dropped
 * octets of a session pass one and a half times message_size_limit, as in
 * Postfix's smtpd, the session replies and closes instead.
 */
#include <limits.h>
#include <string.h>

#include "bdat_state.h"
#include "smtp_ext.h"

void bdat_state_init(struct bdat_state *b)
{
    memset(b, 0, sizeof(*b));
    buf_init(&b->reply);
}

void bdat_state_free(struct bdat_state *b)
{
    buf_free(&b->reply);
}

void bdat_state_reset(struct bdat_state *b)
{
    b->open = b->failed = b->binary = b->cr = b->bare_seen = 0;
    b->total = 0;
}

/* bdat_state_skip - drop the chunk and answer reply afterwards, or close
 * when the session has dropped too much already */
static enum bdat_action bdat_state_skip(struct bdat_state *b, const struct bdat_txn *t,
                                        const char *reply, buf_t *out)
{
    buf_set(&b->reply, reply); /* first: reply may be out's own text */
    buf_set(out, buf_cstr(&b->reply));
    b->skipping = 1;
    if (b->size > LLONG_MAX - b->skipped)
        b->skipped = LLONG_MAX;
    else
        b->skipped += b->size;
    if (t->size_limit > 0 && b->skipped > t->size_limit + t->size_limit / 2) {
        b->reading = b->skipping = 0;
        b->left = 0;
        return BDAT_CLOSE;
    }
    return BDAT_SKIP;
}

/* bdat_state_chunk - parse the BDAT argument and expect its chunk; the
 * parser's status (SMTP_EXT_SYNTAX: no chunk, reply holds the 501) */
static enum smtp_ext_status bdat_state_chunk(struct bdat_state *b, const char *arg, long long max,
                                             buf_t *reply)
{
    struct smtp_ext_bdat chunk;
    enum smtp_ext_status st;

    buf_reset(reply);
    b->reading = b->skipping = 0;
    st = smtp_ext_bdat_parse(arg, max < 0 ? 0 : max, &chunk, reply);
    if (st == SMTP_EXT_SYNTAX)
        return st; /* where the chunk ends is unknown */
    b->reading = 1;
    b->size = b->left = chunk.size;
    b->last = chunk.last;
    return st;
}

enum bdat_action bdat_state_refuse(struct bdat_state *b, const char *arg, const char *refusal,
                                   long long size_limit, buf_t *reply)
{
    struct bdat_txn t = {0, 0, size_limit, 0};

    if (bdat_state_chunk(b, arg, LLONG_MAX, reply) == SMTP_EXT_SYNTAX)
        return BDAT_CLOSE;
    return bdat_state_skip(b, &t, refusal, reply);
}

enum bdat_action bdat_state_command(struct bdat_state *b, const char *arg, const struct bdat_txn *t,
                                    buf_t *reply)
{
    long long max = t->size_limit > 0 ? t->size_limit - b->total : LLONG_MAX;
    enum smtp_ext_status st = bdat_state_chunk(b, arg, max, reply);

    if (st == SMTP_EXT_SYNTAX)
        return BDAT_CLOSE;
    if (b->failed)
        return bdat_state_skip(b, t, "503 5.5.1 Error: BDAT after a failed chunk; send RSET",
                               reply);
    if (!t->have_mail)
        return bdat_state_skip(b, t, "503 5.5.1 Error: need MAIL command", reply);
    if (t->rcpt_count == 0) {
        b->failed = 1;
        return bdat_state_skip(b, t, "554 5.5.1 Error: no valid recipients", reply);
    }
    if (st == SMTP_EXT_TOO_BIG) {
        b->failed = 1;
        return bdat_state_skip(b, t, buf_cstr(reply), reply);
    }
    b->total += b->size;
    if (b->open)
        return BDAT_APPEND;
    b->open = 1;
    b->binary = t->binary;
    return BDAT_FIRST;
}

void bdat_state_fail(struct bdat_state *b, const char *reply)
{
    b->skipping = 1;
    b->failed = 1;
    buf_set(&b->reply, reply);
}

/* bdat_state_text - octets of text content with every line end as CRLF;
 * a CR is written at once, its LF (or the LF that makes it CRLF) later */
static void bdat_state_text(struct bdat_state *b, const char *in, size_t len, buf_t *out)
{
    size_t i = 0;

    while (i < len) {
        size_t run = i;

        if (b->cr) {
            b->cr = 0;
            buf_putc(out, '\n');
            if (in[i] == '\n') {
                i++;
                continue;
            }
            b->bare_seen = 1; /* a bare CR */
        }
        while (run < len && in[run] != '\r' && in[run] != '\n')
            run++;
        buf_append(out, in + i, run - i);
        if (run == len)
            break;
        if (in[run] == '\r') {
            buf_putc(out, '\r');
            b->cr = 1;
        } else { /* a bare LF */
            buf_puts(out, "\r\n");
            b->bare_seen = 1;
        }
        i = run + 1;
    }
}

size_t bdat_state_octets(struct bdat_state *b, const char *in, size_t len, buf_t *out)
{
    size_t n = (long long)len > b->left ? (size_t)b->left : len;

    b->left -= (long long)n;
    if (b->skipping || out == NULL)
        return n;
    if (b->binary)
        buf_append(out, in, n);
    else
        bdat_state_text(b, in, n, out);
    return n;
}

void bdat_state_chunk_end(struct bdat_state *b, buf_t *out)
{
    b->reading = 0;
    if (b->last && !b->skipping && b->cr && out != NULL) {
        buf_putc(out, '\n');
        b->bare_seen = 1;
        b->cr = 0;
    }
}

void bdat_state_ok_reply(const struct bdat_state *b, buf_t *reply)
{
    buf_reset(reply);
    buf_printf(reply, "250 2.0.0 %lld octets received", b->size);
}
