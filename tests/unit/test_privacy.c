/*
 * test_privacy - unit tests for lib/privacy: sendmail's words, goaway's
 * set, case-insensitive matching and the unknown word reported.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "privacy.h"

static void test_privacy_goaway_is_sendmails_set(void **state)
{
    char *words[] = {"goaway"};
    unsigned flags = 0;
    const char *bad = NULL;

    assert_int_equal(privacy_flags_parse(words, 1, &flags, &bad), 0);
    assert_int_equal(flags, PRIVACY_NEEDMAILHELO | PRIVACY_NEEDEXPNHELO | PRIVACY_NEEDVRFYHELO |
                                PRIVACY_NOEXPN | PRIVACY_NOVRFY | PRIVACY_NOVERB |
                                PRIVACY_AUTHWARNINGS);
    assert_false(flags & (PRIVACY_NORECEIPTS | PRIVACY_RESTRICTMAILQ | PRIVACY_RESTRICTQRUN |
                          PRIVACY_RESTRICTEXPAND | PRIVACY_NOETRN | PRIVACY_NOBODYRETURN));
}

static void test_privacy_words_combine_and_ignore_case(void **state)
{
    char *words[] = {"authwarnings", "NoVrfy", "noexpn", "restrictqrun", "public"};
    unsigned flags = 0;
    const char *bad = NULL;

    assert_int_equal(privacy_flags_parse(words, 5, &flags, &bad), 0);
    assert_int_equal(flags,
                     PRIVACY_AUTHWARNINGS | PRIVACY_NOVRFY | PRIVACY_NOEXPN | PRIVACY_RESTRICTQRUN);
}

static void test_privacy_unknown_word_is_named(void **state)
{
    char *words[] = {"novrfy", "noverbs"};
    unsigned flags = 0;
    const char *bad = NULL;
    buf_t known = BUF_INIT;

    assert_int_equal(privacy_flags_parse(words, 2, &flags, &bad), -1);
    assert_string_equal(bad, "noverbs");
    privacy_flags_known(&known);
    assert_non_null(strstr(buf_cstr(&known), "restrictexpand"));
    assert_non_null(strstr(buf_cstr(&known), "goaway"));
    buf_free(&known);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_privacy_goaway_is_sendmails_set),
        cmocka_unit_test(test_privacy_words_combine_and_ignore_case),
        cmocka_unit_test(test_privacy_unknown_word_is_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
