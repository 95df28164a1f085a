/*
 * test_netstring - unit tests for lib/netstring and lib/socketmap_proto:
 * netstrings encoded, decoded byte by byte (needs-more until the ','),
 * refused with a reason; socketmap requests built and every reply form of
 * sendmail's protocol parsed, strictly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "netstring.h"
#include "socketmap_proto.h"

/* decode - netstring_decode on a C string */
static enum netstring_status decode(const char *s, size_t max, struct netstring *ns,
                                    const char **reason)
{
    return netstring_decode(s, strlen(s), max, ns, reason);
}

/* test_netstring_encode_examples */
static void test_netstring_encode_examples(void **state)
{
    buf_t b = BUF_INIT;

    netstring_encode(&b, "hello world!", 12);
    netstring_encode(&b, "", 0);
    netstring_encode(&b, "a\0b", 3);
    assert_int_equal(b.len, 16 + 3 + 6);
    assert_memory_equal(b.data, "12:hello world!,0:,3:a\0b,", b.len);
    buf_free(&b);
}

/* test_netstring_decode_round_trips_with_nul_and_trailing_bytes */
static void test_netstring_decode_round_trips_with_nul_and_trailing_bytes(void **state)
{
    buf_t b = BUF_INIT;
    struct netstring ns;
    const char *reason = NULL;

    netstring_encode(&b, "x\0,y:", 5);
    buf_puts(&b, "7:garbage");
    assert_int_equal(netstring_decode(b.data, b.len, 100, &ns, &reason), NETSTRING_DONE);
    assert_int_equal(ns.len, 5);
    assert_memory_equal(ns.payload, "x\0,y:", 5);
    assert_int_equal(ns.used, 8);
    assert_int_equal(netstring_decode(b.data + ns.used, b.len - ns.used, 100, &ns, &reason),
                     NETSTRING_MORE);
    assert_int_equal(decode("0:,", 0, &ns, &reason), NETSTRING_DONE);
    assert_int_equal(ns.len, 0);
    assert_int_equal(ns.used, 3);
    buf_free(&b);
}

/* test_netstring_every_prefix_needs_more */
static void test_netstring_every_prefix_needs_more(void **state)
{
    const char *whole = "10:0123456789,";
    struct netstring ns;
    const char *reason = NULL;
    size_t i;

    for (i = 0; i < strlen(whole); i++)
        assert_int_equal(netstring_decode(whole, i, 10, &ns, &reason), NETSTRING_MORE);
    assert_int_equal(netstring_decode(whole, strlen(whole), 10, &ns, &reason), NETSTRING_DONE);
    assert_memory_equal(ns.payload, "0123456789", 10);
}

/* test_netstring_malformed_refused_with_reason */
static void test_netstring_malformed_refused_with_reason(void **state)
{
    static const char *const bad[] = {":,", "a:,", "-1:x,", " 1:x,", "1:xy", "3:abc;", "1 :x,"};
    struct netstring ns;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *reason = NULL;

        assert_int_equal(decode(bad[i], 100, &ns, &reason), NETSTRING_ERROR);
        assert_non_null(reason);
    }
}

/* test_netstring_length_over_max_refused_before_payload */
static void test_netstring_length_over_max_refused_before_payload(void **state)
{
    struct netstring ns;
    const char *reason = NULL;

    assert_int_equal(decode("11", 10, &ns, &reason), NETSTRING_ERROR);
    assert_string_equal(reason, "netstring longer than the limit");
    assert_int_equal(decode("99999999999999999999999999", SIZE_MAX, &ns, &reason), NETSTRING_ERROR);
    assert_int_equal(decode("1:x,", 0, &ns, &reason), NETSTRING_ERROR);
    assert_int_equal(decode("10:", 10, &ns, &reason), NETSTRING_MORE);
    assert_int_equal(decode("007:abcdefg,", 10, &ns, &reason), NETSTRING_DONE);
    assert_int_equal(ns.len, 7);
}

/* test_socketmap_request_is_one_netstring */
static void test_socketmap_request_is_one_netstring(void **state)
{
    buf_t b = BUF_INIT;

    assert_int_equal(socketmap_proto_request(&b, "virtuser", "a b@example.com"), 0);
    assert_string_equal(buf_cstr(&b), "24:virtuser a b@example.com,");
    assert_int_equal(socketmap_proto_request(&b, "", "k"), -1);
    assert_int_equal(socketmap_proto_request(&b, "a b", "k"), -1);
    assert_int_equal(socketmap_proto_request(&b, "a\n", "k"), -1);
    assert_int_equal(socketmap_proto_request(&b, "m", ""), -1);
    assert_string_equal(buf_cstr(&b), "24:virtuser a b@example.com,");
    buf_free(&b);
}

