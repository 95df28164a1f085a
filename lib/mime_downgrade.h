/*
 * mime_downgrade - the 8BITMIME to 7-bit conversion of one message, for a
 * next hop that does not offer 8BITMIME (RFC 6152 section 3; sendmail's
 * mime8to7 and Postfix's smtp downgrade do the same).  Pure: bytes in,
 * bytes out, no I/O; tern-smtp will call it with the 'M' record of the queue
 * file (lib/qfile.h) before it sends DATA to a 7-bit peer.
 *
 * Input: a whole message, header section, empty line, body.  Line ends are
 * those of the first line (CRLF, as the queue file stores them, or LF); the
 * output uses the same line end.  The MIME structure is walked: multipart
 * bodies are split at their "--boundary" lines (a line that starts with the
 * delimiter is one, as in Postfix and most readers), message/rfc822 bodies are
 * walked as messages, up to MIME_DOWNGRADE_MAX_DEPTH levels.  Each leaf part
 * whose body holds an 8-bit byte or a NUL, and whose Content-Transfer-
 * Encoding is 7bit, 8bit or absent, is re-encoded: quoted-printable for
 * text types, base64 for every other type; its Content-Transfer-Encoding field is
 * replaced (or added), a part without Content-Type gets "text/plain;
 * charset=unknown-8bit" (sendmail's DefaultCharSet), and a top-level header
 * without MIME-Version gets "MIME-Version: 1.0".  A multipart or message/rfc822
 * labelled 8bit whose content changed is relabelled 7bit.  Every other byte
 * is copied as it is; the encoded bodies decode to exactly the input bytes
 * (a line end inside a quoted-printable body is a hard line break; a CR or LF
 * that is not the message's line end is encoded as =0D / =0A; a line starting
 * with '-' starts with =2D so that no soft line break can forge a boundary).
 *
 * A message without any 8-bit byte or NUL is MIME_DOWNGRADE_UNCHANGED and the
 * output is the input byte for byte (a 7-bit message is never touched, even
 * with lines over 998 bytes).
 *
 * Cannot downgrade (MIME_DOWNGRADE_REFUSED, reason set; the caller bounces
 * with 5.6.3, or defers if the admin wants): an 8-bit byte or NUL
 *  - in a header field: RFC 2047 encoding of headers is not attempted, as an
 *    encoded-word rewrite would change addresses and signatures; Postfix's
 *    smtp client likewise fails the delivery ("554 MIME 7-bit conversion
 *    failed") when its MIME parser reports an error during the downgrade;
 *  - in a multipart preamble, epilogue or delimiter line;
 *  - in a part whose Content-Transfer-Encoding is binary, quoted-printable,
 *    base64 or unknown, or in a multipart or message/rfc822 whose own
 *    encoding is not 7bit or 8bit;
 *  - in a multipart without a boundary, or in a message type other than
 *    rfc822 (message/global: its headers may be UTF-8);
 *  - deeper than MIME_DOWNGRADE_MAX_DEPTH.
 *
 * Memory: whole buffer.  The output is at most 4 x the input plus 128 bytes
 * per MIME part (quoted-printable's worst case is 3 bytes per byte plus a
 * soft break every 75); the caller bounds the input (message_size_limit).
 * No static state: safe from any thread.  Allocation failure aborts (buf).
 */
#ifndef TERN_MIME_DOWNGRADE_H
#define TERN_MIME_DOWNGRADE_H

#include <stddef.h>
#include "buf.h"

#define MIME_DOWNGRADE_MAX_DEPTH 20
/* the longest encoded line, without its line end (RFC 2045 section 6.7, 6.8) */
#define MIME_DOWNGRADE_LINE_MAX 76

enum mime_downgrade_status {
    MIME_DOWNGRADE_UNCHANGED, /* nothing 8-bit: out holds a copy of the input */
    MIME_DOWNGRADE_DONE,      /* out holds the 7-bit message */
    MIME_DOWNGRADE_REFUSED,   /* cannot be made 7-bit: see reason; out is garbage */
};

enum mime_downgrade_encoding {
    MIME_DOWNGRADE_QP,
    MIME_DOWNGRADE_BASE64,
};

/* one re-encoded body: in[in_start..in_end) became out[out_start..out_end) */
struct mime_downgrade_span {
    size_t in_start, in_end;
    size_t out_start, out_end;
    enum mime_downgrade_encoding encoding;
};

struct mime_downgrade {
    buf_t out;
    const char *reason; /* static text, set when REFUSED */
    struct mime_downgrade_span *spans;
    size_t span_count;
    size_t span_cap;
};

/* mime_downgrade_init - an empty result, ready for mime_downgrade_run */
void mime_downgrade_init(struct mime_downgrade *d);
/* mime_downgrade_free - release the output and the spans */
void mime_downgrade_free(struct mime_downgrade *d);
/* mime_downgrade_run - convert msg[0..len) into d->out (reset first);
 * d->spans lists the re-encoded bodies in order */
enum mime_downgrade_status mime_downgrade_run(struct mime_downgrade *d, const char *msg,
                                              size_t len);

/* mime_downgrade_needed - 1 when msg holds an 8-bit byte or a NUL */
int mime_downgrade_needed(const char *msg, size_t len);

#endif
