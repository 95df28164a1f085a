/*
 * delivery - validating a TRANSPORT.deliver request from qmgr and encoding
 * the TRANSPORT.result answer (see delivery.h).  Nothing in the request is
 * trusted: every value is checked for control characters and other bytes
 * that could smuggle an SMTP command, a header line or a file name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "timeutil.h"
#include "qfile.h"

#define DELIVERY_MAX_ARRIVAL (1LL << 40)

/* delivery_request_init - see delivery.h */
void delivery_request_init(struct delivery_request *req)
{
    memset(req, 0, sizeof(*req));
}

/* delivery_request_free - see delivery.h */
void delivery_request_free(struct delivery_request *req)
{
    for (size_t i = 0; i < req->rcpt_count; i++) {
        free(req->rcpts[i].address);
        free(req->rcpts[i].notify);
        free(req->rcpts[i].orcpt);
        buf_free(&req->rcpts[i].result.reason);
    }
    free(req->rcpts);
    free(req->path);
    free(req->sender);
    free(req->nexthop);
    free(req->envid);
    free(req->ret);
    free(req->auth_mailbox);
    buf_free(&req->transcript);
    delivery_request_init(req);
}

/* delivery_text_ok - at most max bytes, no NUL or other control character;
 * no_space also refuses spaces (ESMTP parameter values) */
static int delivery_text_ok(const char *v, size_t len, size_t max, int no_space)
{
    if (len > max)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < ' ' || c == 127 || (no_space && c == ' '))
            return 0;
    }
    return 1;
}

/* delivery_address_ok - 8-bit allowed (SMTPUTF8 addresses pass through), but
 * no control characters, no '<' '>' that would break the angle brackets */
static int delivery_address_ok(const char *v, size_t len)
{
    if (!delivery_text_ok(v, len, DELIVERY_MAX_ADDRESS, 0))
        return 0;
    return memchr(v, '<', len) == NULL && memchr(v, '>', len) == NULL;
}

/* delivery_value_ok - an address, or a parameter with param */
static int delivery_value_ok(const char *v, size_t len, int param)
{
    return param ? delivery_text_ok(v, len, DELIVERY_MAX_PARAM, 1) : delivery_address_ok(v, len);
}

/* delivery_get_str - a required (or optional: "" when missing) checked string */
static int delivery_get_str(const struct attr_msg *m, const char *name, int required, int param,
                            char **out, buf_t *err)
{
    size_t len = 0;
    const char *v = attr_get(m, name, &len);

    if (v == NULL && !required)
        v = "";
    if (v == NULL) {
        buf_printf(err, "missing %s", name);
        return -1;
    }
    if (!delivery_value_ok(v, len, param)) {
        buf_printf(err, "bad %s", name);
        return -1;
    }
    *out = xstrndup(v, len);
    return 0;
}

/* delivery_path_ok - "active/ID" style: relative, no "..", no odd bytes */
static int delivery_path_ok(const char *p, size_t len)
{
    if (len == 0 || p[0] == '/' || !delivery_text_ok(p, len, DELIVERY_MAX_PATH, 1))
        return 0;
    return strstr(p, "..") == NULL;
}

/* delivery_request_numbers - content_offset, content_length, arrival, size */
static int delivery_request_numbers(const struct attr_msg *m, struct delivery_request *req,
                                    buf_t *err)
{
    if (attr_get_int(m, "content_offset", 0, QFILE_MAX_RECORD, &req->content_offset) < 0 ||
        attr_get_int(m, "content_length", 0, QFILE_MAX_RECORD, &req->content_length) < 0 ||
        attr_get_int(m, "arrival", 0, DELIVERY_MAX_ARRIVAL, &req->arrival) < 0 ||
        attr_get_int(m, "size", 0, DELIVERY_MAX_ARRIVAL, &req->size) < 0) {
        buf_puts(err, "bad content_offset, content_length, arrival or size");
        return -1;
    }
    return 0;
}

/* delivery_flag - an optional "yes" attribute */
static int delivery_flag(const struct attr_msg *m, const char *name)
{
    const char *v = attr_get(m, name, NULL);
    return v != NULL && strcmp(v, "yes") == 0;
}

/* delivery_request_tls - requiretls, tls_required_no, auth_mailbox (all
 * optional: a request from an older qmgr has none) */
