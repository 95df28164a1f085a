/*
 * policy - smtpd's restriction lists and access maps (docs/policy.md): one
 * evaluator that smtpd runs at every SMTP stage and tern trace runs to
 * explain a verdict.
 *
 * Lists (Postfix's names, one per stage; each may be set per listener):
 *   smtpd_client_restrictions     the client (connect)
 *   smtpd_helo_restrictions       HELO/EHLO
 *   smtpd_sender_restrictions     MAIL FROM
 *   smtpd_relay_restrictions      RCPT: may this recipient be relayed to?
 *   smtpd_recipient_restrictions  RCPT: the recipient itself
 *   smtpd_data_restrictions       DATA
 *   smtpd_end_of_data_restrictions  after the content
 *   smtpd_etrn_restrictions       ETRN: may this client start a queue run?
 * With smtpd_delay_reject = yes (the default, sendmail's delay_checks) the
 * client, HELO and sender lists are evaluated at RCPT, before the relay and
 * recipient lists; with no, at their own stage.  Within a list the first
 * item that decides ends the list: permit/OK ends that list only (the next
 * list still runs), reject/defer end the evaluation.  DUNNO goes on.
 *
 * The sendmail access file (access_maps): with it set, every stage first
 * runs sendmail's lookups (Connect:, From:, To:, Spam:, untagged entries)
 * and actions (OK, RELAY, REJECT, DISCARD, ERROR:, SKIP, QUARANTINE:)
 * with sendmail's reply texts, before the stage's Postfix list, so an
 * unchanged /etc/mail/access behaves as it did under sendmail.
 *
 * Nothing here blocks.  Facts that need the network (DNS lists, the
 * existence of a domain, a policy service's answer, a sleep) are asked of
 * the caller: an evaluation that needs one returns POLICY_WAIT with the
 * request in the cache's pending list; the caller performs every pending
 * request (in parallel), stores each answer with policy_cache_put and runs
 * the same evaluation again.  Evaluation is deterministic given the facts
 * and the answers, so running it again from the start is correct.  smtpd
 * answers on its event loop; tern trace on a private loop.  At connect the
 * caller may start every DNS list query at once (policy_prefetch).
 *
 * Table lookups (lmdb, cidr, regexp, ...) are local and synchronous; a
 * table that cannot answer gives 451 4.3.0 and never a permit (ACC-06).
 */
#ifndef TERN_POLICY_H
#define TERN_POLICY_H

#include <stddef.h>
#include <sys/socket.h>

#include "buf.h"

struct config;
struct route;
struct policy;

enum policy_stage {
    POLICY_CONNECT,
    POLICY_HELO,
    POLICY_MAIL,
    POLICY_RCPT,
    POLICY_DATA,
    POLICY_EOD,
    POLICY_ETRN,
};

/* a verified client certificate in relay_clientcerts: not (or not looked
 * up), listed, or the lookup failed (a temporary failure, never "not") */
enum policy_ccert {
    POLICY_CCERT_NO = 0,
    POLICY_CCERT_LISTED = 1,
    POLICY_CCERT_TEMPFAIL = -1,
};

/* what the evaluation knows about the session; strings may be NULL
 * (unknown / not given); the caller owns them */
struct policy_facts {
    const struct sockaddr *addr; /* the client; NULL: a local submission */
    const char *ip;              /* printable address */
    const char *name;            /* forward-confirmed client name, or "unknown" */
    const char *reverse_name;    /* the PTR name, or "unknown" */
    int name_status;             /* rDNS: 0 confirmed, 1 none (permanent), -1 temporary failure */
    int reverse_status;          /* PTR alone: 0 found, 1 none, -1 temporary failure */
    const char *listener;        /* smtpd, submission, smtps */
    const char *protocol;        /* SMTP, ESMTP, ESMTPSA, ... */
    const char *helo;            /* NULL before HELO/EHLO */
    const char *sender;          /* NULL before MAIL; "" the null sender */
    const char *recipient;       /* RCPT stage */
    const char *echo;            /* the path of the current MAIL or RCPT as the client wrote it */
    const char *sender_echo;     /* the MAIL path as the client wrote it */
    const char *sasl_method;     /* NULL unless authenticated */
    const char *sasl_username;
    const char *sasl_sender;
    int tls;                          /* TLS is active */
    const char *ccert_fingerprint;    /* SHA-256 AB:CD:.. or NULL */
    enum policy_ccert ccert_verified; /* permit_tls_clientcerts */
    const char *queue_id;
    long long size;       /* SIZE=, -1 unknown */
    long long rcpt_count; /* recipients accepted so far */
    int in_mynetworks;
    int pipelined; /* the client sent this command before the reply it should have waited for */
    long long command_seq; /* counts the session's commands: a sleep is slept once per command */
};

