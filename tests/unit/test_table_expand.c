/*
 * test_table_expand - unit tests for lib/table_expand: Postfix's %s %u %d
 * %S %U %D %1..%9 %% expansions and when a key skips the query, the LDAP
 * filter / DN and SQL literal escaping (an injection attempt stays inside
 * its value), and the "domain" restriction.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "table_expand.h"

/* expand - table_expand into a fresh buffer; returns the status and leaves
 * the text in out (NULL) or the reason in *reason */
static enum table_expand_status expand(const char *format, const char *value, const char *key,
                                       table_expand_escape_fn escape, buf_t *out)
{
    const char *reason = NULL;
    enum table_expand_status st;

    buf_reset(out);
    st = table_expand(format, value, key, escape, out, &reason);
    if (st != TABLE_EXPAND_OK)
        assert_non_null(reason);
    return st;
}

/* test_query_expansions_of_an_address */
static void test_query_expansions_of_an_address(void **state)
{
    buf_t b = BUF_INIT;

    assert_int_equal(expand("(mail=%s)", "joe@mail.example.com", NULL, NULL, &b), TABLE_EXPAND_OK);
    assert_string_equal(buf_cstr(&b), "(mail=joe@mail.example.com)");
    assert_int_equal(
        expand("%u|%d|%S|%U|%D|%1|%2|%3|100%%", "joe@mail.example.com", NULL, NULL, &b),
        TABLE_EXPAND_OK);
    assert_string_equal(buf_cstr(&b),
                        "joe|mail.example.com|joe@mail.example.com|joe|mail.example.com|com|"
                        "example|mail|100%");
    /* the last '@' splits, as in Postfix */
    assert_int_equal(expand("%u %d", "\"a@b\"@example.com", NULL, NULL, &b), TABLE_EXPAND_OK);
    assert_string_equal(buf_cstr(&b), "\"a@b\" example.com");
    buf_free(&b);
}

/* test_query_without_domain_is_skipped_only_when_needed */
static void test_query_without_domain_is_skipped_only_when_needed(void **state)
{
    buf_t b = BUF_INIT;

    assert_int_equal(expand("uid=%u", "joe", NULL, NULL, &b), TABLE_EXPAND_OK);
    assert_string_equal(buf_cstr(&b), "uid=joe");
    assert_int_equal(expand("%s", "joe", NULL, NULL, &b), TABLE_EXPAND_OK);
    assert_int_equal(expand("%d", "joe", NULL, NULL, &b), TABLE_EXPAND_SKIP);
    assert_int_equal(expand("%D", "joe", NULL, NULL, &b), TABLE_EXPAND_SKIP);
    assert_int_equal(expand("%d", "joe@", NULL, NULL, &b), TABLE_EXPAND_SKIP);
    assert_int_equal(expand("%1", "joe", NULL, NULL, &b), TABLE_EXPAND_SKIP);
    assert_int_equal(expand("%u", "@example.com", NULL, NULL, &b), TABLE_EXPAND_SKIP);
    assert_int_equal(expand("%s", "@example.com", NULL, NULL, &b), TABLE_EXPAND_OK);
    assert_int_equal(expand("%s", "", NULL, NULL, &b), TABLE_EXPAND_SKIP);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

/* test_domain_labels_count_from_the_right */
static void test_domain_labels_count_from_the_right(void **state)
{
    buf_t b = BUF_INIT;

    assert_int_equal(expand("dc=%2,dc=%1", "example.com", NULL, NULL, &b), TABLE_EXPAND_SKIP);
    assert_int_equal(expand("dc=%2,dc=%1", "u@example.com", NULL, NULL, &b), TABLE_EXPAND_OK);
    assert_string_equal(buf_cstr(&b), "dc=example,dc=com");
    assert_int_equal(expand("%3", "u@example.com", NULL, NULL, &b), TABLE_EXPAND_SKIP);
    assert_int_equal(expand("%9", "u@a.b.c.d.e.f.g.h.i", NULL, NULL, &b), TABLE_EXPAND_OK);
    assert_string_equal(buf_cstr(&b), "a");
    /* empty labels among the needed ones skip */
    assert_int_equal(expand("%1", "u@example.com.", NULL, NULL, &b), TABLE_EXPAND_SKIP);
    assert_int_equal(expand("%2", "u@example..com", NULL, NULL, &b), TABLE_EXPAND_SKIP);
    assert_int_equal(expand("%2", "u@.com", NULL, NULL, &b), TABLE_EXPAND_SKIP);
    assert_int_equal(expand("%1", "u@.com", NULL, NULL, &b), TABLE_EXPAND_OK);
    assert_string_equal(buf_cstr(&b), "com");
    buf_free(&b);
}

/* test_result_template_lower_from_result_upper_from_key */
static void test_result_template_lower_from_result_upper_from_key(void **state)
{
    buf_t b = BUF_INIT;

    assert_int_equal(expand("%u+%U@%d (%S %1)", "box@store.test", "Joe@Example.com", NULL, &b),
                     TABLE_EXPAND_OK);
    assert_string_equal(buf_cstr(&b), "box+Joe@store.test (Joe@Example.com com)");
    assert_int_equal(expand("%s", "", "joe@example.com", NULL, &b), TABLE_EXPAND_SKIP);
    assert_int_equal(expand("%d", "box", "joe@example.com", NULL, &b), TABLE_EXPAND_SKIP);
    assert_int_equal(expand("%D", "box@x", "joe", NULL, &b), TABLE_EXPAND_SKIP);
    assert_int_equal(expand("%U", "box", "joe", NULL, &b), TABLE_EXPAND_OK);
    assert_string_equal(buf_cstr(&b), "joe");
    buf_free(&b);
}

/* test_bad_templates_refused */
static void test_bad_templates_refused(void **state)
{
    static const char *const bad[] = {"%", "a%", "%x", "%0", "%s%", "%%%"};
    const char *reason = NULL;
    buf_t b = BUF_INIT;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        reason = NULL;
        assert_int_equal(table_expand_check(bad[i], &reason), -1);
        assert_non_null(reason);
        assert_int_equal(expand(bad[i], "u@d", NULL, NULL, &b), TABLE_EXPAND_ERROR);
    }
    assert_int_equal(table_expand_check("(&(mail=%s)(x=%%)(d=%9))", &reason), 0);
    buf_free(&b);
}

