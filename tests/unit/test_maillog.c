/*
 * test_maillog - unit tests for lib/maillog and lib/json: each event in each
 * format is byte-exact (the postfix lines exactly as tern has always
 * written them), sendmail's delay and relay forms, and JSON escaping of
 * quotes, backslashes, control characters and invalid UTF-8.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <syslog.h>

#include <cmocka.h>

#include "buf.h"
#include "json.h"
#include "log.h"
#include "maillog.h"

static const struct maillog_received smtp_received = {
    .queue_id = "4Rb2k1",
    .sender = "a@example.test",
    .size = 1234,
    .nrcpts = 2,
    .msgid = "<m1@example.test>",
    .proto = "ESMTP",
    .daemon = "",
    .client_name = "mx.example.test",
    .client_addr = "192.0.2.7",
};

static const struct maillog_delivery smtp_sent = {
    .queue_id = "4Rb2k1",
    .rcpt = "b@remote.test",
    .relay = "mx.remote.test[198.51.100.2]:25",
    .extra = ", tls=no",
    .mailer = "esmtp",
    .delay = 3725.4,
    .xdelay = 1.2,
    .size = 1234,
    .nrcpts = 2,
    .dsn = "2.0.0",
    .status = "sent",
    .reason = "250 2.0.0 Ok: queued as X1",
};

/* check - format e in f and compare with want */
#define CHECK(fn, f, e, want)                                                                      \
    do {                                                                                           \
        buf_t out_ = BUF_INIT;                                                                     \
        fn(f, e, &out_);                                                                           \
        assert_string_equal(buf_cstr(&out_), want);                                                \
        buf_free(&out_);                                                                           \
    } while (0)

static void test_format_names_parse(void **state)
{
    (void)state;
    assert_int_equal(maillog_format_parse("postfix"), MAILLOG_POSTFIX);
    assert_int_equal(maillog_format_parse("Sendmail"), MAILLOG_SENDMAIL);
    assert_int_equal(maillog_format_parse("json"), MAILLOG_JSON);
    assert_int_equal(maillog_format_parse("syslog"), -1);
}

static void test_syslog_facility_names_parse(void **state)
{
    (void)state;
    assert_int_equal(log_facility_parse("mail"), LOG_MAIL);
    assert_int_equal(log_facility_parse("LOCAL3"), LOG_LOCAL3);
    assert_int_equal(log_facility_parse("daemon"), LOG_DAEMON);
    assert_int_equal(log_facility_parse("kern"), -1);
    assert_int_equal(log_facility_parse(""), -1);
}

static void test_received_postfix_is_unchanged(void **state)
{
    struct maillog_received e = smtp_received;

    (void)state;
    CHECK(maillog_format_received, MAILLOG_POSTFIX, &e,
          "4Rb2k1: from=<a@example.test>, size=1234, nrcpt=2 (queue active)");
    e.hold = 1;
    e.sender = "";
    CHECK(maillog_format_received, MAILLOG_POSTFIX, &e,
          "4Rb2k1: from=<>, size=1234, nrcpt=2 (queue hold)");
}

static void test_addresses_logged_utf8_safe(void **state)
{
    struct maillog_received r = smtp_received;
    struct maillog_delivery d = smtp_sent;

    (void)state;
    r.sender = "j\xc3\xb6s\xc3\xa9@example.test"; /* UTF-8 as it is */
    CHECK(maillog_format_received, MAILLOG_POSTFIX, &r,
          "4Rb2k1: from=<j\xc3\xb6s\xc3\xa9@example.test>, size=1234, nrcpt=2 (queue active)");
    d.rcpt = "a\x80\\b@remote.test"; /* not UTF-8, and the escape character */
    d.orig_rcpt = "a\xe2\x80\xae"
                  "b@remote.test"; /* a bidi override */
    CHECK(
        maillog_format_delivery, MAILLOG_SENDMAIL, &d,
        "4Rb2k1: to=<a\\x80\\\\b@remote.test>, orig_to=<a\\u{202E}b@remote.test>, "
        "delay=01:02:05, xdelay=00:00:01, mailer=esmtp, pri=61234, "
        "relay=mx.remote.test. [198.51.100.2], dsn=2.0.0, stat=Sent (250 2.0.0 Ok: queued as X1)");
}

static void test_received_sendmail_has_sendmail_fields(void **state)
{
    struct maillog_received e = smtp_received;

    (void)state;
    CHECK(maillog_format_received, MAILLOG_SENDMAIL, &e,
          "4Rb2k1: from=<a@example.test>, size=1234, class=0, nrcpts=2, "
          "msgid=<m1@example.test>, proto=ESMTP, daemon=MTA, relay=mx.example.test [192.0.2.7]");
    e.client_name = "unknown";
    e.daemon = "submission"; /* sendmail's MSA */
    e.msgid = "";
    CHECK(maillog_format_received, MAILLOG_SENDMAIL, &e,
          "4Rb2k1: from=<a@example.test>, size=1234, class=0, nrcpts=2, proto=ESMTP, "
          "daemon=MSA, relay=[192.0.2.7]");
}

