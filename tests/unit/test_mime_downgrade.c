/*
 * test_mime_downgrade - unit tests for lib/mime_downgrade: plain, multipart,
 * nested, message/rfc822 and digest messages with CRLF and LF line ends are
 * made 7-bit, and every re-encoded body, found in the output by its
 * boundary and decoded with the independent decoders of mime_decode.h, is
 * the input byte for byte; 7-bit messages pass unchanged; the messages that
 * cannot be downgraded are refused with a reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mime_decode.h"
#include "mime_downgrade.h"

/* run - mime_downgrade_run on a C string */
static enum mime_downgrade_status run(struct mime_downgrade *d, const char *msg)
{
    return mime_downgrade_run(d, msg, strlen(msg));
}

/* assert_7bit_lines - no 8-bit byte, no NUL, no line over 998 bytes */
static void assert_7bit_lines(const buf_t *out)
{
    size_t col = 0;

    for (size_t i = 0; i < out->len; i++) {
        unsigned char ch = (unsigned char)out->data[i];
        assert_true(ch > 0 && ch < 0x80);
        col = ch == '\n' ? 0 : col + 1;
        assert_true(col <= 998);
    }
}

/* body_after - the output text between marker (which ends a part's
 * header) and stop (the line end and delimiter after it), or to the end */
static const char *body_after(const buf_t *out, const char *marker, const char *stop, size_t *len)
{
    const char *start = strstr(buf_cstr(out), marker);

    assert_non_null(start);
    start += strlen(marker);
    const char *end = stop ? strstr(start, stop) : out->data + out->len;
    assert_non_null(end);
    *len = (size_t)(end - start);
    return start;
}

/* assert_qp_part - the quoted-printable body after marker decodes to want */
static void assert_qp_part(const buf_t *out, const char *marker, const char *stop, const char *eol,
                           const char *want, size_t want_len)
{
    buf_t dec = BUF_INIT;
    size_t len;
    const char *p = body_after(out, marker, stop, &len);

    assert_int_equal(mime_decode_qp(p, len, eol, &dec), 0);
    assert_int_equal(dec.len, want_len);
    assert_memory_equal(dec.data, want, want_len);
    buf_free(&dec);
}

/* assert_base64_part - the base64 body after marker decodes to want */
static void assert_base64_part(const buf_t *out, const char *marker, const char *stop,
                               const char *want, size_t want_len)
{
    buf_t dec = BUF_INIT;
    size_t len;
    const char *p = body_after(out, marker, stop, &len);

    assert_int_equal(mime_decode_base64(p, len, &dec), 0);
    assert_int_equal(dec.len, want_len);
    assert_memory_equal(dec.data, want, want_len);
    buf_free(&dec);
}

/* assert_spans_decode - every span the module reports decodes to its input */
static void assert_spans_decode(const struct mime_downgrade *d, const char *msg, const char *eol)
{
    for (size_t i = 0; i < d->span_count; i++) {
        const struct mime_downgrade_span *s = &d->spans[i];
        buf_t dec = BUF_INIT;
        const char *p = d->out.data + s->out_start;
        int ret = s->encoding == MIME_DOWNGRADE_QP
                      ? mime_decode_qp(p, s->out_end - s->out_start, eol, &dec)
                      : mime_decode_base64(p, s->out_end - s->out_start, &dec);
        assert_int_equal(ret, 0);
        assert_int_equal(dec.len, s->in_end - s->in_start);
        assert_memory_equal(dec.data, msg + s->in_start, dec.len);
        buf_free(&dec);
    }
}

/* downgrade_ok - run on msg[0..len) with line end eol: DONE, 7-bit, and
 * every reported span decodes to its input */
static void downgrade_ok(struct mime_downgrade *d, const char *msg, size_t len, const char *eol)
{
    mime_downgrade_init(d);
    assert_int_equal(mime_downgrade_run(d, msg, len), MIME_DOWNGRADE_DONE);
    assert_7bit_lines(&d->out);
    assert_spans_decode(d, msg, eol);
}

