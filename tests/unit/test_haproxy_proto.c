/*
 * test_haproxy_proto - unit tests for lib/haproxy_proto: PROXY protocol v1
 * lines and v2 headers (IPv4, IPv6, LOCAL, UNKNOWN/UNSPEC/UNIX) parsed
 * into addresses, every partial input asking for more byte by byte, and
 * malformed headers refused with a reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "haproxy_proto.h"

static const unsigned char v2_signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                               0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* parse_text - haproxy_proto_parse on a C string */
static enum haproxy_proto_status parse_text(const char *s, struct haproxy_proto_header *h)
{
    return haproxy_proto_parse(s, strlen(s), h);
}

/* v2_header - a v2 header with ver_cmd, fam and a block of block_len bytes
 * (copied from block) into out; returns its length */
static size_t v2_header(unsigned char *out, unsigned char ver_cmd, unsigned char fam,
                        const unsigned char *block, size_t block_len)
{
    memcpy(out, v2_signature, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (unsigned char)(block_len >> 8);
    out[15] = (unsigned char)block_len;
    if (block_len > 0)
        memcpy(out + 16, block, block_len);
    return 16 + block_len;
}

/* assert_address - ss is family's text:port */
static void assert_address(const struct sockaddr_storage *ss, int family, const char *text,
                           int port)
{
    const void *addr = &((const struct sockaddr_in *)ss)->sin_addr;
    in_port_t port_net = ((const struct sockaddr_in *)ss)->sin_port;
    char got[INET6_ADDRSTRLEN];

    if (family == AF_INET6) {
        addr = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        port_net = ((const struct sockaddr_in6 *)ss)->sin6_port;
    }
    assert_int_equal(ss->ss_family, family);
    assert_non_null(inet_ntop(family, addr, got, sizeof got));
    assert_string_equal(got, text);
    assert_int_equal(ntohs(port_net), port);
}

/* assert_needs_more_until_whole - every strict prefix of data needs more,
 * the whole is done */
static void assert_needs_more_until_whole(const void *data, size_t len)
{
    struct haproxy_proto_header h;
    size_t i;

    for (i = 0; i < len; i++)
        assert_int_equal(haproxy_proto_parse(data, i, &h), HAPROXY_PROTO_NEED_MORE);
    assert_int_equal(haproxy_proto_parse(data, len, &h), HAPROXY_PROTO_DONE);
    assert_int_equal(h.used, len);
}

/* assert_v2_kind - a v2 header of ver_cmd, fam and block[0..block_len)
 * is DONE as kind, all of it used */
static void assert_v2_kind(unsigned char ver_cmd, unsigned char fam, const unsigned char *block,
                           size_t block_len, enum haproxy_proto_kind kind)
{
    unsigned char input[HAPROXY_PROTO_MAX_HEADER];
    size_t len = v2_header(input, ver_cmd, fam, block, block_len);
    struct haproxy_proto_header h;

    assert_int_equal(haproxy_proto_parse(input, len, &h), HAPROXY_PROTO_DONE);
    assert_int_equal(h.kind, kind);
    assert_int_equal(h.used, 16 + block_len);
}

/* assert_refused - data is an error with a reason */
static void assert_refused(const void *data, size_t len)
{
    struct haproxy_proto_header h;

    assert_int_equal(haproxy_proto_parse(data, len, &h), HAPROXY_PROTO_ERROR);
    assert_non_null(h.why);
}

/* test_v1_tcp4_gives_addresses_and_leaves_smtp_bytes */
static void test_v1_tcp4_gives_addresses_and_leaves_smtp_bytes(void **state)
{
    const char *line = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\n";
    char input[128];
    struct haproxy_proto_header h;

    (void)state;
    assert_int_equal(snprintf(input, sizeof input, "%sEHLO x\r\n", line), (int)strlen(line) + 8);
    assert_int_equal(parse_text(input, &h), HAPROXY_PROTO_DONE);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.kind, HAPROXY_PROTO_PROXIED);
    assert_int_equal(h.used, strlen(line));
    assert_address(&h.source, AF_INET, "192.0.2.1", 56324);
    assert_address(&h.destination, AF_INET, "198.51.100.2", 25);
}

