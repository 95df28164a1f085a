/*
 * test_smtpd_proto - unit tests for smtpd/proto: command verbs, MAIL/RCPT
 * argument and ESMTP parameter parsing with their exact reply texts, the
 * AUTH command and its strict base64 responses, the banner template, and
 * the DATA decoder's end-of-data and bare LF/CR policy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "proto.h"

/* expect_mail_ok - arg parses; the echo and address are as given */
static void expect_mail_ok(const char *arg, const char *echo, const char *addr)
{
    struct proto_mail m;
    buf_t reply = BUF_INIT;

    proto_mail_init(&m);
    if (proto_mail_parse(arg, 1000, &m, &reply) != 0)
        fail_msg("'%s' rejected: %s", arg, buf_cstr(&reply));
    assert_string_equal(buf_cstr(&m.echo), echo);
    assert_string_equal(buf_cstr(&m.addr), addr);
    proto_mail_free(&m);
    buf_free(&reply);
}

/* expect_mail_reply - arg is refused with exactly want */
static void expect_mail_reply(const char *arg, const char *want)
{
    struct proto_mail m;
    buf_t reply = BUF_INIT;

    proto_mail_init(&m);
    if (proto_mail_parse(arg, 1000, &m, &reply) != -1)
        fail_msg("'%s' accepted", arg);
    assert_string_equal(buf_cstr(&reply), want);
    proto_mail_free(&m);
    buf_free(&reply);
}

/* expect_rcpt_reply - arg is refused with exactly want */
static void expect_rcpt_reply(const char *arg, const char *want)
{
    struct proto_rcpt r;
    buf_t reply = BUF_INIT;

    proto_rcpt_init(&r);
    if (proto_rcpt_parse(arg, &r, &reply) != -1)
        fail_msg("'%s' accepted", arg);
    assert_string_equal(buf_cstr(&reply), want);
    proto_rcpt_free(&r);
    buf_free(&reply);
}

/* decode_all - run the decoder over in at once; returns bytes consumed */
static size_t decode_all(const char *in, buf_t *out, int *done, int *bare)
{
    struct proto_data_decoder d;
    size_t used;

    proto_data_init(&d);
    used = proto_data_decode(&d, in, strlen(in), out, done);
    *bare = d.bare_seen;
    return used;
}

/* expect_data - in ends the data after consuming `used` bytes, with content */
static void expect_data(const char *in, const char *content, size_t used)
{
    buf_t out = BUF_INIT;
    int done = 0;
    int bare = 0;
    size_t n = decode_all(in, &out, &done, &bare);

    assert_int_equal(done, 1);
    assert_int_equal(n, used);
    assert_string_equal(buf_cstr(&out), content);
    buf_free(&out);
}

/* expect_no_end - in never ends the data */
static void expect_no_end(const char *in, const char *content)
{
    buf_t out = BUF_INIT;
    int done = 1;
    int bare = 0;
    size_t n = decode_all(in, &out, &done, &bare);

    assert_int_equal(done, 0);
    assert_int_equal(n, strlen(in));
    assert_string_equal(buf_cstr(&out), content);
    buf_free(&out);
}

static void test_cmd_verbs_are_case_insensitive(void **state)
{
    const char *arg = NULL;

    assert_int_equal(proto_cmd_parse("ehlo  client.test", &arg), PROTO_CMD_EHLO);
    assert_string_equal(arg, "client.test");
    assert_int_equal(proto_cmd_parse("MaIl FROM:<a@b>", &arg), PROTO_CMD_MAIL);
    assert_string_equal(arg, "FROM:<a@b>");
    assert_int_equal(proto_cmd_parse("QUIT", &arg), PROTO_CMD_QUIT);
    assert_string_equal(arg, "");
    assert_int_equal(proto_cmd_parse("starttls", &arg), PROTO_CMD_STARTTLS);
}

static void test_cmd_unknown_verbs(void **state)
{
    const char *arg = NULL;

    assert_int_equal(proto_cmd_parse("", &arg), PROTO_CMD_UNKNOWN);
    assert_int_equal(proto_cmd_parse("MAILX FROM:<a@b>", &arg), PROTO_CMD_UNKNOWN);
    assert_int_equal(proto_cmd_parse("FOO bar", &arg), PROTO_CMD_UNKNOWN);
    assert_int_equal(proto_cmd_parse(" HELO x", &arg), PROTO_CMD_UNKNOWN);
    assert_string_equal(proto_cmd_name(PROTO_CMD_UNKNOWN), "unknown");
    assert_string_equal(proto_cmd_upper(PROTO_CMD_DATA), "DATA");
}