static void test_received_sendmail_local_is_user_at_localhost(void **state)
{
    struct maillog_received e = {.queue_id = "4Rb2k2",
                                 .sender = "root@h.test",
                                 .size = 34,
                                 .nrcpts = 1,
                                 .msgid = "<x@h.test>",
                                 .user = "root"};

    (void)state;
    CHECK(maillog_format_received, MAILLOG_SENDMAIL, &e,
          "4Rb2k2: from=<root@h.test>, size=34, class=0, nrcpts=1, msgid=<x@h.test>, "
          "relay=root@localhost");
}

static void test_received_json(void **state)
{
    (void)state;
    CHECK(
        maillog_format_received, MAILLOG_JSON, &smtp_received,
        "{\"queue_id\":\"4Rb2k1\",\"event\":\"from\",\"from\":\"a@example.test\",\"size\":1234,"
        "\"nrcpts\":2,\"msgid\":\"<m1@example.test>\",\"proto\":\"ESMTP\","
        "\"client_name\":\"mx.example.test\",\"client_addr\":\"192.0.2.7\",\"queue\":\"active\"}");
}

static void test_delivery_postfix_is_unchanged(void **state)
{
    struct maillog_delivery e = smtp_sent;

    (void)state;
    CHECK(maillog_format_delivery, MAILLOG_POSTFIX, &e,
          "4Rb2k1: to=<b@remote.test>, relay=mx.remote.test[198.51.100.2]:25, tls=no, "
          "delay=3725, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X1)");
    e.orig_rcpt = "old@remote.test";
    e.relay = "local";
    e.extra = NULL;
    e.delay = 0.4;
    CHECK(maillog_format_delivery, MAILLOG_POSTFIX, &e,
          "4Rb2k1: to=<b@remote.test>, orig_to=<old@remote.test>, relay=local, delay=0.4, "
          "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X1)");
    e.orig_rcpt = NULL;
    e.relay = "none";
    e.status = "expired";
    e.dsn = "4.4.7";
    e.reason = "message expired";
    CHECK(maillog_format_delivery, MAILLOG_POSTFIX, &e,
          "4Rb2k1: to=<b@remote.test>, relay=none, delay=0.4, dsn=4.4.7, status=expired, "
          "returned to sender (message expired)");
}

static void test_delivery_sendmail_sent_deferred_bounced(void **state)
{
    struct maillog_delivery e = smtp_sent;

    (void)state;
    CHECK(maillog_format_delivery, MAILLOG_SENDMAIL, &e,
          "4Rb2k1: to=<b@remote.test>, delay=01:02:05, xdelay=00:00:01, mailer=esmtp, pri=61234, "
          "relay=mx.remote.test. [198.51.100.2], dsn=2.0.0, stat=Sent (250 2.0.0 Ok: queued as "
          "X1)");
    e.status = "deferred";
    e.dsn = "4.4.1";
    e.reason = "connect to x[1.2.3.4]:25: Connection refused";
    e.relay = "none";
    e.delay = 2 * 86400 + 5;
    CHECK(maillog_format_delivery, MAILLOG_SENDMAIL, &e,
          "4Rb2k1: to=<b@remote.test>, delay=2+00:00:05, xdelay=00:00:01, mailer=esmtp, "
          "pri=61234, dsn=4.4.1, stat=Deferred: connect to x[1.2.3.4]:25: Connection refused");
    e.status = "bounced";
    e.dsn = "5.1.1";
    e.reason = "User unknown";
    e.relay = "local";
    e.mailer = "local";
    e.delay = 0;
    CHECK(maillog_format_delivery, MAILLOG_SENDMAIL, &e,
          "4Rb2k1: to=<b@remote.test>, delay=00:00:00, xdelay=00:00:01, mailer=local, pri=61234, "
          "dsn=5.1.1, stat=User unknown");
}

static void test_delivery_json(void **state)
{
    (void)state;
    CHECK(maillog_format_delivery, MAILLOG_JSON, &smtp_sent,
          "{\"queue_id\":\"4Rb2k1\",\"event\":\"to\",\"to\":\"b@remote.test\","
          "\"relay\":\"mx.remote.test[198.51.100.2]:25\",\"delay\":3725.400,\"xdelay\":1.200,"
          "\"mailer\":\"esmtp\",\"pri\":61234,\"dsn\":\"2.0.0\",\"status\":\"sent\","
          "\"reason\":\"250 2.0.0 Ok: queued as X1\"}");
}

static void test_notice_each_format(void **state)
{
    struct maillog_notice e = {.queue_id = "4Rb2k1",
                               .notice_id = "4Rb2k9",
                               .kind = "non-delivery",
                               .reason = "5.1.1 User unknown"};

    (void)state;
    CHECK(maillog_format_notice, MAILLOG_POSTFIX, &e,
          "4Rb2k1: sender non-delivery notification: 4Rb2k9");
    CHECK(maillog_format_notice, MAILLOG_SENDMAIL, &e, "4Rb2k1: 4Rb2k9: DSN: 5.1.1 User unknown");
    CHECK(maillog_format_notice, MAILLOG_JSON, &e,
          "{\"queue_id\":\"4Rb2k1\",\"event\":\"notice\",\"notice_id\":\"4Rb2k9\",\"kind\":\"non-"
          "delivery\",\"notify\":\"sender\",\"reason\":\"5.1.1 User unknown\"}");
}

