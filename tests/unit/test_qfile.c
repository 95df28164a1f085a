/*
 * test_qfile - unit tests for lib/qfile: a queue file written with the
 * writer reads back field for field, recipient status updates persist, and
 * truncated or malformed files are rejected by qfile_read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "qfile.h"

static const char test_content[] = "From: a@example.org\r\nSubject: hi\r\n\r\nbody line\r\n";

/* mem_fd - an anonymous file holding n bytes of data */
static int mem_fd(const void *data, size_t n)
{
    int fd = memfd_create("qfile-test", 0);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    return fd;
}

/* raw_record - append one record by hand */
static void raw_record(buf_t *b, int type, const void *data, size_t len)
{
    unsigned char h[5] = {(unsigned char)type, (unsigned char)(len >> 24),
                          (unsigned char)(len >> 16), (unsigned char)(len >> 8),
                          (unsigned char)len};
    buf_append(b, h, 5);
    buf_append(b, data, len);
}

static void raw_record_str(buf_t *b, int type, const char *s)
{
    raw_record(b, type, s, strlen(s));
}

/* write_sample - a complete file with the writer; returns its fd */
static int write_sample(const char *sender)
{
    int fd = memfd_create("qfile-test", 0);
    struct qfile_writer w;

    assert_true(fd >= 0);
    qfile_writer_init(&w, fd);
    qfile_put_str(&w, QFILE_REC_VERSION, "1");
    qfile_put_str(&w, QFILE_REC_TIME, "1700000000.123456");
    qfile_put_str(&w, QFILE_REC_SENDER, sender);
    qfile_put_attr(&w, "client_name", "mx.example.net");
    qfile_put_attr(&w, "client_addr", "192.0.2.1");
    qfile_put_attr(&w, "helo", "a=b");
    qfile_put_rcpt(&w, "rcpt1@example.org", NULL, NULL, NULL);
    qfile_put_rcpt(&w, "rcpt2@example.org", "Rcpt2@Example.org", "SUCCESS,FAILURE",
                   "rfc822;rcpt2@example.org");
    qfile_content_begin(&w);
    qfile_content_append(&w, test_content, 10);
    qfile_content_append(&w, test_content + 10, strlen(test_content) - 10);
    assert_int_equal(qfile_content_end(&w), 0);
    assert_int_equal(qfile_finish(&w), 0);
    qfile_writer_free(&w);
    return fd;
}

/* file_bytes - the whole file */
static void file_bytes(int fd, buf_t *out)
{
    char tmp[4096];
    ssize_t n;
    off_t at = 0;

    buf_reset(out);
    while ((n = pread(fd, tmp, sizeof(tmp), at)) > 0) {
        buf_append(out, tmp, (size_t)n);
        at += n;
    }
}

/* expect_rejected - qfile_read fails on these bytes and says why */
static void expect_rejected(const buf_t *bytes, const char *what)
{
    int fd = mem_fd(bytes->data ? bytes->data : "", bytes->len);
    struct qfile_msg m;
    buf_t err = BUF_INIT;

    qfile_msg_init(&m);
    if (qfile_read(fd, &m, &err) != -1)
        fail_msg("%s: accepted", what);
    assert_true(err.len > 0);
    assert_null(m.sender);
    assert_int_equal(m.rcpt_count, 0);
    qfile_msg_free(&m);
    buf_free(&err);
    close(fd);
}

/* minimal_file - V T S M X with one extra record inserted before X */
static void minimal_file(buf_t *b, int skip_type)
{
    buf_reset(b);
    if (skip_type != QFILE_REC_VERSION)
        raw_record_str(b, QFILE_REC_VERSION, "1");
    if (skip_type != QFILE_REC_TIME)
        raw_record_str(b, QFILE_REC_TIME, "1700000000.5");
    if (skip_type != QFILE_REC_SENDER)
        raw_record_str(b, QFILE_REC_SENDER, "s@example.org");
    if (skip_type != QFILE_REC_CONTENT)
        raw_record_str(b, QFILE_REC_CONTENT, "x\r\n");
}

