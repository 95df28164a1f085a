/*
 * test_smtp_tls - unit tests for smtp/smtp_tls.c and the EHLO keywords of
 * smtp/reply.c that TLS and AUTH depend on: the security levels, how
 * smtp_tls_policy_maps is searched (next hop as written, host, parent
 * domains) and what a malformed entry does (the mail is deferred, never sent
 * at a weaker level), and STARTTLS / AUTH / REQUIRETLS in an EHLO reply.
 * Handshakes, verification and DANE are proved end to end in
 * tests/integration/test_smtp_tls.py and test_smtp_dane.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "config.h"
#include "reply.h"
#include "smtp_tls.h"

static char test_dir[] = "/tmp/test_smtp_tls.XXXXXX";
static char map_path[256];

/* tls_with_map - a client context whose policy map holds text */
static struct smtp_tls *tls_with_map(const char *level, const char *text)
{
    struct config *cfg = config_new_defaults(test_dir);
    buf_t err = BUF_INIT, spec = BUF_INIT;
    struct smtp_tls *t = NULL;
    FILE *f = fopen(map_path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    buf_printf(&spec, "texthash:%s", map_path);
    assert_int_equal(config_set(cfg, "smtp_tls_security_level", level, "test", &err), 0);
    if (text[0])
        assert_int_equal(config_set(cfg, "smtp_tls_policy_maps", buf_cstr(&spec), "test", &err), 0);
    if (smtp_tls_open(cfg, &t, &err) < 0)
        fail_msg("smtp_tls_open: %s", buf_cstr(&err));
    config_free(cfg);
    buf_free(&err);
    buf_free(&spec);
    return t;
}

/* find_ok - the policy of nexthop/host, which must be found without error */
static struct smtp_tls_policy find_ok(struct smtp_tls *t, const char *nexthop, const char *host)
{
    struct smtp_tls_policy p;
    buf_t err = BUF_INIT;

    if (smtp_tls_policy_find(t, nexthop, host, &p, &err) < 0)
        fail_msg("policy of %s: %s", nexthop, buf_cstr(&err));
    buf_free(&err);
    return p;
}

static void test_smtp_tls_levels_parse_and_name(void **state)
{
    static const char *names[] = {"none",      "may",    "encrypt", "dane",
                                  "dane-only", "verify", "secure"};
    enum smtp_tls_level level;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        assert_int_equal(smtp_tls_level_parse(names[i], &level), 0);
        assert_string_equal(smtp_tls_level_name(level), names[i]);
    }
    assert_int_equal(smtp_tls_level_parse("VERIFY", &level), 0);
    assert_int_equal(level, SMTP_TLS_VERIFY);
    assert_int_equal(smtp_tls_level_parse("fingerprint", &level), -1);
    assert_int_equal(smtp_tls_level_parse("", &level), -1);
    /* the order the session relies on: stronger levels compare greater */
    assert_true(SMTP_TLS_MAY < SMTP_TLS_ENCRYPT && SMTP_TLS_ENCRYPT < SMTP_TLS_DANE);
    assert_true(SMTP_TLS_DANE_ONLY < SMTP_TLS_VERIFY && SMTP_TLS_VERIFY < SMTP_TLS_SECURE);
}

static void test_smtp_tls_unknown_default_level_is_a_config_error(void **state)
{
    struct config *cfg = config_new_defaults(test_dir);
    buf_t err = BUF_INIT;
    struct smtp_tls *t = NULL;

    assert_int_equal(config_set(cfg, "smtp_tls_security_level", "maybe", "test", &err), 0);
    assert_int_equal(smtp_tls_open(cfg, &t, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "smtp_tls_security_level = maybe"));
    assert_null(t);
    config_free(cfg);
    buf_free(&err);
}

