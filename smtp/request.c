/*
 * request - the smtp protocol with qmgr (docs/internals.md, "smtp protocol"):
 * validating a smtp.deliver request and encoding the smtp.result answer.
 * Nothing in the request is trusted: every value that ends up in an SMTP
 * command is checked for line breaks and other bytes that could smuggle a
 * command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qfile.h"
#include "smtp.h"

#define SMTP_MAX_ADDRESS 998 /* an address must fit in one SMTP command line */
#define SMTP_MAX_PARAM 500
#define SMTP_MAX_ARRIVAL (1LL << 40)

/* smtp_request_init - an empty request */
void smtp_request_init(struct smtp_request *req)
{
    memset(req, 0, sizeof(*req));
}

/* smtp_request_free - release everything the request owns */
void smtp_request_free(struct smtp_request *req)
{
    for (size_t i = 0; i < req->rcpt_count; i++) {
        free(req->rcpts[i].address);
        free(req->rcpts[i].notify);
        free(req->rcpts[i].orcpt);
        buf_free(&req->rcpts[i].reason);
    }
    free(req->rcpts);
    free(req->path);
    free(req->sender);
    free(req->nexthop);
    free(req->envid);
    free(req->ret);
    smtp_request_init(req);
}

/* smtp_text_ok - 1 when v (len bytes) is printable ASCII without NUL/CR/LF;
 * no_space also refuses spaces (ESMTP parameter values) */
static int smtp_text_ok(const char *v, size_t len, size_t max, int no_space)
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

/* smtp_address_ok - 8-bit allowed (SMTPUTF8 addresses pass through), but no
 * control characters, no '<' '>' that would break the angle brackets */
static int smtp_address_ok(const char *v, size_t len)
{
    if (len > SMTP_MAX_ADDRESS)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < ' ' || c == 127 || c == '<' || c == '>')
            return 0;
    }
    return 1;
}

/* smtp_get_str - a required (or optional: "" when missing) checked string */
static int smtp_get_str(const struct attr_msg *m, const char *name, int required, int param,
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
    if (param ? !smtp_text_ok(v, len, SMTP_MAX_PARAM, 1) : !smtp_address_ok(v, len)) {
        buf_printf(err, "bad %s", name);
        return -1;
    }
    *out = xstrndup(v, len);
    return 0;
}

/* smtp_path_ok - relative, no ".." component, no odd bytes */
static int smtp_path_ok(const char *p, size_t len)
{
    if (len == 0 || len > 256 || p[0] == '/' || strlen(p) != len)
        return 0;
    if (strcmp(p, "..") == 0 || strncmp(p, "../", 3) == 0 || strstr(p, "/../") != NULL)
        return 0;
    if (len >= 3 && strcmp(p + len - 3, "/..") == 0)
        return 0;
    return smtp_text_ok(p, len, 256, 1);
}

/* smtp_request_envelope - the per-message attributes */
static int smtp_request_envelope(const struct attr_msg *m, struct smtp_request *req, buf_t *err)
{
    size_t len = 0;
    const char *v = attr_get(m, "queue_id", &len);

    if (v == NULL || len != QID_LEN || !qid_valid(v)) {
        buf_puts(err, "bad queue_id");
        return -1;
    }
    memcpy(req->queue_id, v, QID_LEN + 1);
    v = attr_get(m, "path", &len);
    if (v == NULL || !smtp_path_ok(v, len)) {
        buf_puts(err, "bad path");
        return -1;
    }
    req->path = xstrndup(v, len);
    if (attr_get_int(m, "content_offset", 0, QFILE_MAX_RECORD, &req->content_offset) < 0 ||
        attr_get_int(m, "content_length", 0, QFILE_MAX_RECORD, &req->content_length) < 0 ||
        attr_get_int(m, "arrival", 0, SMTP_MAX_ARRIVAL, &req->arrival) < 0 ||
        attr_get_int(m, "size", 0, SMTP_MAX_ARRIVAL, &req->size) < 0) {
        buf_puts(err, "bad content_offset, content_length, arrival or size");
        return -1;
    }
    if (smtp_get_str(m, "sender", 1, 0, &req->sender, err) < 0 ||
        smtp_get_str(m, "nexthop", 1, 1, &req->nexthop, err) < 0 ||
        smtp_get_str(m, "envid", 0, 1, &req->envid, err) < 0 ||
        smtp_get_str(m, "ret", 0, 1, &req->ret, err) < 0)
        return -1;
    if (req->nexthop[0] == 0) {
        buf_puts(err, "empty nexthop");
        return -1;
    }
    if (req->ret[0] && strcmp(req->ret, "FULL") != 0 && strcmp(req->ret, "HDRS") != 0) {
        buf_puts(err, "bad ret");
        return -1;
    }
    v = attr_get(m, "body", &len);
    req->body_8bit = v != NULL && strcmp(v, "8BITMIME") == 0;
    return 0;
}

