/*
 * privacy - what smtpd_privacy_flags (lib/privacy.h) change in tern-smtpd:
 * needmailhelo is smtpd_helo_required, novrfy is disable_vrfy_command,
 * noexpn is disable_expn_command, noetrn is smtpd_disable_etrn_command; needvrfyhelo and
 * needexpnhelo refuse VRFY and EXPN before HELO/EHLO; noverb changes VERB's refusal; noreceipts
 * drops NOTIFY=SUCCESS.  The other words act elsewhere (qmgr, showq, sendmail) or are what tern
 * always does (docs/smtpd.md "Privacy flags").
 */
#include <string.h>

#include "config.h"
#include "greet.h"
#include "log.h"
#include "privacy.h"
#include "session.h"

void smtpd_privacy_config(struct smtpd_config *cfg, const struct config *conf)
{
    buf_t err = BUF_INIT;

    if (privacy_flags_get(conf, &cfg->privacy, &err) < 0)
        log_fatal("%s", buf_cstr(&err));
    buf_free(&err);
    if (cfg->privacy & PRIVACY_NEEDMAILHELO)
        cfg->helo_required = 1;
    if (cfg->privacy & PRIVACY_NOVRFY)
        cfg->disable_vrfy = 1;
    cfg->disable_expn =
        config_bool(conf, "disable_expn_command") || (cfg->privacy & PRIVACY_NOEXPN) != 0;
    cfg->disable_etrn =
        config_bool(conf, "smtpd_disable_etrn_command") || (cfg->privacy & PRIVACY_NOETRN) != 0;
}

/* privacy_need_helo - 503 before HELO/EHLO for a command that would be
 * answered (sendmail checks novrfy and noexpn first) */
static int privacy_need_helo(struct session *s, unsigned flag, int answered)
{
    if (!(s->cfg->privacy & flag) || s->seen_helo || !answered)
        return 0;
    session_reply(s, "503 5.0.0 I demand that you introduce yourself first");
    return 1;
}

int smtpd_privacy_refuse(struct session *s, enum proto_cmd cmd)
{
    switch (cmd) {
    case PROTO_CMD_VRFY:
        return privacy_need_helo(s, PRIVACY_NEEDVRFYHELO, !s->cfg->disable_vrfy);
    case PROTO_CMD_EXPN:
        return privacy_need_helo(s, PRIVACY_NEEDEXPNHELO, smtpd_expn_offered(s));
    case PROTO_CMD_VERB:
        if (!(s->cfg->privacy & PRIVACY_NOVERB))
            return 0;
        session_reply(s, "502 5.7.0 Verbose unavailable");
        return 1;
    default:
        return 0;
    }
}

/* smtpd_privacy_notify - sendmail clears the "success" bit only: NOTIFY=
 * SUCCESS alone leaves no notification at all, which is NEVER */
void smtpd_privacy_notify(const struct session *s, buf_t *notify)
{
    buf_t kept = BUF_INIT;
    const char *p = buf_cstr(notify);

    if (!(s->cfg->privacy & PRIVACY_NORECEIPTS) || notify->len == 0)
        return;
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        if (n != 7 || strncmp(p, "SUCCESS", 7) != 0)
            buf_printf(&kept, "%s%.*s", kept.len ? "," : "", (int)n, p);
        p += n + (p[n] == ',');
    }
    buf_set(notify, kept.len ? buf_cstr(&kept) : "NEVER");
    buf_free(&kept);
}
