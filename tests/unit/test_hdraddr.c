/*
 * test_hdraddr - unit tests for lib/hdraddr: which addresses of a header
 * address list reach the callback, and that a rewrite changes only those
 * bytes (display names, encoded words, quoted strings, comments, groups,
 * source routes, domain literals, folds), refuses what it cannot rewrite
 * safely, and knows the address headers by name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "hdraddr.h"

/* collect - remember each address as "addr|"; keep it */
static int collect(const char *addr, buf_t *out, void *ctx)
{
    buf_printf(ctx, "%s|", addr);
    return 0;
}

/* mark - replace every address by "[addr]", so a test sees exactly which
 * bytes were replaced */
static int mark(const char *addr, buf_t *out, void *ctx)
{
    buf_printf(out, "[%s]", addr);
    return 1;
}

/* qualify - append @example.test to unqualified addresses only */
static int qualify(const char *addr, buf_t *out, void *ctx)
{
    if (strchr(addr, '@') != NULL)
        return 0;
    buf_printf(out, "%s@example.test", addr);
    return 1;
}

/* expect_addrs - value gives these addresses ("a|b|") and count */
static void expect_addrs(const char *value, const char *want)
{
    buf_t got = BUF_INIT;
    int n = hdraddr_each(value, strlen(value), collect, &got);

    if (strcmp(buf_cstr(&got), want) != 0)
        fail_msg("'%s' gave '%s', want '%s'", value, buf_cstr(&got), want);
    int bars = 0;
    for (const char *p = want; *p; p++)
        bars += *p == '|';
    if (n != bars)
        fail_msg("'%s' returned %d, want %d", value, n, bars);
    buf_free(&got);
}

/* expect_rewrite - fn rewrites value into want, replacing count addresses */
static void expect_rewrite(const char *value, hdraddr_map_fn fn, const char *want, int count)
{
    buf_t out = BUF_INIT;
    int n = hdraddr_rewrite(value, strlen(value), fn, NULL, &out);

    if (n != count || out.len != strlen(want) || memcmp(out.data, want, out.len) != 0)
        fail_msg("'%s' gave %d '%s', want %d '%s'", value, n, buf_cstr(&out), count, want);
    buf_free(&out);
}

/* expect_refused - value is refused, out is an unchanged copy, fn never runs */
static void expect_refused(const char *value)
{
    buf_t out = BUF_INIT, got = BUF_INIT;

    buf_puts(&out, "old contents");
    if (hdraddr_rewrite(value, strlen(value), mark, NULL, &out) != -1)
        fail_msg("'%s' accepted as '%s'", value, buf_cstr(&out));
    assert_int_equal(out.len, strlen(value));
    assert_memory_equal(out.data, value, out.len);
    if (hdraddr_each(value, strlen(value), collect, &got) != -1 || got.len != 0)
        fail_msg("'%s': each gave '%s'", value, buf_cstr(&got));
    buf_free(&out);
    buf_free(&got);
}

static void test_hdraddr_display_name_is_kept(void **state)
{
    expect_addrs("Joe Bloggs <joe@example.com>", "joe@example.com|");
    expect_rewrite("Joe Bloggs <joe@example.com>", mark, "Joe Bloggs <[joe@example.com]>", 1);
    expect_rewrite(" Joe <joe@x>,Ann Example<ann@y> ", mark, " Joe <[joe@x]>,Ann Example<[ann@y]> ",
                   2);
    expect_rewrite("<joe@x>", mark, "<[joe@x]>", 1);
    expect_rewrite("< joe@x >", mark, "< [joe@x] >", 1);
}

static void test_hdraddr_quoted_display_name_with_comma_is_one_element(void **state)
{
    expect_addrs("\"Doe, John\" <john@x>, \"a <b@c>, d\" <e@f>", "john@x|e@f|");
    expect_rewrite("\"Doe, John\" <john@x>", mark, "\"Doe, John\" <[john@x]>", 1);
    expect_rewrite("\"Doe \\\"JD\\\" John\" <john@x>", mark, "\"Doe \\\"JD\\\" John\" <[john@x]>",
                   1);
}