/* test_plain_text_crlf_becomes_quoted_printable */
static void test_plain_text_crlf_becomes_quoted_printable(void **state)
{
    const char *body = "Gr\xc3\xbc\xc3\x9f"
                       "e = 100%\r\nzweite Zeile \r\n";
    const char *msg = "From: a@x\r\nSubject: hi\r\n\r\n"
                      "Gr\xc3\xbc\xc3\x9f"
                      "e = 100%\r\nzweite Zeile \r\n";
    struct mime_downgrade d;

    downgrade_ok(&d, msg, strlen(msg), "\r\n");
    assert_string_equal(d.out.data, "From: a@x\r\nSubject: hi\r\n"
                                    "MIME-Version: 1.0\r\n"
                                    "Content-Type: text/plain; charset=unknown-8bit\r\n"
                                    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                                    "Gr=C3=BC=C3=9Fe =3D 100%\r\nzweite Zeile=20\r\n");
    assert_qp_part(&d.out, "quoted-printable\r\n\r\n", NULL, "\r\n", body, strlen(body));
    assert_int_equal(d.span_count, 1);
    mime_downgrade_free(&d);
}

/* test_plain_text_lf_keeps_lf_and_the_existing_content_type */
static void test_plain_text_lf_keeps_lf_and_the_existing_content_type(void **state)
{
    const char *msg = "MIME-Version: 1.0\nContent-Type: text/plain; charset=latin1\n"
                      "Content-Transfer-Encoding: 8bit\n\ncaf\xe9\r\n\n";
    struct mime_downgrade d;

    downgrade_ok(&d, msg, strlen(msg), "\n");
    /* the 8bit field is replaced, a CR inside an LF message is escaped */
    assert_string_equal(d.out.data, "MIME-Version: 1.0\nContent-Type: text/plain; charset=latin1\n"
                                    "Content-Transfer-Encoding: quoted-printable\n\n"
                                    "caf=E9=0D\n\n");
    mime_downgrade_free(&d);
}

