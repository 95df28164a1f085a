/*
 * config - read the smtpd parameters of tern.conf once, at start.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "log.h"
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

/* smtpd_config_relay - smtpd_relay_restrictions */
static void smtpd_config_relay(struct smtpd_config *cfg, const struct config *conf)
{
    static const struct {
        const char *name;
        enum smtpd_relay_rule rule;
    } names[] = {
        {"permit_mynetworks", SMTPD_RELAY_PERMIT_MYNETWORKS},
        {"permit_sasl_authenticated", SMTPD_RELAY_PERMIT_SASL},
        {"permit_tls_clientcerts", SMTPD_RELAY_PERMIT_CLIENTCERTS},
        {"reject_unauth_destination", SMTPD_RELAY_REJECT_UNAUTH},
        {"permit", SMTPD_RELAY_PERMIT},
        {"reject", SMTPD_RELAY_REJECT},
    };
    size_t count = 0;
    char *const *list = config_list(conf, "smtpd_relay_restrictions", &count);

    cfg->relay_rule_count = 0;
    for (size_t i = 0; i < count; i++) {
        size_t k = 0;
        while (k < sizeof(names) / sizeof(names[0]) && strcmp(names[k].name, list[i]) != 0)
            k++;
        if (k == sizeof(names) / sizeof(names[0]))
            log_fatal("%s: smtpd_relay_restrictions: unknown restriction '%s' (known: "
                      "permit_mynetworks, permit_sasl_authenticated, permit_tls_clientcerts, "
                      "reject_unauth_destination, permit, reject)",
                      config_origin(conf, "smtpd_relay_restrictions"), list[i]);
        if (cfg->relay_rule_count == sizeof(cfg->relay_rules) / sizeof(cfg->relay_rules[0]))
            log_fatal("%s: smtpd_relay_restrictions: too many items",
                      config_origin(conf, "smtpd_relay_restrictions"));
        cfg->relay_rules[cfg->relay_rule_count++] = names[k].rule;
    }
}

/* smtpd_config_sender - smtpd_sender_restrictions (issue 10 brings the rest) */
static void smtpd_config_sender(struct smtpd_config *cfg, const struct config *conf)
{
    size_t count = 0;
    char *const *list = config_list(conf, "smtpd_sender_restrictions", &count);

    for (size_t i = 0; i < count; i++) {
        if (strcmp(list[i], "reject_sender_login_mismatch") == 0)
            cfg->sender_login_mismatch = 1;
        else
            log_fatal("%s: smtpd_sender_restrictions: unknown restriction '%s' (known: "
                      "reject_sender_login_mismatch)",
                      config_origin(conf, "smtpd_sender_restrictions"), list[i]);
    }
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
    smtpd_config_relay(cfg, conf);
    smtpd_config_sender(cfg, conf);
    smtpd_config_client_limits(&cfg->client_limits, conf);
}

/* smtpd_config_free - release the network list */
void smtpd_config_free(struct smtpd_config *cfg)
{
    free(cfg->mynetworks);
    cfg->mynetworks = NULL;
    cfg->mynetworks_count = 0;
    free(cfg->client_limits.exceptions);
    cfg->client_limits.exceptions = NULL;
    cfg->client_limits.exception_count = 0;
}