/* test_qfile_round_trip_keeps_every_field */
static void test_qfile_round_trip_keeps_every_field(void **state)
{
    int fd = write_sample("sender@example.org");
    struct qfile_msg m;
    buf_t err = BUF_INIT;
    char content[sizeof(test_content)];

    qfile_msg_init(&m);
    assert_int_equal(qfile_read(fd, &m, &err), 0);
    assert_int_equal(m.arrival_sec, 1700000000LL);
    assert_int_equal(m.arrival_usec, 123456);
    assert_string_equal(m.sender, "sender@example.org");
    assert_int_equal(m.attr_count, 3);
    assert_string_equal(qfile_msg_attr(&m, "client_name"), "mx.example.net");
    assert_string_equal(qfile_msg_attr(&m, "client_addr"), "192.0.2.1");
    assert_string_equal(qfile_msg_attr(&m, "helo"), "a=b");
    assert_null(qfile_msg_attr(&m, "auth"));
    assert_int_equal(m.rcpt_count, 2);
    assert_string_equal(m.rcpts[0].address, "rcpt1@example.org");
    assert_string_equal(m.rcpts[0].original, "rcpt1@example.org");
    assert_string_equal(m.rcpts[0].notify, "");
    assert_string_equal(m.rcpts[0].orcpt, "");
    assert_int_equal(m.rcpts[0].status, QFILE_RCPT_PENDING);
    assert_string_equal(m.rcpts[1].address, "rcpt2@example.org");
    assert_string_equal(m.rcpts[1].original, "Rcpt2@Example.org");
    assert_string_equal(m.rcpts[1].notify, "SUCCESS,FAILURE");
    assert_string_equal(m.rcpts[1].orcpt, "rfc822;rcpt2@example.org");
    assert_int_equal(m.content_length, strlen(test_content));
    assert_int_equal(pread(fd, content, m.content_length, m.content_offset),
                     (ssize_t)m.content_length);
    assert_memory_equal(content, test_content, m.content_length);
    qfile_msg_free(&m);
    buf_free(&err);
    close(fd);
}

/* test_qfile_null_sender_round_trips_as_empty */
static void test_qfile_null_sender_round_trips_as_empty(void **state)
{
    int fd = write_sample("");
    struct qfile_msg m;
    buf_t err = BUF_INIT;

    qfile_msg_init(&m);
    assert_int_equal(qfile_read(fd, &m, &err), 0);
    assert_non_null(m.sender);
    assert_string_equal(m.sender, "");
    qfile_msg_free(&m);
    buf_free(&err);
    close(fd);
}

/* test_qfile_large_content_length_is_patched_after_flush */
static void test_qfile_large_content_length_is_patched_after_flush(void **state)
{
    int fd = memfd_create("qfile-test", 0);
    struct qfile_writer w;
    struct qfile_msg m;
    buf_t err = BUF_INIT, all = BUF_INIT;
    char chunk[1000];
    size_t total = 0;

    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (char)('A' + i % 23);
    qfile_writer_init(&w, fd);
    qfile_put_str(&w, QFILE_REC_VERSION, "1");
    qfile_put_str(&w, QFILE_REC_TIME, "1");
    qfile_put_str(&w, QFILE_REC_SENDER, "s@example.org");
    qfile_put_rcpt(&w, "r@example.org", NULL, NULL, NULL);
    qfile_content_begin(&w);
    for (int i = 0; i < 300; i++) {
        qfile_content_append(&w, chunk, sizeof(chunk));
        total += sizeof(chunk);
    }
    assert_int_equal(qfile_content_end(&w), 0);
    assert_int_equal(qfile_finish(&w), 0);
    assert_int_equal(w.failed_errno, 0);
    qfile_writer_free(&w);

    qfile_msg_init(&m);
    assert_int_equal(qfile_read(fd, &m, &err), 0);
    assert_int_equal(m.content_length, total);
    file_bytes(fd, &all);
    assert_int_equal((size_t)m.content_offset + total + 5, all.len);
    for (size_t i = 0; i < total; i++)
        if (all.data[m.content_offset + (off_t)i] != chunk[i % sizeof(chunk)])
            fail_msg("content byte %zu differs", i);
    qfile_msg_free(&m);
    buf_free(&err);
    buf_free(&all);
    close(fd);
}