static void test_hdraddr_encoded_words_are_left_intact(void **state)
{
    const char *v = "=?utf-8?q?J=C3=B6rg?= <joerg@x>, =?UTF-8?B?w6Rib2I=?= =?utf-8?q?_x?= <b@y>";

    expect_addrs(v, "joerg@x|b@y|");
    expect_rewrite(v, mark,
                   "=?utf-8?q?J=C3=B6rg?= <[joerg@x]>, =?UTF-8?B?w6Rib2I=?= =?utf-8?q?_x?= <[b@y]>",
                   2);
    /* raw UTF-8 (RFC 6532) is atext too */
    expect_rewrite("J\xc3\xb6rg <j\xc3\xb6rg@x>", mark, "J\xc3\xb6rg <[j\xc3\xb6rg@x]>", 1);
}

static void test_hdraddr_comments_around_address_stay(void **state)
{
    expect_addrs("joe@x (Joe Bloggs), (c) ann@y", "joe@x|ann@y|");
    expect_rewrite("joe@x (Joe Bloggs)", mark, "[joe@x] (Joe Bloggs)", 1);
    expect_rewrite("(before)joe@x(after),ann@y", mark, "(before)[joe@x](after),[ann@y]", 2);
    expect_rewrite("Joe (the man) <joe@x> (work)", mark, "Joe (the man) <[joe@x]> (work)", 1);
    expect_rewrite("<(in)joe@x(in)>", mark, "<(in)[joe@x](in)>", 1);
}

static void test_hdraddr_nested_comments_with_escaped_parens_are_skipped(void **state)
{
    const char *v = "joe@x (a (nested (deeper) comment) with \\) and \\( escaped), ann@y";

    expect_addrs(v, "joe@x|ann@y|");
    expect_rewrite(v, mark,
                   "[joe@x] (a (nested (deeper) comment) with \\) and \\( escaped), [ann@y]", 2);
    expect_addrs("(a, b <c@d>) real@x", "real@x|");
}

static void test_hdraddr_comment_inside_bare_address_goes_when_replaced(void **state)
{
    expect_addrs("joe(c)@x", "joe@x|");
    expect_rewrite("joe(c)@x", mark, "[joe@x]", 1);
    expect_rewrite("joe (c) @ x . y (after)", mark, "[joe@x.y] (after)", 1);
    /* not replaced: everything stays */
    expect_rewrite("joe(c)@x, bob", qualify, "joe(c)@x, bob@example.test", 1);
}

static void test_hdraddr_empty_group_gives_nothing(void **state)
{
    expect_addrs("undisclosed-recipients:;", "");
    expect_rewrite("undisclosed-recipients:;", mark, "undisclosed-recipients:;", 0);
    expect_rewrite("Undisclosed recipients: ;", mark, "Undisclosed recipients: ;", 0);
}

static void test_hdraddr_group_gives_its_members(void **state)
{
    expect_addrs("team: a@x, Bob <b@y>;", "a@x|b@y|");
    expect_rewrite("team: a@x, Bob <b@y>;", mark, "team: [a@x], Bob <[b@y]>;", 2);
    expect_rewrite("\"the team\": a@x", mark, "\"the team\": [a@x]", 1); /* ';' left out */
}

static void test_hdraddr_several_groups_in_one_value(void **state)
{
    const char *v = "undisclosed-recipients:;, team: a@x, (c) b@y (B);c@z, two: d@w;";

    expect_addrs(v, "a@x|b@y|c@z|d@w|");
    expect_rewrite(v, mark,
                   "undisclosed-recipients:;, team: [a@x], (c) [b@y] (B);[c@z], two: [d@w];", 4);
}

static void test_hdraddr_quoted_local_part_is_passed_as_written(void **state)
{
    expect_addrs("\"john q\"@example.com, <\"a\\\"b\"@x>, \"a\".b@y",
                 "\"john q\"@example.com|\"a\\\"b\"@x|\"a\".b@y|");
    expect_rewrite("\"john q\"@example.com (JQ)", mark, "[\"john q\"@example.com] (JQ)", 1);
    /* a quoted string alone is an unqualified local part */
    expect_addrs("\"john q\"", "\"john q\"|");
}

