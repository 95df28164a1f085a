/*
 * test_config - unit tests for lib/config: tern.conf syntax (comments,
 * continuation lines, $name expansion), units, lists, and "file:line: ..."
 * errors for unknown names, bad values and broken lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "config.h"

struct conf_fixture {
    char dir[64];
    char file[96];
    struct config *cfg;
    buf_t err;
};

static int conf_setup(void **state)
{
    struct conf_fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/tern-test-config.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->file, sizeof(f->file), "%s/tern.conf", f->dir);
    buf_init(&f->err);
    *state = f;
    return 0;
}

static int conf_teardown(void **state)
{
    struct conf_fixture *f = *state;

    config_free(f->cfg);
    buf_free(&f->err);
    unlink(f->file);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* conf_load_text - write text as tern.conf and config_load it */
static int conf_load_text(struct conf_fixture *f, const char *text)
{
    FILE *fp = fopen(f->file, "w");

    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
    config_free(f->cfg);
    f->cfg = NULL;
    buf_reset(&f->err);
    return config_load(f->dir, &f->cfg, &f->err);
}

/* conf_expect_error - loading text fails with exactly "tern.conf:LINE: msg..." */
static void conf_expect_error(struct conf_fixture *f, const char *text, long line,
                              const char *msg_prefix)
{
    buf_t want = BUF_INIT;

    assert_int_equal(conf_load_text(f, text), -1);
    assert_null(f->cfg);
    buf_printf(&want, "%s:%ld: %s", f->file, line, msg_prefix);
    if (strncmp(buf_cstr(&f->err), want.data, want.len) != 0)
        fail_msg("error '%s' does not start with '%s'", buf_cstr(&f->err), want.data);
    buf_free(&want);
}

/* test_config_empty_file_gives_table_defaults */
static void test_config_empty_file_gives_table_defaults(void **state)
{
    struct conf_fixture *f = *state;

    assert_int_equal(conf_load_text(f, ""), 0);
    assert_string_equal(config_dir(f->cfg), f->dir);
    assert_string_equal(config_file(f->cfg), f->file);
    assert_int_equal(config_int(f->cfg, "smtpd_client_limit"), 1000);
    assert_int_equal(config_time(f->cfg, "queue_run_delay"), 300);
    assert_int_equal(config_time(f->cfg, "maximal_queue_lifetime"), 5 * 86400);
    assert_int_equal(config_size(f->cfg, "message_size_limit"), 10240000);
    assert_int_equal(config_bool(f->cfg, "service_chroot"), 0);
    assert_string_equal(config_str(f->cfg, "queue_directory"), "/var/spool/tern");
    assert_int_equal(config_is_set(f->cfg, "queue_directory"), 0);
    /* defaults that refer to other parameters are expanded */
    assert_string_equal(config_str(f->cfg, "myorigin"), config_str(f->cfg, "myhostname"));
}

/* test_config_missing_file_names_the_file */
static void test_config_missing_file_names_the_file(void **state)
{
    struct conf_fixture *f = *state;
    struct config *cfg = NULL;

    unlink(f->file);
    assert_int_equal(config_load(f->dir, &cfg, &f->err), -1);
    assert_null(cfg);
    assert_non_null(strstr(buf_cstr(&f->err), f->file));
}

/* test_config_comments_and_blank_lines_are_ignored */
static void test_config_comments_and_blank_lines_are_ignored(void **state)
{
    struct conf_fixture *f = *state;

    assert_int_equal(conf_load_text(f, "# a comment\n"
                                       "\n"
                                       "   \t\n"
                                       "  # an indented comment\n"
                                       "smtpd_workers = 3\n"
                                       "#smtpd_workers = 9\n"),
                     0);
    assert_int_equal(config_int(f->cfg, "smtpd_workers"), 3);
    assert_int_equal(config_is_set(f->cfg, "smtpd_workers"), 1);
}

/* test_config_spaces_around_name_and_value_are_trimmed */
static void test_config_spaces_around_name_and_value_are_trimmed(void **state)
{
    struct conf_fixture *f = *state;

    assert_int_equal(conf_load_text(f, "relayhost=[mx.example]:2525   \n"
                                       "syslog_name   =   tern-x\r\n"),
                     0);
    assert_string_equal(config_str(f->cfg, "relayhost"), "[mx.example]:2525");
    assert_string_equal(config_str(f->cfg, "syslog_name"), "tern-x");
}

