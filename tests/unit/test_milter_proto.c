/*
 * test_milter_proto - unit tests for lib/milter_proto: the commands tern
 * sends have the exact bytes libmilter expects, the reader yields whole
 * packets from any split and refuses bad lengths before buffering them,
 * every reply kind parses, every malformed reply is refused with a reason,
 * and negotiation / step / reply-placement rules hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "milter_proto.h"

/* bytes - compare a buffer to an expected byte string */
static void assert_bytes(const buf_t *b, const char *want, size_t len)
{
    assert_int_equal(b->len, len);
    assert_memory_equal(b->data, want, len);
}

/* read_one - feed b one byte at a time, expect exactly one packet */
static void read_one(const buf_t *b, struct milter_proto_reader *r, struct milter_proto_packet *p)
{
    const char *why = NULL;

    for (size_t i = 0; i < b->len; i++) {
        assert_int_equal(milter_proto_reader_next(r, p, &why), 0);
        milter_proto_reader_feed(r, b->data + i, 1);
    }
    assert_int_equal(milter_proto_reader_next(r, p, &why), 1);
}

/* parse_raw - parse a reply packet made of cmd and len data bytes */
static int parse_raw(char cmd, const char *data, size_t len, struct milter_proto_reply *r,
                     const char **why)
{
    struct milter_proto_packet p = {cmd, data, len};
    *why = NULL;
    return milter_proto_reply_parse(&p, r, why);
}

/* expect_bad - a malformed reply is refused with a reason */
static void expect_bad(char cmd, const char *data, size_t len)
{
    struct milter_proto_reply r;
    const char *why = NULL;

    assert_int_equal(parse_raw(cmd, data, len, &r, &why), -1);
    assert_non_null(why);
    assert_true(strlen(why) > 0);
}

/* expect_replycode - a replycode text parses to code and enhanced code */
static void expect_replycode(const char *text, int code, const char *enhanced)
{
    struct milter_proto_reply r;
    const char *why = NULL;

    assert_int_equal(parse_raw(SMFIR_REPLYCODE, text, strlen(text) + 1, &r, &why), 0);
    assert_int_equal(r.code, code);
    assert_string_equal(r.enhanced, enhanced);
    assert_string_equal(r.text, text);
}

static void test_milter_proto_optneg_encodes_three_big_endian_numbers(void **state)
{
    buf_t b = BUF_INIT;
    (void)state;

    milter_proto_optneg(&b, 6, 0x1ff, 0x1fffff);
    assert_bytes(&b,
                 "\0\0\0\x0d"
                 "O\0\0\0\x06\0\0\x01\xff\0\x1f\xff\xff",
                 17);
    buf_free(&b);
}

static void test_milter_proto_commands_have_libmilter_layout(void **state)
{
    buf_t b = BUF_INIT;
    const char *names[] = {"j", "{client_addr}"};
    const char *values[] = {"mx.example.org", "192.0.2.1"};
    const char *args[] = {"SIZE=100", "BODY=8BITMIME"};
    (void)state;

    milter_proto_macros(&b, SMFIC_CONNECT, names, values, 2);
    assert_bytes(&b,
                 "\0\0\0\x2b"
                 "DCj\0mx.example.org\0{client_addr}\0"
                 "192.0.2.1\0",
                 47);
    buf_reset(&b);
    milter_proto_connect(&b, "client.example", SMFIA_INET, 2525, "192.0.2.1");
    assert_bytes(&b,
                 "\0\0\0\x1d"
                 "Cclient.example\0"
                 "4\x09\xdd"
                 "192.0.2.1\0",
                 33);
    buf_reset(&b);
    milter_proto_connect(&b, "localhost", SMFIA_UNKNOWN, 0, NULL);
    assert_bytes(&b,
                 "\0\0\0\x0c"
                 "Clocalhost\0U",
                 16);
    buf_reset(&b);
    milter_proto_connect(&b, "localhost", SMFIA_UNIX, 0, "/run/s");
    assert_bytes(&b,
                 "\0\0\0\x15"
                 "Clocalhost\0L\0\0/run/s\0",
                 25);
    buf_reset(&b);
    milter_proto_helo(&b, "h.example");
    assert_bytes(&b,
                 "\0\0\0\x0b"
                 "Hh.example\0",
                 15);
    buf_reset(&b);
    milter_proto_mail(&b, "<a@b>", args, 2);
    assert_bytes(&b,
                 "\0\0\0\x1e"
                 "M<a@b>\0SIZE=100\0BODY=8BITMIME\0",
                 34);
    buf_reset(&b);
    milter_proto_rcpt(&b, "<c@d>", NULL, 0);
    assert_bytes(&b,
                 "\0\0\0\x07"
                 "R<c@d>\0",
                 11);
    buf_reset(&b);
    milter_proto_header(&b, "Subject", "hi");
    assert_bytes(&b,
                 "\0\0\0\x0c"
                 "LSubject\0hi\0",
                 16);
    buf_reset(&b);
    milter_proto_unknown(&b, "XYZZY");
    assert_bytes(&b,
                 "\0\0\0\x07"
                 "UXYZZY\0",
                 11);
    buf_free(&b);
}

