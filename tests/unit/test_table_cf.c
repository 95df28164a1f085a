/*
 * test_table_cf - unit tests for lib/table_cf: the NAME.cf file format
 * (comments, continuations, CRLF, bounds, duplicates, FILE:LINE in every
 * message), the permission rule for files that hold a password, and the
 * ldap and pgsql views (Postfix's defaults, every server/host form, values
 * out of range, expansions, refused settings and combinations, and that no
 * message ever carries a password).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "table_cf.h"

#define SECRET "hunter2-secret"

/* parse - parse text as "t.cf"; returns table_cf_parse's result */
static int parse(struct table_cf *cf, const char *text, buf_t *err)
{
    buf_reset(err);
    return table_cf_parse(cf, "t.cf", text, strlen(text), err);
}

/* parse_fails - text must be refused with a message holding want */
static void parse_fails(const char *text, const char *want)
{
    struct table_cf cf;
    buf_t err = BUF_INIT;

    if (parse(&cf, text, &err) == 0)
        fail_msg("accepted: %s", text);
    if (strstr(buf_cstr(&err), want) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", buf_cstr(&err), want);
    table_cf_free(&cf);
    buf_free(&err);
}

/* value_of - the value of key in cf, which must be there */
static const char *value_of(const struct table_cf *cf, const char *key)
{
    const struct table_cf_entry *e = table_cf_get(cf, key);

    if (e == NULL)
        fail_msg("no %s", key);
    return e->value;
}

static void test_cf_parses_settings_comments_and_continuations(void **state)
{
    struct table_cf cf;
    buf_t err = BUF_INIT;
    const char *text = "# a comment\n"
                       "\n"
                       "server_host = ldap://a ldap://b\n"
                       "   # a comment inside the value\n"
                       "\tldap://c   \n"
                       "search_base=dc=example, dc=com\n"
                       "query_filter = (mail=%s) # not a comment\n"
                       "bind_dn =\n";

    (void)state;
    assert_int_equal(parse(&cf, text, &err), 0);
    assert_int_equal(cf.count, 4);
    assert_string_equal(value_of(&cf, "server_host"), "ldap://a ldap://b ldap://c");
    assert_int_equal(table_cf_get(&cf, "server_host")->line, 3);
    assert_string_equal(value_of(&cf, "search_base"), "dc=example, dc=com");
    assert_string_equal(value_of(&cf, "query_filter"), "(mail=%s) # not a comment");
    assert_string_equal(value_of(&cf, "bind_dn"), "");
    assert_int_equal(table_cf_get(&cf, "bind_dn")->line, 8);
    assert_null(table_cf_get(&cf, "scope"));
    table_cf_free(&cf);
    buf_free(&err);
}

static void test_cf_crlf_lines_and_no_final_newline(void **state)
{
    struct table_cf cf;
    buf_t err = BUF_INIT;

    (void)state;
    assert_int_equal(parse(&cf, "a = 1\r\nb = two\r\n  three\r\nc = 3", &err), 0);
    assert_int_equal(cf.count, 3);
    assert_string_equal(value_of(&cf, "a"), "1");
    assert_string_equal(value_of(&cf, "b"), "two three");
    assert_string_equal(value_of(&cf, "c"), "3");
    table_cf_free(&cf);
    assert_int_equal(parse(&cf, "", &err), 0);
    assert_int_equal(cf.count, 0);
    table_cf_free(&cf);
    buf_free(&err);
}

static void test_cf_duplicate_key_names_both_lines(void **state)
{
    (void)state;
    parse_fails("scope = sub\n# x\nscope = one\n", "t.cf:3: scope given twice (first at line 1)");
}

static void test_cf_syntax_errors_name_the_line(void **state)
{
    (void)state;
    parse_fails("a = 1\nthis is not a setting\n", "t.cf:2: expected \"name = value\"");
    parse_fails("= value\n", "t.cf:1: expected \"name = value\"");
    parse_fails("bad-key = 1\n", "t.cf:1: expected \"name = value\"");
    parse_fails("# only a comment\n  continued\n", "t.cf:2: continuation line without a setting");
}

static void test_cf_nul_byte_rejected(void **state)
{
    struct table_cf cf;
    buf_t err = BUF_INIT;
    const char text[] = "a = 1\nb = x\0y\n";

    (void)state;
    assert_int_equal(table_cf_parse(&cf, "t.cf", text, sizeof(text) - 1, &err), -1);
    assert_string_equal(buf_cstr(&err), "t.cf:2: NUL byte in line");
    table_cf_free(&cf);
    buf_free(&err);
}

/* repeat - c n times, NUL-terminated, in a static buffer */
static const char *repeat(const char *prefix, int c, size_t n, const char *suffix)
{
    static char text[3 * TABLE_CF_VALUE_MAX];

    assert_true(strlen(prefix) + n + strlen(suffix) < sizeof(text));
    snprintf(text, sizeof(text), "%s", prefix);
    memset(text + strlen(prefix), c, n);
    snprintf(text + strlen(prefix) + n, sizeof(text) - strlen(prefix) - n, "%s", suffix);
    return text;
}

static void test_cf_bounds(void **state)
{
    struct table_cf cf;
    buf_t err = BUF_INIT;
    buf_t text = BUF_INIT;

    (void)state;
    /* a line of exactly TABLE_CF_LINE_MAX bytes is fine, one more is not */
    assert_int_equal(parse(&cf, repeat("a = ", 'x', TABLE_CF_LINE_MAX - 4, "\n"), &err), 0);
    table_cf_free(&cf);
    parse_fails(repeat("a = 1\nb = ", 'x', TABLE_CF_LINE_MAX - 3, "\n"),
                "t.cf:2: line longer than 4096 bytes");
    /* continuations past TABLE_CF_VALUE_MAX */
    buf_puts(&text, "a = 1\nq = x\n");
    for (int i = 0; i < 5; i++)
        buf_printf(&text, " %s\n", repeat("", 'y', 4000, ""));
    parse_fails(buf_cstr(&text), "t.cf:7: value longer than 16384 bytes");
    buf_reset(&text);
    for (int i = 0; i <= TABLE_CF_ENTRIES_MAX; i++)
        buf_printf(&text, "k%d = v\n", i);
    parse_fails(buf_cstr(&text), "t.cf:257: more than 256 settings");
    buf_free(&text);
    buf_free(&err);
}

static void test_cf_mode_rule(void **state)
{
    struct table_cf cf;
    buf_t err = BUF_INIT;

    (void)state;
    assert_int_equal(parse(&cf, "bind_dn = cn=x\nbind_pw = " SECRET "\n", &err), 0);
    assert_int_equal(table_cf_check_mode(&cf, 0640, &err), 0);
    assert_int_equal(table_cf_check_mode(&cf, 0600, &err), 0);
    assert_int_equal(table_cf_check_mode(&cf, 0644, &err), -1);
    assert_string_equal(buf_cstr(&err), "t.cf: holds a password (bind_pw) and is readable by "
                                        "others; run: chmod o-r t.cf");
    buf_reset(&err);
    assert_int_equal(table_cf_check_mode(&cf, 0602, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "run: chmod o-w t.cf"));
    table_cf_free(&cf);

    /* no password: readable by others is fine, writable is not */
    assert_int_equal(parse(&cf, "server_host = ldap://x\n", &err), 0);
    assert_int_equal(table_cf_check_mode(&cf, 0644, &err), 0);
    assert_int_equal(table_cf_check_mode(&cf, 0646, &err), -1);
    table_cf_free(&cf);

    assert_int_equal(parse(&cf, "password = " SECRET "\n", &err), 0);
    buf_reset(&err);
    assert_int_equal(table_cf_check_mode(&cf, 0604, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "holds a password (password)"));
    assert_null(strstr(buf_cstr(&err), SECRET));
    table_cf_free(&cf);
    buf_free(&err);
}

/* write_file - a file in a fresh temp dir with that mode; returns its path */
static const char *write_file(const char *text, mode_t mode)
{
    static char path[64];
    FILE *fp;

    snprintf(path, sizeof(path), "/tmp/test_table_cf.%d.cf", (int)getpid());
    unlink(path);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static void test_cf_read_checks_the_file(void **state)
{
    struct table_cf cf;
    buf_t err = BUF_INIT;
    buf_t want = BUF_INIT;
    const char *path = write_file("bind_pw = " SECRET "\nbind_dn = cn=a\n", 0644);

    (void)state;
    assert_int_equal(table_cf_read(&cf, path, &err), -1);
    buf_printf(&want, "%s: holds a password (bind_pw) and is readable by others; run: chmod o-r %s",
               path, path);
    assert_string_equal(buf_cstr(&err), buf_cstr(&want));
    table_cf_free(&cf);

    assert_int_equal(chmod(path, 0640), 0);
    buf_reset(&err);
    assert_int_equal(table_cf_read(&cf, path, &err), 0);
    assert_string_equal(value_of(&cf, "bind_pw"), SECRET);
    table_cf_free(&cf);
    unlink(path);

    assert_int_equal(table_cf_read(&cf, path, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "cannot open"));
    table_cf_free(&cf);
    buf_reset(&err);
    assert_int_equal(table_cf_read(&cf, "/tmp", &err), -1);
    assert_string_equal(buf_cstr(&err), "/tmp: not a regular file");
    table_cf_free(&cf);
    buf_free(&want);
    buf_free(&err);
}

/* ---- ldap ---- */

/* view_load - parse text and load the view of type ("ldap" or "pgsql") */
static int view_load(const char *type, void *view, const char *text, buf_t *err)
{
    struct table_cf cf;
    int rc = parse(&cf, text, err);

    if (rc == 0)
        rc = strcmp(type, "ldap") == 0 ? table_ldap_cf_load(view, &cf, err)
                                       : table_pgsql_cf_load(view, &cf, err);
    table_cf_free(&cf);
    return rc;
}

/* view_fails - text must be refused with a message holding want, and no
 * message may show the password */
static void view_fails(const char *type, const char *text, const char *want)
{
    union {
        struct table_ldap_cf ldap;
        struct table_pgsql_cf pgsql;
    } view;
    buf_t err = BUF_INIT;

    if (view_load(type, &view, text, &err) == 0) {
        if (strcmp(type, "ldap") == 0)
            table_ldap_cf_free(&view.ldap);
        else
            table_pgsql_cf_free(&view.pgsql);
        fail_msg("accepted: %s", text);
    }
    if (strstr(buf_cstr(&err), want) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", buf_cstr(&err), want);
    if (strstr(buf_cstr(&err), SECRET) != NULL)
        fail_msg("message \"%s\" shows the password", buf_cstr(&err));
    buf_free(&err);
}

/* ldap_load, ldap_fails - view_load and view_fails for ldap */
static int ldap_load(struct table_ldap_cf *c, const char *text, buf_t *err)
{
    return view_load("ldap", c, text, err);
}

static void ldap_fails(const char *text, const char *want)
{
    view_fails("ldap", text, want);
}

static void test_ldap_defaults_are_postfix_s(void **state)
{
    struct table_ldap_cf c;
    buf_t err = BUF_INIT;

    (void)state;
    assert_int_equal(ldap_load(&c, "# nothing set\n", &err), 0);
    assert_int_equal(c.servers.count, 1);
    assert_string_equal(c.servers.v[0].host, "localhost");
    assert_int_equal(c.servers.v[0].port, 389);
    assert_string_equal(c.servers.v[0].url, "ldap://localhost:389/");
    assert_int_equal(c.server_port, 389);
    assert_string_equal(c.search_base, "");
    assert_string_equal(c.query_filter, "(mailacceptinggeneralid=%s)");
    assert_string_equal(c.result_format, "%s");
    assert_int_equal(c.result_attribute.count, 1);
    assert_string_equal(c.result_attribute.v[0], "maildrop");
    assert_int_equal(c.special_result_attribute.count, 0);
    assert_int_equal(c.leaf_result_attribute.count, 0);
    assert_int_equal(c.scope, TABLE_LDAP_SCOPE_SUB);
    assert_int_equal(c.bind, 1);
    assert_string_equal(c.bind_dn, "");
    assert_string_equal(c.bind_pw, "");
    assert_int_equal(c.start_tls, 0);
    assert_string_equal(c.tls_ca_cert_file, "");
    assert_int_equal(c.tls_require_cert, 0);
    assert_int_equal(c.timeout, 10);
    assert_int_equal(c.size_limit, 0);
    assert_int_equal(c.domain.count, 0);
    assert_int_equal(c.dereference, 0);
    assert_int_equal(c.version, 3);
    assert_int_equal(c.expansion_limit, 0);
    assert_int_equal(c.recursion_limit, 1000);
    table_ldap_cf_free(&c);
    buf_free(&err);
}

static void test_ldap_every_setting_parsed(void **state)
{
    struct table_ldap_cf c;
    buf_t err = BUF_INIT;
    const char *text = "server_host = ldap1.example.com, ldap2.example.com:1389\n"
                       "server_port = 3389\n"
                       "search_base = ou=%d, dc=example, dc=com\n"
                       "query_filter = (&(mail=%s)(uid=%u)(o=%1)(x=%%))\n"
                       "result_format = %U@%D: %s\n"
                       "result_attribute = mail, maildrop mailRoutingAddress\n"
                       "special_result_attribute = member\n"
                       "leaf_result_attribute = mail\n"
                       "scope = ONE\n"
                       "bind = yes\n"
                       "bind_dn = cn=tern, dc=example, dc=com\n"
                       "bind_pw = " SECRET "\n"
                       "start_tls = yes\n"
                       "tls_ca_cert_file = /etc/ssl/ca.pem\n"
                       "tls_require_cert = yes\n"
                       "timeout = 3\n"
                       "size_limit = 2\n"
                       "domain = example.com example.net\n"
                       "dereference = 3\n"
                       "version = 3\n"
                       "expansion_limit = 5\n"
                       "recursion_limit = 7\n";

    (void)state;
    assert_int_equal(ldap_load(&c, text, &err), 0);
    assert_int_equal(c.servers.count, 2);
    assert_string_equal(c.servers.v[0].url, "ldap://ldap1.example.com:3389/");
    assert_string_equal(c.servers.v[1].url, "ldap://ldap2.example.com:1389/");
    assert_string_equal(c.search_base, "ou=%d, dc=example, dc=com");
    assert_string_equal(c.result_format, "%U@%D: %s");
    assert_int_equal(c.result_attribute.count, 3);
    assert_string_equal(c.result_attribute.v[2], "mailRoutingAddress");
    assert_string_equal(c.special_result_attribute.v[0], "member");
    assert_string_equal(c.leaf_result_attribute.v[0], "mail");
    assert_int_equal(c.scope, TABLE_LDAP_SCOPE_ONE);
    assert_string_equal(c.bind_pw, SECRET);
    assert_int_equal(c.start_tls, 1);
    assert_int_equal(c.tls_require_cert, 1);
    assert_string_equal(c.tls_ca_cert_file, "/etc/ssl/ca.pem");
    assert_int_equal(c.timeout, 3);
    assert_int_equal(c.size_limit, 2);
    assert_int_equal(c.domain.count, 2);
    assert_string_equal(c.domain.v[1], "example.net");
    assert_int_equal(c.dereference, 3);
    assert_int_equal(c.expansion_limit, 5);
    assert_int_equal(c.recursion_limit, 7);
    table_ldap_cf_free(&c);
    buf_free(&err);
}

static void test_ldap_server_host_forms(void **state)
{
    struct table_ldap_cf c;
    buf_t err = BUF_INIT;
    const char *text = "server_host = ldap://a.example ldaps://b.example LDAPS://c:1636/\n"
                       "  ldapi://%2Fvar%2Frun%2Fslapd%2Fldapi ldapi:// [::1]:1389\n"
                       "  ldap://[2001:db8::1] 127.0.0.1\n"
                       "server_port = 10389\n"
                       "scope = base\n"
                       "bind = no\n"
                       "version = 2\n";

    (void)state;
    assert_int_equal(ldap_load(&c, text, &err), 0);
    assert_int_equal(c.servers.count, 8);
    assert_string_equal(c.servers.v[0].url, "ldap://a.example:389/");
    assert_int_equal(c.servers.v[1].scheme, TABLE_LDAP_LDAPS);
    assert_string_equal(c.servers.v[1].url, "ldaps://b.example:636/");
    assert_string_equal(c.servers.v[2].url, "ldaps://c:1636/");
    assert_int_equal(c.servers.v[3].scheme, TABLE_LDAP_LDAPI);
    assert_string_equal(c.servers.v[3].host, "/var/run/slapd/ldapi");
    assert_string_equal(c.servers.v[3].url, "ldapi://%2Fvar%2Frun%2Fslapd%2Fldapi/");
    assert_int_equal(c.servers.v[3].port, 0);
    assert_string_equal(c.servers.v[4].host, "");
    assert_string_equal(c.servers.v[5].host, "::1");
    assert_string_equal(c.servers.v[5].url, "ldap://[::1]:1389/");
    assert_string_equal(c.servers.v[6].url, "ldap://[2001:db8::1]:389/");
    assert_string_equal(c.servers.v[7].url, "ldap://127.0.0.1:10389/");
    assert_int_equal(c.scope, TABLE_LDAP_SCOPE_BASE);
    assert_int_equal(c.bind, 0);
    assert_int_equal(c.version, 2);
    table_ldap_cf_free(&c);
    buf_free(&err);
}

static void test_ldap_bad_server_host_rejected(void **state)
{
    static const char *const bad[] = {
        "ldap://a/dc=example",
        "ldap://a?x",
        "ldap://",
        "a:0",
        "a:65536",
        "a:x",
        "::1",
        "[::1",
        "[::g]:1",
        "http://a",
        "ldapi://%2",
        "ldapi://a/b",
        "a b:1:2",
    };
    buf_t text = BUF_INIT;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_reset(&text);
        buf_printf(&text, "# x\nserver_host = good.example %s\n", bad[i]);
        ldap_fails(buf_cstr(&text), "t.cf:2: server_host: \"");
    }
    ldap_fails("server_host = ldap://a\x01\n", "is not a host[:port], [v6addr]:port");
    buf_free(&text);
}

static void test_ldap_unknown_and_refused_settings(void **state)
{
    (void)state;
    ldap_fails("scope = sub\nbind_pwd = " SECRET "\n",
               "t.cf:2: unknown setting \"bind_pwd\" for a ldap table");
    ldap_fails("query = x\n", "t.cf:1: unknown setting \"query\"");
    ldap_fails("\nsasl_mechs = GSSAPI\n", "t.cf:2: sasl_mechs is not supported: bind = sasl");
    ldap_fails("chase_referrals = yes\n", "t.cf:1: chase_referrals is not supported: referrals");
    ldap_fails("cache = yes\n", "cache is not supported: the lookup service");
    ldap_fails("terminal_result_attribute = x\n", "terminal_result_attribute is not supported");
    ldap_fails("tls_cert = /x\n", "tls_cert is not supported");
}

static void test_ldap_bind_sasl_refused(void **state)
{
    (void)state;
    ldap_fails("version = 3\nbind = sasl\n", "t.cf:2: bind = sasl is not supported yet");
}

static void test_ldap_bad_values_name_the_line(void **state)
{
    (void)state;
    ldap_fails("scope = subtree\n", "t.cf:1: scope: \"subtree\" is not one of: sub one base");
    ldap_fails("timeout = 0\n", "t.cf:1: timeout: \"0\" is not a number from 1 to 3600");
    ldap_fails("timeout = 10s\n", "timeout: \"10s\" is not a number");
    ldap_fails("timeout = 99999999999999999999\n", "is not a number from 1 to 3600");
    ldap_fails("version = 1\n", "version: \"1\" is not a number from 2 to 3");
    ldap_fails("dereference = 4\n", "dereference: \"4\" is not a number from 0 to 3");
    ldap_fails("start_tls = maybe\n", "start_tls: \"maybe\" is not one of: no yes");
    ldap_fails("server_port = 0\n", "server_port: \"0\" is not a number from 1 to 65535");
    ldap_fails("recursion_limit = 0\n", "recursion_limit");
    ldap_fails("bind = \n", "bind: \"\" is not one of: no yes sasl");
}

static void test_ldap_expansions_checked(void **state)
{
    (void)state;
    ldap_fails("query_filter = (mail=%x)\n", "t.cf:1: query_filter: unknown expansion \"%x\"");
    ldap_fails("query_filter = (mail=%S)\n", "query_filter: unknown expansion \"%S\"");
    ldap_fails("query_filter = (mail=%s)%\n", "query_filter: unknown expansion");
    ldap_fails("search_base = dc=%0\n", "search_base: unknown expansion \"%0\"");
    ldap_fails("result_format = %q\n", "use %s %u %d %1-%9 %S %U %D %%");
}

static void test_ldap_refused_combinations(void **state)
{
    (void)state;
    ldap_fails("version = 2\nstart_tls = yes\n", "t.cf:2: start_tls needs version = 3");
    ldap_fails("server_host = ldaps://a\nstart_tls = yes\n",
               "t.cf:2: start_tls works on ldap:// servers only");
    ldap_fails("bind_pw = " SECRET "\n", "t.cf:1: bind_pw without bind_dn");
    ldap_fails("domain = example.com hash:/etc/tern/domains\n",
               "t.cf:1: domain: a table here is not supported yet");
}

/* ---- pgsql ---- */

/* pgsql_load, pgsql_fails - view_load and view_fails for pgsql */
static int pgsql_load(struct table_pgsql_cf *c, const char *text, buf_t *err)
{
    return view_load("pgsql", c, text, err);
}

static void pgsql_fails(const char *text, const char *want)
{
    view_fails("pgsql", text, want);
}

#define PGSQL_MINIMAL "dbname = mail\nquery = SELECT goto FROM alias WHERE address='%s'\n"

static void test_pgsql_defaults(void **state)
{
    struct table_pgsql_cf c;
    buf_t err = BUF_INIT;

    (void)state;
    assert_int_equal(pgsql_load(&c, PGSQL_MINIMAL, &err), 0);
    assert_int_equal(c.hosts.count, 1);
    assert_string_equal(c.hosts.v[0].host, "localhost");
    assert_int_equal(c.hosts.v[0].port, 5432);
    assert_int_equal(c.hosts.v[0].is_unix, 0);
    assert_string_equal(c.dbname, "mail");
    assert_string_equal(c.user, "");
    assert_string_equal(c.password, "");
    assert_string_equal(c.query, "SELECT goto FROM alias WHERE address='%s'");
    assert_string_equal(c.result_format, "%s");
    assert_int_equal(c.domain.count, 0);
    assert_int_equal(c.expansion_limit, 0);
    assert_int_equal(c.timeout, 10);
    assert_string_equal(c.encoding, "UTF8");
    table_pgsql_cf_free(&c);
    buf_free(&err);
}

static void test_pgsql_host_forms_and_settings(void **state)
{
    struct table_pgsql_cf c;
    buf_t err = BUF_INIT;
    const char *text = PGSQL_MINIMAL "hosts = db1, db2:6432 inet:db3 inet:db4:7432\n"
                                     "  unix:/var/run/postgresql [::1]:5433 inet:[fd00::2]\n"
                                     "user = tern\npassword = " SECRET "\n"
                                     "result_format = %u\ndomain = example.com\n"
                                     "expansion_limit = 1\ntimeout = 2\nencoding = LATIN1\n";

    (void)state;
    assert_int_equal(pgsql_load(&c, text, &err), 0);
    assert_int_equal(c.hosts.count, 7);
    assert_string_equal(c.hosts.v[0].host, "db1");
    assert_int_equal(c.hosts.v[0].port, 5432);
    assert_int_equal(c.hosts.v[1].port, 6432);
    assert_string_equal(c.hosts.v[2].host, "db3");
    assert_int_equal(c.hosts.v[3].port, 7432);
    assert_int_equal(c.hosts.v[4].is_unix, 1);
    assert_string_equal(c.hosts.v[4].host, "/var/run/postgresql");
    assert_int_equal(c.hosts.v[4].port, 0);
    assert_string_equal(c.hosts.v[5].host, "::1");
    assert_int_equal(c.hosts.v[5].port, 5433);
    assert_string_equal(c.hosts.v[6].host, "fd00::2");
    assert_string_equal(c.user, "tern");
    assert_string_equal(c.password, SECRET);
    assert_string_equal(c.result_format, "%u");
    assert_string_equal(c.domain.v[0], "example.com");
    assert_int_equal(c.expansion_limit, 1);
    assert_int_equal(c.timeout, 2);
    assert_string_equal(c.encoding, "LATIN1");
    table_pgsql_cf_free(&c);
    buf_free(&err);
}

static void test_pgsql_refusals(void **state)
{
    (void)state;
    pgsql_fails("query = SELECT 1\n", "t.cf: dbname is required in a pgsql table");
    pgsql_fails("dbname = mail\n", "t.cf: query is required in a pgsql table");
    pgsql_fails("dbname = mail\nquery =\n", "t.cf:2: query is empty");
    pgsql_fails(PGSQL_MINIMAL "hosts = postgresql://u@h/db\n",
                "t.cf:3: hosts: \"postgresql://u@h/db\": postgresql:// URIs are not supported");
    pgsql_fails(PGSQL_MINIMAL "hosts = unix:relative\n", "is not host, host:port");
    pgsql_fails(PGSQL_MINIMAL "hosts = db:99999\n", "t.cf:3: hosts: \"db:99999\"");
    pgsql_fails(PGSQL_MINIMAL "select_field = goto\n",
                "t.cf:3: select_field is not supported: the pre-2.2 form");
    pgsql_fails(PGSQL_MINIMAL "retry_interval = 60\n", "retry_interval is not supported");
    pgsql_fails(PGSQL_MINIMAL "server_host = x\n", "unknown setting \"server_host\" for a pgsql");
    pgsql_fails(PGSQL_MINIMAL "pasword = " SECRET "\n", "unknown setting \"pasword\"");
    pgsql_fails("dbname = mail\nquery = SELECT '%x'\n", "t.cf:2: query: unknown expansion");
    pgsql_fails(PGSQL_MINIMAL "encoding = UTF8'; DROP\n", "encoding is not a PostgreSQL");
    pgsql_fails(PGSQL_MINIMAL "timeout = -1\n", "timeout: \"-1\" is not a number");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cf_parses_settings_comments_and_continuations),
        cmocka_unit_test(test_cf_crlf_lines_and_no_final_newline),
        cmocka_unit_test(test_cf_duplicate_key_names_both_lines),
        cmocka_unit_test(test_cf_syntax_errors_name_the_line),
        cmocka_unit_test(test_cf_nul_byte_rejected),
        cmocka_unit_test(test_cf_bounds),
        cmocka_unit_test(test_cf_mode_rule),
        cmocka_unit_test(test_cf_read_checks_the_file),
        cmocka_unit_test(test_ldap_defaults_are_postfix_s),
        cmocka_unit_test(test_ldap_every_setting_parsed),
        cmocka_unit_test(test_ldap_server_host_forms),
        cmocka_unit_test(test_ldap_bad_server_host_rejected),
        cmocka_unit_test(test_ldap_unknown_and_refused_settings),
        cmocka_unit_test(test_ldap_bind_sasl_refused),
        cmocka_unit_test(test_ldap_bad_values_name_the_line),
        cmocka_unit_test(test_ldap_expansions_checked),
        cmocka_unit_test(test_ldap_refused_combinations),
        cmocka_unit_test(test_pgsql_defaults),
        cmocka_unit_test(test_pgsql_host_forms_and_settings),
        cmocka_unit_test(test_pgsql_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
