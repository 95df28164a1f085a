/*
 * test_mcimport - tools/mcimport_*.c: the .mc tokenizer (quotes, the OCR
 * forms, dnl/dn1, divert, LOCAL_CONFIG) and the mapping of macros to
 * settings and report lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mcimport.h"

static struct mcimport_doc doc;
static struct mcimport_result res;

static void parse(const char *text)
{
    mcimport_parse(text, strlen(text), &doc);
}

static void map(const char *text)
{
    struct mcimport_options opt = {"/m", "texthash:/r"};

    parse(text);
    mcimport_map(&doc, &opt, &res);
}

static int teardown(void **state)
{
    (void)state;
    mcimport_doc_free(&doc);
    mcimport_result_free(&res);
    return 0;
}

/* report_has - a report line of verdict at line whose text contains needle */
static int report_has(int line, enum mcimport_verdict verdict, const char *needle)
{
    for (size_t i = 0; i < res.nreport; i++)
        if (res.report[i].line == line && res.report[i].verdict == verdict &&
            strstr(res.report[i].text, needle) != NULL)
            return 1;
    return 0;
}

static void test_nested_quotes_and_dnl(void **state)
{
    (void)state;
    parse("dnl a comment\nFEATURE(`a', `b `nested' c')dnl rest\n# comment\ndefine(`x', `y')dn1\n");
    assert_int_equal(doc.count, 2);
    assert_string_equal(doc.items[0].name, "FEATURE");
    assert_int_equal(doc.items[0].line, 2);
    assert_int_equal(doc.items[0].nargs, 2);
    assert_string_equal(doc.items[0].args[1], "b `nested' c");
    assert_string_equal(doc.items[1].name, "define");
    assert_int_equal(doc.items[1].line, 4);
}

static void test_ocr_forms(void **state)
{
    (void)state;
    parse("MASQUERADE AS('example.com')dn1\nFEATURE (`mailertable',\n   `hash -o /x')\n"
          "define(`confPRIVACY FLAGS', `noexpn'')\n");
    assert_int_equal(doc.count, 3);
    assert_string_equal(doc.items[0].name, "MASQUERADE_AS");
    assert_string_equal(doc.items[0].args[0], "example.com");
    assert_string_equal(doc.items[1].name, "FEATURE");
    assert_string_equal(doc.items[1].args[1], "hash -o /x");
    assert_int_equal(doc.items[2].line, 4);
    assert_string_equal(doc.items[2].args[1], "noexpn");
}

static void test_divert_hides_text_and_stray_text_is_an_item(void **state)
{
    (void)state;
    parse("divert(-1)\nthis is a comment\ndivert(0)dnl\nstray words here\n");
    assert_int_equal(doc.count, 3);
    assert_int_equal(doc.items[2].kind, MCIMPORT_TEXT);
    assert_string_equal(doc.items[2].name, "stray words here");
    assert_int_equal(doc.items[2].line, 4);
}

static void test_local_config_lines(void **state)
{
    (void)state;
    parse("LOCAL_CONFIG\nO CipherList=HIGH:!aNULL dnl\nKfoo hash /x\nMAILER(smtp)\n");
    assert_int_equal(doc.count, 4);
    assert_int_equal(doc.items[1].kind, MCIMPORT_CF_LINE);
    assert_string_equal(doc.items[1].name, "O CipherList=HIGH:!aNULL");
    assert_int_equal(doc.items[2].kind, MCIMPORT_CF_LINE);
    assert_int_equal(doc.items[3].kind, MCIMPORT_CALL);
}

static void test_local_config_cipher_list_and_cw(void **state)
{
    (void)state;
    map("LOCAL_CONFIG\nO CipherList=HIGH:!aNULL\nCwmail.example\nR$* $@ $1\n");
    assert_string_equal(mcimport_setting_value(&res, "smtpd_tls_ciphers"), "HIGH:!aNULL");
    assert_string_equal(mcimport_setting_value(&res, "smtp_tls_ciphers"), "HIGH:!aNULL");
    assert_non_null(strstr(mcimport_setting_value(&res, "mydestination"), ", mail.example"));
    assert_true(report_has(4, MCIMPORT_NOT_MAPPED, "raw sendmail.cf line"));
}

