/*
 * test_smtpd_dns_cache - smtpd/dns_cache.c against a real dnsmasq: one query
 * per name while it is out, answers shared, failures not kept, forgotten
 * askers never called.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "dns.h"
#include "dns_cache.h"
#include "dnsmasq_fixture.h"

struct fx {
    struct dnsmasq_fixture dns;
    struct event_base *base;
    struct dns_ctx *ctx;
    struct smtpd_dns_cache *cache;
};

/* one asker's answer */
struct answer {
    int called;
    int status;
    char value[256];
};

static void on_answer(void *ctx, int status, const char *value)
{
    struct answer *a = ctx;

    a->called++;
    a->status = status;
    snprintf(a->value, sizeof(a->value), "%s", value);
}

static int fx_setup(void **state)
{
    static const char *const records[] = {"--host-record=5.0.0.127.bl.test,127.0.0.2",
                                          "--local=/test/", NULL};
    struct fx *f = calloc(1, sizeof(*f));
    char server[64];
    char *servers[2] = {server, NULL};
    buf_t err = BUF_INIT;

    assert_int_equal(dnsmasq_fixture_start(&f->dns, records), 0);
    snprintf(server, sizeof(server), "127.0.0.1:%d", f->dns.port);
    f->base = event_base_new();
    f->ctx = dns_create(f->base, servers, 1, &err);
    assert_non_null(f->ctx);
    f->cache = smtpd_dns_cache_new(f->ctx);
    buf_free(&err);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;

    smtpd_dns_cache_free(f->cache);
    dns_free(f->ctx);
    event_base_free(f->base);
    dnsmasq_fixture_stop(&f->dns);
    free(f);
    return 0;
}

/* run the loop until every answer in v arrived (or 5 s) */
static void wait_all(struct fx *f, struct answer *v, size_t n)
{
    for (int i = 0; i < 500; i++) {
        size_t done = 0;
        for (size_t k = 0; k < n; k++)
            done += v[k].called > 0;
        if (done == n)
            return;
        event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        struct timeval tv = {0, 10000};
        event_base_loopexit(f->base, &tv);
        event_base_dispatch(f->base);
    }
}

static void test_askers_share_one_query_and_the_answer_is_kept(void **state)
{
    struct fx *f = *state;
    struct answer a[3];
    struct smtpd_dns_waiter *w[3];
    int status;
    const char *value;

    memset(a, 0, sizeof(a));
    for (int i = 0; i < 2; i++)
        assert_int_equal(smtpd_dns_cache_ask(f->cache, POLICY_NEED_A, "A:5.0.0.127.bl.test",
                                             "5.0.0.127.bl.test", on_answer, &a[i], &status, &value,
                                             &w[i]),
                         0);
    wait_all(f, a, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(a[i].called, 1);
        assert_int_equal(a[i].status, 0);
        assert_string_equal(a[i].value, "127.0.0.2");
    }
    /* the third asker is answered from the cache, without a callback */
    assert_int_equal(smtpd_dns_cache_ask(f->cache, POLICY_NEED_A, "A:5.0.0.127.bl.test",
                                         "5.0.0.127.bl.test", on_answer, &a[2], &status, &value,
                                         &w[2]),
                     1);
    assert_int_equal(status, 0);
    assert_string_equal(value, "127.0.0.2");
    assert_int_equal(a[2].called, 0);
}

static void test_not_found_is_kept_and_forgotten_askers_are_silent(void **state)
{
    struct fx *f = *state;
    struct answer a[2];
    struct smtpd_dns_waiter *w[2];
    int status;
    const char *value;

    memset(a, 0, sizeof(a));
    for (int i = 0; i < 2; i++)
        assert_int_equal(smtpd_dns_cache_ask(f->cache, POLICY_NEED_A, "A:6.0.0.127.bl.test",
                                             "6.0.0.127.bl.test", on_answer, &a[i], &status, &value,
                                             &w[i]),
                         0);
    smtpd_dns_cache_forget(w[0]);
    wait_all(f, &a[1], 1);
    assert_int_equal(a[0].called, 0);
    assert_int_equal(a[1].called, 1);
    assert_int_equal(a[1].status, 1);
    assert_int_equal(smtpd_dns_cache_ask(f->cache, POLICY_NEED_A, "A:6.0.0.127.bl.test",
                                         "6.0.0.127.bl.test", on_answer, &a[0], &status, &value,
                                         &w[0]),
                     1);
    assert_int_equal(status, 1);
}

static void test_failure_is_not_kept(void **state)
{
    struct fx *f = *state;
    struct dns_ctx *dead;
    struct smtpd_dns_cache *c;
    char server[64];
    char *servers[2] = {server, NULL};
    buf_t err = BUF_INIT;
    struct answer a;
    struct smtpd_dns_waiter *w;
    int status;
    const char *value;

    snprintf(server, sizeof(server), "127.0.0.1:%d", f->dns.silent_port);
    dead = dns_create(f->base, servers, 1, &err);
    assert_non_null(dead);
    c = smtpd_dns_cache_new(dead);
    memset(&a, 0, sizeof(a));
    assert_int_equal(smtpd_dns_cache_ask(c, POLICY_NEED_A, "A:x.bl.test", "x.bl.test", on_answer,
                                         &a, &status, &value, &w),
                     0);
    wait_all(f, &a, 1);
    assert_int_equal(a.called, 1);
    assert_int_equal(a.status, -1);
    memset(&a, 0, sizeof(a));
    /* asked again: a new query, not a cached failure */
    assert_int_equal(smtpd_dns_cache_ask(c, POLICY_NEED_A, "A:x.bl.test", "x.bl.test", on_answer,
                                         &a, &status, &value, &w),
                     0);
    smtpd_dns_cache_free(c); /* with the query out: no callback */
    dns_free(dead);
    assert_int_equal(a.called, 0);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_askers_share_one_query_and_the_answer_is_kept,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_not_found_is_kept_and_forgotten_askers_are_silent,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_failure_is_not_kept, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