static void test_milter_proto_empty_commands_are_one_byte_packets(void **state)
{
    buf_t b = BUF_INIT;
    (void)state;

    milter_proto_data(&b);
    milter_proto_eoh(&b);
    milter_proto_body_end(&b);
    milter_proto_abort(&b);
    milter_proto_quit(&b);
    milter_proto_quit_new_connection(&b);
    assert_bytes(&b, "\0\0\0\1T\0\0\0\1N\0\0\0\1E\0\0\0\1A\0\0\0\1Q\0\0\0\1K", 30);
    buf_free(&b);
}

static void test_milter_proto_body_splits_into_65535_byte_chunks(void **state)
{
    buf_t b = BUF_INIT;
    size_t len = 2 * MILTER_PROTO_BODY_CHUNK + 10;
    char *body = test_malloc(len);
    struct milter_proto_reader r;
    struct milter_proto_packet p;
    const char *why = NULL;
    size_t sizes[3] = {MILTER_PROTO_BODY_CHUNK, MILTER_PROTO_BODY_CHUNK, 10}, off = 0;
    (void)state;

    for (size_t i = 0; i < len; i++)
        body[i] = (char)(i * 7);
    milter_proto_body(&b, body, len);
    milter_proto_body(&b, body, 0); /* nothing */
    milter_proto_reader_init(&r);
    milter_proto_reader_feed(&r, b.data, b.len);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(milter_proto_reader_next(&r, &p, &why), 1);
        assert_int_equal(p.cmd, SMFIC_BODY);
        assert_int_equal(p.len, sizes[i]);
        assert_memory_equal(p.data, body + off, p.len);
        off += p.len;
    }
    assert_int_equal(milter_proto_reader_next(&r, &p, &why), 0);
    milter_proto_reader_free(&r);
    test_free(body);
    buf_free(&b);
}

static void test_milter_proto_reader_yields_packets_fed_one_byte_at_a_time(void **state)
{
    buf_t b = BUF_INIT;
    struct milter_proto_reader r;
    struct milter_proto_packet p;
    const char *why = NULL;
    (void)state;

    milter_proto_reader_init(&r);
    milter_proto_encode(&b, SMFIR_CONTINUE, NULL, 0);
    read_one(&b, &r, &p);
    assert_int_equal(p.cmd, SMFIR_CONTINUE);
    assert_int_equal(p.len, 0);
    buf_reset(&b);
    milter_proto_encode(&b, SMFIR_ADDHEADER, "X-A\0v\0", 6);
    read_one(&b, &r, &p);
    assert_int_equal(p.cmd, SMFIR_ADDHEADER);
    assert_int_equal(p.len, 6);
    assert_memory_equal(p.data, "X-A\0v\0", 6);
    assert_int_equal(milter_proto_reader_next(&r, &p, &why), 0);
    milter_proto_reader_free(&r);
    buf_free(&b);
}