/* test_qfile_rcpt_status_update_persists */
static void test_qfile_rcpt_status_update_persists(void **state)
{
    int fd = write_sample("s@example.org");
    struct qfile_msg m;
    buf_t err = BUF_INIT;

    qfile_msg_init(&m);
    assert_int_equal(qfile_read(fd, &m, &err), 0);
    assert_int_equal(qfile_set_rcpt_status(fd, &m.rcpts[1], QFILE_RCPT_SENT), 0);
    assert_int_equal(qfile_set_rcpt_status(fd, &m.rcpts[0], QFILE_RCPT_FAILED), 0);
    assert_int_equal(qfile_read(fd, &m, &err), 0);
    assert_int_equal(m.rcpts[0].status, QFILE_RCPT_FAILED);
    assert_int_equal(m.rcpts[1].status, QFILE_RCPT_SENT);
    assert_string_equal(m.rcpts[1].address, "rcpt2@example.org");
    qfile_msg_free(&m);
    buf_free(&err);
    close(fd);
}

/* test_qfile_every_rcpt_status_round_trips - W N B are read back too */
static void test_qfile_every_rcpt_status_round_trips(void **state)
{
    const char statuses[] = {QFILE_RCPT_PENDING, QFILE_RCPT_WARNED, QFILE_RCPT_SENT,
                             QFILE_RCPT_NOTIFY,  QFILE_RCPT_FAILED, QFILE_RCPT_BOUNCED};
    int fd = write_sample("s@example.org");
    struct qfile_msg m;
    buf_t err = BUF_INIT;

    qfile_msg_init(&m);
    for (size_t i = 0; i < sizeof(statuses); i++) {
        assert_int_equal(qfile_read(fd, &m, &err), 0);
        assert_int_equal(qfile_set_rcpt_status(fd, &m.rcpts[0], statuses[i]), 0);
        assert_int_equal(qfile_read(fd, &m, &err), 0);
        assert_int_equal(m.rcpts[0].status, statuses[i]);
        assert_true(qfile_rcpt_status_valid(statuses[i]));
    }
    assert_true(qfile_rcpt_is_pending(QFILE_RCPT_PENDING));
    assert_true(qfile_rcpt_is_pending(QFILE_RCPT_WARNED));
    assert_false(qfile_rcpt_is_pending(QFILE_RCPT_NOTIFY));
    assert_false(qfile_rcpt_status_valid('?'));
    assert_false(qfile_rcpt_status_valid(0));
    qfile_msg_free(&m);
    buf_free(&err);
    close(fd);
}

/* test_qfile_every_truncation_is_rejected - no prefix of a file is complete */
static void test_qfile_every_truncation_is_rejected(void **state)
{
    int fd = write_sample("s@example.org");
    buf_t all = BUF_INIT, cut = BUF_INIT;
    char what[64];

    file_bytes(fd, &all);
    close(fd);
    for (size_t n = 0; n < all.len; n++) {
        buf_reset(&cut);
        buf_append(&cut, all.data, n);
        snprintf(what, sizeof(what), "file cut to %zu of %zu bytes", n, all.len);
        expect_rejected(&cut, what);
    }
    buf_free(&all);
    buf_free(&cut);
}

/* test_qfile_bytes_after_end_record_are_rejected */
static void test_qfile_bytes_after_end_record_are_rejected(void **state)
{
    int fd = write_sample("s@example.org");
    buf_t all = BUF_INIT;

    file_bytes(fd, &all);
    close(fd);
    buf_putc(&all, 0);
    expect_rejected(&all, "one byte after X");
    buf_truncate(&all, all.len - 1);
    raw_record(&all, QFILE_REC_END, "", 0);
    expect_rejected(&all, "second X record");
    buf_free(&all);
}

/* test_qfile_envelope_read_stops_at_the_content: the recipients and the
 * content's place come back; what follows the content is never looked at */
