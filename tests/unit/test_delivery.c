/*
 * test_delivery - unit tests for lib/delivery: a TRANSPORT.deliver request
 * round-trips through parse and the TRANSPORT.result encoding, and every
 * kind of malformed request (missing attribute, bad number, control
 * character, '<' '>' in an address, recipient groups out of order, too many
 * recipients) is refused with a reason instead of being half-trusted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "attr.h"
#include "buf.h"
#include "delivery.h"
#include "qfile.h"

#define QUEUE_ID "0123456789AB"

/* one attribute of a test request; value NULL leaves it out */
struct kv {
    const char *name;
    const char *value;
};

static const struct kv good_envelope[] = {
    {"queue_id", QUEUE_ID},
    {"path", "active/" QUEUE_ID},
    {"content_offset", "120"},
    {"content_length", "3456"},
    {"sender", "alice@example.org"},
    {"nexthop", "example.com"},
    {"arrival", "1700000000"},
    {"size", "3000"},
    {"envid", "ENV1"},
    {"ret", "HDRS"},
    {"body", "8BITMIME"},
    {"requiretls", "yes"},
    {"auth_mailbox", "alice@example.org"},
};

static const struct kv good_rcpts[] = {
    {"index", "0"},
    {"rcpt", "bob@example.com"},
    {"notify", "SUCCESS,FAILURE"},
    {"orcpt", "rfc822;bob@example.com"},
    {"index", "3"},
    {"rcpt", "carol@example.com"},
};

/* build - encode proto + the good request with name replaced by value
 * (value NULL: left out), then decode it into m */
static void build(struct attr_msg *m, const char *proto, const char *name, const char *value)
{
    buf_t out = BUF_INIT;
    size_t used = 0;

    attr_begin(&out, proto);
    for (size_t i = 0; i < sizeof(good_envelope) / sizeof(good_envelope[0]); i++) {
        const struct kv *a = &good_envelope[i];
        int hit = name != NULL && strcmp(a->name, name) == 0;
        if (!hit)
            attr_add_str(&out, a->name, a->value);
        else if (value != NULL)
            attr_add_str(&out, a->name, value);
    }
    for (size_t i = 0; i < sizeof(good_rcpts) / sizeof(good_rcpts[0]); i++) {
        const struct kv *a = &good_rcpts[i];
        int hit = name != NULL && strcmp(a->name, name) == 0 && i < 4;
        if (!hit)
            attr_add_str(&out, a->name, a->value);
        else if (value != NULL)
            attr_add_str(&out, a->name, value);
    }
    attr_end(&out);
    attr_msg_init(m);
    assert_int_equal(attr_decode(out.data, out.len, &used, m), 1);
    buf_free(&out);
}

/* parse_fails - the good request with one change is refused, err says why */
static void parse_fails(const char *name, const char *value, const char *why)
{
    struct attr_msg m;
    struct delivery_request req;
    buf_t err = BUF_INIT;

    build(&m, "smtp.deliver", name, value);
    delivery_request_init(&req);
    assert_int_equal(delivery_request_parse(&m, "smtp", &req, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), why));
    delivery_request_free(&req);
    attr_msg_free(&m);
    buf_free(&err);
}

/* raw_fails - a hand-made attribute list is refused, err says why */
static void raw_fails(const struct kv *v, size_t n, const char *why)
{
    buf_t out = BUF_INIT, err = BUF_INIT;
    struct attr_msg m;
    struct delivery_request req;
    size_t used = 0;

    attr_begin(&out, "local.deliver");
    for (size_t i = 0; i < n; i++)
        attr_add_str(&out, v[i].name, v[i].value);
    attr_end(&out);
    attr_msg_init(&m);
    assert_int_equal(attr_decode(out.data, out.len, &used, &m), 1);
    delivery_request_init(&req);
    assert_int_equal(delivery_request_parse(&m, "local", &req, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), why));
    delivery_request_free(&req);
    attr_msg_free(&m);
    buf_free(&out);
    buf_free(&err);
}

