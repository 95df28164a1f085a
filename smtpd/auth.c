/*
 * auth - SMTP AUTH in tern-smtpd (see auth.h).  Not yet built: AUTH is
 * never offered.
 */
#include "auth.h"
#include "session.h"

void smtpd_auth_init(struct smtpd_config *cfg, const struct config *conf)
{
    cfg->auth = NULL;
}

void smtpd_auth_free(struct smtpd_config *cfg)
{
    cfg->auth = NULL;
}

int smtpd_auth_ehlo(const struct session *s, buf_t *out)
{
    return 0;
}

void smtpd_auth_command(struct session *s, const char *arg)
{
    session_reply(s, "502 5.5.1 Error: command not implemented");
}

void smtpd_auth_input(struct session *s, const char *line, size_t len)
{
    s->state = SESSION_CMD;
    session_reply(s, "501 5.0.0 AUTH aborted");
}

void smtpd_auth_session_end(struct session *s)
{
}

int smtpd_auth_sender_check(struct session *s, const char *sender, buf_t *reply)
{
    return 0;
}