static void test_milter_proto_reader_splits_packets_sent_together(void **state)
{
    buf_t b = BUF_INIT;
    struct milter_proto_reader r;
    struct milter_proto_packet p;
    const char *why = NULL;
    (void)state;

    milter_proto_encode(&b, SMFIR_ADDRCPT, "<x@y>", 6);
    milter_proto_encode(&b, SMFIR_ACCEPT, NULL, 0);
    milter_proto_encode(&b, SMFIR_QUARANTINE, "v", 2);
    milter_proto_reader_init(&r);
    milter_proto_reader_feed(&r, b.data, 7); /* first packet and a half */
    milter_proto_reader_feed(&r, b.data + 7, b.len - 7);
    assert_int_equal(milter_proto_reader_next(&r, &p, &why), 1);
    assert_int_equal(p.cmd, SMFIR_ADDRCPT);
    assert_string_equal(p.data, "<x@y>");
    assert_int_equal(milter_proto_reader_next(&r, &p, &why), 1);
    assert_int_equal(p.cmd, SMFIR_ACCEPT);
    assert_int_equal(milter_proto_reader_next(&r, &p, &why), 1);
    assert_int_equal(p.cmd, SMFIR_QUARANTINE);
    assert_int_equal(milter_proto_reader_next(&r, &p, &why), 0);
    milter_proto_reader_feed(&r, "\0\0\0\1a", 5);
    assert_int_equal(r.in.len, 5); /* what was handed out is gone */
    assert_int_equal(milter_proto_reader_next(&r, &p, &why), 1);
    assert_int_equal(p.cmd, SMFIR_ACCEPT);
    milter_proto_reader_free(&r);
    buf_free(&b);
}

static void test_milter_proto_reader_refuses_zero_length(void **state)
{
    struct milter_proto_reader r;
    struct milter_proto_packet p;
    const char *why = NULL;
    (void)state;

    milter_proto_reader_init(&r);
    milter_proto_reader_feed(&r, "\0\0\0\0c", 5);
    assert_int_equal(milter_proto_reader_next(&r, &p, &why), -1);
    assert_non_null(why);
    milter_proto_reader_free(&r);
}

static void test_milter_proto_reader_refuses_oversize_before_the_data(void **state)
{
    struct milter_proto_reader r;
    struct milter_proto_packet p;
    const char *why = NULL;
    uint32_t big = MILTER_PROTO_MAX_PACKET + 1;
    char head[4] = {(char)(big >> 24), (char)(big >> 16), (char)(big >> 8), (char)big};
    (void)state;

    milter_proto_reader_init(&r);
    for (int i = 0; i < 3; i++) {
        milter_proto_reader_feed(&r, head + i, 1);
        assert_int_equal(milter_proto_reader_next(&r, &p, &why), 0);
    }
    milter_proto_reader_feed(&r, head + 3, 1);
    assert_int_equal(milter_proto_reader_next(&r, &p, &why), -1);
    assert_non_null(why);
    milter_proto_reader_free(&r);
    milter_proto_reader_init(&r);
    milter_proto_reader_feed(&r, "\xff\xff\xff\xff", 4);
    assert_int_equal(milter_proto_reader_next(&r, &p, &why), -1);
    milter_proto_reader_free(&r);
}

static void test_milter_proto_reader_accepts_the_largest_packet(void **state)
{
    buf_t b = BUF_INIT;
    size_t len = MILTER_PROTO_MAX_PACKET - 1;
    char *body = test_calloc(1, len);
    struct milter_proto_reader r;
    struct milter_proto_packet p;
    struct milter_proto_reply rep;
    const char *why = NULL;
    (void)state;

    milter_proto_encode(&b, SMFIR_REPLBODY, body, len);
    milter_proto_reader_init(&r);
    milter_proto_reader_feed(&r, b.data, b.len);
    assert_int_equal(milter_proto_reader_next(&r, &p, &why), 1);
    assert_int_equal(milter_proto_reply_parse(&p, &rep, &why), 0);
    assert_int_equal(rep.body_len, len);
    milter_proto_reader_free(&r);
    test_free(body);
    buf_free(&b);
}

static void test_milter_proto_simple_replies_parse_and_refuse_data(void **state)
{
    const char cmds[] = {SMFIR_ACCEPT, SMFIR_CONTINUE,  SMFIR_DISCARD,
                         SMFIR_REJECT, SMFIR_TEMPFAIL,  SMFIR_PROGRESS,
                         SMFIR_SKIP,   SMFIR_CONN_FAIL, SMFIR_SHUTDOWN};
    struct milter_proto_reply r;
    const char *why = NULL;
    (void)state;

    for (size_t i = 0; i < sizeof(cmds); i++) {
        assert_int_equal(parse_raw(cmds[i], "", 0, &r, &why), 0);
        assert_int_equal(r.cmd, cmds[i]);
        expect_bad(cmds[i], "x", 1);
    }
}

