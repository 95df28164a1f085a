/*
 * config - read the smtpd parameters of tern.conf once, at start.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "greet.h"
#include "help.h"
#include "loadavg.h"
#include "log.h"
#include "policy.h"
#include "route.h"
#include "smtpd.h"

/* smtpd_config_hostname - myhostname, or the system's name when unset */
static const char *smtpd_config_hostname(const struct config *conf)
{
    static char host[256];
    const char *name = config_str(conf, "myhostname");

    if (name[0] != '\0')
        return name;
    if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0')
        return "localhost";
    host[sizeof(host) - 1] = '\0';
    return host;
}

/* smtpd_config_networks - parse a list of networks (mynetworks); a bad
 * entry is fatal */
static void smtpd_config_networks(const struct config *conf, const char *name,
                                  struct netaddr_net **nets, size_t *net_count)
{
    size_t count = 0;
    char *const *list = config_list(conf, name, &count);

    *nets = xcalloc(count ? count : 1, sizeof(**nets));
    *net_count = 0;
    for (size_t i = 0; i < count; i++) {
        if (netaddr_parse_net(list[i], &(*nets)[i]) < 0)
            log_fatal("%s: %s: bad network \"%s\" (expected e.g. 127.0.0.0/8 or "
                      "[::1]/128)",
                      config_origin(conf, name), name, list[i]);
        (*net_count)++;
    }
}

/* smtpd_config_client_limits - the smtpd_client_*_limit parameters */
static void smtpd_config_client_limits(struct smtpd_client_limits *l, const struct config *conf)
{
    static const char *names[] = {
        "smtpd_client_connection_count_limit", "smtpd_client_connection_rate_limit",
        "smtpd_client_message_rate_limit",     "smtpd_client_recipient_rate_limit",
        "smtpd_client_auth_rate_limit",
    };
    long long *values[] = {&l->connection_count, &l->connection_rate, &l->message_rate,
                           &l->recipient_rate, &l->auth_rate};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        *values[i] = config_int(conf, names[i]);
        if (*values[i] < 0)
            log_fatal("%s: %s = %lld: must not be negative (0: no limit)",
                      config_origin(conf, names[i]), names[i], *values[i]);
    }
    smtpd_config_networks(conf, "smtpd_client_event_limit_exceptions", &l->exceptions,
                          &l->exception_count);
}

/* smtpd_config_positive - an integer parameter that must be at least 1 */
static long long smtpd_config_positive(const struct config *conf, const char *name, long long value)
{
    if (value < 1)
        log_fatal("%s: %s = %lld: must be at least 1", config_origin(conf, name), name, value);
    return value;
}

/* smtpd_config_policy - the restriction lists (lib/policy); the sender
 * login check stays at MAIL (auth.c), wherever the list names it */
static void smtpd_config_policy(struct smtpd_config *cfg, const struct config *conf)
{
    size_t count = 0;
    char *const *list = config_list(conf, "smtpd_sender_restrictions", &count);
    buf_t err = BUF_INIT;

    for (size_t i = 0; i < count; i++)
        if (strcmp(list[i], "reject_sender_login_mismatch") == 0)
            cfg->sender_login_mismatch = 1;
    cfg->policy = policy_open(conf, cfg->route, &err);
    if (cfg->policy == NULL)
        log_fatal("%s", buf_cstr(&err));
    buf_free(&err);
    cfg->peername_lookup = config_bool(conf, "smtpd_peername_lookup");
    cfg->ident_lookup = config_bool(conf, "smtpd_ident_lookup");
    cfg->ident_timeout = config_time(conf, "smtpd_ident_timeout");
}

/* smtpd_config_greet - smtpd_greet_pause, smtpd_refuse_load and
 * smtpd_connection_rate_throttle (greet.c, load.c, main.c) */
static void smtpd_config_greet(struct smtpd_config *cfg, const struct config *conf)
{
    const char *pause = config_str(conf, "smtpd_greet_pause");
    const char *load = config_str(conf, "smtpd_refuse_load");

    if (smtpd_greet_pause_parse(pause, &cfg->greet_pause_ms) < 0)
        log_fatal("%s: smtpd_greet_pause = %s: expected a time such as 1500ms or 2s (at most 1h)",
                  config_origin(conf, "smtpd_greet_pause"), pause);
    if (loadavg_limit_parse(load, &cfg->refuse_load) < 0)
        log_fatal("%s: smtpd_refuse_load = %s: expected a load average such as 12 or 12.5 (0: off)",
                  config_origin(conf, "smtpd_refuse_load"), load);
    cfg->connection_rate_throttle = config_int(conf, "smtpd_connection_rate_throttle");
    if (cfg->connection_rate_throttle < 0)
        log_fatal("%s: smtpd_connection_rate_throttle = %lld: must not be negative (0: off)",
                  config_origin(conf, "smtpd_connection_rate_throttle"),
                  cfg->connection_rate_throttle);
}

/* smtpd_config_upstream_proxy - smtpd_upstream_proxy_* (upstream_proxy.c):
 * with the protocol on, an empty host list refuses everyone */