static void test_hdraddr_domain_literal(void **state)
{
    expect_addrs("user@[192.0.2.1], Joe <joe@[IPv6:2001:db8::1]>",
                 "user@[192.0.2.1]|joe@[IPv6:2001:db8::1]|");
    expect_rewrite("user@[192.0.2.1]", mark, "[user@[192.0.2.1]]", 1);
    expect_addrs("user@[ 192.0.2.1 ]", "user@[192.0.2.1]|");
}

static void test_hdraddr_route_address_replaces_only_the_mailbox(void **state)
{
    expect_addrs("Joe <@a,@b:user@dom>", "user@dom|");
    expect_rewrite("Joe <@a,@b:user@dom>", mark, "Joe <@a,@b:[user@dom]>", 1);
    expect_rewrite("<@a.example, ,@[192.0.2.1] : u@d>", mark, "<@a.example, ,@[192.0.2.1] : [u@d]>",
                   1);
    expect_refused("<@a,@b:>");
    expect_refused("<@:u@d>");
}

static void test_hdraddr_folds_are_white_space_and_stay(void **state)
{
    /* between addresses, inside an element, and a trailing line break */
    const char *v = " a@x,\r\n\tJoe\r\n <b@y>, c\r\n @z\r\n";

    expect_addrs(v, "a@x|b@y|c@z|");
    expect_rewrite(v, mark, " [a@x],\r\n\tJoe\r\n <[b@y]>, [c@z]\r\n", 3);
    /* a fold inside a quoted string: the address loses the line break only */
    expect_addrs("\"john\r\n q\"@x", "\"john q\"@x|");
    /* lone LF folds too */
    expect_rewrite("a@x,\n b@y\n", mark, "[a@x],\n [b@y]\n", 2);
}

static void test_hdraddr_unqualified_bare_addresses_are_passed(void **state)
{
    expect_addrs("alice, bob@x, carol", "alice|bob@x|carol|");
    expect_rewrite("bob@x, alice", qualify, "bob@x, alice@example.test", 1);
    expect_rewrite("Alice <alice>", qualify, "Alice <alice@example.test>", 1);
}

static void test_hdraddr_null_address_is_never_passed(void **state)
{
    expect_addrs("<>", "");
    expect_rewrite("<>", mark, "<>", 0);
    expect_rewrite(" < > ", mark, " < > ", 0);
    expect_rewrite("Mailer <>, a@x", mark, "Mailer <>, [a@x]", 1);
}

static void test_hdraddr_phrase_without_address_is_left_alone(void **state)
{
    expect_addrs("Undisclosed recipients", "");
    expect_rewrite("Undisclosed recipients", mark, "Undisclosed recipients", 0);
    expect_rewrite("a@b c@d, e@f", mark, "a@b c@d, [e@f]", 1);
    expect_rewrite("a@, @b, a@b@c, .a@b, a..b@c, a@b.", mark, "a@, @b, a@b@c, .a@b, a..b@c, a@b.",
                   0);
}

static void test_hdraddr_unbalanced_input_is_refused_with_unchanged_copy(void **state)
{
    expect_refused("Joe <joe@x");
    expect_refused("a@x, Joe <joe@x, b@y");
    expect_refused("\"Joe <joe@x>");
    expect_refused("joe@x (Joe");
    expect_refused("joe@x (a (b) c");
    expect_refused("joe@[192.0.2.1");
    expect_refused("joe@[1[2]]");
    expect_refused("joe@x \\");
    expect_refused("\"joe\\");
}

static void test_hdraddr_garbage_is_refused(void **state)
{
    expect_refused("joe@x>");
    expect_refused("joe@x)");
    expect_refused("joe@x]");
    expect_refused("a@x; b@y");        /* ';' outside a group */
    expect_refused("g: h: a@x;;");     /* a group in a group */
    expect_refused(": a@x;");          /* a group without a name */
    expect_refused("a@x: b@y");        /* ':' after an address */
    expect_refused("<a@x> b@y");       /* words after "<...>" */
    expect_refused("<a@x>: b@y");      /* ':' after "<...>" */
    expect_refused("Joe <<joe@x>>");   /* '<' in brackets */
    expect_refused("a@x,\r\nTo: b@y"); /* a line break that is no fold */
    expect_refused("a@x\r b@y");       /* a lone CR */
    expect_refused("a\x01@x");         /* control character */
    expect_refused("(a\x7f) b@x");     /* control character in a comment */
    expect_refused("\"a\\\r\n b\"@x"); /* quoted line break */
    expect_refused("a@x\r\n\r\n");     /* two line breaks */
    expect_refused("<a@x b@y>");
    expect_refused("<a b@y>");

    /* a NUL anywhere */
    buf_t out = BUF_INIT;
    assert_int_equal(hdraddr_rewrite("a@x, b\0@y", 10, mark, NULL, &out), -1);
    assert_int_equal(out.len, 10);
    assert_memory_equal(out.data, "a@x, b\0@y", 10);
    buf_free(&out);
}