static void test_milter_proto_unknown_reply_is_refused(void **state)
{
    (void)state;
    expect_bad('Z', "", 0);
    expect_bad('l', "", 0); /* SMFIR_SETSYMLIST travels in OPTNEG only */
    expect_bad(SMFIC_HELO, "a\0", 2);
}

static void test_milter_proto_optneg_reply_with_macro_lists(void **state)
{
    static const char data[] = "\0\0\0\6\0\0\0\x11\0\0\x10\x10"
                               "\0\0\0\3{rcpt_addr} {rcpt_host}\0"
                               "\0\0\0\0j {client_addr}\0";
    struct milter_proto_reply r;
    const char *why = NULL;
    (void)state;

    assert_int_equal(parse_raw(SMFIC_OPTNEG, data, sizeof(data) - 1, &r, &why), 0);
    assert_int_equal(r.optneg.version, 6);
    assert_int_equal(r.optneg.actions, SMFIF_ADDHDRS | SMFIF_CHGHDRS);
    assert_int_equal(r.optneg.protocol, SMFIP_NR_CONN | SMFIP_NOBODY);
    assert_string_equal(r.optneg.macros[SMFIM_ENVRCPT], "{rcpt_addr} {rcpt_host}");
    assert_string_equal(r.optneg.macros[SMFIM_CONNECT], "j {client_addr}");
    assert_null(r.optneg.macros[SMFIM_EOM]);
    assert_int_equal(parse_raw(SMFIC_OPTNEG, data, 12, &r, &why), 0);
    assert_null(r.optneg.macros[SMFIM_ENVRCPT]);
}

static void test_milter_proto_malformed_optneg_is_refused(void **state)
{
    (void)state;
    expect_bad(SMFIC_OPTNEG, "\0\0\0\6\0\0\0\1\0\0\0", 11);            /* short */
    expect_bad(SMFIC_OPTNEG, "\0\0\0\6\0\0\0\1\0\0\0\0\0\0", 14);      /* half stage */
    expect_bad(SMFIC_OPTNEG, "\0\0\0\6\0\0\0\1\0\0\0\0\0\0\0\1i", 17); /* no NUL */
    expect_bad(SMFIC_OPTNEG, "\0\0\0\6\0\0\0\1\0\0\0\0\0\0\0\7i\0", 18);
    expect_bad(SMFIC_OPTNEG, "\0\0\0\6\0\0\0\1\0\0\0\0\0\0\0\1i\0\0\0\0\1j\0", 24);
    expect_bad(SMFIC_OPTNEG, "\0\0\0\6\0\0\0\1\0\0\0\0\0\0\0\1i\nj\0", 20);
}

static void test_milter_proto_header_replies_parse(void **state)
{
    struct milter_proto_reply r;
    const char *why = NULL;
    static const char ins[] = "\0\0\0\0DKIM-Signature\0v=1; a=rsa-sha256;\n\tb=abc\0";
    (void)state;

    assert_int_equal(parse_raw(SMFIR_ADDHEADER, "X-Spam\0yes\0", 11, &r, &why), 0);
    assert_string_equal(r.text, "X-Spam");
    assert_string_equal(r.value, "yes");
    assert_int_equal(parse_raw(SMFIR_INSHEADER, ins, sizeof(ins) - 1, &r, &why), 0);
    assert_int_equal(r.index, 0);
    assert_string_equal(r.text, "DKIM-Signature");
    assert_string_equal(r.value, "v=1; a=rsa-sha256;\n\tb=abc");
    assert_int_equal(parse_raw(SMFIR_CHGHEADER, "\0\0\0\2Subject\0\0", 13, &r, &why), 0);
    assert_int_equal(r.index, 2);
    assert_string_equal(r.value, "");
    assert_int_equal(parse_raw(SMFIR_CHGHEADER, "\0\0\0\1S\0a\r\n b\0", 12, &r, &why), 0);
}

