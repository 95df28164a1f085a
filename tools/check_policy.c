/*
 * check_policy - the restriction part of `tern check`: every listener's
 * restriction lists parse and their tables open (docs/policy.md), and the
 * combinations that open the relay are named (SPEC SPAM-10, RELAY-08).
 */
#include <stdio.h>
#include <string.h>

#include "check_policy.h"
#include "config.h"
#include "policy.h"
#include "route.h"

/* check_policy_open_relay - smtpd_relay_restrictions with a plain "permit"
 * before any reject: every client may relay anywhere */
static int check_policy_open_relay(const struct config *view)
{
    size_t n = 0;
    char *const *items = config_list(view, "smtpd_relay_restrictions", &n);

    for (size_t i = 0; i < n; i++) {
        if (strcmp(items[i], "permit") == 0)
            return 1;
        if (strncmp(items[i], "reject", 6) == 0 || strncmp(items[i], "defer", 5) == 0 ||
            strncmp(items[i], "check_", 6) == 0)
            return 0;
    }
    return 0;
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
        } else if (config_bool(view, "promiscuous_relay") && !warned++) {
            printf("*** WARNING: FEATURE('promiscuous_relay') configures your system as open "
                   "relay (promiscuous_relay = yes, %s). Do NOT use it on a server that is "
                   "connected to the Internet!\n",
                   config_origin(view, "promiscuous_relay"));
        } else if (check_policy_open_relay(view)) {
            printf("*** WARNING: listener %s: smtpd_relay_restrictions permits every client "
                   "(%s): this configures your system as an open relay. Do NOT use it on a "
                   "server that is connected to the Internet!\n",
                   l->name, config_origin(view, "smtpd_relay_restrictions"));
        }
        policy_close(p);
        config_free(view);
    }
    route_close(route);
    buf_free(&err);
    return problems;
}
