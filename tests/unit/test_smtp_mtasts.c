/*
 * test_smtp_mtasts - tern-smtp's MTA-STS lookups (smtp/smtp_mtasts.c) with
 * real parts: dnsmasq serving the _mta-sts TXT and mta-sts A records, and
 * a real HTTPS policy server on loopback (tests/integration/mtastsutil.py)
 * with certificates from a CA made here with the openssl command.  Each
 * test asks about its own domain, whose behaviour the server's docroot
 * files set (a 404, text/html, a 70000-byte body, a 3 s delay ...).
 */
#include <errno.h>
#include <event2/event.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "buf.h"
#include "config.h"
#include "dns.h"
#include "dnsmasq_fixture.h"
#include "smtp_mtasts.h"

#define POLICY(d) "version: STSv1\nmode: enforce\nmx: mx." d "\nmax_age: 86400\n"

/* every domain the server knows: a policy for each, and mta-sts.D in the
 * server's certificate (untrusted.test gets one from another CA,
 * wrongname.test none) */
static const char *const domains[] = {"good.test",      "cached.test",
                                      "change.test",    "untrusted.test",
                                      "wrongname.test", "notfound.test",
                                      "html.test",      "big.test",
                                      "slow.test",      "share.test",
                                      "persist.test",   "cancel.test",
                                      "refresh.test",   NULL};

static char tmp[64];               /* the test's directory */
static struct dnsmasq_fixture fx;  /* id=1 for every domain */
static struct dnsmasq_fixture fx2; /* id=2 for change.test and cached.test */
static pid_t server_pid;
static int server_port;

/* ------------------------------------------------------------ helpers */

/* path_of - tmp/name in a static buffer (one at a time) */
static const char *path_of(const char *name)
{
    static char path[256];

    snprintf(path, sizeof(path), "%s/%s", tmp, name);
    return path;
}

/* write_file - tmp/name := text */
static void write_file(const char *name, const char *text, size_t len)
{
    FILE *f = fopen(path_of(name), "w");

    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
}

/* write_text - tmp/name := a C string */
static void write_text(const char *name, const char *text)
{
    write_file(name, text, strlen(text));
}

/* shell - run cmd in tmp; -1 unless it exits 0 */
static int shell(const char *cmd)
{
    buf_t line = BUF_INIT;
    int rc;

    buf_printf(&line, "cd %s && %s >/dev/null 2>&1", tmp, cmd);
    rc = system(buf_cstr(&line));
    buf_free(&line);
    return rc == 0 ? 0 : -1;
}

/* make_pki - ca.pem, rogue.pem, server.pem for mta-sts.D of every domain
 * but wrongname.test, untrusted.pem for mta-sts.untrusted.test by rogue */
static int make_pki(void)
{
    buf_t san = BUF_INIT;
    int rc;

    buf_puts(&san, "subjectAltName=");
    for (int i = 0; domains[i]; i++)
        if (strcmp(domains[i], "wrongname.test") != 0)
            buf_printf(&san, "%sDNS:mta-sts.%s", i ? "," : "", domains[i]);
    buf_puts(&san, "\n");
    write_text("server.ext", buf_cstr(&san));
    write_text("untrusted.ext", "subjectAltName=DNS:mta-sts.untrusted.test\n");
    buf_free(&san);
    rc = shell("for ca in ca rogue; do openssl req -x509 -newkey rsa:2048 -nodes -keyout $ca.key "
               "-out $ca.pem -subj /CN=$ca -days 2 -addext basicConstraints=critical,CA:TRUE "
               "-addext keyUsage=critical,keyCertSign || exit 1; done");
    if (rc == 0)
        rc = shell("for s in server:ca untrusted:rogue; do n=${s%:*}; ca=${s#*:}; "
                   "openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr -subj "
                   "/CN=mta-sts.$n.test && openssl x509 -req -in $n.csr -CA $ca.pem -CAkey "
                   "$ca.key -CAcreateserial -days 2 -extfile $n.ext -out $n.pem || exit 1; done");
    return rc;
}

/* make_docroot - www/D for every domain, and the files that make some
 * misbehave */
