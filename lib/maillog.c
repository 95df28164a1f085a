/*
 * maillog - message event lines in the postfix, sendmail or json format
 * (see maillog.h).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "log.h"
#include "maillog.h"
#include "smtputf8.h"
#include "timeutil.h"

/* sendmail's RecipientFactor: pri= grows by this per recipient */
#define MAILLOG_RECIPIENT_FACTOR 30000

static enum maillog_format maillog_format = MAILLOG_POSTFIX;

int maillog_format_parse(const char *name)
{
    if (strcasecmp(name, "postfix") == 0)
        return MAILLOG_POSTFIX;
    if (strcasecmp(name, "sendmail") == 0)
        return MAILLOG_SENDMAIL;
    if (strcasecmp(name, "json") == 0)
        return MAILLOG_JSON;
    return -1;
}

void maillog_set_format(enum maillog_format format)
{
    maillog_format = format;
}

enum maillog_format maillog_get_format(void)
{
    return maillog_format;
}

/* maillog_str - s, or "" for NULL */
static const char *maillog_str(const char *s)
{
    return s ? s : "";
}

/* ---- sendmail helpers */

void maillog_sendmail_delay(double seconds, buf_t *out)
{
    long long s = seconds > 0 ? (long long)seconds : 0;
    long long days = s / 86400;

    if (days > 0)
        buf_printf(out, "%lld+", days);
    buf_printf(out, "%02lld:%02lld:%02lld", s % 86400 / 3600, s % 3600 / 60, s % 60);
}

/* maillog_relay_unnamed - the host part says nothing the address does not:
 * empty, "unknown", or the address itself */
static int maillog_relay_unnamed(const char *name, size_t name_len, const char *addr,
                                 size_t addr_len)
{
    return name_len == 0 || (name_len == 7 && strncmp(name, "unknown", 7) == 0) ||
           (name_len == addr_len && strncmp(name, addr, addr_len) == 0);
}

void maillog_sendmail_relay(const char *relay, buf_t *out)
{
    const char *open = relay ? strrchr(relay, '[') : NULL;
    const char *close = open ? strchr(open, ']') : NULL;
    size_t name_len, addr_len;

    if (relay == NULL || strcmp(relay, "none") == 0 || strcmp(relay, "local") == 0)
        return;
    if (open == NULL || close == NULL) {
        buf_puts(out, relay);
        return;
    }
    name_len = (size_t)(open - relay);
    addr_len = (size_t)(close - open - 1);
    if (maillog_relay_unnamed(relay, name_len, open + 1, addr_len))
        buf_printf(out, "[%.*s]", (int)addr_len, open + 1);
    else
        buf_printf(out, "%.*s.", (int)name_len, relay);
    buf_printf(out, " [%.*s]", (int)addr_len, open + 1);
}

/* maillog_sendmail_client - "name [addr]" or "[addr]" (LOG-03) */
static void maillog_sendmail_client(const char *name, const char *addr, buf_t *out)
{
    if (name && *name && strcmp(name, "unknown") != 0)
        buf_printf(out, "%s ", name);
    buf_printf(out, "[%s]", maillog_str(addr));
}

/* maillog_sendmail_stat - stat=: Sent (..), Deferred: .., or the reason */
static void maillog_sendmail_stat(const struct maillog_delivery *e, buf_t *out)
{
    const char *why = maillog_str(e->reason);

    if (strcmp(e->status, "sent") == 0)
        buf_printf(out, "Sent (%s)", why);
    else if (strcmp(e->status, "deferred") == 0)
        buf_printf(out, "Deferred: %s", why);
    else if (strcmp(e->status, "expired") == 0)
        buf_printf(out, "Expired: %s", why);
    else
        buf_puts(out, *why ? why : "Service unavailable");
}

static long long maillog_priority(long long size, size_t nrcpts)
{
    return (size > 0 ? size : 0) + (long long)nrcpts * MAILLOG_RECIPIENT_FACTOR;
}