/* an outside fact the evaluation needs */
enum policy_need_kind {
    POLICY_NEED_A,       /* A records of key (a DNS list query: 5.0.0.127.bl.test) */
    POLICY_NEED_TXT,     /* TXT records of key */
    POLICY_NEED_DOMAIN,  /* does key exist as a mail domain (MX, A, AAAA) */
    POLICY_NEED_MX,      /* the MX host names of key (permit_mx_backup) */
    POLICY_NEED_SERVICE, /* check_policy_service: key = the endpoint, request = attribute lines */
    POLICY_NEED_SLEEP,   /* sleep: key = "sleep:ID", seconds */
};

struct policy_need {
    enum policy_need_kind kind;
    char *key;         /* what the answer is stored under (policy_cache_put) */
    char *target;      /* A/TXT/DOMAIN: the name to look up; SERVICE: the endpoint */
    buf_t request;     /* SERVICE: "name=value\n" lines and the empty line */
    long long seconds; /* SLEEP */
    struct policy_need *next;
};

/* answers of a session (DNS lists, domains, services): kept for the
 * session, so a list checked at every RCPT is asked once */
struct policy_cache;

struct policy_cache *policy_cache_new(void);
void policy_cache_free(struct policy_cache *c);
/* policy_cache_put - store the answer for key: status 0 found, 1 not found
 * (NXDOMAIN, no records), -1 temporary failure; value: A answers as
 * space-separated addresses, TXT as text, SERVICE as the action line
 * (without "action="), DOMAIN and SLEEP ""; the pending request of key is
 * dropped */
void policy_cache_put(struct policy_cache *c, const char *key, int status, const char *value);
/* policy_cache_pending - the requests the last evaluation is waiting for,
 * each listed once while it is pending */
struct policy_need *policy_cache_pending(struct policy_cache *c);
/* policy_cache_take - detach the pending requests: the caller starts them
 * and frees each with policy_need_free; a later evaluation that needs the
 * same key while it is out does not ask again */
struct policy_need *policy_cache_take(struct policy_cache *c);
void policy_need_free(struct policy_need *n);

enum policy_verdict {
    POLICY_DUNNO,  /* nothing decided: accept as far as policy goes */
    POLICY_PERMIT, /* explicitly permitted */
    POLICY_REJECT, /* reply holds a 5xx */
    POLICY_DEFER,  /* reply holds a 4xx */
    POLICY_WAIT,   /* outside facts are pending (policy_cache_pending) */
};

/* the outcome of one stage */
struct policy_result {
    enum policy_verdict verdict;
    buf_t reply; /* the complete reply line for REJECT/DEFER */
    buf_t log; /* what decided, for the log ("reject_rbl_client bl.test", "access From:foo.biz") */
    int discard; /* DISCARD: accept the message and drop it */
    int hold;    /* HOLD / QUARANTINE: accept into the hold queue */
    buf_t hold_reason;
    buf_t prepend;            /* PREPEND: header lines to add ("Name: value\n" each) */
    buf_t redirect;           /* REDIRECT: the one recipient the message goes to */
    buf_t warnings;           /* lines "warn<TAB>text" and "reject_warning<TAB>reply" to log */
    int relay;                /* the relay stage found the client or the recipient may relay */
    long long greet_pause_ms; /* policy_greet_pause: -1 no access entry */
};

void policy_result_init(struct policy_result *r);
/* policy_result_reset - empty everything an evaluation fills (policy_check
 * does it first: a stage run again after POLICY_WAIT starts over, so its
 * headers, warnings and flags are not there twice) */
void policy_result_reset(struct policy_result *r);
void policy_result_free(struct policy_result *r);

/* policy_open - parse the restriction lists and open the tables of one
 * listener's view of the config; NULL with err = "file:line: LIST: unknown
 * restriction 'x'" (or a table that cannot be opened) */
