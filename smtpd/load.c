/*
 * load - smtpd_refuse_load, sendmail's RefuseLA (docs/smtpd.md "Load
 * limits").
 *
 * The check is made per accepted connection, before a session exists: the
 * connection is accepted and answered "421 4.3.2 HOST Too busy, try again
 * later" and closed (SMTPS: closed without a word, the handshake has not
 * begun), and sendmail's line "rejecting connections on daemon MTA: load
 * average: N" is logged.  The load is read from load_average_file or
 * /proc/loadavg each time (one small read).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "greet.h"
#include "log.h"
#include "smtpd.h"

void smtpd_load_open(struct smtpd_server *server)
{
    loadavg_open(&server->load, config_str(server->svc.cfg, "load_average_file"));
}

const char *smtpd_daemon_name(const struct smtpd_config *cfg)
{
    if (strcmp(cfg->listener, "smtpd") == 0)
        return "MTA";
    if (strcmp(cfg->listener, "submission") == 0)
        return "MSA";
    return cfg->listener;
}

int smtpd_load_refuse(struct smtpd_listener *listener, int fd)
{
    const struct smtpd_config *cfg = &listener->cfg;
    char reply[512];
    double load;
    int n;

    if (cfg->refuse_load <= 0 || loadavg_read(&listener->server->load, &load) < 0 ||
        load <= cfg->refuse_load)
        return 0;
    log_info("rejecting connections on daemon %s: load average: %g", smtpd_daemon_name(cfg), load);
    n = snprintf(reply, sizeof(reply), "421 4.3.2 %s Too busy, try again later\r\n",
                 cfg->myhostname);
    if (!cfg->tls_wrapper && n > 0 && (size_t)n < sizeof(reply) && write(fd, reply, (size_t)n) < 0)
        log_info("421 to a refused client: %m");
    return 1;
}
