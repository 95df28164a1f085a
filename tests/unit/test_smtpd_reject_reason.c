/*
 * test_smtpd_reject_reason - the label of tern_smtpd_rejects for each kind
 * of refusal (smtpd/reject_reason.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "reject_reason.h"

static const char *reason(const char *log, const char *reply)
{
    static char out[64];

    smtpd_reject_reason(log, reply, out, sizeof(out));
    return out;
}

static void test_a_restriction_counts_in_its_family(void **state)
{
    assert_string_equal(reason("reject_unauth_destination", "554 5.7.1 x"), "relay");
    assert_string_equal(reason("reject_rbl_client zen.example", "554 5.7.1 x"), "rbl");
    assert_string_equal(reason("reject_rhsbl_sender dbl.example", "554 5.7.1 x"), "rbl");
    assert_string_equal(reason("access From:spam.example", "550 5.7.1 x"), "access");
    assert_string_equal(reason("check_client_access cidr:/x", "550 5.7.1 x"), "access");
    assert_string_equal(reason("check_policy_service inet:1", "450 4.7.1 x"), "policy");
    assert_string_equal(reason("reject_unlisted_recipient", "550 5.1.1 x"), "unknown_user");
    assert_string_equal(reason("reject_sender_login_mismatch", "553 5.7.1 x"), "auth");
}

static void test_another_restriction_counts_under_its_own_name(void **state)
{
    assert_string_equal(reason("reject_non_fqdn_sender", "504 5.5.2 x"), "reject_non_fqdn_sender");
    assert_string_equal(reason("DEFER_IF_PERMIT", "450 4.7.1 x"), "DEFER_IF_PERMIT");
    assert_string_equal(reason(" leading space", "550 5.7.1 x"), "policy");
}

static void test_without_a_restriction_the_status_code_decides(void **state)
{
    assert_string_equal(reason(NULL, "550 5.1.1 <x@y>... User unknown"), "unknown_user");
    assert_string_equal(reason("", "552 5.2.3 Message exceeds maximum fixed size"), "size");
    assert_string_equal(reason(NULL, "452 4.5.3 Too many recipients"), "too_many_recipients");
    assert_string_equal(reason(NULL, "550 5.5.2 Error: bare <LF> received"), "protocol");
    assert_string_equal(reason(NULL, "530 5.7.0 Authentication required"), "auth");
    assert_string_equal(reason(NULL, "553 5.1.8 bad sender domain"), "address");
    assert_string_equal(reason(NULL, "550 no code"), "other");
    assert_string_equal(reason(NULL, "garbage"), "other");
    assert_string_equal(reason(NULL, NULL), "other");
}

/* a reply that ends at its code or the space after it: nothing read past
 * the end (ASan reports it) */
static void test_a_reply_without_text_is_other(void **state)
{
    char *bare = strdup("550 "), *code = strdup("550"), *size = strdup("552 ");

    assert_string_equal(reason(NULL, bare), "other");
    assert_string_equal(reason(NULL, code), "other");
    assert_string_equal(reason(NULL, size), "size");
    assert_string_equal(reason(NULL, "550 5"), "other");
    free(bare);
    free(code);
    free(size);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_restriction_counts_in_its_family),
        cmocka_unit_test(test_another_restriction_counts_under_its_own_name),
        cmocka_unit_test(test_without_a_restriction_the_status_code_decides),
        cmocka_unit_test(test_a_reply_without_text_is_other),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
