/*
 * test_qmgr_etrn_index - unit tests for qmgr's per-domain index of the
 * deferred queue (qmgr/etrn_index.c): a domain finds its messages and only
 * them, case is ignored, "@domain" takes the subdomains but not a name that
 * merely ends the same, a forgotten message leaves every domain, a message
 * is listed once however many of its domains match, and the tables keep
 * working as they grow.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "etrn_index.h"

/* find - the IDs found, sorted and joined by spaces, into out */
static size_t find(struct etrn_index *x, const char *domain, int subdomains, char *out, size_t n)
{
    buf_t ids = BUF_INIT;
    const char *v[64];
    size_t count = qmgr_etrn_index_find(x, domain, subdomains, &ids), k = 0;

    for (size_t off = 0; off < ids.len && k < 64; off += strlen(ids.data + off) + 1)
        v[k++] = ids.data + off;
    assert_int_equal(k, count);
    for (size_t i = 1; i < k; i++) /* insertion sort: a handful */
        for (size_t j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
            const char *t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    out[0] = '\0';
    for (size_t i = 0; i < k; i++)
        snprintf(out + strlen(out), n - strlen(out), "%s%s", i ? " " : "", v[i]);
    buf_free(&ids);
    return count;
}

/* test_domain_finds_its_messages_only */
static void test_domain_finds_its_messages_only(void **state)
{
    struct etrn_index *x = qmgr_etrn_index_new();
    char out[256];

    (void)state;
    qmgr_etrn_index_add(x, "d.test", "A1");
    qmgr_etrn_index_add(x, "D.Test", "A2"); /* case is ignored */
    qmgr_etrn_index_add(x, "e.test", "B1");
    qmgr_etrn_index_add(x, "d.test", "A1"); /* again: no change */
    assert_int_equal(find(x, "d.TEST", 0, out, sizeof(out)), 2);
    assert_string_equal(out, "A1 A2");
    assert_int_equal(find(x, "e.test", 0, out, sizeof(out)), 1);
    assert_string_equal(out, "B1");
    assert_int_equal(find(x, "f.test", 0, out, sizeof(out)), 0);
    assert_int_equal(find(x, "test", 0, out, sizeof(out)), 0); /* not without '@' */
    qmgr_etrn_index_free(x);
}

/* test_subdomains_match_below_a_dot_only */
static void test_subdomains_match_below_a_dot_only(void **state)
{
    struct etrn_index *x = qmgr_etrn_index_new();
    char out[256];

    (void)state;
    qmgr_etrn_index_add(x, "example.org", "M1");
    qmgr_etrn_index_add(x, "mx.example.org", "M2");
    qmgr_etrn_index_add(x, "a.b.example.org", "M3");
    qmgr_etrn_index_add(x, "badexample.org", "M4");
    qmgr_etrn_index_add(x, "example.org.evil", "M5");
    assert_int_equal(find(x, "example.org", 1, out, sizeof(out)), 3);
    assert_string_equal(out, "M1 M2 M3");
    assert_int_equal(find(x, "b.example.org", 1, out, sizeof(out)), 1);
    assert_string_equal(out, "M3");
    qmgr_etrn_index_free(x);
}

/* test_message_with_several_domains_is_listed_once_and_forgotten_everywhere */
static void test_message_with_several_domains_is_listed_once_and_forgotten_everywhere(void **state)
{
    struct etrn_index *x = qmgr_etrn_index_new();
    size_t domains, messages;
    char out[256];

    (void)state;
    qmgr_etrn_index_add(x, "a.example", "Q1");
    qmgr_etrn_index_add(x, "b.example", "Q1");
    qmgr_etrn_index_add(x, "b.example", "Q2");
    assert_int_equal(find(x, "example", 1, out, sizeof(out)), 2);
    assert_string_equal(out, "Q1 Q2");
    qmgr_etrn_index_counts(x, &domains, &messages);
    assert_int_equal(domains, 2);
    assert_int_equal(messages, 2);
    qmgr_etrn_index_forget(x, "Q1");
    assert_int_equal(find(x, "a.example", 0, out, sizeof(out)), 0);
    assert_int_equal(find(x, "b.example", 0, out, sizeof(out)), 1);
    assert_string_equal(out, "Q2");
    qmgr_etrn_index_counts(x, &domains, &messages);
    assert_int_equal(domains, 1); /* a.example had nothing left */
    assert_int_equal(messages, 1);
    qmgr_etrn_index_forget(x, "Q1"); /* unknown now: nothing happens */
    qmgr_etrn_index_forget(x, "Q2");
    qmgr_etrn_index_counts(x, &domains, &messages);
    assert_int_equal(domains + messages, 0);
    qmgr_etrn_index_free(x);
}

/* test_many_messages_and_domains_survive_growth */
static void test_many_messages_and_domains_survive_growth(void **state)
{
    struct etrn_index *x = qmgr_etrn_index_new();
    size_t domains, messages;
    char id[32], domain[64], out[256];
    buf_t ids = BUF_INIT;

    (void)state;
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "ID%d", i);
        snprintf(domain, sizeof(domain), "d%d.example", i % 1000);
        qmgr_etrn_index_add(x, domain, id);
        qmgr_etrn_index_add(x, "all.example", id);
    }
    qmgr_etrn_index_counts(x, &domains, &messages);
    assert_int_equal(domains, 1001);
    assert_int_equal(messages, 5000);
    assert_int_equal(find(x, "d7.example", 0, out, sizeof(out)), 5);
    assert_string_equal(out, "ID1007 ID2007 ID3007 ID4007 ID7");
    assert_int_equal(qmgr_etrn_index_find(x, "example", 1, &ids), 5000);
    for (int i = 0; i < 5000; i += 2) {
        snprintf(id, sizeof(id), "ID%d", i);
        qmgr_etrn_index_forget(x, id);
    }
    assert_int_equal(find(x, "d7.example", 0, out, sizeof(out)), 5);
    assert_int_equal(find(x, "d8.example", 0, out, sizeof(out)), 0);
    qmgr_etrn_index_counts(x, &domains, &messages);
    assert_int_equal(domains, 501);
    assert_int_equal(messages, 2500);
    buf_free(&ids);
    qmgr_etrn_index_free(x); /* what is left: ASan checks nothing leaks */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domain_finds_its_messages_only),
        cmocka_unit_test(test_subdomains_match_below_a_dot_only),
        cmocka_unit_test(test_message_with_several_domains_is_listed_once_and_forgotten_everywhere),
        cmocka_unit_test(test_many_messages_and_domains_survive_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
