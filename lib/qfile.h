/*
 * qfile - the queue file: one file per message (DESIGN §4).
 *
 * Record format: a type byte, a 4-byte big-endian length, then that many
 * bytes of data.  Order in a file:
 *
 *   'V' "1"                          format version, always first
 *   'T' "sec.usec"                   arrival time
 *   'S' sender address                (empty = null sender <>)
 *   'A' "name=value"                  envelope attributes, any number:
 *                                     client_name, client_addr, helo, proto,
 *                                     auth, envid, ret, size, msgid, queue_id,
 *                                     requiretls ("yes": MAIL had REQUIRETLS,
 *                                     RFC 8689), auth_mailbox (the AUTH=
 *                                     mailbox to pass on, RFC 4954 section 5:
 *                                     an address or "<>"; absent: none known),
 *                                     smtputf8 ("yes": MAIL had SMTPUTF8,
 *                                     RFC 6531: UTF-8 addresses or headers)
 *   'R' recipient, one per recipient: the first byte is the status
 *       (QFILE_RCPT_*: . W S N F B), updated in place with
 *       qfile_set_rcpt_status; then "final\0original\0notify\0orcpt",
 *       and for a recipient that failed before the file was written (an
 *       error: entry of virtual_alias_maps) "\0D.S.N text"
 *   'M' message content: headers, empty line, body, exactly as it goes on
 *       the wire (CRLF line ends, no dot-stuffing)
 *   'A' after 'M': attributes that cleanup learns from the header section,
 *       written once the content is known: tls_required_no ("yes": a
 *       "TLS-Required: No" header field and no REQUIRETLS, RFC 8689)
 *   'X' ""                           end record: a file without it is
 *                                     incomplete and is never delivered
 *
 * Readers trust nothing: unknown types, bad lengths, a missing V/T/S/M/X, or
 * bytes after X make qfile_read fail, and the caller moves the file to corrupt/.
 */
#ifndef TERN_QFILE_H
#define TERN_QFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "buf.h"

#define QFILE_REC_VERSION 'V'
#define QFILE_REC_TIME 'T'
#define QFILE_REC_SENDER 'S'
#define QFILE_REC_ATTR 'A'
#define QFILE_REC_RCPT 'R'
#define QFILE_REC_CONTENT 'M'
#define QFILE_REC_END 'X'

#define QFILE_RCPT_PENDING '.' /* not delivered yet */
#define QFILE_RCPT_WARNED 'W'  /* not delivered yet; the delay warning was sent */
#define QFILE_RCPT_SENT 'S'    /* delivered (any success notice sent) */
#define QFILE_RCPT_NOTIFY 'N'  /* delivered; the success notice is not sent yet */
#define QFILE_RCPT_FAILED 'F'  /* failed; the non-delivery report is not sent yet */
#define QFILE_RCPT_BOUNCED 'B' /* failed and reported (or no report wanted) */

/* qfile_rcpt_status_valid - 1 for one of the QFILE_RCPT_* bytes */
int qfile_rcpt_status_valid(int status);
/* qfile_rcpt_is_pending - 1 while delivery must still be tried (. or W) */
int qfile_rcpt_is_pending(int status);

#define QFILE_MAX_RECORD (1u << 30)
#define QFILE_MAX_RCPTS 100000

struct qfile_rcpt {
    char *address;       /* final recipient */
    char *original;      /* as given in RCPT TO (may equal address) */
    char *notify;        /* DSN NOTIFY value or "" */
    char *orcpt;         /* DSN ORCPT value or "" */
    char *reason;        /* "D.S.N text" of a failure known at queue time, or NULL */
    char status;         /* QFILE_RCPT_* */
    off_t status_offset; /* file offset of the status byte */
};

struct qfile_attr {
    char *name;
    char *value;
};

struct qfile_msg {
    long long arrival_sec;
    long arrival_usec;
    char *sender;
    struct qfile_attr *attrs;
    size_t attr_count;
    struct qfile_rcpt *rcpts;
    size_t rcpt_count;
    off_t content_offset; /* first content byte */
    size_t content_length;
};

/* writer: records are buffered in w->out and written with qfile_writer_flush */
struct qfile_writer {
    int fd;
    buf_t out;
    off_t offset;         /* bytes handed to the file so far */
    off_t content_len_at; /* offset of the 'M' length field, or -1 */
    size_t content_length;
    int failed_errno;
};

void qfile_writer_init(struct qfile_writer *w, int fd);
void qfile_writer_free(struct qfile_writer *w);
/* qfile_put - append one whole record */
void qfile_put(struct qfile_writer *w, int type, const void *data, size_t len);
void qfile_put_str(struct qfile_writer *w, int type, const char *s);
void qfile_put_attr(struct qfile_writer *w, const char *name, const char *value);
void qfile_put_rcpt(struct qfile_writer *w, const char *address, const char *original,
                    const char *notify, const char *orcpt);
/* qfile_put_rcpt_failed - a recipient already failed (status F) for
 * reason "D.S.N text" (NULL: an ordinary pending recipient) */
void qfile_put_rcpt_failed(struct qfile_writer *w, const char *address, const char *original,
                           const char *notify, const char *orcpt, const char *reason);
/* content is streamed: begin, any number of appends, end */
void qfile_content_begin(struct qfile_writer *w);
void qfile_content_append(struct qfile_writer *w, const void *data, size_t len);
/* qfile_content_end - patch the M length; 0 ok, -1 error (errno in failed_errno) */
int qfile_content_end(struct qfile_writer *w);
/* qfile_finish - write the X record and flush; 0 ok, -1 error (sets failed_errno) */
int qfile_finish(struct qfile_writer *w);
/* qfile_writer_flush - write buffered records when over threshold bytes */
int qfile_writer_flush(struct qfile_writer *w, size_t threshold);

void qfile_msg_init(struct qfile_msg *m);
void qfile_msg_free(struct qfile_msg *m);
/* qfile_read - parse fd from the start; 0 ok, -1 malformed (err says why) */
int qfile_read(int fd, struct qfile_msg *m, buf_t *err);
/* qfile_read_envelope - qfile_read up to the content record only: the
 * envelope (V T S A R) with content_offset and content_length set; neither the
 * content nor the records after it are read (no 'A' after 'M', no end record
 * checked; an 'R' after 'M', which no writer makes but qfile_read takes, is
 * not seen); for a reader that needs only the recipients (qmgr's ETRN index) */
int qfile_read_envelope(int fd, struct qfile_msg *m, buf_t *err);
/* qfile_msg_attr - the value of an envelope attribute, or NULL */
const char *qfile_msg_attr(const struct qfile_msg *m, const char *name);
/* qfile_set_rcpt_status - write the status byte in place (pwrite) */
int qfile_set_rcpt_status(int fd, const struct qfile_rcpt *r, char status);

#endif