/* test_parse_good - every field lands where it belongs */
static void test_parse_good(void **state)
{
    struct attr_msg m;
    struct delivery_request req;
    buf_t err = BUF_INIT;

    (void)state;
    build(&m, "local.deliver", NULL, NULL);
    delivery_request_init(&req);
    assert_int_equal(delivery_request_parse(&m, "local", &req, &err), 0);
    assert_string_equal(req.queue_id, QUEUE_ID);
    assert_string_equal(req.path, "active/" QUEUE_ID);
    assert_int_equal(req.content_offset, 120);
    assert_int_equal(req.content_length, 3456);
    assert_string_equal(req.sender, "alice@example.org");
    assert_string_equal(req.nexthop, "example.com");
    assert_int_equal(req.arrival, 1700000000LL);
    assert_int_equal(req.size, 3000);
    assert_string_equal(req.envid, "ENV1");
    assert_string_equal(req.ret, "HDRS");
    assert_int_equal(req.body_8bit, 1);
    assert_int_equal(req.requiretls, 1);
    assert_int_equal(req.tls_required_no, 0);
    assert_string_equal(req.auth_mailbox, "alice@example.org");
    assert_int_equal(req.rcpt_count, 2);
    assert_int_equal(req.rcpts[0].index, 0);
    assert_string_equal(req.rcpts[0].address, "bob@example.com");
    assert_string_equal(req.rcpts[0].notify, "SUCCESS,FAILURE");
    assert_string_equal(req.rcpts[0].orcpt, "rfc822;bob@example.com");
    assert_int_equal(req.rcpts[1].index, 3);
    assert_string_equal(req.rcpts[1].notify, "");
    assert_string_equal(req.rcpts[1].orcpt, "");
    assert_int_equal(req.rcpts[1].result.status, DELIVERY_PENDING);
    delivery_request_free(&req);
    assert_int_equal(req.rcpt_count, 0);
    attr_msg_free(&m);
    buf_free(&err);
}

/* assert_body - body_8bit and body_binary of the good request with body = value */
static void assert_body(const char *value, int eightbit, int binary)
{
    struct attr_msg m;
    struct delivery_request req;
    buf_t err = BUF_INIT;

    build(&m, "smtp.deliver", "body", value);
    delivery_request_init(&req);
    assert_int_equal(delivery_request_parse(&m, "smtp", &req, &err), 0);
    assert_int_equal(req.body_8bit, eightbit);
    assert_int_equal(req.body_binary, binary);
    delivery_request_free(&req);
    attr_msg_free(&m);
    buf_free(&err);
}

/* test_parse_body_types - BINARYMIME (RFC 3030) is 8-bit content too */
static void test_parse_body_types(void **state)
{
    (void)state;
    assert_body("8BITMIME", 1, 0);
    assert_body("BINARYMIME", 1, 1);
    assert_body("7BIT", 0, 0);
    assert_body(NULL, 0, 0);
}

/* test_parse_optional - envid, ret and body may be missing; an empty
 * nexthop is the transport's business (local gets one for bare names) */
static void test_parse_optional(void **state)
{
    const char *names[] = {"envid", "ret", "body"};
    struct attr_msg m;
    struct delivery_request req;
    buf_t err = BUF_INIT;

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        build(&m, "smtp.deliver", names[i], NULL);
        delivery_request_init(&req);
        assert_int_equal(delivery_request_parse(&m, "smtp", &req, &err), 0);
        delivery_request_free(&req);
        attr_msg_free(&m);
    }
    build(&m, "local.deliver", "nexthop", "");
    delivery_request_init(&req);
    assert_int_equal(delivery_request_parse(&m, "local", &req, &err), 0);
    assert_string_equal(req.nexthop, "");
    delivery_request_free(&req);
    attr_msg_free(&m);
    buf_free(&err);
}

/* test_parse_tls_attributes_default_off - a request from an older qmgr
 * (no requiretls, tls_required_no, auth_mailbox) asks for nothing */
static void test_parse_tls_attributes_default_off(void **state)
{
    struct attr_msg m;
    struct delivery_request req;
    buf_t err = BUF_INIT;

    (void)state;
    build(&m, "smtp.deliver", "auth_mailbox", NULL);
    delivery_request_init(&req);
    assert_int_equal(delivery_request_parse(&m, "smtp", &req, &err), 0);
    assert_int_equal(req.requiretls, 1);
    assert_string_equal(req.auth_mailbox, "");
    delivery_request_free(&req);
    assert_null(req.auth_mailbox);
    attr_msg_free(&m);
    for (int i = 0; i < 2; i++) { /* left out, or not "yes" */
        build(&m, "smtp.deliver", "requiretls", i == 0 ? NULL : "no");
        delivery_request_init(&req);
        assert_int_equal(delivery_request_parse(&m, "smtp", &req, &err), 0);
        assert_int_equal(req.requiretls, 0);
        assert_int_equal(req.tls_required_no, 0);
        delivery_request_free(&req);
        attr_msg_free(&m);
    }
    buf_free(&err);
}