/* test_config_continuation_lines_join_the_value */
static void test_config_continuation_lines_join_the_value(void **state)
{
    struct conf_fixture *f = *state;
    size_t n = 0;

    assert_int_equal(conf_load_text(f, "smtpd_banner = mail.example\n"
                                       "    ESMTP\n"
                                       "\tready\n"
                                       "mydestination = a.example,\n"
                                       "  b.example\n"
                                       "  c.example\n"),
                     0);
    assert_string_equal(config_str(f->cfg, "smtpd_banner"), "mail.example ESMTP ready");
    char *const *list = config_list(f->cfg, "mydestination", &n);
    assert_int_equal(n, 3);
    assert_string_equal(list[0], "a.example");
    assert_string_equal(list[1], "b.example");
    assert_string_equal(list[2], "c.example");
    assert_null(list[3]);
}

/* test_config_continuation_without_parameter_names_file_and_line */
static void test_config_continuation_without_parameter_names_file_and_line(void **state)
{
    struct conf_fixture *f = *state;

    conf_expect_error(f, "# first\n  orphan continuation\n", 2, "continuation line");
}

/* test_config_error_in_continued_value_names_its_first_line */
static void test_config_error_in_continued_value_names_its_first_line(void **state)
{
    struct conf_fixture *f = *state;

    conf_expect_error(f, "# comment\nsmtpd_workers =\n  12 13\n", 2, "bad value");
}

/* test_config_unknown_name_names_file_and_line */
static void test_config_unknown_name_names_file_and_line(void **state)
{
    struct conf_fixture *f = *state;
    buf_t want = BUF_INIT;

    assert_int_equal(conf_load_text(f, "smtpd_workers = 2\n\nbogus_name = 1\n"), -1);
    buf_printf(&want, "%s:3: unknown parameter 'bogus_name'", f->file);
    assert_string_equal(buf_cstr(&f->err), want.data);
    buf_free(&want);
}

/* test_config_bad_value_names_file_and_line */
static void test_config_bad_value_names_file_and_line(void **state)
{
    struct conf_fixture *f = *state;

    conf_expect_error(f, "smtpd_workers = 2\nsmtpd_timeout = soon\n", 2, "bad value");
    assert_non_null(strstr(buf_cstr(&f->err), "smtpd_timeout"));
    conf_expect_error(f, "smtpd_client_limit = 12x\n", 1, "bad value");
    conf_expect_error(f, "service_chroot = maybe\n", 1, "bad value");
    conf_expect_error(f, "\n\n\nmessage_size_limit = 10q\n", 4, "bad value");
}

/* test_config_command_line_overrides_win_over_the_file */
static void test_config_command_line_overrides_win_over_the_file(void **state)
{
    struct conf_fixture *f = *state;
    char *good[] = {"queue_run_delay=3600s", "smtpd_listen="};
    char *bad[] = {"queue_run_delay=soon"};
    char *unknown[] = {"no_such_parameter=1"};

    assert_int_equal(conf_load_text(f, "queue_run_delay = 5m\n"), 0);
    config_free(f->cfg);
    f->cfg = NULL;
    assert_int_equal(config_load_overrides(f->dir, good, 2, &f->cfg, &f->err), 0);
    assert_int_equal(config_time(f->cfg, "queue_run_delay"), 3600);
    assert_string_equal(config_str(f->cfg, "smtpd_listen"), "");
    assert_string_equal(config_origin(f->cfg, "queue_run_delay"), "command line -o");
    config_free(f->cfg);
    f->cfg = NULL;
    assert_int_equal(config_load_overrides(f->dir, bad, 1, &f->cfg, &f->err), -1);
    assert_non_null(strstr(buf_cstr(&f->err), "command line -o"));
    buf_reset(&f->err);
    assert_int_equal(config_load_overrides(f->dir, unknown, 1, &f->cfg, &f->err), -1);
    assert_non_null(strstr(buf_cstr(&f->err), "no_such_parameter"));
}

