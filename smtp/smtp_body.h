/*
 * smtp_body - how tern-smtp sends a message's content to the next hop
 * (SPEC OUT 8-bit, RFC 6152, RFC 3030): the queue file as it is after DATA
 * (today's path, streamed and dot-stuffed by session.c), a 7-bit copy made
 * in memory with lib/mime_downgrade.h for a next hop without 8BITMIME, or
 * BDAT chunks (BODY=BINARYMIME) for a binary message to a next hop that
 * offers CHUNKING and BINARYMIME.  session.c asks smtp_body_choose before
 * MAIL, builds the copy with smtp_body_convert when told (on a thread:
 * smtp_body_job_start), and frames BDAT chunks with smtp_body_bdat_command.
 *
 * Pure but for smtp_body_convert's reads of the queue file (pread, no
 * event loop); errors come back with their delivery status, enhanced status
 * code and reason, for every pending recipient.  Memory: the copy is the
 * whole message (bounded by smtp_body_policy.load_limit), owned by struct
 * smtp_body until smtp_body_free.
 */
#ifndef TERN_SMTP_SMTP_BODY_H
#define TERN_SMTP_SMTP_BODY_H

#include <stddef.h>
#include "buf.h"
#include "delivery.h"
#include "reply.h"

/* the most content bytes one BDAT command carries */
#define SMTP_BODY_BDAT_CHUNK (256 * 1024)

/* tern.conf: what to do with 8-bit content for a next hop without 8BITMIME */
struct smtp_body_policy {
    int conversion_disabled; /* disable_mime_output_conversion: send it as it is (Postfix) */
    int bounce_8bit;         /* smtp_8bit_downgrade = bounce: 5.6.3 instead of converting */
    long long load_limit;    /* largest content read into memory to convert; 0: none */
};

enum smtp_body_mode {
    SMTP_BODY_STREAM,  /* DATA with the queue file's content, dot-stuffed */
    SMTP_BODY_CONVERT, /* read it, convert to 7-bit if it is 8-bit, then DATA from memory */
    SMTP_BODY_BDAT,    /* BODY=BINARYMIME and BDAT chunks: no dot-stuffing */
    SMTP_BODY_BOUNCE,  /* 8-bit content, a 7-bit next hop, smtp_8bit_downgrade = bounce */
};

struct smtp_body {
    enum smtp_body_mode mode;
    buf_t copy;    /* SMTP_BODY_CONVERT: the content to send (generic headers applied) */
    int converted; /* the copy is the 7-bit form: MAIL without BODY=8BITMIME */
};

/* an outcome for every pending recipient, when the content cannot go */
struct smtp_body_error {
    enum delivery_status status;
    const char *dsn;    /* "5.6.3", "4.3.0" */
    const char *reason; /* static text, or err_text */
    char err_text[256];
};

/* smtp_body_init - an empty smtp_body (mode STREAM) */
void smtp_body_init(struct smtp_body *b);
/* smtp_body_free - release the copy; b is empty (mode STREAM) again */
void smtp_body_free(struct smtp_body *b);
/* smtp_body_choose - the way req's content goes to a server that said e */
enum smtp_body_mode smtp_body_choose(const struct smtp_body_policy *p,
                                     const struct delivery_request *req, const struct smtp_ehlo *e);
/* smtp_body_convert - b->copy = the content (its first `replaced` bytes
 * replaced by headers, when headers is not NULL), made 7-bit when it holds
 * 8-bit bytes; 0 ok (b->mode = SMTP_BODY_CONVERT), -1 with *err set: the
 * queue file could not be read (4.3.0), or the message cannot be made 7-bit
 * or must not be (5.6.3) */
int smtp_body_convert(struct smtp_body *b, const struct smtp_body_policy *p,
                      const struct delivery_request *req, int qfd, const buf_t *headers,
                      size_t replaced, struct smtp_body_error *err);
/* smtp_body_mail_param - the BODY= parameter of MAIL FROM (" BODY=..."), or nothing */
void smtp_body_mail_param(const struct smtp_body *b, const struct delivery_request *req,
                          const struct smtp_ehlo *e, buf_t *out);
/* smtp_body_size - the SIZE= estimate: the 7-bit copy's, or req->size */
long long smtp_body_size(const struct smtp_body *b, const struct delivery_request *req);
/* smtp_body_bdat_command - "BDAT n[ LAST]\r\n" into out for the chunk that
 * starts at pos of total content bytes; returns n (at most chunk bytes;
 * 0 only for an empty content, "BDAT 0 LAST") */
long long smtp_body_bdat_command(long long pos, long long total, long long chunk, buf_t *out);

/* smtp_body_job.c: smtp_body_convert on a thread, for the event loop */
struct event_base;
struct smtp_body_job;
/* the conversion is over: rc and err as smtp_body_convert's (err valid
 * during the call only); the result is in dest already */
typedef void (*smtp_body_done_fn)(void *arg, int rc, const struct smtp_body_error *err);
/* smtp_body_job_start - smtp_body_convert(dest, ...) on a thread of its own
 * (on copies: req, qfd and headers may go away meanwhile; headers is taken
 * over, left empty); done runs on base's loop, never before this returns.
 * Resource failures are fatal. */
struct smtp_body_job *smtp_body_job_start(struct event_base *base, struct smtp_body *dest,
                                          const struct smtp_body_policy *p,
                                          const struct delivery_request *req, int qfd,
                                          buf_t *headers, size_t replaced, smtp_body_done_fn done,
                                          void *arg);
/* smtp_body_job_cancel - done will not run, dest is not touched; the job
 * frees itself when the thread ends (NULL: nothing) */
void smtp_body_job_cancel(struct smtp_body_job *job);

#endif
