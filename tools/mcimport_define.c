/*
 * mcimport_define - define(`conf...'), the other .mc macros and
 * LOCAL_CONFIG's .cf lines (mcimport_impl.h).
 *
 * A define of a name that is neither sendmail's nor known here is kept as
 * a macro of the file (000's CERT_DIR) and expanded where later values name
 * it; the report says so, in case it was a sendmail setting tern lacks.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mcimport_impl.h"

/* ------------------------------------------------------- simple values */

static void mcimport_define_path(struct mcimport_map *m, const char *param, const char *value)
{
    buf_t p = BUF_INIT;

    mcimport_path(m, value, &p);
    mcimport_set(m, param, buf_cstr(&p));
    buf_free(&p);
}

static void mcimport_define_number(struct mcimport_map *m, const char *param, const char *value)
{
    if (!mcimport_is_number(value)) {
        mcimport_report(m, MCIMPORT_NOT_MAPPED, "%s is not a number", value);
        return;
    }
    mcimport_set(m, param, value);
}

static void mcimport_define_time(struct mcimport_map *m, const char *param, const char *value)
{
    buf_t t = BUF_INIT;

    mcimport_time(value, &t);
    mcimport_set(m, param, buf_cstr(&t));
    buf_free(&t);
}

static void mcimport_define_string(struct mcimport_map *m, const char *param, const char *value)
{
    mcimport_set(m, param, value);
}

/* a define tern has no setting for: param is the reason */
static void mcimport_define_refused(struct mcimport_map *m, const char *param, const char *value)
{
    (void)value;
    mcimport_report(m, MCIMPORT_NOT_MAPPED, "%s", param);
}

/* a define tern needs no setting for: param says why */
static void mcimport_define_noted(struct mcimport_map *m, const char *param, const char *value)
{
    (void)value;
    mcimport_report(m, MCIMPORT_NOTED, "%s", param);
}

/* a define with nothing in its value: nothing changes */
static void mcimport_define_empty(struct mcimport_map *m)
{
    mcimport_report(m, MCIMPORT_NOTED, "empty value: tern's default stays");
}

/* -------------------------------------------------------- conf values */

/* SMTP_LOGIN_MSG: $j is $myhostname; dates and versions are left out */
static void mcimport_define_banner(struct mcimport_map *m, const char *param, const char *value)
{
    buf_t b = BUF_INIT, dropped = BUF_INIT;

    for (const char *p = value; *p; p++) {
        if (*p != '$' || p[1] == '\0') {
            if (!(isspace((unsigned char)*p) && (b.len == 0 || b.data[b.len - 1] == ' ')))
                buf_putc(&b, isspace((unsigned char)*p) ? ' ' : *p);
            continue;
        }
        p++;
        if (*p == 'j' || *p == 'w')
            buf_puts(&b, "$myhostname");
        else if (*p == 'm')
            buf_puts(&b, "$mydomain");
        else
            buf_printf(&dropped, " $%c", *p);
    }
    while (b.len > 0 && b.data[b.len - 1] == ' ')
        buf_truncate(&b, b.len - 1);
    mcimport_set(m, param, buf_cstr(&b));
    if (dropped.len)
        mcimport_report(m, MCIMPORT_NOTED,
                        "left out of the banner:%s (tern's greeting has no date, and shows no "
                        "version unless you write one)",
                        buf_cstr(&dropped));
    buf_free(&b);
    buf_free(&dropped);
}

static const char *const mcimport_privacy_flags[] = {
    "goaway",       "needmailhelo",   "needexpnhelo", "needvrfyhelo",
    "noexpn",       "novrfy",         "noverb",       "noetrn",
    "noreceipts",   "nobodyreturn",   "authwarnings", "restrictmailq",
    "restrictqrun", "restrictexpand", "public",       NULL};

static void mcimport_define_privacy(struct mcimport_map *m, const char *param, const char *value)
{
    char **w;
    size_t n = mcimport_words(value, &w);
    buf_t known = BUF_INIT, unknown = BUF_INIT;

    for (size_t i = 0; i < n; i++) {
        int ok = 0;
        for (int j = 0; mcimport_privacy_flags[j]; j++)
            ok |= strcmp(mcimport_privacy_flags[j], w[i]) == 0;
        buf_printf(ok ? &known : &unknown, "%s%s", (ok ? known.len : unknown.len) ? ", " : "",
                   w[i]);
    }
    if (known.len)
        mcimport_set(m, param, buf_cstr(&known));
    if (unknown.len)
        mcimport_report(m, MCIMPORT_NOT_MAPPED, "privacy flags tern does not know: %s",
                        buf_cstr(&unknown));
    if (n == 0)
        mcimport_define_empty(m);
    mcimport_words_free(w, n);
    buf_free(&known);
    buf_free(&unknown);
}