static void make_docroot(void)
{
    static char big[70000];

    mkdir(path_of("www"), 0755);
    for (int i = 0; domains[i]; i++) {
        buf_t name = BUF_INIT, text = BUF_INIT;
        buf_printf(&name, "www/%s", domains[i]);
        buf_printf(&text, "version: STSv1\nmode: enforce\nmx: mx.%s\nmax_age: 86400\n", domains[i]);
        write_text(buf_cstr(&name), buf_cstr(&text));
        buf_free(&name);
        buf_free(&text);
    }
    write_text("www/notfound.test.status", "404");
    write_text("www/html.test.type", "text/html");
    write_text("www/slow.test.delay", "3");
    memset(big, '#', sizeof(big));
    memcpy(big, POLICY("big.test"), strlen(POLICY("big.test")));
    write_file("www/big.test", big, sizeof(big));
}

/* server_start - the policy server on server_port; -1 when it did not start */
static int server_start(void)
{
    char port[16];

    snprintf(port, sizeof(port), "%d", server_port);
    server_pid = fork();
    if (server_pid == 0) {
        if (chdir(tmp) < 0 || freopen("/dev/null", "w", stdout) == NULL)
            _exit(126);
        execlp("python3", "python3", MTASTS_SERVER, port, "server.pem", "server.key", "www",
               "mta-sts.untrusted.test=untrusted.pem,untrusted.key", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        buf_t cmd = BUF_INIT;
        int up;
        buf_printf(&cmd,
                   "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", %d))'",
                   server_port);
        up = shell(buf_cstr(&cmd)) == 0;
        buf_free(&cmd);
        if (up)
            return 0;
        if (waitpid(server_pid, NULL, WNOHANG) == server_pid)
            break;
        usleep(50000);
    }
    fprintf(stderr, "test_smtp_mtasts: the policy server did not start on %d\n", server_port);
    return -1;
}

/* server_stop - stop the policy server */
static void server_stop(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
    }
    server_pid = 0;
}

/* fetches - how many requests the server had for domain */
static int fetches(const char *domain)
{
    FILE *f = fopen(path_of("www/requests.log"), "r");
    char line[256];
    int n = 0;

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f))
        n += strncmp(line, domain, strlen(domain)) == 0 && line[strlen(domain)] == '\n';
    fclose(f);
    return n;
}

/* dns_records - the dnsmasq options: id for every domain but notxt.test
 * (only those in only, when not NULL) */
static const char **dns_records(const char *id, const char *const *only)
{
    static const char *recs[2][64];
    const char **r = recs[only != NULL];
    size_t n = 0;

    for (int i = 0; domains[i]; i++) {
        buf_t txt = BUF_INIT, a = BUF_INIT;
        int wanted = only == NULL;
        for (int j = 0; only && only[j]; j++)
            wanted |= strcmp(only[j], domains[i]) == 0;
        if (!wanted)
            continue;
        buf_printf(&txt, "--txt-record=_mta-sts.%s,v=STSv1; id=%s;", domains[i], id);
        buf_printf(&a, "--host-record=mta-sts.%s,127.0.0.1", domains[i]);
        r[n++] = buf_steal(&txt);
        r[n++] = buf_steal(&a);
    }
    r[n++] = "--host-record=mta-sts.notxt.test,127.0.0.1";
    r[n] = NULL;
    return r;
}