static void test_smtp_tls_level_none_without_maps_needs_no_context(void **state)
{
    struct config *cfg = config_new_defaults(test_dir);
    buf_t err = BUF_INIT;
    struct smtp_tls *t = (struct smtp_tls *)1;
    struct smtp_tls_policy p;

    assert_int_equal(config_set(cfg, "smtp_tls_security_level", "none", "test", &err), 0);
    assert_int_equal(smtp_tls_open(cfg, &t, &err), 0);
    assert_null(t);
    assert_int_equal(smtp_tls_policy_find(NULL, "example.com", "example.com", &p, &err), 0);
    assert_int_equal(p.level, SMTP_TLS_NONE);
    config_free(cfg);
    buf_free(&err);
}

static void test_smtp_tls_default_level_without_entry(void **state)
{
    struct smtp_tls *t = tls_with_map("may", "other.test encrypt\n");
    struct smtp_tls_policy p = find_ok(t, "example.com", "example.com");

    assert_int_equal(p.level, SMTP_TLS_MAY);
    assert_false(p.from_map);
    assert_string_equal(p.match, "");
    smtp_tls_close(t);
}

static void test_smtp_tls_map_keys_in_order(void **state)
{
    struct smtp_tls *t = tls_with_map("may", "[relay.test]:587 secure match=relay.test\n"
                                             "relay.test encrypt\n"
                                             "example.com verify\n"
                                             ".example.com dane-only\n"
                                             ".com none\n");
    struct smtp_tls_policy p;

    p = find_ok(t, "[relay.test]:587", "relay.test"); /* the next hop as written first */
    assert_int_equal(p.level, SMTP_TLS_SECURE);
    assert_true(p.from_map);
    assert_string_equal(p.match, "relay.test");
    p = find_ok(t, "[relay.test]:25", "relay.test"); /* then the host */
    assert_int_equal(p.level, SMTP_TLS_ENCRYPT);
    p = find_ok(t, "example.com", "example.com");
    assert_int_equal(p.level, SMTP_TLS_VERIFY);
    p = find_ok(t, "mail.example.com", "mail.example.com"); /* a parent domain */
    assert_int_equal(p.level, SMTP_TLS_DANE_ONLY);
    p = find_ok(t, "a.b.example.com", "a.b.example.com"); /* the nearest parent */
    assert_int_equal(p.level, SMTP_TLS_DANE_ONLY);
    p = find_ok(t, "other.com", "other.com");
    assert_int_equal(p.level, SMTP_TLS_NONE);
    p = find_ok(t, "other.org", "other.org");
    assert_int_equal(p.level, SMTP_TLS_MAY);
    assert_false(p.from_map);
    smtp_tls_close(t);
}

static void test_smtp_tls_map_attributes(void **state)
{
    struct smtp_tls *t = tls_with_map(
        "may", "a.test secure match=.a.test:mx.b.test protocols=>=TLSv1.3 ciphers=HIGH\n");
    struct smtp_tls_policy p = find_ok(t, "a.test", "a.test");

    assert_int_equal(p.level, SMTP_TLS_SECURE);
    assert_string_equal(p.match, ".a.test:mx.b.test");
    assert_string_equal(p.protocols, ">=TLSv1.3");
    assert_string_equal(p.ciphers, "HIGH");
    smtp_tls_close(t);
}

/* malformed - the entry for x.test must make the lookup fail, naming it */
static void malformed(const char *entry, const char *says)
{
    struct smtp_tls *t = tls_with_map("may", entry);
    struct smtp_tls_policy p;
    buf_t err = BUF_INIT;

    assert_int_equal(smtp_tls_policy_find(t, "x.test", "x.test", &p, &err), -1);
    if (strstr(buf_cstr(&err), says) == NULL || strstr(buf_cstr(&err), "x.test") == NULL)
        fail_msg("\"%s\": %s", entry, buf_cstr(&err));
    buf_free(&err);
    smtp_tls_close(t);
}

static void test_smtp_tls_malformed_entries_fail_the_lookup(void **state)
{
    malformed("x.test sometimes\n", "unknown security level");
    malformed("x.test verify colour=blue\n", "unknown or bad attribute");
    malformed("x.test verify match=\n", "unknown or bad attribute");
    malformed("x.test verify matchhostname\n", "unknown or bad attribute");
}