static void test_milter_proto_malformed_header_replies_are_refused(void **state)
{
    (void)state;
    expect_bad(SMFIR_ADDHEADER, "X-A\0v", 5);           /* value without NUL */
    expect_bad(SMFIR_ADDHEADER, "X-A\0v\0z", 7);        /* trailing byte */
    expect_bad(SMFIR_ADDHEADER, "X-A", 3);              /* name without NUL */
    expect_bad(SMFIR_ADDHEADER, "\0v\0", 3);            /* empty name */
    expect_bad(SMFIR_ADDHEADER, "X A\0v\0", 6);         /* space in name */
    expect_bad(SMFIR_ADDHEADER, "X:A\0v\0", 6);         /* colon in name */
    expect_bad(SMFIR_ADDHEADER, "X-A\0a\nTo: x\0", 12); /* header injection */
    expect_bad(SMFIR_ADDHEADER, "X-A\0a\rb\0", 8);      /* bare CR */
    expect_bad(SMFIR_ADDHEADER, "X-A\0a\n\0", 7);       /* break at the end */
    expect_bad(SMFIR_ADDHEADER, "X-A\0a\x01\0", 7);
    expect_bad(SMFIR_INSHEADER, "\0\0\0", 3);
    expect_bad(SMFIR_INSHEADER, "\x80\0\0\0X\0v\0", 8); /* index over INT32_MAX */
    expect_bad(SMFIR_CHGHEADER, "\0\0\0\1X\0", 6);
}

static void test_milter_proto_address_replies_parse(void **state)
{
    struct milter_proto_reply r;
    const char *why = NULL;
    (void)state;

    assert_int_equal(parse_raw(SMFIR_ADDRCPT, "<a@b>\0", 6, &r, &why), 0);
    assert_string_equal(r.text, "<a@b>");
    assert_int_equal(parse_raw(SMFIR_DELRCPT, "a@b\0", 4, &r, &why), 0);
    assert_string_equal(r.text, "a@b");
    assert_int_equal(parse_raw(SMFIR_ADDRCPT_PAR, "<a@b>\0NOTIFY=NEVER\0", 19, &r, &why), 0);
    assert_string_equal(r.value, "NOTIFY=NEVER");
    assert_int_equal(parse_raw(SMFIR_ADDRCPT_PAR, "<a@b>\0", 6, &r, &why), 0);
    assert_null(r.value);
    assert_int_equal(parse_raw(SMFIR_CHGFROM, "<>\0\0", 4, &r, &why), 0);
    assert_string_equal(r.text, "<>");
    assert_null(r.value);
    assert_int_equal(parse_raw(SMFIR_CHGFROM, "<s@d>\0SIZE=9 BODY=8BITMIME\0", 27, &r, &why), 0);
    assert_string_equal(r.value, "SIZE=9 BODY=8BITMIME");
}

static void test_milter_proto_malformed_address_replies_are_refused(void **state)
{
    (void)state;
    expect_bad(SMFIR_ADDRCPT, "<a@b>", 5);
    expect_bad(SMFIR_ADDRCPT, "\0", 1);
    expect_bad(SMFIR_ADDRCPT, "<a@b>\0x\0", 8); /* args not allowed */
    expect_bad(SMFIR_DELRCPT, "<a\r\n@b>\0", 8);
    expect_bad(SMFIR_ADDRCPT_PAR, "<a@b>\0ARG", 9);
    expect_bad(SMFIR_ADDRCPT_PAR, "<a@b>\0A\0B\0", 10);
    expect_bad(SMFIR_CHGFROM, "<a@b>\0A\tB\0", 10);
    expect_bad(SMFIR_CHGFROM, "", 0);
}

static void test_milter_proto_replycode_single_and_multi_line(void **state)
{
    (void)state;
    expect_replycode("550 5.7.1 Rejected by policy", 550, "5.7.1");
    expect_replycode("451 Try later", 451, "");
    expect_replycode("554", 554, "");
    expect_replycode("421 4.3.2 ", 421, "4.3.2");
    expect_replycode("550 5.7.1", 550, "5.7.1");
    expect_replycode("550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 last", 550, "5.7.1");
    expect_replycode("450-4.2.0 a\r\n450 b", 450, "4.2.0");
    expect_replycode("550 5.123.456 x", 550, "5.123.456");
}