struct policy *policy_open(const struct config *cfg, struct route *route, buf_t *err);
void policy_close(struct policy *p);
/* policy_check_listeners - policy_open for every listener in use (master
 * refuses to start or reload on a bad list); -1 with err naming the first
 * problem */
int policy_check_listeners(const struct config *cfg, buf_t *err);

/* policy_prefetch - put every DNS list query the client lists can ask
 * (reject_rbl_client, permit_dnswl_client; at most smtpd_dnsbl_limit) into
 * the cache's pending list, so they run while the client talks; 1 when
 * anything is pending */
int policy_prefetch(struct policy *p, const struct policy_facts *f, struct policy_cache *c);

/* policy_check - evaluate stage.  POLICY_CONNECT runs the client list,
 * POLICY_HELO the HELO list, POLICY_MAIL the sender list (each only with
 * smtpd_delay_reject = no, else DUNNO), POLICY_RCPT the delayed ones then
 * relay and recipient lists, POLICY_DATA, POLICY_EOD and POLICY_ETRN theirs.  For RCPT
 * the result's relay flag says whether relaying was granted (the caller
 * then asks lib/route whether the recipient exists). */
enum policy_verdict policy_check(struct policy *p, enum policy_stage stage,
                                 const struct policy_facts *f, struct policy_cache *c,
                                 struct policy_result *r);

/* policy_greet_pause - the greet pause (ms) for this client: access_maps'
 * GreetPause: entries (address, network, verified name), else 0 for
 * mynetworks, else default_ms (also when the table fails) */
long long policy_greet_pause(struct policy *p, const struct policy_facts *f, long long default_ms);

/* policy_set_trace - hear every restriction evaluated (tern trace) */
typedef void (*policy_trace_fn)(const char *list, const char *item, const char *detail, void *ctx);
void policy_set_trace(struct policy *p, policy_trace_fn fn, void *ctx);

/* policy_delay_reject - smtpd_delay_reject */
int policy_delay_reject(const struct policy *p);

/* ---- pieces with unit tests of their own */

/* one parsed access table value (Postfix access(5) and sendmail's access) */
enum policy_action {
    POLICY_ACT_OK,          /* OK, also any all-digits value in Postfix access (a number = OK) */
    POLICY_ACT_RELAY,       /* sendmail RELAY */
    POLICY_ACT_REJECT,      /* REJECT [text], 5NN text, ERROR:5.x.x:5NN text, ERROR:"5NN text" */
    POLICY_ACT_DEFER,       /* DEFER [text], 4NN text, ERROR:4.x.x:... */
    POLICY_ACT_DISCARD,     /* DISCARD [text] */
    POLICY_ACT_HOLD,        /* HOLD [text], QUARANTINE:reason */
    POLICY_ACT_PREPEND,     /* PREPEND header */
    POLICY_ACT_REDIRECT,    /* REDIRECT addr */
    POLICY_ACT_WARN,        /* WARN text */
    POLICY_ACT_DUNNO,       /* DUNNO; sendmail SKIP */
    POLICY_ACT_FRIEND,      /* sendmail Spam: FRIEND */
    POLICY_ACT_HATER,       /* sendmail Spam: HATER */
    POLICY_ACT_RESTRICTION, /* a restriction name (Postfix): arg holds it */
    POLICY_ACT_DEFER_IF_REJECT,
    POLICY_ACT_DEFER_IF_PERMIT,
};

struct policy_access_value {
    enum policy_action action;
    char code[4]; /* "" = the default for the action */
    char dsn[16]; /* "" = the default */
    buf_t text;   /* reply text, header, address, reason, or restriction name */
};

/* policy_access_parse - parse one table value; -1 with err when it is not
 * a valid value (the caller answers 451 4.3.5 and logs err) */
int policy_access_parse(const char *value, struct policy_access_value *out, buf_t *err);
void policy_access_value_init(struct policy_access_value *v);
void policy_access_value_free(struct policy_access_value *v);

/* policy_expand_reply - expand Postfix's $name / ${name} / ${name?text} /
 * ${name:text} and sendmail's ${client_addr} / $&{client_addr} in a reply
 * template; vars is a NULL-terminated name, value, name, value... list */
void policy_expand_reply(const char *template, const char *const *vars, buf_t *out);

#endif