/* test_v1_tcp6_gives_addresses */
static void test_v1_tcp6_gives_addresses(void **state)
{
    struct haproxy_proto_header h;

    (void)state;
    assert_int_equal(parse_text("PROXY TCP6 2001:db8::1 2001:db8::2 0 65535\r\n", &h),
                     HAPROXY_PROTO_DONE);
    assert_int_equal(h.kind, HAPROXY_PROTO_PROXIED);
    assert_address(&h.source, AF_INET6, "2001:db8::1", 0);
    assert_address(&h.destination, AF_INET6, "2001:db8::2", 65535);
    assert_int_equal(parse_text("PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n", &h), HAPROXY_PROTO_DONE);
    assert_address(&h.source, AF_INET6, "::ffff:192.0.2.1", 1);
}

/* test_v1_unknown_keeps_real_peer_and_ignores_the_rest */
static void test_v1_unknown_keeps_real_peer_and_ignores_the_rest(void **state)
{
    struct haproxy_proto_header h;

    (void)state;
    assert_int_equal(parse_text("PROXY UNKNOWN\r\n", &h), HAPROXY_PROTO_DONE);
    assert_int_equal(h.kind, HAPROXY_PROTO_UNKNOWN);
    assert_int_equal(h.used, 15);
    assert_int_equal(parse_text("PROXY UNKNOWN ffff:f...f:ffff 1.2.3.4 x y\r\nQUIT", &h),
                     HAPROXY_PROTO_DONE);
    assert_int_equal(h.kind, HAPROXY_PROTO_UNKNOWN);
    assert_int_equal(h.used, strlen("PROXY UNKNOWN ffff:f...f:ffff 1.2.3.4 x y\r\n"));
    assert_int_equal(parse_text("PROXY UNKNOWNX\r\n", &h), HAPROXY_PROTO_ERROR);
}

/* test_v1_byte_by_byte_needs_more */
static void test_v1_byte_by_byte_needs_more(void **state)
{
    const char *lines[] = {
        "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
        "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ::1 65535 25\r\n",
        "PROXY UNKNOWN\r\n",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof lines / sizeof lines[0]; i++)
        assert_needs_more_until_whole(lines[i], strlen(lines[i]));
}

/* test_v1_line_of_107_bytes_accepted_108_refused */
static void test_v1_line_of_107_bytes_accepted_108_refused(void **state)
{
    char line[200];
    struct haproxy_proto_header h;

    (void)state;
    memset(line, 'x', sizeof line);
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + 105, "\r\n", 2);
    assert_int_equal(haproxy_proto_parse(line, 107, &h), HAPROXY_PROTO_DONE);
    assert_int_equal(h.used, 107);
    memset(line + 105, 'x', 2);
    memcpy(line + 106, "\r\n", 2);
    assert_int_equal(haproxy_proto_parse(line, 106, &h), HAPROXY_PROTO_NEED_MORE);
    assert_refused(line, 107);
    assert_refused(line, 108);
    memset(line + 106, 'x', 2);
    assert_refused(line, 107);
    assert_refused(line, sizeof line);
}

