/*
 * test_smtpd_bdat_state - CHUNKING's decisions and content without I/O
 * (smtpd/bdat_state.c): the action and reply for each BDAT line, the octets
 * of a chunk in pieces of any size, text line ends made CRLF (also across
 * chunks), binary content unchanged, and the bound on skipped octets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bdat_state.h"

static const struct bdat_txn ready = {1, 1, 1000, 0};

/* every test: a fresh state, a reply and a content buffer */
struct fixture {
    struct bdat_state b;
    buf_t reply;
    buf_t out;
};

static int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    bdat_state_init(&f->b);
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;

    buf_free(&f->reply);
    buf_free(&f->out);
    bdat_state_free(&f->b);
    free(f);
    return 0;
}

/* command - one BDAT line; the action, the reply in *reply */
static enum bdat_action command(struct bdat_state *b, const char *arg, const struct bdat_txn *t,
                                buf_t *reply)
{
    return bdat_state_command(b, arg, t, reply);
}

/* feed - the chunk's octets one piece of step bytes at a time */
static void feed(struct bdat_state *b, const char *data, size_t len, size_t step, buf_t *out)
{
    while (len > 0) {
        size_t n = len < step ? len : step;
        size_t used = bdat_state_octets(b, data, n, out);

        assert_int_equal(used, n);
        data += n;
        len -= n;
    }
    assert_int_equal(b->left, 0);
    bdat_state_chunk_end(b, out);
}

static void test_first_chunk_then_append_then_last(void **state)
{
    struct fixture *f = *state;
    struct bdat_state *b = &f->b;
    buf_t *reply = &f->reply, *out = &f->out;

    assert_int_equal(command(b, "3", &ready, reply), BDAT_FIRST);
    assert_int_equal(b->reading, 1);
    assert_int_equal(b->left, 3);
    feed(b, "a\r\n", 3, 1, out);
    bdat_state_ok_reply(b, reply);
    assert_string_equal(buf_cstr(reply), "250 2.0.0 3 octets received");
    assert_int_equal(command(b, "0", &ready, reply), BDAT_APPEND);
    assert_int_equal(command(b, "2 last", &ready, reply), BDAT_APPEND);
    assert_int_equal(b->last, 1);
    feed(b, "b\n", 2, 2, out);
    assert_string_equal(buf_cstr(out), "a\r\nb\r\n");
    assert_int_equal(b->total, 5);
    assert_int_equal(b->bare_seen, 1);
}

static void test_octets_past_the_chunk_are_not_taken(void **state)
{
    struct fixture *f = *state;
    struct bdat_state *b = &f->b;
    buf_t *reply = &f->reply, *out = &f->out;

    assert_int_equal(command(b, "4 LAST", &ready, reply), BDAT_FIRST);
    assert_int_equal(bdat_state_octets(b, "abcdQUIT\r\n", 10, out), 4);
    assert_string_equal(buf_cstr(out), "abcd");
}

static void test_text_line_ends_across_chunks(void **state)
{
    static const char *data[] = {"x\r", "\ny\r", "z\n\r", "\r\n.\r\n", "end\r"};
    struct fixture *f = *state;
    struct bdat_state *b = &f->b;
    buf_t *reply = &f->reply, *out = &f->out;

    for (size_t i = 0; i < 5; i++) {
        char arg[32];

        snprintf(arg, sizeof(arg), "%zu%s", strlen(data[i]), i == 4 ? " LAST" : "");
        assert_int_not_equal(command(b, arg, &ready, reply), BDAT_SKIP);
        feed(b, data[i], strlen(data[i]), 1, out);
    }
    assert_string_equal(buf_cstr(out), "x\r\ny\r\nz\r\n\r\n\r\n.\r\nend\r\n");
}

static void test_binary_is_unchanged(void **state)
{
    static const char data[] = "a\rb\nc\0d\r";
    const struct bdat_txn binary = {1, 1, 0, 1};
    struct fixture *f = *state;
    struct bdat_state *b = &f->b;
    buf_t *reply = &f->reply, *out = &f->out;

    assert_int_equal(command(b, "9 LAST", &binary, reply), BDAT_FIRST);
    feed(b, data, 9, 4, out);
    assert_int_equal(out->len, 9);
    assert_memory_equal(out->data, data, 9);
    assert_int_equal(b->bare_seen, 0);
}

