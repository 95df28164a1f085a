/*
 * test_policy - unit tests for lib/policy: access table values (Postfix
 * access(5) and sendmail's access file), reply templates, the key orders
 * of lookups, the per-session answer cache, and the evaluation of
 * restriction lists through the public API (policy_open + policy_check)
 * with tables written into a temp directory and outside answers given by
 * hand with policy_cache_put.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "policy.h"
#include "policy_impl.h"
#include "route.h"
#include "table.h"

/* ---- policy_access_parse */

struct parse_case {
    const char *value;
    int rc;
    enum policy_action action;
    const char *code;
    const char *dsn;
    const char *text;
};

/* parse_expect - one value parses as the case says */
static void parse_expect(const struct parse_case *c)
{
    struct policy_access_value v;
    buf_t err = BUF_INIT;
    int rc;

    policy_access_value_init(&v);
    rc = policy_access_parse(c->value, &v, &err);
    if (rc != c->rc)
        fail_msg("\"%s\": rc %d, expected %d (%s)", c->value, rc, c->rc, buf_cstr(&err));
    if (rc == 0) {
        if (v.action != c->action)
            fail_msg("\"%s\": action %d, expected %d", c->value, v.action, c->action);
        if (strcmp(v.code, c->code) != 0 || strcmp(v.dsn, c->dsn) != 0 ||
            strcmp(buf_cstr(&v.text), c->text) != 0)
            fail_msg("\"%s\": [%s] [%s] [%s], expected [%s] [%s] [%s]", c->value, v.code, v.dsn,
                     buf_cstr(&v.text), c->code, c->dsn, c->text);
    } else if (err.len == 0) {
        fail_msg("\"%s\": refused without a message", c->value);
    }
    policy_access_value_free(&v);
    buf_free(&err);
}

