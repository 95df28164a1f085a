/*
 * fuzz_policy_lists - libFuzzer target for lib/policy's restriction list
 * parser and evaluator: a list value as an administrator writes it in
 * tern.conf, opened with policy_open and evaluated at every stage, with
 * every outside question (DNS lists, domains, policy services, sleeps)
 * answered in turn from a fixed set of answers until the stage decides.
 *
 * Input: byte 0 chooses the list (low 3 bits, modulo 7) and
 * smtpd_delay_reject (bit 3 set: no); byte 1 chooses where the answers
 * start; the rest, up to a NUL, is the list's value.  So that no input
 * opens a file, the value may not hold '/' or '$', and a ':' only right
 * after "inline", "static" or "inet" (tables inline:{k=v, ...} and
 * static:VALUE, endpoints inet:host:port that are never connected to).
 * Promises checked (abort when broken): a refused list comes with a
 * message that names the parameter; a REJECT reply starts with 5 and a
 * DEFER reply with 4; POLICY_WAIT always leaves a request pending; a
 * stage decides within 64 rounds of answers.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "policy.h"
#include "route.h"

#define FUZZ_VALUE_MAX 4096

static const char *const fuzz_lists[] = {
    "smtpd_client_restrictions",      "smtpd_helo_restrictions",      "smtpd_sender_restrictions",
    "smtpd_relay_restrictions",       "smtpd_recipient_restrictions", "smtpd_data_restrictions",
    "smtpd_end_of_data_restrictions",
};

/* a policy service's answers, tried in turn */
static const char *const fuzz_actions[] = {
    "OK",      "REJECT no",       "DEFER_IF_PERMIT grey",         "DUNNO",       "PREPEND X-A: b",
    "WARN w",  "550 5.7.1 no",    "reject_unknown_sender_domain", "bogus value", "HOLD",
    "DISCARD", "451 4.3.0 later",
};

/* fuzz_allowed - no file can be named by the value */
static int fuzz_allowed(const char *v)
{
    static const char *const ok[] = {"inline", "static", "inet"};

    if (strpbrk(v, "/$") != NULL)
        return 0;
    for (const char *p = strchr(v, ':'); p != NULL; p = strchr(p + 1, ':')) {
        int found = 0;
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]) && !found; i++) {
            size_t n = strlen(ok[i]);
            found = (size_t)(p - v) >= n && strncmp(p - n, ok[i], n) == 0;
        }
        if (!found)
            return 0;
    }
    return 1;
}

/* fuzz_answer - answer every pending request; seed walks the answers */
static void fuzz_answer(struct policy_cache *c, unsigned *seed)
{
    struct policy_need *n = policy_cache_take(c);

    if (n == NULL)
        abort(); /* POLICY_WAIT with nothing to wait for */
    while (n != NULL) {
        struct policy_need *next = n->next;
        unsigned s = (*seed)++;
        int status = s % 5 == 3 ? -1 : s % 5 == 4 ? 1 : 0;
        const char *value = "";
        if (n->kind == POLICY_NEED_A)
            value = s % 2 ? "127.0.0.2" : "127.0.0.4 127.0.0.10";
        else if (n->kind == POLICY_NEED_TXT)
            value = "listed";
        else if (n->kind == POLICY_NEED_SERVICE)
            value = fuzz_actions[s % (sizeof(fuzz_actions) / sizeof(fuzz_actions[0]))];
        policy_cache_put(c, n->key, status, value);
        policy_need_free(n);
        n = next;
    }
}

/* fuzz_stage - evaluate one stage until it decides */
static void fuzz_stage(struct policy *p, enum policy_stage stage, const struct policy_facts *f,
                       struct policy_cache *c, unsigned *seed)
{
    struct policy_result r;
    enum policy_verdict v;
    int rounds = 0;

    policy_result_init(&r);
    while ((v = policy_check(p, stage, f, c, &r)) == POLICY_WAIT) {
        if (++rounds > 64)
            abort();
        fuzz_answer(c, seed);
    }
    if ((v == POLICY_REJECT && r.reply.data[0] != '5') ||
        (v == POLICY_DEFER && r.reply.data[0] != '4'))
        abort();
    policy_result_free(&r);
}

