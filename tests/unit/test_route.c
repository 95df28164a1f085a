/*
 * test_route - unit tests for lib/route: address classes, transport_maps
 * key order and values, error texts, canonical maps, masquerading, virtual
 * alias expansion (recursion, loops, %n, error:), the RCPT verdict, and
 * the owners of a sender (smtpd_sender_login_maps).
 * Each test writes a tern.conf and texthash: tables into a temp directory.
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
#include "route.h"

struct fx {
    char dir[64];
    struct config *cfg;
    struct route *r;
    buf_t keys; /* "key=result;" of every probe, in order */
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/tern-test-route.XXXXXX");
    if (f == NULL || mkdtemp(f->dir) == NULL)
        return -1;
    log_init("test", LOG_TARGET_FILE, "/dev/null");
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    buf_t cmd = BUF_INIT;

    route_close(f->r);
    config_free(f->cfg);
    buf_free(&f->keys);
    buf_printf(&cmd, "rm -rf %s", f->dir);
    if (system(cmd.data) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    buf_free(&cmd);
    free(f);
    return 0;
}

/* fx_file - write DIR/name */
static void fx_file(struct fx *f, const char *name, const char *text)
{
    buf_t path = BUF_INIT;
    FILE *fp;

    buf_printf(&path, "%s/%s", f->dir, name);
    fp = fopen(path.data, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    buf_free(&path);
}

/* fx_probe - record every table probe as "key=found;" / "key=not found;" */
static void fx_probe(const struct route_event *ev, void *ctx)
{
    struct fx *f = ctx;

    if (ev->table)
        buf_printf(&f->keys, "%s %s=%s;", ev->step, ev->key, ev->result);
}

/* fx_open - tern.conf from the lines (printf-style: %1$s is the dir) */
static void fx_open(struct fx *f, const char *conf)
{
    buf_t text = BUF_INIT, err = BUF_INIT;

    buf_printf(&text,
               "myhostname = mx.example.test\nmydomain = example.test\n"
               "mydestination = mx.example.test, localhost\n"
               "queue_directory = %s\nalias_maps =\nlocal_recipient_maps =\n",
               f->dir);
    for (const char *p = conf; *p; p++) {
        if (p[0] == '@' && p[1] == 'D') { /* @D: the directory */
            buf_puts(&text, f->dir);
            p++;
        } else {
            buf_putc(&text, *p);
        }
    }
    fx_file(f, "tern.conf", text.data);
    if (config_load(f->dir, &f->cfg, &err) < 0)
        fail_msg("config: %s", err.data);
    f->r = route_open(f->cfg, &err);
    if (f->r == NULL)
        fail_msg("route_open: %s", err.data);
    route_set_trace(f->r, fx_probe, f);
    buf_free(&text);
    buf_free(&err);
}

/* fx_resolve - "transport nexthop" (or "TEMPFAIL") of addr */
static void fx_resolve(struct fx *f, const char *addr, buf_t *out)
{
    struct route_dest d;

    route_dest_init(&d);
    buf_reset(out);
    if (route_resolve(f->r, addr, 0, &d) < 0)
        buf_printf(out, "TEMPFAIL %s", buf_cstr(&d.reply.text));
    else if (d.reply.code[0])
        buf_printf(out, "%s %s %s %s", d.transport, d.reply.code, d.reply.dsn,
                   buf_cstr(&d.reply.text));
    else
        buf_printf(out, "%s %s", d.transport, buf_cstr(&d.nexthop));
    route_dest_free(&d);
}

static void test_route_classes_in_order(void **state)
{
    struct fx *f = *state;
    enum route_class cls;

    fx_file(f, "virtual", "u@virt.test x@far.test\nv@relay.test y@far.test\n");
    fx_open(f, "relay_domains = relay.test, 10.1.1\nvirtual_alias_maps = texthash:@D/virtual\n");
    assert_int_equal(route_class_of(f->r, "MX.example.test.", &cls), ROUTE_OK);
    assert_int_equal(cls, ROUTE_CLASS_LOCAL);
    assert_int_equal(route_class_of(f->r, "", &cls), ROUTE_OK);
    assert_int_equal(cls, ROUTE_CLASS_LOCAL);
    route_class_of(f->r, "sub.relay.test", &cls);
    assert_int_equal(cls, ROUTE_CLASS_RELAY);
    route_class_of(f->r, "relay.test", &cls); /* named in the virtual table too */
    assert_int_equal(cls, ROUTE_CLASS_RELAY);
    route_class_of(f->r, "virt.test", &cls);
    assert_int_equal(cls, ROUTE_CLASS_VIRTUAL);
    route_class_of(f->r, "far.test", &cls);
    assert_int_equal(cls, ROUTE_CLASS_DEFAULT);
}

static void test_route_international_domains_match_in_either_form(void **state)
{
    struct fx *f = *state;
    enum route_class cls;
    buf_t out = BUF_INIT;

    /* lists in U-label or A-label form; table keys in A-label form */
    fx_file(f, "transport", "xn--bcher-kva.test smtp:[192.0.2.1]\n");
    fx_open(f, "relay_domains = m\xc3\xbcnchen.test, xn--caf-dma.test\n"
               "transport_maps = texthash:@D/transport\n");
    route_class_of(f->r, "xn--mnchen-3ya.test", &cls);
    assert_int_equal(cls, ROUTE_CLASS_RELAY);
    route_class_of(f->r, "M\xc3\x9cNCHEN.test.", &cls); /* UTS #46 maps case */
    assert_int_equal(cls, ROUTE_CLASS_RELAY);
    route_class_of(f->r, "caf\xc3\xa9.test", &cls);
    assert_int_equal(cls, ROUTE_CLASS_RELAY);
    fx_resolve(f,
               "j\xc3\xb6s\xc3\xa9@b\xc3\xbc"
               "cher.test",
               &out);
    assert_string_equal(buf_cstr(&out), "smtp [192.0.2.1]");
    fx_resolve(f, "u@\xc3\xbc.example", &out); /* the DNS next hop: A-labels */
    assert_string_equal(buf_cstr(&out), "smtp xn--tda.example");
    buf_free(&out);
}

static void test_route_relay_domains_networks_are_clients(void **state)
{
    struct fx *f = *state;
    struct sockaddr_in in = {0};

    fx_open(f, "relay_domains = other.test, 10.1.1, 192.168.2.0/24\n");
    in.sin_family = AF_INET;
    inet_pton(AF_INET, "10.1.1.77", &in.sin_addr);
    assert_true(route_relay_client(f->r, (struct sockaddr *)&in));
    inet_pton(AF_INET, "10.1.2.1", &in.sin_addr);
    assert_false(route_relay_client(f->r, (struct sockaddr *)&in));
    inet_pton(AF_INET, "192.168.2.9", &in.sin_addr);
    assert_true(route_relay_client(f->r, (struct sockaddr *)&in));
}

static void test_route_mailertable_key_order(void **state)
{
    struct fx *f = *state;
    buf_t out = BUF_INIT;

    fx_file(f, "mt", ".example.org smtp:[sub]\n* relay:[default]\n");
    fx_open(f, "transport_maps = texthash:@D/mt\n");
    fx_resolve(f, "joe+x@a.b.example.org", &out);
    assert_string_equal(out.data, "smtp [sub]");
    assert_string_equal(f->keys.data, "transport_maps joe+x@a.b.example.org=not found;"
                                      "transport_maps joe@a.b.example.org=not found;"
                                      "transport_maps a.b.example.org=not found;"
                                      "transport_maps .b.example.org=not found;"
                                      "transport_maps .example.org=found;");
    buf_reset(&f->keys);
    fx_resolve(f, "u@far.test", &out);
    assert_string_equal(out.data, "smtp [default]");
    assert_non_null(strstr(f->keys.data, "transport_maps .=not found;transport_maps *=found;"));
    buf_free(&out);
}

static void test_route_mailertable_exact_domain_and_local_mail(void **state)
{
    struct fx *f = *state;
    buf_t out = BUF_INIT;

    fx_file(f, "mt",
            "example.org smtp:[exact]\n. smtp:[default]\nroot@mx.example.test lmtp:unix:/x\n");
    fx_open(f, "transport_maps = texthash:@D/mt\nrelayhost = [smart]:2525\n");
    fx_resolve(f, "u@example.org", &out);
    assert_string_equal(out.data, "smtp [exact]");
    fx_resolve(f, "u@sub.example.org", &out);
    assert_string_equal(out.data, "smtp [default]");
    /* the default entry routes other hosts only; an address entry may
     * route a local one */
    fx_resolve(f, "bob@mx.example.test", &out);
    assert_string_equal(out.data, "local mx.example.test");
    fx_resolve(f, "root@mx.example.test", &out);
    assert_string_equal(out.data, "lmtp unix:/x");
    buf_free(&out);
}

static void test_route_empty_transport_or_nexthop(void **state)
{
    struct fx *f = *state;
    buf_t out = BUF_INIT;

    fx_file(f, "mt", "a.test :[hop]\nb.test smtp:\nc.test :\n");
    fx_open(f, "transport_maps = texthash:@D/mt\nrelayhost = [smart]\n"
               "default_transport = esmtp\n");
    fx_resolve(f, "u@a.test", &out);
    assert_string_equal(out.data, "smtp [hop]");
    fx_resolve(f, "u@b.test", &out); /* the recipient domain, not relayhost */
    assert_string_equal(out.data, "smtp b.test");
    fx_resolve(f, "u@c.test", &out); /* the class default: relayhost */
    assert_string_equal(out.data, "smtp [smart]");
    buf_free(&out);
}

static void test_route_unknown_transport_is_a_temporary_failure(void **state)
{
    struct fx *f = *state;
    buf_t out = BUF_INIT;

    fx_file(f, "mt", "a.test uucp:host\n");
    fx_open(f, "transport_maps = texthash:@D/mt\n");
    fx_resolve(f, "u@a.test", &out);
    assert_string_equal(out.data, "TEMPFAIL unknown transport \"uucp\" in transport_maps");
    buf_free(&out);
}

static void test_route_error_texts(void **state)
{
    struct route_reply rp;
    struct {
        const char *in, *want;
    } cases[] = {
        {"5.1.1 no such user", "550 5.1.1 no such user"},
        {"5.7.1:550 no mail here", "550 5.7.1 no mail here"},
        {"5.7.0:553 go away", "553 5.7.0 go away"},
        {"550 go away", "550 5.0.0 go away"},
        {"nouser No such user here", "550 5.0.0 No such user here"},
        {"tempfail try later", "451 4.0.0 try later"},
        {"4.3.2 later", "451 4.3.2 later"},
        {"4.3.2:550 mixed", "451 4.3.2 mixed"},
        {"just text", "550 5.0.0 just text"},
        {"", "550 5.0.0 Address rejected"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_t got = BUF_INIT;
        route_reply_init(&rp);
        route_error_parse(cases[i].in, 'e', &rp);
        buf_printf(&got, "%s %s %s", rp.code, rp.dsn, rp.text.data);
        assert_string_equal(got.data, cases[i].want);
        route_reply_free(&rp);
        buf_free(&got);
    }
    route_reply_init(&rp);
    route_error_parse("5.1.1 permanent in a retry", 'r', &rp);
    assert_string_equal(rp.dsn, "4.0.0");
    route_reply_free(&rp);
}

/* fx_expand - "a,b,c" or "REJECT code dsn text" / "TEMPFAIL ..." */
static void fx_expand(struct fx *f, const char *addr, buf_t *out)
{
    struct route_expansion x;
    struct route_reply why;
    enum route_status st;

    route_expansion_init(&x);
    route_reply_init(&why);
    buf_reset(out);
    st = route_expand_recipient(f->r, addr, &x, &why);
    if (st != ROUTE_OK)
        buf_printf(out, "%s %s %s %s", st == ROUTE_REJECT ? "REJECT" : "TEMPFAIL", why.code,
                   why.dsn, why.text.data);
    for (size_t i = 0; st == ROUTE_OK && i < x.count; i++)
        buf_printf(out, "%s%s", i ? "," : "", x.v[i]);
    route_expansion_free(&x);
    route_reply_free(&why);
}

static void test_route_virtual_expansion(void **state)
{
    struct fx *f = *state;
    buf_t out = BUF_INIT;

    fx_file(f, "virtual",
            "a@v.test b@v.test, c@far.test\n"
            "b@v.test d@far.test\n"
            "self@v.test self@v.test, copy@far.test\n"
            "@catch.test %1@far.test\n"
            "@det.test %1%3@far.test\n"
            "joe+*@star.test star@far.test\n"
            "joe@star.test plain@far.test\n"
            "info@v.test root\n"
            "dup@v.test d@far.test, D@far.test, d@far.test\n");
    fx_open(f, "virtual_alias_maps = texthash:@D/virtual\n");
    fx_expand(f, "a@v.test", &out);
    assert_string_equal(out.data, "d@far.test,c@far.test");
    fx_expand(f, "self@v.test", &out);
    assert_string_equal(out.data, "self@v.test,copy@far.test");
    fx_expand(f, "zed+x@catch.test", &out);
    assert_string_equal(out.data, "zed@far.test");
    fx_expand(f, "zed+x@det.test", &out);
    assert_string_equal(out.data, "zed+x@far.test");
    fx_expand(f, "joe+news@star.test", &out);
    assert_string_equal(out.data, "star+news@far.test");
    fx_expand(f, "joe@star.test", &out);
    assert_string_equal(out.data, "plain@far.test");
    fx_expand(f, "info@v.test", &out); /* unqualified: @myorigin */
    assert_string_equal(out.data, "root@mx.example.test");
    fx_expand(f, "dup@v.test", &out);
    assert_string_equal(out.data, "d@far.test");
    fx_expand(f, "other@far.test", &out);
    assert_string_equal(out.data, "other@far.test");
    buf_free(&out);
}

static void test_route_virtual_loops_and_errors(void **state)
{
    struct fx *f = *state;
    buf_t out = BUF_INIT, table = BUF_INIT;

    buf_puts(&table, "a@loop.test b@loop.test\nb@loop.test c@loop.test\nc@loop.test "
                     "a@loop.test\nbad@v.test error:5.7.1:550 gone\n");
    for (int i = 0; i < 25; i++) /* a chain deeper than the limit */
        buf_printf(&table, "d%d@deep.test d%d@deep.test\n", i, i + 1);
    fx_file(f, "virtual", table.data);
    fx_open(f, "virtual_alias_maps = texthash:@D/virtual\n");
    fx_expand(f, "a@loop.test", &out);
    assert_string_equal(out.data, "TEMPFAIL 451 4.4.6 virtual alias loop");
    fx_expand(f, "bad@v.test", &out);
    assert_string_equal(out.data, "REJECT 550 5.7.1 gone");
    fx_expand(f, "d0@deep.test", &out);
    assert_string_equal(out.data, "TEMPFAIL 451 4.4.6 virtual alias nesting is too deep");
    fx_expand(f, "d10@deep.test", &out); /* 15 levels are fine */
    assert_string_equal(out.data, "d25@deep.test");
    buf_free(&out);
    buf_free(&table);
}

/* fx_sender - the envelope sender as cleanup writes it */
static void fx_sender(struct fx *f, const char *addr, buf_t *out)
{
    struct route_reply why;

    route_reply_init(&why);
    assert_int_equal(route_rewrite_sender(f->r, addr, out, &why), ROUTE_OK);
    route_reply_free(&why);
}

static void test_route_each_form_in_every_table_and_patterns_see_full_keys(void **state)
{
    struct fx *f = *state;
    buf_t out = BUF_INIT;

    fx_file(f, "re",
            "/^u@mx\\.example\\.test$/ regexp@x.test\n/^mx\\.example\\.test$/ dom@x.test\n");
    fx_open(f, "sender_canonical_maps = inline:{@mx.example.test=@first.test}, regexp:@D/re\n");
    /* the full key in every table before the @domain form in the first */
    fx_sender(f, "u@mx.example.test", &out);
    assert_string_equal(out.data, "regexp@x.test");
    /* a regexp table sees the full key only, never the shorter forms */
    fx_sender(f, "u+e@mx.example.test", &out);
    assert_string_equal(out.data, "u+e@first.test");
    buf_free(&out);
}

/* fx_logins - the owners route_sender_logins gives addr, or "-" / "TEMPFAIL" */
static void fx_logins(struct fx *f, const char *addr, buf_t *out)
{
    enum table_result res;

    buf_reset(out);
    res = route_sender_logins(f->r, addr, out);
    if (res != TABLE_FOUND)
        buf_set(out, res == TABLE_NOTFOUND ? "-" : "TEMPFAIL");
}

static void test_route_sender_logins_key_order(void **state)
{
    struct fx *f = *state;
    buf_t out = BUF_INIT;

    fx_file(f, "logins",
            "alice@example.org alice\n@example.org postmaster\nbob bob\n"
            "carol+list@mx.example.test carol\n");
    fx_open(f, "smtpd_sender_login_maps = texthash:@D/logins\n");
    fx_logins(f, "alice@example.org", &out);
    assert_string_equal(out.data, "alice");
    fx_logins(f, "alice+ext@example.org", &out); /* user@domain without the extension */
    assert_string_equal(out.data, "alice");
    fx_logins(f, "zed@example.org", &out); /* then @domain */
    assert_string_equal(out.data, "postmaster");
    fx_logins(f, "bob@mx.example.test", &out); /* a local domain: the user alone */
    assert_string_equal(out.data, "bob");
    fx_logins(f, "bob", &out); /* qualified with myorigin first */
    assert_string_equal(out.data, "bob");
    fx_logins(f, "bob@elsewhere.test", &out); /* not for other domains */
    assert_string_equal(out.data, "-");
    fx_logins(f, "carol+list@mx.example.test", &out);
    assert_string_equal(out.data, "carol");
    buf_free(&out);
}

static void test_route_masquerade(void **state)
{
    struct fx *f = *state;
    buf_t out = BUF_INIT;

    fx_open(f, "masquerade_domains = !keep.example.test, example.test\n"
               "masquerade_exceptions = root\n");
    fx_sender(f, "eve", &out);
    assert_string_equal(out.data, "eve@example.test");
    fx_sender(f, "eve@a.b.c.example.test", &out);
    assert_string_equal(out.data, "eve@example.test");
    fx_sender(f, "eve@example.test", &out);
    assert_string_equal(out.data, "eve@example.test");
    fx_sender(f, "eve@notexample.test", &out);
    assert_string_equal(out.data, "eve@notexample.test");
    fx_sender(f, "eve@x.keep.example.test", &out);
    assert_string_equal(out.data, "eve@x.keep.example.test");
    fx_sender(f, "root@mx.example.test", &out);
    assert_string_equal(out.data, "root@mx.example.test");
    fx_sender(f, "", &out);
    assert_string_equal(out.data, "");
    buf_free(&out);
}

static void test_route_canonical_domain_and_extension(void **state)
{
    struct fx *f = *state;
    buf_t out = BUF_INIT;
    struct route_reply why;

    fx_file(f, "canon", "@old.test @new.test\njoe@a.test joseph@b.test\nbob bobby@b.test\n");
    fx_open(f, "canonical_maps = texthash:@D/canon\ncanonical_classes = envelope_sender, "
               "header_recipient\n");
    fx_sender(f, "hal@old.test", &out);
    assert_string_equal(out.data, "hal@new.test");
    fx_sender(f, "joe+x@a.test", &out);
    assert_string_equal(out.data, "joseph+x@b.test");
    fx_sender(f, "bob@mx.example.test", &out); /* a bare user: local domains only */
    assert_string_equal(out.data, "bobby@b.test");
    fx_sender(f, "bob@far.test", &out);
    assert_string_equal(out.data, "bob@far.test");
    route_reply_init(&why);
    assert_int_equal(route_rewrite_header(f->r, ROUTE_HEADER_RECIPIENT, "x@old.test", &out, &why),
                     1);
    assert_string_equal(out.data, "x@new.test");
    /* header_sender is not in canonical_classes: only qualified */
    assert_int_equal(route_rewrite_header(f->r, ROUTE_HEADER_SENDER, "x@old.test", &out, &why), 0);
    assert_int_equal(route_rewrite_header(f->r, ROUTE_HEADER_SENDER, "x", &out, &why), 1);
    assert_string_equal(out.data, "x@mx.example.test");
    route_reply_free(&why);
    buf_free(&out);
}

/* fx_check - the RCPT verdict text, "OK" when accepted */
static void fx_check(struct fx *f, const char *addr, int trusted, buf_t *out)
{
    struct sockaddr_in in = {0};
    struct route_client c = {(struct sockaddr *)&in, trusted};
    struct route_reply why;

    in.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.9", &in.sin_addr);
    route_reply_init(&why);
    buf_reset(out);
    if (route_check_recipient(f->r, addr, &c, &why) == ROUTE_OK)
        buf_puts(out, "OK");
    else
        buf_printf(out, "%s %s %s", why.code, why.dsn, why.text.data);
    route_reply_free(&why);
}

static void test_route_rcpt_verdicts(void **state)
{
    struct fx *f = *state;
    buf_t out = BUF_INIT;

    fx_file(f, "virtual", "joe@virt.test joe@far.test\nsales@routed.test s@lists.test\n");
    fx_file(f, "mt", "routed.test smtp:[inside]\nbad.test error:5.7.1 no mail here\n");
    fx_open(f, "virtual_alias_maps = texthash:@D/virtual\ntransport_maps = texthash:@D/mt\n"
               "relay_domains = bad.test\n");
    fx_check(f, "joe@virt.test", 0, &out);
    assert_string_equal(out.data, "OK");
    fx_check(f, "nobody@virt.test", 0, &out);
    assert_string_equal(out.data, "550 5.1.1 <nobody@virt.test>: Recipient address rejected: User "
                                  "unknown in virtual alias table");
    fx_check(f, "x@far.test", 0, &out);
    assert_string_equal(out.data, "554 5.7.1 <x@far.test>: Relay access denied");
    fx_check(f, "x@far.test", 1, &out);
    assert_string_equal(out.data, "OK");
    fx_check(f, "other@routed.test", 0, &out); /* falls through to transport_maps */
    assert_string_equal(out.data, "OK");
    fx_check(f, "u@bad.test", 0, &out);
    assert_string_equal(out.data, "550 5.7.1 <u@bad.test>... no mail here");
    buf_free(&out);
}

static void test_route_bad_classes_name_the_file_and_line(void **state)
{
    struct fx *f = *state;
    buf_t text = BUF_INIT, err = BUF_INIT;

    buf_printf(&text, "queue_directory = %s\nmasquerade_classes = header_sender, envelope\n",
               f->dir);
    fx_file(f, "tern.conf", text.data);
    assert_int_equal(config_load(f->dir, &f->cfg, &err), 0);
    assert_null(route_open(f->cfg, &err));
    assert_non_null(strstr(err.data, "tern.conf:2: masquerade_classes: unknown address class "
                                     "'envelope'"));
    buf_free(&text);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_route_classes_in_order, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_route_international_domains_match_in_either_form,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_route_relay_domains_networks_are_clients, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_route_mailertable_key_order, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_route_mailertable_exact_domain_and_local_mail,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_route_empty_transport_or_nexthop, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_route_unknown_transport_is_a_temporary_failure,
                                        fx_setup, fx_teardown),
        cmocka_unit_test(test_route_error_texts),
        cmocka_unit_test_setup_teardown(test_route_virtual_expansion, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_route_virtual_loops_and_errors, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(
            test_route_each_form_in_every_table_and_patterns_see_full_keys, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_route_sender_logins_key_order, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_route_masquerade, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_route_canonical_domain_and_extension, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_route_rcpt_verdicts, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_route_bad_classes_name_the_file_and_line, fx_setup,
                                        fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