static void test_access_parse_postfix_values(void **state)
{
    static const struct parse_case cases[] = {
        {"OK", 0, POLICY_ACT_OK, "", "", ""},
        {"12345", 0, POLICY_ACT_OK, "", "", ""},
        {"550", 0, POLICY_ACT_OK, "", "", ""}, /* all digits: OK, as in Postfix */
        {"RELAY", 0, POLICY_ACT_RELAY, "", "", ""},
        {"REJECT", 0, POLICY_ACT_REJECT, "", "", ""},
        {"REJECT go away", 0, POLICY_ACT_REJECT, "", "", "go away"},
        {"DEFER try later", 0, POLICY_ACT_DEFER, "", "", "try later"},
        {"DEFER_IF_PERMIT Greylisted", 0, POLICY_ACT_DEFER_IF_PERMIT, "", "", "Greylisted"},
        {"DEFER_IF_REJECT maybe", 0, POLICY_ACT_DEFER_IF_REJECT, "", "", "maybe"},
        {"550 text", 0, POLICY_ACT_REJECT, "550", "", "text"},
        {"450 4.7.1 text", 0, POLICY_ACT_DEFER, "450", "4.7.1", "text"},
        {"554 5.7.1 Go away now", 0, POLICY_ACT_REJECT, "554", "5.7.1", "Go away now"},
        {"450 5.7.1 class follows", 0, POLICY_ACT_DEFER, "450", "4.7.1", "class follows"},
        {"550 4.7 not a dsn", 0, POLICY_ACT_REJECT, "550", "", "4.7 not a dsn"},
        {"550 5.1.1234 long", 0, POLICY_ACT_REJECT, "550", "", "5.1.1234 long"},
        {"550\t5.1.1\tx", 0, POLICY_ACT_REJECT, "550", "5.1.1", "x"},
        {"551 5.7.1", 0, POLICY_ACT_REJECT, "551", "5.7.1", ""},
        {"DISCARD", 0, POLICY_ACT_DISCARD, "", "", ""},
        {"DISCARD spam", 0, POLICY_ACT_DISCARD, "", "", "spam"},
        {"HOLD", 0, POLICY_ACT_HOLD, "", "", ""},
        {"HOLD look at it", 0, POLICY_ACT_HOLD, "", "", "look at it"},
        {"PREPEND X-Test: yes", 0, POLICY_ACT_PREPEND, "", "", "X-Test: yes"},
        {"PREPEND nocolon", -1, 0, "", "", ""},
        {"PREPEND", -1, 0, "", "", ""},
        {"REDIRECT a@b", 0, POLICY_ACT_REDIRECT, "", "", "a@b"},
        {"REDIRECT", -1, 0, "", "", ""},
        {"REDIRECT   ", -1, 0, "", "", ""},
        {"WARN look here", 0, POLICY_ACT_WARN, "", "", "look here"},
        {"DUNNO", 0, POLICY_ACT_DUNNO, "", "", ""},
        {"reject_unknown_client_hostname", 0, POLICY_ACT_RESTRICTION, "", "",
         "reject_unknown_client_hostname"},
        {"permit_mynetworks", 0, POLICY_ACT_RESTRICTION, "", "", "permit_mynetworks"},
        {"  REJECT", 0, POLICY_ACT_REJECT, "", "", ""},
        {"REJECT\tspaced", 0, POLICY_ACT_REJECT, "", "", "spaced"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        parse_expect(&cases[i]);
}

static void test_access_parse_sendmail_values(void **state)
{
    static const struct parse_case cases[] = {
        {"ERROR:\"550 Custom refusal text\"", 0, POLICY_ACT_REJECT, "550", "5.0.0",
         "Custom refusal text"},
        {"ERROR:5.7.1:550 Go away", 0, POLICY_ACT_REJECT, "550", "5.7.1", "Go away"},
        {"ERROR:4.7.0:451 later", 0, POLICY_ACT_DEFER, "451", "4.7.0", "later"},
        {"ERROR:550 plain", 0, POLICY_ACT_REJECT, "550", "5.0.0", "plain"},
        {"ERROR:", -1, 0, "", "", ""},
        {"QUARANTINE:reason here", 0, POLICY_ACT_HOLD, "", "", "reason here"},
        {"SKIP", 0, POLICY_ACT_DUNNO, "", "", ""},
        {"FRIEND", 0, POLICY_ACT_FRIEND, "", "", ""},
        {"HATER", 0, POLICY_ACT_HATER, "", "", ""},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        parse_expect(&cases[i]);
}

static void test_access_parse_keywords_ignore_case(void **state)
{
    static const struct parse_case cases[] = {
        {"ok", 0, POLICY_ACT_OK, "", "", ""},
        {"Relay", 0, POLICY_ACT_RELAY, "", "", ""},
        {"reject some text", 0, POLICY_ACT_REJECT, "", "", "some text"},
        {"dunno", 0, POLICY_ACT_DUNNO, "", "", ""},
        {"error:5.7.1:550 x", 0, POLICY_ACT_REJECT, "550", "5.7.1", "x"},
        {"Quarantine:why", 0, POLICY_ACT_HOLD, "", "", "why"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        parse_expect(&cases[i]);
}

static void test_access_parse_refuses_garbage(void **state)
{
    static const struct parse_case cases[] = {
        {"", -1, 0, "", "", ""},         {"   ", -1, 0, "", "", ""},
        {"garbage!", -1, 0, "", "", ""}, {"Foo", -1, 0, "", "", ""},
        {"OK extra", -1, 0, "", "", ""}, {"RELAY now", -1, 0, "", "", ""},
        {"DUNNO x", -1, 0, "", "", ""},  {"OKAY", -1, 0, "", "", ""},
        {"reject-x", -1, 0, "", "", ""}, {"650 text", -1, 0, "", "", ""},
        {"55 text", -1, 0, "", "", ""},  {"5500 text", -1, 0, "", "", ""},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        parse_expect(&cases[i]);
}

/* ---- policy_expand_reply */

/* expand - the expansion of t with the test's variables */
static void expand_expect(const char *t, const char *want)
{
    static const char *const vars[] = {"client_address", "127.0.0.5",  "client_addr",
                                       "127.0.0.5",      "rbl_reason", "listed",
                                       "empty",          "",           NULL};
    buf_t out = BUF_INIT;

    policy_expand_reply(t, vars, &out);
    if (strcmp(buf_cstr(&out), want) != 0)
        fail_msg("\"%s\" -> \"%s\", expected \"%s\"", t, buf_cstr(&out), want);
    buf_free(&out);
}

static void test_expand_reply_forms(void **state)
{
    (void)state;
    expand_expect("client $client_address here", "client 127.0.0.5 here");
    expand_expect("[${client_addr}]", "[127.0.0.5]");
    expand_expect("[$&{client_addr}]", "[127.0.0.5]");
    expand_expect("x${rbl_reason?; $rbl_reason}", "x; listed");
    expand_expect("x${nosuch?; $rbl_reason}", "x");
    expand_expect("x${empty?; set}", "x");
    expand_expect("${nosuch:default}", "default");
    expand_expect("${empty:default}", "default");
    expand_expect("${rbl_reason:default}", "");
    expand_expect("cost $$5", "cost $5");
    expand_expect("a $nosuch b ${nosuch} c", "a  b  c");
    expand_expect("open ${client_addr", "open ${client_addr");
    expand_expect("end $", "end $");
    expand_expect("$client_address.x", "127.0.0.5.x");
    expand_expect("", "");
}

static void test_expand_reply_without_vars(void **state)
{
    buf_t out = BUF_INIT;

    (void)state;
    policy_expand_reply("a $b ${c:d} ${e?f}", NULL, &out);
    assert_string_equal(buf_cstr(&out), "a  d ");
    buf_free(&out);
}

/* ---- key orders */

/* keys_expect - k is exactly the "|"-joined want */
static void keys_expect(struct policy_keys *k, const char *want)
{
    buf_t got = BUF_INIT;

    for (size_t i = 0; i < k->count; i++)
        buf_printf(&got, "%s%s", i ? "|" : "", k->v[i]);
    if (strcmp(buf_cstr(&got), want) != 0)
        fail_msg("keys \"%s\", expected \"%s\"", buf_cstr(&got), want);
    buf_free(&got);
    policy_keys_free(k);
}

static void test_keys_address_order(void **state)
{
    struct policy_keys k = {NULL, 0};

    (void)state;
    policy_keys_address("User+Ext@Sub.Dom.TLD", "+", &k);
    keys_expect(&k,
                "user+ext@sub.dom.tld|user@sub.dom.tld|sub.dom.tld|dom.tld|tld|user+ext@|user@");
    policy_keys_address("user@dom.tld", "+", &k);
    keys_expect(&k, "user@dom.tld|dom.tld|tld|user@");
    policy_keys_address("user-ext@dom.tld", "+-", &k);
    keys_expect(&k, "user-ext@dom.tld|user@dom.tld|dom.tld|tld|user-ext@|user@");
    policy_keys_address("joe", "+", &k);
    keys_expect(&k, "joe|joe@");
    policy_keys_address("<>", "+", &k);
    keys_expect(&k, "<>|<>@");
    policy_keys_address("@dom.tld", "+", &k);
    keys_expect(&k, "@dom.tld|dom.tld|tld|@");
}

static void test_keys_domain_and_ip(void **state)
{
    struct policy_keys k = {NULL, 0};

    (void)state;
    policy_keys_domain("Mail.Example.TEST.", &k);
    keys_expect(&k, "mail.example.test|example.test|test");
    policy_keys_domain("", &k);
    keys_expect(&k, "");
    policy_keys_ip("192.0.2.17", &k);
    keys_expect(&k, "192.0.2.17|192.0.2|192.0|192");
    policy_keys_ip("2001:db8:1:2::5", &k);
    keys_expect(&k, "2001:db8:1:2::5|2001:db8:1:2|2001:db8:1|2001:db8|2001");
    policy_keys_ip("unknown", &k);
    keys_expect(&k, "");
    policy_keys_ip("", &k);
    keys_expect(&k, "");
}

/* ---- the cache */

/* pending_count - requests in a list */
static size_t pending_count(const struct policy_need *n)
{
    size_t count = 0;

    for (; n != NULL; n = n->next)
        count++;
    return count;
}

/* needs_free - a taken list */
static void needs_free(struct policy_need *n)
{
    while (n != NULL) {
        struct policy_need *next = n->next;
        policy_need_free(n);
        n = next;
    }
}

static void test_cache_need_take_put(void **state)
{
    struct policy_cache *c = policy_cache_new();
    struct policy_need *n;
    const char *value;
    buf_t req = BUF_INIT;

    (void)state;
    assert_int_equal(policy_cache_get(c, "A:x", &value), 3);
    assert_string_equal(value, "");
    policy_cache_need(c, POLICY_NEED_A, "A:x", "x", NULL, 0);
    policy_cache_need(c, POLICY_NEED_A, "A:x", "x", NULL, 0); /* asked once */
    buf_puts(&req, "request=smtpd_access_policy\n\n");
    policy_cache_need(c, POLICY_NEED_SERVICE, "S:y", "inet:127.0.0.1:1", &req, 0);
    policy_cache_need(c, POLICY_NEED_SLEEP, "Z:z", "", NULL, 7);
    assert_int_equal(policy_cache_get(c, "A:x", &value), POLICY_CACHE_INFLIGHT);
    assert_int_equal(pending_count(policy_cache_pending(c)), 3);
    n = policy_cache_take(c);
    assert_null(policy_cache_pending(c));
    assert_int_equal(pending_count(n), 3);
    assert_int_equal(n->kind, POLICY_NEED_A);
    assert_string_equal(n->key, "A:x");
    assert_string_equal(n->target, "x");
    assert_int_equal(n->next->kind, POLICY_NEED_SERVICE);
    assert_string_equal(buf_cstr(&n->next->request), "request=smtpd_access_policy\n\n");
    assert_string_equal(n->next->target, "inet:127.0.0.1:1");
    assert_int_equal(n->next->next->seconds, 7);
    /* out for an answer: asking again adds nothing */
    policy_cache_need(c, POLICY_NEED_A, "A:x", "x", NULL, 0);
    assert_null(policy_cache_pending(c));
    policy_cache_put(c, "A:x", 0, "127.0.0.2 127.0.0.3");
    assert_int_equal(policy_cache_get(c, "A:x", &value), 0);
    assert_string_equal(value, "127.0.0.2 127.0.0.3");
    policy_cache_put(c, "S:y", -1, NULL);
    assert_int_equal(policy_cache_get(c, "S:y", &value), -1);
    assert_string_equal(value, "");
    /* an answered key is not asked again */
    policy_cache_need(c, POLICY_NEED_A, "A:x", "x", NULL, 0);
    assert_null(policy_cache_pending(c));
    needs_free(n);
    policy_need_free(NULL);
    buf_free(&req);
    policy_cache_free(c);
    policy_cache_free(NULL);
}

static void test_cache_put_drops_the_pending_request(void **state)
{
    struct policy_cache *c = policy_cache_new();
    const char *value;

    (void)state;
    policy_cache_need(c, POLICY_NEED_A, "A:1", "1", NULL, 0);
    policy_cache_need(c, POLICY_NEED_TXT, "T:2", "2", NULL, 0);
    policy_cache_need(c, POLICY_NEED_DOMAIN, "D:3", "3", NULL, 0);
    policy_cache_put(c, "T:2", 1, "");
    assert_int_equal(pending_count(policy_cache_pending(c)), 2);
    assert_string_equal(policy_cache_pending(c)->key, "A:1");
    assert_string_equal(policy_cache_pending(c)->next->key, "D:3");
    policy_cache_put(c, "D:3", 0, "");
    policy_cache_put(c, "A:1", 0, "127.0.0.2");
    assert_null(policy_cache_pending(c));
    assert_int_equal(policy_cache_get(c, "T:2", &value), 1);
    /* a later answer replaces the earlier one */
    policy_cache_put(c, "A:1", 1, "");
    assert_int_equal(policy_cache_get(c, "A:1", &value), 1);
    assert_string_equal(value, "");
    policy_cache_free(c); /* frees what is still pending too */
    c = policy_cache_new();
    policy_cache_need(c, POLICY_NEED_A, "A:left", "left", NULL, 0);
    policy_cache_free(c);
}

static void test_cache_forgets_the_oldest_beyond_256(void **state)
{
    struct policy_cache *c = policy_cache_new();
    char key[32];
    const char *value;

    (void)state;
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "A:%d", i);
        policy_cache_put(c, key, 0, key);
    }
    for (int i = 0; i < 44; i++) {
        snprintf(key, sizeof(key), "A:%d", i);
        assert_int_equal(policy_cache_get(c, key, &value), 3);
    }
    for (int i = 44; i < 300; i++) {
        snprintf(key, sizeof(key), "A:%d", i);
        assert_int_equal(policy_cache_get(c, key, &value), 0);
        assert_string_equal(value, key);
    }
    policy_cache_free(c);
}

/* ---- evaluation */

struct fx {
    char dir[64];
    struct config *cfg;
    struct route *route;
    struct policy *p;
    struct policy_cache *c;
    struct policy_result r;
    struct sockaddr_in sin;
    struct policy_facts f;
    buf_t err;
    int line;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/tern-test-policy.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    log_init("test", LOG_TARGET_FILE, "/dev/null");
    f->cfg = config_new_defaults(f->dir);
    f->c = policy_cache_new();
    policy_result_init(&f->r);
    f->sin.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.5", &f->sin.sin_addr);
    f->f.addr = (const struct sockaddr *)&f->sin;
    f->f.ip = "127.0.0.5";
    f->f.name = "unknown";
    f->f.reverse_name = "unknown";
    f->f.name_status = 1;
    f->f.reverse_status = 1;
    f->f.listener = "smtpd";
    f->f.protocol = "ESMTP";
    f->f.helo = "client.test";
    f->f.sender = "s@sender.test";
    f->f.recipient = "hal@tern.test";
    f->f.echo = "<hal@tern.test>";
    f->f.size = -1;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    buf_t cmd = BUF_INIT;

    policy_close(f->p);
    route_close(f->route);
    config_free(f->cfg);
    policy_cache_free(f->c);
    policy_result_free(&f->r);
    buf_free(&f->err);
    buf_printf(&cmd, "rm -rf %s", f->dir);
    if (system(cmd.data) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    buf_free(&cmd);
    free(f);
    return 0;
}

/* fx_path - DIR/name into out */
static void fx_path(struct fx *f, const char *name, buf_t *out)
{
    buf_reset(out);
    buf_printf(out, "%s/%s", f->dir, name);
}

/* fx_file - write DIR/name */
static void fx_file(struct fx *f, const char *name, const char *text)
{
    buf_t path = BUF_INIT;
    FILE *fp;

    fx_path(f, name, &path);
    fp = fopen(path.data, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    buf_free(&path);
}

/* fx_set - name = value ("@D" is the directory), origin "tern.conf:N" */
static void fx_set(struct fx *f, const char *name, const char *value)
{
    buf_t v = BUF_INIT, origin = BUF_INIT, err = BUF_INIT;

    for (const char *p = value; *p; p++) {
        if (p[0] == '@' && p[1] == 'D') {
            buf_puts(&v, f->dir);
            p++;
        } else {
            buf_putc(&v, *p);
        }
    }
    buf_printf(&origin, "tern.conf:%d", ++f->line);
    if (config_set(f->cfg, name, buf_cstr(&v), buf_cstr(&origin), &err) < 0)
        fail_msg("config_set %s: %s", name, buf_cstr(&err));
    buf_free(&v);
    buf_free(&origin);
    buf_free(&err);
}

/* fx_base - the site every evaluation test shares */
static void fx_base(struct fx *f)
{
    fx_set(f, "myhostname", "mx.tern.test");
    fx_set(f, "mydomain", "tern.test");
    fx_set(f, "mydestination", "tern.test, mx.tern.test");
    fx_set(f, "alias_maps", "");
    fx_set(f, "local_recipient_maps", "");
    fx_set(f, "accept_unresolvable_domains", "yes");
}

/* fx_try_open - route and policy; -1 with f->err */
static int fx_try_open(struct fx *f)
{
    buf_reset(&f->err);
    f->route = route_open(f->cfg, &f->err);
    if (f->route == NULL)
        fail_msg("route_open: %s", buf_cstr(&f->err));
    f->p = policy_open(f->cfg, f->route, &f->err);
    return f->p != NULL ? 0 : -1;
}

static void fx_open(struct fx *f)
{
    if (fx_try_open(f) < 0)
        fail_msg("policy_open: %s", buf_cstr(&f->err));
}

/* fx_check - evaluate stage with f's facts */
static enum policy_verdict fx_check(struct fx *f, enum policy_stage stage)
{
    return policy_check(f->p, stage, &f->f, f->c, &f->r);
}

/* fx_expect - stage gives verdict with reply (NULL: any) */
static void fx_expect(struct fx *f, enum policy_stage stage, enum policy_verdict verdict,
                      const char *reply)
{
    enum policy_verdict v = fx_check(f, stage);

    if (v != verdict)
        fail_msg("verdict %d, expected %d (reply \"%s\")", v, verdict, buf_cstr(&f->r.reply));
    assert_int_equal(f->r.verdict, verdict);
    if (reply != NULL && strcmp(buf_cstr(&f->r.reply), reply) != 0)
        fail_msg("reply \"%s\", expected \"%s\"", buf_cstr(&f->r.reply), reply);
}

/* fx_need - the one pending request is kind for target; its key */
static const char *fx_need(struct fx *f, enum policy_need_kind kind, const char *target)
{
    struct policy_need *n = policy_cache_pending(f->c);

    assert_non_null(n);
    assert_null(n->next);
    assert_int_equal(n->kind, kind);
    assert_string_equal(n->target, target);
    return n->key;
}

/* fx_answer - answer the one pending request */
static void fx_answer(struct fx *f, enum policy_need_kind kind, const char *target, int status,
                      const char *value)
{
    buf_t key = BUF_INIT;

    buf_set(&key, fx_need(f, kind, target));
    policy_cache_put(f->c, buf_cstr(&key), status, value);
    assert_null(policy_cache_pending(f->c));
    buf_free(&key);
}

static void test_open_refuses_unknown_restriction_with_origin(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_set(f, "smtpd_recipient_restrictions", "permit_mynetworks, bogus_word");
    assert_int_equal(fx_try_open(f), -1);
    assert_string_equal(buf_cstr(&f->err),
                        "tern.conf:7: smtpd_recipient_restrictions: unknown restriction "
                        "'bogus_word'");
}

static void test_open_refuses_rbl_without_zone(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_set(f, "smtpd_client_restrictions", "reject_rbl_client");
    assert_int_equal(fx_try_open(f), -1);
    assert_string_equal(buf_cstr(&f->err), "tern.conf:7: smtpd_client_restrictions: "
                                           "'reject_rbl_client' needs an argument");
}

static void test_open_refuses_bad_arguments(void **state)
{
    struct fx *f = *state;
    static const char *const bad[][2] = {
        {"reject_rbl_client bl.test=127.0.0.300", "bad answer filter '127.0.0.300'"},
        {"reject_rbl_client bl.test=127.0.0.[11..2]", "bad answer filter"},
        {"reject_rbl_client bl.test=127.0.0.[2;x]", "bad answer filter"},
        {"reject_rbl_client nodots", "'nodots' is not a DNS zone"},
        {"reject_rbl_client =127.0.0.2", "'' is not a DNS zone"},
        {"check_policy_service localhost", "expected inet:host:port"},
        {"sleep 2h", "expected a time up to 1h"},
        {"check_client_access nosuchtype:/x", "check_client_access nosuchtype:/x"},
        {"permit_mynetworks, warn_if_reject", "warn_if_reject must be followed"},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct policy *p;
        struct config *cfg = config_new_defaults(f->dir);
        buf_reset(&f->err);
        assert_int_equal(
            config_set(cfg, "smtpd_client_restrictions", bad[i][0], "x.conf:3", &f->err), 0);
        p = policy_open(cfg, NULL, &f->err);
        if (p != NULL || strstr(buf_cstr(&f->err), bad[i][1]) == NULL ||
            strncmp(buf_cstr(&f->err), "x.conf:3: smtpd_client_restrictions: ", 37) != 0)
            fail_msg("\"%s\": \"%s\"", bad[i][0], buf_cstr(&f->err));
        config_free(cfg);
    }
}

static void test_open_refuses_bad_spam_mode(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_set(f, "access_spam_mode", "neutral");
    assert_int_equal(fx_try_open(f), -1);
    assert_string_equal(buf_cstr(&f->err),
                        "tern.conf:7: access_spam_mode = neutral: expected friend or hater");
}

static void test_client_access_reject_delayed_to_rcpt(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_file(f, "clients", "127.0.0.0/24 REJECT\n");
    fx_set(f, "smtpd_client_restrictions", "check_client_access cidr:@D/clients");
    fx_open(f);
    assert_int_equal(policy_delay_reject(f->p), 1);
    fx_expect(f, POLICY_CONNECT, POLICY_DUNNO, "");
    fx_expect(f, POLICY_RCPT, POLICY_REJECT,
              "554 5.7.1 <unknown[127.0.0.5]>: Client host rejected: Access denied");
    assert_string_equal(buf_cstr(&f->r.log), "check_client_access");
}

static void test_client_access_reject_at_connect_without_delay(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_file(f, "clients", "127.0.0.0/24 REJECT\n");
    fx_set(f, "smtpd_client_restrictions", "check_client_access cidr:@D/clients");
    fx_set(f, "smtpd_delay_reject", "no");
    fx_open(f);
    assert_int_equal(policy_delay_reject(f->p), 0);
    f->f.helo = f->f.sender = f->f.recipient = f->f.echo = NULL;
    fx_expect(f, POLICY_CONNECT, POLICY_REJECT,
              "554 5.7.1 <unknown[127.0.0.5]>: Client host rejected: Access denied");
    f->f.ip = "127.0.1.5";
    fx_expect(f, POLICY_CONNECT, POLICY_DUNNO, "");
}

/* a client with a confirmed name is still matched by address: Postfix
 * looks up the name, then the address (a pattern table sees each once) */
static void test_client_access_cidr_matches_a_named_client(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_file(f, "clients", "127.0.0.0/24 REJECT\n");
    fx_file(f, "names", "/^mail\\.client\\.example$/ DUNNO\n/^127\\.0\\.0\\.6$/ REJECT\n");
    fx_set(f, "smtpd_client_restrictions",
           "check_client_access cidr:@D/clients, check_client_access regexp:@D/names");
    fx_open(f);
    f->f.name = "mail.client.example";
    f->f.name_status = 0;
    fx_expect(f, POLICY_RCPT, POLICY_REJECT,
              "554 5.7.1 <mail.client.example[127.0.0.5]>: Client host rejected: Access denied");
    assert_string_equal(buf_cstr(&f->r.log), "check_client_access");
    /* the regexp's DUNNO for the name ends that table's lookup */
    f->f.ip = "127.0.0.6";
    f->f.name = "mail.client.example";
    fx_expect(f, POLICY_RCPT, POLICY_REJECT, NULL);
    f->f.ip = "127.0.1.6";
    f->f.name = "other.example";
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
}

/* the name's entries come before the address's: a found DUNNO ends the lookup */
static void test_client_access_name_before_address(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_file(f, "clients", "client.example OK\n127.0.0.5 REJECT\n");
    fx_set(f, "smtpd_client_restrictions", "check_client_access texthash:@D/clients, reject");
    fx_open(f);
    f->f.name = "mail.client.example";
    fx_expect(f, POLICY_RCPT, POLICY_REJECT, NULL); /* the name is not confirmed */
    assert_string_equal(buf_cstr(&f->r.reply), "554 5.7.1 <mail.client.example[127.0.0.5]>: "
                                               "Client host rejected: Access denied");
    assert_string_equal(buf_cstr(&f->r.log), "check_client_access");
    f->f.name_status = 0;
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
}

/* DEFER_IF_PERMIT defers only an evaluation that would accept;
 * DEFER_IF_REJECT turns only a later reject into a deferral */
static void test_defer_if_permit_and_if_reject(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_file(f, "senders",
            "grey.test DEFER_IF_PERMIT Greylisted\nsoft.test DEFER_IF_REJECT maybe\n");
    fx_file(f, "rcpts", "bad@tern.test REJECT no\n");
    fx_set(f, "smtpd_sender_restrictions", "check_sender_access texthash:@D/senders");
    fx_set(f, "smtpd_recipient_restrictions", "check_recipient_access texthash:@D/rcpts");
    fx_open(f);
    f->f.sender = "a@grey.test";
    f->f.recipient = "hal@tern.test";
    fx_expect(f, POLICY_RCPT, POLICY_DEFER,
              "450 4.7.1 <a@grey.test>: Sender address rejected: Greylisted");
    f->f.recipient = "bad@tern.test"; /* a later reject wins over DEFER_IF_PERMIT */
    fx_expect(f, POLICY_RCPT, POLICY_REJECT,
              "554 5.7.1 <bad@tern.test>: Recipient address rejected: no");
    f->f.sender = "a@soft.test"; /* the reject becomes a deferral */
    fx_expect(f, POLICY_RCPT, POLICY_DEFER,
              "450 4.7.1 <a@soft.test>: Sender address rejected: maybe");
    f->f.recipient = "hal@tern.test"; /* nothing rejects: accepted */
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
}

/* permit_mx_backup (sendmail's relay_based_on_MX): a domain whose MX list
 * names this host may be relayed to */
static void test_permit_mx_backup(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_set(f, "smtpd_relay_restrictions",
           "permit_mynetworks, permit_mx_backup, "
           "reject_unauth_destination");
    fx_open(f);
    f->f.recipient = "u@backup.test";
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_MX, "backup.test", 0, "primary.example mx.tern.test");
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    assert_int_equal(f->r.relay, 1);
    f->f.recipient = "u@elsewhere.test"; /* its MX hosts are not this host */
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_MX, "elsewhere.test", 0, "mx.elsewhere.test");
    fx_expect(f, POLICY_RCPT, POLICY_REJECT, "554 5.7.1 <u@elsewhere.test>: Relay access denied");
}

static void test_access_values_in_postfix_lists(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_file(f, "senders",
            "hold.test HOLD\nquarantine.test QUARANTINE:look\ndiscard.test DISCARD\n"
            "prepend.test PREPEND X-Test: yes\nredirect.test REDIRECT other@tern.test\n"
            "warn.test WARN careful\ncode.test 450 4.7.1 later please\n"
            "bare.test 551 go away\ndefer.test DEFER\nrestr.test reject_unknown_client_hostname\n"
            "arg.test check_client_access\nbad.test NONSENSE value\nok.test OK\n");
    fx_set(f, "smtpd_sender_restrictions", "check_sender_access texthash:@D/senders");
    fx_set(f, "smtpd_recipient_restrictions", "reject");
    fx_open(f);
    f->f.sender = "a@hold.test";
    fx_expect(f, POLICY_RCPT, POLICY_REJECT, NULL); /* HOLD decides nothing */
    assert_int_equal(f->r.hold, 1);
    assert_string_equal(buf_cstr(&f->r.hold_reason), "hold.test");
    f->f.sender = "a@prepend.test";
    fx_expect(f, POLICY_RCPT, POLICY_REJECT, NULL);
    assert_string_equal(buf_cstr(&f->r.prepend), "X-Test: yes\n");
    f->f.sender = "a@redirect.test";
    fx_expect(f, POLICY_RCPT, POLICY_REJECT, NULL);
    assert_string_equal(buf_cstr(&f->r.redirect), "other@tern.test");
    f->f.sender = "a@warn.test";
    fx_expect(f, POLICY_RCPT, POLICY_REJECT, NULL);
    assert_string_equal(buf_cstr(&f->r.warnings), "warn\twarn.test: careful\n");
    f->f.sender = "a@code.test";
    fx_expect(f, POLICY_RCPT, POLICY_DEFER,
              "450 4.7.1 <a@code.test>: Sender address rejected: later please");
    f->f.sender = "a@bare.test";
    fx_expect(f, POLICY_RCPT, POLICY_REJECT,
              "551 5.7.1 <a@bare.test>: Sender address rejected: go away");
    f->f.sender = "a@defer.test";
    fx_expect(f, POLICY_RCPT, POLICY_DEFER,
              "450 4.7.1 <a@defer.test>: Sender address rejected: Access denied");
    f->f.sender = "a@restr.test"; /* name_status 1: the restriction defers */
    fx_expect(f, POLICY_RCPT, POLICY_DEFER,
              "450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.5]");
    f->f.sender = "a@arg.test";
    fx_expect(f, POLICY_RCPT, POLICY_DEFER,
              "451 4.3.0 Temporary system failure. Please try again later.");
    f->f.sender = "a@bad.test";
    fx_expect(f, POLICY_RCPT, POLICY_DEFER,
              "451 4.3.0 Temporary system failure. Please try again later.");
    f->f.sender = "a@ok.test"; /* OK ends the sender list; the recipient list still runs */
    fx_expect(f, POLICY_RCPT, POLICY_REJECT,
              "554 5.7.1 <hal@tern.test>: Recipient address rejected: Access denied");
    f->f.sender = "a@discard.test";
    fx_expect(f, POLICY_RCPT, POLICY_REJECT, NULL);
    assert_int_equal(f->r.discard, 1);
}

/* the result of one evaluation holds that evaluation only: a stage run
 * again after POLICY_WAIT does not repeat its headers and warnings */
static void test_result_is_fresh_after_wait(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_file(f, "clients", "127.0.0.5 PREPEND X-Seen: yes\n");
    fx_file(f, "senders", "sender.test WARN careful\n");
    fx_set(f, "smtpd_client_restrictions",
           "check_client_access texthash:@D/clients, reject_rbl_client bl.test");
    fx_set(f, "smtpd_sender_restrictions", "check_sender_access texthash:@D/senders");
    fx_open(f);
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_A, "5.0.0.127.bl.test", 1, "");
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    assert_string_equal(buf_cstr(&f->r.prepend), "X-Seen: yes\n");
    assert_string_equal(buf_cstr(&f->r.warnings), "warn\tsender.test: careful\n");
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    assert_string_equal(buf_cstr(&f->r.prepend), "X-Seen: yes\n");
    assert_string_equal(buf_cstr(&f->r.warnings), "warn\tsender.test: careful\n");
}

static void test_rbl_listed_asks_a_then_txt(void **state)
{
    struct fx *f = *state;
    struct policy_need *n;

    fx_base(f);
    fx_set(f, "smtpd_client_restrictions", "reject_rbl_client bl.test");
    fx_open(f);
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_need(f, POLICY_NEED_A, "5.0.0.127.bl.test");
    /* asked again before the answer: the request is not repeated */
    n = policy_cache_take(f->c);
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    assert_null(policy_cache_pending(f->c));
    policy_cache_put(f->c, n->key, 0, "127.0.0.2");
    policy_need_free(n);
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_TXT, "5.0.0.127.bl.test", 0, "listed");
    fx_expect(f, POLICY_RCPT, POLICY_REJECT,
              "554 5.7.1 Service unavailable; Client host [127.0.0.5] blocked using bl.test; "
              "listed");
    assert_string_equal(buf_cstr(&f->r.log), "reject_rbl_client bl.test");
    assert_null(policy_cache_pending(f->c));
}

/* a TXT record cannot add reply lines: control bytes become '?' */
static void test_rbl_txt_is_one_printable_line(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_set(f, "smtpd_client_restrictions", "reject_rbl_client bl.test");
    fx_open(f);
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_A, "5.0.0.127.bl.test", 0, "127.0.0.2");
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_TXT, "5.0.0.127.bl.test", 0, "bad\r\n250 ok");
    fx_expect(f, POLICY_RCPT, POLICY_REJECT,
              "554 5.7.1 Service unavailable; Client host [127.0.0.5] blocked using bl.test; "
              "bad??250 ok");
}