static void test_milter_proto_malformed_replycode_is_refused(void **state)
{
    const char *bad[] = {
        "250 2.0.0 ok",               /* not 4xx/5xx */
        "55 x",                       /* short code */
        "5x0 x",                      /* not digits */
        "",                           /* empty */
        "550x text",                  /* no separator */
        "550-5.7.1 a",                /* '-' on the last line */
        "550 a\r\n550 b",             /* ' ' before a continuation */
        "550-a\r\n451 b",             /* codes differ */
        "550 4.7.1 class mismatch",   /* enhanced class */
        "450 5.7.1 class mismatch",   /* enhanced class */
        "550-5.7.1 a\r\n550 4.7.1 b", /* enhanced class on a later line */
        "550 5.7.1x text",            /* enhanced code glued to text */
        "550 5.1234.1 text",          /* subject too long */
        "550 5..1 text",              /* empty subject */
        "550 text\nmore",             /* bare LF */
        "550 text\r",                 /* bare CR */
        "550 a\r\n",                  /* empty last line */
        "550 a\x7f",                  /* DEL */
    };
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_bad(SMFIR_REPLYCODE, bad[i], strlen(bad[i]) + 1);
    expect_bad(SMFIR_REPLYCODE, "550 a", 5);    /* no NUL */
    expect_bad(SMFIR_REPLYCODE, "550 a\0x", 7); /* trailing */
}

static void test_milter_proto_quarantine_and_replbody_parse(void **state)
{
    struct milter_proto_reply r;
    const char *why = NULL;
    (void)state;

    assert_int_equal(parse_raw(SMFIR_QUARANTINE, "virus found\0", 12, &r, &why), 0);
    assert_string_equal(r.text, "virus found");
    expect_bad(SMFIR_QUARANTINE, "\0", 1);
    expect_bad(SMFIR_QUARANTINE, "a", 1);
    expect_bad(SMFIR_QUARANTINE, "a\0b\0", 4);
    expect_bad(SMFIR_QUARANTINE, "a\nb\0", 4);
    assert_int_equal(parse_raw(SMFIR_REPLBODY, "line\r\n\0bin", 10, &r, &why), 0);
    assert_int_equal(r.body_len, 10);
    assert_memory_equal(r.body, "line\r\n\0bin", 10);
    assert_int_equal(parse_raw(SMFIR_REPLBODY, "", 0, &r, &why), 0);
    assert_int_equal(r.body_len, 0);
}

/* answer - an OPTNEG answer without macro lists */
static struct milter_proto_optneg answer(uint32_t version, uint32_t actions, uint32_t protocol)
{
    struct milter_proto_optneg o;
    memset(&o, 0, sizeof(o));
    o.version = version;
    o.actions = actions;
    o.protocol = protocol;
    return o;
}

static void test_milter_proto_negotiation_agrees_on_the_milter_subset(void **state)
{
    struct milter_proto_optneg o = answer(6, SMFIF_ADDHDRS, SMFIP_NOHELO | SMFIP_NR_RCPT);
    struct milter_proto_agreed a;
    const char *why = NULL;
    (void)state;

    assert_int_equal(milter_proto_negotiate(6, MILTER_PROTO_ACTIONS_ALL, 0x1fffff, &o, &a, &why),
                     0);
    assert_int_equal(a.version, 6);
    assert_int_equal(a.actions, SMFIF_ADDHDRS);
    assert_false(milter_proto_step_sent(&a, SMFIC_HELO));
    assert_true(milter_proto_step_sent(&a, SMFIC_CONNECT));
    assert_true(milter_proto_step_sent(&a, SMFIC_DATA));
    assert_true(milter_proto_step_sent(&a, SMFIC_BODYEOB));
    assert_true(milter_proto_step_replies(&a, SMFIC_MAIL));
    assert_false(milter_proto_step_replies(&a, SMFIC_RCPT));
    assert_true(milter_proto_step_replies(&a, SMFIC_BODYEOB));
    assert_true(milter_proto_step_replies(&a, SMFIC_OPTNEG));
    assert_false(milter_proto_step_replies(&a, SMFIC_MACRO));
    assert_false(milter_proto_step_replies(&a, SMFIC_ABORT));
    assert_false(milter_proto_step_replies(&a, SMFIC_QUIT));
    assert_false(milter_proto_step_replies(&a, SMFIC_QUIT_NC));
}