static void test_mail_echoes_the_path_as_written(void **state)
{
    expect_mail_ok("FROM:<a@example.test>", "<a@example.test>", "a@example.test");
    expect_mail_ok("from: a@example.test", "a@example.test", "a@example.test");
    expect_mail_ok("FROM:<>", "<>", "");
    expect_mail_ok("FROM: <eve>  ", "<eve>", "eve");
}

static void test_mail_syntax_errors(void **state)
{
    const char *want = "501 5.5.2 Syntax error in parameters scanning \"FROM\"";

    expect_mail_reply("", want);
    expect_mail_reply("FROM:", want);
    expect_mail_reply("FRM:<a@b>", want);
    expect_mail_reply("TO:<a@b>", want);
    expect_mail_reply("FROM:<a@b", want);
}

static void test_mail_parameters_are_parsed(void **state)
{
    struct proto_mail m;
    buf_t reply = BUF_INIT;

    proto_mail_init(&m);
    assert_int_equal(proto_mail_parse("FROM:<a@b.test> size=999 BODY=8bitmime RET=hdrs "
                                      "ENVID=id+2B1 AUTH=<>",
                                      1000, &m, &reply),
                     0);
    assert_int_equal(m.size, 999);
    assert_string_equal(m.body, "8BITMIME");
    assert_string_equal(m.ret, "HDRS");
    assert_string_equal(buf_cstr(&m.envid), "id+1");
    assert_string_equal(buf_cstr(&m.auth), "<>");
    proto_mail_free(&m);
    proto_mail_init(&m);
    assert_int_equal(proto_mail_parse("FROM:<a@b.test> BODY=binarymime", 0, &m, &reply), 0);
    assert_string_equal(m.body, "BINARYMIME");
    proto_mail_free(&m);
    buf_free(&reply);
}

static void test_mail_auth_parameter_is_kept_decoded(void **state)
{
    struct proto_mail m;
    buf_t reply = BUF_INIT;

    proto_mail_init(&m);
    assert_int_equal(proto_mail_parse("FROM:<a@b.test> AUTH=alice+2Bx@b.test", 1000, &m, &reply),
                     0);
    assert_string_equal(buf_cstr(&m.auth), "alice+x@b.test");
    assert_int_equal(proto_mail_parse("FROM:<a@b.test>", 1000, &m, &reply), 0);
    assert_string_equal(buf_cstr(&m.auth), "");
    proto_mail_free(&m);
    buf_free(&reply);
}

static void test_mail_requiretls_is_a_flag(void **state)
{
    struct proto_mail m;
    buf_t reply = BUF_INIT;

    proto_mail_init(&m);
    assert_int_equal(proto_mail_parse("FROM:<a@b.test> requiretls BODY=8BITMIME", 1000, &m, &reply),
                     0);
    assert_int_equal(m.requiretls, 1);
    assert_int_equal(proto_mail_parse("FROM:<a@b.test>", 1000, &m, &reply), 0);
    assert_int_equal(m.requiretls, 0);
    proto_mail_free(&m);
    buf_free(&reply);
}

static void test_mail_requiretls_twice_or_with_a_value_is_501(void **state)
{
    expect_mail_reply("FROM:<a@b> REQUIRETLS REQUIRETLS",
                      "501 5.5.4 Duplicate REQUIRETLS parameter");
    expect_mail_reply("FROM:<a@b> REQUIRETLS=yes",
                      "501 5.5.4 Syntax error in parameter REQUIRETLS");
}

static void test_mail_smtputf8_is_a_flag_and_echoes_utf8(void **state)
{
    struct proto_mail m;
    buf_t reply = BUF_INIT;

    proto_mail_init(&m);
    assert_int_equal(
        proto_mail_parse("FROM:<j\xc3\xb6s\xc3\xa9@b.test> SmtpUtf8", 1000, &m, &reply), 0);
    assert_int_equal(m.smtputf8, 1);
    assert_string_equal(buf_cstr(&m.echo), "<j\xc3\xb6s\xc3\xa9@b.test>");
    assert_int_equal(proto_mail_parse("FROM:<a\x80@b.test>", 1000, &m, &reply), 0);
    assert_int_equal(m.smtputf8, 0);
    assert_string_equal(buf_cstr(&m.echo), "<a?@b.test>"); /* not UTF-8: never echoed */
    proto_mail_free(&m);
    buf_free(&reply);
    expect_mail_reply("FROM:<a@b> SMTPUTF8=yes", "501 5.5.4 Syntax error in parameter SMTPUTF8");
}