/* reply - parse the payload s wrapped in a netstring */
static enum socketmap_status reply(const char *s, size_t len, struct socketmap_reply *r, buf_t *b)
{
    buf_reset(b);
    netstring_encode(b, s, len);
    return socketmap_proto_reply_parse(b->data, b->len, r);
}

#define REPLY(s, r, b) reply(s, sizeof(s) - 1, r, b)

/* test_socketmap_reply_forms */
static void test_socketmap_reply_forms(void **state)
{
    buf_t b = BUF_INIT;
    struct socketmap_reply r;

    assert_int_equal(REPLY("OK user@example.net, other", &r, &b), SOCKETMAP_OK);
    assert_int_equal(r.len, 23);
    assert_memory_equal(r.text, "user@example.net, other", 23);
    assert_int_equal(r.used, b.len);
    assert_int_equal(REPLY("NOTFOUND ", &r, &b), SOCKETMAP_NOTFOUND);
    assert_int_equal(r.len, 0);
    assert_int_equal(REPLY("NOTFOUND", &r, &b), SOCKETMAP_NOTFOUND);
    assert_int_equal(REPLY("TEMP database down", &r, &b), SOCKETMAP_TEMP);
    assert_memory_equal(r.text, "database down", r.len);
    assert_int_equal(REPLY("TIMEOUT", &r, &b), SOCKETMAP_TIMEOUT);
    assert_int_equal(REPLY("PERM no such map\tx", &r, &b), SOCKETMAP_PERM);
    assert_int_equal(r.len, 13);
    assert_string_equal(socketmap_proto_status_name(SOCKETMAP_TIMEOUT), "TIMEOUT");
    assert_string_equal(socketmap_proto_status_name(SOCKETMAP_PROTOCOL), "PROTOCOL");
    buf_free(&b);
}

/* test_socketmap_anything_else_is_protocol_error */
static void test_socketmap_anything_else_is_protocol_error(void **state)
{
    static const char *const bad[] = {"",          "OK",        "OK ",          "ok value",
                                      "OKvalue",   "NOTFOUNDx", "NOTFOUND key", "TEMPORARY x",
                                      "PERM a\rb", "OK a\nb",   "FOUND x",      " OK x"};
    buf_t b = BUF_INIT;
    struct socketmap_reply r;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(reply(bad[i], strlen(bad[i]), &r, &b), SOCKETMAP_PROTOCOL);
        assert_non_null(r.why);
    }
    assert_int_equal(REPLY("OK a\0b", &r, &b), SOCKETMAP_PROTOCOL);
    buf_free(&b);
}

/* test_socketmap_partial_and_broken_netstrings */
static void test_socketmap_partial_and_broken_netstrings(void **state)
{
    struct socketmap_reply r;
    char big[32];

    assert_int_equal(socketmap_proto_reply_parse("8:OK value", 10, &r), SOCKETMAP_MORE);
    assert_int_equal(socketmap_proto_reply_parse("8:OK value,", 11, &r), SOCKETMAP_OK);
    assert_int_equal(socketmap_proto_reply_parse("8:OK valueX", 11, &r), SOCKETMAP_PROTOCOL);
    assert_non_null(r.why);
    assert_int_equal(snprintf(big, sizeof big, "%d:", SOCKETMAP_PROTO_MAX_REPLY + 1), 7);
    assert_int_equal(socketmap_proto_reply_parse(big, strlen(big), &r), SOCKETMAP_PROTOCOL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_netstring_encode_examples),
        cmocka_unit_test(test_netstring_decode_round_trips_with_nul_and_trailing_bytes),
        cmocka_unit_test(test_netstring_every_prefix_needs_more),
        cmocka_unit_test(test_netstring_malformed_refused_with_reason),
        cmocka_unit_test(test_netstring_length_over_max_refused_before_payload),
        cmocka_unit_test(test_socketmap_request_is_one_netstring),
        cmocka_unit_test(test_socketmap_reply_forms),
        cmocka_unit_test(test_socketmap_anything_else_is_protocol_error),
        cmocka_unit_test(test_socketmap_partial_and_broken_netstrings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
