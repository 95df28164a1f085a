/*
 * test_smtp_ext - unit tests for lib/smtp_ext: BDAT arguments (RFC 3030:
 * the size, one space, LAST in any case, nothing else), ETRN's three forms
 * (RFC 1985) and its domain check, HELP topics and replies from a help
 * file in sendmail's format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_ext.h"

#define BDAT_SYNTAX "501 5.5.4 Syntax: BDAT <size> [LAST]"
#define ETRN_SYNTAX "501 5.5.4 Syntax: ETRN <domain> | @<domain> | #<queue>"

/* test_bdat_parses_size_and_last */
static void test_bdat_parses_size_and_last(void **state)
{
    struct smtp_ext_bdat b;
    buf_t reply = BUF_INIT;

    assert_int_equal(smtp_ext_bdat_parse("1000", 10000, &b, &reply), SMTP_EXT_OK);
    assert_int_equal(b.size, 1000);
    assert_false(b.last);
    assert_int_equal(reply.len, 0);
    assert_int_equal(smtp_ext_bdat_parse("86 LAST", 10000, &b, &reply), SMTP_EXT_OK);
    assert_int_equal(b.size, 86);
    assert_true(b.last);
    assert_int_equal(smtp_ext_bdat_parse("0 last", 10000, &b, &reply), SMTP_EXT_OK);
    assert_int_equal(b.size, 0);
    assert_true(b.last);
    assert_int_equal(smtp_ext_bdat_parse("5 LaSt", 10000, &b, &reply), SMTP_EXT_OK);
    assert_true(b.last);
    assert_int_equal(smtp_ext_bdat_parse("0", 10000, &b, &reply), SMTP_EXT_OK);
    assert_int_equal(b.size, 0);
    buf_free(&reply);
}

/* test_bdat_accepts_leading_zeros_beyond_the_digit_bound */
static void test_bdat_accepts_leading_zeros_beyond_the_digit_bound(void **state)
{
    struct smtp_ext_bdat b;
    buf_t reply = BUF_INIT;

    assert_int_equal(smtp_ext_bdat_parse("000000000000000000000000042 LAST", 100, &b, &reply),
                     SMTP_EXT_OK);
    assert_int_equal(b.size, 42);
    assert_int_equal(smtp_ext_bdat_parse("999999999999999999", 999999999999999999LL, &b, &reply),
                     SMTP_EXT_OK);
    assert_int_equal(b.size, 999999999999999999LL);
    buf_free(&reply);
}

/* test_bdat_refuses_every_other_syntax_with_501 */
static void test_bdat_refuses_every_other_syntax_with_501(void **state)
{
    static const char *bad[] = {
        "",         "LAST",     "-1",       "+5",
        "0x10",     "10 ",      "10  LAST", "10\tLAST",
        "10 LAST ", "10 LASTX", "10 LAS",   "10 LAST LAST",
        "10LAST",   "1 000",    "1e3",      " 10",
        "10 FIRST", "10,LAST",  "12\r\n",   "1000000000000000000", /* 19 significant digits */
    };
    struct smtp_ext_bdat b;
    buf_t reply = BUF_INIT;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(smtp_ext_bdat_parse(bad[i], 1000, &b, &reply), SMTP_EXT_SYNTAX);
        assert_string_equal(buf_cstr(&reply), BDAT_SYNTAX);
    }
    buf_free(&reply);
}

/* test_bdat_over_the_bound_is_552_with_the_size_to_skip */
static void test_bdat_over_the_bound_is_552_with_the_size_to_skip(void **state)
{
    struct smtp_ext_bdat b;
    buf_t reply = BUF_INIT;

    assert_int_equal(smtp_ext_bdat_parse("1001 LAST", 1000, &b, &reply), SMTP_EXT_TOO_BIG);
    assert_int_equal(b.size, 1001);
    assert_true(b.last);
    assert_string_equal(buf_cstr(&reply),
                        "552 5.3.4 Message size exceeds fixed maximum message size");
    assert_int_equal(smtp_ext_bdat_parse("1000", 1000, &b, &reply), SMTP_EXT_OK);
    assert_int_equal(reply.len, 0); /* the earlier reply is gone */
    buf_free(&reply);
}