/* test_parse_tls_required_no - kept only without REQUIRETLS (RFC 8689
 * section 4.1: the header is ignored when REQUIRETLS was given) */
static void test_parse_tls_required_no(void **state)
{
    struct attr_msg m;
    struct delivery_request req;
    buf_t err = BUF_INIT;
    buf_t out = BUF_INIT;
    size_t used = 0;

    (void)state;
    for (int with_requiretls = 0; with_requiretls < 2; with_requiretls++) {
        buf_reset(&out);
        attr_begin(&out, "smtp.deliver");
        for (size_t i = 0; i < 10; i++) /* up to body: the required part */
            attr_add_str(&out, good_envelope[i].name, good_envelope[i].value);
        attr_add_str(&out, "tls_required_no", "yes");
        if (with_requiretls)
            attr_add_str(&out, "requiretls", "yes");
        attr_add_str(&out, "auth_mailbox", "<>");
        attr_add_str(&out, "index", "0");
        attr_add_str(&out, "rcpt", "bob@example.com");
        attr_end(&out);
        attr_msg_init(&m);
        used = 0;
        assert_int_equal(attr_decode(out.data, out.len, &used, &m), 1);
        delivery_request_init(&req);
        assert_int_equal(delivery_request_parse(&m, "smtp", &req, &err), 0);
        assert_int_equal(req.requiretls, with_requiretls);
        assert_int_equal(req.tls_required_no, !with_requiretls);
        assert_string_equal(req.auth_mailbox, "<>");
        delivery_request_free(&req);
        attr_msg_free(&m);
    }
    buf_free(&out);
    buf_free(&err);
}

/* test_parse_wrong_proto - another transport's request is refused */
static void test_parse_wrong_proto(void **state)
{
    struct attr_msg m;
    struct delivery_request req;
    buf_t err = BUF_INIT;

    (void)state;
    build(&m, "smtp.deliver", NULL, NULL);
    delivery_request_init(&req);
    assert_int_equal(delivery_request_parse(&m, "local", &req, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "unexpected request"));
    delivery_request_free(&req);
    attr_msg_free(&m);
    build(&m, "smtp.deliverx", NULL, NULL);
    assert_int_equal(delivery_request_parse(&m, "smtp", &req, &err), -1);
    delivery_request_free(&req);
    attr_msg_free(&m);
    buf_free(&err);
}

/* test_parse_missing - every required attribute */
static void test_parse_missing(void **state)
{
    (void)state;
    parse_fails("queue_id", NULL, "bad queue_id");
    parse_fails("path", NULL, "bad path");
    parse_fails("content_offset", NULL, "bad content_offset");
    parse_fails("content_length", NULL, "bad content_offset");
    parse_fails("arrival", NULL, "bad content_offset");
    parse_fails("size", NULL, "bad content_offset");
    parse_fails("sender", NULL, "missing sender");
    parse_fails("nexthop", NULL, "missing nexthop");
    parse_fails("rcpt", NULL, "recipient without rcpt");
}

/* test_parse_bad_numbers - out of range or not a number */
static void test_parse_bad_numbers(void **state)
{
    (void)state;
    parse_fails("content_offset", "-1", "bad content_offset");
    parse_fails("content_length", "12x", "bad content_offset");
    parse_fails("content_length", "99999999999", "bad content_offset");
    parse_fails("arrival", "", "bad content_offset");
    parse_fails("size", "1099511627777", "bad content_offset");
    parse_fails("index", "-2", "bad index");
    parse_fails("index", "1a", "bad index");
    parse_fails("index", "", "bad index");
    parse_fails("index", "1234567890123", "bad index");
}