/* test_config_missing_equals_names_file_and_line */
static void test_config_missing_equals_names_file_and_line(void **state)
{
    struct conf_fixture *f = *state;

    conf_expect_error(f, "smtpd_workers = 1\nsmtpd_timeout 30s\n", 2, "missing '='");
}

/* test_config_missing_or_bad_name_is_an_error */
static void test_config_missing_or_bad_name_is_an_error(void **state)
{
    struct conf_fixture *f = *state;

    conf_expect_error(f, "= 5\n", 1, "missing parameter name");
    conf_expect_error(f, "#\nsmtpd-workers = 5\n", 2, "bad parameter name");
}

/* test_config_overlong_line_is_an_error */
static void test_config_overlong_line_is_an_error(void **state)
{
    struct conf_fixture *f = *state;
    buf_t text = BUF_INIT;

    buf_puts(&text, "smtpd_banner = ");
    for (int i = 0; i < 70000; i++)
        buf_putc(&text, 'x');
    buf_putc(&text, '\n');
    conf_expect_error(f, text.data, 1, "line too long");
    buf_free(&text);
}

/* test_config_dollar_name_and_braces_expand_in_any_order */
static void test_config_dollar_name_and_braces_expand_in_any_order(void **state)
{
    struct conf_fixture *f = *state;

    assert_int_equal(conf_load_text(f, "smtpd_banner = $myhostname ESMTP ${mydomain}x\n"
                                       "myorigin = ${mydomain}\n"
                                       "myhostname = mx.example.org\n"
                                       "mydomain = example.org\n"),
                     0);
    assert_string_equal(config_str(f->cfg, "smtpd_banner"), "mx.example.org ESMTP example.orgx");
    assert_string_equal(config_str(f->cfg, "myorigin"), "example.org");
    /* the raw value stays unexpanded */
    assert_string_equal(config_raw(f->cfg, "myorigin"), "${mydomain}");
}

/* test_config_expansion_is_recursive_and_typed */
static void test_config_expansion_is_recursive_and_typed(void **state)
{
    struct conf_fixture *f = *state;

    assert_int_equal(conf_load_text(f, "smtpd_timeout = $smtp_command_timeout\n"
                                       "smtp_command_timeout = ${dns_timeout}\n"
                                       "dns_timeout = 2m\n"),
                     0);
    assert_int_equal(config_time(f->cfg, "smtpd_timeout"), 120);
}

/* test_config_double_dollar_and_unknown_names_stay_literal */
static void test_config_double_dollar_and_unknown_names_stay_literal(void **state)
{
    struct conf_fixture *f = *state;

    assert_int_equal(conf_load_text(f, "smtpd_banner = cost $$5 $nosuch ${nosuch} $ end$\n"), 0);
    assert_string_equal(config_str(f->cfg, "smtpd_banner"), "cost $5 $nosuch ${nosuch} $ end$");
}

/* test_config_expansion_loop_is_an_error_with_file_and_line */
static void test_config_expansion_loop_is_an_error_with_file_and_line(void **state)
{
    struct conf_fixture *f = *state;

    conf_expect_error(f, "myhostname = $mydomain\nmydomain = ${myhostname}\n", 1, "myhostname");
    assert_non_null(strstr(buf_cstr(&f->err), "loop"));
    conf_expect_error(f, "# self\nrelayhost = x$relayhost\n", 2, "relayhost");
    assert_non_null(strstr(buf_cstr(&f->err), "loop"));
}

/* test_config_expansion_size_is_bounded - a short file whose values expand
 * to gigabytes ("billion laughs": each parameter is ten copies of the next)
 * must be refused quickly, not expanded until memory runs out.  Runs in a
 * child with a 3 s alarm so a failure cannot hang the suite. */