static void test_milter_proto_negotiation_refuses_what_was_not_offered(void **state)
{
    struct milter_proto_agreed a;
    const char *why = NULL;
    struct milter_proto_optneg o;
    (void)state;

    o = answer(6, SMFIF_CHGBODY, 0);
    assert_int_equal(milter_proto_negotiate(6, SMFIF_ADDHDRS, 0x1fffff, &o, &a, &why), -1);
    assert_non_null(why);
    o = answer(6, 0, SMFIP_MDS_1M);
    why = NULL;
    assert_int_equal(milter_proto_negotiate(6, 0, 0x1fffff, &o, &a, &why), -1);
    assert_non_null(why);
    o = answer(7, 0, 0);
    why = NULL;
    assert_int_equal(milter_proto_negotiate(6, 0, 0, &o, &a, &why), -1);
    assert_non_null(why);
    o = answer(1, 0, 0);
    assert_int_equal(milter_proto_negotiate(6, 0, 0, &o, &a, &why), -1);
    o = answer(6, 0, 0);
    assert_int_equal(milter_proto_negotiate(2, 0, 0, &o, &a, &why), -1);
}

static void test_milter_proto_old_milters_are_not_sent_newer_steps(void **state)
{
    struct milter_proto_agreed a;
    const char *why = NULL;
    struct milter_proto_optneg o = answer(2, SMFIF_ADDHDRS, SMFIP_NOCONNECT);
    (void)state;

    assert_int_equal(milter_proto_negotiate(6, MILTER_PROTO_ACTIONS_ALL, 0x7f, &o, &a, &why), 0);
    assert_int_equal(a.version, 2);
    assert_false(milter_proto_step_sent(&a, SMFIC_DATA));
    assert_false(milter_proto_step_sent(&a, SMFIC_UNKNOWN));
    assert_false(milter_proto_step_sent(&a, SMFIC_CONNECT));
    assert_true(milter_proto_step_sent(&a, SMFIC_HEADER));
    o.version = 3;
    assert_int_equal(milter_proto_negotiate(6, MILTER_PROTO_ACTIONS_ALL, 0x7f, &o, &a, &why), 0);
    assert_false(milter_proto_step_sent(&a, SMFIC_DATA));
    assert_true(milter_proto_step_sent(&a, SMFIC_UNKNOWN));
}

/* allowed - milter_proto_reply_allowed for a reply of command rcmd */
static int allowed(const struct milter_proto_agreed *a, char cmd, char rcmd)
{
    struct milter_proto_reply r;
    const char *why = NULL;
    int rc;

    memset(&r, 0, sizeof(r));
    r.cmd = rcmd;
    rc = milter_proto_reply_allowed(a, cmd, &r, &why);
    if (rc < 0)
        assert_non_null(why);
    return rc;
}

static void test_milter_proto_reply_placement_rules(void **state)
{
    struct milter_proto_agreed a = {6, SMFIF_ADDHDRS | SMFIF_QUARANTINE, 0};
    (void)state;

    assert_int_equal(allowed(&a, SMFIC_BODYEOB, SMFIR_ADDHEADER), 0);
    assert_int_equal(allowed(&a, SMFIC_BODYEOB, SMFIR_QUARANTINE), 0);
    assert_int_equal(allowed(&a, SMFIC_BODYEOB, SMFIR_PROGRESS), 0);
    assert_int_equal(allowed(&a, SMFIC_RCPT, SMFIR_ADDHEADER), -1);
    assert_int_equal(allowed(&a, SMFIC_RCPT, SMFIR_PROGRESS), -1);
    assert_int_equal(allowed(&a, SMFIC_BODYEOB, SMFIR_CHGHEADER), -1);
    assert_int_equal(allowed(&a, SMFIC_BODYEOB, SMFIR_REPLBODY), -1);
    assert_int_equal(allowed(&a, SMFIC_RCPT, SMFIR_REPLYCODE), 0);
    assert_int_equal(allowed(&a, SMFIC_CONNECT, SMFIR_ACCEPT), 0);
    assert_int_equal(allowed(&a, SMFIC_BODY, SMFIR_SKIP), -1);
    a.protocol = SMFIP_SKIP;
    assert_int_equal(allowed(&a, SMFIC_BODY, SMFIR_SKIP), 0);
    assert_int_equal(allowed(&a, SMFIC_HEADER, SMFIR_SKIP), -1);
    assert_int_equal(allowed(&a, SMFIC_OPTNEG, SMFIC_OPTNEG), 0);
    assert_int_equal(allowed(&a, SMFIC_OPTNEG, SMFIR_CONTINUE), -1);
    assert_int_equal(allowed(&a, SMFIC_HELO, SMFIC_OPTNEG), -1);
}