static void mcimport_define_mime_errors(struct mcimport_map *m, const char *param,
                                        const char *value)
{
    int plain = value[0] == 'F' || value[0] == 'f' || value[0] == '0';

    mcimport_set(m, param, plain ? "plain" : "mime");
    if (plain)
        mcimport_report(m, MCIMPORT_NOTED,
                        "tern keeps DSN on with plain bounces (sendmail turns DSN off with "
                        "MIME_FORMAT_ERRORS False)");
}

static void mcimport_define_ident(struct mcimport_map *m, const char *param, const char *value)
{
    buf_t t = BUF_INIT;

    (void)param;
    mcimport_time(value, &t);
    if (strspn(buf_cstr(&t), "0") > 0 && strspn(buf_cstr(&t), "0smhd") == t.len) {
        mcimport_set(m, "smtpd_ident_lookup", "no");
    } else {
        mcimport_set(m, "smtpd_ident_lookup", "yes");
        mcimport_set(m, "smtpd_ident_timeout", buf_cstr(&t));
    }
    buf_free(&t);
}

/* AUTH_OPTIONS letters (docs/auth.md) */
static void mcimport_define_auth_options(struct mcimport_map *m, const char *param,
                                         const char *value)
{
    buf_t opts = BUF_INIT, ignored = BUF_INIT;

    (void)param;
    buf_puts(&opts, "noanonymous");
    for (const char *p = value; *p; p++) {
        const char *add = *p == 'a'   ? "noactive"
                          : *p == 'd' ? "nodictionary"
                          : *p == 'm' ? "mutual_auth"
                                      : NULL;
        if (add)
            buf_printf(&opts, ", %s", add);
        else if (*p != 'p' && *p != 'y' && *p != ' ' && *p != ',')
            buf_printf(&ignored, " %c", *p);
    }
    mcimport_set(m, "smtpd_tls_auth_only", "yes");
    mcimport_set(m, "smtpd_sasl_security_options", buf_cstr(&opts));
    if (strchr(value, 'p') == NULL)
        mcimport_report(m, MCIMPORT_NOTED,
                        "without p sendmail offers PLAIN and LOGIN before STARTTLS; tern does not "
                        "(smtpd_tls_auth_only = yes): set it to no only if clients cannot use TLS");
    if (ignored.len)
        mcimport_report(m, MCIMPORT_NOTED,
                        "options%s: A is what tern always does (AUTH= kept only from an "
                        "authenticated client); others have no tern setting",
                        buf_cstr(&ignored));
    buf_free(&opts);
    buf_free(&ignored);
}

static void mcimport_define_auth_mechs(struct mcimport_map *m, const char *param, const char *value)
{
    char **w;
    size_t n = mcimport_words(value, &w);
    buf_t list = BUF_INIT;

    for (size_t i = 0; i < n; i++)
        buf_printf(&list, "%s%s", i ? " " : "", w[i]);
    mcimport_set(m, param, "yes");
    mcimport_report(m, MCIMPORT_NOTED,
                    "the mechanisms are Cyrus SASL's own list: put \"mech_list: %s\" in "
                    "/etc/sasl2/smtpd.conf (docs/auth.md)",
                    buf_cstr(&list));
    mcimport_words_free(w, n);
    buf_free(&list);
}

static void mcimport_define_tls_srv(struct mcimport_map *m, const char *param, const char *value)
{
    if (strchr(value, 'V') != NULL)
        mcimport_set(m, param, "no");
    else
        mcimport_report(m, MCIMPORT_NOTED,
                        "tern asks for client certificates only with smtpd_tls_ask_ccert = yes");
}

static void mcimport_define_children(struct mcimport_map *m, const char *param, const char *value)
{
    mcimport_define_number(m, param, value);
    mcimport_report(m, MCIMPORT_NOTED,
                    "smtpd_client_limit counts per smtpd worker: the host's cap is it times "
                    "smtpd_workers");
}

static void mcimport_define_load(struct mcimport_map *m, const char *param, const char *value)
{
    if (strspn(value, "0123456789.") != strlen(value) || *value == '\0') {
        mcimport_report(m, MCIMPORT_NOT_MAPPED, "%s is not a load average", value);
        return;
    }
    mcimport_set(m, param, value);
}