/* test_etrn_parses_the_three_forms */
static void test_etrn_parses_the_three_forms(void **state)
{
    enum smtp_ext_etrn_form form;
    buf_t name = BUF_INIT, reply = BUF_INIT;

    assert_int_equal(smtp_ext_etrn_parse("D.Test", &form, &name, &reply), 0);
    assert_int_equal(form, SMTP_EXT_ETRN_DOMAIN);
    assert_string_equal(buf_cstr(&name), "d.test");
    assert_int_equal(smtp_ext_etrn_parse("@Example.ORG", &form, &name, &reply), 0);
    assert_int_equal(form, SMTP_EXT_ETRN_SUBDOMAINS);
    assert_string_equal(buf_cstr(&name), "example.org");
    assert_int_equal(smtp_ext_etrn_parse("#Queue-1", &form, &name, &reply), 0);
    assert_int_equal(form, SMTP_EXT_ETRN_QUEUE);
    assert_string_equal(buf_cstr(&name), "Queue-1"); /* a queue keeps its case */
    assert_int_equal(smtp_ext_etrn_parse("localhost", &form, &name, &reply), 0);
    assert_int_equal(smtp_ext_etrn_parse("xn--bcher-kva.example", &form, &name, &reply), 0);
    assert_int_equal(reply.len, 0);
    buf_free(&name);
    buf_free(&reply);
}

/* test_etrn_refuses_bad_domains_and_queues_with_501 */
static void test_etrn_refuses_bad_domains_and_queues_with_501(void **state)
{
    static const char *bad[] = {
        "",
        "@",
        "#",
        "a..b",
        ".a",
        "a.",
        "-a.b",
        "a-.b",
        "a_b.c",
        "a b",
        "a.b extra",
        "@@a.b",
        "#a b",
        "#\x01",
        "@#q",
        "[192.0.2.1]",
        "b\xC3\xBC.example",
        "a\r\n.b",
    };
    enum smtp_ext_etrn_form form;
    buf_t name = BUF_INIT, reply = BUF_INIT;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(smtp_ext_etrn_parse(bad[i], &form, &name, &reply), -1);
        assert_string_equal(buf_cstr(&reply), ETRN_SYNTAX);
        assert_int_equal(name.len, 0);
    }
    buf_free(&name);
    buf_free(&reply);
}

/* test_domain_valid_bounds_labels_and_length */
static void test_domain_valid_bounds_labels_and_length(void **state)
{
    char name[300];

    memset(name, 'a', 63);
    assert_true(smtp_ext_domain_valid(name, 63));
    assert_false(smtp_ext_domain_valid(name, 64));
    /* 4 labels of 63 and one of 1: 253 bytes, then 255 */
    memset(name, 'a', sizeof(name));
    name[63] = name[127] = name[191] = name[251] = '.';
    assert_true(smtp_ext_domain_valid(name, 253));
    name[253] = '.';
    assert_false(smtp_ext_domain_valid(name, 255));
    assert_false(smtp_ext_domain_valid("", 0));
    assert_true(smtp_ext_domain_valid("a-b.c0", 6));
}

/* queue names are bounded */
static void test_etrn_queue_name_is_bounded(void **state)
{
    enum smtp_ext_etrn_form form;
    buf_t name = BUF_INIT, reply = BUF_INIT;
    char arg[SMTP_EXT_QUEUE_MAX + 3];

    arg[0] = '#';
    memset(arg + 1, 'q', SMTP_EXT_QUEUE_MAX);
    arg[SMTP_EXT_QUEUE_MAX + 1] = 0;
    assert_int_equal(smtp_ext_etrn_parse(arg, &form, &name, &reply), 0);
    assert_int_equal(name.len, SMTP_EXT_QUEUE_MAX);
    arg[SMTP_EXT_QUEUE_MAX + 1] = 'q';
    arg[SMTP_EXT_QUEUE_MAX + 2] = 0;
    assert_int_equal(smtp_ext_etrn_parse(arg, &form, &name, &reply), -1);
    buf_free(&name);
    buf_free(&reply);
}

