/*
 * env - the settings of local delivery (struct local_env) and the small
 * helpers every part of it uses.  Shared with the tools (tern trace,
 * sendmail -bv), which expand local recipients the way tern-local does
 * without delivering: this file, expand.c and targets.c form the
 * local_expand library (local/meson.build).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "local.h"
#include "privs.h"
#include "route.h"

/* local_result_set - see local.h */
void local_result_set(struct delivery_outcome *r, enum delivery_status status, const char *dsn,
                      const char *fmt, ...)
{
    va_list ap;

    r->status = status;
    snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
    buf_reset(&r->reason);
    va_start(ap, fmt);
    buf_vprintf(&r->reason, fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < r->reason.len; i++) /* one line, printable */
        if ((unsigned char)r->reason.data[i] < ' ')
            r->reason.data[i] = ' ';
}

/* local_list_has - see local.h */
int local_list_has(char *const *list, const char *word)
{
    for (; list && *list; list++)
        if (strcasecmp(*list, word) == 0)
            return 1;
    return 0;
}

/* local_env_read - see local.h */
int local_env_read(struct local_env *env, const struct config *cfg, buf_t *err)
{
    const char *user = config_str(cfg, "default_privs");

    memset(env, 0, sizeof(*env));
    env->mydestination = config_list(cfg, "mydestination", NULL);
    env->myhostname = config_str(cfg, "myhostname");
    env->spool_dir = config_str(cfg, "mail_spool_directory");
    env->home_mailbox = config_str(cfg, "home_mailbox");
    env->mailbox_command = config_str(cfg, "mailbox_command");
    env->forward_path = config_list(cfg, "forward_path", NULL);
    env->allow_commands = config_list(cfg, "allow_mail_to_commands", NULL);
    env->allow_files = config_list(cfg, "allow_mail_to_files", NULL);
    env->command_time_limit = config_time(cfg, "command_time_limit");
    env->shell = config_str(cfg, "local_command_shell");
    env->luser_relay = config_str(cfg, "luser_relay");
    env->delimiter = config_str(cfg, "recipient_delimiter");
    env->mail_hub = route_transport_is_hub(config_str(cfg, "local_transport"));
    env->default_user = user;
    if (privs_lookup(user, &env->default_uid, &env->default_gid) < 0) {
        buf_printf(err, "default_privs = %s: no such user", user);
        return -1;
    }
    if (env->default_uid == 0) {
        buf_printf(err, "default_privs = %s: must not be root", user);
        return -1;
    }
    if (env->shell[0] != '/') {
        buf_printf(err, "local_command_shell = %s: must be an absolute path", env->shell);
        return -1;
    }
    return 0;
}
