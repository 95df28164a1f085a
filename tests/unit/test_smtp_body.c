/*
 * test_smtp_body - unit tests for smtp/smtp_body.c: which way a message's
 * content goes (as it is, a 7-bit copy, BDAT, a bounce) for each body type
 * and EHLO answer and setting; the BODY= and SIZE= parameters of MAIL; the
 * BDAT commands that frame the chunks; the 7-bit copy read from a queue
 * file (generic headers in front, 8-bit converted, 5.6.3 when it cannot be,
 * 4.3.0 when the file is short).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "smtp_body.h"

static const struct smtp_body_policy convert = {0, 0, 0};
static const struct smtp_body_policy bounce = {0, 1, 0};
static const struct smtp_body_policy as_is = {1, 0, 0};

/* request - a request for the body type: "", "8BITMIME" or "BINARYMIME" */
static struct delivery_request request(const char *body)
{
    struct delivery_request req;

    memset(&req, 0, sizeof(req));
    req.body_binary = strcmp(body, "BINARYMIME") == 0;
    req.body_8bit = req.body_binary || strcmp(body, "8BITMIME") == 0;
    req.size = 1000;
    req.path = "test-queue-file";
    return req;
}

/* ehlo - a server that offered 8BITMIME, CHUNKING, BINARYMIME as told */
static struct smtp_ehlo ehlo(int eightbitmime, int chunking, int binarymime)
{
    return (struct smtp_ehlo){
        .eightbitmime = eightbitmime, .chunking = chunking, .binarymime = binarymime};
}

static void test_smtp_body_8bit_goes_as_it_is_to_an_8bitmime_peer(void **state)
{
    struct delivery_request r8 = request("8BITMIME"), r7 = request("");
    struct smtp_ehlo e = ehlo(1, 1, 1);

    (void)state;
    assert_int_equal(smtp_body_choose(&convert, &r8, &e), SMTP_BODY_STREAM);
    assert_int_equal(smtp_body_choose(&bounce, &r8, &e), SMTP_BODY_STREAM);
    assert_int_equal(smtp_body_choose(&convert, &r7, &e), SMTP_BODY_STREAM);
}

static void test_smtp_body_7bit_peer_means_convert_or_bounce_or_as_it_is(void **state)
{
    struct delivery_request r8 = request("8BITMIME"), r7 = request("");
    struct smtp_ehlo e = ehlo(0, 1, 1);

    (void)state;
    assert_int_equal(smtp_body_choose(&convert, &r8, &e), SMTP_BODY_CONVERT);
    assert_int_equal(smtp_body_choose(&bounce, &r8, &e), SMTP_BODY_BOUNCE);
    assert_int_equal(smtp_body_choose(&as_is, &r8, &e), SMTP_BODY_STREAM);
    /* undeclared content is looked at: converted if 8-bit bytes show up */
    assert_int_equal(smtp_body_choose(&convert, &r7, &e), SMTP_BODY_CONVERT);
    assert_int_equal(smtp_body_choose(&bounce, &r7, &e), SMTP_BODY_CONVERT);
}

static void test_smtp_body_binary_needs_chunking_and_binarymime_for_bdat(void **state)
{
    struct delivery_request rb = request("BINARYMIME");
    struct smtp_ehlo all = ehlo(1, 1, 1), no_binary = ehlo(1, 1, 0), no_chunking = ehlo(1, 0, 1);

    (void)state;
    assert_int_equal(smtp_body_choose(&convert, &rb, &all), SMTP_BODY_BDAT);
    assert_int_equal(smtp_body_choose(&bounce, &rb, &all), SMTP_BODY_BDAT);
    assert_int_equal(smtp_body_choose(&convert, &rb, &no_binary), SMTP_BODY_CONVERT);
    assert_int_equal(smtp_body_choose(&convert, &rb, &no_chunking), SMTP_BODY_CONVERT);
    assert_int_equal(smtp_body_choose(&bounce, &rb, &no_chunking), SMTP_BODY_BOUNCE);
}

