/*
 * data - the DATA content decoder of tern-smtpd (no I/O).
 *
 * Turns the bytes a client sends after 354 into message content: every line
 * end (CRLF, bare LF, bare CR) is stored as CRLF, leading dots are removed
 * (RFC 5321 4.5.2), and the end of data is recognised.  Only <CRLF>.<CRLF>
 * ends the data: a "." line ends it only when it is terminated by CRLF and
 * the line before it was terminated by a real CRLF too (the first line counts
 * as preceded by CRLF).  Any other "." line is content "." - so the bare-LF
 * and bare-CR variants used for SMTP smuggling cannot end a message here.
 * docs/smtpd.md documents the policy.
 */
#ifndef TERN_SMTPD_DATA_H
#define TERN_SMTPD_DATA_H

#include <stddef.h>
#include "buf.h"

struct data_decoder {
    int state;      /* private: where in a line we are */
    int prev_crlf;  /* the previous line ended with a real CRLF */
    int bare_seen;  /* a bare LF or bare CR was seen */
};

/* data_decoder_init - start of message content */
void data_decoder_init(struct data_decoder *d);
/* data_decode - decode in[0..len) and append content to out.  Returns the
 * number of bytes consumed; sets *done to 1 when the end of data was found
 * (the bytes after the final CRLF are not consumed). */
size_t data_decode(struct data_decoder *d, const char *in, size_t len, buf_t *out, int *done);

#endif