/* fuzz_evaluate - every stage with one client's facts */
static void fuzz_evaluate(struct policy *p, unsigned seed)
{
    struct sockaddr_in sin;
    struct policy_facts f;
    struct policy_cache *c = policy_cache_new();

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.5", &sin.sin_addr);
    memset(&f, 0, sizeof(f));
    f.addr = (const struct sockaddr *)&sin;
    f.ip = "192.0.2.5";
    f.name = seed & 1 ? "mail.client.test" : "unknown";
    f.name_status = seed & 1 ? 0 : 1;
    f.reverse_name = f.name;
    f.reverse_status = f.name_status;
    f.listener = "smtpd";
    f.protocol = "ESMTP";
    f.size = -1;
    if (policy_prefetch(p, &f, c))
        fuzz_answer(c, &seed);
    (void)policy_greet_pause(p, &f, 1000);
    fuzz_stage(p, POLICY_CONNECT, &f, c, &seed);
    f.helo = "client.test";
    fuzz_stage(p, POLICY_HELO, &f, c, &seed);
    f.sender = seed & 2 ? "" : "a+b@sender.test";
    f.echo = "<a+b@sender.test>";
    fuzz_stage(p, POLICY_MAIL, &f, c, &seed);
    f.recipient = seed & 4 ? "x@far.test" : "hal@fuzz.test";
    f.echo = "<x@far.test>";
    fuzz_stage(p, POLICY_RCPT, &f, c, &seed);
    f.rcpt_count = 1;
    fuzz_stage(p, POLICY_DATA, &f, c, &seed);
    fuzz_stage(p, POLICY_EOD, &f, c, &seed);
    policy_cache_free(c);
}

/* fuzz_config - a config with the list set to value */
static struct config *fuzz_config(const char *list, const char *value, int delay)
{
    static const char *const base[][2] = {
        {"myhostname", "mx.fuzz.test"}, {"mydomain", "fuzz.test"},
        {"mydestination", "fuzz.test"}, {"alias_maps", ""},
        {"local_recipient_maps", ""},   {"accept_unresolvable_domains", "no"},
    };
    struct config *cfg = config_new_defaults("/nonexistent");
    buf_t err = BUF_INIT;

    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
        if (config_set(cfg, base[i][0], base[i][1], "fuzz", &err) < 0)
            abort();
    if (config_set(cfg, "smtpd_delay_reject", delay ? "yes" : "no", "fuzz", &err) < 0 ||
        config_set(cfg, list, value, "fuzz.conf:1", &err) < 0)
        abort();
    buf_free(&err);
    return cfg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int logging;
    const char *list;
    char *value;
    struct config *cfg;
    struct route *route;
    struct policy *p;
    buf_t err = BUF_INIT;

    if (!logging) {
        log_init("fuzz", LOG_TARGET_FILE, "/dev/null");
        logging = 1;
    }
    if (size < 2 || size - 2 > FUZZ_VALUE_MAX)
        return 0;
    value = malloc(size - 1);
    if (value == NULL)
        return 0;
    memcpy(value, data + 2, size - 2);
    value[size - 2] = '\0';
    if (!fuzz_allowed(value)) {
        free(value);
        return 0;
    }
    list = fuzz_lists[(data[0] & 7) % 7];
    cfg = fuzz_config(list, value, !(data[0] & 8));
    route = route_open(cfg, &err);
    if (route == NULL)
        abort();
    p = policy_open(cfg, route, &err);
    if (p == NULL && (err.len == 0 || strstr(buf_cstr(&err), "fuzz.conf:1: ") != buf_cstr(&err)))
        abort();
    if (p != NULL)
        fuzz_evaluate(p, data[1]);
    policy_close(p);
    route_close(route);
    config_free(cfg);
    buf_free(&err);
    free(value);
    return 0;
}