/* mail_param - what smtp_body_mail_param appends */
static void assert_mail_param(const struct smtp_body *b, const char *body,
                              const struct smtp_ehlo *e, const char *want)
{
    struct delivery_request req = request(body);
    buf_t out = BUF_INIT;

    smtp_body_mail_param(b, &req, e, &out);
    assert_string_equal(buf_cstr(&out), want);
    buf_free(&out);
}

static void test_smtp_body_mail_param_says_what_goes(void **state)
{
    struct smtp_body b;
    struct smtp_ehlo e8 = ehlo(1, 1, 1), e7 = ehlo(0, 0, 0);

    (void)state;
    smtp_body_init(&b);
    assert_mail_param(&b, "8BITMIME", &e8, " BODY=8BITMIME");
    assert_mail_param(&b, "8BITMIME", &e7, ""); /* sent as it is: never claimed */
    assert_mail_param(&b, "", &e8, "");
    b.mode = SMTP_BODY_BDAT;
    assert_mail_param(&b, "BINARYMIME", &e8, " BODY=BINARYMIME");
    b.mode = SMTP_BODY_CONVERT;
    b.converted = 1;
    assert_mail_param(&b, "BINARYMIME", &e8, ""); /* the copy is 7-bit */
    smtp_body_free(&b);
}

/* bdat - the command for the chunk at pos and its size */
static void assert_bdat(long long pos, long long total, long long chunk, const char *want,
                        long long want_n)
{
    buf_t out = BUF_INIT;

    assert_int_equal(smtp_body_bdat_command(pos, total, chunk, &out), want_n);
    assert_string_equal(buf_cstr(&out), want);
    buf_free(&out);
}

static void test_smtp_body_bdat_commands_frame_the_chunks(void **state)
{
    (void)state;
    assert_bdat(0, 0, 100, "BDAT 0 LAST\r\n", 0);
    assert_bdat(0, 99, 100, "BDAT 99 LAST\r\n", 99);
    assert_bdat(0, 100, 100, "BDAT 100 LAST\r\n", 100);
    assert_bdat(0, 250, 100, "BDAT 100\r\n", 100);
    assert_bdat(100, 250, 100, "BDAT 100\r\n", 100);
    assert_bdat(200, 250, 100, "BDAT 50 LAST\r\n", 50);
}

/* queue_file - a file holding "junk" then content; the request points at content */
static int queue_file(struct delivery_request *req, const char *content, size_t len)
{
    char path[] = "/tmp/test_smtp_body.XXXXXX";
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, "junk", 4), 4);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    req->content_offset = 4;
    req->content_length = (long long)len;
    return fd;
}

static const char msg_8bit[] = "Subject: s\r\nContent-Type: text/plain\r\n\r\ncaf\xe9\r\n";

static void test_smtp_body_convert_makes_a_7bit_copy_with_the_new_headers(void **state)
{
    struct delivery_request req = request("8BITMIME");
    struct smtp_body b;
    struct smtp_body_error err;
    buf_t hdrs = BUF_INIT;
    int fd = queue_file(&req, msg_8bit, sizeof(msg_8bit) - 1);

    (void)state;
    smtp_body_init(&b);
    buf_puts(&hdrs, "Subject: rewritten\r\n");
    assert_int_equal(smtp_body_convert(&b, &convert, &req, fd, &hdrs, 12, &err), 0);
    assert_int_equal(b.mode, SMTP_BODY_CONVERT);
    assert_int_equal(b.converted, 1);
    assert_non_null(strstr(buf_cstr(&b.copy), "Subject: rewritten\r\n"));
    assert_non_null(strstr(buf_cstr(&b.copy), "Content-Transfer-Encoding: quoted-printable"));
    assert_non_null(strstr(buf_cstr(&b.copy), "caf=E9\r\n"));
    assert_null(strstr(buf_cstr(&b.copy), "Subject: s\r\n"));
    assert_int_equal(smtp_body_size(&b, &req), (long long)b.copy.len);
    smtp_body_free(&b);
    buf_free(&hdrs);
    close(fd);
}

