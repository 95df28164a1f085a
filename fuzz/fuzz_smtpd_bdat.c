/*
 * fuzz_smtpd_bdat - libFuzzer target for smtpd/bdat_state.c, the CHUNKING
 * state machine: a session's BDAT lines and chunk octets, as any client
 * may send them.  Byte 0: bit 0 MAIL accepted, bit 1 a recipient, bit 2
 * BODY=BINARYMIME, bits 3-7 message_size_limit / 16 (0: none).  Then
 * records: a BDAT argument up to '\n' (after a '!': a BDAT refused before
 * its handler, bdat_state_refuse), one byte for the size of the pieces
 * the octets arrive in, then the chunk's octets from what follows (as far
 * as the input goes).  Every step must keep bdat_state.h's promises: no
 * octet taken past the chunk, nothing stored while skipping, binary content
 * unchanged, text content with every line end CRLF, accepted octets within
 * the limit, every refusal a 5xx line from the documented set.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bdat_state.h"

/* the refusal of a BDAT line refused before its handler ('!' records) */
#define FUZZ_REFUSAL "530 5.7.0 Must issue a STARTTLS command first"

/* fuzz_text_ok - every LF after a CR, every CR before an LF (a CR at the
 * very end may wait for its LF: pending) */
static void fuzz_text_ok(const buf_t *out, int pending)
{
    for (size_t i = 0; i < out->len; i++) {
        if (out->data[i] == '\n' && (i == 0 || out->data[i - 1] != '\r'))
            abort();
        if (out->data[i] == '\r' && i + 1 == out->len && !pending)
            abort();
        if (out->data[i] == '\r' && i + 1 < out->len && out->data[i + 1] != '\n')
            abort();
    }
}

/* fuzz_reply_ok - a refusal from the documented set */
static void fuzz_reply_ok(const buf_t *reply)
{
    static const char *codes[] = {"501 5.5.4 ", "503 5.5.1 ", "552 5.3.4 ", "554 5.5.1 ",
                                  "530 5.7.0 "};

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (reply->len > 10 && memcmp(reply->data, codes[i], 10) == 0)
            return;
    abort();
}

/* fuzz_chunk - feed the chunk's octets in pieces of step bytes */
static size_t fuzz_chunk(struct bdat_state *b, const char *in, size_t len, size_t step, buf_t *out,
                         buf_t *raw)
{
    size_t pos = 0;
    size_t before = out->len;

    while (b->left > 0 && pos < len) {
        size_t n = len - pos < step ? len - pos : step;
        long long left = b->left;
        size_t used = bdat_state_octets(b, in + pos, n, out);

        if (used > n || (long long)used > left || b->left != left - (long long)used)
            abort();
        if (!b->skipping)
            buf_append(raw, in + pos, used);
        pos += used;
    }
    if (b->skipping && out->len != before)
        abort();
    if (b->left == 0)
        bdat_state_chunk_end(b, out);
    return pos;
}

/* fuzz_refuse - bdat_state_refuse: the chunk is skipped (or the session
 * closes) and the transaction stays as it was */
static enum bdat_action fuzz_refuse(struct bdat_state *b, const char *arg, const struct bdat_txn *t,
                                    buf_t *reply)
{
    int open = b->open, failed = b->failed;
    long long total = b->total;
    enum bdat_action a = bdat_state_refuse(b, arg, FUZZ_REFUSAL, t->size_limit, reply);

    if (b->open != open || b->failed != failed || b->total != total)
        abort();
    if (a != BDAT_SKIP && a != BDAT_CLOSE)
        abort();
    if (a == BDAT_SKIP && (!b->skipping || strcmp(buf_cstr(&b->reply), FUZZ_REFUSAL) != 0))
        abort();
    return a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bdat_state b;
    struct bdat_txn t;
    buf_t reply = BUF_INIT, out = BUF_INIT, raw = BUF_INIT, arg = BUF_INIT;
    const char *in = (const char *)data;
    size_t pos = 1;

    if (size < 1)
        return 0;
    t.have_mail = data[0] & 1;
    t.rcpt_count = (data[0] >> 1) & 1;
    t.binary = (data[0] >> 2) & 1;
    t.size_limit = (long long)(data[0] >> 3) * 16;
    bdat_state_init(&b);
    while (pos < size) {
        const char *nl = memchr(in + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - in) : size;
        enum bdat_action a;

        buf_reset(&arg);
        buf_append(&arg, in + pos, end - pos);
        pos = end + 1;
        if (arg.len > 0 && arg.data[0] == '!') /* refused before the handler */
            a = fuzz_refuse(&b, buf_cstr(&arg) + 1, &t, &reply);
        else
            a = bdat_state_command(&b, buf_cstr(&arg), &t, &reply);
        if (a == BDAT_SKIP || a == BDAT_CLOSE)
            fuzz_reply_ok(&reply);
        if (a == BDAT_CLOSE) {
            if (b.reading)
                abort();
            break;
        }
        if (!b.reading || b.left != b.size || b.size < 0)
            abort();
        if (t.size_limit > 0 && b.total > t.size_limit)
            abort();
        if (pos < size) {
            size_t step = (size_t)data[pos++] + 1;
            pos += fuzz_chunk(&b, in + pos, pos < size ? size - pos : 0, step, &out, &raw);
        }
        if (b.left > 0)
            break; /* the input ended inside the chunk */
    }
    if (b.binary && (out.len != raw.len || memcmp(out.data, raw.data, raw.len) != 0))
        abort();
    if (!b.binary && b.open)
        fuzz_text_ok(&out, b.cr);
    buf_free(&reply);
    buf_free(&out);
    buf_free(&raw);
    buf_free(&arg);
    bdat_state_free(&b);
    return 0;
}
