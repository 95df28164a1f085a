/*
 * test_filter - a libmilter (sendmail's own milter library) filter for
 * tern's integration tests: it registers every callback, writes one line per
 * callback to a log file, and adds "X-Libmilter: yes" at the end of each
 * message.  tests/integration/test_milter.py runs it to show that tern
 * speaks the protocol the way libmilter expects (no "mi_engine" or
 * "unknown command" complaints on its stderr).
 *
 *   test_filter SOCKET LOGFILE     (SOCKET: "unix:/path" or "inet:PORT@host")
 *
 * libmilter reports protocol trouble with syslog(3); syslog and glibc's
 * fortified __syslog_chk are defined here so that those reports go to
 * stderr as "libmilter: ..." lines, where the test looks for them.
 *
 * Log lines, each after the number of its connection and a space (line
 * breaks in a header value written as "\n"): "negotiate ACTIONS PROTOCOL", "connect HOST", "helo
 * NAME", "envfrom <ADDR> ARGS...", "envrcpt <ADDR>", "data", "header NAME: VALUE", "eoh", "body
 * BYTES", "eom", "abort", "close", "unknown COMMAND".
 */
#include <libmilter/mfapi.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>

static FILE *test_filter_log;
static pthread_mutex_t test_filter_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned long test_filter_connections;

/* test_filter_note - one log line of ctx's connection, written whole and
 * flushed; a line break in the text is written as "\n" */
static void test_filter_note(SMFICTX *ctx, const char *fmt, ...)
{
    unsigned long *conn = smfi_getpriv(ctx);
    char line[8192];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&test_filter_lock);
    fprintf(test_filter_log, "%lu ", conn ? *conn : 0);
    for (const char *p = line; *p; p++) {
        if (*p == '\n')
            fputs("\\n", test_filter_log);
        else if (*p != '\r')
            fputc(*p, test_filter_log);
    }
    fputc('\n', test_filter_log);
    fflush(test_filter_log);
    pthread_mutex_unlock(&test_filter_lock);
}

/* test_filter_report - one libmilter report on stderr */
static void test_filter_report(const char *fmt, va_list ap)
{
    pthread_mutex_lock(&test_filter_lock);
    fputs("libmilter: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
    pthread_mutex_unlock(&test_filter_lock);
}

void syslog(int priority, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    test_filter_report(fmt, ap);
    va_end(ap);
}

void __syslog_chk(int priority, int flag, const char *fmt, ...);
void __syslog_chk(int priority, int flag, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    test_filter_report(fmt, ap);
    va_end(ap);
}

static sfsistat test_filter_negotiate(SMFICTX *ctx, unsigned long actions, unsigned long steps,
                                      unsigned long unused0, unsigned long unused1,
                                      unsigned long *actions_out, unsigned long *steps_out,
                                      unsigned long *unused0_out, unsigned long *unused1_out)
{
    unsigned long *conn = malloc(sizeof(*conn));

    if (conn == NULL)
        return SMFIS_TEMPFAIL;
    pthread_mutex_lock(&test_filter_lock);
    *conn = ++test_filter_connections;
    pthread_mutex_unlock(&test_filter_lock);
    smfi_setpriv(ctx, conn);
    test_filter_note(ctx, "negotiate %lu %lu", actions, steps);
    *actions_out = SMFIF_ADDHDRS;
    *steps_out = 0; /* every step, every reply */
    *unused0_out = 0;
    *unused1_out = 0;
    return SMFIS_CONTINUE;
}

static sfsistat test_filter_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr)
{
    test_filter_note(ctx, "connect %s", host);
    return SMFIS_CONTINUE;
}

static sfsistat test_filter_helo(SMFICTX *ctx, char *name)
{
    test_filter_note(ctx, "helo %s", name);
    return SMFIS_CONTINUE;
}

static sfsistat test_filter_envfrom(SMFICTX *ctx, char **argv)
{
    const char *queue_id = smfi_getsymval(ctx, "i");

    test_filter_note(ctx, "envfrom %s i=%s", argv[0], queue_id ? queue_id : "(none)");
    return SMFIS_CONTINUE;
}

static sfsistat test_filter_envrcpt(SMFICTX *ctx, char **argv)
{
    test_filter_note(ctx, "envrcpt %s", argv[0]);
    return SMFIS_CONTINUE;
}

static sfsistat test_filter_data(SMFICTX *ctx)
{
    test_filter_note(ctx, "data");
    return SMFIS_CONTINUE;
}

static sfsistat test_filter_header(SMFICTX *ctx, char *name, char *value)
{
    test_filter_note(ctx, "header %s: %s", name, value);
    return SMFIS_CONTINUE;
}

static sfsistat test_filter_eoh(SMFICTX *ctx)
{
    test_filter_note(ctx, "eoh");
    return SMFIS_CONTINUE;
}

static sfsistat test_filter_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
    test_filter_note(ctx, "body %zu", len);
    return SMFIS_CONTINUE;
}

static sfsistat test_filter_eom(SMFICTX *ctx)
{
    test_filter_note(ctx, "eom");
    if (smfi_addheader(ctx, "X-Libmilter", "yes") != MI_SUCCESS)
        test_filter_note(ctx, "addheader failed");
    return SMFIS_CONTINUE;
}

static sfsistat test_filter_abort(SMFICTX *ctx)
{
    test_filter_note(ctx, "abort");
    return SMFIS_CONTINUE;
}

static sfsistat test_filter_close(SMFICTX *ctx)
{
    test_filter_note(ctx, "close");
    free(smfi_getpriv(ctx));
    smfi_setpriv(ctx, NULL);
    return SMFIS_CONTINUE;
}

static sfsistat test_filter_unknown(SMFICTX *ctx, const char *command)
{
    test_filter_note(ctx, "unknown %s", command);
    return SMFIS_CONTINUE;
}

int main(int argc, char **argv)
{
    struct smfiDesc desc = {
        .xxfi_name = "tern-test-filter",
        .xxfi_version = SMFI_VERSION,
        .xxfi_flags = SMFIF_ADDHDRS,
        .xxfi_connect = test_filter_connect,
        .xxfi_helo = test_filter_helo,
        .xxfi_envfrom = test_filter_envfrom,
        .xxfi_envrcpt = test_filter_envrcpt,
        .xxfi_header = test_filter_header,
        .xxfi_eoh = test_filter_eoh,
        .xxfi_body = test_filter_body,
        .xxfi_eom = test_filter_eom,
        .xxfi_abort = test_filter_abort,
        .xxfi_close = test_filter_close,
        .xxfi_unknown = test_filter_unknown,
        .xxfi_data = test_filter_data,
        .xxfi_negotiate = test_filter_negotiate,
    };

    if (argc != 3) {
        fprintf(stderr, "usage: test_filter SOCKET LOGFILE\n");
        return 2;
    }
    test_filter_log = fopen(argv[2], "a");
    if (test_filter_log == NULL) {
        perror(argv[2]);
        return 1;
    }
    umask(0); /* tern's services run as mail_owner */
    if (smfi_setconn(argv[1]) == MI_FAILURE || smfi_register(desc) == MI_FAILURE ||
        smfi_opensocket(1) == MI_FAILURE) {
        fprintf(stderr, "test_filter: cannot listen on %s\n", argv[1]);
        return 1;
    }
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