static int delivery_request_tls(const struct attr_msg *m, struct delivery_request *req, buf_t *err)
{
    size_t len = 0;
    const char *v = attr_get(m, "auth_mailbox", &len);

    req->trace = delivery_flag(m, "trace");
    req->requiretls = delivery_flag(m, "requiretls");
    req->smtputf8 = delivery_flag(m, "smtputf8");
    req->tls_required_no = !req->requiretls && delivery_flag(m, "tls_required_no");
    if (v != NULL && len == 2 && memcmp(v, "<>", 2) == 0) {
        req->auth_mailbox = xstrdup("<>");
        return 0;
    }
    return delivery_get_str(m, "auth_mailbox", 0, 0, &req->auth_mailbox, err);
}

/* delivery_request_envelope - the per-message attributes */
static int delivery_request_envelope(const struct attr_msg *m, struct delivery_request *req,
                                     buf_t *err)
{
    size_t len = 0;
    const char *v = attr_get(m, "queue_id", &len);

    if (v == NULL || len != QID_LEN || !qid_valid(v)) {
        buf_puts(err, "bad queue_id");
        return -1;
    }
    memcpy(req->queue_id, v, QID_LEN + 1);
    v = attr_get(m, "path", &len);
    if (v == NULL || !delivery_path_ok(v, len)) {
        buf_puts(err, "bad path");
        return -1;
    }
    req->path = xstrndup(v, len);
    if (delivery_request_numbers(m, req, err) < 0)
        return -1;
    if (delivery_get_str(m, "sender", 1, 0, &req->sender, err) < 0 ||
        delivery_get_str(m, "nexthop", 1, 1, &req->nexthop, err) < 0 ||
        delivery_get_str(m, "envid", 0, 1, &req->envid, err) < 0 ||
        delivery_get_str(m, "ret", 0, 1, &req->ret, err) < 0)
        return -1;
    if (req->ret[0] && strcmp(req->ret, "FULL") != 0 && strcmp(req->ret, "HDRS") != 0) {
        buf_puts(err, "bad ret");
        return -1;
    }
    v = attr_get(m, "body", &len);
    req->body_binary = v != NULL && strcmp(v, "BINARYMIME") == 0;
    req->body_8bit = req->body_binary || (v != NULL && strcmp(v, "8BITMIME") == 0);
    return delivery_request_tls(m, req, err);
}

/* delivery_rcpt_new - start the next recipient at an "index" attribute */
static int delivery_rcpt_new(struct delivery_request *req, const struct attr *a, size_t *cap,
                             buf_t *err)
{
    struct delivery_rcpt *r;
    char *end;
    long long idx;

    if (req->rcpt_count >= QFILE_MAX_RCPTS) {
        buf_puts(err, "too many recipients");
        return -1;
    }
    idx = strtoll(a->value, &end, 10);
    if (a->len == 0 || a->len > 12 || *end || idx < 0 || strlen(a->value) != a->len) {
        buf_puts(err, "bad index");
        return -1;
    }
    if (req->rcpt_count == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        req->rcpts = xrealloc(req->rcpts, *cap * sizeof(*req->rcpts));
    }
    r = &req->rcpts[req->rcpt_count++];
    memset(r, 0, sizeof(*r));
    r->index = idx;
    r->result.status = DELIVERY_PENDING;
    buf_init(&r->result.reason);
    return 0;
}

/* delivery_rcpt_field - rcpt, notify or orcpt of the current recipient */
static int delivery_rcpt_field(struct delivery_rcpt *r, const struct attr *a, buf_t *err)
{
    int is_rcpt = strcmp(a->name, "rcpt") == 0;
    char **slot = is_rcpt ? &r->address : strcmp(a->name, "notify") == 0 ? &r->notify : &r->orcpt;

    if (*slot != NULL) {
        buf_printf(err, "duplicate %s", a->name);
        return -1;
    }
    if (!delivery_value_ok(a->value, a->len, !is_rcpt) || (is_rcpt && a->len == 0)) {
        buf_printf(err, "bad %s", a->name);
        return -1;
    }
    *slot = xstrndup(a->value, a->len);
    return 0;
}