/* reject_rhsbl_reverse_client looks up the PTR name, verified or not */
static void test_rhsbl_reverse_client_uses_the_ptr_name(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_set(f, "smtpd_client_restrictions", "reject_rhsbl_reverse_client rhs.test");
    fx_open(f);
    f->f.reverse_name = "liar.test";
    f->f.reverse_status = 0;
    f->f.name_status = 1; /* not forward-confirmed */
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_A, "liar.test.rhs.test", 0, "127.0.0.2");
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_TXT, "liar.test.rhs.test", 1, "");
    fx_expect(f, POLICY_RCPT, POLICY_REJECT,
              "554 5.7.1 Service unavailable; Client host [liar.test] blocked using rhs.test");
}

static void test_rbl_without_txt_and_with_reply_maps(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_file(f, "rbl",
            "bl.test 450 Listed ${client_addr} at $rbl_domain${rbl_reason?: $rbl_reason}\n");
    fx_set(f, "smtpd_client_restrictions", "reject_rbl_client bl.test, reject_rbl_client b2.test");
    fx_set(f, "rbl_reply_maps", "texthash:@D/rbl");
    fx_open(f);
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_A, "5.0.0.127.bl.test", 1, "");
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_A, "5.0.0.127.b2.test", 0, "127.0.0.2");
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_TXT, "5.0.0.127.b2.test", 1, "");
    fx_expect(f, POLICY_RCPT, POLICY_REJECT,
              "554 5.7.1 Service unavailable; Client host [127.0.0.5] blocked using b2.test");
    policy_cache_put(f->c, "A:5.0.0.127.bl.test", 0, "127.0.0.3");
    policy_cache_put(f->c, "T:5.0.0.127.bl.test", 0, "why");
    fx_expect(f, POLICY_RCPT, POLICY_DEFER, "450 4.7.1 Listed 127.0.0.5 at bl.test: why");
}