/* expect_address - proto_address_check's verdict (NULL: accepted) */
static void expect_address(const char *addr, int sender, int smtputf8, const char *want)
{
    buf_t reply = BUF_INIT;
    int rc = proto_address_check(addr, sender, smtputf8, &reply);

    if (want == NULL) {
        assert_int_equal(rc, 0);
    } else {
        assert_int_equal(rc, -1);
        assert_string_equal(buf_cstr(&reply), want);
    }
    buf_free(&reply);
}

static void test_utf8_address_needs_smtputf8_and_valid_utf8(void **state)
{
    const char *undeclared = "553 5.6.7 Must declare SMTPUTF8 to send unicode address";

    expect_address("a@b.test", 0, 0, NULL);
    expect_address("", 1, 0, NULL);
    expect_address("j\xc3\xb6s\xc3\xa9@m\xc3\xbcnchen.test", 0, 0, undeclared);
    expect_address("j\xc3\xb6s\xc3\xa9@m\xc3\xbcnchen.test", 1, 0, undeclared);
    expect_address("j\xc3\xb6s\xc3\xa9@m\xc3\xbcnchen.test", 0, 1, NULL);
    expect_address("\xe7\x94\xa8\xe6\x88\xb7", 0, 1, NULL); /* no domain: local */
    expect_address("a\xc0\xaf@b.test", 1, 1, "553 5.1.7 Malformed UTF-8 in sender address");
    expect_address("a\x80@b.test", 0, 1, "553 5.1.3 Malformed UTF-8 in recipient address");
    expect_address("a\xed\xa0\x80@b.test", 0, 1, "553 5.1.3 Malformed UTF-8 in recipient address");
    expect_address("a\x80@b.test", 0, 0, undeclared);
    expect_address("a@\xcc\x81x.test", 0, 1,
                   "553 5.1.3 Invalid international domain name in recipient address");
}

static void test_mail_size_over_limit_is_552(void **state)
{
    expect_mail_reply("FROM:<a@b> SIZE=1001",
                      "552 5.2.3 Message size exceeds fixed maximum message size (1000)");
    expect_mail_reply("FROM:<a@b> SIZE=99999999999999999999999",
                      "501 5.5.4 Syntax error in parameter SIZE");
}

static void test_mail_size_without_limit_is_accepted(void **state)
{
    struct proto_mail m;
    buf_t reply = BUF_INIT;

    proto_mail_init(&m);
    assert_int_equal(proto_mail_parse("FROM:<a@b> SIZE=123456789", 0, &m, &reply), 0);
    assert_int_equal(m.size, 123456789);
    proto_mail_free(&m);
    buf_free(&reply);
}

static void test_mail_bad_parameter_values(void **state)
{
    char envid[200];

    expect_mail_reply("FROM:<a@b> SIZE=12x", "501 5.5.4 Syntax error in parameter SIZE");
    expect_mail_reply("FROM:<a@b> SIZE", "501 5.5.4 Syntax error in parameter SIZE");
    expect_mail_reply("FROM:<a@b> BODY=BINARY", "501 5.5.4 Syntax error in parameter BODY");
    expect_mail_reply("FROM:<a@b> RET=ALL", "501 5.5.4 Syntax error in parameter RET");
    expect_mail_reply("FROM:<a@b> ENVID=a+ZZ", "501 5.5.4 Syntax error in parameter ENVID");
    expect_mail_reply("FROM:<a@b> AUTH=", "501 5.5.4 Syntax error in parameter AUTH");
    memset(envid, 'x', sizeof(envid));
    memcpy(envid, "FROM:<a@b> ENVID=", 17);
    envid[17 + PROTO_ENVID_MAX + 1] = '\0';
    expect_mail_reply(envid, "501 5.5.4 Syntax error in parameter ENVID");
}