/* test_parse_bad_text - control characters, '<' '>', spaces, lengths */
static void test_parse_bad_text(void **state)
{
    char long_addr[DELIVERY_MAX_ADDRESS + 2];

    (void)state;
    parse_fails("queue_id", "0123456789A", "bad queue_id");
    parse_fails("queue_id", "0123456789A!", "bad queue_id");
    parse_fails("path", "/active/x", "bad path");
    parse_fails("path", "active/../x", "bad path");
    parse_fails("path", "active/a..b", "bad path");
    parse_fails("path", "active/x y", "bad path");
    parse_fails("sender", "a\r\nRSET@x", "bad sender");
    parse_fails("sender", "a\tb@x", "bad sender");
    parse_fails("sender", "a\177b@x", "bad sender");
    parse_fails("sender", "<a@x>", "bad sender");
    parse_fails("auth_mailbox", "<a@x>", "bad auth_mailbox");
    parse_fails("auth_mailbox", "a\r\nRSET@x", "bad auth_mailbox");
    parse_fails("nexthop", "ex ample", "bad nexthop");
    parse_fails("nexthop", "ex\nample", "bad nexthop");
    parse_fails("envid", "a b", "bad envid");
    parse_fails("ret", "ALL", "bad ret");
    parse_fails("rcpt", "", "bad rcpt");
    parse_fails("rcpt", "bob>@x", "bad rcpt");
    parse_fails("rcpt", "bob\n@x", "bad rcpt");
    parse_fails("notify", "SUCCESS FAILURE", "bad notify");
    parse_fails("orcpt", "rfc822;a\rb", "bad orcpt");
    memset(long_addr, 'a', sizeof(long_addr) - 1);
    long_addr[sizeof(long_addr) - 1] = 0;
    parse_fails("sender", long_addr, "bad sender");
    parse_fails("rcpt", long_addr, "bad rcpt");
    long_addr[DELIVERY_MAX_ADDRESS] = 0;
    parse_fails("notify", long_addr, "bad notify");
}

/* test_parse_bad_groups - recipient groups out of order or repeated */
static void test_parse_bad_groups(void **state)
{
    const struct kv env[] = {
        {"queue_id", QUEUE_ID},  {"path", "active/" QUEUE_ID},
        {"content_offset", "0"}, {"content_length", "0"},
        {"sender", ""},          {"nexthop", "example.com"},
        {"arrival", "0"},        {"size", "0"},
    };
    struct kv v[16];
    size_t n = sizeof(env) / sizeof(env[0]);

    (void)state;
    memcpy(v, env, sizeof(env));
    raw_fails(v, n, "no recipients");
    v[n] = (struct kv){"rcpt", "a@x"};
    v[n + 1] = (struct kv){"index", "0"};
    raw_fails(v, n + 2, "rcpt before index");
    v[n] = (struct kv){"notify", "NEVER"};
    raw_fails(v, n + 2, "notify before index");
    v[n] = (struct kv){"index", "0"};
    v[n + 1] = (struct kv){"rcpt", "a@x"};
    v[n + 2] = (struct kv){"rcpt", "b@x"};
    raw_fails(v, n + 3, "duplicate rcpt");
    v[n + 2] = (struct kv){"orcpt", "rfc822;a@x"};
    v[n + 3] = (struct kv){"orcpt", "rfc822;b@x"};
    raw_fails(v, n + 4, "duplicate orcpt");
    v[n + 2] = (struct kv){"index", "1"};
    v[n + 3] = (struct kv){"notify", "NEVER"};
    raw_fails(v, n + 4, "recipient without rcpt");
}

/* test_parse_too_many - more than QFILE_MAX_RCPTS recipient groups (built
 * by hand: attr_decode itself stops at ATTR_MAX_COUNT attributes) */
static void test_parse_too_many(void **state)
{
    size_t n_env = sizeof(good_envelope) / sizeof(good_envelope[0]);
    size_t n = 1 + n_env + 2 * (QFILE_MAX_RCPTS + 1);
    struct attr_msg m;
    struct delivery_request req;
    buf_t err = BUF_INIT;
    size_t k = 0;

    (void)state;
    memset(&m, 0, sizeof(m));
    m.v = calloc(n, sizeof(*m.v));
    assert_non_null(m.v);
    m.v[k++] = (struct attr){"proto", "smtp.deliver", 12};
    for (size_t i = 0; i < n_env; i++, k++)
        m.v[k] = (struct attr){good_envelope[i].name, good_envelope[i].value,
                               strlen(good_envelope[i].value)};
    while (k < n) {
        m.v[k++] = (struct attr){"index", "7", 1};
        m.v[k++] = (struct attr){"rcpt", "a@x", 3};
    }
    m.count = n;
    delivery_request_init(&req);
    assert_int_equal(delivery_request_parse(&m, "smtp", &req, &err), -1);
    assert_string_equal(buf_cstr(&err), "too many recipients");
    assert_int_equal(req.rcpt_count, QFILE_MAX_RCPTS);
    delivery_request_free(&req);
    free(m.v);
    buf_free(&err);
}

