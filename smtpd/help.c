/*
 * help - HELP from sendmail's help file format (help.h, lib/smtp_ext.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "help.h"
#include "log.h"
#include "session.h"
#include "smtp_ext.h"
#include "tern_build.h"

/* a help file larger than this is not a help file */
#define HELP_FILE_MAX (1024 * 1024)

/* help_read - the whole file into out; -1 with errno (EFBIG: too large) */
static int help_read(const char *path, buf_t *out)
{
    char chunk[8192];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    if (fd < 0)
        return -1;
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || out->len + (size_t)n > HELP_FILE_MAX) {
            int saved = n < 0 ? errno : EFBIG;
            close(fd);
            errno = saved;
            return -1;
        }
        buf_append(out, chunk, (size_t)n);
    }
    close(fd);
    return 0;
}

void smtpd_help_load(struct smtpd_config *cfg, const struct config *conf)
{
    buf_t data = BUF_INIT;

    cfg->help_file = config_str(conf, "help_file");
    cfg->help = NULL;
    if (cfg->help_file[0] == '\0')
        return;
    if (help_read(cfg->help_file, &data) < 0) {
        log_warn("%s: help_file %s: %s; HELP answers 502", config_origin(conf, "help_file"),
                 cfg->help_file, strerror(errno));
    } else {
        cfg->help = xcalloc(1, sizeof(*cfg->help));
        smtp_ext_helpfile_init(cfg->help);
        smtp_ext_helpfile_parse(data.data, data.len, cfg->help);
    }
    buf_free(&data);
}

void smtpd_help_free(struct smtpd_config *cfg)
{
    if (cfg->help == NULL)
        return;
    smtp_ext_helpfile_free(cfg->help);
    free(cfg->help);
    cfg->help = NULL;
}

/* help_builtin - the text without a help file */
static void help_builtin(struct session *s)
{
    session_reply(s, "214-2.0.0 This is tern %s", TERN_VERSION);
    session_reply(s, "214-2.0.0 Topics:");
    session_reply(s, "214-2.0.0     HELO EHLO MAIL RCPT DATA");
    session_reply(s, "214-2.0.0     RSET NOOP QUIT HELP VRFY");
    session_reply(s, "214 2.0.0 End of HELP info");
}

void smtpd_help_command(struct session *s, const char *arg)
{
    buf_t reply = BUF_INIT;

    if (s->cfg->help_file[0] == '\0') {
        help_builtin(s);
        return;
    }
    smtp_ext_help_reply(s->cfg->help, arg, TERN_VERSION, &reply);
    session_reply(s, "%s", buf_cstr(&reply));
    buf_free(&reply);
}