static void test_mail_unknown_parameter_is_555(void **state)
{
    expect_mail_reply("FROM:<a@b> XFOO=1", "555 5.5.4 XFOO parameter unrecognized");
    expect_mail_reply("FROM:<a@b> NOTIFY=NEVER", "555 5.5.4 NOTIFY parameter unrecognized");
}

static void test_rcpt_parameters_are_parsed(void **state)
{
    struct proto_rcpt r;
    buf_t reply = BUF_INIT;

    proto_rcpt_init(&r);
    assert_int_equal(
        proto_rcpt_parse("To:<u@x.test> NOTIFY=failure,Delay ORCPT=rfc822;u+2Bx@x.test", &r,
                         &reply),
        0);
    assert_string_equal(buf_cstr(&r.echo), "<u@x.test>");
    assert_string_equal(buf_cstr(&r.addr), "u@x.test");
    assert_string_equal(buf_cstr(&r.notify), "FAILURE,DELAY");
    assert_string_equal(buf_cstr(&r.orcpt), "rfc822;u+x@x.test");
    assert_int_equal(proto_rcpt_parse("TO:<v@x.test> NOTIFY=never", &r, &reply), 0);
    assert_string_equal(buf_cstr(&r.notify), "NEVER");
    assert_string_equal(buf_cstr(&r.orcpt), "");
    proto_rcpt_free(&r);
    buf_free(&reply);
}

static void test_rcpt_errors(void **state)
{
    expect_rcpt_reply("TO:<>", "553 5.1.3 <>... User address required");
    expect_rcpt_reply("TO:", "501 5.5.2 Syntax error in parameters scanning \"TO\"");
    expect_rcpt_reply("FROM:<a@b>", "501 5.5.2 Syntax error in parameters scanning \"TO\"");
    expect_rcpt_reply("TO:<a@b> NOTIFY=NEVER,SUCCESS",
                      "501 5.5.4 Syntax error in parameter NOTIFY");
    expect_rcpt_reply("TO:<a@b> NOTIFY=SUCCESS,", "501 5.5.4 Syntax error in parameter NOTIFY");
    expect_rcpt_reply("TO:<a@b> NOTIFY=", "501 5.5.4 Syntax error in parameter NOTIFY");
    expect_rcpt_reply("TO:<a@b> ORCPT=a@b", "501 5.5.4 Syntax error in parameter ORCPT");
    expect_rcpt_reply("TO:<a@b> ORCPT=rfc 822;a@b", "501 5.5.4 Syntax error in parameter ORCPT");
    expect_rcpt_reply("TO:<a@b> SIZE=1", "555 5.5.4 SIZE parameter unrecognized");
}

/* expect_base64 - text decodes to want (len bytes) and encodes back to text */
static void expect_base64(const char *text, const char *want, size_t len)
{
    buf_t out = BUF_INIT;
    buf_t again = BUF_INIT;

    if (proto_base64_decode(text, strlen(text), &out) != 0)
        fail_msg("'%s' not decoded", text);
    assert_int_equal(out.len, len);
    assert_memory_equal(out.data ? out.data : "", want, len);
    proto_base64_encode(out.data, out.len, &again);
    assert_string_equal(buf_cstr(&again), text);
    buf_free(&out);
    buf_free(&again);
}

static void test_base64_round_trips(void **state)
{
    expect_base64("", "", 0);
    expect_base64("YQ==", "a", 1);
    expect_base64("YWI=", "ab", 2);
    expect_base64("YWJj", "abc", 3);
    expect_base64("AGFsaWNlAHNlY3JldA==", "\0alice\0secret", 13);
    expect_base64("+/8=", "\xfb\xff", 2);
}

static void test_base64_is_strict(void **state)
{
    static const char *const bad[] = {
        "Y",    "YQ",     "YQ=",  "YQ==YQ==", "Y===", "====",   "YR==", /* unused bits set */
        "YWJ=",                                                         /* unused bits set */
        "YW J", "YWJj\n", "YW=j", "YWJ!",     "=QQQ", "YWJjZA", "-_==",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_t out = BUF_INIT;
        if (proto_base64_decode(bad[i], strlen(bad[i]), &out) != -1)
            fail_msg("'%s' decoded", bad[i]);
        buf_free(&out);
    }
}