static void test_unterminated_quote_is_reported(void **state)
{
    (void)state;
    map("OSTYPE(`linux')\nFEATURE(`x\n\n");
    assert_int_equal(doc.unterminated_quote_line, 2);
    assert_true(report_has(2, MCIMPORT_NOT_MAPPED, "never closed"));
}

static void test_features_and_tables(void **state)
{
    (void)state;
    map("FEATURE(`access_db', `hash -T<TMPF> /etc/mail/access')\n"
        "FEATURE(`mailertable', `hash -o /etc/mail/mailertable.db')\n"
        "FEATURE(`use_cw_file')\nLOCAL_DOMAIN(`a.example b.example')\n"
        "FEATURE(`virtusertable', `ldap -1 -v mailLocal')\n");
    assert_string_equal(mcimport_setting_value(&res, "access_maps"), "hash:/m/access");
    assert_string_equal(mcimport_setting_value(&res, "transport_maps"),
                        "optional:hash:/m/mailertable");
    assert_string_equal(
        mcimport_setting_value(&res, "mydestination"),
        "$myhostname, localhost.$mydomain, localhost, optional:/m/local-host-names, "
        "a.example, b.example");
    assert_null(mcimport_setting_value(&res, "virtual_alias_maps"));
    assert_true(report_has(5, MCIMPORT_NOT_MAPPED, "map type ldap"));
    assert_non_null(strstr(buf_cstr(&res.tables), "tern map hash:/m/access\n"));
}

static void test_unknown_feature_and_define_are_reported(void **state)
{
    (void)state;
    map("OSTYPE(linux)\nFEATURE(`frobnicate')\ndefine(`confFROB', "
        "`1')\nFEATURE(`promiscuous_relay')\n");
    assert_true(report_has(1, MCIMPORT_NOTED, "nothing to set"));
    assert_true(report_has(2, MCIMPORT_NOT_MAPPED, "unknown FEATURE frobnicate"));
    assert_true(report_has(3, MCIMPORT_NOT_MAPPED, "unknown option confFROB"));
    assert_true(report_has(4, MCIMPORT_NOT_MAPPED, "open relay"));
    assert_null(mcimport_setting_value(&res, "promiscuous_relay"));
}

static void test_masquerade_and_site_macros(void **state)
{
    (void)state;
    map("MASQUERADE_AS(`example.com')\nFEATURE(`masquerade_envelope')\nEXPOSED_USER(`root')\n"
        "define(`CERT_DIR', `MAIL_SETTINGS_DIR/certs')\ndefine(`confSERVER_CERT', "
        "`CERT_DIR/s.crt')\n");
    assert_string_equal(mcimport_setting_value(&res, "masquerade_domains"), "example.com");
    assert_string_equal(mcimport_setting_value(&res, "masquerade_classes"),
                        "header_sender, envelope_sender");
    assert_string_equal(mcimport_setting_value(&res, "masquerade_exceptions"), "root");
    assert_string_equal(mcimport_setting_value(&res, "smtpd_tls_cert_file"), "/m/certs/s.crt");
}

static void test_defines(void **state)
{
    (void)state;
    map("define(`confSMTP_LOGIN_MSG', `$j Sendmail $v/$Z; $b')\n"
        "define(`confPRIVACY_FLAGS', `goaway,nosuchflag')\ndefine(`confMAX_HOP', `x')\n"
        "define(`confTO_IDENT', `5s')\ndefine(`SMART_HOST', `relay:[hub.example]')\n"
        "define(`LUSER_RELAY', `local:luser')\n");
    assert_string_equal(mcimport_setting_value(&res, "smtpd_banner"), "$myhostname Sendmail /;");
    assert_true(report_has(1, MCIMPORT_NOTED, "$v $Z $b"));
    assert_string_equal(mcimport_setting_value(&res, "smtpd_privacy_flags"), "goaway");
    assert_true(report_has(2, MCIMPORT_NOT_MAPPED, "nosuchflag"));
    assert_null(mcimport_setting_value(&res, "hopcount_limit"));
    assert_true(report_has(3, MCIMPORT_NOT_MAPPED, "not a number"));
    assert_string_equal(mcimport_setting_value(&res, "smtpd_ident_timeout"), "5s");
    assert_string_equal(mcimport_setting_value(&res, "relayhost"), "[hub.example]");
    assert_string_equal(mcimport_setting_value(&res, "luser_relay"), "luser");
}