static void test_rbl_not_listed_then_relay_decides(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_set(f, "smtpd_client_restrictions", "reject_rbl_client bl.test");
    fx_open(f);
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_A, "5.0.0.127.bl.test", 1, "");
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    assert_int_equal(f->r.relay, 0);
    f->f.recipient = "x@far.test";
    fx_expect(f, POLICY_RCPT, POLICY_REJECT, "554 5.7.1 <x@far.test>: Relay access denied");
    assert_string_equal(buf_cstr(&f->r.log), "reject_unauth_destination");
    f->f.in_mynetworks = 1; /* permit_mynetworks in the default relay list */
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    assert_int_equal(f->r.relay, 1);
}

static void test_rbl_dns_failure_passes_unless_tempfail_zone(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_set(f, "smtpd_client_restrictions", "reject_rbl_client bl.test, reject_rbl_client t.test");
    fx_set(f, "rbl_tempfail_zones", "T.test");
    fx_open(f);
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_A, "5.0.0.127.bl.test", -1, "timeout");
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_A, "5.0.0.127.t.test", -1, "timeout");
    fx_expect(f, POLICY_RCPT, POLICY_DEFER,
              "451 4.7.1 Temporary lookup failure of 127.0.0.5 at "
              "t.test");
}

static void test_rbl_filter_selects_answers(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_set(f, "smtpd_client_restrictions",
           "reject_rbl_client one.test=127.0.0.2, reject_rbl_client range.test=127.0.0.[2..11], "
           "reject_rbl_client set.test=127.0.0.[4;9]");
    fx_open(f);
    policy_cache_put(f->c, "A:5.0.0.127.one.test", 0, "127.0.0.4");
    policy_cache_put(f->c, "A:5.0.0.127.range.test", 0, "127.0.0.12 127.0.1.5");
    policy_cache_put(f->c, "A:5.0.0.127.set.test", 0, "127.0.0.5 127.0.0.10");
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    assert_null(policy_cache_pending(f->c));
    policy_cache_put(f->c, "A:5.0.0.127.set.test", 0, "127.0.0.5 127.0.0.9");
    policy_cache_put(f->c, "T:5.0.0.127.set.test", 1, "");
    fx_expect(f, POLICY_RCPT, POLICY_REJECT,
              "554 5.7.1 Service unavailable; Client host [127.0.0.5] blocked using set.test");
    policy_cache_put(f->c, "A:5.0.0.127.range.test", 0, "127.0.0.1 127.0.0.11");
    policy_cache_put(f->c, "T:5.0.0.127.range.test", 1, "");
    fx_expect(f, POLICY_RCPT, POLICY_REJECT,
              "554 5.7.1 Service unavailable; Client host [127.0.0.5] blocked using range.test");
}

