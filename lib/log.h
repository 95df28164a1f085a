/*
 * log - one line per event, to syslog (LOG_MAIL), a file, or stderr.
 *
 * Line format (DESIGN §8): "tern/SERVICE[pid]: QUEUEID: key=value, ...", and
 * "NAME[pid]: ..." with maillog_format = sendmail (sendmail's -L tag); the
 * message event lines themselves are maillog's (maillog.h).  When
 * logging to a file (maillog_file) each line is prefixed with
 * "Mon dd hh:mm:ss host " like syslog does, so the file greps like maillog.
 * The file is opened O_APPEND and each line is written with one write(2), so
 * several processes can share it.  Never log a secret.
 *
 * syslog goes to the facility syslog_facility names (default mail).
 *
 * log_fatal is for configuration and resource errors at start-up (exit 1);
 * log_panic is for a broken invariant (abort).
 */
#ifndef TERN_LOG_H
#define TERN_LOG_H

#include <stdarg.h>

enum log_target { LOG_TARGET_SYSLOG, LOG_TARGET_FILE, LOG_TARGET_STDERR };

/* log_init - set the service name ("smtpd") and the target; path is for FILE */
void log_init(const char *service, enum log_target target, const char *path);
/* log_init_from_config - choose the target from maillog_file / syslog_name;
 * to_stderr forces stderr (tern start -f) */
struct config;
void log_init_from_config(const char *service, const struct config *cfg, int to_stderr);
/* log_facility_parse - LOG_MAIL etc. for "mail", "local0" ...; -1 if unknown */
int log_facility_parse(const char *name);
/* log_set_verbose - enable log_debug output */
void log_set_verbose(int on);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_info_as - log_info with another tag for this line ("sendmail") */
void log_info_as(const char *tag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