static void mcimport_define_def_user(struct mcimport_map *m, const char *param, const char *value)
{
    size_t n = strcspn(value, ":");
    char *user = xstrndup(value, n);

    if (*user == '\0' || mcimport_is_number(user))
        mcimport_report(m, MCIMPORT_NOT_MAPPED,
                        "default_privs is a user name: name the user whose uid is %s", value);
    else
        mcimport_set(m, param, user);
    free(user);
}

static void mcimport_define_macros(struct mcimport_map *m, const char *param, const char *value)
{
    char **w;
    size_t n = mcimport_words(value, &w);
    buf_t v = BUF_INIT;

    for (size_t i = 0; i < n; i++)
        buf_printf(&v, "%s%s", i ? " " : "", w[i]);
    mcimport_set(m, param, buf_cstr(&v));
    mcimport_words_free(w, n);
    buf_free(&v);
}

static void mcimport_define_trusted(struct mcimport_map *m, const char *param, const char *value)
{
    char **w;
    size_t n = mcimport_words(value, &w);

    for (size_t i = 0; i < n; i++)
        mcimport_add(m, param, w[i], 1);
    if (n == 0)
        mcimport_define_empty(m);
    mcimport_words_free(w, n);
}

/* ------------------------------------------ relay hosts (define or call) */

/* mcimport_host - "mailer:host" without its mailer; NULL for a mailer
 * tern has no equivalent of (reported) */
static const char *mcimport_host(struct mcimport_map *m, const char *value)
{
    const char *colon = strchr(value, ':');

    if (colon == NULL || value[0] == '[')
        return value;
    size_t n = (size_t)(colon - value);
    static const char *const smtp_mailers[] = {"smtp", "esmtp", "smtp8", "dsmtp", "relay", NULL};
    for (int i = 0; smtp_mailers[i]; i++)
        if (strlen(smtp_mailers[i]) == n && strncmp(value, smtp_mailers[i], n) == 0)
            return colon + 1;
    mcimport_report(m, MCIMPORT_NOT_MAPPED,
                    "the mailer %.*s: tern relays over SMTP only (UUCP and others are not "
                    "supported)",
                    (int)n, value);
    return NULL;
}

static void mcimport_define_smart_host(struct mcimport_map *m, const char *param, const char *value)
{
    const char *host = mcimport_host(m, value);

    if (host)
        mcimport_set(m, param, host);
}

static void mcimport_define_mail_hub(struct mcimport_map *m, const char *param, const char *value)
{
    const char *host = mcimport_host(m, value);
    buf_t v = BUF_INIT;

    if (host == NULL)
        return;
    buf_printf(&v, "smtp:%s", host);
    mcimport_set(m, param, buf_cstr(&v));
    mcimport_report(m, MCIMPORT_NOTED,
                    "aliases are still expanded here first, as sendmail does (docs/routing.md)");
    buf_free(&v);
}

static void mcimport_define_luser(struct mcimport_map *m, const char *param, const char *value)
{
    buf_t v = BUF_INIT;

    if (strncmp(value, "local:", 6) == 0) {
        buf_puts(&v, value + 6);
    } else {
        const char *host = mcimport_host(m, value);
        if (host == NULL)
            return;
        buf_printf(&v, "$user@%s", host);
    }
    mcimport_set(m, param, buf_cstr(&v));
    buf_free(&v);
}

static void mcimport_define_shell(struct mcimport_map *m, const char *param, const char *value)
{
    if (strcmp(value, "/dev/null") == 0) {
        mcimport_set(m, "allow_mail_to_commands", "");
        mcimport_report(m, MCIMPORT_NOTED, "no program deliveries at all");
        return;
    }
    mcimport_define_path(m, param, value);
}

static void mcimport_define_alias_file(struct mcimport_map *m, const char *param, const char *value)
{
    buf_t spec = BUF_INIT;
    char *first = xstrndup(value, strcspn(value, ","));

    if (mcimport_table(m, first, "aliases", 1, &spec) == 0)
        mcimport_set(m, param, buf_cstr(&spec));
    free(first);
    buf_free(&spec);
}