static void test_dnswl_before_rbl_permits(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_set(f, "smtpd_client_restrictions",
           "permit_dnswl_client wl.test, reject_rbl_client bl.test");
    fx_open(f);
    assert_int_equal(policy_prefetch(f->p, &f->f, f->c), 1);
    assert_int_equal(pending_count(policy_cache_pending(f->c)), 2);
    needs_free(policy_cache_take(f->c));
    policy_cache_put(f->c, "A:5.0.0.127.wl.test", 0, "127.0.5.0");
    policy_cache_put(f->c, "A:5.0.0.127.bl.test", 0, "127.0.0.2");
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    assert_null(policy_cache_pending(f->c)); /* no TXT question: bl.test never ran */
}

static void test_rbl_ipv6_query_name(void **state)
{
    struct fx *f = *state;
    struct sockaddr_in6 sin6;

    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
    fx_base(f);
    fx_set(f, "smtpd_client_restrictions", "reject_rbl_client bl.test");
    fx_open(f);
    f->f.addr = (const struct sockaddr *)&sin6;
    f->f.ip = "2001:db8::1";
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_need(f, POLICY_NEED_A,
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test");
}

static void test_rhsbl_sender_and_helo(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_set(f, "smtpd_sender_restrictions", "reject_rhsbl_sender dbl.test");
    fx_set(f, "smtpd_helo_restrictions", "reject_rhsbl_helo dbl.test");
    fx_open(f);
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_A, "client.test.dbl.test", 1, "");
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_A, "sender.test.dbl.test", 0, "127.0.1.2");
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_TXT, "sender.test.dbl.test", 1, "");
    fx_expect(f, POLICY_RCPT, POLICY_REJECT,
              "554 5.7.1 Service unavailable; Sender address [s@sender.test] blocked using "
              "dbl.test");
}