static void test_errors_skip_the_chunk(void **state)
{
    const struct bdat_txn no_mail = {0, 0, 1000, 0}, no_rcpt = {1, 0, 1000, 0};
    struct fixture *f = *state;
    struct bdat_state *b = &f->b;
    buf_t *reply = &f->reply, *out = &f->out;

    assert_int_equal(command(b, "5", &no_mail, reply), BDAT_SKIP);
    assert_string_equal(buf_cstr(reply), "503 5.5.1 Error: need MAIL command");
    assert_int_equal(b->failed, 0);
    feed(b, "RSET\n", 5, 5, out);
    assert_int_equal(out->len, 0); /* dropped */
    assert_int_equal(command(b, "5", &no_rcpt, reply), BDAT_SKIP);
    assert_string_equal(buf_cstr(reply), "554 5.5.1 Error: no valid recipients");
    assert_int_equal(b->failed, 1);
    assert_int_equal(command(b, "1 LAST", &ready, reply), BDAT_SKIP);
    assert_string_equal(buf_cstr(reply), "503 5.5.1 Error: BDAT after a failed chunk; send RSET");
    assert_string_equal(buf_cstr(&b->reply), buf_cstr(reply));
    bdat_state_reset(b);
    assert_int_equal(command(b, "1 LAST", &ready, reply), BDAT_FIRST);
}

static void test_size_limit_counts_every_chunk(void **state)
{
    struct fixture *f = *state;
    struct bdat_state *b = &f->b;
    buf_t *reply = &f->reply;

    assert_int_equal(command(b, "600", &ready, reply), BDAT_FIRST);
    b->left = 0;
    assert_int_equal(command(b, "401", &ready, reply), BDAT_SKIP);
    assert_true(strncmp(buf_cstr(reply), "552 5.3.4 ", 10) == 0);
    assert_int_equal(b->failed, 1);
    assert_int_equal(b->size, 401);
    assert_int_equal(b->skipping, 1);
}

static void test_too_much_skipped_closes(void **state)
{
    struct fixture *f = *state;
    struct bdat_state *b = &f->b;
    buf_t *reply = &f->reply;

    assert_int_equal(command(b, "1400", &ready, reply), BDAT_SKIP); /* 552 */
    b->left = 0;
    assert_int_equal(command(b, "101", &ready, reply), BDAT_CLOSE); /* past 1.5 x 1000 */
    assert_string_equal(buf_cstr(reply), "503 5.5.1 Error: BDAT after a failed chunk; send RSET");
    assert_int_equal(b->reading, 0);
}

static void test_syntax_error_closes(void **state)
{
    struct fixture *f = *state;
    struct bdat_state *b = &f->b;
    buf_t *reply = &f->reply;

    assert_int_equal(command(b, "", &ready, reply), BDAT_CLOSE);
    assert_string_equal(buf_cstr(reply), "501 5.5.4 Syntax: BDAT <size> [LAST]");
    assert_int_equal(command(b, "5 LAST x", &ready, reply), BDAT_CLOSE);
    assert_int_equal(b->reading, 0);
}

static void test_fail_after_the_first_chunk_was_accepted(void **state)
{
    struct fixture *f = *state;
    struct bdat_state *b = &f->b;
    buf_t *reply = &f->reply, *out = &f->out;

    assert_int_equal(command(b, "3 LAST", &ready, reply), BDAT_FIRST);
    bdat_state_fail(b, "550 5.7.1 no");
    feed(b, "abc", 3, 2, out);
    assert_int_equal(out->len, 0);
    assert_int_equal(b->failed, 1);
    assert_string_equal(buf_cstr(&b->reply), "550 5.7.1 no");
}

static void test_refused_before_the_handler(void **state)
{
    struct fixture *f = *state;
    struct bdat_state *b = &f->b;
    buf_t *reply = &f->reply, *out = &f->out;
    const char *refusal = "530 5.7.0 Must issue a STARTTLS command first";

    assert_int_equal(bdat_state_refuse(b, "4 LAST", refusal, 1000, reply), BDAT_SKIP);
    assert_string_equal(buf_cstr(reply), refusal);
    assert_string_equal(buf_cstr(&b->reply), refusal);
    assert_int_equal(b->skipping, 1);
    assert_int_equal(b->failed, 0); /* the transaction is untouched */
    assert_int_equal(b->open, 0);
    feed(b, "NOOP", 4, 3, out);
    assert_int_equal(out->len, 0);
    assert_int_equal(b->left, 0);
    /* the skipped octets count: past 1.5 x 1000 it closes */
    assert_int_equal(bdat_state_refuse(b, "1497", refusal, 1000, reply), BDAT_CLOSE);
    assert_string_equal(buf_cstr(reply), refusal);
    assert_int_equal(b->reading, 0);
    bdat_state_free(b);
    bdat_state_init(b);
    assert_int_equal(bdat_state_refuse(b, "4x", refusal, 1000, reply), BDAT_CLOSE);
    assert_string_equal(buf_cstr(reply), "501 5.5.4 Syntax: BDAT <size> [LAST]");
    assert_int_equal(b->reading, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_chunk_then_append_then_last, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_octets_past_the_chunk_are_not_taken, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_text_line_ends_across_chunks, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_binary_is_unchanged, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_errors_skip_the_chunk, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_size_limit_counts_every_chunk, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_too_much_skipped_closes, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_syntax_error_closes, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_fail_after_the_first_chunk_was_accepted, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_refused_before_the_handler, fixture_setup,
                                        fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