/* a help file as sendmail ships it (abridged), with CRLF and a comment */
static const char helpfile[] = "#vers\t2\n"
                               "cpyr\n"
                               "cpyr\tCopyright (c) 1998 Sendmail, Inc.\n"
                               "smtp\tThis is sendmail version $v\n"
                               "smtp\tTopics:\n"
                               "smtp\t\tHELO\tEHLO\tMAIL\tRCPT\tDATA\n"
                               "help\tHELP [ <topic> ]\r\n"
                               "help\t\tThe HELP command gives help info.\n"
                               "rcpt\tRCPT To:<recipient> [ <parameters> ]\n"
                               "# a comment in the middle\n"
                               "RCPT\t\tSpecifies the recipient.  Costs $$0.\n"
                               "\n"
                               "smtp\tFor more info use \"HELP <topic>\".";

/* reply - the whole HELP reply for arg */
static const char *reply_for(const struct smtp_ext_helpfile *hf, const char *arg, buf_t *out)
{
    smtp_ext_help_reply(hf, arg, "8.17.1", out);
    return buf_cstr(out);
}

/* test_help_without_topic_shows_smtp_lines_with_version */
static void test_help_without_topic_shows_smtp_lines_with_version(void **state)
{
    struct smtp_ext_helpfile hf;
    buf_t out = BUF_INIT;

    smtp_ext_helpfile_init(&hf);
    smtp_ext_helpfile_parse(helpfile, sizeof(helpfile) - 1, &hf);
    assert_string_equal(reply_for(&hf, "", &out),
                        "214-2.0.0 This is sendmail version 8.17.1\r\n"
                        "214-2.0.0 Topics:\r\n"
                        "214-2.0.0 \tHELO\tEHLO\tMAIL\tRCPT\tDATA\r\n"
                        "214-2.0.0 For more info use \"HELP <topic>\".\r\n"
                        "214 2.0.0 End of HELP info");
    assert_string_equal(reply_for(&hf, "SMTP  ", &out), reply_for(&hf, "", &out));
    smtp_ext_helpfile_free(&hf);
    buf_free(&out);
}

/* test_help_topic_is_case_insensitive_and_exact */
static void test_help_topic_is_case_insensitive_and_exact(void **state)
{
    struct smtp_ext_helpfile hf;
    buf_t out = BUF_INIT;

    smtp_ext_helpfile_init(&hf);
    smtp_ext_helpfile_parse(helpfile, sizeof(helpfile) - 1, &hf);
    assert_string_equal(reply_for(&hf, "rcpt", &out),
                        "214-2.0.0 RCPT To:<recipient> [ <parameters> ]\r\n"
                        "214-2.0.0 \tSpecifies the recipient.  Costs $0.\r\n"
                        "214 2.0.0 End of HELP info");
    assert_string_equal(reply_for(&hf, "HELP", &out),
                        "214-2.0.0 HELP [ <topic> ]\r\n"
                        "214-2.0.0 \tThe HELP command gives help info.\r\n"
                        "214 2.0.0 End of HELP info");
    assert_string_equal(reply_for(&hf, "cpyr", &out),
                        "214-2.0.0 \r\n"
                        "214-2.0.0 Copyright (c) 1998 Sendmail, Inc.\r\n"
                        "214 2.0.0 End of HELP info");
    /* sendmail matched prefixes ("HELP he" gave help and helo); tern does not */
    assert_string_equal(reply_for(&hf, "he", &out), "504 5.3.0 HELP topic \"he\" unknown");
    smtp_ext_helpfile_free(&hf);
    buf_free(&out);
}