/* the sendmail access file of the tests below */
static void fx_sendmail(struct fx *f)
{
    fx_base(f);
    fx_file(f, "access",
            "From:foo.biz REJECT\n"
            "Spam:abuse@tern.test FRIEND\n"
            "Spam:hater@tern.test HATER\n"
            "Connect:127.0.0.9 RELAY\n"
            "To:far.test RELAY\n"
            "From:custom.test ERROR:\"550 Custom refusal text\"\n"
            "From:coded.test ERROR:5.7.1:550 Go away\n"
            "From:later.test ERROR:4.7.0:451 later\n"
            "To:blocked@tern.test REJECT\n"
            "From:<> REJECT\n"
            "From:joe OK\n"
            "Connect:127.0.0.7 REJECT\n"
            "GreetPause:127.0.0.5 2500\n"
            "GreetPause:127.0.0 500\n"
            "GreetPause:127.0.1.1 soon\n");
    fx_set(f, "access_maps", "texthash:@D/access");
}

static void test_sendmail_from_reject_echoes_the_recipient(void **state)
{
    struct fx *f = *state;

    fx_sendmail(f);
    fx_open(f);
    f->f.sender = "spam@foo.biz";
    f->f.echo = "hal@tern.test";
    fx_expect(f, POLICY_RCPT, POLICY_REJECT, "550 5.7.1 hal@tern.test... Access denied");
    assert_string_equal(buf_cstr(&f->r.log), "access from:foo.biz");
    f->f.sender = "spam@sub.foo.biz";
    fx_expect(f, POLICY_RCPT, POLICY_REJECT, "550 5.7.1 hal@tern.test... Access denied");
}

static void test_sendmail_spam_friend_and_hater(void **state)
{
    struct fx *f = *state;

    fx_sendmail(f);
    fx_open(f);
    f->f.sender = "spam@foo.biz";
    f->f.recipient = "abuse@tern.test";
    f->f.echo = "<abuse@tern.test>";
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    f->f.recipient = "hater@tern.test";
    fx_expect(f, POLICY_RCPT, POLICY_REJECT, NULL);
}

static void test_sendmail_spam_hater_mode(void **state)
{
    struct fx *f = *state;

    fx_sendmail(f);
    fx_set(f, "access_spam_mode", "Hater");
    fx_open(f);
    f->f.sender = "spam@foo.biz";
    f->f.echo = "<hater@tern.test>";
    f->f.recipient = "hater@tern.test"; /* only HATERs get the checks */
    fx_expect(f, POLICY_RCPT, POLICY_REJECT, "550 5.7.1 <hater@tern.test>... Access denied");
    f->f.recipient = "hal@tern.test";
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    f->f.recipient = "abuse@tern.test";
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
}

static void test_sendmail_relay_entries(void **state)
{
    struct fx *f = *state;

    fx_sendmail(f);
    fx_open(f);
    f->f.recipient = "x@elsewhere.test";
    fx_expect(f, POLICY_RCPT, POLICY_REJECT, "554 5.7.1 <x@elsewhere.test>: Relay access denied");
    f->f.recipient = "x@far.test"; /* To:far.test RELAY: anyone may relay there */
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    assert_int_equal(f->r.relay, 1);
    f->f.recipient = "x@sub.far.test";
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    assert_int_equal(f->r.relay, 1);
    f->f.ip = "127.0.0.9"; /* Connect:127.0.0.9 RELAY: may relay anywhere */
    f->f.recipient = "x@elsewhere.test";
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    assert_int_equal(f->r.relay, 1);
    f->f.ip = "127.0.0.7"; /* Connect: REJECT */
    fx_expect(f, POLICY_RCPT, POLICY_REJECT, "550 5.7.1 <hal@tern.test>... Access denied");
}

static void test_sendmail_error_forms(void **state)
{
    struct fx *f = *state;

    fx_sendmail(f);
    fx_set(f, "smtpd_delay_reject", "no");
    fx_open(f);
    f->f.recipient = NULL;
    f->f.sender = "x@custom.test";
    f->f.echo = "<x@custom.test>";
    fx_expect(f, POLICY_MAIL, POLICY_REJECT, "550 5.0.0 <x@custom.test>... Custom refusal text");
    f->f.sender = "x@coded.test";
    f->f.echo = "<x@coded.test>";
    fx_expect(f, POLICY_MAIL, POLICY_REJECT, "550 5.7.1 <x@coded.test>... Go away");
    f->f.sender = "x@later.test";
    f->f.echo = "<x@later.test>";
    fx_expect(f, POLICY_MAIL, POLICY_DEFER, "451 4.7.0 <x@later.test>... later");
    f->f.ip = "127.0.0.7";
    fx_expect(f, POLICY_CONNECT, POLICY_REJECT, "550 5.7.1 <x@later.test>... Access denied");
}