/* test_v1_malformed_refused_with_reason */
static void test_v1_malformed_refused_with_reason(void **state)
{
    const char *bad[] = {
        "PROXY TCP4 192.0.2.1 198.51.100.2 56324 65536\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 99999 25\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 025 25\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 -1 25\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 +25 25\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 2a 25\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 1 \r\n",
        "PROXY TCP4 192.0.2.256 198.51.100.2 1 25\r\n",
        "PROXY TCP4 192.0.2 198.51.100.2 1 25\r\n",
        "PROXY TCP4 2001:db8::1 198.51.100.2 1 25\r\n",
        "PROXY TCP6 192.0.2.1 2001:db8::2 1 25\r\n",
        "PROXY TCP6 2001:db8::1 2001:db8::g 1 25\r\n",
        "PROXY TCP4  192.0.2.1 198.51.100.2 1 25\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 1 25 \r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 1 25 6\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n",
        "PROXY TCP5 192.0.2.1 198.51.100.2 1 25\r\n",
        "PROXY tcp4 192.0.2.1 198.51.100.2 1 25\r\n",
        "PROXY \r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 1 25\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 1 25\rx",
        "PROXY UNKNOWN\n",
        "PROXY\r\n",
        "proxy UNKNOWN\r\n",
        "EHLO client.example\r\n",
        "GET / HTTP/1.0\r\n",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_refused(bad[i], strlen(bad[i]));
    assert_refused("PROXY TCP4 192.0.2.1\0 198.51.100.2 1 25\r\n", 41);
}

/* test_wrong_first_byte_refused_at_once */
static void test_wrong_first_byte_refused_at_once(void **state)
{
    (void)state;
    assert_refused("E", 1);
    assert_refused("PROXX", 5);
    assert_refused("\r\n\r\n\0\r\nQUIX", 12);
    assert_refused("\r\n\r\r", 4);
}

/* test_v2_tcp4_with_tlvs_gives_addresses */
static void test_v2_tcp4_with_tlvs_gives_addresses(void **state)
{
    unsigned char block[] = {192,  0,    2,    1, 198, 51,  100, 2,   0xdc, 0x04, 0x00,
                             0x19, 0x02, 0x00, 4, 'm', 'x', '.', 'x', 0x04, 0x00, 0x00};
    unsigned char input[64];
    size_t len = v2_header(input, 0x21, 0x11, block, sizeof block);
    struct haproxy_proto_header h;

    (void)state;
    memcpy(input + len, "EHLO", 4);
    assert_int_equal(haproxy_proto_parse(input, len + 4, &h), HAPROXY_PROTO_DONE);
    assert_int_equal(h.version, 2);
    assert_int_equal(h.kind, HAPROXY_PROTO_PROXIED);
    assert_int_equal(h.used, len);
    assert_address(&h.source, AF_INET, "192.0.2.1", 56324);
    assert_address(&h.destination, AF_INET, "198.51.100.2", 25);
}

/* test_v2_tcp6_gives_addresses */
static void test_v2_tcp6_gives_addresses(void **state)
{
    unsigned char block[36] = {0};
    unsigned char input[64];
    size_t len;
    struct haproxy_proto_header h;

    (void)state;
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", block), 1);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::2", block + 16), 1);
    block[32] = 0xff;
    block[33] = 0xff;
    block[35] = 25;
    len = v2_header(input, 0x21, 0x21, block, sizeof block);
    assert_int_equal(haproxy_proto_parse(input, len, &h), HAPROXY_PROTO_DONE);
    assert_int_equal(h.kind, HAPROXY_PROTO_PROXIED);
    assert_int_equal(h.used, 52);
    assert_address(&h.source, AF_INET6, "2001:db8::1", 65535);
    assert_address(&h.destination, AF_INET6, "2001:db8::2", 25);
}

/* test_v2_local_keeps_real_peer_and_skips_its_block */
static void test_v2_local_keeps_real_peer_and_skips_its_block(void **state)
{
    unsigned char junk[40];

    (void)state;
    assert_v2_kind(0x20, 0x00, NULL, 0, HAPROXY_PROTO_LOCAL);
    memset(junk, 0xff, sizeof junk); /* not TLVs, an unknown family: unread */
    assert_v2_kind(0x20, 0x77, junk, sizeof junk, HAPROXY_PROTO_LOCAL);
    assert_string_equal(haproxy_proto_kind_name(HAPROXY_PROTO_LOCAL), "LOCAL");
}

/* test_v2_unspec_and_unix_are_unknown */
static void test_v2_unspec_and_unix_are_unknown(void **state)
{
    unsigned char block[216 + 4] = {0};

    (void)state;
    assert_v2_kind(0x21, 0x00, block, 7, HAPROXY_PROTO_UNKNOWN);
    memcpy(block, "/run/haproxy.sock", 17);
    assert_v2_kind(0x21, 0x31, block, 216 + 3, HAPROXY_PROTO_UNKNOWN); /* an empty TLV type 0 */
    assert_string_equal(haproxy_proto_kind_name(HAPROXY_PROTO_UNKNOWN), "UNKNOWN");
    assert_string_equal(haproxy_proto_kind_name(HAPROXY_PROTO_PROXIED), "PROXIED");
}