/* delivery_request_rcpts - the recipient groups: index, rcpt, notify, orcpt */
static int delivery_request_rcpts(const struct attr_msg *m, struct delivery_request *req,
                                  buf_t *err)
{
    size_t cap = 0;

    for (size_t i = 0; i < m->count; i++) {
        const struct attr *a = &m->v[i];
        int is_field = strcmp(a->name, "rcpt") == 0 || strcmp(a->name, "notify") == 0 ||
                       strcmp(a->name, "orcpt") == 0;
        if (strcmp(a->name, "index") == 0) {
            if (delivery_rcpt_new(req, a, &cap, err) < 0)
                return -1;
        } else if (is_field) {
            if (req->rcpt_count == 0) {
                buf_printf(err, "%s before index", a->name);
                return -1;
            }
            if (delivery_rcpt_field(&req->rcpts[req->rcpt_count - 1], a, err) < 0)
                return -1;
        }
    }
    return 0;
}

/* delivery_request_complete - every recipient has an address; "" defaults */
static int delivery_request_complete(struct delivery_request *req, buf_t *err)
{
    if (req->rcpt_count == 0) {
        buf_puts(err, "no recipients");
        return -1;
    }
    for (size_t i = 0; i < req->rcpt_count; i++) {
        struct delivery_rcpt *r = &req->rcpts[i];
        if (r->address == NULL) {
            buf_puts(err, "recipient without rcpt");
            return -1;
        }
        if (r->notify == NULL)
            r->notify = xstrdup("");
        if (r->orcpt == NULL)
            r->orcpt = xstrdup("");
    }
    return 0;
}

/* delivery_request_parse - see delivery.h */
int delivery_request_parse(const struct attr_msg *m, const char *transport,
                           struct delivery_request *req, buf_t *err)
{
    const char *proto = attr_proto(m);
    size_t n = strlen(transport);

    if (proto == NULL || strncmp(proto, transport, n) != 0 || strcmp(proto + n, ".deliver") != 0) {
        buf_printf(err, "unexpected request \"%.40s\"", proto ? proto : "");
        return -1;
    }
    req->started = time_now_double();
    if (delivery_request_envelope(m, req, err) < 0 || delivery_request_rcpts(m, req, err) < 0)
        return -1;
    return delivery_request_complete(req, err);
}

/* delivery_status_name - see delivery.h */
const char *delivery_status_name(enum delivery_status status)
{
    switch (status) {
    case DELIVERY_SENT:
        return "sent";
    case DELIVERY_BOUNCE:
        return "bounce";
    default:
        return "defer";
    }
}

/* delivery_rcpt_set - see delivery.h */
void delivery_rcpt_set(struct delivery_rcpt *r, enum delivery_status status, const char *dsn,
                       const char *reason)
{
    if (r->result.status != DELIVERY_PENDING)
        return;
    r->result.status = status;
    snprintf(r->result.dsn, sizeof(r->result.dsn), "%s", dsn);
    buf_set(&r->result.reason, reason);
}

/* delivery_result_encode - see delivery.h */
void delivery_result_encode(const struct delivery_request *req, const char *transport, buf_t *out)
{
    buf_t proto = BUF_INIT;

    buf_printf(&proto, "%s.result", transport);
    attr_begin(out, buf_cstr(&proto));
    if (req->transcript.len > 0)
        attr_add_str(out, "transcript", buf_cstr(&req->transcript));
    for (size_t i = 0; i < req->rcpt_count; i++) {
        const struct delivery_rcpt *r = &req->rcpts[i];
        int pending = r->result.status == DELIVERY_PENDING;
        attr_add_int(out, "index", r->index);
        attr_add_str(out, "status", delivery_status_name(r->result.status));
        attr_add_str(out, "dsn", pending || !r->result.dsn[0] ? "4.3.0" : r->result.dsn);
        attr_add_str(out, "reason",
                     pending ? "delivery not attempted" : buf_cstr(&r->result.reason));
        if (r->dsn_passed)
            attr_add_str(out, "dsn_passed", "yes");
    }
    attr_end(out);
    buf_free(&proto);
}

/* delivery_trace - see delivery.h */
void delivery_trace(struct delivery_request *req, const char *prefix, const char *text, size_t len)
{
    if (!req->trace || req->transcript.len >= DELIVERY_MAX_TRANSCRIPT)
        return;
    buf_puts(&req->transcript, prefix);
    buf_append(&req->transcript, text, len);
    buf_putc(&req->transcript, '\n');
}