/* ---- json helpers */

/* maillog_json_str - ,"name":"value" unless value is NULL */
static void maillog_json_str(buf_t *out, const char *name, const char *value)
{
    if (value == NULL)
        return;
    buf_printf(out, ",\"%s\":", name);
    json_put_string(out, value);
}

/* maillog_json_begin - {"queue_id":"..","event":".." */
static void maillog_json_begin(buf_t *out, const char *queue_id, const char *event)
{
    buf_puts(out, "{\"queue_id\":");
    json_put_string(out, queue_id);
    buf_printf(out, ",\"event\":\"%s\"", event);
}

/* maillog_address - "<addr>" after name: UTF-8 as it is, any other byte
 * that is not printable ASCII escaped (lib/smtputf8.h), so that an address
 * from a queue file or a local submission keeps the log valid UTF-8 */
static void maillog_address(buf_t *out, const char *name, const char *addr)
{
    const char *a = maillog_str(addr);

    buf_printf(out, "%s=<", name);
    smtputf8_log_safe(a, strlen(a), out);
    buf_putc(out, '>');
}

/* maillog_to - "QID: to=<b>[, orig_to=<a>]" of both text formats */
static void maillog_to(const struct maillog_delivery *e, buf_t *out)
{
    buf_printf(out, "%s: ", e->queue_id);
    maillog_address(out, "to", e->rcpt);
    if (e->orig_rcpt) {
        buf_puts(out, ", ");
        maillog_address(out, "orig_to", e->orig_rcpt);
    }
}

/* ---- received */

static void maillog_received_postfix(const struct maillog_received *e, buf_t *out)
{
    buf_printf(out, "%s: ", e->queue_id);
    maillog_address(out, "from", e->sender);
    buf_printf(out, ", size=%lld, nrcpt=%zu (queue %s)", e->size, e->nrcpts,
               e->hold ? "hold" : "active");
}

/* maillog_sendmail_daemon - sendmail's names for the default listeners
 * (DAEMON_OPTIONS Name=MTA on port 25, Name=MSA on 587); others as named */
static const char *maillog_sendmail_daemon(const char *listener)
{
    if (listener == NULL || *listener == 0 || strcmp(listener, "smtpd") == 0)
        return "MTA";
    if (strcmp(listener, "submission") == 0)
        return "MSA";
    return listener;
}

static void maillog_received_sendmail(const struct maillog_received *e, buf_t *out)
{
    buf_printf(out, "%s: ", e->queue_id);
    maillog_address(out, "from", e->sender);
    buf_printf(out, ", size=%lld, class=0, nrcpts=%zu", e->size, e->nrcpts);
    if (e->msgid && *e->msgid)
        buf_printf(out, ", msgid=%s", e->msgid);
    if (e->proto == NULL) {
        buf_printf(out, ", relay=%s@localhost", e->user && *e->user ? e->user : "root");
        return;
    }
    buf_printf(out, ", proto=%s, daemon=%s, relay=", e->proto, maillog_sendmail_daemon(e->daemon));
    maillog_sendmail_client(e->client_name, e->client_addr, out);
}

static void maillog_received_json(const struct maillog_received *e, buf_t *out)
{
    maillog_json_begin(out, e->queue_id, "from");
    maillog_json_str(out, "from", maillog_str(e->sender));
    buf_printf(out, ",\"size\":%lld,\"nrcpts\":%zu", e->size, e->nrcpts);
    maillog_json_str(out, "msgid", e->msgid);
    maillog_json_str(out, "proto", e->proto ? e->proto : "local");
    maillog_json_str(out, "daemon", e->daemon && *e->daemon ? e->daemon : NULL);
    maillog_json_str(out, "client_name", e->client_name);
    maillog_json_str(out, "client_addr", e->client_addr);
    maillog_json_str(out, "user", e->user);
    maillog_json_str(out, "queue", e->hold ? "hold" : "active");
    buf_putc(out, '}');
}