/* test_v2_byte_by_byte_needs_more */
static void test_v2_byte_by_byte_needs_more(void **state)
{
    unsigned char block[12 + 3 + 10] = {10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 25, 0xe0, 0, 10};
    unsigned char input[64];
    size_t len;

    (void)state;
    len = v2_header(input, 0x21, 0x11, block, sizeof block);
    assert_needs_more_until_whole(input, len);
    len = v2_header(input, 0x20, 0x00, NULL, 0);
    assert_needs_more_until_whole(input, len);
}

/* test_v2_block_of_536_accepted_537_refused */
static void test_v2_block_of_536_accepted_537_refused(void **state)
{
    unsigned char block[537] = {192, 0, 2, 1, 198, 51, 100, 2, 0, 1, 0, 25};
    unsigned char input[16 + 537];
    size_t len;
    struct haproxy_proto_header h;

    (void)state;
    block[12] = 0xea; /* one TLV filling the rest: 536 - 12 - 3 bytes */
    block[13] = (536 - 15) >> 8;
    block[14] = (536 - 15) & 0xff;
    len = v2_header(input, 0x21, 0x11, block, 536);
    assert_int_equal(len, HAPROXY_PROTO_MAX_HEADER);
    assert_int_equal(haproxy_proto_parse(input, len, &h), HAPROXY_PROTO_DONE);
    assert_int_equal(h.used, HAPROXY_PROTO_MAX_HEADER);
    len = v2_header(input, 0x21, 0x11, block, 537);
    assert_refused(input, 16); /* refused on the length alone */
    assert_refused(input, len);
}

/* test_v2_malformed_refused_with_reason */
static void test_v2_malformed_refused_with_reason(void **state)
{
    unsigned char block[40] = {192, 0, 2, 1, 198, 51, 100, 2, 0, 1, 0, 25};
    unsigned char input[64];
    size_t len;
    unsigned char fam;

    (void)state;
    len = v2_header(input, 0x11, 0x11, block, 12);
    assert_refused(input, 13); /* version 1 in binary, seen at byte 13 */
    len = v2_header(input, 0x31, 0x11, block, 12);
    assert_refused(input, len);
    len = v2_header(input, 0x22, 0x11, block, 12);
    assert_refused(input, 13);                 /* command 2 */
    for (fam = 0x12; fam <= 0x32; fam += 0x10) /* UDP4, UDP6, UNIX datagram */
        assert_refused(input, v2_header(input, 0x21, fam, block, 40));
    assert_refused(input, v2_header(input, 0x21, 0x13, block, 40));
    assert_refused(input, v2_header(input, 0x21, 0x10, block, 40));
    assert_refused(input, v2_header(input, 0x21, 0x41, block, 40));
    assert_refused(input, v2_header(input, 0x21, 0x11, block, 11));
    assert_refused(input, v2_header(input, 0x21, 0x21, block, 35));
    assert_refused(input, v2_header(input, 0x21, 0x31, block, 40));
    block[12] = 1; /* a TLV header cut short, then a value too long */
    assert_refused(input, v2_header(input, 0x21, 0x11, block, 14));
    block[13] = 0;
    block[14] = 2;
    assert_refused(input, v2_header(input, 0x21, 0x11, block, 16));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4_gives_addresses_and_leaves_smtp_bytes),
        cmocka_unit_test(test_v1_tcp6_gives_addresses),
        cmocka_unit_test(test_v1_unknown_keeps_real_peer_and_ignores_the_rest),
        cmocka_unit_test(test_v1_byte_by_byte_needs_more),
        cmocka_unit_test(test_v1_line_of_107_bytes_accepted_108_refused),
        cmocka_unit_test(test_v1_malformed_refused_with_reason),
        cmocka_unit_test(test_wrong_first_byte_refused_at_once),
        cmocka_unit_test(test_v2_tcp4_with_tlvs_gives_addresses),
        cmocka_unit_test(test_v2_tcp6_gives_addresses),
        cmocka_unit_test(test_v2_local_keeps_real_peer_and_skips_its_block),
        cmocka_unit_test(test_v2_unspec_and_unix_are_unknown),
        cmocka_unit_test(test_v2_byte_by_byte_needs_more),
        cmocka_unit_test(test_v2_block_of_536_accepted_537_refused),
        cmocka_unit_test(test_v2_malformed_refused_with_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
