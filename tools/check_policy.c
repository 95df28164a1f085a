/*
 * check_policy - the restriction part of `tern check`: every listener's
 * restriction lists parse and their tables open (docs/policy.md), and the
 * combinations that open the relay are named (SPEC SPAM-10, RELAY-08).
 */
#include <stdio.h>
#include <string.h>

#include "check_policy.h"
#include "check_warn.h"
#include "netaddr.h"
#include "config.h"
#include "policy.h"
#include "route.h"

/* the client, sender and recipient of the open-relay probe: documentation
 * addresses (RFC 5737, RFC 2606) that no real mynetworks or domain lists */
#define CHECK_POLICY_PROBE_IP "192.0.2.1"
#define CHECK_POLICY_PROBE_SENDER "probe@example.com"
#define CHECK_POLICY_PROBE_RCPT "probe@relay-probe.example"

/* check_policy_in_mynetworks - is the probe client in mynetworks? */
static int check_policy_in_mynetworks(const struct config *view, const struct sockaddr *sa)
{
    size_t n;
    char *const *items = config_list(view, "mynetworks", &n);
    struct netaddr_net net;

    for (size_t i = 0; i < n; i++)
        if (netaddr_parse_net(items[i], &net) == 0 && netaddr_match(sa, &net, 1))
            return 1;
    return 0;
}

/* check_policy_probe_answer - answer what the probe needs as the most
 * permissive world would: no DNS list lists the client, domains exist,
 * policy services say DUNNO, sleeps are over */
static void check_policy_probe_answer(struct policy_cache *c)
{
    struct policy_need *n = policy_cache_take(c);

    while (n != NULL) {
        struct policy_need *next = n->next;
        if (n->kind == POLICY_NEED_SERVICE)
            policy_cache_put(c, n->key, 0, "DUNNO");
        else if (n->kind == POLICY_NEED_DOMAIN || n->kind == POLICY_NEED_SLEEP)
            policy_cache_put(c, n->key, 0, "");
        else
            policy_cache_put(c, n->key, 1, "");
        policy_need_free(n);
        n = next;
    }
}

/* check_policy_open_relay - would smtpd accept RCPT to a foreign domain
 * from an unauthenticated client outside mynetworks (restriction lists,
 * access_maps RELAY entries, promiscuous_relay, relay_domains)?  1 yes,
 * with " (decided by: ...)" in why when the policy logged it */
static int check_policy_open_relay(const struct config *view, struct policy *p, struct route *route,
                                   buf_t *why)
{
    struct sockaddr_storage ss;
    struct policy_facts f = {0};
    struct policy_cache *c = policy_cache_new();
    struct policy_result r;
    struct route_reply reply;
    enum policy_verdict v;
    int rounds = 0, open = 0;

    netaddr_parse_addr(CHECK_POLICY_PROBE_IP, &ss);
    f.addr = (const struct sockaddr *)&ss;
    f.ip = CHECK_POLICY_PROBE_IP;
    f.name = f.reverse_name = "unknown";
    f.name_status = f.reverse_status = 1;
    f.listener = config_listener_name(view);
    f.protocol = "ESMTP";
    f.helo = "relay-probe.example";
    f.sender = CHECK_POLICY_PROBE_SENDER;
    f.sender_echo = "<" CHECK_POLICY_PROBE_SENDER ">";
    f.recipient = CHECK_POLICY_PROBE_RCPT;
    f.echo = "<" CHECK_POLICY_PROBE_RCPT ">";
    f.size = -1;
    f.command_seq = 3;
    f.in_mynetworks = check_policy_in_mynetworks(view, f.addr);
    policy_result_init(&r);
    route_reply_init(&reply);
    while ((v = policy_check(p, POLICY_RCPT, &f, c, &r)) == POLICY_WAIT && rounds++ < 64)
        check_policy_probe_answer(c);
    if (v == POLICY_DUNNO || v == POLICY_PERMIT) {
        struct route_client client = {f.addr, r.relay};
        open = route_check_recipient(route, CHECK_POLICY_PROBE_RCPT, &client, &reply) == ROUTE_OK;
        if (r.log.len > 0)
            buf_printf(why, " (decided by: %s)", buf_cstr(&r.log));
    }
    route_reply_free(&reply);
    policy_result_free(&r);
    policy_cache_free(c);
    return open;
}

/* check_policy_relay_origin - the line to blame for an open relay */
static const char *check_policy_relay_origin(const struct config *view)
{
    static const char *params[] = {"promiscuous_relay",
                                   "smtpd_relay_restrictions",
                                   "smtpd_recipient_restrictions",
                                   "access_maps",
                                   "mynetworks",
                                   "relay_domains",
                                   NULL};

    for (int i = 0; params[i] != NULL; i++)
        if (config_is_set(view, params[i]))
            return config_origin(view, params[i]);
    return config_file(view);
}

/* check_policy_warn_relay - the open relay warning for listener; 1 when
 * warned (check_policy warns for the first open listener only: the cause,
 * the restriction lists or promiscuous_relay, is usually shared) */
static int check_policy_warn_relay(const struct config *view, struct policy *p, struct route *route,
                                   const char *listener)
{
    buf_t why = BUF_INIT;
    int open = check_policy_open_relay(view, p, route, &why);

    if (open && config_bool(view, "promiscuous_relay"))
        check_warn(config_origin(view, "promiscuous_relay"),
                   "FEATURE('promiscuous_relay') configures your system as open relay "
                   "(promiscuous_relay = yes). Do NOT use it on a server that is connected to "
                   "the Internet!");
    else if (open)
        check_warn(check_policy_relay_origin(view),
                   "listener %s: open relay: a client outside mynetworks that did not "
                   "authenticate (%s) may relay to any domain%s; end "
                   "smtpd_relay_restrictions in reject_unauth_destination and check "
                   "access_maps for RELAY entries that match every client",
                   listener, CHECK_POLICY_PROBE_IP, buf_cstr(&why));
    buf_free(&why);
    return open;
}

int check_policy(const struct config *cfg)
{
    int problems = 0, warned = 0;
    buf_t err = BUF_INIT;
    struct route *route = route_open(cfg, &err);

    if (route == NULL) { /* reported with the tables */
        buf_free(&err);
        return 0;
    }
    for (const struct listener_def *l = listener_table; l->name != NULL; l++) {
        struct config *view = NULL;
        struct policy *p;

        buf_reset(&err);
        if (*config_list(cfg, l->param, NULL) == NULL)
            continue; /* the listener is off */
        if ((view = config_listener(cfg, l->name, &err)) == NULL) {
            printf("listener %s: %s\n", l->name, buf_cstr(&err));
            problems++;
            continue;
        }
        if ((p = policy_open(view, route, &err)) == NULL) {
            printf("%s\n", buf_cstr(&err));
            problems++;
        } else if (!warned) {
            warned = check_policy_warn_relay(view, p, route, l->name);
        }
        policy_close(p);
        config_free(view);
    }
    route_close(route);
    buf_free(&err);
    return problems;
}