static void test_config_expansion_size_is_bounded(void **state)
{
    static const char *chain[] = {"relayhost",       "syslog_name",
                                  "syslog_facility", "maillog_file",
                                  "mail_owner",      "data_directory",
                                  "queue_directory", "daemon_directory",
                                  "smtpd_banner",    "local_transport_defer_reason"};
    const size_t n = sizeof(chain) / sizeof(chain[0]);
    struct conf_fixture *f = *state;
    buf_t text = BUF_INIT;
    int status = 0;

    for (size_t i = 0; i + 1 < n; i++) {
        buf_printf(&text, "%s = ", chain[i]);
        for (int k = 0; k < 10; k++)
            buf_printf(&text, "$%s", chain[i + 1]);
        buf_putc(&text, '\n');
    }
    buf_printf(&text, "%s = xxxxxxxxxx\n", chain[n - 1]);
    FILE *fp = fopen(f->file, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(text.data, 1, text.len, fp), text.len);
    assert_int_equal(fclose(fp), 0);
    buf_free(&text);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* no cmocka asserts in the child */
        alarm(3);
        _exit(config_load(f->dir, &f->cfg, &f->err) == -1 ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("config_load still expanding after 3 s (signal %d)", WTERMSIG(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("a value expanding to 10^10 bytes was accepted");
}

/* test_config_time_units */
static void test_config_time_units(void **state)
{
    static const struct {
        const char *in;
        long long out;
    } ok[] = {{"0", 0},     {"30", 30},    {"30s", 30},    {"5m", 300},
              {"2h", 7200}, {"1d", 86400}, {"1w", 604800}, {"3H", 10800}};
    static const char *bad[] = {"",    "s",    "5x", "-1",  "1 h",
                                "5mm", "1.5h", "h5", "5s ", "99999999999999999999"};
    long long v;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = -1;
        if (config_parse_time(ok[i].in, &v) != 0 || v != ok[i].out)
            fail_msg("time '%s': got %lld, want %lld", ok[i].in, v, ok[i].out);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (config_parse_time(bad[i], &v) == 0)
            fail_msg("time '%s' accepted as %lld", bad[i], v);
}

/* test_config_size_units */
static void test_config_size_units(void **state)
{
    static const struct {
        const char *in;
        long long out;
    } ok[] = {{"0", 0},        {"1024", 1024},       {"10k", 10240}, {"10K", 10240},
              {"2m", 2097152}, {"1g", 1073741824LL}, {"100b", 100}};
    static const char *bad[] = {"",    "k",    "10x",  "-5",
                                "1 k", "10kb", "1.5m", "99999999999999999999g"};
    long long v;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = -1;
        if (config_parse_size(ok[i].in, &v) != 0 || v != ok[i].out)
            fail_msg("size '%s': got %lld, want %lld", ok[i].in, v, ok[i].out);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (config_parse_size(bad[i], &v) == 0)
            fail_msg("size '%s' accepted as %lld", bad[i], v);
}

/* test_config_units_apply_in_the_file */
static void test_config_units_apply_in_the_file(void **state)
{
    struct conf_fixture *f = *state;

    assert_int_equal(conf_load_text(f, "smtpd_timeout = 2m\n"
                                       "maximal_queue_lifetime = 1w\n"
                                       "message_size_limit = 20m\n"
                                       "header_size_limit = 64k\n"),
                     0);
    assert_int_equal(config_time(f->cfg, "smtpd_timeout"), 120);
    assert_int_equal(config_time(f->cfg, "maximal_queue_lifetime"), 604800);
    assert_int_equal(config_size(f->cfg, "message_size_limit"), 20 * 1024 * 1024);
    assert_int_equal(config_size(f->cfg, "header_size_limit"), 65536);
}

/* test_config_bool_and_int_values */
static void test_config_bool_and_int_values(void **state)
{
    static const char *yes[] = {"yes", "YES", "true", "on", "1"};
    static const char *no[] = {"no", "False", "off", "0"};
    int b;
    long long n;

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        b = -1;
        assert_int_equal(config_parse_bool(yes[i], &b), 0);
        assert_int_equal(b, 1);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        b = -1;
        assert_int_equal(config_parse_bool(no[i], &b), 0);
        assert_int_equal(b, 0);
    }
    assert_int_equal(config_parse_bool("y", &b), -1);
    assert_int_equal(config_parse_bool("", &b), -1);
    assert_int_equal(config_parse_int("-12", &n), 0);
    assert_int_equal(n, -12);
    assert_int_equal(config_parse_int("", &n), -1);
    assert_int_equal(config_parse_int("12abc", &n), -1);
    assert_int_equal(config_parse_int("99999999999999999999", &n), -1);
}

/* test_config_lists_split_on_commas_and_white_space */
static void test_config_lists_split_on_commas_and_white_space(void **state)
{
    struct conf_fixture *f = *state;
    size_t n = 99;

    assert_int_equal(conf_load_text(f, "mydestination = a.example, b.example  c.example,,\t"
                                       "d.example ,\n"
                                       "import_environment =\n"),
                     0);
    char *const *list = config_list(f->cfg, "mydestination", &n);
    assert_int_equal(n, 4);
    assert_string_equal(list[0], "a.example");
    assert_string_equal(list[1], "b.example");
    assert_string_equal(list[2], "c.example");
    assert_string_equal(list[3], "d.example");
    assert_null(list[4]);
    list = config_list(f->cfg, "import_environment", &n);
    assert_int_equal(n, 0);
    assert_non_null(list);
    assert_null(list[0]);
}

/* test_config_list_keeps_braced_items_together */
static void test_config_list_keeps_braced_items_together(void **state)
{
    struct conf_fixture *f = *state;
    size_t n = 0;

    assert_int_equal(conf_load_text(f, "mydestination = inline:{a=b, c=d}, static:{two words} x\n"),
                     0);
    char *const *list = config_list(f->cfg, "mydestination", &n);
    assert_int_equal(n, 3);
    assert_string_equal(list[0], "inline:{a=b, c=d}");
    assert_string_equal(list[1], "static:{two words}");
    assert_string_equal(list[2], "x");
}

/* test_config_mydestination_file_items_read_the_names_file */
static void test_config_mydestination_file_items_read_the_names_file(void **state)
{
    struct conf_fixture *f = *state;
    char names[128], text[256];
    size_t n = 0;

    snprintf(names, sizeof(names), "%s/local-host-names", f->dir);
    FILE *fp = fopen(names, "w");
    assert_non_null(fp);
    fputs("# hosts we take mail for\njohn.doe.org doe.org\n\nnew.test, other.test # two\n", fp);
    assert_int_equal(fclose(fp), 0);
    snprintf(text, sizeof(text), "mydestination = here.test, %s\n", names);
    assert_int_equal(conf_load_text(f, text), 0);
    char *const *list = config_list(f->cfg, "mydestination", &n);
    assert_int_equal(n, 5);
    assert_string_equal(list[0], "here.test");
    assert_string_equal(list[1], "john.doe.org");
    assert_string_equal(list[2], "doe.org");
    assert_string_equal(list[3], "new.test");
    assert_string_equal(list[4], "other.test");
    unlink(names);
    assert_int_equal(conf_load_text(f, text), -1);
    assert_non_null(strstr(buf_cstr(&f->err), "tern.conf:1: mydestination: cannot read "));
}

/* test_config_optional_names_file_may_be_missing */
static void test_config_optional_names_file_may_be_missing(void **state)
{
    struct conf_fixture *f = *state;
    char names[128], text[256];
    size_t n = 0;

    snprintf(names, sizeof(names), "%s/virtuserdomains", f->dir);
    snprintf(text, sizeof(text), "mydestination = here.test, optional:%s\n", names);
    assert_int_equal(conf_load_text(f, text), 0); /* missing: names nothing */
    char *const *list = config_list(f->cfg, "mydestination", &n);
    assert_int_equal(n, 1);
    assert_string_equal(list[0], "here.test");
    FILE *fp = fopen(names, "w");
    assert_non_null(fp);
    fputs("virtual.test\n", fp);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(conf_load_text(f, text), 0); /* present: read as usual */
    list = config_list(f->cfg, "mydestination", &n);
    assert_int_equal(n, 2);
    assert_string_equal(list[1], "virtual.test");
    unlink(names);
    snprintf(text, sizeof(text), "mydestination = optional:%s/x\n", f->file);
    assert_int_equal(conf_load_text(f, text), -1); /* ENOTDIR: only missing is forgiven */
    assert_non_null(strstr(buf_cstr(&f->err), "cannot read "));
}

/* test_config_list_items_expand_parameters */
static void test_config_list_items_expand_parameters(void **state)
{
    struct conf_fixture *f = *state;
    size_t n = 0;

    assert_int_equal(conf_load_text(f, "myhostname = mx.example.org\n"), 0);
    char *const *list = config_list(f->cfg, "mydestination", &n);
    assert_int_equal(n, 3);
    assert_string_equal(list[0], "mx.example.org");
    assert_string_equal(list[1], "localhost.example.org");
    assert_string_equal(list[2], "localhost");
}

/* test_config_set_rejects_unknown_name_with_origin */
static void test_config_set_rejects_unknown_name_with_origin(void **state)
{
    struct config *cfg = config_new_defaults("/nonexistent");
    buf_t err = BUF_INIT;

    assert_int_equal(config_set(cfg, "nosuch", "1", "command line", &err), -1);
    assert_string_equal(buf_cstr(&err), "command line: unknown parameter 'nosuch'");
    assert_int_equal(config_set(cfg, "smtpd_workers", "7", "-o", &err), 0);
    assert_int_equal(config_is_set(cfg, "smtpd_workers"), 1);
    assert_string_equal(config_raw(cfg, "smtpd_workers"), "7");
    assert_int_equal(config_int(cfg, "smtpd_workers"), 7);
    assert_non_null(config_find_param("smtpd_workers"));
    assert_null(config_find_param("nosuch"));
    assert_string_equal(config_file(cfg), "/nonexistent/tern.conf");
    buf_free(&err);
    config_free(cfg);
}

/* test_config_default_dir_prefers_argument_then_environment */
static void test_config_default_dir_prefers_argument_then_environment(void **state)
{
    setenv("TERN_CONFIG_DIR", "/env/dir", 1);
    assert_string_equal(config_default_dir("/arg/dir"), "/arg/dir");
    assert_string_equal(config_default_dir(NULL), "/env/dir");
    assert_string_equal(config_default_dir(""), "/env/dir");
    unsetenv("TERN_CONFIG_DIR");
    assert_non_null(config_default_dir(NULL));
    assert_true(strlen(config_default_dir(NULL)) > 0);
}

/* test_config_listener_cannot_set_process_wide_smtpd_parameters: the SASL
 * application, the sender login tables and the worker's own settings serve
 * every listener at once */
static void test_config_listener_cannot_set_process_wide_smtpd_parameters(void **state)
{
    struct conf_fixture *f = *state;
    struct config *view;

    conf_expect_error(f, "submission.smtpd_sasl_path = other\n", 1,
                      "'submission.smtpd_sasl_path': smtpd_sasl_path is one setting for every "
                      "listener");
    conf_expect_error(f, "\nsmtps.smtpd_sender_login_maps = texthash:/x\n", 2,
                      "'smtps.smtpd_sender_login_maps': smtpd_sender_login_maps is one setting");
    conf_expect_error(f, "smtps.smtpd_workers = 4\n", 1,
                      "'smtps.smtpd_workers': smtpd_workers is one setting for every listener");
    assert_int_equal(conf_load_text(f, "smtpd_sasl_path = mta\n"
                                       "submission.smtpd_sasl_security_options = noplaintext\n"),
                     0);
    view = config_listener(f->cfg, "submission", &f->err);
    assert_non_null(view);
    assert_string_equal(config_str(view, "smtpd_sasl_path"), "mta");
    assert_string_equal(config_list(view, "smtpd_sasl_security_options", NULL)[0], "noplaintext");
    config_free(view);
}

/* test_config_listener_views - global value < listener defaults < LISTENER.name */
static void test_config_listener_views(void **state)
{
    struct conf_fixture *f = *state;
    struct config *sub, *smtpd, *smtps;

    assert_int_equal(conf_load_text(f, "smtpd_tls_security_level = may\n"
                                       "smtpd_banner = global\n"
                                       "submission.smtpd_banner = for 587\n"
                                       "smtps.smtpd_auth_required = no\n"),
                     0);
    sub = config_listener(f->cfg, "submission", &f->err);
    smtpd = config_listener(f->cfg, "smtpd", &f->err);
    smtps = config_listener(f->cfg, "smtps", &f->err);
    assert_non_null(sub);
    assert_non_null(smtpd);
    assert_non_null(smtps);
    assert_string_equal(config_listener_name(sub), "submission");
    assert_null(config_listener_name(f->cfg));
    /* the listener's built-in default beats the global value */
    assert_string_equal(config_str(sub, "smtpd_tls_security_level"), "encrypt");
    assert_string_equal(config_str(smtpd, "smtpd_tls_security_level"), "may");
    assert_true(config_bool(sub, "smtpd_auth_required"));
    assert_false(config_bool(smtpd, "smtpd_auth_required"));
    /* the file's LISTENER.name beats both */
    assert_string_equal(config_str(sub, "smtpd_banner"), "for 587");
    assert_string_equal(config_str(smtpd, "smtpd_banner"), "global");
    assert_false(config_bool(smtps, "smtpd_auth_required"));
    assert_true(config_bool(smtps, "smtpd_tls_wrappermode"));
    assert_int_equal(config_override_count(f->cfg), 2);
    config_free(sub);
    config_free(smtpd);
    config_free(smtps);
}

/* test_config_listener_errors_name_the_line */
static void test_config_listener_errors_name_the_line(void **state)
{
    struct conf_fixture *f = *state;

    conf_expect_error(f, "\nmsa.smtpd_banner = x\n", 2,
                      "'msa.smtpd_banner': no listener named 'msa'");
    conf_expect_error(f, "submission.myhostname = x\n", 1,
                      "'submission.myhostname': only smtpd_* parameters");
    conf_expect_error(f, "submission.smtpd_nonsense = x\n", 1,
                      "unknown parameter 'smtpd_nonsense'");
    conf_expect_error(f, "\n\nsubmission.smtpd_timeout = soon\n", 3, "bad value 'soon'");
}

/* test_config_every_table_entry_is_well_formed - defaults parse, names unique */
static void test_config_every_table_entry_is_well_formed(void **state)
{
    struct config *cfg = config_new_defaults("/nonexistent");

    for (size_t i = 0; param_table[i].name; i++) {
        assert_non_null(param_table[i].default_value);
        assert_non_null(param_table[i].help);
        assert_ptr_equal(config_find_param(param_table[i].name), &param_table[i]);
        assert_non_null(config_str(cfg, param_table[i].name));
    }
    config_free(cfg);
}

#define CONF_TEST(t) cmocka_unit_test_setup_teardown(t, conf_setup, conf_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        CONF_TEST(test_config_empty_file_gives_table_defaults),
        CONF_TEST(test_config_missing_file_names_the_file),
        CONF_TEST(test_config_comments_and_blank_lines_are_ignored),
        CONF_TEST(test_config_spaces_around_name_and_value_are_trimmed),
        CONF_TEST(test_config_continuation_lines_join_the_value),
        CONF_TEST(test_config_continuation_without_parameter_names_file_and_line),
        CONF_TEST(test_config_error_in_continued_value_names_its_first_line),
        CONF_TEST(test_config_unknown_name_names_file_and_line),
        CONF_TEST(test_config_bad_value_names_file_and_line),
        CONF_TEST(test_config_command_line_overrides_win_over_the_file),
        CONF_TEST(test_config_missing_equals_names_file_and_line),
        CONF_TEST(test_config_missing_or_bad_name_is_an_error),
        CONF_TEST(test_config_overlong_line_is_an_error),
        CONF_TEST(test_config_dollar_name_and_braces_expand_in_any_order),
        CONF_TEST(test_config_expansion_is_recursive_and_typed),
        CONF_TEST(test_config_double_dollar_and_unknown_names_stay_literal),
        CONF_TEST(test_config_expansion_loop_is_an_error_with_file_and_line),
        CONF_TEST(test_config_expansion_size_is_bounded),
        cmocka_unit_test(test_config_time_units),
        cmocka_unit_test(test_config_size_units),
        CONF_TEST(test_config_units_apply_in_the_file),
        cmocka_unit_test(test_config_bool_and_int_values),
        CONF_TEST(test_config_lists_split_on_commas_and_white_space),
        CONF_TEST(test_config_list_keeps_braced_items_together),
        CONF_TEST(test_config_mydestination_file_items_read_the_names_file),
        CONF_TEST(test_config_optional_names_file_may_be_missing),
        CONF_TEST(test_config_list_items_expand_parameters),
        cmocka_unit_test(test_config_set_rejects_unknown_name_with_origin),
        cmocka_unit_test(test_config_default_dir_prefers_argument_then_environment),
        CONF_TEST(test_config_listener_cannot_set_process_wide_smtpd_parameters),
        CONF_TEST(test_config_listener_views),
        CONF_TEST(test_config_listener_errors_name_the_line),
        cmocka_unit_test(test_config_every_table_entry_is_well_formed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