/* a names file (RELAY_DOMAIN_FILE(`-o /etc/mail/relay-domains')) */
static void mcimport_names_file(struct mcimport_map *m, const char *param, const char *arg)
{
    int optional = strncmp(arg, "-o", 2) == 0;
    buf_t p = BUF_INIT;

    if (optional)
        arg += 2;
    while (*arg == ' ')
        arg++;
    buf_puts(&p, optional ? "optional:" : "");
    mcimport_path(m, arg, &p);
    mcimport_add(m, param, buf_cstr(&p), 0);
    buf_free(&p);
}

/* RELAY_DOMAIN_FILE or confCR_FILE: this file replaces sendmail's default */
static void mcimport_relay_file(struct mcimport_map *m, const char *param, const char *value)
{
    m->relay_file_seen = 1;
    mcimport_names_file(m, param, value);
}

struct mcimport_define_map {
    const char *name;
    void (*map)(struct mcimport_map *m, const char *param, const char *value);
    const char *param; /* or, for refused and noted, the reason */
};

static const struct mcimport_define_map mcimport_defines[] = {
    {"confSMTP_LOGIN_MSG", mcimport_define_banner, "smtpd_banner"},
    {"confPRIVACY_FLAGS", mcimport_define_privacy, "smtpd_privacy_flags"},
    {"confMAX_HOP", mcimport_define_number, "hopcount_limit"},
    {"confMIME_FORMAT_ERRORS", mcimport_define_mime_errors, "bounce_format"},
    {"confTO_IDENT", mcimport_define_ident, NULL},
    {"confRUN_AS_USER", mcimport_define_refused,
     "tern's services always run as mail_owner (default tern), set up by the package"},
    {"confCACERT", mcimport_define_path, "smtpd_tls_CAfile"},
    {"confCACERT_PATH", mcimport_define_path, "smtpd_tls_CApath"},
    {"confSERVER_CERT", mcimport_define_path, "smtpd_tls_cert_file"},
    {"confSERVER_KEY", mcimport_define_path, "smtpd_tls_key_file"},
    {"confCLIENT_CERT", mcimport_define_path, "smtp_tls_cert_file"},
    {"confCLIENT_KEY", mcimport_define_path, "smtp_tls_key_file"},
    {"confCRL", mcimport_define_path, "smtpd_tls_crl_file"},
    {"confAUTH_OPTIONS", mcimport_define_auth_options, NULL},
    {"confAUTH_MECHANISMS", mcimport_define_auth_mechs, "smtpd_sasl_auth_enable"},
    {"confAUTH_REALM", mcimport_define_string, "smtpd_sasl_local_domain"},
    {"confTLS_SRV_OPTIONS", mcimport_define_tls_srv, "smtpd_tls_ask_ccert"},
    {"confCONNECTION_RATE_THROTTLE", mcimport_define_number, "smtpd_connection_rate_throttle"},
    {"confMAX_DAEMON_CHILDREN", mcimport_define_children, "smtpd_client_limit"},
    {"confMAX_QUEUE_CHILDREN", mcimport_define_number, "qmgr_delivery_limit"},
    {"confQUEUE_LA", mcimport_define_load, "queue_defer_load"},
    {"confREFUSE_LA", mcimport_define_load, "smtpd_refuse_load"},
    {"confDEF_USER_ID", mcimport_define_def_user, "default_privs"},
    {"confDONT_BLAME_SENDMAIL", mcimport_define_refused,
     "tern's checks of table, alias and .forward files are fixed (docs/local.md); fix the "
     "file modes instead"},
    {"confMILTER_MACROS_CONNECT", mcimport_define_macros, "milter_connect_macros"},
    {"confMILTER_MACROS_HELO", mcimport_define_macros, "milter_helo_macros"},
    {"confMILTER_MACROS_ENVFROM", mcimport_define_macros, "milter_mail_macros"},
    {"confMILTER_MACROS_ENVRCPT", mcimport_define_macros, "milter_rcpt_macros"},
    {"confMILTER_MACROS_DATA", mcimport_define_macros, "milter_data_macros"},
    {"confMILTER_MACROS_EOH", mcimport_define_macros, "milter_end_of_header_macros"},
    {"confMILTER_MACROS_EOM", mcimport_define_macros, "milter_end_of_data_macros"},
    {"confINPUT_MAIL_FILTERS", mcimport_define_noted,
     "smtpd_milters lists the filters in the order of the INPUT_MAIL_FILTER lines"},
    {"confDOMAIN_NAME", mcimport_define_string, "myhostname"},
    {"confMAX_MESSAGE_SIZE", mcimport_define_number, "message_size_limit"},
    {"confMAX_RCPTS_PER_MESSAGE", mcimport_define_number, "smtpd_recipient_limit"},
    {"confMAX_HEADERS_LENGTH", mcimport_define_number, "header_size_limit"},
    {"confTO_QUEUEWARN", mcimport_define_time, "delay_warning_time"},
    {"confTO_QUEUERETURN", mcimport_define_time, "maximal_queue_lifetime"},
    {"confMIN_QUEUE_AGE", mcimport_define_time, "minimal_backoff_time"},
    {"confTRUSTED_USERS", mcimport_define_trusted, "trusted_users"},
    {"confCR_FILE", mcimport_relay_file, "relay_domains"},
    {"confTIME_ZONE", mcimport_define_noted,
     "tern passes TZ to its services (import_environment) and logs local time"},
    {"confCF_VERSION", mcimport_define_noted, "a version string for sendmail.cf: nothing to set"},
    {"confDONT_INIT_GROUPS", mcimport_define_noted,
     "tern's services take mail_owner's groups; deliveries take the user's"},
    {"SMART_HOST", mcimport_define_smart_host, "relayhost"},
    {"MAIL_HUB", mcimport_define_mail_hub, "local_transport"},
    {"LUSER_RELAY", mcimport_define_luser, "luser_relay"},
    {"LOCAL_SHELL_PATH", mcimport_define_shell, "local_command_shell"},
    {"ALIAS_FILE", mcimport_define_alias_file, "alias_maps"},
    {"_USE_DECNET_SYNTAX_", mcimport_define_refused,
     "DECnet node::user addresses are not supported"},
    {NULL, NULL, NULL},
};

