/*
 * forward - re-injection of forwarded addresses (aliases and .forward
 * entries that leave this host, luser_relay).  One new message per sender
 * goes to private/cleanup with the cleanup protocol (docs/internals.md):
 * the original content behind a "Delivered-To: <recipient>" header, which
 * stops forwarding loops, and cleanup's Received: header, which counts the
 * expansion as a hop against hopcount_limit.  The forwarded recipients are
 * then "sent (forwarded as NEWID)".
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "local.h"
#include "service.h"

#define FORWARD_CHUNK 65536
#define FORWARD_REPLY_TIMEOUT 300

/* forward_submit - the cleanup.submit message */
static void forward_submit(const struct delivery_request *req, const struct delivery_rcpt *rcpt,
                           struct local_target **targets, size_t n, buf_t *out)
{
    attr_begin(out, "cleanup.submit");
    attr_add_str(out, "sender", targets[0]->sender);
    attr_add_str(out, "client_name", "localhost");
    attr_add_str(out, "client_addr", "");
    attr_add_str(out, "helo", "");
    attr_add_str(out, "protocol", "local");
    if (req->envid[0])
        attr_add_str(out, "envid", req->envid);
    if (req->ret[0])
        attr_add_str(out, "ret", req->ret);
    attr_add_str(out, "body",
                 req->body_binary ? "BINARYMIME"
                 : req->body_8bit ? "8BITMIME"
                                  : "7BIT");
    if (req->requiretls) /* RFC 8689: the promise holds for the forwarded copy too */
        attr_add_str(out, "requiretls", "yes");
    if (req->auth_mailbox && req->auth_mailbox[0])
        attr_add_str(out, "auth_mailbox", req->auth_mailbox);
    attr_add_str(out, "local_expanded", "yes"); /* qmgr: no alias lookup again */
    for (size_t i = 0; i < n; i++) {
        attr_add_str(out, "rcpt", targets[i]->what);
        attr_add_str(out, "orig_rcpt", rcpt->address);
        attr_add_str(out, "notify", rcpt->notify);
        attr_add_str(out, "orcpt", rcpt->orcpt);
    }
    attr_end(out);
}

/* forward_send - submit, data, end; 0 ok, -1 write error */
static int forward_send(int fd, const struct delivery_request *req,
                        const struct delivery_rcpt *rcpt, const struct local_message *msg,
                        struct local_target **targets, size_t n)
{
    buf_t out = BUF_INIT, hdr = BUF_INIT;
    size_t off = 0;
    int rc;

    forward_submit(req, rcpt, targets, n, &out);
    attr_begin(&out, "cleanup.data");
    buf_printf(&hdr, "Delivered-To: %s\r\n", rcpt->address);
    attr_add(&out, "data", hdr.data, hdr.len);
    attr_end(&out);
    buf_free(&hdr);
    rc = attr_write_fd(fd, &out);
    while (rc == 0 && off < msg->len) {
        size_t len = msg->len - off > FORWARD_CHUNK ? FORWARD_CHUNK : msg->len - off;
        buf_reset(&out);
        attr_begin(&out, "cleanup.data");
        attr_add(&out, "data", msg->content + off, len);
        attr_end(&out);
        rc = attr_write_fd(fd, &out);
        off += len;
    }
    if (rc == 0) {
        buf_reset(&out);
        attr_begin(&out, "cleanup.end");
        attr_end(&out);
        rc = attr_write_fd(fd, &out);
    }
    buf_free(&out);
    return rc;
}

/* forward_set_all - the same result for every target */
static void forward_set_all(struct local_target **targets, size_t n, enum delivery_status st,
                            const char *dsn, const char *reason)
{
    for (size_t i = 0; i < n; i++)
        local_result_set(&targets[i]->result, st, dsn, "%s", reason);
}

/* forward_reply - cleanup's answer into the targets' results */
static void forward_reply(int fd, struct local_target **targets, size_t n)
{
    struct attr_msg m;
    const char *status, *proto;
    buf_t reason = BUF_INIT;

    attr_msg_init(&m);
    if (attr_read_fd(fd, &m, FORWARD_REPLY_TIMEOUT) < 0 || (proto = attr_proto(&m)) == NULL ||
        strcmp(proto, "cleanup.reply") != 0 || (status = attr_get(&m, "status", NULL)) == NULL) {
        forward_set_all(targets, n, DELIVERY_DEFER, "4.3.0",
                        "cannot forward: no reply from cleanup");
    } else if (strcmp(status, "ok") == 0) {
        const char *id = attr_get(&m, "queue_id", NULL);
        buf_printf(&reason, "forwarded as %.20s", id ? id : "?");
        forward_set_all(targets, n, DELIVERY_SENT, "2.0.0", buf_cstr(&reason));
    } else {
        const char *dsn = attr_get(&m, "dsn", NULL), *text = attr_get(&m, "text", NULL);
        int perm = strcmp(status, "permfail") == 0;
        buf_printf(&reason, "cannot forward: %.300s", text ? text : status);
        forward_set_all(targets, n, perm ? DELIVERY_BOUNCE : DELIVERY_DEFER,
                        dsn && (dsn[0] == '4' || dsn[0] == '5') && strlen(dsn) < 16
                            ? dsn
                            : (perm ? "5.3.0" : "4.3.0"),
                        buf_cstr(&reason));
    }
    buf_free(&reason);
    attr_msg_free(&m);
}

/* local_forward - see local.h */
void local_forward(const struct delivery_request *req, const struct delivery_rcpt *rcpt,
                   const struct local_message *msg, struct local_target **targets, size_t n)
{
    int fd = unix_connect("private/cleanup", 0);

    if (fd < 0) {
        forward_set_all(targets, n, DELIVERY_DEFER, "4.3.0",
                        "cannot forward: cleanup service unavailable");
        return;
    }
    if (forward_send(fd, req, rcpt, msg, targets, n) < 0)
        forward_set_all(targets, n, DELIVERY_DEFER, "4.3.0", "cannot forward: lost cleanup");
    else
        forward_reply(fd, targets, n);
    close(fd);
}
