/*
 * test_smtpd_xclient - the arguments of XCLIENT and XFORWARD
 * (smtpd/xclient_proto.c): attributes, xtext, [UNAVAILABLE], and the exact
 * 501 replies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "xclient.h"

struct parsed {
    struct smtpd_xclient_args a;
    buf_t reply;
    int rc;
};

static void parse(struct parsed *p, const char *arg, int xforward)
{
    smtpd_xclient_args_init(&p->a);
    buf_init(&p->reply);
    p->rc = smtpd_xclient_parse(arg, xforward, &p->a, &p->reply);
}

static void done(struct parsed *p)
{
    smtpd_xclient_args_free(&p->a);
    buf_free(&p->reply);
}

static const char *value(const struct parsed *p, enum smtpd_xattr x)
{
    return buf_cstr(&p->a.value[x]);
}

static void test_xclient_takes_every_attribute(void **state)
{
    struct parsed p;
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&p.a.addr;

    parse(&p,
          "NAME=mx.example.org ADDR=192.0.2.1 PORT=25 PROTO=esmtp HELO=mx+20helo LOGIN=bob "
          "DESTADDR=IPV6:2001:db8::1 DESTPORT=587",
          0);
    assert_int_equal(p.rc, 0);
    assert_string_equal(value(&p, SMTPD_XATTR_NAME), "mx.example.org");
    assert_int_equal(in4->sin_family, AF_INET);
    assert_int_equal(ntohl(in4->sin_addr.s_addr), 0xc0000201);
    assert_int_equal(in4->sin_port, 0);
    assert_string_equal(value(&p, SMTPD_XATTR_PORT), "25");
    assert_string_equal(value(&p, SMTPD_XATTR_PROTO), "esmtp");
    assert_string_equal(value(&p, SMTPD_XATTR_HELO), "mx?helo"); /* xtext, then neutered */
    assert_string_equal(value(&p, SMTPD_XATTR_LOGIN), "bob");
    assert_int_equal(p.a.destaddr.ss_family, AF_INET6);
    assert_true(smtpd_xclient_has(&p.a, SMTPD_XATTR_DESTPORT));
    assert_false(smtpd_xclient_has(&p.a, SMTPD_XATTR_IDENT));
    done(&p);
}

static void test_unavailable_values_are_given_but_unknown(void **state)
{
    struct parsed p;

    parse(&p, "NAME=[TEMPUNAVAIL] ADDR=[UNAVAILABLE] helo=[unavailable]", 0);
    assert_int_equal(p.rc, 0);
    assert_true(p.a.given & (1u << SMTPD_XATTR_NAME));
    assert_false(smtpd_xclient_has(&p.a, SMTPD_XATTR_NAME));
    assert_true(p.a.name_tempfail);
    assert_false(smtpd_xclient_has(&p.a, SMTPD_XATTR_ADDR));
    assert_false(smtpd_xclient_has(&p.a, SMTPD_XATTR_HELO));
    assert_string_equal(value(&p, SMTPD_XATTR_NAME), "");
    done(&p);
    parse(&p, "ADDR=[TEMPUNAVAIL]", 0); /* only NAME may be temporarily unknown */
    assert_int_equal(p.rc, -1);
    assert_string_equal(buf_cstr(&p.reply), "501 5.5.4 Bad ADDR syntax: [TEMPUNAVAIL]");
    done(&p);
}