/* mcimport_define_name - the name with OCR spaces as underscores */
static void mcimport_define_name(const char *name, buf_t *out)
{
    for (const char *p = name; *p; p++)
        buf_putc(out, *p == ' ' ? '_' : *p);
}

static const struct mcimport_define_map *mcimport_define_find(const char *name)
{
    for (int i = 0; mcimport_defines[i].name; i++)
        if (strcmp(mcimport_defines[i].name, name) == 0)
            return &mcimport_defines[i];
    return NULL;
}

/* mcimport_define_site - a macro of the file itself (or an unknown one) */
static void mcimport_define_site(struct mcimport_map *m, const char *name, const char *value)
{
    if (strncmp(name, "conf", 4) == 0) {
        mcimport_report(m, MCIMPORT_NOT_MAPPED, "unknown option %s: tern has no equivalent", name);
        return;
    }
    if (name[0] == '_') {
        mcimport_report(m, MCIMPORT_NOTED, "an m4 internal of sendmail's cf files: nothing to set");
        return;
    }
    m->macros = xrealloc(m->macros, (m->nmacros + 1) * sizeof(*m->macros));
    m->macros[m->nmacros].name = xstrdup(name);
    m->macros[m->nmacros].value = xstrdup(value);
    m->nmacros++;
    mcimport_report(m, MCIMPORT_NOTED,
                    "a macro of this file, expanded where later values name it (if it is a "
                    "sendmail setting, tern has no equivalent)");
}

void mcimport_define(struct mcimport_map *m)
{
    buf_t name = BUF_INIT;

    mcimport_define_name(mcimport_arg(m->it, 0), &name);
    const struct mcimport_define_map *d = mcimport_define_find(buf_cstr(&name));
    if (d)
        d->map(m, d->param, mcimport_arg(m->it, 1));
    else
        mcimport_define_site(m, buf_cstr(&name), mcimport_arg(m->it, 1));
    buf_free(&name);
}

/* --------------------------------------------------- listeners, milters */

/* mcimport_equates - "Key=value" of "A=x, B=y" (sendmail's option lists) */
static const char *mcimport_equate(char **w, size_t n, const char *key, const char *alt)
{
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(w[i], '=');
        if (eq == NULL)
            continue;
        size_t k = (size_t)(eq - w[i]);
        if ((strlen(key) == k && strncasecmp(w[i], key, k) == 0) ||
            (strlen(alt) == k && strncasecmp(w[i], alt, k) == 0))
            return eq + 1;
    }
    return NULL;
}

/* mcimport_daemon_port - a port name or number; 0 if unknown */
static int mcimport_daemon_port(const char *port)
{
    if (port == NULL || strcmp(port, "smtp") == 0)
        return 25;
    if (strcmp(port, "submission") == 0 || strcmp(port, "msa") == 0)
        return 587;
    if (strcmp(port, "smtps") == 0)
        return 465;
    if (mcimport_is_number(port) && strlen(port) <= 5)
        return atoi(port);
    return 0;
}