static void test_smtp_body_7bit_content_is_copied_unchanged(void **state)
{
    static const char msg[] = "Subject: s\r\n\r\nplain\r\n";
    struct delivery_request req = request("8BITMIME");
    struct smtp_body b;
    struct smtp_body_error err;
    int fd = queue_file(&req, msg, sizeof(msg) - 1);

    (void)state;
    smtp_body_init(&b);
    assert_int_equal(smtp_body_convert(&b, &bounce, &req, fd, NULL, 0, &err), 0);
    assert_int_equal(b.converted, 0);
    assert_string_equal(buf_cstr(&b.copy), msg);
    assert_int_equal(smtp_body_size(&b, &req), 1000);
    smtp_body_free(&b);
    close(fd);
}

/* assert_refused - smtp_body_convert fails with status and dsn */
static void assert_refused(const struct smtp_body_policy *p, const char *msg, long long len,
                           enum delivery_status status, const char *dsn)
{
    struct delivery_request req = request("");
    struct smtp_body b;
    struct smtp_body_error err;
    int fd = queue_file(&req, msg, strlen(msg));

    req.content_length = len;
    smtp_body_init(&b);
    memset(&err, 0, sizeof(err));
    assert_int_equal(smtp_body_convert(&b, p, &req, fd, NULL, 0, &err), -1);
    assert_int_equal(err.status, status);
    assert_string_equal(err.dsn, dsn);
    assert_non_null(err.reason);
    smtp_body_free(&b);
    close(fd);
}

static void test_smtp_body_refusals_carry_their_status(void **state)
{
    (void)state;
    /* an 8-bit header cannot be made 7-bit */
    assert_refused(&convert, "Subject: caf\xe9\r\n\r\nx\r\n", 17, DELIVERY_BOUNCE, "5.6.3");
    /* undeclared 8-bit content with smtp_8bit_downgrade = bounce */
    assert_refused(&bounce, msg_8bit, (long long)strlen(msg_8bit), DELIVERY_BOUNCE, "5.6.3");
    /* the queue file is shorter than the request says */
    assert_refused(&convert, msg_8bit, 4096, DELIVERY_DEFER, "4.3.0");
}

static void test_smtp_body_over_the_load_limit(void **state)
{
    struct smtp_body_policy small = {0, 0, 10};
    struct delivery_request r7 = request(""), r8 = request("8BITMIME");
    struct smtp_body b;
    struct smtp_body_error err;
    int fd = queue_file(&r7, msg_8bit, sizeof(msg_8bit) - 1);

    (void)state;
    smtp_body_init(&b);
    /* undeclared: too big to look at, goes as before */
    assert_int_equal(smtp_body_convert(&b, &small, &r7, fd, NULL, 0, &err), 0);
    assert_int_equal(b.mode, SMTP_BODY_STREAM);
    /* declared 8-bit: never sent 8-bit to a 7-bit peer */
    r8.content_offset = r7.content_offset;
    r8.content_length = r7.content_length;
    assert_int_equal(smtp_body_convert(&b, &small, &r8, fd, NULL, 0, &err), -1);
    assert_string_equal(err.dsn, "5.6.3");
    smtp_body_free(&b);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smtp_body_8bit_goes_as_it_is_to_an_8bitmime_peer),
        cmocka_unit_test(test_smtp_body_7bit_peer_means_convert_or_bounce_or_as_it_is),
        cmocka_unit_test(test_smtp_body_binary_needs_chunking_and_binarymime_for_bdat),
        cmocka_unit_test(test_smtp_body_mail_param_says_what_goes),
        cmocka_unit_test(test_smtp_body_bdat_commands_frame_the_chunks),
        cmocka_unit_test(test_smtp_body_convert_makes_a_7bit_copy_with_the_new_headers),
        cmocka_unit_test(test_smtp_body_7bit_content_is_copied_unchanged),
        cmocka_unit_test(test_smtp_body_refusals_carry_their_status),
        cmocka_unit_test(test_smtp_body_over_the_load_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
