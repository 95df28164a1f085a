/*
 * tern-smtp - the outbound SMTP client (DESIGN §3, docs/internals.md "smtp
 * protocol"); run as tern-lmtp (argv[0], a symlink) the LMTP client
 * (docs/internals.md "lmtp protocol", docs/lmtp.md).
 *
 * master execs `tern-smtp -c DIR` with the UNIX socket private/smtp as fd 3
 * (`tern-lmtp -c DIR` with private/lmtp).  qmgr connects once per delivery,
 * sends one smtp.deliver (lmtp.deliver) request and gets one smtp.result
 * (lmtp.result) answer, then the connection is closed.  Many deliveries run at
 * once on one event loop; at most smtp_connection_limit of them are active
 * (resolving or connected), the rest wait in arrival order.  Connections
 * that end a transaction cleanly wait idle in the connection cache (cache.c)
 * for the next delivery to the same next hop.  SIGHUP: stop accepting, QUIT
 * the idle connections, finish what is in flight, exit.  The accept / read one request /
 * answer loop is lib/delivery_server.c; this file starts the sessions.
 */
#include <event2/event.h>
#include <ifaddrs.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "delivery.h"
#include "dns.h"
#include "log.h"
#include "route.h"
#include "self.h"
#include "service.h"
#include "smtp.h"
#include "smtp_mtasts.h"
#include "smtp_sasl.h"
#include "smtp_tls.h"
#include "tlsrpt.h"

struct smtp_server {
    struct service svc;
    struct smtp_env env;
    struct smtp_self self;
    long long limit;
    struct delivery_server *delivery;
    void (*delivery_drain)(void *ctx); /* delivery_server's SIGHUP handler */
    void *delivery_ctx;
    struct event *tlsrpt_timer; /* writes the TLS-RPT counts every minute */
};

#define SMTP_TLSRPT_FLUSH_SECONDS 60

/* smtp_tlsrpt_flush_event - the counts of the last minute to the store */
static void smtp_tlsrpt_flush_event(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_server *srv = arg;
    buf_t err = BUF_INIT;

    if (tlsrpt_flush(srv->env.tlsrpt, &err) < 0)
        log_warn("TLS-RPT counts not written: %s", buf_cstr(&err));
    buf_free(&err);
}

/* smtp_tlsrpt_configure - the TLS-RPT store in data_directory, before the
 * drop; without it tern-smtp delivers and counts nothing */
static void smtp_tlsrpt_configure(struct smtp_server *srv)
{
    struct timeval tv = {SMTP_TLSRPT_FLUSH_SECONDS, 0};
    buf_t err = BUF_INIT;

    srv->env.tlsrpt = tlsrpt_open(config_str(srv->svc.cfg, "data_directory"), &err);
    if (srv->env.tlsrpt == NULL) {
        log_warn("TLS-RPT counts are off: %s", buf_cstr(&err));
        buf_free(&err);
        return;
    }
    srv->tlsrpt_timer = event_new(srv->svc.base, -1, EV_PERSIST, smtp_tlsrpt_flush_event, srv);
    if (srv->tlsrpt_timer == NULL)
        log_panic("event_new failed");
    event_add(srv->tlsrpt_timer, &tv);
    buf_free(&err);
}

/* smtp_on_result - the session decided every recipient: answer qmgr */
static void smtp_on_result(struct delivery_request *req, void *arg)
{
    delivery_job_reply(arg);
}

/* smtp_on_closed - the session is gone: free its slot */
static void smtp_on_closed(struct delivery_request *req, void *arg)
{
    delivery_job_done(arg);
}

/* smtp_on_request - a slot is free: run the delivery of job now */
static void smtp_on_request(struct delivery_job *job, void *ctx)
{
    struct smtp_server *srv = ctx;
    struct smtp_session_cbs cbs = {smtp_on_result, smtp_on_closed, job};

    smtp_session_start(&srv->env, delivery_job_request(job), &cbs);
}

/* smtp_request_check - smtp and lmtp need a next hop to connect to */
static int smtp_request_check(const struct delivery_request *req, buf_t *err)
{
    if (req->nexthop[0] == 0) {
        buf_puts(err, "empty nexthop");
        return -1;
    }
    return 0;
}

/* smtp_on_drain - SIGHUP: QUIT the idle connections, then drain the jobs */
static void smtp_on_drain(void *ctx)
{
    struct smtp_server *srv = ctx;

    if (srv->env.cache)
        smtp_cache_drain(srv->env.cache);
    srv->delivery_drain(srv->delivery_ctx);
}