static void mcimport_daemon_modifiers(struct mcimport_map *m, const char *listener,
                                      const char *mods)
{
    buf_t name = BUF_INIT;

    for (const char *p = mods; p && *p; p++) {
        const char *param = *p == 'a'   ? "smtpd_auth_required"
                            : *p == 'A' ? "smtpd_sasl_auth_enable"
                            : *p == 'S' ? "smtpd_tls_security_level"
                            : *p == 'E' ? "smtpd_disable_etrn_command"
                                        : NULL;
        const char *value = *p == 'a' || *p == 'E' ? "yes" : *p == 'A' ? "no" : "none";
        if (param) {
            buf_reset(&name);
            buf_printf(&name, "%s.%s", listener, param);
            mcimport_set(m, buf_cstr(&name), value);
        } else if (*p != 's' && *p != 'E' && *p != ' ') {
            mcimport_report(m, MCIMPORT_NOTED, "modifier M=%c has no tern setting", *p);
        }
    }
    buf_free(&name);
}

/* DAEMON_OPTIONS(`Port=smtps, Name=MSA-SSL, M=E') -> one of the listeners */
static void mcimport_daemon_options(struct mcimport_map *m)
{
    char **w;
    size_t n = mcimport_words(mcimport_arg(m->it, 0), &w);
    const char *mods = mcimport_equate(w, n, "Modifiers", "M");
    const char *addr = mcimport_equate(w, n, "Addr", "A");
    const char *family = mcimport_equate(w, n, "Family", "F");
    const char *pname = mcimport_equate(w, n, "Port", "P");
    const char *dname = mcimport_equate(w, n, "Name", "N");
    int port = mcimport_daemon_port(pname);
    int inet6 = family && strcmp(family, "inet6") == 0;

    if (port == 0 || (family && !inet6 && strcmp(family, "inet") != 0)) {
        mcimport_report(m, MCIMPORT_NOT_MAPPED, "port %s or family %s: tern listens on TCP ports",
                        pname ? pname : "", family ? family : "");
        mcimport_words_free(w, n);
        return;
    }
    const char *listener = (port == 465 || (mods && strchr(mods, 's'))) ? "smtps"
                           : (port == 587 || (dname && strncmp(dname, "MSA", 3) == 0))
                               ? "submission"
                               : "smtpd";
    buf_t param = BUF_INIT, item = BUF_INIT;
    buf_printf(&param, "%s_listen", listener);
    if (m->daemon_options_line == 0) {
        m->daemon_options_line = m->it->line;
        mcimport_put(m, "smtpd_listen", ""); /* sendmail: DAEMON_OPTIONS replace the default */
        if (!m->no_default_msa)
            mcimport_put(m, "submission_listen", "0.0.0.0:587");
    } else if (strcmp(listener, "submission") == 0 && !m->no_default_msa) {
        /* the default MSA stays unless a line names it */
    }
    if (inet6)
        buf_printf(&item, "[%s]:%d", addr ? addr : "::", port);
    else
        buf_printf(&item, "%s:%d", addr ? addr : "0.0.0.0", port);
    struct mcimport_setting *s = mcimport_find(m->res, buf_cstr(&param));
    if (s && strcmp(listener, "submission") == 0 && strcmp(buf_cstr(&s->value), "0.0.0.0:587") == 0)
        mcimport_put(m, buf_cstr(&param), "");
    mcimport_add(m, buf_cstr(&param), buf_cstr(&item), 0);
    if (strcmp(listener, "smtps") == 0 && !(mods && strchr(mods, 's')))
        mcimport_report(m, MCIMPORT_NOTED,
                        "without M=s sendmail speaks plaintext on port 465; tern's smtps listener "
                        "is TLS from the first byte (SPEC ERR-03)");
    if (strcmp(listener, "smtpd") != 0 && !(mods && strchr(mods, 'a')))
        mcimport_report(m, MCIMPORT_NOTED,
                        "tern's %s listener requires AUTH%s by default (sendmail's M=a); "
                        "%s.smtpd_auth_required = no to change it",
                        listener, strcmp(listener, "submission") == 0 ? " and STARTTLS" : "",
                        listener);
    mcimport_daemon_modifiers(m, listener, mods);
    mcimport_words_free(w, n);
    buf_free(&param);
    buf_free(&item);
}

