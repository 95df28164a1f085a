/*
 * expn - EXPN (RFC 5321 3.5.2) for tern-smtpd: the members of an alias,
 * one level, for mynetworks clients only (docs/smtpd.md "VRFY and EXPN").
 *
 * The alias tables are alias_maps, opened as root before the privilege drop
 * (like the route's tables) with local delivery's syntax (TABLE_ALIASES);
 * an alias value is split into its items by local/targets.c, the splitter
 * tern-local itself uses, so EXPN shows what local delivery would expand.
 * Replies: "250-2.1.5 <member>" lines, the last "250 2.1.5 <member>"; a
 * local user without an alias "250 2.1.5 <user@HOST>"; unknown "550 5.1.1
 * name... User unknown"; others (or disable_expn_command, noexpn) "502 5.7.0
 * Sorry, we do not allow this operation".
 */
#include <ctype.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "config.h"
#include "greet.h"
#include "log.h"
#include "route.h"
#include "session.h"
#include "smtpd_tables.h"
#include "table.h"
#include "targets.h"

/* at most this many members are shown; the rest are summarised */
#define EXPN_MEMBERS_MAX 1000

void smtpd_expn_open(struct smtpd_server *server)
{
    size_t count = 0;
    char *const *specs = config_list(server->svc.cfg, "alias_maps", &count);
    struct table_list *l = xcalloc(1, sizeof(*l));
    buf_t err = BUF_INIT;
    int wanted = 0;

    for (size_t i = 0; i < server->conf_count; i++)
        wanted |= !server->conf[i].cfg.disable_expn || !server->conf[i].cfg.disable_vrfy;
    if (!wanted || count == 0 || table_list_open(l, specs, count, TABLE_ALIASES, &err) < 0) {
        if (wanted && count > 0)
            log_warn("alias_maps: %s; EXPN and VRFY know local users only", buf_cstr(&err));
        free(l);
        l = NULL;
    }
    buf_free(&err);
    server->aliases = l;
    for (size_t i = 0; i < server->conf_count; i++)
        server->conf[i].cfg.aliases = l;
}

void smtpd_expn_close(struct smtpd_server *server)
{
    if (server->aliases == NULL)
        return;
    table_list_close(server->aliases);
    free(server->aliases);
    server->aliases = NULL;
}

int smtpd_expn_offered(const struct session *s)
{
    return !s->cfg->disable_expn && s->in_mynetworks;
}

/* expn_member - one item of an alias value as EXPN shows it */
static void expn_member(const struct session *s, const char *item, buf_t *out)
{
    const char *arg;
    enum local_item_kind kind = local_item_classify(item, &arg);

    buf_reset(out);
    if (kind == ITEM_ADDRESS || kind == ITEM_USER) {
        buf_putc(out, '<');
        proto_printable(arg, strlen(arg), ADDR_MAX_LENGTH, out);
        if (strchr(arg, '@') == NULL)
            buf_printf(out, "@%s", s->cfg->myhostname);
        buf_putc(out, '>');
    } else { /* |command, /file, :include: as written (sendmail shows them too) */
        buf_putc(out, '"');
        proto_printable(item, strlen(item), ADDR_MAX_LENGTH, out);
        buf_putc(out, '"');
    }
}

/* expn_reply_members - the alias value, one 250 line per item */
static void expn_reply_members(struct session *s, const char *value)
{
    buf_t item = BUF_INIT, line = BUF_INIT, prev = BUF_INIT;
    const char *p = value;
    size_t shown = 0;

    while (local_item_next(&p, &item) && shown < EXPN_MEMBERS_MAX) {
        expn_member(s, buf_cstr(&item), &line);
        if (shown++ > 0)
            session_reply(s, "250-2.1.5 %s", buf_cstr(&prev));
        buf_set(&prev, buf_cstr(&line));
    }
    if (shown == 0)
        session_reply(s, "550 5.1.1 Alias has no members");
    else
        session_reply(s, "250 2.1.5 %s", buf_cstr(&prev));
    buf_free(&item);
    buf_free(&line);
    buf_free(&prev);
}

/* expn_local - a local name: its alias (r, value), else the user */
static void expn_local(struct session *s, const char *echo, const char *name, enum table_result r,
                       const buf_t *value)
{
    if (r == TABLE_FOUND)
        expn_reply_members(s, buf_cstr(value));
    else if (r == TABLE_TEMPFAIL)
        session_reply(s, "451 4.3.0 %s... Alias database unavailable", echo);
    else if (getpwnam(name) != NULL)
        session_reply(s, "250 2.1.5 <%s@%s>", name, s->cfg->myhostname);
    else
        session_reply(s, "550 5.1.1 %s... User unknown", echo);
}

/* expn_is_local - no domain, or a domain of the local class */
static int expn_is_local(const struct session *s, const char *addr)
{
    enum route_class cls = ROUTE_CLASS_DEFAULT;

    route_class_of(s->cfg->route, addr_domain(addr), &cls);
    return cls == ROUTE_CLASS_LOCAL;
}

/* expn_answer - look the name up (in the session's scope: EXPN runs again
 * when a remote answer is not in yet), then reply */
static void expn_answer(struct session *s, const char *addr, const char *echo, const char *name)
{
    buf_t value = BUF_INIT;
    enum table_result r = TABLE_NOTFOUND;
    int local;

    smtpd_tables_enter(s);
    local = expn_is_local(s, addr);
    if (local && s->cfg->aliases != NULL)
        r = table_list_lookup(s->cfg->aliases, name, &value);
    if (smtpd_tables_leave(s, SMTPD_TABLES_COMMAND))
        local = -1; /* EXPN runs again when the answers are in */
    if (local == 0)
        expn_reply_members(s, addr); /* sendmail: itself */
    else if (local > 0)
        expn_local(s, echo, name, r, &value);
    if (local >= 0)
        smtpd_tables_forget(s);
    buf_free(&value);
}

void smtpd_expn_command(struct session *s, const char *arg)
{
    buf_t addr = BUF_INIT, name = BUF_INIT, echo = BUF_INIT;
    size_t len = strlen(arg);

    if (!smtpd_expn_offered(s)) {
        session_reply(s, "502 5.7.0 Sorry, we do not allow this operation");
        return;
    }
    proto_unbracket(arg, &addr);
    proto_printable(arg, len, ADDR_MAX_LENGTH, &echo);
    addr_local_part(buf_cstr(&addr), &name);
    for (size_t i = 0; i < name.len; i++)
        name.data[i] = (char)tolower((unsigned char)name.data[i]);
    if (addr.len == 0 || name.len == 0)
        session_reply(s, "501 5.5.2 Argument required");
    else
        expn_answer(s, buf_cstr(&addr), buf_cstr(&echo), buf_cstr(&name));
    buf_free(&addr);
    buf_free(&name);
    buf_free(&echo);
}
