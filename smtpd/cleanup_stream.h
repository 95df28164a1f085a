/*
 * cleanup_stream - one message on its way to cleanup (docs/internals.md,
 * "cleanup protocol"): connect to private/cleanup, send cleanup.submit, then
 * the content in cleanup.data pieces of at most 64 KiB, then cleanup.end, and
 * wait for cleanup.reply.  Non-blocking, on the session's event loop.
 *
 * The stream reports exactly once, through on_reply, with the SMTP reply the
 * client must get: "250 2.0.0 Ok: queued as ID" only when cleanup said ok;
 * cleanup's code/dsn/text on a failure it reported; "451 4.3.0 Error: queue
 * file write error" when the connection broke, timed out, or cleanup sent
 * something malformed; a whole "reply" of cleanup's (a milter's refusal,
 * lines separated by "\r\n") verbatim.  After on_reply the stream is finished and must be
 * closed by its owner (cleanup_stream_close may be called from on_reply).
 */
#ifndef TERN_SMTPD_CLEANUP_STREAM_H
#define TERN_SMTPD_CLEANUP_STREAM_H

#include <stddef.h>
#include "buf.h"

struct event_base;
struct cleanup_stream;
struct attr_msg;

/* the reply to the client when cleanup cannot be used */
#define CLEANUP_STREAM_FAILURE "451 4.3.0 Error: queue file write error"
/* largest cleanup.data message */
#define CLEANUP_STREAM_CHUNK (64 * 1024)

struct cleanup_stream_callbacks {
    /* the final answer (reply without the last CRLF); queue_id may be "";
     * msg: cleanup.reply as received, NULL when the stream broke */
    void (*on_reply)(void *ctx, const char *reply, const char *queue_id,
                     const struct attr_msg *msg);
    /* the output to cleanup has drained below the low-water mark */
    void (*on_drained)(void *ctx);
    void *ctx;
};

/* cleanup_stream_open - connect, pass the nfds milter sockets fds (none
 * when nfds is 0; lib/milter.h: milter_fd_send) and send submit (a
 * complete attr message); NULL when cleanup is unreachable.  timeout
 * (seconds) bounds each wait. */
struct cleanup_stream *cleanup_stream_open(struct event_base *base, const buf_t *submit,
                                           const int *fds, size_t nfds,
                                           const struct cleanup_stream_callbacks *cb,
                                           long long timeout);
/* cleanup_stream_data - queue content bytes for cleanup */
void cleanup_stream_data(struct cleanup_stream *cs, const char *data, size_t len);
/* cleanup_stream_pending - bytes not yet written to cleanup */
size_t cleanup_stream_pending(const struct cleanup_stream *cs);
/* cleanup_stream_end - send cleanup.end; on_reply follows.  hold non-NULL:
 * the message goes to the hold queue for that reason (a HOLD decided at the
 * end of the data) */
void cleanup_stream_end(struct cleanup_stream *cs, const char *hold);
/* cleanup_stream_ended - cleanup.end was sent */
int cleanup_stream_ended(const struct cleanup_stream *cs);
/* cleanup_stream_close - drop the connection; a message that was not ended
 * is thrown away by cleanup */
void cleanup_stream_close(struct cleanup_stream *cs);

#endif