static void test_sendmail_to_reject_ignored_without_blocklist(void **state)
{
    struct fx *f = *state;

    fx_sendmail(f);
    fx_open(f);
    f->f.recipient = "blocked@tern.test";
    f->f.echo = "<blocked@tern.test>";
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
}

static void test_sendmail_blocklist_recipients(void **state)
{
    struct fx *f = *state;

    fx_sendmail(f);
    fx_set(f, "access_blocklist_recipients", "yes");
    fx_open(f);
    f->f.recipient = "blocked@tern.test";
    f->f.echo = "<blocked@tern.test>";
    fx_expect(f, POLICY_RCPT, POLICY_REJECT,
              "550 5.2.1 <blocked@tern.test>... Mailbox disabled for this recipient");
    f->f.recipient = "hal@tern.test";
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
}

static void test_sendmail_null_and_unqualified_senders(void **state)
{
    struct fx *f = *state;

    fx_sendmail(f);
    fx_set(f, "accept_unresolvable_domains", "no");
    fx_open(f);
    f->f.sender = "";
    fx_expect(f, POLICY_RCPT, POLICY_REJECT, "550 5.7.1 <hal@tern.test>... Access denied");
    assert_string_equal(buf_cstr(&f->r.log), "access from:<>");
    f->f.sender = "joe"; /* From:joe OK; an unqualified name asks no DNS */
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    f->f.sender = "ann";
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    assert_null(policy_cache_pending(f->c));
}

static void test_unresolvable_sender_domain(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_set(f, "accept_unresolvable_domains", "no");
    fx_open(f);
    f->f.sender = "a@nx.test";
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_DOMAIN, "nx.test", 1, "");
    fx_expect(f, POLICY_RCPT, POLICY_REJECT,
              "553 5.1.8 a@nx.test... Domain of sender address a@nx.test does not exist");
    assert_string_equal(buf_cstr(&f->r.log), "accept_unresolvable_domains");
    f->f.sender = "b@fail.test";
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_DOMAIN, "fail.test", -1, "timeout");
    fx_expect(f, POLICY_RCPT, POLICY_DEFER,
              "451 4.1.8 Domain of sender address b@fail.test does not resolve");
    f->f.sender = "c@tern.test"; /* our own domain exists */
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    f->f.sender = "d@new.test";
    f->f.in_mynetworks = 1;
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    f->f.in_mynetworks = 0;
    f->f.sasl_username = "ann";
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    assert_null(policy_cache_pending(f->c));
}

static void test_unresolvable_sender_at_mail_without_delay(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_set(f, "accept_unresolvable_domains", "no");
    fx_set(f, "smtpd_delay_reject", "no");
    fx_open(f);
    f->f.sender = "a@nx.test";
    f->f.echo = "<a@nx.test>";
    f->f.recipient = NULL;
    fx_expect(f, POLICY_MAIL, POLICY_WAIT, "");
    fx_answer(f, POLICY_NEED_DOMAIN, "nx.test", 1, "");
    fx_expect(f, POLICY_MAIL, POLICY_REJECT,
              "553 5.1.8 <a@nx.test>... Domain of sender address a@nx.test does not exist");
}

/* fx_build_lmdb - DIR/name and the lmdb table built from it */
static void fx_build_lmdb(struct fx *f, const char *name, const char *text)
{
    buf_t path = BUF_INIT, err = BUF_INIT;

    fx_file(f, name, text);
    fx_path(f, name, &path);
    if (table_build("lmdb", buf_cstr(&path), 0, NULL, &err) != 0)
        fail_msg("table_build: %s", buf_cstr(&err));
    buf_free(&path);
    buf_free(&err);
}

/* fx_remove - remove DIR/name */
static void fx_remove(struct fx *f, const char *name)
{
    buf_t path = BUF_INIT;

    fx_path(f, name, &path);
    assert_int_equal(unlink(buf_cstr(&path)), 0);
    buf_free(&path);
}

static void test_failed_table_defers_never_permits(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_build_lmdb(f, "clients", "127.0.0.5 OK\n");
    fx_set(f, "smtpd_client_restrictions", "check_client_access lmdb:@D/clients, reject");
    fx_open(f);
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    fx_remove(f, "clients.lmdb");
    fx_expect(f, POLICY_RCPT, POLICY_DEFER,
              "451 4.3.0 Temporary system failure. Please try again later.");
    assert_string_equal(buf_cstr(&f->r.log), "check_client_access");
    f->f.name = "mail.client.test"; /* a failed name lookup does not go on to the address */
    f->f.name_status = 0;
    fx_expect(f, POLICY_RCPT, POLICY_DEFER,
              "451 4.3.0 Temporary system failure. Please try again later.");
}

static void test_failed_access_file_defers(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_build_lmdb(f, "access", "Connect:127.0.0.5 OK\nGreetPause:127.0.0.5 100\n");
    fx_set(f, "access_maps", "lmdb:@D/access");
    fx_open(f);
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    assert_int_equal(policy_greet_pause(f->p, &f->f, 0), 100);
    fx_remove(f, "access.lmdb");
    fx_expect(f, POLICY_RCPT, POLICY_DEFER,
              "451 4.3.0 Temporary system failure. Please try again later.");
    assert_int_equal(policy_greet_pause(f->p, &f->f, 700), 700); /* the default */
}

static void test_warn_if_reject_only_warns(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_set(f, "smtpd_client_restrictions", "warn_if_reject, reject, reject_unauth_pipelining");
    fx_open(f);
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    assert_string_equal(buf_cstr(&f->r.warnings), "reject_warning\t554 5.7.1 <unknown[127.0.0.5]>: "
                                                  "Client host rejected: Access denied\n");
    f->f.pipelined = 1; /* the next item is not a warning */
    fx_expect(f, POLICY_RCPT, POLICY_REJECT,
              "554 5.5.0 Error: improper use of SMTP command pipelining");
}

static void test_policy_service_request_and_answers(void **state)
{
    struct fx *f = *state;
    const struct policy_need *n;
    const char *req;

    fx_base(f);
    fx_set(f, "smtpd_recipient_restrictions", "check_policy_service inet:127.0.0.1:10023");
    fx_open(f);
    f->f.rcpt_count = 2;
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    n = policy_cache_pending(f->c);
    assert_non_null(n);
    assert_null(n->next);
    assert_int_equal(n->kind, POLICY_NEED_SERVICE);
    assert_string_equal(n->target, "inet:127.0.0.1:10023");
    req = buf_cstr(&n->request);
    assert_non_null(strstr(req, "request=smtpd_access_policy\n"));
    assert_non_null(strstr(req, "\nprotocol_state=RCPT\n"));
    assert_non_null(strstr(req, "\nclient_address=127.0.0.5\n"));
    assert_non_null(strstr(req, "\nrecipient=hal@tern.test\n"));
    assert_non_null(strstr(req, "\nsender=s@sender.test\n"));
    assert_non_null(strstr(req, "\nhelo_name=client.test\n"));
    assert_non_null(strstr(req, "\nrecipient_count=2\n"));
    assert_non_null(strstr(req, "\nsize=0\n"));
    assert_int_equal(strncmp(req, "request=", 8), 0);
    assert_true(n->request.len >= 2 && strcmp(req + n->request.len - 2, "\n\n") == 0);
    assert_null(strstr(req, "\n\n\n"));
    assert_true(strstr(req, "\n\n") == req + n->request.len - 2);
    policy_cache_put(f->c, n->key, 0, "DEFER_IF_PERMIT Greylisted");
    fx_expect(f, POLICY_RCPT, POLICY_DEFER,
              "450 4.7.1 <hal@tern.test>: Recipient address rejected: Greylisted");
    /* another recipient is another question */
    f->f.recipient = "ann@tern.test";
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    n = policy_cache_pending(f->c);
    assert_non_null(strstr(buf_cstr(&n->request), "\nrecipient=ann@tern.test\n"));
    policy_cache_put(f->c, n->key, -1, "connection refused");
    /* smtpd_policy_service_default_action acts like an answer (Postfix) */
    fx_expect(f, POLICY_RCPT, POLICY_DEFER,
              "451 4.3.5 <ann@tern.test>: Recipient address rejected: Server configuration "
              "problem");
    f->f.recipient = "bob@tern.test";
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    policy_cache_put(f->c, policy_cache_pending(f->c)->key, 0, "DUNNO");
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    f->f.recipient = "cy@tern.test";
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    policy_cache_put(f->c, policy_cache_pending(f->c)->key, 0, "what is this");
    fx_expect(f, POLICY_RCPT, POLICY_DEFER,
              "451 4.3.0 Temporary system failure. Please try again later.");
}

