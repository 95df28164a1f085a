/*
 * auth_test - `tern auth-test [-l LISTENER] USER`, the password on standard
 * input (first line; asked for without echo on a terminal).
 *
 * The check is tern-auth's, step for step: Cyrus SASL set up with
 * smtpd_sasl_path and cyrus_sasl_config_path (as root), then the drop to
 * mail_owner (so a sasldb that tern-auth cannot read fails here too), a
 * connection with the listener's policy as under TLS, and one PLAIN
 * exchange, bounded by auth_time_limit.  Prints "ok: ..." or "failed:
 * ...", never the password.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "auth_sasl.h"
#include "auth_test.h"
#include "config.h"
#include "privs.h"

/* longest password read */
#define AUTH_TEST_PASSWORD_MAX 1024

static void auth_test_usage(void)
{
    fprintf(stderr,
            "usage: tern auth-test [-l LISTENER] USER   (the password on standard input)\n");
}

/* auth_test_on_alarm - auth_time_limit is over */
static void auth_test_on_alarm(int sig)
{
    static const char text[] = "failed: no answer within auth_time_limit\n";

    (void)!write(STDOUT_FILENO, text, sizeof(text) - 1);
    _exit(1);
}

/* auth_test_password - one line from stdin (no echo on a terminal); -1 at EOF */
static int auth_test_password(char *pw, size_t size)
{
    struct termios saved, quiet;
    int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
    int rc = 0;

    if (tty) {
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        fputs("Password: ", stderr);
    }
    if (fgets(pw, (int)size, stdin) == NULL)
        rc = -1;
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        fputc('\n', stderr);
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    return rc;
}

/* auth_test_view - the listener's view of cfg, or NULL (usage) */
static struct config *auth_test_view(const struct config *cfg, const char *listener)
{
    buf_t err = BUF_INIT;
    struct config *view = NULL;

    if (config_listener_find(listener) == NULL)
        fprintf(stderr, "tern auth-test: no listener '%s' (smtpd, submission, smtps)\n", listener);
    else if ((view = config_listener(cfg, listener, &err)) == NULL)
        fprintf(stderr, "tern auth-test: %s\n", buf_cstr(&err));
    buf_free(&err);
    return view;
}

/* auth_test_warn_files - what tern-auth would warn about the sasldb */
static void auth_test_warn_files(const struct config *cfg)
{
    buf_t warnings = BUF_INIT;

    if (auth_sasl_sasldb_check(cfg, &warnings) < 0)
        fprintf(stderr, "%s", buf_cstr(&warnings));
    buf_free(&warnings);
}

/* auth_test_plain - one PLAIN exchange; the exit code */
static int auth_test_plain(const struct auth_sasl_settings *st, const char *user,
                           const char *password)
{
    buf_t err = BUF_INIT, text = BUF_INIT, response = BUF_INIT;
    sasl_conn_t *conn = auth_sasl_conn_new(st, AUTH_SASL_TLS_SSF, NULL, &err);
    const char *out = NULL;
    unsigned outlen = 0;
    enum auth_sasl_status status;
    int rc;

    if (conn == NULL) {
        printf("failed: %s\n", buf_cstr(&err));
        buf_free(&err);
        return 1;
    }
    buf_putc(&response, '\0'); /* no authorization identity */
    buf_puts(&response, user);
    buf_putc(&response, '\0');
    buf_puts(&response, password);
    rc = sasl_server_start(conn, "PLAIN", response.data, (unsigned)response.len, &out, &outlen);
    explicit_bzero(response.data, response.len);
    status = auth_sasl_outcome(rc, &text);
    if (status == AUTH_SASL_OK && auth_sasl_username(conn, &text) == 0)
        printf("ok: authenticated as %s\n", buf_cstr(&text));
    else
        printf("failed: %s (%s)\n", status == AUTH_SASL_OK ? "no user name" : buf_cstr(&text),
               sasl_errdetail(conn));
    sasl_dispose(&conn);
    buf_free(&response);
    buf_free(&text);
    buf_free(&err);
    return status == AUTH_SASL_OK ? 0 : 1;
}

/* auth_test_run - set up as tern-auth does, then check */
static int auth_test_run(const struct config *view, const char *user, const char *password)
{
    struct auth_sasl_settings st;
    buf_t err = BUF_INIT;
    int rc = 2;

    if (auth_sasl_settings_load(&st, view, &err) < 0 || auth_sasl_init(view, &err) < 0) {
        fprintf(stderr, "tern auth-test: %s\n", buf_cstr(&err));
        buf_free(&err);
        return 2;
    }
    if (geteuid() == 0)
        privs_drop_with_groups(config_str(view, "mail_owner"));
    auth_test_warn_files(view);
    signal(SIGALRM, auth_test_on_alarm);
    alarm((unsigned)config_time(view, "auth_time_limit"));
    rc = auth_test_plain(&st, user, password);
    alarm(0);
    auth_sasl_settings_free(&st);
    auth_sasl_done();
    buf_free(&err);
    return rc;
}

int tern_auth_test_main(int argc, char **argv, const struct config *cfg)
{
    const char *listener = "smtpd";
    char password[AUTH_TEST_PASSWORD_MAX];
    struct config *view;
    int rc;
    int c;

    optind = 1;
    while ((c = getopt(argc, argv, "l:")) != -1) {
        if (c != 'l') {
            auth_test_usage();
            return 2;
        }
        listener = optarg;
    }
    if (optind + 1 != argc || argv[optind][0] == '\0') {
        auth_test_usage();
        return 2;
    }
    if ((view = auth_test_view(cfg, listener)) == NULL)
        return 2;
    if (auth_test_password(password, sizeof(password)) < 0) {
        fprintf(stderr, "tern auth-test: no password on standard input\n");
        config_free(view);
        return 2;
    }
    rc = auth_test_run(view, argv[optind], password);
    explicit_bzero(password, sizeof(password));
    config_free(view);
    return rc;
}