static void test_qfile_envelope_read_stops_at_the_content(void **state)
{
    int fd = write_sample("s@example.org");
    buf_t all = BUF_INIT, err = BUF_INIT;
    struct qfile_msg m;

    file_bytes(fd, &all);
    close(fd);
    buf_puts(&all, "garbage after the end record");
    fd = mem_fd(all.data, all.len);
    qfile_msg_init(&m);
    assert_int_equal(qfile_read(fd, &m, &err), -1);
    assert_int_equal(qfile_read_envelope(fd, &m, &err), 0);
    assert_string_equal(m.sender, "s@example.org");
    assert_int_equal(m.rcpt_count, 2);
    assert_string_equal(m.rcpts[1].address, "rcpt2@example.org");
    assert_int_equal(m.rcpts[1].status, QFILE_RCPT_PENDING);
    assert_int_equal(m.content_length, strlen(test_content));
    qfile_msg_free(&m);
    close(fd);
    minimal_file(&all, QFILE_REC_SENDER);
    fd = mem_fd(all.data, all.len);
    buf_reset(&err);
    assert_int_equal(qfile_read_envelope(fd, &m, &err), -1);
    assert_string_equal(buf_cstr(&err), "missing time or sender record");
    assert_null(m.sender);
    close(fd);
    buf_free(&all);
    buf_free(&err);
}

/* test_qfile_missing_required_records_are_rejected */
static void test_qfile_missing_required_records_are_rejected(void **state)
{
    static const int required[] = {QFILE_REC_VERSION, QFILE_REC_TIME, QFILE_REC_SENDER,
                                   QFILE_REC_CONTENT};
    buf_t b = BUF_INIT;

    minimal_file(&b, 0);
    raw_record(&b, QFILE_REC_END, "", 0);
    {
        int fd = mem_fd(b.data, b.len);
        struct qfile_msg m;
        buf_t err = BUF_INIT;
        qfile_msg_init(&m);
        assert_int_equal(qfile_read(fd, &m, &err), 0); /* the minimal file is fine */
        qfile_msg_free(&m);
        buf_free(&err);
        close(fd);
    }
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        char what[32];
        minimal_file(&b, required[i]);
        raw_record(&b, QFILE_REC_END, "", 0);
        snprintf(what, sizeof(what), "no '%c' record", required[i]);
        expect_rejected(&b, what);
    }
    buf_free(&b);
}

/* test_qfile_version_must_come_first_and_be_1 */
static void test_qfile_version_must_come_first_and_be_1(void **state)
{
    buf_t b = BUF_INIT;

    raw_record_str(&b, QFILE_REC_TIME, "1");
    raw_record_str(&b, QFILE_REC_VERSION, "1");
    raw_record_str(&b, QFILE_REC_SENDER, "");
    raw_record_str(&b, QFILE_REC_CONTENT, "");
    raw_record(&b, QFILE_REC_END, "", 0);
    expect_rejected(&b, "V not first");
    buf_reset(&b);
    raw_record_str(&b, QFILE_REC_VERSION, "2");
    raw_record_str(&b, QFILE_REC_TIME, "1");
    raw_record_str(&b, QFILE_REC_SENDER, "");
    raw_record_str(&b, QFILE_REC_CONTENT, "");
    raw_record(&b, QFILE_REC_END, "", 0);
    expect_rejected(&b, "version 2");
    buf_free(&b);
}

/* expect_extra_record_rejected - the minimal file plus one record before X, must be rejected */
static void expect_extra_record_rejected(int type, const void *data, size_t len, const char *what)
{
    buf_t b = BUF_INIT;

    minimal_file(&b, 0);
    raw_record(&b, type, data, len);
    raw_record(&b, QFILE_REC_END, "", 0);
    expect_rejected(&b, what);
    buf_free(&b);
}

