/*
 * test_proxymap_cache - tern-proxymap's answer cache (proxymap/proxymap_cache.c):
 * answers live for the TTL, temporary failures are never kept, the oldest
 * entry goes first when full, a TTL of 0 keeps nothing; and the hash table
 * under it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxymap_cache.h"

static void test_answers_live_for_the_ttl(void **state)
{
    struct proxymap_cache *c = proxymap_cache_new(60, 10);
    buf_t key = BUF_INIT, v = BUF_INIT;
    enum table_result st;

    proxymap_cache_key(&key, "ldap:/x.cf", 0, "joe");
    proxymap_cache_put(c, buf_cstr(&key), TABLE_FOUND, "val", 3, 1000);
    assert_int_equal(proxymap_cache_get(c, buf_cstr(&key), 1059, &st, &v), 1);
    assert_int_equal(st, TABLE_FOUND);
    assert_string_equal(buf_cstr(&v), "val");
    assert_int_equal(proxymap_cache_get(c, buf_cstr(&key), 1060, &st, &v), 0);
    assert_int_equal(proxymap_cache_count(c), 0);
    proxymap_cache_put(c, buf_cstr(&key), TABLE_NOTFOUND, NULL, 0, 1000);
    assert_int_equal(proxymap_cache_get(c, buf_cstr(&key), 1001, &st, &v), 1);
    assert_int_equal(st, TABLE_NOTFOUND);
    proxymap_cache_put(c, "other", TABLE_TEMPFAIL, NULL, 0, 1000);
    assert_int_equal(proxymap_cache_get(c, "other", 1001, &st, &v), 0);
    proxymap_cache_free(c);
    buf_free(&key);
    buf_free(&v);
}

static void test_flags_are_part_of_the_key(void **state)
{
    buf_t a = BUF_INIT, b = BUF_INIT;

    proxymap_cache_key(&a, "t:x", 0, "k");
    proxymap_cache_key(&b, "t:x", TABLE_CASE_SENSITIVE, "k");
    assert_string_not_equal(buf_cstr(&a), buf_cstr(&b));
    buf_free(&a);
    buf_free(&b);
}

static void test_the_oldest_goes_first_when_full(void **state)
{
    struct proxymap_cache *c = proxymap_cache_new(60, 3);
    buf_t v = BUF_INIT;
    enum table_result st;
    char key[16];

    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        proxymap_cache_put(c, key, TABLE_FOUND, key, strlen(key), 1000 + i);
    }
    assert_int_equal(proxymap_cache_count(c), 3);
    assert_int_equal(proxymap_cache_get(c, "k0", 1005, &st, &v), 0);
    assert_int_equal(proxymap_cache_get(c, "k1", 1005, &st, &v), 0);
    assert_int_equal(proxymap_cache_get(c, "k4", 1005, &st, &v), 1);
    assert_string_equal(buf_cstr(&v), "k4");
    proxymap_cache_put(c, "k2", TABLE_FOUND, "new", 3, 1006); /* replaced, now newest */
    proxymap_cache_put(c, "k5", TABLE_FOUND, "k5", 2, 1006);
    assert_int_equal(proxymap_cache_get(c, "k3", 1006, &st, &v), 0);
    assert_int_equal(proxymap_cache_get(c, "k2", 1006, &st, &v), 1);
    assert_string_equal(buf_cstr(&v), "new");
    proxymap_cache_free(c);
    buf_free(&v);
}

static void test_ttl_zero_keeps_nothing(void **state)
{
    struct proxymap_cache *c = proxymap_cache_new(0, 10);
    buf_t v = BUF_INIT;
    enum table_result st;

    proxymap_cache_put(c, "k", TABLE_FOUND, "v", 1, 1000);
    assert_int_equal(proxymap_cache_get(c, "k", 1000, &st, &v), 0);
    proxymap_cache_free(c);
    buf_free(&v);
}

static void test_map_grows_and_deletes(void **state)
{
    struct proxymap_map *m = proxymap_map_new();
    char key[16];
    static int values[1000];

    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        proxymap_map_put(m, key, &values[i]);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        assert_ptr_equal(proxymap_map_get(m, key), &values[i]);
    }
    assert_ptr_equal(proxymap_map_del(m, "key500"), &values[500]);
    assert_null(proxymap_map_get(m, "key500"));
    assert_null(proxymap_map_del(m, "key500"));
    proxymap_map_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_live_for_the_ttl),
        cmocka_unit_test(test_flags_are_part_of_the_key),
        cmocka_unit_test(test_the_oldest_goes_first_when_full),
        cmocka_unit_test(test_ttl_zero_keeps_nothing),
        cmocka_unit_test(test_map_grows_and_deletes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