static int group_setup(void **state)
{
    static const char *const changed[] = {"change.test", "cached.test", NULL};

    snprintf(tmp, sizeof(tmp), "/tmp/test_smtp_mtasts.XXXXXX");
    if (mkdtemp(tmp) == NULL || make_pki() < 0)
        return -1;
    make_docroot();
    server_port = dnsmasq_fixture_free_port();
    if (server_start() < 0 || dnsmasq_fixture_start(&fx, dns_records("1", NULL)) < 0 ||
        dnsmasq_fixture_start(&fx2, dns_records("2", changed)) < 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    buf_t cmd = BUF_INIT;

    server_stop();
    dnsmasq_fixture_stop(&fx);
    dnsmasq_fixture_stop(&fx2);
    buf_printf(&cmd, "rm -rf %s", tmp);
    if (system(buf_cstr(&cmd)) != 0)
        fprintf(stderr, "test_smtp_mtasts: %s left behind\n", tmp);
    buf_free(&cmd);
    return 0;
}

/* one module on its own loop */
struct fixture {
    struct event_base *base;
    struct dns_ctx *dns;
    struct config *cfg;
    struct smtp_mtasts *m;
    int outstanding; /* answers still expected */
};

/* the copy of one answer */
struct answer {
    struct fixture *f;
    int calls;
    int has_policy;
    enum mtasts_mode mode;
    char mx[256];
    char error[512];
};

static void on_policy(const struct mtasts_policy *p, const char *error, void *arg)
{
    struct answer *a = arg;

    a->calls++;
    a->has_policy = p != NULL;
    if (p) {
        a->mode = p->mode;
        snprintf(a->mx, sizeof(a->mx), "%s", p->mx_count ? p->mx[0] : "");
    }
    snprintf(a->error, sizeof(a->error), "%s", error);
    if (--a->f->outstanding == 0)
        event_base_loopbreak(a->f->base);
}

/* fixture_open - a module asking the dnsmasq on dns_port, its cache in
 * tmp/data-NAME, fetches allowed timeout */
static void fixture_open(struct fixture *f, int dns_port, const char *name, const char *timeout)
{
    char server[64], port[16];
    char *servers[2] = {server, NULL};
    buf_t err = BUF_INIT, data = BUF_INIT;

    memset(f, 0, sizeof(*f));
    snprintf(server, sizeof(server), "127.0.0.1:%d", dns_port);
    snprintf(port, sizeof(port), "%d", server_port);
    buf_printf(&data, "%s/data-%s", tmp, name);
    mkdir(buf_cstr(&data), 0700);
    f->base = event_base_new();
    f->dns = dns_create(f->base, servers, 2, &err);
    assert_non_null(f->dns);
    f->cfg = config_new_defaults("/nonexistent");
    assert_int_equal(config_set(f->cfg, "smtp_mta_sts", "yes", "test", &err), 0);
    assert_int_equal(config_set(f->cfg, "smtp_mta_sts_https_port", port, "test", &err), 0);
    assert_int_equal(config_set(f->cfg, "smtp_mta_sts_fetch_timeout", timeout, "test", &err), 0);
    assert_int_equal(config_set(f->cfg, "smtp_tls_CAfile", path_of("ca.pem"), "test", &err), 0);
    assert_int_equal(config_set(f->cfg, "data_directory", buf_cstr(&data), "test", &err), 0);
    assert_int_equal(config_set(f->cfg, "mail_owner", "nobody", "test", &err), 0);
    f->m = smtp_mtasts_create(f->base, f->dns, f->cfg, &err);
    if (f->m == NULL)
        fail_msg("smtp_mtasts_create: %s", buf_cstr(&err));
    buf_free(&err);
    buf_free(&data);
}

static void fixture_close(struct fixture *f)
{
    smtp_mtasts_free(f->m);
    dns_free(f->dns);
    config_free(f->cfg);
    event_base_free(f->base);
}

/* run - the loop until every expected answer came (20 s at most) */
static void run(struct fixture *f)
{
    struct timeval guard = {20, 0};

    event_base_loopexit(f->base, &guard);
    event_base_dispatch(f->base);
    assert_int_equal(f->outstanding, 0);
}

/* ask - look domain up, expect one answer into a (not from inside the call) */
static void ask(struct fixture *f, const char *domain, struct answer *a)
{
    memset(a, 0, sizeof(*a));
    a->f = f;
    f->outstanding++;
    assert_non_null(smtp_mtasts_lookup(f->m, domain, on_policy, a));
    assert_int_equal(a->calls, 0);
}

/* lookup - ask and run until answered */
static void lookup(struct fixture *f, const char *domain, struct answer *a)
{
    ask(f, domain, a);
    run(f);
    assert_int_equal(a->calls, 1);
}

/* one_lookup - lookup with a fresh module of its own (cache tmp/data-DOMAIN) */
static void one_lookup(const char *domain, const char *timeout, struct answer *a)
{
    struct fixture f;

    fixture_open(&f, fx.port, domain, timeout);
    lookup(&f, domain, a);
    fixture_close(&f);
}

/* assert_fetch_error - no policy, and an error of type mentioning what */
static void assert_fetch_error(const struct answer *a, const char *type, const char *what)
{
    assert_false(a->has_policy);
    assert_int_equal(strncmp(a->error, type, strlen(type)), 0);
    if (strstr(a->error, what) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", a->error, what);
}

/* ------------------------------------------------------------- tests */

static void test_policy_fetched_parsed_and_answered(void **state)
{
    struct answer a;

    one_lookup("Good.Test.", "10s", &a);
    assert_true(a.has_policy);
    assert_int_equal(a.mode, MTASTS_MODE_ENFORCE);
    assert_string_equal(a.mx, "mx.good.test");
    assert_string_equal(a.error, "");
    assert_int_equal(fetches("good.test"), 1);
}

static void test_cached_policy_answers_with_the_server_stopped(void **state)
{
    struct fixture f;
    struct answer a;

    fixture_open(&f, fx.port, "cached", "10s");
    lookup(&f, "cached.test", &a);
    assert_true(a.has_policy);
    server_stop();
    lookup(&f, "cached.test", &a); /* same id: the cache answers */
    assert_true(a.has_policy);
    assert_string_equal(a.mx, "mx.cached.test");
    fixture_close(&f);
    /* a new id and the fetch fails: the cached policy still answers */
    fixture_open(&f, fx2.port, "cached", "10s");
    lookup(&f, "cached.test", &a);
    assert_true(a.has_policy);
    assert_string_equal(a.mx, "mx.cached.test");
    assert_string_equal(a.error, "");
    fixture_close(&f);
    assert_int_equal(server_start(), 0);
    assert_int_equal(fetches("cached.test"), 1);
}

static void test_txt_id_change_refetches(void **state)
{
    struct fixture f;
    struct answer a;

    fixture_open(&f, fx.port, "change", "10s");
    lookup(&f, "change.test", &a);
    assert_string_equal(a.mx, "mx.change.test");
    write_text("www/change.test", POLICY("new.change.test"));
    lookup(&f, "change.test", &a); /* id 1 still: the cached policy */
    assert_string_equal(a.mx, "mx.change.test");
    fixture_close(&f);
    fixture_open(&f, fx2.port, "change", "10s"); /* id 2 */
    lookup(&f, "change.test", &a);
    assert_true(a.has_policy);
    assert_string_equal(a.mx, "mx.new.change.test");
    fixture_close(&f);
    assert_int_equal(fetches("change.test"), 2);
}

/* a fetch that must fail: the domain, and what the answer's error says */
struct failing_fetch {
    const char *domain;
    const char *type; /* the RFC 8460 result type it starts with */
    const char *what; /* a part of the reason */
};

static const struct failing_fetch untrusted_ca = {"untrusted.test",
                                                  "sts-webpki-invalid: ", "certificate"};
static const struct failing_fetch wrong_name = {"wrongname.test",
                                                "sts-webpki-invalid: ", "mta-sts.wrongname.test"};
static const struct failing_fetch not_found = {"notfound.test",
                                               "sts-policy-fetch-error: ", "HTTP status 404"};
static const struct failing_fetch html = {"html.test", "sts-policy-invalid: ", "text/html"};
static const struct failing_fetch oversize = {"big.test",
                                              "sts-policy-invalid: ", "larger than 65536"};

/* test_fetch_failure - *state: a struct failing_fetch; no policy, that error */
static void test_fetch_failure(void **state)
{
    const struct failing_fetch *c = *state;
    struct answer a;

    one_lookup(c->domain, "10s", &a);
    assert_fetch_error(&a, c->type, c->what);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (*(int *)arg)++;
}

static void test_slow_server_times_out_without_blocking_the_loop(void **state)
{
    struct timeval every = {0, 100000};
    struct fixture f;
    struct answer a;
    struct event *tick;
    int ticks = 0;
    time_t start = time(NULL);

    fixture_open(&f, fx.port, "slow", "1s");
    tick = event_new(f.base, -1, EV_PERSIST, on_tick, &ticks);
    event_add(tick, &every);
    lookup(&f, "slow.test", &a);
    assert_fetch_error(&a, "sts-policy-fetch-error: ", "timed out");
    assert_true(ticks >= 5); /* the timer ran while the server dawdled */
    assert_true(time(NULL) - start <= 3);
    event_free(tick);
    fixture_close(&f);
}

static void test_no_txt_record_is_no_policy_without_error(void **state)
{
    struct answer a;

    one_lookup("notxt.test", "10s", &a);
    assert_false(a.has_policy);
    assert_string_equal(a.error, "");
    assert_int_equal(fetches("notxt.test"), 0);
}

static void test_concurrent_lookups_share_one_fetch(void **state)
{
    struct fixture f;
    struct answer a[3];

    fixture_open(&f, fx.port, "share", "10s");
    for (int i = 0; i < 3; i++)
        ask(&f, "share.test", &a[i]);
    run(&f);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(a[i].calls, 1);
        assert_string_equal(a[i].mx, "mx.share.test");
    }
    fixture_close(&f);
    assert_int_equal(fetches("share.test"), 1);
}

static void test_cancelled_lookup_is_not_answered(void **state)
{
    struct fixture f;
    struct answer a, b;

    fixture_open(&f, fx.port, "cancel", "10s");
    memset(&a, 0, sizeof(a));
    smtp_mtasts_cancel(smtp_mtasts_lookup(f.m, "cancel.test", on_policy, &a));
    ask(&f, "cancel.test", &b);
    run(&f);
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 1);
    assert_string_equal(b.mx, "mx.cancel.test");
    fixture_close(&f);
}