static const char attachment[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff\xfe=--b1";

/* mixed_message - multipart/mixed: an 8-bit text and a binary attachment */
static void mixed_message(buf_t *msg)
{
    buf_puts(msg, "From: a@x\r\nMIME-Version: 1.0\r\n"
                  "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
                  "This is a MIME message.\r\n"
                  "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  "Content-Transfer-Encoding: 8bit\r\n\r\n"
                  "h\xc3\xa9llo\r\n--b1 starts like a delimiter, so it is one\r\n");
    buf_puts(msg, "--b1\r\nContent-Type: image/png\r\n\r\n");
    buf_append(msg, attachment, sizeof(attachment) - 1);
    buf_puts(msg, "\r\n--b1--\r\nepilogue\r\n");
}

/* test_multipart_mixed_text_and_attachment */
static void test_multipart_mixed_text_and_attachment(void **state)
{
    buf_t msg = BUF_INIT;
    struct mime_downgrade d;

    mixed_message(&msg);
    downgrade_ok(&d, msg.data, msg.len, "\r\n");
    /* the "--b1 starts like" line is a delimiter by prefix: the text ends there */
    assert_qp_part(&d.out, "quoted-printable\r\n\r\n", "\r\n--b1", "\r\n", "h\xc3\xa9llo", 6);
    assert_base64_part(&d.out, "image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n",
                       "\r\n--b1--", attachment, sizeof(attachment) - 1);
    assert_non_null(strstr(d.out.data, "\r\n--b1--\r\nepilogue\r\n"));
    assert_int_equal(d.span_count, 2);
    mime_downgrade_free(&d);
    buf_free(&msg);
}

/* test_nested_multipart_and_8bit_label_of_the_container */
static void test_nested_multipart_and_8bit_label_of_the_container(void **state)
{
    const char *msg =
        "Content-Type: multipart/mixed; boundary=outer\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        "--outer\r\nContent-Type: multipart/alternative;\r\n boundary=\"in ner\"\r\n\r\n"
        "--in ner\r\nContent-Type: text/plain\r\n\r\n\xe2\x82\xac 5\r\n"
        "--in ner\r\nContent-Type: text/html\r\n\r\n<p>\xe2\x82\xac</p>\r\n"
        "--in ner--\r\n"
        "--outer\r\nContent-Type: text/plain\r\n\r\nplain ascii\r\n"
        "--outer--\r\n";
    struct mime_downgrade d;

    downgrade_ok(&d, msg, strlen(msg), "\r\n");
    const char *head = "Content-Type: multipart/mixed; boundary=outer\r\n"
                       "MIME-Version: 1.0\r\nContent-Transfer-Encoding: 7bit\r\n\r\n--outer\r\n";
    assert_memory_equal(d.out.data, head, strlen(head));
    assert_qp_part(&d.out, "text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
                   "\r\n--in ner", "\r\n", "\xe2\x82\xac 5", 5);
    assert_qp_part(&d.out, "text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
                   "\r\n--in ner--", "\r\n", "<p>\xe2\x82\xac</p>", 10);
    /* the 7-bit part is not touched */
    assert_non_null(strstr(d.out.data, "--outer\r\nContent-Type: text/plain\r\n\r\nplain ascii\r\n"
                                       "--outer--\r\n"));
    assert_int_equal(d.span_count, 2);
    mime_downgrade_free(&d);
}

/* test_message_rfc822_part_is_walked_as_a_message */
static void test_message_rfc822_part_is_walked_as_a_message(void **state)
{
    const char *msg = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n"
                      "--m\r\nContent-Type: message/rfc822\r\n\r\n"
                      "From: b@y\r\nSubject: fwd\r\n\r\nna\xc3\xafve\r\n"
                      "--m--\r\n";
    struct mime_downgrade d;

    downgrade_ok(&d, msg, strlen(msg), "\r\n");
    /* the inner message gets its own MIME header */
    assert_non_null(strstr(d.out.data, "From: b@y\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n"
                                       "Content-Type: text/plain; charset=unknown-8bit\r\n"
                                       "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                                       "na=C3=AFve\r\n--m--\r\n"));
    assert_qp_part(&d.out, "quoted-printable\r\n\r\n", "\r\n--m--", "\r\n", "na\xc3\xafve", 6);
    mime_downgrade_free(&d);
}

/* test_digest_parts_default_to_message_rfc822 */
static void test_digest_parts_default_to_message_rfc822(void **state)
{
    const char *msg = "MIME-Version: 1.0\nContent-Type: multipart/digest; boundary=d\n\n"
                      "--d\n\nSubject: one\n\n\xff\n--d--\n";
    struct mime_downgrade d;

    downgrade_ok(&d, msg, strlen(msg), "\n");
    assert_non_null(strstr(d.out.data,
                           "--d\n\nSubject: one\nMIME-Version: 1.0\n"
                           "Content-Type: text/plain; charset=unknown-8bit\n"
                           "Content-Transfer-Encoding: quoted-printable\n\n=FF\n--d--\n"));
    mime_downgrade_free(&d);
}

/* test_long_lines_are_broken_and_decode_back */
static void test_long_lines_are_broken_and_decode_back(void **state)
{
    buf_t msg = BUF_INIT, body = BUF_INIT;
    struct mime_downgrade d;

    for (int i = 0; i < 3000; i++)
        buf_putc(&body, i % 7 == 0 ? '\xe9' : (i % 75 == 0 ? '-' : 'a' + i % 26));
    buf_puts(&body, " \r\n");
    for (int i = 0; i < 1200; i++)
        buf_putc(&body, i % 2 ? ' ' : '=');
    buf_printf(&msg, "Content-Type: text/plain\r\n\r\n%s", body.data);
    downgrade_ok(&d, msg.data, msg.len, "\r\n");
    /* the decoder also refuses any line over 76 characters */
    assert_qp_part(&d.out, "quoted-printable\r\n\r\n", NULL, "\r\n", body.data, body.len);
    /* a soft break never leaves a line starting like a delimiter */
    assert_null(strstr(d.out.data, "\n-"));
    mime_downgrade_free(&d);
    buf_free(&msg);
    buf_free(&body);
}

/* test_base64_of_a_top_level_attachment_ends_with_a_line_end */
static void test_base64_of_a_top_level_attachment_ends_with_a_line_end(void **state)
{
    buf_t msg = BUF_INIT, body = BUF_INIT;
    struct mime_downgrade d;

    for (int i = 0; i < 1000; i++)
        buf_putc(&body, (i * 37) & 255);
    buf_puts(&msg, "MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n\r\n");
    buf_append(&msg, body.data, body.len);
    downgrade_ok(&d, msg.data, msg.len, "\r\n");
    assert_int_equal(memcmp(d.out.data + d.out.len - 2, "\r\n", 2), 0);
    assert_base64_part(&d.out, "base64\r\n\r\n", NULL, body.data, body.len);
    /* 76 characters a line: 1336 characters of base64 make 18 lines */
    size_t len;
    const char *p = body_after(&d.out, "base64\r\n\r\n", NULL, &len);
    assert_int_equal(len, 1336 + 18 * 2);
    assert_int_equal(p[76], '\r');
    mime_downgrade_free(&d);
    buf_free(&msg);
    buf_free(&body);
}

/* test_7bit_message_is_unchanged_byte_for_byte */
static void test_7bit_message_is_unchanged_byte_for_byte(void **state)
{
    buf_t msg = BUF_INIT;
    struct mime_downgrade d;

    buf_puts(&msg, "Content-Type: multipart/mixed; boundary=x\r\n"
                   "Content-Transfer-Encoding: 8bit\r\n\r\n--x\r\n\r\n");
    for (int i = 0; i < 1500; i++)
        buf_putc(&msg, 'a');
    buf_puts(&msg, "\n\r bare line ends\r\n--x--");
    mime_downgrade_init(&d);
    assert_false(mime_downgrade_needed(msg.data, msg.len));
    assert_int_equal(mime_downgrade_run(&d, msg.data, msg.len), MIME_DOWNGRADE_UNCHANGED);
    assert_int_equal(d.out.len, msg.len);
    assert_memory_equal(d.out.data, msg.data, msg.len);
    assert_int_equal(d.span_count, 0);
    mime_downgrade_free(&d);
    buf_free(&msg);
}

/* test_nul_byte_is_encoded_too */
static void test_nul_byte_is_encoded_too(void **state)
{
    const char msg[] = "Subject: x\n\na\0b\n";
    struct mime_downgrade d;

    assert_true(mime_downgrade_needed(msg, sizeof(msg) - 1));
    downgrade_ok(&d, msg, sizeof(msg) - 1, "\n");
    assert_non_null(strstr(d.out.data, "\n\na=00b\n"));
    mime_downgrade_free(&d);
}

/* assert_refused - msg cannot be downgraded, for the reason that says why */
static void assert_refused(const char *msg, const char *why)
{
    struct mime_downgrade d;

    mime_downgrade_init(&d);
    assert_int_equal(run(&d, msg), MIME_DOWNGRADE_REFUSED);
    assert_non_null(d.reason);
    assert_non_null(strstr(d.reason, why));
    mime_downgrade_free(&d);
}

/* test_what_cannot_be_downgraded_is_refused */
static void test_what_cannot_be_downgraded_is_refused(void **state)
{
    assert_refused("Subject: gr\xc3\xbc\xc3\x9f\r\n\r\nbody\r\n", "header");
    assert_refused("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                   "Content-Type: text/plain; name=\"\xe9\"\r\n\r\nx\r\n--b--\r\n",
                   "header");
    assert_refused("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                   "Content-Transfer-Encoding: binary\r\n\r\n\xff\r\n--b--\r\n",
                   "encoding");
    assert_refused("Content-Transfer-Encoding: base64\r\n\r\n\xff\r\n", "encoding");
    assert_refused("Content-Type: multipart/mixed; boundary=b\r\n"
                   "Content-Transfer-Encoding: binary\r\n\r\n--b\r\n\r\n\xff\r\n--b--\r\n",
                   "multipart or message");
    assert_refused("Content-Type: multipart/mixed; boundary=b\r\n\r\npre\xe9\r\n--b\r\n\r\nx\r\n",
                   "preamble");
    assert_refused("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n\xe9",
                   "epilogue");
    assert_refused("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b \xe9\r\n",
                   "delimiter line");
    assert_refused("Content-Type: multipart/mixed\r\n\r\n\xe9\r\n", "without a boundary");
    assert_refused("Content-Type: message/global\r\n\r\nFrom: \xc3\xa9@x\r\n\r\n", "message/");
}

/* test_nesting_deeper_than_the_limit_is_refused */
static void test_nesting_deeper_than_the_limit_is_refused(void **state)
{
    buf_t msg = BUF_INIT;
    struct mime_downgrade d;

    for (int level = 0; level < 2; level++) {
        int depth = level ? MIME_DOWNGRADE_MAX_DEPTH + 1 : MIME_DOWNGRADE_MAX_DEPTH;
        buf_reset(&msg);
        for (int i = 0; i < depth; i++)
            buf_puts(&msg, "Content-Type: message/rfc822\r\n\r\n");
        buf_puts(&msg, "Subject: deep\r\n\r\n\xe9\r\n");
        mime_downgrade_init(&d);
        assert_int_equal(mime_downgrade_run(&d, msg.data, msg.len),
                         level ? MIME_DOWNGRADE_REFUSED : MIME_DOWNGRADE_DONE);
        if (!level)
            assert_spans_decode(&d, msg.data, "\r\n");
        mime_downgrade_free(&d);
    }
    buf_free(&msg);
}

/* test_result_is_reused_between_runs */
static void test_result_is_reused_between_runs(void **state)
{
    struct mime_downgrade d;

    mime_downgrade_init(&d);
    assert_int_equal(run(&d, "Subject: \xe9\r\n\r\n"), MIME_DOWNGRADE_REFUSED);
    assert_int_equal(run(&d, "Subject: x\r\n\r\n\xe9"), MIME_DOWNGRADE_DONE);
    assert_null(d.reason);
    assert_int_equal(d.span_count, 1);
    assert_string_equal(d.out.data, "Subject: x\r\nMIME-Version: 1.0\r\n"
                                    "Content-Type: text/plain; charset=unknown-8bit\r\n"
                                    "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9");
    mime_downgrade_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_text_crlf_becomes_quoted_printable),
        cmocka_unit_test(test_plain_text_lf_keeps_lf_and_the_existing_content_type),
        cmocka_unit_test(test_multipart_mixed_text_and_attachment),
        cmocka_unit_test(test_nested_multipart_and_8bit_label_of_the_container),
        cmocka_unit_test(test_message_rfc822_part_is_walked_as_a_message),
        cmocka_unit_test(test_digest_parts_default_to_message_rfc822),
        cmocka_unit_test(test_long_lines_are_broken_and_decode_back),
        cmocka_unit_test(test_base64_of_a_top_level_attachment_ends_with_a_line_end),
        cmocka_unit_test(test_7bit_message_is_unchanged_byte_for_byte),
        cmocka_unit_test(test_nul_byte_is_encoded_too),
        cmocka_unit_test(test_what_cannot_be_downgraded_is_refused),
        cmocka_unit_test(test_nesting_deeper_than_the_limit_is_refused),
        cmocka_unit_test(test_result_is_reused_between_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