static void test_daemon_options_and_milters(void **state)
{
    (void)state;
    map("DAEMON_OPTIONS(`Port=smtp, Name=MTA')\nDAEMON_OPTIONS(`Port=587, Name=MSA, M=Ea')\n"
        "DAEMON_OPTIONS(`Family=inet6, Port=465, Name=SSA, M=Eas')\n"
        "INPUT_MAIL_FILTER(`f', `S=inet:8891@127.0.0.1, F=R, T=C:2m;S:10s;R:10s;E:5m')\n"
        "INPUT_MAIL_FILTER(`g', `S=local:/g.sock')\n");
    assert_string_equal(mcimport_setting_value(&res, "smtpd_listen"), "0.0.0.0:25");
    assert_string_equal(mcimport_setting_value(&res, "submission_listen"), "0.0.0.0:587");
    assert_string_equal(mcimport_setting_value(&res, "smtps_listen"), "[::]:465");
    assert_string_equal(mcimport_setting_value(&res, "submission.smtpd_auth_required"), "yes");
    /* M=E: no ETRN on that listener */
    assert_string_equal(mcimport_setting_value(&res, "submission.smtpd_disable_etrn_command"),
                        "yes");
    assert_string_equal(mcimport_setting_value(&res, "smtps.smtpd_disable_etrn_command"), "yes");
    assert_null(mcimport_setting_value(&res, "smtpd.smtpd_disable_etrn_command"));
    assert_string_equal(mcimport_setting_value(&res, "smtpd_milters"),
                        "{ inet:8891@127.0.0.1, default_action = reject, connect_timeout = 2m, "
                        "command_timeout = 10s, content_timeout = 5m }, "
                        "{ local:/g.sock, default_action = accept }");
    assert_string_equal(mcimport_setting_value(&res, "non_smtpd_milters"), "$smtpd_milters");
}

static void test_dnsbl_messages(void **state)
{
    (void)state;
    map("FEATURE(`dnsbl',`bl.example',`\"554 Rejected \" $&{client_addr} \" listed\"')\n"
        "FEATURE(`enhdnsbl', `zen.example', `', `t', `127.0.0.2.')\n");
    assert_string_equal(mcimport_setting_value(&res, "smtpd_client_restrictions"),
                        "reject_rbl_client bl.example, reject_rbl_client zen.example=127.0.0.2");
    assert_string_equal(buf_cstr(&res.rbl_reply),
                        "bl.example 554 Rejected $&{client_addr} listed\n");
    assert_string_equal(mcimport_setting_value(&res, "rbl_tempfail_zones"), "zen.example");
    assert_string_equal(mcimport_setting_value(&res, "rbl_reply_maps"), "texthash:/r");
}

static void test_written_conf_and_report(void **state)
{
    buf_t conf = BUF_INIT, report = BUF_INIT;

    (void)state;
    map("define(`confMAX_HOP', `50')\nFEATURE(`nope')\n");
    mcimport_write_conf(&res, "x.mc", &conf);
    mcimport_write_report(&res, "x.mc", &report);
    assert_non_null(strstr(buf_cstr(&conf), "# x.mc line 1\nhopcount_limit = 50\n"));
    assert_non_null(strstr(buf_cstr(&report), "1 mapped, 0 noted, 1 not mapped"));
    assert_non_null(
        strstr(buf_cstr(&report), "x.mc:2: NOT MAPPED: FEATURE(`nope'): unknown FEATURE"));
    buf_free(&conf);
    buf_free(&report);
}

static void test_relay_domains_file_read_with_relay_domain(void **state)
{
    (void)state;
    map("RELAY_DOMAIN(`a.example')\nFEATURE(`relay_entire_domain')\n");
    assert_string_equal(mcimport_setting_value(&res, "relay_domains"),
                        "a.example, $mydomain, optional:/m/relay-domains");
    mcimport_doc_free(&doc);
    mcimport_result_free(&res);
    map("RELAY_DOMAIN(`a.example')\nRELAY_DOMAIN_FILE(`-o /etc/mail/rd')\n");
    assert_string_equal(mcimport_setting_value(&res, "relay_domains"), "a.example, optional:/m/rd");
    mcimport_doc_free(&doc);
    mcimport_result_free(&res);
    map("define(`confCR_FILE', `-o /etc/mail/cr')\nFEATURE(`relay_entire_domain')\n");
    assert_string_equal(mcimport_setting_value(&res, "relay_domains"), "optional:/m/cr, $mydomain");
    assert_true(report_has(1, MCIMPORT_MAPPED, "relay_domains += optional:/m/cr"));
}