/* test_ldap_filter_injection_stays_one_value */
static void test_ldap_filter_injection_stays_one_value(void **state)
{
    buf_t b = BUF_INIT;

    assert_int_equal(expand("(&(objectClass=mailUser)(mail=%s))", "*)(uid=*@example.com", NULL,
                            table_expand_escape_ldap_filter, &b),
                     TABLE_EXPAND_OK);
    assert_string_equal(buf_cstr(&b),
                        "(&(objectClass=mailUser)(mail=\\2a\\29\\28uid=\\2a@example.com))");
    /* no unescaped filter metacharacter came from the key */
    assert_int_equal(expand("%u", "*)(|(uid=*))\\", NULL, table_expand_escape_ldap_filter, &b),
                     TABLE_EXPAND_OK);
    assert_null(strpbrk(buf_cstr(&b), "*()"));
    assert_string_equal(buf_cstr(&b), "\\2a\\29\\28|\\28uid=\\2a\\29\\29\\5c");
    assert_int_equal(expand("%s", "j\xc3\xb6rg\x01", NULL, table_expand_escape_ldap_filter, &b),
                     TABLE_EXPAND_OK);
    assert_string_equal(buf_cstr(&b), "j\\c3\\b6rg\\01");
    buf_free(&b);
}

/* test_ldap_dn_value_escaped */
static void test_ldap_dn_value_escaped(void **state)
{
    buf_t b = BUF_INIT;

    assert_int_equal(
        expand("ou=%d,dc=test", "u@a,b+c=\"d\";<e>\\", NULL, table_expand_escape_ldap_dn, &b),
        TABLE_EXPAND_OK);
    assert_string_equal(buf_cstr(&b), "ou=a\\2cb\\2bc\\3d\\22d\\22\\3b\\3ce\\3e\\5c,dc=test");
    assert_int_equal(expand("cn=%s", "# a b ", NULL, table_expand_escape_ldap_dn, &b),
                     TABLE_EXPAND_OK);
    assert_string_equal(buf_cstr(&b), "cn=\\23 a b\\20");
    assert_int_equal(expand("cn=%s", " x#", NULL, table_expand_escape_ldap_dn, &b),
                     TABLE_EXPAND_OK);
    assert_string_equal(buf_cstr(&b), "cn=\\20x#");
    buf_free(&b);
}