/* expect_auth - AUTH arg gives mech and the initial response (NULL: none) */
static void expect_auth(const char *arg, const char *mech, const char *response)
{
    buf_t m = BUF_INIT;
    buf_t reply = BUF_INIT;
    const char *got = "x";

    if (proto_auth_parse(arg, &m, &got, &reply) != 0)
        fail_msg("'%s' refused: %s", arg, buf_cstr(&reply));
    assert_string_equal(buf_cstr(&m), mech);
    if (response == NULL)
        assert_null(got);
    else
        assert_string_equal(got, response);
    buf_free(&m);
    buf_free(&reply);
}

/* expect_auth_reply - AUTH arg is refused with exactly want */
static void expect_auth_reply(const char *arg, const char *want)
{
    buf_t m = BUF_INIT;
    buf_t reply = BUF_INIT;
    const char *got = NULL;

    if (proto_auth_parse(arg, &m, &got, &reply) != -1)
        fail_msg("'%s' accepted", arg);
    assert_string_equal(buf_cstr(&reply), want);
    buf_free(&m);
    buf_free(&reply);
}

static void test_auth_command_argument(void **state)
{
    expect_auth("PLAIN", "PLAIN", NULL);
    expect_auth("plain", "PLAIN", NULL);
    expect_auth("CRAM-MD5", "CRAM-MD5", NULL);
    expect_auth("PLAIN AGFsaWNlAHNlY3JldA==", "PLAIN", "AGFsaWNlAHNlY3JldA==");
    expect_auth("PLAIN  =", "PLAIN", "=");
    expect_auth("SCRAM-SHA-256_X", "SCRAM-SHA-256_X", NULL);
    expect_auth_reply("", "501 5.5.4 Syntax: AUTH mechanism");
    expect_auth_reply("PLAIN a b", "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
    expect_auth_reply("PL@IN", "504 5.3.3 AUTH mechanism PL@IN not available");
    expect_auth_reply("ABCDEFGHIJKLMNOPQRSTU", /* 21 characters */
                      "504 5.3.3 AUTH mechanism ABCDEFGHIJKLMNOPQRST not available");
}

static void test_auth_responses(void **state)
{
    buf_t out = BUF_INIT;
    buf_t reply = BUF_INIT;

    assert_int_equal(proto_auth_response("*", 1, 0, &out, &reply), 1);
    assert_int_equal(proto_auth_response("", 0, 0, &out, &reply), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(proto_auth_response("=", 1, 1, &out, &reply), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(proto_auth_response("YWJj", 4, 0, &out, &reply), 0);
    assert_string_equal(buf_cstr(&out), "abc");
    assert_int_equal(proto_auth_response("=", 1, 0, &out, &reply), -1);
    assert_string_equal(buf_cstr(&reply), "501 5.5.4 cannot decode AUTH parameter");
    assert_int_equal(out.len, 0);
    assert_int_equal(proto_auth_response("*", 1, 1, &out, &reply), -1);
    assert_int_equal(proto_auth_response("YWJ", 3, 0, &out, &reply), -1);
    buf_free(&out);
    buf_free(&reply);
}

static void test_printable_replaces_and_bounds(void **state)
{
    buf_t out = BUF_INIT;

    proto_printable("a\tb\x01\xff"
                    "c",
                    6, 100, &out);
    assert_string_equal(buf_cstr(&out), "a?b??c");
    buf_reset(&out);
    proto_printable("abcdef", 6, 3, &out);
    assert_string_equal(buf_cstr(&out), "abc");
    buf_free(&out);
}

/* expect_banner - template gives want */
static void expect_banner(const char *template, const char *want)
{
    buf_t out = BUF_INIT;

    proto_banner_format(template, "mx.example.test", "0.1.0", "Sun, 22 Nov 2026", &out);
    assert_string_equal(buf_cstr(&out), want);
    buf_free(&out);
}

static void test_banner_inserts_esmtp_as_second_word(void **state)
{
    expect_banner("mailer ready", "mailer ESMTP ready");
    expect_banner("x", "x ESMTP");
    expect_banner("$j ESMTP tern", "mx.example.test ESMTP tern");
    expect_banner("$j server ready at $b",
                  "mx.example.test ESMTP server ready at Sun, 22 Nov 2026");
    expect_banner("$j ESMTP tern $v; $b", "mx.example.test ESMTP tern 0.1.0; Sun, 22 Nov 2026");
}

static void test_data_ends_only_at_crlf_dot_crlf(void **state)
{
    expect_data(".\r\n", "", 3);
    expect_data("a\r\n.\r\nQUIT\r\n", "a\r\n", 6);
    expect_data("Subject: x\r\n\r\nbody\r\n.\r\n", "Subject: x\r\n\r\nbody\r\n", 23);
}

static void test_data_unstuffs_leading_dots(void **state)
{
    expect_data("..\r\n...x\r\n.y\r\n.\r\n", ".\r\n..x\r\ny\r\n", 17);
}

static void test_data_bare_newlines_become_crlf(void **state)
{
    buf_t out = BUF_INIT;
    int done = 0;
    int bare = 0;

    decode_all("a\nb\rc\r\n.\r\n", &out, &done, &bare);
    assert_int_equal(done, 1);
    assert_int_equal(bare, 1);
    assert_string_equal(buf_cstr(&out), "a\r\nb\r\nc\r\n");
    buf_reset(&out);
    decode_all("a\r\nb\r\n.\r\n", &out, &done, &bare);
    assert_int_equal(bare, 0);
    buf_free(&out);
}

static void test_data_smuggling_sequences_do_not_end(void **state)
{
    expect_no_end("a\n.\nMAIL FROM:<x>\r\n", "a\r\n.\r\nMAIL FROM:<x>\r\n");
    expect_no_end("a\n.\r\nb\r\n", "a\r\n.\r\nb\r\n");
    expect_no_end("a\r.\rb\r\n", "a\r\n.\r\nb\r\n");
    expect_no_end("a\r\n.\nb\r\n", "a\r\n.\r\nb\r\n");
    expect_no_end("a\r\n.\rb\r\n", "a\r\n.\r\nb\r\n");
    /* after the bare-LF dot line, a real CRLF.CRLF still ends it */
    expect_data("a\n.\r\n.\r\n", "a\r\n.\r\n", 8);
}

static void test_data_split_input_gives_the_same_result(void **state)
{
    const char *in = "x\r\n..y\nz\r\r\n.\r.\r\n.\r\nNOOP\r\n";
    buf_t whole = BUF_INIT;
    buf_t split = BUF_INIT;
    struct proto_data_decoder d;
    int done = 0;
    int bare = 0;
    size_t used_whole = decode_all(in, &whole, &done, &bare);
    size_t used = 0;

    assert_int_equal(done, 1);
    proto_data_init(&d);
    done = 0;
    while (!done && used < strlen(in))
        used += proto_data_decode(&d, in + used, 1, &split, &done);
    assert_int_equal(done, 1);
    assert_int_equal(used, used_whole);
    assert_string_equal(buf_cstr(&split), buf_cstr(&whole));
    assert_string_equal(in + used, "NOOP\r\n");
    buf_free(&whole);
    buf_free(&split);
}

/* test_unbracket_strips_one_pair_of_angle_brackets - VRFY and EXPN arguments */
static void test_unbracket_strips_one_pair_of_angle_brackets(void **state)
{
    static const char *cases[][2] = {
        {"<root@x.test>", "root@x.test"},
        {"root", "root"},
        {"<>", ""},
        {"<<a>>", "<a>"},
        {"<", "<"},
        {"a>", "a>"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_t out = BUF_INIT;
        proto_unbracket(cases[i][0], &out);
        assert_string_equal(buf_cstr(&out), cases[i][1]);
        buf_free(&out);
    }
}

/* proto_ident_parse - RFC 1413 replies */
static void test_ident_reply(void **state)
{
    buf_t user = BUF_INIT;

    (void)state;
    assert_int_equal(proto_ident_parse("6193, 23 : USERID : UNIX : stjohns", &user), 0);
    assert_string_equal(buf_cstr(&user), "stjohns");
    assert_int_equal(proto_ident_parse("6193,23:USERID:OTHER,UTF-8:a b@c(d)", &user), 0);
    assert_string_equal(buf_cstr(&user), "a_b_c_d");
    assert_int_equal(proto_ident_parse("6193, 23 : ERROR : NO-USER", &user), -1);
    assert_int_equal(proto_ident_parse("garbage", &user), -1);
    assert_int_equal(proto_ident_parse("1, 2 : USERID : UNIX :   ", &user), -1);
    assert_int_equal(
        proto_ident_parse(
            "1, 2 : USERID : UNIX : "
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            &user),
        0);
    assert_int_equal(user.len, PROTO_IDENT_USER_MAX);
    buf_free(&user);
}

/* the ESMTP arguments after the path, as the client wrote them (for milters) */
static void test_path_args_are_the_parameters_as_given(void **state)
{
    (void)state;
    assert_string_equal(proto_path_args("FROM:<a@b.test> SIZE=100  BODY=8BITMIME", "FROM:"),
                        "SIZE=100  BODY=8BITMIME");
    assert_string_equal(proto_path_args("TO: <\"x y\"@b.test>", "TO:"), "");
    assert_string_equal(proto_path_args("FROM:<> x", "FROM:"), "x");
    assert_null(proto_path_args("FROM:<a@b.test", "FROM:"));
    assert_null(proto_path_args("TO:<a@b.test>", "FROM:"));
}

static void test_reply_valid_only_for_whole_replies_of_the_class(void **state)
{
    (void)state;
    assert_true(proto_reply_valid("550 5.7.1 no", '5'));
    assert_true(proto_reply_valid("550-5.7.1 no\r\n550 5.7.1 second", '5'));
    assert_true(proto_reply_valid("451", '4'));
    assert_true(proto_reply_valid("421-a\r\n421", '4'));
    assert_false(proto_reply_valid("550 no", '4'));                /* class */
    assert_false(proto_reply_valid("250 ok", '5'));                /* class */
    assert_false(proto_reply_valid("550 a\r\n550 b", '5'));        /* early end */
    assert_false(proto_reply_valid("550-a\r\n551 b", '5'));        /* codes differ */
    assert_false(proto_reply_valid("550-a", '5'));                 /* no last line */
    assert_false(proto_reply_valid("550-a\r\n", '5'));             /* empty last line */
    assert_false(proto_reply_valid("550 a\nb", '5'));              /* bare LF */
    assert_false(proto_reply_valid("550 a\rb", '5'));              /* bare CR */
    assert_false(proto_reply_valid("550 a\r\n250 2.0.0 Ok", '5')); /* an injected reply */
    assert_false(proto_reply_valid("55", '5'));
    assert_false(proto_reply_valid("5x0 a", '5'));
    assert_false(proto_reply_valid("550x", '5'));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmd_verbs_are_case_insensitive),
        cmocka_unit_test(test_cmd_unknown_verbs),
        cmocka_unit_test(test_mail_echoes_the_path_as_written),
        cmocka_unit_test(test_mail_syntax_errors),
        cmocka_unit_test(test_mail_parameters_are_parsed),
        cmocka_unit_test(test_mail_requiretls_is_a_flag),
        cmocka_unit_test(test_mail_requiretls_twice_or_with_a_value_is_501),
        cmocka_unit_test(test_mail_smtputf8_is_a_flag_and_echoes_utf8),
        cmocka_unit_test(test_utf8_address_needs_smtputf8_and_valid_utf8),
        cmocka_unit_test(test_mail_size_over_limit_is_552),
        cmocka_unit_test(test_mail_size_without_limit_is_accepted),
        cmocka_unit_test(test_mail_bad_parameter_values),
        cmocka_unit_test(test_mail_unknown_parameter_is_555),
        cmocka_unit_test(test_rcpt_parameters_are_parsed),
        cmocka_unit_test(test_rcpt_errors),
        cmocka_unit_test(test_mail_auth_parameter_is_kept_decoded),
        cmocka_unit_test(test_base64_round_trips),
        cmocka_unit_test(test_base64_is_strict),
        cmocka_unit_test(test_auth_command_argument),
        cmocka_unit_test(test_auth_responses),
        cmocka_unit_test(test_printable_replaces_and_bounds),
        cmocka_unit_test(test_banner_inserts_esmtp_as_second_word),
        cmocka_unit_test(test_data_ends_only_at_crlf_dot_crlf),
        cmocka_unit_test(test_data_unstuffs_leading_dots),
        cmocka_unit_test(test_data_bare_newlines_become_crlf),
        cmocka_unit_test(test_data_smuggling_sequences_do_not_end),
        cmocka_unit_test(test_data_split_input_gives_the_same_result),
        cmocka_unit_test(test_unbracket_strips_one_pair_of_angle_brackets),
        cmocka_unit_test(test_ident_reply),
        cmocka_unit_test(test_path_args_are_the_parameters_as_given),
        cmocka_unit_test(test_reply_valid_only_for_whole_replies_of_the_class),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