static void test_smtp_ehlo_tls_and_auth_keywords(void **state)
{
    static const char *lines[] = {"250-mx.example.com Hello",
                                  "250-PIPELINING",
                                  "250-STARTTLS",
                                  "250-AUTH PLAIN login CRAM-MD5",
                                  "250-AUTH=LOGIN XOAUTH2",
                                  "250-REQUIRETLS",
                                  "250 SIZE 1000"};
    struct smtp_reply r;
    struct smtp_ehlo e;
    int rc = 0;

    smtp_reply_init(&r);
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        rc = smtp_reply_feed(&r, lines[i], strlen(lines[i]));
    assert_int_equal(rc, 1);
    smtp_ehlo_parse(&r, &e);
    assert_true(e.starttls);
    assert_true(e.requiretls);
    assert_true(e.pipelining);
    assert_string_equal(e.auth, "PLAIN LOGIN CRAM-MD5 XOAUTH2"); /* once each, upper case */
    assert_true(smtp_ehlo_has_auth(&e, "LOGIN"));
    assert_true(smtp_ehlo_has_auth(&e, "CRAM-MD5"));
    assert_false(smtp_ehlo_has_auth(&e, "CRAM"));
    assert_false(smtp_ehlo_has_auth(&e, "DIGEST-MD5"));
    smtp_reply_free(&r);
}

static void test_smtp_ehlo_without_extensions(void **state)
{
    struct smtp_reply r;
    struct smtp_ehlo e;

    smtp_reply_init(&r);
    assert_int_equal(smtp_reply_feed(&r, "250 mx.example.com", 18), 1);
    smtp_ehlo_parse(&r, &e);
    assert_false(e.starttls);
    assert_false(e.requiretls);
    assert_string_equal(e.auth, "");
    smtp_reply_free(&r);
}

static void test_smtp_ehlo_auth_list_is_bounded(void **state)
{
    struct smtp_reply r;
    struct smtp_ehlo e;
    buf_t line = BUF_INIT;

    buf_puts(&line, "250 AUTH");
    for (int i = 0; i < 200; i++)
        buf_printf(&line, " MECH%d", i);
    smtp_reply_init(&r);
    assert_int_equal(smtp_reply_feed(&r, "250-mx", 6), 0);
    assert_int_equal(smtp_reply_feed(&r, line.data, line.len), 1);
    smtp_ehlo_parse(&r, &e);
    assert_true(strlen(e.auth) < sizeof(e.auth));
    assert_true(smtp_ehlo_has_auth(&e, "MECH0"));
    assert_false(smtp_ehlo_has_auth(&e, "MECH199"));
    smtp_reply_free(&r);
    buf_free(&line);
}

static int setup(void **state)
{
    if (mkdtemp(test_dir) == NULL)
        return -1;
    snprintf(map_path, sizeof(map_path), "%s/tls_policy", test_dir);
    return 0;
}

static int teardown(void **state)
{
    unlink(map_path);
    rmdir(test_dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smtp_tls_levels_parse_and_name),
        cmocka_unit_test(test_smtp_tls_unknown_default_level_is_a_config_error),
        cmocka_unit_test(test_smtp_tls_level_none_without_maps_needs_no_context),
        cmocka_unit_test(test_smtp_tls_default_level_without_entry),
        cmocka_unit_test(test_smtp_tls_map_keys_in_order),
        cmocka_unit_test(test_smtp_tls_map_attributes),
        cmocka_unit_test(test_smtp_tls_malformed_entries_fail_the_lookup),
        cmocka_unit_test(test_smtp_ehlo_tls_and_auth_keywords),
        cmocka_unit_test(test_smtp_ehlo_without_extensions),
        cmocka_unit_test(test_smtp_ehlo_auth_list_is_bounded),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