/* test_sql_quote_cannot_leave_the_literal */
static void test_sql_quote_cannot_leave_the_literal(void **state)
{
    buf_t b = BUF_INIT;
    const char *p;
    int quotes = 0;

    assert_int_equal(expand("SELECT goto FROM alias WHERE address='%s'",
                            "x' OR '1'='1'; DROP TABLE alias; --\\'@example.com", NULL,
                            table_expand_escape_sql_literal, &b),
                     TABLE_EXPAND_OK);
    assert_string_equal(buf_cstr(&b), "SELECT goto FROM alias WHERE "
                                      "address='x'' OR ''1''=''1''; DROP TABLE alias; "
                                      "--\\''@example.com'");
    /* between the template's two quotes every quote is doubled */
    p = strchr(buf_cstr(&b), '\'') + 1;
    while (*p && !(p[0] == '\'' && p[1] != '\'')) {
        if (*p == '\'') {
            quotes++;
            p++;
        }
        p++;
    }
    assert_string_equal(p, "'");
    assert_int_equal(quotes, 6);
    buf_free(&b);
}

/* test_sql_escape_refuses_nul */
static void test_sql_escape_refuses_nul(void **state)
{
    buf_t b = BUF_INIT;

    buf_puts(&b, "keep");
    assert_int_equal(table_expand_escape_sql_literal(&b, "a\0b", 3), -1);
    assert_int_equal(table_expand_escape_sql_literal(&b, "it's", 4), 0);
    assert_string_equal(buf_cstr(&b), "keepit''s");
    buf_free(&b);
}

/* refuse - an escape that refuses everything */
static int refuse(buf_t *out, const char *s, size_t len)
{
    buf_append(out, s, len);
    return -1;
}

/* test_refused_piece_leaves_out_unchanged */
static void test_refused_piece_leaves_out_unchanged(void **state)
{
    buf_t b = BUF_INIT;
    const char *reason = NULL;

    buf_puts(&b, "before,");
    assert_int_equal(table_expand("x=%s", "u@d", NULL, refuse, &b, &reason), TABLE_EXPAND_ERROR);
    assert_non_null(reason);
    assert_string_equal(buf_cstr(&b), "before,");
    assert_int_equal(table_expand("x=%s", "u@d", NULL, NULL, &b, &reason), TABLE_EXPAND_OK);
    assert_string_equal(buf_cstr(&b), "before,x=u@d");
    buf_free(&b);
}

/* test_domain_restriction */
static void test_domain_restriction(void **state)
{
    static const char *const domains[] = {"!private.example.com", "example.com", "Example.NET"};

    assert_int_equal(table_expand_domain_allowed(NULL, 0, "anything"), 1);
    assert_int_equal(table_expand_domain_allowed(domains, 3, "joe@EXAMPLE.com"), 1);
    assert_int_equal(table_expand_domain_allowed(domains, 3, "joe@example.net"), 1);
    assert_int_equal(table_expand_domain_allowed(domains, 3, "joe@private.example.com"), 0);
    assert_int_equal(table_expand_domain_allowed(domains, 3, "joe@sub.example.com"), 0);
    assert_int_equal(table_expand_domain_allowed(domains, 3, "joe@example.org"), 0);
    assert_int_equal(table_expand_domain_allowed(domains, 3, "example.com"), 0);
    assert_int_equal(table_expand_domain_allowed(domains, 3, "@example.com"), 0);
    assert_int_equal(table_expand_domain_allowed(domains, 3, "joe"), 0);
    assert_int_equal(table_expand_domain_allowed(domains, 3, "a@b@example.com"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_expansions_of_an_address),
        cmocka_unit_test(test_query_without_domain_is_skipped_only_when_needed),
        cmocka_unit_test(test_domain_labels_count_from_the_right),
        cmocka_unit_test(test_result_template_lower_from_result_upper_from_key),
        cmocka_unit_test(test_bad_templates_refused),
        cmocka_unit_test(test_ldap_filter_injection_stays_one_value),
        cmocka_unit_test(test_ldap_dn_value_escaped),
        cmocka_unit_test(test_sql_quote_cannot_leave_the_literal),
        cmocka_unit_test(test_sql_escape_refuses_nul),
        cmocka_unit_test(test_refused_piece_leaves_out_unchanged),
        cmocka_unit_test(test_domain_restriction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
