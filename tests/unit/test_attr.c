/*
 * test_attr - unit tests for lib/attr: the IPC message format round-trips,
 * partial input asks for more bytes, and every kind of malformed message is
 * rejected (attr_decode returns -1) instead of being half-trusted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "attr.h"
#include "buf.h"

/* raw_u32 - append a 4-byte big-endian number */
static void raw_u32(buf_t *b, uint32_t v)
{
    unsigned char p[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    buf_append(b, p, 4);
}

/* raw_attr - append one attribute by hand, with any (even wrong) lengths */
static void raw_attr(buf_t *b, size_t nlen, const char *name, uint32_t vlen, const char *value,
                     size_t value_bytes)
{
    unsigned char h[2] = {(unsigned char)(nlen >> 8), (unsigned char)nlen};
    buf_append(b, h, 2);
    buf_append(b, name, strlen(name));
    raw_u32(b, vlen);
    buf_append(b, value, value_bytes);
}

/* raw_message - wrap payload in a message with its true length */
static void raw_message(buf_t *out, const buf_t *payload)
{
    raw_u32(out, (uint32_t)payload->len);
    buf_append(out, payload->data, payload->len);
}

/* decode_all - attr_decode over the whole buffer */
static int decode_all(const buf_t *b, struct attr_msg *m, size_t *used)
{
    return attr_decode(b->data ? b->data : "", b->len, used, m);
}

/* expect_malformed - a hand-built payload is rejected */
static void expect_malformed(const buf_t *payload)
{
    buf_t msg = BUF_INIT;
    struct attr_msg m;
    size_t used = 12345;

    attr_msg_init(&m);
    raw_message(&msg, payload);
    assert_int_equal(decode_all(&msg, &m, &used), -1);
    assert_int_equal(used, 12345);
    attr_msg_free(&m);
    buf_free(&msg);
}

/* test_attr_message_round_trips_with_order_and_binary_values */
static void test_attr_message_round_trips_with_order_and_binary_values(void **state)
{
    buf_t out = BUF_INIT;
    struct attr_msg m;
    size_t used = 0, len = 0;
    static const char bin[] = {'a', 0, 'b', '\n', (char)0xff};
    long long n = 0;

    attr_msg_init(&m);
    attr_begin(&out, "cleanup.submit");
    attr_add_str(&out, "sender", "");
    attr_add_str(&out, "rcpt", "a@example.org");
    attr_add(&out, "data", bin, sizeof(bin));
    attr_add_str(&out, "rcpt", "b@example.org");
    attr_add_int(&out, "size", -1234567890123LL);
    attr_add_str(&out, "nullstr", NULL);
    attr_end(&out);

    assert_int_equal(decode_all(&out, &m, &used), 1);
    assert_int_equal(used, out.len);
    assert_string_equal(attr_proto(&m), "cleanup.submit");
    assert_int_equal(m.count, 7);
    assert_string_equal(m.v[0].name, "proto");
    assert_string_equal(m.v[2].name, "rcpt");
    assert_string_equal(m.v[2].value, "a@example.org");
    assert_string_equal(m.v[4].name, "rcpt");
    assert_string_equal(m.v[4].value, "b@example.org");
    assert_string_equal(attr_get(&m, "rcpt", NULL), "a@example.org");
    assert_string_equal(attr_get(&m, "sender", &len), "");
    assert_int_equal(len, 0);
    const char *d = attr_get(&m, "data", &len);
    assert_int_equal(len, sizeof(bin));
    assert_memory_equal(d, bin, sizeof(bin));
    assert_int_equal(d[len], 0);
    assert_int_equal(attr_get_int(&m, "size", -2000000000000LL, 0, &n), 0);
    assert_int_equal(n, -1234567890123LL);
    assert_string_equal(attr_get(&m, "nullstr", NULL), "");
    assert_null(attr_get(&m, "missing", NULL));
    attr_msg_free(&m);
    buf_free(&out);
}

/* test_attr_two_messages_in_one_buffer_decode_one_at_a_time */
static void test_attr_two_messages_in_one_buffer_decode_one_at_a_time(void **state)
{
    buf_t out = BUF_INIT;
    struct attr_msg m;
    size_t used = 0, first;

    attr_msg_init(&m);
    attr_begin(&out, "one");
    attr_add_str(&out, "k", "v1");
    attr_end(&out);
    first = out.len;
    attr_begin(&out, "two");
    attr_add_str(&out, "k", "v2");
    attr_add_str(&out, "extra", "x");
    attr_end(&out);

    assert_int_equal(decode_all(&out, &m, &used), 1);
    assert_int_equal(used, first);
    assert_string_equal(attr_proto(&m), "one");
    assert_int_equal(m.count, 2);
    assert_int_equal(attr_decode(out.data + used, out.len - used, &used, &m), 1);
    assert_int_equal(used, out.len - first);
    assert_string_equal(attr_proto(&m), "two");
    assert_int_equal(m.count, 3); /* m was reset, not appended to */
    assert_string_equal(attr_get(&m, "k", NULL), "v2");
    attr_msg_free(&m);
    buf_free(&out);
}

/* test_attr_partial_message_asks_for_more_bytes */
static void test_attr_partial_message_asks_for_more_bytes(void **state)
{
    buf_t out = BUF_INIT;
    struct attr_msg m;
    size_t used = 0;

    attr_msg_init(&m);
    attr_begin(&out, "smtp.deliver");
    attr_add_str(&out, "queue_id", "0123456789AB");
    attr_add_str(&out, "rcpt", "someone@example.org");
    attr_end(&out);
    for (size_t n = 0; n < out.len; n++)
        if (attr_decode(out.data, n, &used, &m) != 0)
            fail_msg("prefix of %zu of %zu bytes was not 'need more'", n, out.len);
    assert_int_equal(attr_decode(out.data, out.len, &used, &m), 1);
    attr_msg_free(&m);
    buf_free(&out);
}

/* test_attr_length_over_limit_is_rejected_before_the_payload_arrives */
static void test_attr_length_over_limit_is_rejected_before_the_payload_arrives(void **state)
{
    buf_t msg = BUF_INIT;
    struct attr_msg m;
    size_t used;

    attr_msg_init(&m);
    raw_u32(&msg, ATTR_MAX_MESSAGE + 1);
    assert_int_equal(decode_all(&msg, &m, &used), -1);
    buf_reset(&msg);
    raw_u32(&msg, 0xffffffffu);
    assert_int_equal(decode_all(&msg, &m, &used), -1);
    attr_msg_free(&m);
    buf_free(&msg);
}

/* test_attr_empty_message_is_rejected - no proto attribute at all */
static void test_attr_empty_message_is_rejected(void **state)
{
    buf_t p = BUF_INIT;
    expect_malformed(&p);
}

/* test_attr_first_attribute_not_proto_is_rejected */
static void test_attr_first_attribute_not_proto_is_rejected(void **state)
{
    buf_t p = BUF_INIT;

    raw_attr(&p, 4, "name", 1, "x", 1);
    raw_attr(&p, 5, "proto", 3, "abc", 3);
    expect_malformed(&p);
    buf_free(&p);
}

/* test_attr_empty_name_is_rejected */
static void test_attr_empty_name_is_rejected(void **state)
{
    buf_t p = BUF_INIT;

    raw_attr(&p, 5, "proto", 1, "x", 1);
    raw_attr(&p, 0, "", 1, "y", 1);
    expect_malformed(&p);
    buf_free(&p);
}

/* test_attr_name_over_limit_is_rejected */
static void test_attr_name_over_limit_is_rejected(void **state)
{
    buf_t p = BUF_INIT;
    char name[ATTR_MAX_NAME + 2];

    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = 0;
    raw_attr(&p, 5, "proto", 1, "x", 1);
    raw_attr(&p, ATTR_MAX_NAME + 1, name, 1, "y", 1);
    expect_malformed(&p);
    buf_free(&p);
}

/* test_attr_name_at_limit_is_accepted */
static void test_attr_name_at_limit_is_accepted(void **state)
{
    buf_t out = BUF_INIT;
    struct attr_msg m;
    size_t used;
    char name[ATTR_MAX_NAME + 1];

    memset(name, 'n', ATTR_MAX_NAME);
    name[ATTR_MAX_NAME] = 0;
    attr_msg_init(&m);
    attr_begin(&out, "p");
    attr_add_str(&out, name, "v");
    attr_end(&out);
    assert_int_equal(decode_all(&out, &m, &used), 1);
    assert_string_equal(attr_get(&m, name, NULL), "v");
    attr_msg_free(&m);
    buf_free(&out);
}

/* test_attr_name_with_nul_byte_is_rejected */
static void test_attr_name_with_nul_byte_is_rejected(void **state)
{
    buf_t p = BUF_INIT;
    unsigned char h[2] = {0, 3};

    raw_attr(&p, 5, "proto", 1, "x", 1);
    buf_append(&p, h, 2);
    buf_append(&p, "a\0b", 3);
    raw_u32(&p, 0);
    expect_malformed(&p);
    buf_free(&p);
}

/* test_attr_value_running_past_payload_is_rejected */
static void test_attr_value_running_past_payload_is_rejected(void **state)
{
    buf_t p = BUF_INIT;

    raw_attr(&p, 5, "proto", 10, "abc", 3); /* claims 10, has 3 */
    expect_malformed(&p);
    buf_reset(&p);
    raw_attr(&p, 5, "proto", 1, "x", 1);
    raw_attr(&p, 1, "v", 0xffffffffu, "abc", 3);
    expect_malformed(&p);
    buf_free(&p);
}

/* test_attr_name_running_past_payload_is_rejected */
static void test_attr_name_running_past_payload_is_rejected(void **state)
{
    buf_t p = BUF_INIT;
    unsigned char h[2] = {0, 40};

    raw_attr(&p, 5, "proto", 1, "x", 1);
    buf_append(&p, h, 2);
    buf_append(&p, "short", 5);
    expect_malformed(&p);
    buf_free(&p);
}

/* test_attr_trailing_garbage_inside_payload_is_rejected */
static void test_attr_trailing_garbage_inside_payload_is_rejected(void **state)
{
    buf_t p = BUF_INIT;

    raw_attr(&p, 5, "proto", 1, "x", 1);
    buf_putc(&p, 0); /* one byte: not even a name length */
    expect_malformed(&p);
    buf_reset(&p);
    raw_attr(&p, 5, "proto", 1, "x", 1);
    buf_append(&p, "\0\1a\0\0", 5); /* name, then a cut value length */
    expect_malformed(&p);
    buf_free(&p);
}

/* test_attr_too_many_attributes_are_rejected */
static void test_attr_too_many_attributes_are_rejected(void **state)
{
    buf_t p = BUF_INIT;

    raw_attr(&p, 5, "proto", 1, "x", 1);
    for (size_t i = 0; i < ATTR_MAX_COUNT; i++)
        raw_attr(&p, 1, "a", 0, "", 0);
    assert_true(p.len <= ATTR_MAX_MESSAGE);
    expect_malformed(&p);
    buf_free(&p);
}

/* test_attr_get_int_checks_syntax_and_range */
static void test_attr_get_int_checks_syntax_and_range(void **state)
{
    buf_t out = BUF_INIT;
    struct attr_msg m;
    size_t used;
    long long n = 0;

    attr_msg_init(&m);
    attr_begin(&out, "p");
    attr_add_str(&out, "ok", "42");
    attr_add_str(&out, "neg", "-5");
    attr_add_str(&out, "junk", "12abc");
    attr_add_str(&out, "empty", "");
    attr_add(&out, "nul",
             "7\0"
             "9",
             3);
    attr_add_str(&out, "huge", "99999999999999999999");
    attr_end(&out);
    assert_int_equal(decode_all(&out, &m, &used), 1);
    assert_int_equal(attr_get_int(&m, "ok", 0, 100, &n), 0);
    assert_int_equal(n, 42);
    assert_int_equal(attr_get_int(&m, "ok", 0, 41, &n), -1);
    assert_int_equal(attr_get_int(&m, "ok", 43, 100, &n), -1);
    assert_int_equal(attr_get_int(&m, "neg", 0, 100, &n), -1);
    assert_int_equal(attr_get_int(&m, "neg", -10, 100, &n), 0);
    assert_int_equal(n, -5);
    assert_int_equal(attr_get_int(&m, "junk", 0, 1000, &n), -1);
    assert_int_equal(attr_get_int(&m, "empty", 0, 1000, &n), -1);
    assert_int_equal(attr_get_int(&m, "nul", 0, 1000, &n), -1);
    assert_int_equal(attr_get_int(&m, "huge", 0, INT64_MAX, &n), -1);
    assert_int_equal(attr_get_int(&m, "missing", 0, 1000, &n), -1);
    attr_msg_free(&m);
    buf_free(&out);
}

/* test_attr_fd_helpers_pass_a_message_over_a_socket */
static void test_attr_fd_helpers_pass_a_message_over_a_socket(void **state)
{
    int sv[2];
    buf_t out = BUF_INIT;
    struct attr_msg m;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    attr_msg_init(&m);
    attr_begin(&out, "qmgr.flush");
    attr_add_str(&out, "who", "test");
    attr_end(&out);
    assert_int_equal(attr_write_fd(sv[0], &out), 0);
    assert_int_equal(attr_read_fd(sv[1], &m, 5), 0);
    assert_string_equal(attr_proto(&m), "qmgr.flush");
    assert_string_equal(attr_get(&m, "who", NULL), "test");
    attr_msg_free(&m);
    buf_free(&out);
    close(sv[0]);
    close(sv[1]);
}

/* test_attr_read_fd_fails_on_eof_mid_message_and_on_garbage */
static void test_attr_read_fd_fails_on_eof_mid_message_and_on_garbage(void **state)
{
    int sv[2];
    buf_t out = BUF_INIT;
    struct attr_msg m;

    attr_msg_init(&m);
    attr_begin(&out, "cut");
    attr_add_str(&out, "k", "value");
    attr_end(&out);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(write(sv[0], out.data, out.len - 2), (ssize_t)out.len - 2);
    close(sv[0]);
    assert_int_equal(attr_read_fd(sv[1], &m, 5), -1);
    close(sv[1]);

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(write(sv[0], "\0\0\0\3abc", 7), 7);
    assert_int_equal(attr_read_fd(sv[1], &m, 5), -1);
    close(sv[0]);
    close(sv[1]);
    attr_msg_free(&m);
    buf_free(&out);
}

/* test_attr_read_fd_times_out_on_a_silent_peer */
static void test_attr_read_fd_times_out_on_a_silent_peer(void **state)
{
    int sv[2];
    struct attr_msg m;

    attr_msg_init(&m);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(write(sv[0], "\0\0", 2), 2);
    assert_int_equal(attr_read_fd(sv[1], &m, 1), -1);
    close(sv[0]);
    close(sv[1]);
    attr_msg_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attr_message_round_trips_with_order_and_binary_values),
        cmocka_unit_test(test_attr_two_messages_in_one_buffer_decode_one_at_a_time),
        cmocka_unit_test(test_attr_partial_message_asks_for_more_bytes),
        cmocka_unit_test(test_attr_length_over_limit_is_rejected_before_the_payload_arrives),
        cmocka_unit_test(test_attr_empty_message_is_rejected),
        cmocka_unit_test(test_attr_first_attribute_not_proto_is_rejected),
        cmocka_unit_test(test_attr_empty_name_is_rejected),
        cmocka_unit_test(test_attr_name_over_limit_is_rejected),
        cmocka_unit_test(test_attr_name_at_limit_is_accepted),
        cmocka_unit_test(test_attr_name_with_nul_byte_is_rejected),
        cmocka_unit_test(test_attr_value_running_past_payload_is_rejected),
        cmocka_unit_test(test_attr_name_running_past_payload_is_rejected),
        cmocka_unit_test(test_attr_trailing_garbage_inside_payload_is_rejected),
        cmocka_unit_test(test_attr_too_many_attributes_are_rejected),
        cmocka_unit_test(test_attr_get_int_checks_syntax_and_range),
        cmocka_unit_test(test_attr_fd_helpers_pass_a_message_over_a_socket),
        cmocka_unit_test(test_attr_read_fd_fails_on_eof_mid_message_and_on_garbage),
        cmocka_unit_test(test_attr_read_fd_times_out_on_a_silent_peer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