static void test_milter_proto_commands_round_trip_through_the_reader(void **state)
{
    buf_t b = BUF_INIT;
    struct milter_proto_reader r;
    struct milter_proto_packet p;
    const char *why = NULL;
    const char want[] = "OCHMRTLNBEAQKU";
    size_t n = 0;
    (void)state;

    milter_proto_optneg(&b, 6, 1, 2);
    milter_proto_connect(&b, "h", SMFIA_INET6, 25, "2001:db8::1");
    milter_proto_helo(&b, "h");
    milter_proto_mail(&b, "<>", NULL, 0);
    milter_proto_rcpt(&b, "<r@x>", NULL, 0);
    milter_proto_data(&b);
    milter_proto_header(&b, "A", "b");
    milter_proto_eoh(&b);
    milter_proto_body(&b, "x\r\n", 3);
    milter_proto_body_end(&b);
    milter_proto_abort(&b);
    milter_proto_quit(&b);
    milter_proto_quit_new_connection(&b);
    milter_proto_unknown(&b, "FOO");
    milter_proto_reader_init(&r);
    for (size_t i = 0; i < b.len; i++) {
        milter_proto_reader_feed(&r, b.data + i, 1);
        while (milter_proto_reader_next(&r, &p, &why) == 1)
            assert_int_equal(p.cmd, want[n++]);
    }
    assert_int_equal(n, strlen(want));
    milter_proto_reader_free(&r);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_milter_proto_optneg_encodes_three_big_endian_numbers),
        cmocka_unit_test(test_milter_proto_commands_have_libmilter_layout),
        cmocka_unit_test(test_milter_proto_empty_commands_are_one_byte_packets),
        cmocka_unit_test(test_milter_proto_body_splits_into_65535_byte_chunks),
        cmocka_unit_test(test_milter_proto_reader_yields_packets_fed_one_byte_at_a_time),
        cmocka_unit_test(test_milter_proto_reader_splits_packets_sent_together),
        cmocka_unit_test(test_milter_proto_reader_refuses_zero_length),
        cmocka_unit_test(test_milter_proto_reader_refuses_oversize_before_the_data),
        cmocka_unit_test(test_milter_proto_reader_accepts_the_largest_packet),
        cmocka_unit_test(test_milter_proto_simple_replies_parse_and_refuse_data),
        cmocka_unit_test(test_milter_proto_unknown_reply_is_refused),
        cmocka_unit_test(test_milter_proto_optneg_reply_with_macro_lists),
        cmocka_unit_test(test_milter_proto_malformed_optneg_is_refused),
        cmocka_unit_test(test_milter_proto_header_replies_parse),
        cmocka_unit_test(test_milter_proto_malformed_header_replies_are_refused),
        cmocka_unit_test(test_milter_proto_address_replies_parse),
        cmocka_unit_test(test_milter_proto_malformed_address_replies_are_refused),
        cmocka_unit_test(test_milter_proto_replycode_single_and_multi_line),
        cmocka_unit_test(test_milter_proto_malformed_replycode_is_refused),
        cmocka_unit_test(test_milter_proto_quarantine_and_replbody_parse),
        cmocka_unit_test(test_milter_proto_negotiation_agrees_on_the_milter_subset),
        cmocka_unit_test(test_milter_proto_negotiation_refuses_what_was_not_offered),
        cmocka_unit_test(test_milter_proto_old_milters_are_not_sent_newer_steps),
        cmocka_unit_test(test_milter_proto_reply_placement_rules),
        cmocka_unit_test(test_milter_proto_commands_round_trip_through_the_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