/* test_help_unknown_topic_is_504_with_a_safe_echo */
static void test_help_unknown_topic_is_504_with_a_safe_echo(void **state)
{
    struct smtp_ext_helpfile hf;
    buf_t out = BUF_INIT;

    smtp_ext_helpfile_init(&hf);
    smtp_ext_helpfile_parse(helpfile, sizeof(helpfile) - 1, &hf);
    assert_string_equal(reply_for(&hf, "foo", &out), "504 5.3.0 HELP topic \"foo\" unknown");
    assert_string_equal(reply_for(&hf, "a\"b\x01\xC3\xBC", &out),
                        "504 5.3.0 HELP topic \"a?b???\" unknown");
    assert_string_equal(reply_for(&hf, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &out),
                        "504 5.3.0 HELP topic \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" unknown");
    smtp_ext_helpfile_free(&hf);
    buf_free(&out);
}

/* test_help_without_file_is_502 */
static void test_help_without_file_is_502(void **state)
{
    buf_t out = BUF_INIT;

    assert_string_equal(reply_for(NULL, "", &out), "502 5.3.0 HELP not implemented");
    buf_free(&out);
}

/* test_help_admin_text_replaces_everything */
static void test_help_admin_text_replaces_everything(void **state)
{
    static const char dave[] = "smtp\tI'm sorry, Dave, I'm afraid I can't do that.\n";
    struct smtp_ext_helpfile hf;
    buf_t out = BUF_INIT;

    smtp_ext_helpfile_init(&hf);
    smtp_ext_helpfile_parse(helpfile, sizeof(helpfile) - 1, &hf);
    smtp_ext_helpfile_parse(dave, sizeof(dave) - 1, &hf); /* replaces */
    assert_string_equal(reply_for(&hf, "", &out),
                        "214-2.0.0 I'm sorry, Dave, I'm afraid I can't do that.\r\n"
                        "214 2.0.0 End of HELP info");
    assert_string_equal(reply_for(&hf, "rcpt", &out), "504 5.3.0 HELP topic \"rcpt\" unknown");
    smtp_ext_helpfile_free(&hf);
    buf_free(&out);
}

/* test_help_lines_never_carry_controls_or_overflow */
static void test_help_lines_never_carry_controls_or_overflow(void **state)
{
    static const char evil[] = "smtp\tone\rtwo\0three\x7F$v\n";
    struct smtp_ext_helpfile hf;
    buf_t out = BUF_INIT, big = BUF_INIT;
    size_t i;

    smtp_ext_helpfile_init(&hf);
    smtp_ext_helpfile_parse(evil, sizeof(evil) - 1, &hf);
    smtp_ext_help_reply(&hf, "", "1\r\n250 ok", &out);
    assert_string_equal(buf_cstr(&out), "214-2.0.0 one?two?three?1??250 ok\r\n"
                                        "214 2.0.0 End of HELP info");
    /* a long line, and $v many times: every reply line fits in 512 with CRLF */
    buf_puts(&big, "smtp\t");
    for (i = 0; i < 300; i++)
        buf_puts(&big, "$v");
    smtp_ext_helpfile_parse(big.data, big.len, &hf);
    smtp_ext_help_reply(&hf, "", "8.17.1", &out);
    assert_non_null(strstr(out.data, "\r\n214 2.0.0 End of HELP info"));
    assert_true(strstr(out.data, "\r\n") - out.data + 2 <= 512);
    smtp_ext_helpfile_free(&hf);
    buf_free(&out);
    buf_free(&big);
}

/* test_help_topic_defaults_to_smtp */
static void test_help_topic_defaults_to_smtp(void **state)
{
    buf_t topic = BUF_INIT;

    smtp_ext_help_topic("", &topic);
    assert_string_equal(buf_cstr(&topic), "smtp");
    smtp_ext_help_topic("  ", &topic);
    assert_string_equal(buf_cstr(&topic), "smtp");
    smtp_ext_help_topic("RCPT", &topic);
    assert_string_equal(buf_cstr(&topic), "rcpt");
    buf_free(&topic);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bdat_parses_size_and_last),
        cmocka_unit_test(test_bdat_accepts_leading_zeros_beyond_the_digit_bound),
        cmocka_unit_test(test_bdat_refuses_every_other_syntax_with_501),
        cmocka_unit_test(test_bdat_over_the_bound_is_552_with_the_size_to_skip),
        cmocka_unit_test(test_etrn_parses_the_three_forms),
        cmocka_unit_test(test_etrn_refuses_bad_domains_and_queues_with_501),
        cmocka_unit_test(test_domain_valid_bounds_labels_and_length),
        cmocka_unit_test(test_etrn_queue_name_is_bounded),
        cmocka_unit_test(test_help_without_topic_shows_smtp_lines_with_version),
        cmocka_unit_test(test_help_topic_is_case_insensitive_and_exact),
        cmocka_unit_test(test_help_unknown_topic_is_504_with_a_safe_echo),
        cmocka_unit_test(test_help_without_file_is_502),
        cmocka_unit_test(test_help_admin_text_replaces_everything),
        cmocka_unit_test(test_help_lines_never_carry_controls_or_overflow),
        cmocka_unit_test(test_help_topic_defaults_to_smtp),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