void maillog_format_received(enum maillog_format f, const struct maillog_received *e, buf_t *out)
{
    if (f == MAILLOG_SENDMAIL)
        maillog_received_sendmail(e, out);
    else if (f == MAILLOG_JSON)
        maillog_received_json(e, out);
    else
        maillog_received_postfix(e, out);
}

/* ---- delivery */

static void maillog_delivery_postfix(const struct maillog_delivery *e, buf_t *out)
{
    buf_t delay = BUF_INIT;

    time_format_delay(e->delay, &delay);
    maillog_to(e, out);
    buf_printf(out, ", relay=%s%s, delay=%s, dsn=%s, status=%s (%s)", maillog_str(e->relay),
               maillog_str(e->extra), buf_cstr(&delay), e->dsn,
               strcmp(e->status, "expired") == 0 ? "expired, returned to sender" : e->status,
               maillog_str(e->reason));
    buf_free(&delay);
}

static void maillog_delivery_sendmail(const struct maillog_delivery *e, buf_t *out)
{
    buf_t relay = BUF_INIT;

    maillog_to(e, out);
    buf_puts(out, ", delay=");
    maillog_sendmail_delay(e->delay, out);
    buf_puts(out, ", xdelay=");
    maillog_sendmail_delay(e->xdelay, out);
    buf_printf(out, ", mailer=%s, pri=%lld", e->mailer ? e->mailer : "esmtp",
               maillog_priority(e->size, e->nrcpts));
    maillog_sendmail_relay(e->relay, &relay);
    if (relay.len)
        buf_printf(out, ", relay=%s", buf_cstr(&relay));
    buf_printf(out, ", dsn=%s, stat=", e->dsn);
    maillog_sendmail_stat(e, out);
    buf_free(&relay);
}

static void maillog_delivery_json(const struct maillog_delivery *e, buf_t *out)
{
    maillog_json_begin(out, e->queue_id, "to");
    maillog_json_str(out, "to", e->rcpt);
    maillog_json_str(out, "orig_to", e->orig_rcpt);
    maillog_json_str(out, "relay", e->relay);
    buf_printf(out, ",\"delay\":%.3f,\"xdelay\":%.3f", e->delay > 0 ? e->delay : 0,
               e->xdelay > 0 ? e->xdelay : 0);
    maillog_json_str(out, "mailer", e->mailer);
    buf_printf(out, ",\"pri\":%lld", maillog_priority(e->size, e->nrcpts));
    maillog_json_str(out, "dsn", e->dsn);
    maillog_json_str(out, "status", e->status);
    maillog_json_str(out, "reason", maillog_str(e->reason));
    buf_putc(out, '}');
}

void maillog_format_delivery(enum maillog_format f, const struct maillog_delivery *e, buf_t *out)
{
    if (f == MAILLOG_SENDMAIL)
        maillog_delivery_sendmail(e, out);
    else if (f == MAILLOG_JSON)
        maillog_delivery_json(e, out);
    else
        maillog_delivery_postfix(e, out);
}

/* ---- notice */

void maillog_format_notice(enum maillog_format f, const struct maillog_notice *e, buf_t *out)
{
    const char *to = e->postmaster ? "postmaster" : "sender";

    if (f == MAILLOG_SENDMAIL) {
        buf_printf(out, "%s: %s: %s: %s", e->queue_id, e->notice_id,
                   strcmp(e->kind, "non-delivery") == 0 ? "DSN" : e->kind,
                   e->reason && *e->reason ? e->reason : "Service unavailable");
    } else if (f == MAILLOG_JSON) {
        maillog_json_begin(out, e->queue_id, "notice");
        maillog_json_str(out, "notice_id", e->notice_id);
        maillog_json_str(out, "kind", e->kind);
        maillog_json_str(out, "notify", to);
        maillog_json_str(out, "reason", e->reason);
        buf_putc(out, '}');
    } else {
        buf_printf(out, "%s: %s %s notification: %s", e->queue_id, to, e->kind, e->notice_id);
    }
}

