/*
 * test_smtp_sasl - unit tests for smtp/smtp_sasl.c, tern-smtp's SMTP AUTH
 * client, against a real Cyrus SASL server in the same process: tern's own
 * (lib/auth_sasl.c) with a sasldb made by saslpasswd2 in a temp dir.
 * Whole PLAIN, LOGIN, CRAM-MD5 and DIGEST-MD5 exchanges; a wrong password
 * refused; the security options and the mechanism filter choosing and
 * refusing; the credential lookup order of smtp_sasl_password_maps; and no
 * password in any error text.
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
#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "auth_sasl.h"
#include "config.h"
#include "smtp_sasl.h"
#include "table.h"

#define REALM "tern.test"
#define SERVER_HOST "mail.tern.test"
#define ALICE_PASS "alice-Secret-17"
#define CAROL_PASS "pa:ss:word"
#define ALL_MECHS "PLAIN LOGIN CRAM-MD5 DIGEST-MD5"

static char test_dir[64];
static struct auth_sasl_settings server_settings;
static struct config *server_cfg;

/* write_file - text into dir/name */
static void write_file(const char *name, const char *text)
{
    char path[160];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", test_dir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

/* add_sasldb_user - saslpasswd2 as the tests' brief says */
static int add_sasldb_user(const char *user, const char *password)
{
    char cmd[320];
    FILE *p;

    snprintf(cmd, sizeof(cmd), "saslpasswd2 -p -c -f %s/sasldb2 -u %s %s", test_dir, REALM, user);
    p = popen(cmd, "w");
    if (p == NULL)
        return -1;
    fputs(password, p);
    return pclose(p) == 0 ? 0 : -1;
}

/* group_setup - the sasldb, the server's smtpd.conf, tern's SASL server */
static int group_setup(void **state)
{
    buf_t err = BUF_INIT;
    buf_t text = BUF_INIT;

    snprintf(test_dir, sizeof(test_dir), "/tmp/tern-test-smtp-sasl.XXXXXX");
    if (mkdtemp(test_dir) == NULL)
        return -1;
    buf_printf(&text,
               "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: %s/sasldb2\n"
               "mech_list: " ALL_MECHS "\n",
               test_dir);
    write_file("smtpd.conf", buf_cstr(&text));
    write_file("sasl_passwd", "");
    if (add_sasldb_user("alice", ALICE_PASS) < 0 || add_sasldb_user("carol", CAROL_PASS) < 0)
        return -1;
    server_cfg = config_new_defaults(test_dir);
    if (config_set(server_cfg, "cyrus_sasl_config_path", test_dir, "test", &err) < 0 ||
        config_set(server_cfg, "myhostname", SERVER_HOST, "test", &err) < 0 ||
        config_set(server_cfg, "smtpd_sasl_local_domain", REALM, "test", &err) < 0 ||
        config_set(server_cfg, "smtpd_tls_auth_only", "no", "test", &err) < 0 ||
        auth_sasl_init(server_cfg, &err) < 0 ||
        auth_sasl_settings_load(&server_settings, server_cfg, &err) < 0) {
        fprintf(stderr, "setup: %s\n", buf_cstr(&err));
        return -1;
    }
    buf_free(&text);
    buf_free(&err);
    return 0;
}

static int group_teardown(void **state)
{
    char cmd[100];

    auth_sasl_settings_free(&server_settings);
    auth_sasl_done();
    config_free(server_cfg);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", test_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* client_config - a client config with AUTH on, the texthash password
 * table of the test dir, and "name=value" settings (NULL-terminated) */
static struct config *client_config(const char *const *settings)
{
    struct config *cfg = config_new_defaults(test_dir);
    buf_t err = BUF_INIT;
    buf_t maps = BUF_INIT;

    buf_printf(&maps, "texthash:%s/sasl_passwd", test_dir);
    assert_int_equal(config_set(cfg, "smtp_sasl_auth_enable", "yes", "test", &err), 0);
    assert_int_equal(config_set(cfg, "smtp_sasl_password_maps", buf_cstr(&maps), "test", &err), 0);
    assert_int_equal(config_set(cfg, "cyrus_sasl_config_path", test_dir, "test", &err), 0);
    for (size_t i = 0; settings != NULL && settings[i] != NULL; i++) {
        const char *eq = strchr(settings[i], '=');
        char *name = strndup(settings[i], (size_t)(eq - settings[i]));
        if (config_set(cfg, name, eq + 1, "test", &err) != 0)
            fail_msg("config_set %s: %s", settings[i], buf_cstr(&err));
        free(name);
    }
    buf_free(&maps);
    buf_free(&err);
    return cfg;
}

/* client_open - smtp_sasl_open on client_config(settings); cfg kept in *cfgp */
static struct smtp_sasl *client_open(const char *const *settings, struct config **cfgp)
{
    struct smtp_sasl *sasl = NULL;
    buf_t err = BUF_INIT;

    *cfgp = client_config(settings);
    if (smtp_sasl_open(*cfgp, &sasl, &err) != 0)
        fail_msg("smtp_sasl_open: %s", buf_cstr(&err));
    assert_non_null(sasl);
    buf_free(&err);
    return sasl;
}

/* b64_decode - text (base64, "=" or "" for empty) into out; -1 if bad */
static int b64_decode(const char *text, size_t len, buf_t *out)
{
    unsigned outlen = 0;

    buf_reset(out);
    if (len == 0 || (len == 1 && text[0] == '='))
        return 0;
    buf_reserve(out, len);
    if (sasl_decode64(text, (unsigned)len, out->data, (unsigned)len + 1, &outlen) != SASL_OK)
        return -1;
    out->len = outlen;
    out->data[outlen] = '\0';
    return 0;
}

/* b64_encode - len bytes of data as base64 */
static void b64_encode(const char *data, unsigned len, buf_t *out)
{
    unsigned outlen = 0;

    buf_reset(out);
    buf_reserve(out, 4 * ((len + 2) / 3) + 1);
    if (len > 0)
        assert_int_equal(sasl_encode64(data, len, out->data, (unsigned)out->cap, &outlen), SASL_OK);
    out->len = outlen;
    out->data[outlen] = '\0';
}

/* line_body - the line without its CRLF (which must be there) */
static size_t line_body(const buf_t *line)
{
    assert_true(line->len >= 2);
    assert_memory_equal(line->data + line->len - 2, "\r\n", 2);
    return line->len - 2;
}

/* server_start - sasl_server_start for the AUTH line in line */
static int server_start(sasl_conn_t *conn, const buf_t *line, const char **sout, unsigned *soutlen)
{
    size_t body = line_body(line);
    const char *mech = line->data + 5;
    size_t mlen = strcspn(mech, " \r");
    char *name = strndup(mech, mlen);
    buf_t ir = BUF_INIT;
    int rc;

    assert_memory_equal(line->data, "AUTH ", 5);
    if (mech[mlen] == ' ') {
        const char *text = mech + mlen + 1;
        assert_int_equal(b64_decode(text, body - (size_t)(text - line->data), &ir), 0);
        rc = sasl_server_start(conn, name, ir.data != NULL ? ir.data : "", (unsigned)ir.len, sout,
                               soutlen);
    } else {
        rc = sasl_server_start(conn, name, NULL, 0, sout, soutlen);
    }
    free(name);
    buf_wipe(&ir);
    buf_free(&ir);
    return rc;
}

/* exchange - run the AUTH exchange that c began with line against a fresh
 * tern server connection (TLS with tls_ssf > 0): the server's final SASL
 * result (SASL_OK: 235) */
static int exchange(struct smtp_sasl_client *c, buf_t *line, unsigned tls_ssf)
{
    buf_t err = BUF_INIT;
    buf_t challenge = BUF_INIT;
    buf_t response = BUF_INIT;
    sasl_conn_t *conn = auth_sasl_conn_new(&server_settings, tls_ssf, NULL, &err);
    const char *sout = NULL;
    unsigned soutlen = 0;
    int rc, rounds = 0;

    assert_non_null(conn);
    rc = server_start(conn, line, &sout, &soutlen);
    while (rc == SASL_CONTINUE && rounds++ < 10) {
        b64_encode(sout, soutlen, &challenge);
        if (smtp_sasl_client_step(c, buf_cstr(&challenge), line, &err) != 0)
            fail_msg("client step: %s", buf_cstr(&err));
        assert_int_equal(b64_decode(line->data, line_body(line), &response), 0);
        rc = sasl_server_step(conn, response.data != NULL ? response.data : "",
                              (unsigned)response.len, &sout, &soutlen);
    }
    sasl_dispose(&conn);
    buf_free(&err);
    buf_free(&challenge);
    buf_wipe(&response);
    buf_free(&response);
    return rc;
}

/* authenticate - start a client for server_mechs and run the exchange;
 * the server's result, or -100 when the client could not start (its err in
 * *errp when errp is non-NULL); the chosen mechanism into mech */
static int authenticate(struct smtp_sasl *sasl, const char *server_mechs, unsigned tls_ssf,
                        const char *user, const char *pass, buf_t *mech, buf_t *errp)
{
    buf_t line = BUF_INIT;
    buf_t err = BUF_INIT;
    struct smtp_sasl_client *c = smtp_sasl_client_start(
        sasl, SERVER_HOST, server_mechs, tls_ssf > 0, tls_ssf, user, pass, &line, &err);
    int rc = -100;

    assert_null(strstr(buf_cstr(&err), pass));
    if (c != NULL) {
        buf_set(mech, smtp_sasl_client_mech(c));
        rc = exchange(c, &line, tls_ssf);
        smtp_sasl_client_free(c);
    } else if (errp != NULL) {
        buf_set(errp, buf_cstr(&err));
    }
    buf_wipe(&line);
    buf_free(&line);
    buf_free(&err);
    return rc;
}

/* assert_mech_works - with the filter set to mech and no noplaintext,
 * alice gets in with mech and is refused with a wrong password */
static void assert_mech_works(const char *mech)
{
    char filter[64];
    const char *settings[] = {"smtp_sasl_security_options=noanonymous", filter, NULL};
    struct config *cfg;
    struct smtp_sasl *sasl;
    buf_t chosen = BUF_INIT;

    snprintf(filter, sizeof(filter), "smtp_sasl_mechanism_filter=%s", mech);
    sasl = client_open(settings, &cfg);
    assert_int_equal(authenticate(sasl, ALL_MECHS, 0, "alice", ALICE_PASS, &chosen, NULL), SASL_OK);
    assert_string_equal(buf_cstr(&chosen), mech);
    assert_int_not_equal(authenticate(sasl, ALL_MECHS, 0, "alice", "wrong-password", &chosen, NULL),
                         SASL_OK);
    assert_string_equal(buf_cstr(&chosen), mech);
    smtp_sasl_close(sasl);
    config_free(cfg);
    buf_free(&chosen);
}

static void test_smtp_sasl_plain_accepted_and_wrong_password_refused(void **state)
{
    assert_mech_works("PLAIN");
}

static void test_smtp_sasl_login_accepted_and_wrong_password_refused(void **state)
{
    assert_mech_works("LOGIN");
}

static void test_smtp_sasl_cram_md5_accepted_and_wrong_password_refused(void **state)
{
    assert_mech_works("CRAM-MD5");
}

static void test_smtp_sasl_digest_md5_accepted_and_wrong_password_refused(void **state)
{
    assert_mech_works("DIGEST-MD5");
}

static void test_smtp_sasl_plain_line_carries_initial_response(void **state)
{
    const char *settings[] = {"smtp_sasl_mechanism_filter=plain", NULL};
    struct config *cfg;
    struct smtp_sasl *sasl = client_open(settings, &cfg);
    buf_t line = BUF_INIT, err = BUF_INIT, ir = BUF_INIT;
    struct smtp_sasl_client *c = smtp_sasl_client_start(sasl, SERVER_HOST, "plain", 1, 256, "alice",
                                                        ALICE_PASS, &line, &err);
    static const char expect[] = "alice\0alice\0" ALICE_PASS;

    assert_non_null(c);
    assert_string_equal(smtp_sasl_client_mech(c), "PLAIN");
    assert_memory_equal(line.data, "AUTH PLAIN ", 11);
    assert_int_equal(b64_decode(line.data + 11, line_body(&line) - 11, &ir), 0);
    assert_int_equal(ir.len, sizeof(expect) - 1);
    assert_memory_equal(ir.data, expect, sizeof(expect) - 1);
    smtp_sasl_client_free(c);
    smtp_sasl_close(sasl);
    config_free(cfg);
    buf_free(&line);
    buf_free(&err);
    buf_free(&ir);
}

static void test_smtp_sasl_login_and_cram_md5_lines_have_no_initial_response(void **state)
{
    const char *settings[] = {"smtp_sasl_security_options=noanonymous", NULL};
    const char *mechs[] = {"LOGIN", "CRAM-MD5", "DIGEST-MD5"};
    struct config *cfg;
    struct smtp_sasl *sasl = client_open(settings, &cfg);
    buf_t line = BUF_INIT, err = BUF_INIT, expect = BUF_INIT;

    for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
        struct smtp_sasl_client *c = smtp_sasl_client_start(sasl, SERVER_HOST, mechs[i], 0, 0,
                                                            "alice", ALICE_PASS, &line, &err);
        assert_non_null(c);
        buf_reset(&expect);
        buf_printf(&expect, "AUTH %s\r\n", mechs[i]);
        assert_string_equal(buf_cstr(&line), buf_cstr(&expect));
        smtp_sasl_client_free(c);
    }
    smtp_sasl_close(sasl);
    config_free(cfg);
    buf_free(&line);
    buf_free(&err);
    buf_free(&expect);
}

static void test_smtp_sasl_noplaintext_without_tls_leaves_cram_or_digest(void **state)
{
    struct config *cfg;
    struct smtp_sasl *sasl = client_open(NULL, &cfg); /* default options */
    buf_t chosen = BUF_INIT;

    assert_int_equal(authenticate(sasl, "plain LOGIN Cram-MD5 digest-md5", 0, "alice", ALICE_PASS,
                                  &chosen, NULL),
                     SASL_OK);
    assert_true(strcmp(buf_cstr(&chosen), "CRAM-MD5") == 0 ||
                strcmp(buf_cstr(&chosen), "DIGEST-MD5") == 0);
    assert_int_equal(
        authenticate(sasl, "PLAIN LOGIN CRAM-MD5", 0, "alice", ALICE_PASS, &chosen, NULL), SASL_OK);
    assert_string_equal(buf_cstr(&chosen), "CRAM-MD5");
    smtp_sasl_close(sasl);
    config_free(cfg);
    buf_free(&chosen);
}

static void test_smtp_sasl_noplaintext_without_tls_refuses_plain_only_server(void **state)
{
    struct config *cfg;
    struct smtp_sasl *sasl = client_open(NULL, &cfg);
    buf_t chosen = BUF_INIT, err = BUF_INIT;

    assert_int_equal(authenticate(sasl, "PLAIN LOGIN", 0, "alice", ALICE_PASS, &chosen, &err),
                     -100);
    assert_non_null(strstr(buf_cstr(&err), "PLAIN LOGIN"));
    assert_non_null(strstr(buf_cstr(&err), "smtp_sasl_security_options"));
    assert_null(strstr(buf_cstr(&err), ALICE_PASS));
    smtp_sasl_close(sasl);
    config_free(cfg);
    buf_free(&chosen);
    buf_free(&err);
}

static void test_smtp_sasl_tls_options_allow_plain_under_tls(void **state)
{
    struct config *cfg;
    struct smtp_sasl *sasl = client_open(NULL, &cfg);
    buf_t chosen = BUF_INIT;

    assert_int_equal(authenticate(sasl, "plain", 256, "alice", ALICE_PASS, &chosen, NULL), SASL_OK);
    assert_string_equal(buf_cstr(&chosen), "PLAIN");
    assert_int_equal(authenticate(sasl, "PLAIN LOGIN", 256, "alice", ALICE_PASS, &chosen, NULL),
                     SASL_OK);
    assert_true(strcmp(buf_cstr(&chosen), "PLAIN") == 0 || strcmp(buf_cstr(&chosen), "LOGIN") == 0);
    smtp_sasl_close(sasl);
    config_free(cfg);
    buf_free(&chosen);
}

static void test_smtp_sasl_tls_noplaintext_refuses_plain_under_tls(void **state)
{
    const char *settings[] = {"smtp_sasl_tls_security_options=noanonymous noplaintext", NULL};
    struct config *cfg;
    struct smtp_sasl *sasl = client_open(settings, &cfg);
    buf_t chosen = BUF_INIT, err = BUF_INIT;

    assert_int_equal(authenticate(sasl, "PLAIN LOGIN", 256, "alice", ALICE_PASS, &chosen, &err),
                     -100);
    assert_non_null(strstr(buf_cstr(&err), "smtp_sasl_tls_security_options"));
    smtp_sasl_close(sasl);
    config_free(cfg);
    buf_free(&chosen);
    buf_free(&err);
}

static void test_smtp_sasl_filter_chooses_among_offered(void **state)
{
    const char *settings[] = {"smtp_sasl_mechanism_filter=login, digest-md5", NULL};
    struct config *cfg;
    struct smtp_sasl *sasl = client_open(settings, &cfg);
    buf_t chosen = BUF_INIT;

    assert_int_equal(
        authenticate(sasl, "PLAIN LOGIN CRAM-MD5", 256, "alice", ALICE_PASS, &chosen, NULL),
        SASL_OK);
    assert_string_equal(buf_cstr(&chosen), "LOGIN");
    assert_int_equal(authenticate(sasl, ALL_MECHS, 0, "alice", ALICE_PASS, &chosen, NULL), SASL_OK);
    assert_string_equal(buf_cstr(&chosen), "DIGEST-MD5");
    smtp_sasl_close(sasl);
    config_free(cfg);
    buf_free(&chosen);
}

static void test_smtp_sasl_filter_leaving_none_is_an_error(void **state)
{
    const char *settings[] = {"smtp_sasl_mechanism_filter=plain, login", NULL};
    struct config *cfg;
    struct smtp_sasl *sasl = client_open(settings, &cfg);
    buf_t chosen = BUF_INIT, err = BUF_INIT;

    /* the filter passes PLAIN and LOGIN, noplaintext takes them */
    assert_int_equal(authenticate(sasl, ALL_MECHS, 0, "alice", ALICE_PASS, &chosen, &err), -100);
    assert_non_null(strstr(buf_cstr(&err), ALL_MECHS));
    assert_non_null(strstr(buf_cstr(&err), "smtp_sasl_mechanism_filter (PLAIN LOGIN)"));
    /* the filter passes nothing the server offers */
    buf_reset(&err);
    assert_int_equal(authenticate(sasl, "CRAM-MD5", 256, "alice", ALICE_PASS, &chosen, &err), -100);
    assert_non_null(strstr(buf_cstr(&err), "smtp_sasl_mechanism_filter (PLAIN LOGIN)"));
    smtp_sasl_close(sasl);
    config_free(cfg);
    buf_free(&chosen);
    buf_free(&err);
}

static void test_smtp_sasl_junk_words_in_auth_line_ignored(void **state)
{
    struct config *cfg;
    struct smtp_sasl *sasl = client_open(NULL, &cfg);
    buf_t chosen = BUF_INIT, err = BUF_INIT;

    assert_int_equal(authenticate(sasl, " PLAIN\001  CRAM-MD5\tA-NAME-LONGER-THAN-TWENTY ", 0,
                                  "alice", ALICE_PASS, &chosen, NULL),
                     SASL_OK);
    assert_string_equal(buf_cstr(&chosen), "CRAM-MD5");
    assert_int_equal(authenticate(sasl, "\001\002", 0, "alice", ALICE_PASS, &chosen, &err), -100);
    assert_null(strchr(buf_cstr(&err), '\001'));
    smtp_sasl_close(sasl);
    config_free(cfg);
    buf_free(&chosen);
    buf_free(&err);
}

/* start_digest - a DIGEST-MD5 client for alice (no server yet) */
static struct smtp_sasl_client *start_digest(struct smtp_sasl *sasl, buf_t *line)
{
    buf_t err = BUF_INIT;
    struct smtp_sasl_client *c = smtp_sasl_client_start(sasl, SERVER_HOST, "DIGEST-MD5", 0, 0,
                                                        "alice", ALICE_PASS, line, &err);

    assert_non_null(c);
    buf_free(&err);
    return c;
}

static void test_smtp_sasl_bad_challenges_fail_without_password(void **state)
{
    struct config *cfg;
    struct smtp_sasl *sasl = client_open(NULL, &cfg);
    buf_t line = BUF_INIT, err = BUF_INIT, junk = BUF_INIT;
    struct smtp_sasl_client *c = start_digest(sasl, &line);

    assert_int_equal(smtp_sasl_client_step(c, "!!not base64!!", &line, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "not base64"));
    assert_null(strstr(buf_cstr(&err), ALICE_PASS));
    smtp_sasl_client_free(c);

    c = start_digest(sasl, &line);
    buf_reset(&err);
    b64_encode("no digest challenge", 19, &junk);
    assert_int_equal(smtp_sasl_client_step(c, buf_cstr(&junk), &line, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "DIGEST-MD5"));
    assert_null(strstr(buf_cstr(&err), ALICE_PASS));
    smtp_sasl_client_free(c);
    smtp_sasl_close(sasl);
    config_free(cfg);
    buf_free(&line);
    buf_free(&err);
    buf_free(&junk);
}

static void test_smtp_sasl_open_returns_null_when_disabled(void **state)
{
    struct config *cfg = config_new_defaults(test_dir);
    struct smtp_sasl *sasl = (struct smtp_sasl *)&sasl;
    buf_t err = BUF_INIT;

    assert_int_equal(smtp_sasl_open(cfg, &sasl, &err), 0);
    assert_null(sasl);
    config_free(cfg);
    buf_free(&err);
}

/* assert_open_fails - smtp_sasl_open on settings fails with err holding
 * both words */
static void assert_open_fails(const char *const *settings, const char *word1, const char *word2)
{
    struct config *cfg = client_config(settings);
    struct smtp_sasl *sasl = NULL;
    buf_t err = BUF_INIT;

    assert_int_equal(smtp_sasl_open(cfg, &sasl, &err), -1);
    assert_null(sasl);
    if (strstr(buf_cstr(&err), word1) == NULL || strstr(buf_cstr(&err), word2) == NULL)
        fail_msg("'%s' lacks '%s' or '%s'", buf_cstr(&err), word1, word2);
    config_free(cfg);
    buf_free(&err);
}

static void test_smtp_sasl_open_refuses_unknown_security_word(void **state)
{
    const char *plain[] = {"smtp_sasl_security_options=noplaintext, nosuchthing", NULL};
    const char *tls[] = {"smtp_sasl_tls_security_options=noanonymous bogus", NULL};

    assert_open_fails(plain, "smtp_sasl_security_options", "nosuchthing");
    assert_open_fails(tls, "smtp_sasl_tls_security_options", "bogus");
}

static void test_smtp_sasl_open_refuses_missing_password_maps(void **state)
{
    const char *settings[] = {"smtp_sasl_password_maps=", NULL};

    assert_open_fails(settings, "smtp_sasl_password_maps", "smtp_sasl_auth_enable");
}

static void test_smtp_sasl_open_refuses_unopenable_table(void **state)
{
    const char *settings[] = {"smtp_sasl_password_maps=hash:/nonexistent/sasl_passwd", NULL};

    assert_open_fails(settings, "hash:/nonexistent/sasl_passwd", "");
}

/* ---- credentials */

static const char password_table[] = "[smtp.example.com]:587  relay:pw587\n"
                                     "smtp.example.com        host:pwhost\n"
                                     "[mx.example.com]:25     bracket:pwbracket\n"
                                     "mx1.example.net         mxhost:pwmx\n"
                                     "alice@example.org       sender:" CAROL_PASS "\n"
                                     "@example.org            senderdomain:pwdomain\n"
                                     "nocolon.example.com     justauser\n";

/* assert_credentials - the lookup for sender and keys gives user:pass */
static void assert_credentials(struct smtp_sasl *sasl, const char *sender, const char *const *keys,
                               const char *user, const char *pass)
{
    buf_t u = BUF_INIT, p = BUF_INIT, err = BUF_INIT;

    assert_int_equal(smtp_sasl_credentials(sasl, sender, keys, &u, &p, &err), 1);
    assert_string_equal(buf_cstr(&u), user);
    assert_string_equal(buf_cstr(&p), pass);
    buf_free(&u);
    buf_free(&p);
    buf_free(&err);
}

/* open_with_table - password_table as texthash:, settings added */
static struct smtp_sasl *open_with_table(const char *const *settings, struct config **cfgp)
{
    write_file("sasl_passwd", password_table);
    return client_open(settings, cfgp);
}

static void test_smtp_sasl_credentials_follow_key_order(void **state)
{
    struct config *cfg;
    struct smtp_sasl *sasl = open_with_table(NULL, &cfg);
    const char *const submission[] = {"[smtp.example.com]:587", "smtp.example.com", NULL};
    const char *const other_port[] = {"[smtp.example.com]:2525", "smtp.example.com", NULL};
    const char *const mx[] = {"example.net", "mx1.example.net", "[mx1.example.net]:25",
                              "mx1.example.net", NULL};
    const char *const bracket[] = {"example.com", "mx.example.com", "[mx.example.com]:25", NULL};

    assert_credentials(sasl, "alice@example.org", submission, "relay", "pw587");
    assert_credentials(sasl, NULL, other_port, "host", "pwhost");
    assert_credentials(sasl, "", mx, "mxhost", "pwmx");
    assert_credentials(sasl, "bob@example.com", bracket, "bracket", "pwbracket");
    smtp_sasl_close(sasl);
    config_free(cfg);
}

static void test_smtp_sasl_credentials_sender_dependent_first(void **state)
{
    const char *settings[] = {"smtp_sender_dependent_authentication=yes", NULL};
    struct config *cfg;
    struct smtp_sasl *sasl = open_with_table(settings, &cfg);
    const char *const keys[] = {"[smtp.example.com]:587", "smtp.example.com", NULL};

    assert_credentials(sasl, "alice@example.org", keys, "sender", CAROL_PASS);
    assert_credentials(sasl, "Alice@Example.ORG", keys, "sender", CAROL_PASS);
    assert_credentials(sasl, "bob@example.org", keys, "senderdomain", "pwdomain");
    assert_credentials(sasl, "bob@example.com", keys, "relay", "pw587");
    assert_credentials(sasl, "", keys, "relay", "pw587");
    assert_credentials(sasl, NULL, keys, "relay", "pw587");
    smtp_sasl_close(sasl);
    config_free(cfg);
}

static void test_smtp_sasl_credentials_value_split_at_first_colon(void **state)
{
    const char *settings[] = {"smtp_sender_dependent_authentication=yes", NULL};
    struct config *cfg;
    struct smtp_sasl *sasl = open_with_table(settings, &cfg);
    const char *const none[] = {NULL};
    const char *const nocolon[] = {"nocolon.example.com", NULL};

    assert_credentials(sasl, "alice@example.org", none, "sender", CAROL_PASS);
    assert_credentials(sasl, NULL, nocolon, "justauser", "");
    smtp_sasl_close(sasl);
    config_free(cfg);
}

static void test_smtp_sasl_credentials_with_colons_authenticate(void **state)
{
    const char *settings[] = {"smtp_sender_dependent_authentication=yes", NULL};
    struct config *cfg;
    struct smtp_sasl *sasl;
    const char *const none[] = {NULL};
    buf_t user = BUF_INIT, pass = BUF_INIT, err = BUF_INIT, chosen = BUF_INIT;

    write_file("sasl_passwd", "alice@example.org carol:" CAROL_PASS "\n");
    sasl = client_open(settings, &cfg);
    assert_int_equal(smtp_sasl_credentials(sasl, "alice@example.org", none, &user, &pass, &err), 1);
    assert_int_equal(
        authenticate(sasl, ALL_MECHS, 0, buf_cstr(&user), buf_cstr(&pass), &chosen, NULL), SASL_OK);
    assert_int_equal(
        authenticate(sasl, "PLAIN", 256, buf_cstr(&user), buf_cstr(&pass), &chosen, NULL), SASL_OK);
    smtp_sasl_close(sasl);
    config_free(cfg);
    buf_free(&user);
    buf_wipe(&pass);
    buf_free(&pass);
    buf_free(&err);
    buf_free(&chosen);
}

static void test_smtp_sasl_credentials_not_found_empties_user_and_pass(void **state)
{
    struct config *cfg;
    struct smtp_sasl *sasl = open_with_table(NULL, &cfg);
    const char *const keys[] = {"[other.example]:587", "", "other.example", NULL};
    buf_t user = BUF_INIT, pass = BUF_INIT, err = BUF_INIT;

    buf_set(&user, "stale");
    buf_set(&pass, "stale");
    assert_int_equal(smtp_sasl_credentials(sasl, "alice@example.org", keys, &user, &pass, &err), 0);
    assert_string_equal(buf_cstr(&user), "");
    assert_string_equal(buf_cstr(&pass), "");
    assert_string_equal(buf_cstr(&err), "");
    smtp_sasl_close(sasl);
    config_free(cfg);
    buf_free(&user);
    buf_free(&pass);
    buf_free(&err);
}

static void test_smtp_sasl_credentials_every_table_before_next_key(void **state)
{
    char maps[200];
    const char *settings[] = {maps, NULL};
    struct config *cfg;
    struct smtp_sasl *sasl;
    const char *const keys[] = {"[smtp.example.com]:587", "smtp.example.com", NULL};

    write_file("first", "smtp.example.com first:pw1\n");
    write_file("second", "[smtp.example.com]:587 second:pw2\n");
    snprintf(maps, sizeof(maps), "smtp_sasl_password_maps=texthash:%s/first, texthash:%s/second",
             test_dir, test_dir);
    sasl = client_open(settings, &cfg);
    assert_credentials(sasl, NULL, keys, "second", "pw2");
    smtp_sasl_close(sasl);
    config_free(cfg);
}

static void test_smtp_sasl_credentials_hash_table_and_failed_lookup(void **state)
{
    char maps[200], db[200];
    const char *settings[] = {maps, NULL};
    struct config *cfg;
    struct smtp_sasl *sasl;
    const char *const keys[] = {"[SMTP.Example.COM]:587", NULL};
    buf_t path = BUF_INIT, user = BUF_INIT, pass = BUF_INIT, err = BUF_INIT;

    write_file("hashed", password_table);
    buf_printf(&path, "%s/hashed", test_dir);
    assert_int_equal(table_build("hash", buf_cstr(&path), 0, NULL, &err), 0);
    snprintf(maps, sizeof(maps), "smtp_sasl_password_maps=hash:%s", buf_cstr(&path));
    sasl = client_open(settings, &cfg);
    assert_credentials(sasl, NULL, keys, "relay", "pw587");
    snprintf(db, sizeof(db), "%s.db", buf_cstr(&path));
    assert_int_equal(unlink(db), 0);
    assert_int_equal(smtp_sasl_credentials(sasl, NULL, keys, &user, &pass, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), buf_cstr(&path)));
    assert_null(strstr(buf_cstr(&err), "pw587"));
    smtp_sasl_close(sasl);
    config_free(cfg);
    buf_free(&path);
    buf_free(&user);
    buf_free(&pass);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smtp_sasl_plain_accepted_and_wrong_password_refused),
        cmocka_unit_test(test_smtp_sasl_login_accepted_and_wrong_password_refused),
        cmocka_unit_test(test_smtp_sasl_cram_md5_accepted_and_wrong_password_refused),
        cmocka_unit_test(test_smtp_sasl_digest_md5_accepted_and_wrong_password_refused),
        cmocka_unit_test(test_smtp_sasl_plain_line_carries_initial_response),
        cmocka_unit_test(test_smtp_sasl_login_and_cram_md5_lines_have_no_initial_response),
        cmocka_unit_test(test_smtp_sasl_noplaintext_without_tls_leaves_cram_or_digest),
        cmocka_unit_test(test_smtp_sasl_noplaintext_without_tls_refuses_plain_only_server),
        cmocka_unit_test(test_smtp_sasl_tls_options_allow_plain_under_tls),
        cmocka_unit_test(test_smtp_sasl_tls_noplaintext_refuses_plain_under_tls),
        cmocka_unit_test(test_smtp_sasl_filter_chooses_among_offered),
        cmocka_unit_test(test_smtp_sasl_filter_leaving_none_is_an_error),
        cmocka_unit_test(test_smtp_sasl_junk_words_in_auth_line_ignored),
        cmocka_unit_test(test_smtp_sasl_bad_challenges_fail_without_password),
        cmocka_unit_test(test_smtp_sasl_open_returns_null_when_disabled),
        cmocka_unit_test(test_smtp_sasl_open_refuses_unknown_security_word),
        cmocka_unit_test(test_smtp_sasl_open_refuses_missing_password_maps),
        cmocka_unit_test(test_smtp_sasl_open_refuses_unopenable_table),
        cmocka_unit_test(test_smtp_sasl_credentials_follow_key_order),
        cmocka_unit_test(test_smtp_sasl_credentials_sender_dependent_first),
        cmocka_unit_test(test_smtp_sasl_credentials_value_split_at_first_colon),
        cmocka_unit_test(test_smtp_sasl_credentials_with_colons_authenticate),
        cmocka_unit_test(test_smtp_sasl_credentials_not_found_empties_user_and_pass),
        cmocka_unit_test(test_smtp_sasl_credentials_every_table_before_next_key),
        cmocka_unit_test(test_smtp_sasl_credentials_hash_table_and_failed_lookup),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