static void test_empty_defines_are_reported(void **state)
{
    (void)state;
    map("define(`confTRUSTED_USERS', `')\ndefine(`confPRIVACY_FLAGS', ` ')\n");
    assert_null(mcimport_setting_value(&res, "trusted_users"));
    assert_null(mcimport_setting_value(&res, "smtpd_privacy_flags"));
    assert_true(report_has(1, MCIMPORT_NOTED, "empty value: tern's default stays"));
    assert_true(report_has(2, MCIMPORT_NOTED, "empty value: tern's default stays"));
}

/* every report line of the written report starts with the file name */
static void assert_report_lines_one_each(void)
{
    buf_t report = BUF_INIT;

    mcimport_write_report(&res, "x.mc", &report);
    const char *p = strchr(buf_cstr(&report), '\n') + 1; /* past the summary */
    while (*p && *p != '\n') {
        assert_int_equal(strncmp(p, "x.mc:", 5), 0);
        p = strchr(p, '\n') + 1;
    }
    buf_free(&report);
}

static void test_line_breaks_in_arguments_stay_on_one_line(void **state)
{
    (void)state;
    map("FEATURE(`dnsbl', `bl.example', `Rejected\nsee bl')\n"
        "define(`confAUTH_MECHANISMS', `PLAIN\nLOGIN')\n");
    assert_string_equal(buf_cstr(&res.rbl_reply), "bl.example 550 Rejected see bl\n");
    assert_true(report_has(1, MCIMPORT_MAPPED, "bl.example 550 Rejected see bl"));
    assert_true(report_has(3, MCIMPORT_NOTED, "mech_list: PLAIN LOGIN\""));
    for (size_t i = 0; i < res.nreport; i++)
        assert_null(strchr(res.report[i].text, '\n'));
    assert_report_lines_one_each();
}

static void test_origins_compare_whole_numbers(void **state)
{
    buf_t conf = BUF_INIT;

    (void)state;
    parse("LOCAL_DOMAIN(`a.example')\nLOCAL_DOMAIN(`b.example')\n");
    doc.items[0].line = 12;
    doc.items[1].line = 1;
    struct mcimport_options opt = {"/m", "texthash:/r"};
    mcimport_map(&doc, &opt, &res);
    mcimport_write_conf(&res, "x.mc", &conf);
    assert_non_null(strstr(buf_cstr(&conf), "# x.mc line 12, 1\nmydestination = "));
    buf_free(&conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_nested_quotes_and_dnl, teardown),
        cmocka_unit_test_teardown(test_ocr_forms, teardown),
        cmocka_unit_test_teardown(test_divert_hides_text_and_stray_text_is_an_item, teardown),
        cmocka_unit_test_teardown(test_local_config_lines, teardown),
        cmocka_unit_test_teardown(test_local_config_cipher_list_and_cw, teardown),
        cmocka_unit_test_teardown(test_unterminated_quote_is_reported, teardown),
        cmocka_unit_test_teardown(test_features_and_tables, teardown),
        cmocka_unit_test_teardown(test_unknown_feature_and_define_are_reported, teardown),
        cmocka_unit_test_teardown(test_masquerade_and_site_macros, teardown),
        cmocka_unit_test_teardown(test_defines, teardown),
        cmocka_unit_test_teardown(test_daemon_options_and_milters, teardown),
        cmocka_unit_test_teardown(test_dnsbl_messages, teardown),
        cmocka_unit_test_teardown(test_written_conf_and_report, teardown),
        cmocka_unit_test_teardown(test_relay_domains_file_read_with_relay_domain, teardown),
        cmocka_unit_test_teardown(test_empty_defines_are_reported, teardown),
        cmocka_unit_test_teardown(test_line_breaks_in_arguments_stay_on_one_line, teardown),
        cmocka_unit_test_teardown(test_origins_compare_whole_numbers, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
