/*
 * check_sasl - the SMTP AUTH part of `tern check`: for every listener that
 * offers AUTH, the SASL application config loads, the security options are
 * known, and at least one mechanism is on offer under TLS (else EHLO would
 * never show AUTH); a sasldb file that anyone may read is a warning
 * (docs/auth.md).
 */
#include <stdio.h>
#include <string.h>

#include "auth_sasl.h"
#include "check_sasl.h"
#include "config.h"

int check_sasl(const struct config *cfg)
{
    int problems = 0, initialised = 0;

    for (const struct listener_def *l = listener_table; l->name != NULL; l++) {
        buf_t err = BUF_INIT, mechs = BUF_INIT;
        struct auth_sasl_settings st = {0};
        struct config *view = NULL;

        if (*config_list(cfg, l->param, NULL) == NULL ||
            (view = config_listener(cfg, l->name, &err)) == NULL ||
            !config_bool(view, "smtpd_sasl_auth_enable")) {
            config_free(view);
            buf_free(&err);
            continue; /* off, or its config error is reported elsewhere */
        }
        if (!initialised && auth_sasl_init(cfg, &err) < 0) {
            printf("SMTP AUTH: %s\n", buf_cstr(&err));
            problems++;
            config_free(view);
            buf_free(&err);
            break;
        }
        initialised = 1;
        if (auth_sasl_settings_load(&st, view, &err) < 0 ||
            auth_sasl_mechanisms(&st, AUTH_SASL_TLS_SSF, &mechs, &err) < 0) {
            printf("listener %s: SMTP AUTH: %s\n", l->name, buf_cstr(&err));
            problems++;
        } else if (mechs.len == 0) {
            printf("listener %s: SMTP AUTH is enabled, but the SASL application %s offers no "
                   "mechanism (check mech_list in %s.conf and the installed plugins)\n",
                   l->name, config_str(cfg, "smtpd_sasl_path"), config_str(cfg, "smtpd_sasl_path"));
            problems++;
        }
        auth_sasl_settings_free(&st);
        config_free(view);
        buf_free(&err);
        buf_free(&mechs);
    }
    if (initialised) {
        buf_t warnings = BUF_INIT;
        if (auth_sasl_sasldb_check(cfg, &warnings) != 0)
            for (char *line = warnings.data, *nl; line != NULL && *line; line = nl + 1) {
                if ((nl = strchr(line, '\n')) == NULL)
                    nl = line + strlen(line) - 1;
                printf("warning: %.*s\n", (int)(nl - line + (*nl != '\n')), line);
            }
        buf_free(&warnings);
        auth_sasl_done();
    }
    return problems;
}