static void smtpd_config_upstream_proxy(struct smtpd_config *cfg, const struct config *conf)
{
    const char *protocol = config_str(conf, "smtpd_upstream_proxy_protocol");

    if (strcmp(protocol, "haproxy") != 0 && protocol[0] != '\0')
        log_fatal("%s: smtpd_upstream_proxy_protocol = %s: expected haproxy or nothing",
                  config_origin(conf, "smtpd_upstream_proxy_protocol"), protocol);
    cfg->upstream_proxy = protocol[0] != '\0';
    cfg->upstream_proxy_timeout = smtpd_config_positive(
        conf, "smtpd_upstream_proxy_timeout", config_time(conf, "smtpd_upstream_proxy_timeout"));
    smtpd_config_networks(conf, "smtpd_upstream_proxy_hosts", &cfg->upstream_proxy_hosts,
                          &cfg->upstream_proxy_host_count);
    if (cfg->upstream_proxy && cfg->upstream_proxy_host_count == 0)
        log_warn("listener %s: smtpd_upstream_proxy_protocol = haproxy but "
                 "smtpd_upstream_proxy_hosts is empty: every connection is refused",
                 cfg->listener);
}

/* smtpd_config_milters - smtpd_milters as this listener sees it */
static void smtpd_config_milters(struct smtpd_config *cfg, const struct config *conf)
{
    buf_t err = BUF_INIT;

    if (milter_list_load(conf, "smtpd_milters", &cfg->milters, &err) < 0)
        log_fatal("%s", buf_cstr(&err));
    buf_free(&err);
}

/* smtpd_config_load - read every smtpd parameter */
void smtpd_config_load(struct smtpd_config *cfg, const struct config *conf, struct route *route)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listener = config_listener_name(conf) ? config_listener_name(conf) : "smtpd";
    cfg->myhostname = smtpd_config_hostname(conf);
    cfg->myorigin = config_str(conf, "myorigin");
    cfg->route = route;
    smtpd_config_networks(conf, "mynetworks", &cfg->mynetworks, &cfg->mynetworks_count);
    cfg->banner = config_str(conf, "smtpd_banner");
    cfg->client_limit =
        smtpd_config_positive(conf, "smtpd_client_limit", config_int(conf, "smtpd_client_limit"));
    cfg->recipient_limit = smtpd_config_positive(conf, "smtpd_recipient_limit",
                                                 config_int(conf, "smtpd_recipient_limit"));
    cfg->hard_error_limit = smtpd_config_positive(conf, "smtpd_hard_error_limit",
                                                  config_int(conf, "smtpd_hard_error_limit"));
    cfg->timeout = smtpd_config_positive(conf, "smtpd_timeout", config_time(conf, "smtpd_timeout"));
    cfg->data_timeout =
        smtpd_config_positive(conf, "smtpd_data_timeout", config_time(conf, "smtpd_data_timeout"));
    cfg->line_limit = config_size(conf, "smtpd_line_limit");
    if (cfg->line_limit < 512)
        log_fatal("%s: smtpd_line_limit = %lld: must be at least 512 (RFC 5321)",
                  config_origin(conf, "smtpd_line_limit"), cfg->line_limit);
    cfg->helo_required = config_bool(conf, "smtpd_helo_required");
    cfg->disable_vrfy = config_bool(conf, "disable_vrfy_command");
    cfg->size_limit = config_size(conf, "message_size_limit");
    if (cfg->size_limit < 0)
        log_fatal("%s: message_size_limit must not be negative",
                  config_origin(conf, "message_size_limit"));
    cfg->forbid_bare_newline = config_bool(conf, "smtpd_forbid_bare_newline");
    cfg->auth_required = config_bool(conf, "smtpd_auth_required");
    cfg->sasl_header = config_bool(conf, "smtpd_sasl_authenticated_header");
    cfg->requiretls = config_bool(conf, "smtpd_requiretls");
    cfg->smtputf8 = config_bool(conf, "smtputf8_enable");
    smtpd_config_policy(cfg, conf);
    smtpd_config_greet(cfg, conf);
    smtpd_config_upstream_proxy(cfg, conf);
    smtpd_privacy_config(cfg, conf);
    smtpd_config_client_limits(&cfg->client_limits, conf);
    smtpd_config_milters(cfg, conf);
    smtpd_help_load(cfg, conf);
    smtpd_config_networks(conf, "smtpd_authorized_xclient_hosts", &cfg->xclient_hosts,
                          &cfg->xclient_hosts_count);
    smtpd_config_networks(conf, "smtpd_authorized_xforward_hosts", &cfg->xforward_hosts,
                          &cfg->xforward_hosts_count);
}

/* smtpd_config_free - release the network list */
void smtpd_config_free(struct smtpd_config *cfg)
{
    free(cfg->mynetworks);
    cfg->mynetworks = NULL;
    policy_close(cfg->policy);
    cfg->policy = NULL;
    cfg->mynetworks_count = 0;
    free(cfg->upstream_proxy_hosts);
    cfg->upstream_proxy_hosts = NULL;
    cfg->upstream_proxy_host_count = 0;
    free(cfg->client_limits.exceptions);
    cfg->client_limits.exceptions = NULL;
    cfg->client_limits.exception_count = 0;
    milter_list_free(&cfg->milters);
    smtpd_help_free(cfg);
    free(cfg->xclient_hosts);
    free(cfg->xforward_hosts);
    cfg->xclient_hosts = cfg->xforward_hosts = NULL;
}