static void test_hdraddr_longer_replacements_shift_the_rest(void **state)
{
    expect_rewrite("Joe <joe@x>, a", qualify, "Joe <joe@x>, a@example.test", 1);
    expect_rewrite("a, b, c", qualify, "a@example.test, b@example.test, c@example.test", 3);
    expect_rewrite("\"a long local part\"@a.very.long.domain.example, x@y", mark,
                   "[\"a long local part\"@a.very.long.domain.example], [x@y]", 2);
}

/* shorten - replace every address by "s" */
static int shorten(const char *addr, buf_t *out, void *ctx)
{
    buf_puts(out, "s");
    return 1;
}

/* keep_with_empty - claims a replacement but leaves out empty */
static int keep_with_empty(const char *addr, buf_t *out, void *ctx)
{
    return 1;
}

static void test_hdraddr_shorter_and_empty_replacements(void **state)
{
    expect_rewrite("Joe <joe.bloggs@example.com> (x), ann@y", shorten, "Joe <s> (x), s", 2);
    /* an empty replacement keeps the address */
    expect_rewrite("Joe <joe@x>", keep_with_empty, "Joe <joe@x>", 0);
}

static void test_hdraddr_every_address_in_long_list_is_replaced(void **state)
{
    buf_t in = BUF_INIT, want = BUF_INIT, out = BUF_INIT;
    enum { COUNT = 5000 };

    for (int i = 0; i < COUNT; i++) {
        buf_printf(&in, "%sUser %d <u%d@x>", i ? ",\r\n " : "", i, i);
        buf_printf(&want, "%sUser %d <[u%d@x]>", i ? ",\r\n " : "", i, i);
    }
    assert_int_equal(hdraddr_rewrite(in.data, in.len, mark, NULL, &out), COUNT);
    assert_int_equal(out.len, want.len);
    assert_memory_equal(out.data, want.data, out.len);
    buf_free(&in);
    buf_free(&want);
    buf_free(&out);
}

static void test_hdraddr_deep_comment_nesting_needs_no_recursion(void **state)
{
    buf_t in = BUF_INIT, out = BUF_INIT;
    enum { DEPTH = 200000 };

    buf_puts(&in, "a@x ");
    for (int i = 0; i < DEPTH; i++)
        buf_putc(&in, '(');
    for (int i = 0; i < DEPTH; i++)
        buf_putc(&in, ')');
    assert_int_equal(hdraddr_rewrite(in.data, in.len, mark, NULL, &out), 1);
    assert_int_equal(out.len, in.len + 2);
    buf_truncate(&in, in.len - 1); /* one ')' short */
    assert_int_equal(hdraddr_rewrite(in.data, in.len, mark, NULL, &out), -1);
    buf_free(&in);
    buf_free(&out);
}

/* other_note - remember an element that is no address as "{text}" */
static void other_note(const char *text, size_t len, void *ctx)
{
    buf_printf(ctx, "{%.*s}", (int)len, text);
}

static void test_hdraddr_scan_reports_elements_without_address(void **state)
{
    const char *v = "a@x, Undisclosed recipients (c), <>, g:;, Joe <>, b@y c@z, d@w";
    buf_t got = BUF_INIT;

    assert_int_equal(hdraddr_scan(v, strlen(v), collect, other_note, &got), 2);
    assert_string_equal(buf_cstr(&got), "a@x|{Undisclosed recipients}{<>}{Joe <>}{b@y c@z}d@w|");
    buf_reset(&got);
    assert_int_equal(hdraddr_scan("a@x>", 4, collect, other_note, &got), -1);
    assert_int_equal(got.len, 0);
    buf_free(&got);
}