static void test_cache_survives_destroy_and_recreate(void **state)
{
    struct fixture f;
    struct answer a;
    struct stat st;
    struct passwd *pw = getpwnam("nobody");

    fixture_open(&f, fx.port, "persist", "10s");
    lookup(&f, "persist.test", &a);
    fixture_close(&f);
    fixture_open(&f, fx.port, "persist", "10s");
    lookup(&f, "persist.test", &a);
    assert_true(a.has_policy);
    assert_string_equal(a.mx, "mx.persist.test");
    fixture_close(&f);
    assert_int_equal(fetches("persist.test"), 1);
    assert_int_equal(stat(path_of("data-persist/mta-sts.lmdb"), &st), 0);
    if (geteuid() == 0) /* root hands the file to mail_owner */
        assert_int_equal(st.st_uid, pw->pw_uid);
}

static void test_old_cached_policy_answers_and_is_refreshed(void **state)
{
    struct timeval settle = {2, 0};
    struct fixture f;
    struct answer a, b;

    write_text("www/refresh.test",
               "version: STSv1\nmode: testing\nmx: mx.refresh.test\nmax_age: 4\n");
    fixture_open(&f, fx.port, "refresh", "10s");
    lookup(&f, "refresh.test", &a);
    assert_int_equal(a.mode, MTASTS_MODE_TESTING);
    sleep(3); /* the last quarter of max_age */
    lookup(&f, "refresh.test", &a);
    assert_true(a.has_policy);
    assert_int_equal(fetches("refresh.test"), 1); /* answered before the refresh */
    lookup(&f, "refresh.test", &b);               /* during the refresh: the cache */
    assert_true(b.has_policy);
    event_base_loopexit(f.base, &settle);
    event_base_dispatch(f.base);
    assert_int_equal(fetches("refresh.test"), 2);
    fixture_close(&f);
}

