/*
 * fuzz_delivery_request - libFuzzer target for lib/delivery.c: what a
 * delivery agent reads from its socket is an attr message (attr_decode)
 * that delivery_request_parse must validate.  The transport is "smtp" or
 * "local" by the first input byte.  An accepted request must keep its
 * promises (delivery.h: bounded, no control characters, no '<' '>' in
 * addresses, a relative path without ".."), and delivery_result_encode of
 * it must decode again into one result per recipient.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "buf.h"
#include "delivery.h"
#include "qfile.h"

/* fuzz_text_ok - at most max bytes, no control character */
static void fuzz_text_check(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n > max)
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < ' ' || s[i] == 127)
            abort();
}

/* fuzz_request_check - what an accepted request promises */
static void fuzz_request_check(const struct delivery_request *req)
{
    if (req->rcpt_count == 0 || req->rcpt_count > QFILE_MAX_RCPTS)
        abort();
    if (req->path[0] == 0 || req->path[0] == '/' || strstr(req->path, ".."))
        abort();
    fuzz_text_check(req->path, DELIVERY_MAX_PATH);
    fuzz_text_check(req->sender, DELIVERY_MAX_ADDRESS);
    fuzz_text_check(req->nexthop, DELIVERY_MAX_PARAM);
    fuzz_text_check(req->envid, DELIVERY_MAX_PARAM);
    if (strpbrk(req->sender, "<>") || strchr(req->envid, ' '))
        abort();
    if (req->ret[0] && strcmp(req->ret, "FULL") != 0 && strcmp(req->ret, "HDRS") != 0)
        abort();
    if (req->content_offset < 0 || req->content_length < 0 || strlen(req->queue_id) != QID_LEN)
        abort();
    for (size_t i = 0; i < req->rcpt_count; i++) {
        const struct delivery_rcpt *r = &req->rcpts[i];
        if (r->index < 0 || r->address[0] == 0 || strpbrk(r->address, "<>") ||
            strchr(r->notify, ' ') || strchr(r->orcpt, ' '))
            abort();
        fuzz_text_check(r->address, DELIVERY_MAX_ADDRESS);
        fuzz_text_check(r->notify, DELIVERY_MAX_PARAM);
        fuzz_text_check(r->orcpt, DELIVERY_MAX_PARAM);
    }
}

/* fuzz_result_check - the encoded result decodes to one group per rcpt */
static void fuzz_result_check(struct delivery_request *req, const char *transport)
{
    buf_t out = BUF_INIT;
    struct attr_msg m;
    size_t used = 0, groups = 0;

    for (size_t i = 0; i < req->rcpt_count; i += 2) /* some set, some pending */
        delivery_rcpt_set(&req->rcpts[i], i % 4 ? DELIVERY_BOUNCE : DELIVERY_SENT,
                          i % 4 ? "5.1.1" : "", req->rcpts[i].address);
    delivery_result_encode(req, transport, &out);
    attr_msg_init(&m);
    if (attr_decode(out.data, out.len, &used, &m) != 1 || used != out.len ||
        strncmp(attr_proto(&m), transport, strlen(transport)) != 0)
        abort();
    for (size_t i = 0; i < m.count; i++)
        if (strcmp(m.v[i].name, "index") == 0)
            groups++;
    if (groups != req->rcpt_count)
        abort();
    attr_msg_free(&m);
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *transport;
    struct attr_msg m;
    struct delivery_request req;
    buf_t err = BUF_INIT;
    size_t used = 0;

    if (size == 0)
        return 0;
    transport = data[0] & 1 ? "local" : "smtp";
    attr_msg_init(&m);
    delivery_request_init(&req);
    if (attr_decode((const char *)data + 1, size - 1, &used, &m) == 1) {
        if (delivery_request_parse(&m, transport, &req, &err) == 0) {
            fuzz_request_check(&req);
            fuzz_result_check(&req, transport);
        } else if (err.len == 0) {
            abort(); /* a refusal says why */
        }
    }
    delivery_request_free(&req);
    attr_msg_free(&m);
    buf_free(&err);
    return 0;
}