/* test_qfile_malformed_records_are_rejected */
static void test_qfile_malformed_records_are_rejected(void **state)
{
    expect_extra_record_rejected('Z', "x", 1, "unknown type");
    expect_extra_record_rejected(0, "", 0, "type 0");
    expect_extra_record_rejected(QFILE_REC_SENDER, "other", 5, "two senders");
    expect_extra_record_rejected(QFILE_REC_TIME, "2", 1, "two times");
    expect_extra_record_rejected(QFILE_REC_VERSION, "1", 1, "two versions");
    expect_extra_record_rejected(QFILE_REC_CONTENT, "y", 1, "two contents");
    expect_extra_record_rejected(QFILE_REC_ATTR, "noequals", 8, "attr without =");
    expect_extra_record_rejected(QFILE_REC_ATTR, "=value", 6, "attr without name");
    expect_extra_record_rejected(QFILE_REC_ATTR, "a=b\0c", 5, "NUL in attr");
    expect_extra_record_rejected(QFILE_REC_RCPT, "?r@x\0r@x\0\0", 10, "bad rcpt status");
    expect_extra_record_rejected(QFILE_REC_RCPT, ".r@x\0r@x", 8, "rcpt with 2 fields");
    expect_extra_record_rejected(QFILE_REC_RCPT, ".r@x", 4, "rcpt with 1 field");
    expect_extra_record_rejected(QFILE_REC_RCPT, ".\0r@x\0\0", 7, "empty rcpt address");
    expect_extra_record_rejected(QFILE_REC_RCPT, ".", 1, "rcpt with only status");
    expect_extra_record_rejected(QFILE_REC_RCPT, "", 0, "empty rcpt");
}

/* test_qfile_nul_in_sender_is_rejected */
static void test_qfile_nul_in_sender_is_rejected(void **state)
{
    buf_t b = BUF_INIT;

    raw_record_str(&b, QFILE_REC_VERSION, "1");
    raw_record_str(&b, QFILE_REC_TIME, "1");
    raw_record(&b, QFILE_REC_SENDER, "a\0b", 3);
    raw_record_str(&b, QFILE_REC_CONTENT, "");
    raw_record(&b, QFILE_REC_END, "", 0);
    expect_rejected(&b, "NUL in sender");
    buf_free(&b);
}

/* test_qfile_record_length_past_end_is_rejected */
static void test_qfile_record_length_past_end_is_rejected(void **state)
{
    buf_t b = BUF_INIT;
    unsigned char huge[5] = {QFILE_REC_CONTENT, 0xff, 0xff, 0xff, 0xff};

    raw_record_str(&b, QFILE_REC_VERSION, "1");
    raw_record_str(&b, QFILE_REC_TIME, "1");
    raw_record_str(&b, QFILE_REC_SENDER, "");
    buf_append(&b, huge, 5);
    raw_record(&b, QFILE_REC_END, "", 0);
    expect_rejected(&b, "content length 4G");
    buf_reset(&b);
    raw_record_str(&b, QFILE_REC_VERSION, "1");
    huge[0] = QFILE_REC_SENDER;
    huge[1] = 0;
    huge[2] = 0;
    huge[3] = 1;
    buf_append(&b, huge, 5);
    buf_puts(&b, "short");
    expect_rejected(&b, "sender length past end");
    buf_free(&b);
}

/* test_qfile_end_record_with_data_is_rejected */
static void test_qfile_end_record_with_data_is_rejected(void **state)
{
    buf_t b = BUF_INIT;

    minimal_file(&b, 0);
    raw_record(&b, QFILE_REC_END, "x", 1);
    expect_rejected(&b, "X with data");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qfile_round_trip_keeps_every_field),
        cmocka_unit_test(test_qfile_null_sender_round_trips_as_empty),
        cmocka_unit_test(test_qfile_large_content_length_is_patched_after_flush),
        cmocka_unit_test(test_qfile_rcpt_status_update_persists),
        cmocka_unit_test(test_qfile_every_rcpt_status_round_trips),
        cmocka_unit_test(test_qfile_every_truncation_is_rejected),
        cmocka_unit_test(test_qfile_bytes_after_end_record_are_rejected),
        cmocka_unit_test(test_qfile_envelope_read_stops_at_the_content),
        cmocka_unit_test(test_qfile_missing_required_records_are_rejected),
        cmocka_unit_test(test_qfile_version_must_come_first_and_be_1),
        cmocka_unit_test(test_qfile_malformed_records_are_rejected),
        cmocka_unit_test(test_qfile_nul_in_sender_is_rejected),
        cmocka_unit_test(test_qfile_record_length_past_end_is_rejected),
        cmocka_unit_test(test_qfile_end_record_with_data_is_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