static void test_hdraddr_empty_value_has_no_addresses(void **state)
{
    expect_addrs("", "");
    expect_addrs(" , ,, (c) ,\r\n ", "");
    expect_rewrite("", mark, "", 0);
}

static void test_hdraddr_header_class_by_name(void **state)
{
    const char *senders[] = {"From",
                             "Sender",
                             "Reply-To",
                             "Errors-To",
                             "Return-Path",
                             "Return-Receipt-To",
                             "Disposition-Notification-To",
                             "Mail-Followup-To",
                             "Resent-From",
                             "Resent-Sender"};
    const char *rcpts[] = {"To",        "Cc",        "Bcc",        "Apparently-To",
                           "Resent-To", "Resent-Cc", "Resent-Bcc", "Resent-Reply-To"};

    for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++)
        assert_int_equal(hdraddr_header_class(senders[i], strlen(senders[i])), HDRADDR_SENDER);
    for (size_t i = 0; i < sizeof(rcpts) / sizeof(rcpts[0]); i++)
        assert_int_equal(hdraddr_header_class(rcpts[i], strlen(rcpts[i])), HDRADDR_RECIPIENT);
    assert_int_equal(hdraddr_header_class("fROM", 4), HDRADDR_SENDER);
    assert_int_equal(hdraddr_header_class("CC \t", 4), HDRADDR_RECIPIENT);
    assert_int_equal(hdraddr_header_class("To: x", 2), HDRADDR_RECIPIENT);
    assert_int_equal(hdraddr_header_class("Tox", 3), HDRADDR_NONE);
    assert_int_equal(hdraddr_header_class("T", 1), HDRADDR_NONE);
    assert_int_equal(hdraddr_header_class("Subject", 7), HDRADDR_NONE);
    assert_int_equal(hdraddr_header_class("Message-ID", 10), HDRADDR_NONE);
    assert_int_equal(hdraddr_header_class("", 0), HDRADDR_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hdraddr_display_name_is_kept),
        cmocka_unit_test(test_hdraddr_quoted_display_name_with_comma_is_one_element),
        cmocka_unit_test(test_hdraddr_encoded_words_are_left_intact),
        cmocka_unit_test(test_hdraddr_comments_around_address_stay),
        cmocka_unit_test(test_hdraddr_nested_comments_with_escaped_parens_are_skipped),
        cmocka_unit_test(test_hdraddr_comment_inside_bare_address_goes_when_replaced),
        cmocka_unit_test(test_hdraddr_empty_group_gives_nothing),
        cmocka_unit_test(test_hdraddr_group_gives_its_members),
        cmocka_unit_test(test_hdraddr_several_groups_in_one_value),
        cmocka_unit_test(test_hdraddr_quoted_local_part_is_passed_as_written),
        cmocka_unit_test(test_hdraddr_domain_literal),
        cmocka_unit_test(test_hdraddr_route_address_replaces_only_the_mailbox),
        cmocka_unit_test(test_hdraddr_folds_are_white_space_and_stay),
        cmocka_unit_test(test_hdraddr_unqualified_bare_addresses_are_passed),
        cmocka_unit_test(test_hdraddr_null_address_is_never_passed),
        cmocka_unit_test(test_hdraddr_phrase_without_address_is_left_alone),
        cmocka_unit_test(test_hdraddr_unbalanced_input_is_refused_with_unchanged_copy),
        cmocka_unit_test(test_hdraddr_garbage_is_refused),
        cmocka_unit_test(test_hdraddr_longer_replacements_shift_the_rest),
        cmocka_unit_test(test_hdraddr_shorter_and_empty_replacements),
        cmocka_unit_test(test_hdraddr_every_address_in_long_list_is_replaced),
        cmocka_unit_test(test_hdraddr_deep_comment_nesting_needs_no_recursion),
        cmocka_unit_test(test_hdraddr_scan_reports_elements_without_address),
        cmocka_unit_test(test_hdraddr_empty_value_has_no_addresses),
        cmocka_unit_test(test_hdraddr_header_class_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