/* smtp_cache_configure - the connection cache, or none when a limit is 0 */
static void smtp_cache_configure(struct smtp_server *srv)
{
    const struct config *cfg = srv->svc.cfg;
    struct smtp_cache_limits lim;

    lim.time_limit = config_time(cfg, "smtp_connection_cache_time_limit");
    lim.reuse_limit = config_int(cfg, "smtp_connection_reuse_count_limit");
    lim.size_limit = config_int(cfg, "smtp_connection_cache_limit");
    if (lim.reuse_limit < 0)
        log_fatal("smtp_connection_reuse_count_limit must not be negative");
    if (lim.time_limit <= 0 || lim.size_limit <= 0)
        return;
    srv->env.cache = smtp_cache_create(srv->svc.base, &lim);
}

/* smtp_helo_name - smtp_helo_name, else this host's name */
static const char *smtp_helo_name(const struct config *cfg)
{
    static char host[256];
    const char *name = config_str(cfg, "smtp_helo_name");

    if (name[0])
        return name;
    if (gethostname(host, sizeof(host) - 1) == 0 && host[0])
        return host;
    return "localhost";
}

/* smtp_self_configure - this host for MX loop detection (ROUTE-09): the
 * smtpd listeners and proxy_interfaces, with the interfaces as they are now */