static void test_disabled_is_null_without_error(void **state)
{
    struct config *cfg = config_new_defaults("/nonexistent");
    buf_t err = BUF_INIT;

    assert_null(smtp_mtasts_create(NULL, NULL, cfg, &err));
    assert_int_equal(err.len, 0);
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_fetched_parsed_and_answered),
        cmocka_unit_test(test_cached_policy_answers_with_the_server_stopped),
        cmocka_unit_test(test_txt_id_change_refetches),
        {"test_untrusted_ca_is_webpki_error", test_fetch_failure, NULL, NULL,
         (void *)&untrusted_ca},
        {"test_wrong_certificate_name_is_webpki_error", test_fetch_failure, NULL, NULL,
         (void *)&wrong_name},
        {"test_non_200_is_fetch_error", test_fetch_failure, NULL, NULL, (void *)&not_found},
        {"test_wrong_content_type_is_invalid", test_fetch_failure, NULL, NULL, (void *)&html},
        {"test_oversize_body_is_invalid", test_fetch_failure, NULL, NULL, (void *)&oversize},
        cmocka_unit_test(test_slow_server_times_out_without_blocking_the_loop),
        cmocka_unit_test(test_no_txt_record_is_no_policy_without_error),
        cmocka_unit_test(test_concurrent_lookups_share_one_fetch),
        cmocka_unit_test(test_cancelled_lookup_is_not_answered),
        cmocka_unit_test(test_cache_survives_destroy_and_recreate),
        cmocka_unit_test(test_old_cached_policy_answers_and_is_refreshed),
        cmocka_unit_test(test_disabled_is_null_without_error),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