static void test_reject_each_format(void **state)
{
    struct maillog_reject e = {.kind = "reject",
                               .stage = "RCPT",
                               .client = "unknown[192.0.2.9]",
                               .text = "554 5.7.1 <x@y.test>: Relay access denied",
                               .from = "a@b.test",
                               .to = "x@y.test",
                               .proto = "ESMTP",
                               .helo = "h"};

    (void)state;
    CHECK(maillog_format_reject, MAILLOG_POSTFIX, &e,
          "NOQUEUE: reject: RCPT from unknown[192.0.2.9]: 554 5.7.1 <x@y.test>: Relay access "
          "denied; from=<a@b.test> to=<x@y.test> proto=ESMTP helo=<h>");
    CHECK(maillog_format_reject, MAILLOG_SENDMAIL, &e,
          "NOQUEUE: ruleset=check_rcpt, arg1=<x@y.test>, relay=[192.0.2.9], reject=554 5.7.1 "
          "<x@y.test>: Relay access denied");
    e.client = "mx.b.test[192.0.2.9]";
    e.stage = "MAIL";
    e.to = NULL;
    CHECK(maillog_format_reject, MAILLOG_SENDMAIL, &e,
          "NOQUEUE: ruleset=check_mail, arg1=<a@b.test>, relay=mx.b.test [192.0.2.9], reject=554 "
          "5.7.1 <x@y.test>: Relay access denied");
}

static void test_sendmail_relay_forms(void **state)
{
    static const char *cases[][2] = {
        {"mx.r.test[198.51.100.2]:25", "mx.r.test. [198.51.100.2]"},
        {"[198.51.100.2]:2525", "[198.51.100.2] [198.51.100.2]"},
        {"unknown[2001:db8::1]:25", "[2001:db8::1] [2001:db8::1]"},
        {"127.0.0.1[127.0.0.1]:2525", "[127.0.0.1] [127.0.0.1]"},
        {"none", ""},
        {"local", ""},
        {"/run/lmtp.sock", "/run/lmtp.sock"},
        {"broken[no-close", "broken[no-close"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_t out = BUF_INIT;
        maillog_sendmail_relay(cases[i][0], &out);
        assert_string_equal(buf_cstr(&out), cases[i][1]);
        buf_free(&out);
    }
}

static void test_json_escapes_quotes_controls_and_bad_utf8(void **state)
{
    buf_t out = BUF_INIT;

    (void)state;
    json_put_string(&out, "a\"b\\c\n\t\x01\x7f é \xff\xc3 \xed\xa0\x80 \xf0\x9f\x98\x80");
    assert_string_equal(buf_cstr(&out),
                        "\"a\\\"b\\\\c\\u000a\\u0009\\u0001\\u007f é \\ufffd\\ufffd "
                        "\\ufffd\\ufffd\\ufffd \xf0\x9f\x98\x80\"");
    buf_reset(&out);
    json_put_string(&out, NULL);
    assert_string_equal(buf_cstr(&out), "\"\"");
    buf_free(&out);
}

static void test_json_event_escapes_fields(void **state)
{
    struct maillog_delivery e = smtp_sent;

    (void)state;
    e.reason = "550 \"no\"\r\n\\";
    e.rcpt = "\xff@x";
    buf_t out = BUF_INIT;
    maillog_format_delivery(MAILLOG_JSON, &e, &out);
    assert_non_null(strstr(buf_cstr(&out), "\"to\":\"\\ufffd@x\""));
    assert_non_null(strstr(buf_cstr(&out), "\"reason\":\"550 \\\"no\\\"\\u000d\\u000a\\\\\""));
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_names_parse),
        cmocka_unit_test(test_syslog_facility_names_parse),
        cmocka_unit_test(test_received_postfix_is_unchanged),
        cmocka_unit_test(test_addresses_logged_utf8_safe),
        cmocka_unit_test(test_received_sendmail_has_sendmail_fields),
        cmocka_unit_test(test_received_sendmail_local_is_user_at_localhost),
        cmocka_unit_test(test_received_json),
        cmocka_unit_test(test_delivery_postfix_is_unchanged),
        cmocka_unit_test(test_delivery_sendmail_sent_deferred_bounced),
        cmocka_unit_test(test_delivery_json),
        cmocka_unit_test(test_notice_each_format),
        cmocka_unit_test(test_reject_each_format),
        cmocka_unit_test(test_sendmail_relay_forms),
        cmocka_unit_test(test_json_escapes_quotes_controls_and_bad_utf8),
        cmocka_unit_test(test_json_event_escapes_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
