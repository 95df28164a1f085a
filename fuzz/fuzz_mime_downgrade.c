/*
 * fuzz_mime_downgrade - libFuzzer target for lib/mime_downgrade: the message
 * content comes from any SMTP client.  Checks the module's promises:
 *
 *  - UNCHANGED exactly when the input has no 8-bit byte and no NUL, and then
 *    the output is the input byte for byte, with no span;
 *  - REFUSED only for an input that needed a downgrade, always with a reason;
 *  - DONE: the output has no 8-bit byte and no NUL; the spans are in order,
 *    do not overlap, lie inside input and output, and cover every 8-bit byte
 *    and NUL of the input; each span's output decodes (with the independent
 *    decoders of tests/unit/mime_decode.h, which also refuse lines over 76
 *    characters in quoted-printable) to exactly its input bytes; base64 lines
 *    are at most 76 characters; the output stays within the documented bound.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/unit/mime_decode.h"
#include "buf.h"
#include "mime_downgrade.h"

/* fuzz_eol - the input's line end, as the module chooses it */
static const char *fuzz_eol(const char *msg, size_t len)
{
    const char *lf = memchr(msg, '\n', len);

    return lf == NULL || (lf > msg && lf[-1] == '\r') ? "\r\n" : "\n";
}

/* fuzz_check_base64_lines - no base64 line over 76 characters */
static void fuzz_check_base64_lines(const char *p, size_t n)
{
    size_t col = 0;

    for (size_t i = 0; i < n; i++) {
        col = (p[i] == '\r' || p[i] == '\n') ? 0 : col + 1;
        if (col > MIME_DOWNGRADE_LINE_MAX)
            abort();
    }
}

/* fuzz_check_span - the span decodes to its input bytes */
static void fuzz_check_span(const struct mime_downgrade *d, const struct mime_downgrade_span *s,
                            const char *msg, const char *eol)
{
    const char *p = d->out.data + s->out_start;
    size_t n = s->out_end - s->out_start;
    buf_t dec = BUF_INIT;
    int ret;

    if (s->encoding == MIME_DOWNGRADE_QP) {
        ret = mime_decode_qp(p, n, eol, &dec);
    } else {
        fuzz_check_base64_lines(p, n);
        ret = mime_decode_base64(p, n, &dec);
    }
    if (ret != 0 || dec.len != s->in_end - s->in_start ||
        memcmp(dec.data, msg + s->in_start, dec.len) != 0)
        abort();
    buf_free(&dec);
}

/* fuzz_check_done - the promises of a DONE result */
static void fuzz_check_done(const struct mime_downgrade *d, const char *msg, size_t len)
{
    size_t in_pos = 0, out_pos = 0;

    if (d->reason != NULL || mime_downgrade_needed(d->out.data, d->out.len) || d->span_count == 0)
        abort();
    if (d->out.len > 4 * len + 128 * (MIME_DOWNGRADE_MAX_DEPTH + 1) * d->span_count)
        abort();
    for (size_t i = 0; i < d->span_count; i++) {
        const struct mime_downgrade_span *s = &d->spans[i];
        if (s->in_start < in_pos || s->in_end < s->in_start || s->in_end > len ||
            s->out_start < out_pos || s->out_end < s->out_start || s->out_end > d->out.len)
            abort();
        if (mime_downgrade_needed(msg + in_pos, s->in_start - in_pos))
            abort(); /* an 8-bit byte left outside every span */
        fuzz_check_span(d, s, msg, fuzz_eol(msg, len));
        in_pos = s->in_end;
        out_pos = s->out_end;
    }
    if (mime_downgrade_needed(msg + in_pos, len - in_pos))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;
    struct mime_downgrade d;

    mime_downgrade_init(&d);
    switch (mime_downgrade_run(&d, msg, size)) {
    case MIME_DOWNGRADE_UNCHANGED:
        if (mime_downgrade_needed(msg, size) || d.out.len != size || d.span_count != 0 ||
            (size > 0 && memcmp(d.out.data, msg, size) != 0))
            abort();
        break;
    case MIME_DOWNGRADE_REFUSED:
        if (!mime_downgrade_needed(msg, size) || d.reason == NULL)
            abort();
        break;
    case MIME_DOWNGRADE_DONE:
        fuzz_check_done(&d, msg, size);
        break;
    }
    mime_downgrade_free(&d);
    return 0;
}