static void smtp_self_configure(struct smtp_server *srv)
{
    const struct config *cfg = srv->svc.cfg;
    struct ifaddrs *ifa = NULL;
    buf_t err = BUF_INIT;
    size_t n;
    char *const *listen = config_list(cfg, "smtpd_listen", &n);
    int rc = 0;

    if (getifaddrs(&ifa) < 0) {
        log_warn("getifaddrs: %m; a wildcard smtpd_listen covers the loopback addresses only");
        ifa = NULL;
    }
    smtp_self_init(&srv->self);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = smtp_self_add_listener(&srv->self, listen[i], ifa, &err);
    listen = config_list(cfg, "proxy_interfaces", &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = smtp_self_add_proxy(&srv->self, listen[i], srv->env.default_port, &err);
    if (ifa)
        freeifaddrs(ifa);
    if (rc < 0)
        log_fatal("%s", buf_cstr(&err));
    buf_free(&err);
    srv->env.self = &srv->self;
}

/* smtp_port_param - a TCP port parameter */
static int smtp_port_param(const struct config *cfg, const char *name)
{
    long long port = config_int(cfg, name);

    if (port < 1 || port > 65535)
        log_fatal("%s = %lld is not a TCP port", name, port);
    return (int)port;
}

/* smtp_generic_configure - smtp_generic_maps, its tables opened before the
 * privilege drop */
static void smtp_generic_configure(struct smtp_server *srv)
{
    buf_t err = BUF_INIT;
    size_t n;

    config_list(srv->svc.cfg, "smtp_generic_maps", &n);
    if (n == 0)
        return;
    if ((srv->env.generic = route_open(srv->svc.cfg, &err)) == NULL)
        log_fatal("%s", buf_cstr(&err));
    route_preload(srv->env.generic, "smtp_generic_maps");
    buf_free(&err);
}

/* smtp_dnssec_resolver_check - the AD bit is only worth what the path to
 * the resolver is: say so when dns_servers is not on this host */
static void smtp_dnssec_resolver_check(const struct config *cfg)
{
    size_t n;
    char *const *servers = config_list(cfg, "dns_servers", &n);

    if (n == 0)
        log_warn("smtp_dns_support_level = dnssec with dns_servers empty: the AD bit of "
                 "whatever /etc/resolv.conf names is trusted; point dns_servers at a validating "
                 "resolver on this host (docs/dnssec.md)");
    for (size_t i = 0; i < n; i++)
        if (strncmp(servers[i], "127.", 4) != 0 && strncmp(servers[i], "[::1]", 5) != 0 &&
            strcmp(servers[i], "::1") != 0)
            log_warn("smtp_dns_support_level = dnssec: dns_servers %s is not on this host; "
                     "its AD bit can be forged on the way (docs/dnssec.md)",
                     servers[i]);
}

/* smtp_dns_configure - smtp_dns_support_level, and MTA-STS */
static void smtp_dns_configure(struct smtp_server *srv)
{
    const struct config *cfg = srv->svc.cfg;
    const char *level = config_str(cfg, "smtp_dns_support_level");
    buf_t err = BUF_INIT;

    if (strcmp(level, "dnssec") == 0) {
        srv->env.dnssec = 1;
        smtp_dnssec_resolver_check(cfg);
    } else if (strcmp(level, "enabled") != 0 && strcmp(level, "") != 0)
        log_fatal("smtp_dns_support_level = %s: not one of enabled, dnssec", level);
    if (srv->env.lmtp)
        return;
    srv->env.mtasts = smtp_mtasts_create(srv->svc.base, srv->env.dns, cfg, &err);
    if (srv->env.mtasts == NULL && err.len > 0)
        log_fatal("%s", buf_cstr(&err));
    buf_free(&err);
}

/* smtp_body_configure - 8-bit content for a next hop without 8BITMIME */
static void smtp_body_configure(struct smtp_server *srv)
{
    const struct config *cfg = srv->svc.cfg;
    const char *mode = config_str(cfg, "smtp_8bit_downgrade");
    long long limit = config_size(cfg, "message_size_limit");

    if (strcmp(mode, "bounce") == 0)
        srv->env.body_policy.bounce_8bit = 1;
    else if (strcmp(mode, "convert") != 0)
        log_fatal("smtp_8bit_downgrade = %s: not one of convert, bounce", mode);
    srv->env.body_policy.conversion_disabled = config_bool(cfg, "disable_mime_output_conversion");
    /* room for the headers tern adds after the size check */
    srv->env.body_policy.load_limit = limit > 0 ? limit + 1024 * 1024 : 0;
}

/* smtp_server_configure - settings and the resolver (before the drop) */
static void smtp_server_configure(struct smtp_server *srv)
{
    const struct config *cfg = srv->svc.cfg;
    buf_t err = BUF_INIT;

    srv->env.base = srv->svc.base;
    srv->env.connect_timeout = config_time(cfg, "smtp_connect_timeout");
    srv->env.helo_timeout = config_time(cfg, "smtp_helo_timeout");
    srv->env.command_timeout = config_time(cfg, "smtp_command_timeout");
    srv->env.data_timeout = config_time(cfg, "smtp_data_timeout");
    srv->env.helo_name = smtp_helo_name(cfg);
    srv->env.default_port =
        smtp_port_param(cfg, srv->env.lmtp ? "lmtp_tcp_port" : "smtp_default_port");
    srv->limit = config_int(cfg, "smtp_connection_limit");
    if (srv->limit < 1)
        log_fatal("smtp_connection_limit must be at least 1");
    srv->env.dns = dns_create(srv->svc.base, config_list(cfg, "dns_servers", NULL),
                              config_time(cfg, "dns_timeout"), &err);
    if (srv->env.dns == NULL)
        log_fatal("%s", buf_cstr(&err));
    buf_free(&err);
    smtp_cache_configure(srv);
    if (!srv->env.lmtp && smtp_tls_open(cfg, &srv->env.tls, &err) < 0)
        log_fatal("%s", buf_cstr(&err));
    if (!srv->env.lmtp && smtp_sasl_open(cfg, &srv->env.sasl, &err) < 0)
        log_fatal("%s", buf_cstr(&err));
    srv->env.sasl_by_sender = config_bool(cfg, "smtp_sender_dependent_authentication");
    smtp_body_configure(srv);
    smtp_dns_configure(srv);
    if (srv->env.tls) /* best effort: TLS-RPT counts are no reason not to deliver */
        smtp_tlsrpt_configure(srv);
    if (!srv->env.lmtp) { /* LMTP goes where it is told: no MX, no loop to find */
        smtp_self_configure(srv);
        smtp_generic_configure(srv);
    }
}

/* smtp_program_is_lmtp - run as tern-lmtp? */
static int smtp_program_is_lmtp(const char *argv0)
{
    const char *slash = strrchr(argv0, '/');

    return strcmp(slash ? slash + 1 : argv0, "tern-lmtp") == 0;
}

int main(int argc, char **argv)
{
    static struct smtp_server srv;
    struct delivery_server_cbs cbs = {smtp_request_check, smtp_on_request, &srv};
    const char *transport = argc > 0 && smtp_program_is_lmtp(argv[0]) ? "lmtp" : "smtp";
    int status;

    service_init(&srv.svc, transport, argc, argv);
    srv.env.lmtp = strcmp(transport, "lmtp") == 0;
    smtp_server_configure(&srv);
    srv.delivery = delivery_server_start(&srv.svc, transport, srv.limit, &cbs);
    srv.delivery_drain = srv.svc.on_drain;
    srv.delivery_ctx = srv.svc.ctx;
    srv.svc.on_drain = smtp_on_drain;
    srv.svc.ctx = &srv;
    service_drop_privileges(&srv.svc);
    status = service_run(&srv.svc);
    smtp_cache_free(srv.env.cache); /* QUIT what is still idle */
    delivery_server_free(srv.delivery);
    smtp_mtasts_free(srv.env.mtasts); /* it has DNS queries of its own */
    dns_free(srv.env.dns);
    route_close(srv.env.generic);
    smtp_tls_close(srv.env.tls);
    smtp_sasl_close(srv.env.sasl);
    if (srv.tlsrpt_timer)
        event_free(srv.tlsrpt_timer);
    tlsrpt_close(srv.env.tlsrpt);
    smtp_self_free(&srv.self);
    return status;
}