/* smtp_rcpt_field - store one recipient attribute into the current recipient */
static int smtp_rcpt_field(struct smtp_rcpt *r, const struct attr *a, buf_t *err)
{
    char **slot;
    int param = 1;

    if (strcmp(a->name, "rcpt") == 0) {
        slot = &r->address;
        param = 0;
    } else if (strcmp(a->name, "notify") == 0) {
        slot = &r->notify;
    } else {
        slot = &r->orcpt;
    }
    if (*slot != NULL) {
        buf_printf(err, "duplicate %s", a->name);
        return -1;
    }
    if (param ? !smtp_text_ok(a->value, a->len, SMTP_MAX_PARAM, 1)
              : !smtp_address_ok(a->value, a->len) || a->len == 0) {
        buf_printf(err, "bad %s", a->name);
        return -1;
    }
    *slot = xstrndup(a->value, a->len);
    return 0;
}

/* smtp_rcpt_new - start the next recipient at an "index" attribute */
static int smtp_rcpt_new(struct smtp_request *req, const struct attr *a, size_t *cap, buf_t *err)
{
    struct smtp_rcpt *r;
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
    r->status = RCPT_PENDING;
    buf_init(&r->reason);
    return 0;
}

/* smtp_request_rcpts - the recipient groups: index, rcpt, notify, orcpt */
static int smtp_request_rcpts(const struct attr_msg *m, struct smtp_request *req, buf_t *err)
{
    size_t cap = 0;

    for (size_t i = 0; i < m->count; i++) {
        const struct attr *a = &m->v[i];
        int is_field = strcmp(a->name, "rcpt") == 0 || strcmp(a->name, "notify") == 0 ||
                       strcmp(a->name, "orcpt") == 0;
        if (strcmp(a->name, "index") == 0) {
            if (smtp_rcpt_new(req, a, &cap, err) < 0)
                return -1;
        } else if (is_field) {
            if (req->rcpt_count == 0) {
                buf_printf(err, "%s before index", a->name);
                return -1;
            }
            if (smtp_rcpt_field(&req->rcpts[req->rcpt_count - 1], a, err) < 0)
                return -1;
        }
    }
    return 0;
}

/* smtp_request_parse - see smtp.h */
int smtp_request_parse(const struct attr_msg *m, struct smtp_request *req, buf_t *err)
{
    const char *proto = attr_proto(m);

    if (proto == NULL || strcmp(proto, "smtp.deliver") != 0) {
        buf_printf(err, "unexpected request \"%.40s\"", proto ? proto : "");
        return -1;
    }
    if (smtp_request_envelope(m, req, err) < 0 || smtp_request_rcpts(m, req, err) < 0)
        return -1;
    if (req->rcpt_count == 0) {
        buf_puts(err, "no recipients");
        return -1;
    }
    for (size_t i = 0; i < req->rcpt_count; i++) {
        struct smtp_rcpt *r = &req->rcpts[i];
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

/* smtp_status_name - see smtp.h */
const char *smtp_status_name(enum smtp_rcpt_status status)
{
    switch (status) {
    case RCPT_SENT:
        return "sent";
    case RCPT_BOUNCE:
        return "bounce";
    default:
        return "defer";
    }
}

/* smtp_rcpt_set - see smtp.h */
void smtp_rcpt_set(struct smtp_rcpt *r, enum smtp_rcpt_status status, const char *dsn,
                   const char *reason)
{
    if (r->status != RCPT_PENDING)
        return;
    r->status = status;
    snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
    buf_set(&r->reason, reason);
}

/* smtp_result_encode - see smtp.h */
void smtp_result_encode(const struct smtp_request *req, buf_t *out)
{
    attr_begin(out, "smtp.result");
    for (size_t i = 0; i < req->rcpt_count; i++) {
        const struct smtp_rcpt *r = &req->rcpts[i];
        attr_add_int(out, "index", r->index);
        attr_add_str(out, "status", smtp_status_name(r->status));
        attr_add_str(out, "dsn", r->dsn[0] ? r->dsn : "4.3.0");
        attr_add_str(out, "reason", buf_cstr(&r->reason));
    }
    attr_end(out);
}