static void test_each_error_has_its_reply(void **state)
{
    static const struct {
        const char *arg;
        int xforward;
        const char *reply;
    } cases[] = {
        {"", 0, "501 5.5.4 Syntax: XCLIENT attribute=value..."},
        {"   ", 1, "501 5.5.4 Syntax: XFORWARD attribute=value..."},
        {"NAME", 0, "501 5.5.4 Error: attribute=value expected"},
        {"NAME=", 0, "501 5.5.4 Error: attribute=value expected"},
        {"COLOR=red", 0, "501 5.5.4 Bad XCLIENT attribute name: COLOR"},
        {"IDENT=q1", 0, "501 5.5.4 Bad XCLIENT attribute name: IDENT"},
        {"LOGIN=bob", 1, "501 5.5.4 Bad XFORWARD attribute name: LOGIN"},
        {"NAME=bad_name!", 0, "501 5.5.4 Bad NAME syntax: bad_name!"},
        {"ADDR=300.1.1.1", 0, "501 5.5.4 Bad ADDR syntax: 300.1.1.1"},
        {"ADDR=2001:db8::1", 0, "501 5.5.4 Bad ADDR syntax: 2001:db8::1"},
        {"PORT=65536", 0, "501 5.5.4 Bad PORT syntax: 65536"},
        {"PORT=25x", 1, "501 5.5.4 Bad PORT syntax: 25x"},
        {"PROTO=LMTP", 0, "501 5.5.4 Bad PROTO syntax: LMTP"},
        {"SOURCE=ELSEWHERE", 1, "501 5.5.4 Bad SOURCE syntax: ELSEWHERE"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct parsed p;
        parse(&p, cases[i].arg, cases[i].xforward);
        assert_int_equal(p.rc, -1);
        assert_string_equal(buf_cstr(&p.reply), cases[i].reply);
        done(&p);
    }
}

static void test_a_value_longer_than_255_is_refused(void **state)
{
    char arg[5 + 300];
    struct parsed p;

    memcpy(arg, "HELO=", 5);
    memset(arg + 5, 'h', 256);
    arg[5 + 256] = '\0';
    parse(&p, arg, 0);
    assert_int_equal(p.rc, -1);
    assert_string_equal(buf_cstr(&p.reply), "501 5.5.4 Error: attribute value too long");
    done(&p);
    arg[5 + 255] = '\0';
    parse(&p, arg, 0);
    assert_int_equal(p.rc, 0);
    done(&p);
}

static void test_xforward_words_and_masking(void **state)
{
    struct parsed p;

    /* not xtext ("+zz"): taken as it is, as Postfix does for old clients;
     * control bytes and header specials are masked */
    parse(&p, "PROTO=ESMTPSA IDENT=12+zz SOURCE=local HELO=a<b>\"c\"", 1);
    assert_int_equal(p.rc, 0);
    assert_string_equal(value(&p, SMTPD_XATTR_PROTO), "ESMTPSA");
    assert_string_equal(value(&p, SMTPD_XATTR_IDENT), "12+zz");
    assert_string_equal(value(&p, SMTPD_XATTR_SOURCE), "local");
    assert_string_equal(value(&p, SMTPD_XATTR_HELO), "a?b??c?");
    done(&p);
    parse(&p, "HELO=x+0Ay", 1);
    assert_int_equal(p.rc, 0);
    assert_string_equal(value(&p, SMTPD_XATTR_HELO), "x?y");
    done(&p);
}

static void test_a_later_value_wins_and_commands_add_up(void **state)
{
    struct parsed p;
    buf_t reply = BUF_INIT;

    parse(&p, "NAME=a.example NAME=b.example", 1);
    assert_int_equal(p.rc, 0);
    assert_string_equal(value(&p, SMTPD_XATTR_NAME), "b.example");
    assert_int_equal(smtpd_xclient_parse("ADDR=IPV6:::1", 1, &p.a, &reply), 0);
    assert_true(smtpd_xclient_has(&p.a, SMTPD_XATTR_NAME));
    assert_int_equal(p.a.addr.ss_family, AF_INET6);
    assert_int_equal(smtpd_xclient_parse("NAME=[UNAVAILABLE]", 1, &p.a, &reply), 0);
    assert_false(smtpd_xclient_has(&p.a, SMTPD_XATTR_NAME));
    buf_free(&reply);
    done(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xclient_takes_every_attribute),
        cmocka_unit_test(test_unavailable_values_are_given_but_unknown),
        cmocka_unit_test(test_each_error_has_its_reply),
        cmocka_unit_test(test_a_value_longer_than_255_is_refused),
        cmocka_unit_test(test_xforward_words_and_masking),
        cmocka_unit_test(test_a_later_value_wins_and_commands_add_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