/* ---- reject */

/* maillog_reject_ruleset - sendmail's ruleset for an SMTP stage */
static const char *maillog_reject_ruleset(const char *stage)
{
    if (strcasecmp(stage, "RCPT") == 0)
        return "check_rcpt";
    if (strcasecmp(stage, "MAIL") == 0)
        return "check_mail";
    if (strcasecmp(stage, "CONNECT") == 0 || strcasecmp(stage, "HELO") == 0 ||
        strcasecmp(stage, "EHLO") == 0)
        return "check_relay";
    return "check_data";
}

/* maillog_reject_sendmail - "NOQUEUE: ruleset=check_rcpt, arg1=<to>,
 * relay=host [addr], reject=550 ..." */
static void maillog_reject_sendmail(const struct maillog_reject *e, buf_t *out)
{
    const char *open = strrchr(e->client, '[');
    int is_reject = strstr(e->kind, "reject") != NULL;

    buf_printf(out, "NOQUEUE: ruleset=%s, arg1=<%s>, relay=", maillog_reject_ruleset(e->stage),
               e->to ? e->to : maillog_str(e->from));
    if (open && open != e->client && strncmp(e->client, "unknown[", 8) != 0)
        buf_printf(out, "%.*s %s", (int)(open - e->client), e->client, open);
    else
        buf_puts(out, open ? open : e->client);
    buf_printf(out, ", %s=%s", is_reject ? "reject" : e->kind, e->text);
}

static void maillog_reject_json(const struct maillog_reject *e, buf_t *out)
{
    maillog_json_begin(out, "NOQUEUE", "reject");
    maillog_json_str(out, "kind", e->kind);
    maillog_json_str(out, "stage", e->stage);
    maillog_json_str(out, "client", e->client);
    maillog_json_str(out, "reply", e->text);
    maillog_json_str(out, "from", maillog_str(e->from));
    maillog_json_str(out, "to", e->to);
    maillog_json_str(out, "proto", e->proto);
    maillog_json_str(out, "helo", e->helo);
    buf_putc(out, '}');
}

void maillog_format_reject(enum maillog_format f, const struct maillog_reject *e, buf_t *out)
{
    if (f == MAILLOG_SENDMAIL) {
        maillog_reject_sendmail(e, out);
    } else if (f == MAILLOG_JSON) {
        maillog_reject_json(e, out);
    } else {
        buf_printf(out, "NOQUEUE: %s: %s from %s: %s; from=<%s>", e->kind, e->stage, e->client,
                   e->text, maillog_str(e->from));
        if (e->to)
            buf_printf(out, " to=<%s>", e->to);
        buf_printf(out, " proto=%s helo=<%s>", maillog_str(e->proto), maillog_str(e->helo));
    }
}

/* ---- logging */

void maillog_log_received(const struct maillog_received *e)
{
    buf_t line = BUF_INIT;

    maillog_format_received(maillog_format, e, &line);
    if (maillog_format == MAILLOG_SENDMAIL && e->proto == NULL)
        log_info_as("sendmail", "%s", buf_cstr(&line));
    else
        log_info("%s", buf_cstr(&line));
    buf_free(&line);
}

#define MAILLOG_LOG_FUNC(fname, type, formatter)                                                   \
    void fname(const type *e)                                                                      \
    {                                                                                              \
        buf_t line = BUF_INIT;                                                                     \
        formatter(maillog_format, e, &line);                                                       \
        log_info("%s", buf_cstr(&line));                                                           \
        buf_free(&line);                                                                           \
    }

MAILLOG_LOG_FUNC(maillog_log_delivery, struct maillog_delivery, maillog_format_delivery)
MAILLOG_LOG_FUNC(maillog_log_notice, struct maillog_notice, maillog_format_notice)
MAILLOG_LOG_FUNC(maillog_log_reject, struct maillog_reject, maillog_format_reject)
