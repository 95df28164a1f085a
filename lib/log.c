/*
 * log - syslog, file or stderr logging (see log.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "maillog.h"

static enum log_target log_target = LOG_TARGET_STDERR;
static int log_fd = 2;
static int log_also_stderr;
static int log_verbose;
static char log_tag[64] = "tern";
static char log_host[256];
static int log_facility = LOG_MAIL;

/* the syslog facilities syslog_facility may name */
static const struct {
    const char *name;
    int facility;
} log_facilities[] = {
    {"mail", LOG_MAIL},         {"daemon", LOG_DAEMON}, {"user", LOG_USER},
    {"local0", LOG_LOCAL0},     {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2},
    {"local3", LOG_LOCAL3},     {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
    {"local6", LOG_LOCAL6},     {"local7", LOG_LOCAL7}, {"auth", LOG_AUTH},
    {"authpriv", LOG_AUTHPRIV}, {"news", LOG_NEWS},     {"uucp", LOG_UUCP},
    {"cron", LOG_CRON},         {"syslog", LOG_SYSLOG}, {"lpr", LOG_LPR},
    {"ftp", LOG_FTP},
};

int log_facility_parse(const char *name)
{
    for (size_t i = 0; i < sizeof(log_facilities) / sizeof(log_facilities[0]); i++)
        if (strcasecmp(name, log_facilities[i].name) == 0)
            return log_facilities[i].facility;
    return -1;
}

/* log_set_tag - "tern/smtpd" from the syslog name and the service; the
 * name alone ("sm-mta") in the sendmail format, as sendmail's -L tag */
static void log_set_tag(const char *prefix, const char *service)
{
    if (maillog_get_format() == MAILLOG_SENDMAIL)
        snprintf(log_tag, sizeof(log_tag), "%s", prefix);
    else
        snprintf(log_tag, sizeof(log_tag), "%s/%s", prefix, service);
    if (gethostname(log_host, sizeof(log_host)) != 0)
        snprintf(log_host, sizeof(log_host), "localhost");
    log_host[sizeof(log_host) - 1] = 0;
    char *dot = strchr(log_host, '.');
    if (dot)
        *dot = 0;
}

void log_init(const char *service, enum log_target target, const char *path)
{
    log_set_tag("tern", service);
    log_target = target;
    if (target == LOG_TARGET_SYSLOG) {
        openlog(log_tag, LOG_PID | LOG_NDELAY, log_facility);
    } else if (target == LOG_TARGET_FILE) {
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
            log_target = LOG_TARGET_STDERR;
            log_fd = 2;
            log_error("cannot open maillog_file %s: %s; logging to stderr", path, strerror(errno));
            return;
        }
        log_fd = fd;
    } else {
        log_fd = 2;
    }
}

void log_init_from_config(const char *service, const struct config *cfg, int to_stderr)
{
    const char *file = config_str(cfg, "maillog_file");
    int format = maillog_format_parse(config_str(cfg, "maillog_format"));
    int facility = log_facility_parse(config_str(cfg, "syslog_facility"));

    maillog_set_format(format < 0 ? MAILLOG_POSTFIX : (enum maillog_format)format);
    log_facility = facility < 0 ? LOG_MAIL : facility;
    if (*file)
        log_init(service, LOG_TARGET_FILE, file);
    else if (to_stderr)
        log_init(service, LOG_TARGET_STDERR, NULL);
    else
        log_init(service, LOG_TARGET_SYSLOG, NULL);
    log_also_stderr = to_stderr && *file;
    log_set_tag(config_str(cfg, "syslog_name"), service);
    if (log_target == LOG_TARGET_SYSLOG) {
        closelog();
        openlog(log_tag, LOG_PID | LOG_NDELAY, log_facility);
    }
    if (format < 0)
        log_warn("unknown maillog_format \"%s\"; using postfix", config_str(cfg, "maillog_format"));
    if (facility < 0)
        log_warn("unknown syslog_facility \"%s\"; using mail", config_str(cfg, "syslog_facility"));
}

void log_set_verbose(int on)
{
    log_verbose = on;
}

/* log_emit_tagged - format one line and send it to the target with one
 * write; tag NULL is the process's own */
static void log_emit_tagged(const char *tag, int prio, const char *level, const char *fmt,
                            va_list ap)
{
    buf_t line = BUF_INIT;
    buf_t msg = BUF_INIT;
    int saved = errno;

    if (level)
        buf_printf(&msg, "%s: ", level);
    buf_vprintf(&msg, fmt, ap);
    for (size_t i = 0; i < msg.len; i++)
        if (msg.data[i] == '\n' || msg.data[i] == '\r')
            msg.data[i] = ' ';
    if (log_target == LOG_TARGET_SYSLOG && tag != NULL) {
        openlog(tag, LOG_PID | LOG_NDELAY, log_facility);
        syslog(prio, "%s", buf_cstr(&msg));
        openlog(log_tag, LOG_PID | LOG_NDELAY, log_facility);
    } else if (log_target == LOG_TARGET_SYSLOG) {
        syslog(prio, "%s", buf_cstr(&msg));
    } else {
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
        buf_printf(&line, "%s %s %s[%ld]: %s\n", stamp, log_host, tag ? tag : log_tag,
                   (long)getpid(), buf_cstr(&msg));
        if (write(log_fd, line.data, line.len) < 0) {
            /* nowhere else to report it */
        }
        if (log_also_stderr && write(2, line.data, line.len) < 0) {
            /* ditto */
        }
    }
    buf_free(&line);
    buf_free(&msg);
    errno = saved;
}

static void log_emit(int prio, const char *level, const char *fmt, va_list ap)
{
    log_emit_tagged(NULL, prio, level, fmt, ap);
}

void log_info_as(const char *tag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit_tagged(tag, LOG_INFO, NULL, fmt, ap);
    va_end(ap);
}

#define LOG_FUNC(fname, prio, level)                                                               \
    void fname(const char *fmt, ...)                                                               \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_emit(prio, level, fmt, ap);                                                            \
        va_end(ap);                                                                                \
    }

LOG_FUNC(log_info, LOG_INFO, NULL)
LOG_FUNC(log_warn, LOG_WARNING, "warning")
LOG_FUNC(log_error, LOG_ERR, "error")

void log_debug(const char *fmt, ...)
{
    va_list ap;
    if (!log_verbose)
        return;
    va_start(ap, fmt);
    log_emit(LOG_DEBUG, "debug", fmt, ap);
    va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_CRIT, "fatal", fmt, ap);
    va_end(ap);
    exit(1);
}

void log_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_CRIT, "panic", fmt, ap);
    va_end(ap);
    abort();
}
