/*
 * log - syslog, file or stderr logging (see log.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "log.h"

static enum log_target log_target = LOG_TARGET_STDERR;
static int log_fd = 2;
static int log_also_stderr;
static int log_verbose;
static char log_tag[64] = "tern";
static char log_host[256];

/* log_set_tag - "tern/smtpd" from the syslog name and the service */
static void log_set_tag(const char *prefix, const char *service)
{
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
        openlog(log_tag, LOG_PID | LOG_NDELAY, LOG_MAIL);
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
        openlog(log_tag, LOG_PID | LOG_NDELAY, LOG_MAIL);
    }
}

void log_set_verbose(int on)
{
    log_verbose = on;
}

/* log_emit - format one line and send it to the target with one write */
static void log_emit(int prio, const char *level, const char *fmt, va_list ap)
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
    if (log_target == LOG_TARGET_SYSLOG) {
        syslog(prio, "%s", buf_cstr(&msg));
    } else {
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
        buf_printf(&line, "%s %s %s[%ld]: %s\n", stamp, log_host, log_tag, (long)getpid(),
                   buf_cstr(&msg));
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