/* mcimport_milter_timeouts - T=C:2m;S:10s;R:10s;E:5m */
static void mcimport_milter_timeouts(const char *t, buf_t *item)
{
    const char *p = t;

    while (p && *p) {
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *which = NULL;
        if (n > 2 && p[1] == ':')
            which = p[0] == 'C'                    ? "connect_timeout"
                    : (p[0] == 'S' || p[0] == 'R') ? "command_timeout"
                    : p[0] == 'E'                  ? "content_timeout"
                                                   : NULL;
        if (which && strstr(buf_cstr(item), which) == NULL) {
            char *v = xstrndup(p + 2, n - 2);
            buf_printf(item, ", %s = ", which);
            mcimport_time(v, item);
            free(v);
        }
        p = end ? end + 1 : NULL;
    }
}

/* INPUT_MAIL_FILTER(`name', `S=unix:/path, F=T, T=S:1m;R:1m') */
static void mcimport_milter(struct mcimport_map *m)
{
    char **w;
    size_t n = mcimport_words(mcimport_arg(m->it, 1), &w);
    const char *sock = mcimport_equate(w, n, "S", "S");
    const char *flags = mcimport_equate(w, n, "F", "F");
    const char *times = mcimport_equate(w, n, "T", "T");
    buf_t item = BUF_INIT;

    if (sock == NULL || *sock == '\0') {
        mcimport_report(m, MCIMPORT_NOT_MAPPED, "no S= socket");
        mcimport_words_free(w, n);
        return;
    }
    const char *action = flags == NULL ? "accept" : strchr(flags, 'R') ? "reject" : "tempfail";
    buf_printf(&item, "{ %s, default_action = %s", sock, action);
    mcimport_milter_timeouts(times, &item);
    buf_puts(&item, " }");
    mcimport_add(m, "smtpd_milters", buf_cstr(&item), 0);
    if (m->milters_line == 0)
        m->milters_line = m->it->line;
    mcimport_words_free(w, n);
    buf_free(&item);
}

/* ----------------------------------------------------- the other macros */

static void mcimport_each_word(struct mcimport_map *m, const char *text, const char *param,
                               const char *prefix, int from_default)
{
    char **w;
    size_t n = mcimport_words(text, &w);
    buf_t item = BUF_INIT;

    for (size_t i = 0; i < n; i++) {
        buf_reset(&item);
        buf_printf(&item, "%s%s", prefix, w[i]);
        mcimport_add(m, param, buf_cstr(&item), from_default);
    }
    if (n == 0)
        mcimport_report(m, MCIMPORT_NOT_MAPPED, "no argument");
    mcimport_words_free(w, n);
    buf_free(&item);
}

static void mcimport_masquerade_as(struct mcimport_map *m, const char *arg)
{
    m->masquerade = m->it->line;
    mcimport_each_word(m, arg, "masquerade_domains", "", 0);
}

static const struct mcimport_fixed mcimport_fixed_calls[] = {
    {"OSTYPE", MCIMPORT_NOTED, "the operating system's defaults for sendmail: nothing to set"},
    {"DOMAIN", MCIMPORT_NOTED, "a site-wide .m4 file: import its macros too if it sets any"},
    {"MAILER", MCIMPORT_NOTED, "tern's transports (local, smtp, lmtp, error) are always there"},
    {"VERSIONID", MCIMPORT_NOTED, "nothing to set"},
    {"include", MCIMPORT_NOTED, "sendmail's cf.m4: nothing to set"},
    {"divert", MCIMPORT_NOTED, "nothing to set"},
    {"undefine", MCIMPORT_NOTED, "nothing to set"},
    {"LOCAL_CONFIG", MCIMPORT_NOTED, "the .cf lines after it are read one by one"},
    {"TRUST_AUTH_MECH", MCIMPORT_NOTED,
     "permit_sasl_authenticated is in smtpd_relay_restrictions by default: a "
     "client that authenticated with any offered mechanism may relay"},
    {"GENERICS_DOMAIN", MCIMPORT_NOTED, "smtp_generic_maps applies to every sender address"},
    {"LOCAL_RULESETS", MCIMPORT_NOT_MAPPED,
     "sendmail rulesets are not supported: write restriction lists"},
    {"LOCAL_RULE_0", MCIMPORT_NOT_MAPPED, "sendmail rulesets are not supported"},
    {"LOCAL_RULE_1", MCIMPORT_NOT_MAPPED, "sendmail rulesets are not supported"},
    {"LOCAL_RULE_2", MCIMPORT_NOT_MAPPED, "sendmail rulesets are not supported"},
    {"LOCAL_RULE_3", MCIMPORT_NOT_MAPPED,
     "sendmail rulesets are not supported: use canonical_maps"},
    {"LOCAL_NET_CONFIG", MCIMPORT_NOT_MAPPED,
     "sendmail rulesets are not supported: use transport_maps"},
    {"CLIENT_OPTIONS", MCIMPORT_NOT_MAPPED, "tern's SMTP client uses the system's source address"},
    {"MASQUERADE_DOMAIN_FILE", MCIMPORT_NOT_MAPPED,
     "masquerade_domains is a list: copy the file's domains into it"},
    {"EXPOSED_USER_FILE", MCIMPORT_NOT_MAPPED,
     "masquerade_exceptions is a list: copy the file's names into it"},
    {"GENERICS_DOMAIN_FILE", MCIMPORT_NOT_MAPPED,
     "smtp_generic_maps applies to every sender address"},
    {"LOCAL_USER", MCIMPORT_NOT_MAPPED,
     "tern has no class L: deliver those users with a transport_maps entry"},
    {NULL, 0, NULL},
};