/* a service answer stored as "not found" is a failed service, not a
 * question to ask forever */
static void test_policy_service_not_found_answer_fails(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_set(f, "smtpd_recipient_restrictions", "check_policy_service unix:/nonexistent/policy");
    fx_open(f);
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    policy_cache_put(f->c, policy_cache_pending(f->c)->key, 1, "");
    fx_expect(f, POLICY_RCPT, POLICY_DEFER,
              "451 4.3.5 <hal@tern.test>: Recipient address rejected: Server configuration "
              "problem");
}

static void test_sleep_waits_once(void **state)
{
    struct fx *f = *state;
    const struct policy_need *n;

    fx_base(f);
    fx_set(f, "smtpd_recipient_restrictions", "sleep 2s, reject");
    fx_open(f);
    fx_expect(f, POLICY_RCPT, POLICY_WAIT, "");
    n = policy_cache_pending(f->c);
    assert_non_null(n);
    assert_int_equal(n->kind, POLICY_NEED_SLEEP);
    assert_int_equal(n->seconds, 2);
    policy_cache_put(f->c, n->key, 0, "");
    fx_expect(f, POLICY_RCPT, POLICY_REJECT,
              "554 5.7.1 <hal@tern.test>: Recipient address rejected: Access denied");
}

static void test_greet_pause_from_access_entries(void **state)
{
    struct fx *f = *state;

    fx_sendmail(f);
    fx_open(f);
    assert_int_equal(policy_greet_pause(f->p, &f->f, 3000), 2500);
    f->f.ip = "127.0.0.6";
    assert_int_equal(policy_greet_pause(f->p, &f->f, 3000), 500);
    f->f.ip = "10.0.0.1";
    assert_int_equal(policy_greet_pause(f->p, &f->f, 3000), 3000);
    f->f.ip = "127.0.1.1"; /* a bad value: the default */
    assert_int_equal(policy_greet_pause(f->p, &f->f, 3000), 3000);
    f->f.in_mynetworks = 1;
    assert_int_equal(policy_greet_pause(f->p, &f->f, 3000), 0);
}

static void test_helo_checks(void **state)
{
    struct fx *f = *state;

    fx_base(f);
    fx_set(f, "smtpd_helo_restrictions",
           "reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname");
    fx_set(f, "smtpd_delay_reject", "no");
    fx_open(f);
    f->f.helo = "bad_name!";
    fx_expect(f, POLICY_HELO, POLICY_REJECT,
              "501 5.5.2 <bad_name!>: Helo command rejected: "
              "Invalid name");
    f->f.helo = "localhost";
    fx_expect(f, POLICY_HELO, POLICY_REJECT,
              "504 5.5.2 <localhost>: Helo command rejected: need "
              "fully-qualified hostname");
    f->f.helo = "[127.0.0.1]";
    fx_expect(f, POLICY_HELO, POLICY_DUNNO, "");
    f->f.helo = "[300.0.0.1]";
    fx_expect(f, POLICY_HELO, POLICY_REJECT, NULL);
    f->f.helo = "mail.client.test";
    fx_expect(f, POLICY_HELO, POLICY_DUNNO, "");
}

struct trace_log {
    buf_t text;
};

static void trace_fn(const char *list, const char *item, const char *detail, void *ctx)
{
    struct trace_log *t = ctx;

    buf_printf(&t->text, "%s|%s|%s\n", list, item, detail);
}

static void test_trace_hears_each_item(void **state)
{
    struct fx *f = *state;
    struct trace_log t = {BUF_INIT};

    fx_base(f);
    fx_set(f, "smtpd_recipient_restrictions", "permit");
    fx_open(f);
    policy_set_trace(f->p, trace_fn, &t);
    fx_expect(f, POLICY_RCPT, POLICY_DUNNO, "");
    assert_non_null(strstr(buf_cstr(&t.text), "smtpd_recipient_restrictions|permit|permit\n"));
    buf_free(&t.text);
}

int main(void)
{
#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_access_parse_postfix_values),
        cmocka_unit_test(test_access_parse_sendmail_values),
        cmocka_unit_test(test_access_parse_keywords_ignore_case),
        cmocka_unit_test(test_access_parse_refuses_garbage),
        cmocka_unit_test(test_expand_reply_forms),
        cmocka_unit_test(test_expand_reply_without_vars),
        cmocka_unit_test(test_keys_address_order),
        cmocka_unit_test(test_keys_domain_and_ip),
        cmocka_unit_test(test_cache_need_take_put),
        cmocka_unit_test(test_cache_put_drops_the_pending_request),
        cmocka_unit_test(test_cache_forgets_the_oldest_beyond_256),
        FX(test_open_refuses_unknown_restriction_with_origin),
        FX(test_open_refuses_rbl_without_zone),
        FX(test_open_refuses_bad_arguments),
        FX(test_open_refuses_bad_spam_mode),
        FX(test_client_access_reject_delayed_to_rcpt),
        FX(test_client_access_reject_at_connect_without_delay),
        FX(test_client_access_cidr_matches_a_named_client),
        FX(test_client_access_name_before_address),
        FX(test_defer_if_permit_and_if_reject),
        FX(test_permit_mx_backup),
        FX(test_rbl_txt_is_one_printable_line),
        FX(test_rhsbl_reverse_client_uses_the_ptr_name),
        FX(test_access_values_in_postfix_lists),
        FX(test_result_is_fresh_after_wait),
        FX(test_rbl_listed_asks_a_then_txt),
        FX(test_rbl_without_txt_and_with_reply_maps),
        FX(test_rbl_not_listed_then_relay_decides),
        FX(test_rbl_dns_failure_passes_unless_tempfail_zone),
        FX(test_rbl_filter_selects_answers),
        FX(test_dnswl_before_rbl_permits),
        FX(test_rbl_ipv6_query_name),
        FX(test_rhsbl_sender_and_helo),
        FX(test_sendmail_from_reject_echoes_the_recipient),
        FX(test_sendmail_spam_friend_and_hater),
        FX(test_sendmail_spam_hater_mode),
        FX(test_sendmail_relay_entries),
        FX(test_sendmail_error_forms),
        FX(test_sendmail_to_reject_ignored_without_blocklist),
        FX(test_sendmail_blocklist_recipients),
        FX(test_sendmail_null_and_unqualified_senders),
        FX(test_unresolvable_sender_domain),
        FX(test_unresolvable_sender_at_mail_without_delay),
        FX(test_failed_table_defers_never_permits),
        FX(test_failed_access_file_defers),
        FX(test_warn_if_reject_only_warns),
        FX(test_policy_service_request_and_answers),
        FX(test_policy_service_not_found_answer_fails),
        FX(test_sleep_waits_once),
        FX(test_greet_pause_from_access_entries),
        FX(test_helo_checks),
        FX(test_trace_hears_each_item),
    };
#undef FX
    return cmocka_run_group_tests(tests, NULL, NULL);
}