/* test_rcpt_set - the first outcome wins */
static void test_rcpt_set(void **state)
{
    struct delivery_rcpt r;

    (void)state;
    memset(&r, 0, sizeof(r));
    delivery_rcpt_set(&r, DELIVERY_BOUNCE, "5.1.1", "no such user");
    delivery_rcpt_set(&r, DELIVERY_SENT, "2.0.0", "ok");
    assert_int_equal(r.result.status, DELIVERY_BOUNCE);
    assert_string_equal(r.result.dsn, "5.1.1");
    assert_string_equal(buf_cstr(&r.result.reason), "no such user");
    buf_free(&r.result.reason);
    assert_string_equal(delivery_status_name(DELIVERY_SENT), "sent");
    assert_string_equal(delivery_status_name(DELIVERY_DEFER), "defer");
    assert_string_equal(delivery_status_name(DELIVERY_BOUNCE), "bounce");
    assert_string_equal(delivery_status_name(DELIVERY_PENDING), "defer");
}

/* expect_entry - the attributes of result entry i start at a */
static void expect_entry(const struct attr *a, const char *index, const char *status,
                         const char *dsn, const char *reason)
{
    assert_string_equal(a[0].name, "index");
    assert_string_equal(a[0].value, index);
    assert_string_equal(a[1].name, "status");
    assert_string_equal(a[1].value, status);
    assert_string_equal(a[2].name, "dsn");
    assert_string_equal(a[2].value, dsn);
    assert_string_equal(a[3].name, "reason");
    assert_string_equal(a[3].value, reason);
}

/* test_result_encode - parse, decide, encode, decode: what qmgr reads */
static void test_result_encode(void **state)
{
    struct attr_msg m;
    struct delivery_request req;
    buf_t err = BUF_INIT, out = BUF_INIT;
    size_t used = 0;

    (void)state;
    build(&m, "smtp.deliver", NULL, NULL);
    delivery_request_init(&req);
    assert_int_equal(delivery_request_parse(&m, "smtp", &req, &err), 0);
    attr_msg_free(&m);
    delivery_rcpt_set(&req.rcpts[0], DELIVERY_SENT, "2.0.0", "250 ok");
    req.rcpts[0].dsn_passed = 1;
    delivery_result_encode(&req, "smtp", &out);
    attr_msg_init(&m);
    assert_int_equal(attr_decode(out.data, out.len, &used, &m), 1);
    assert_int_equal(used, out.len);
    assert_string_equal(attr_proto(&m), "smtp.result");
    assert_int_equal(m.count, 1 + 5 + 4);
    expect_entry(&m.v[1], "0", "sent", "2.0.0", "250 ok");
    assert_string_equal(m.v[5].name, "dsn_passed");
    assert_string_equal(m.v[5].value, "yes");
    expect_entry(&m.v[6], "3", "defer", "4.3.0", "delivery not attempted");
    attr_msg_free(&m);

    buf_reset(&out);
    delivery_rcpt_set(&req.rcpts[1], DELIVERY_BOUNCE, "", "550 no");
    delivery_result_encode(&req, "local", &out);
    attr_msg_init(&m);
    assert_int_equal(attr_decode(out.data, out.len, &used, &m), 1);
    assert_string_equal(attr_proto(&m), "local.result");
    expect_entry(&m.v[6], "3", "bounce", "4.3.0", "550 no");
    attr_msg_free(&m);
    delivery_request_free(&req);
    buf_free(&out);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_optional),
        cmocka_unit_test(test_parse_body_types),
        cmocka_unit_test(test_parse_tls_attributes_default_off),
        cmocka_unit_test(test_parse_tls_required_no),
        cmocka_unit_test(test_parse_wrong_proto),
        cmocka_unit_test(test_parse_missing),
        cmocka_unit_test(test_parse_bad_numbers),
        cmocka_unit_test(test_parse_bad_text),
        cmocka_unit_test(test_parse_bad_groups),
        cmocka_unit_test(test_parse_too_many),
        cmocka_unit_test(test_rcpt_set),
        cmocka_unit_test(test_result_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