int mcimport_macro_call(struct mcimport_map *m)
{
    const char *name = m->it->name;
    const char *arg = mcimport_arg(m->it, 0);

    if (strcmp(name, "MASQUERADE_AS") == 0)
        mcimport_masquerade_as(m, arg);
    else if (strcmp(name, "MASQUERADE_DOMAIN") == 0)
        mcimport_each_word(m, arg, "masquerade_domains", "", 0);
    else if (strcmp(name, "MASQUERADE_EXCEPTION") == 0)
        mcimport_each_word(m, arg, "masquerade_domains", "!", 0);
    else if (strcmp(name, "EXPOSED_USER") == 0)
        mcimport_each_word(m, arg, "masquerade_exceptions", "", 0);
    else if (strcmp(name, "LOCAL_DOMAIN") == 0)
        mcimport_each_word(m, arg, "mydestination", "", 1);
    else if (strcmp(name, "RELAY_DOMAIN") == 0)
        mcimport_each_word(m, arg, "relay_domains", "", 0);
    else if (strcmp(name, "VIRTUSER_DOMAIN") == 0)
        mcimport_each_word(m, arg, "virtual_alias_domains", "", 0);
    else if (strcmp(name, "RELAY_DOMAIN_FILE") == 0)
        mcimport_relay_file(m, "relay_domains", arg);
    else if (strcmp(name, "VIRTUSER_DOMAIN_FILE") == 0)
        mcimport_names_file(m, "virtual_alias_domains", arg);
    else if (strcmp(name, "SMART_HOST") == 0)
        mcimport_define_smart_host(m, "relayhost", arg);
    else if (strcmp(name, "MAIL_HUB") == 0)
        mcimport_define_mail_hub(m, "local_transport", arg);
    else if (strcmp(name, "LUSER_RELAY") == 0)
        mcimport_define_luser(m, "luser_relay", arg);
    else if (strcmp(name, "DAEMON_OPTIONS") == 0)
        mcimport_daemon_options(m);
    else if (strcmp(name, "INPUT_MAIL_FILTER") == 0 || strcmp(name, "MAIL_FILTER") == 0)
        mcimport_milter(m);
    else
        return mcimport_report_fixed(m, mcimport_fixed_calls, name);
    return 0;
}

/* ------------------------------------------------------ LOCAL_CONFIG */

void mcimport_cf_line(struct mcimport_map *m)
{
    const char *line = m->it->name;

    if (strncmp(line, "O CipherList=", 13) == 0) {
        mcimport_set(m, "smtpd_tls_ciphers", line + 13);
        mcimport_set(m, "smtp_tls_ciphers", line + 13);
    } else if (strncmp(line, "O ServerSSLOptions", 18) == 0 ||
               strncmp(line, "O ClientSSLOptions", 18) == 0) {
        mcimport_report(m, MCIMPORT_NOT_MAPPED,
                        "OpenSSL option bits: tern sets the protocol versions with "
                        "smtpd_tls_protocols and smtp_tls_protocols (default >=TLSv1.2)");
    } else if (line[0] == 'C' && line[1] == 'w' && line[2]) {
        mcimport_each_word(m, line + 2, "mydestination", "", 1);
    } else {
        mcimport_report(m, MCIMPORT_NOT_MAPPED, "a raw sendmail.cf line: no tern equivalent");
    }
}
