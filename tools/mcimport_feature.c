/*
 * mcimport_feature - FEATURE(name, ...) of a sendmail .mc (mcimport_impl.h).
 *
 * The name may come with spaces for underscores (the seeds' OCR: `use cw
 * file').  A FEATURE this table does not know is reported as not mapped
 * with its line, never dropped.
 */
#include <stdlib.h>
#include <string.h>

#include "mcimport_impl.h"

static void mcimport_feature_cw_file(struct mcimport_map *m)
{
    buf_t p = BUF_INIT;

    buf_puts(&p, "optional:");
    mcimport_path(m, "/etc/mail/local-host-names", &p);
    mcimport_add(m, "mydestination", buf_cstr(&p), 1);
    buf_free(&p);
}

static void mcimport_feature_domaintable(struct mcimport_map *m)
{
    mcimport_report(m, MCIMPORT_NOTED,
                    "canonical_maps keys and values are addresses: write each domaintable line "
                    "\"old.example new.example\" as \"@old.example @new.example\" before building");
}

static void mcimport_feature_delay_checks(struct mcimport_map *m)
{
    const char *mode = mcimport_arg(m->it, 1);

    mcimport_set(m, "smtpd_delay_reject", "yes");
    if (strcmp(mode, "hater") == 0 || strcmp(mode, "friend") == 0)
        mcimport_set(m, "access_spam_mode", mode);
}

/* mcimport_feature_message - a dnsbl message as tern's reply template:
 * sendmail joins "quoted" pieces and the macros between them */
static void mcimport_feature_message(const char *msg, buf_t *out)
{
    buf_t t = BUF_INIT;
    int quoted = 0;

    if (strchr(msg, '"') == NULL) {
        buf_puts(&t, msg);
    } else {
        for (const char *p = msg; *p; p++) {
            int space = *p == ' ' || *p == '\t' || *p == '\n';
            if (*p == '"')
                quoted = !quoted;
            else if (!space)
                buf_putc(&t, *p);
            else if ((quoted || t.len > 0) && !(t.len > 0 && t.data[t.len - 1] == ' '))
                buf_putc(&t, ' '); /* between the pieces, and in them: one space */
        }
    }
    const char *s = buf_cstr(&t);
    int has_code = strlen(s) >= 4 && (s[0] == '4' || s[0] == '5') && s[1] >= '0' && s[1] <= '9' &&
                   s[2] >= '0' && s[2] <= '9' && s[3] == ' ';
    buf_printf(out, "%s%s", has_code ? "" : "550 ", s);
    mcimport_one_line(out);
    buf_free(&t);
}

/* dnsbl(zone, message) and enhdnsbl(zone, message, t, results...) */
static void mcimport_feature_dnsbl(struct mcimport_map *m)
{
    const struct mcimport_item *it = m->it;
    const char *zone = *mcimport_arg(it, 1) ? mcimport_arg(it, 1) : "blackholes.mail-abuse.org";
    int enhanced = strcmp(mcimport_arg(it, 0), "enhdnsbl") == 0;
    buf_t item = BUF_INIT;

    buf_printf(&item, "reject_rbl_client %s", zone);
    if (enhanced && it->nargs == 5) { /* one result: the filter */
        buf_t r = BUF_INIT;
        buf_puts(&r, it->args[4]);
        if (r.len > 0 && r.data[r.len - 1] == '.')
            buf_truncate(&r, r.len - 1);
        buf_printf(&item, "=%s", buf_cstr(&r));
        buf_free(&r);
    } else if (enhanced && it->nargs > 5) {
        mcimport_report(m, MCIMPORT_NOTED,
                        "several enhdnsbl results: tern's filter is one pattern "
                        "(=127.0.0.[2;4]); any answer counts until you add one");
    }
    mcimport_add(m, "smtpd_client_restrictions", buf_cstr(&item), 0);
    if (*mcimport_arg(it, 2)) {
        buf_t tmpl = BUF_INIT;
        mcimport_feature_message(mcimport_arg(it, 2), &tmpl);
        buf_t line = BUF_INIT;
        buf_printf(&line, "%s %s", zone, buf_cstr(&tmpl));
        mcimport_one_line(&line);
        buf_printf(&m->res->rbl_reply, "%s\n", buf_cstr(&line));
        buf_free(&line);
        mcimport_put(m, "rbl_reply_maps",
                     m->opt->rbl_reply_path ? m->opt->rbl_reply_path : "texthash:rbl_reply");
        mcimport_report(m, MCIMPORT_MAPPED, "rbl_reply_maps: %s %s", zone, buf_cstr(&tmpl));
        buf_free(&tmpl);
    }
    if (enhanced && strchr(mcimport_arg(it, 3), 't') != NULL)
        mcimport_add(m, "rbl_tempfail_zones", zone, 0);
    buf_free(&item);
}

static void mcimport_feature_greet_pause(struct mcimport_map *m)
{
    const char *ms = mcimport_arg(m->it, 1);
    buf_t v = BUF_INIT;

    if (*ms == '\0') {
        mcimport_report(m, MCIMPORT_NOTED,
                        "greet_pause without a time takes it from GreetPause: access entries; "
                        "tern reads those too (access_maps), smtpd_greet_pause stays 0");
        return;
    }
    if (!mcimport_is_number(ms)) {
        mcimport_report(m, MCIMPORT_NOT_MAPPED, "the time %s is not a number of milliseconds", ms);
        return;
    }
    buf_printf(&v, "%sms", ms);
    mcimport_set(m, "smtpd_greet_pause", buf_cstr(&v));
    buf_free(&v);
}

static void mcimport_feature_relay_mx(struct mcimport_map *m)
{
    mcimport_set(m, "smtpd_relay_restrictions",
                 "permit_mynetworks, permit_sasl_authenticated, permit_tls_clientcerts, "
                 "permit_mx_backup, reject_unauth_destination");
}

static void mcimport_feature_relay_domain(struct mcimport_map *m)
{
    mcimport_add(m, "relay_domains", "$mydomain", 0);
}

static void mcimport_feature_masq_envelope(struct mcimport_map *m)
{
    m->masquerade_envelope = 1;
    mcimport_report(m, MCIMPORT_MAPPED, "masquerade_classes += envelope_sender");
}

static void mcimport_feature_allmasquerade(struct mcimport_map *m)
{
    m->allmasquerade = 1;
    mcimport_report(m, MCIMPORT_MAPPED, "masquerade_classes += header_recipient");
}

static void mcimport_feature_smrsh(struct mcimport_map *m)
{
    const char *path = *mcimport_arg(m->it, 1) ? mcimport_arg(m->it, 1) : "/usr/sbin/smrsh";

    mcimport_set(m, "local_command_shell", path);
}

/* local_procmail(path, argv): sendmail's $u is the user, $h the +detail */
static void mcimport_feature_procmail(struct mcimport_map *m)
{
    const char *path = *mcimport_arg(m->it, 1) ? mcimport_arg(m->it, 1) : "/usr/bin/procmail";
    const char *argv = *mcimport_arg(m->it, 2) ? mcimport_arg(m->it, 2) : "procmail -Y -a $h -d $u";
    buf_t cmd = BUF_INIT;

    buf_puts(&cmd, path);
    const char *p = strchr(argv, ' '); /* past argv[0] */
    for (; p && *p; p++) {
        if (p[0] == '$' && p[1] == 'u') {
            buf_puts(&cmd, "\"$USER\"");
            p++;
        } else if (p[0] == '$' && p[1] == 'h') {
            buf_puts(&cmd, "\"$EXTENSION\"");
            p++;
        } else {
            buf_putc(&cmd, *p);
        }
    }
    mcimport_set(m, "mailbox_command", buf_cstr(&cmd));
    buf_free(&cmd);
}

static void mcimport_feature_no_msa(struct mcimport_map *m)
{
    m->no_default_msa = 1;
    mcimport_report(m, MCIMPORT_MAPPED,
                    "submission_listen = (empty, unless a DAEMON_OPTIONS "
                    "names port 587)");
}

/* msp(host): this .mc is a submit.mc */
static void mcimport_feature_msp(struct mcimport_map *m)
{
    const char *host = mcimport_arg(m->it, 1);

    if (*host == '\0' || strcmp(host, "[127.0.0.1]") == 0 || strcmp(host, "[localhost]") == 0 ||
        strcmp(host, "localhost") == 0) {
        mcimport_report(m, MCIMPORT_NOTED,
                        "this is a submit.mc for the local MTA: tern's sendmail command already "
                        "submits through terndrop and pickup; import sendmail.mc instead");
        return;
    }
    mcimport_set(m, "relayhost", host);
    mcimport_put(m, "smtpd_listen", "");
    mcimport_put(m, "submission_listen", "");
    mcimport_put(m, "smtps_listen", "");
    mcimport_report(m, MCIMPORT_MAPPED,
                    "a submit.mc that sends to another host: a null client, smtpd_listen, "
                    "submission_listen and smtps_listen empty (the sendmail command still "
                    "submits; mail leaves through relayhost)");
}

/* the FEATUREs that name a table: FEATURE(name[, map spec]) -> param */
static const char *const mcimport_feature_tables[][3] = {
    {"mailertable", "mailertable", "transport_maps"},
    {"virtusertable", "virtusertable", "virtual_alias_maps"},
    {"domaintable", "domaintable", "canonical_maps"},
    {"genericstable", "genericstable", "smtp_generic_maps"},
    {"access_db", "access", "access_maps"},
    {NULL, NULL, NULL},
};

/* the FEATUREs that set one value: name, parameter, value */
static const char *const mcimport_feature_values[][3] = {
    {"blacklist_recipients", "access_blocklist_recipients", "yes"},
    {"blocklist_recipients", "access_blocklist_recipients", "yes"},
    {"accept_unresolvable_domains", "accept_unresolvable_domains", "yes"},
    {"always_add_domain", "append_at_myorigin", "yes"},
    {"relay_hosts_only", "parent_domain_matches_subdomains", ""},
    {NULL, NULL, NULL},
};

/* the FEATUREs that set nothing, and why */
static const struct mcimport_fixed mcimport_feature_reports[] = {
    {"use_ct_file", MCIMPORT_NOT_MAPPED,
     "trusted_users is a list, not a file: copy the names in /etc/mail/trusted-users into "
     "trusted_users (default: root, $mail_owner)"},
    {"promiscuous_relay", MCIMPORT_NOT_MAPPED,
     "promiscuous_relay makes an open relay: tern keeps promiscuous_relay = no. List the "
     "networks that may relay in mynetworks (an inside relay: its LAN); set promiscuous_relay = "
     "yes yourself only on a host no outsider can reach (tern check warns)"},
    {"accept_unqualified_senders", MCIMPORT_NOT_MAPPED,
     "tern accepts unqualified senders (MAIL FROM:<user>) from mynetworks only and qualifies "
     "them with @$myorigin; list the hosts that send them in mynetworks"},
    {"masquerade_entire_domain", MCIMPORT_NOTED,
     "what tern always does: a masquerade_domains entry covers its subdomains"},
    {"redirect", MCIMPORT_NOTED,
     "what tern always does: an alias to user@new.example.REDIRECT is refused at RCPT with 551 "
     "5.1.6 naming the new address"},
    {"nouucp", MCIMPORT_NOTED, "tern has no UUCP: nothing to set"},
    {"local_lmtp", MCIMPORT_NOT_MAPPED,
     "local delivery through an LMTP program: point local_transport at the LMTP server "
     "(lmtp:unix:/path or lmtp:[host]) instead; see docs/lmtp.md"},
    {NULL, 0, NULL},
};

static const struct mcimport_feature {
    const char *name;
    void (*map)(struct mcimport_map *m);
} mcimport_features[] = {
    {"use_cw_file", mcimport_feature_cw_file},
    {"domaintable", mcimport_feature_domaintable},
    {"delay_checks", mcimport_feature_delay_checks},
    {"dnsbl", mcimport_feature_dnsbl},
    {"enhdnsbl", mcimport_feature_dnsbl},
    {"greet_pause", mcimport_feature_greet_pause},
    {"relay_based_on_MX", mcimport_feature_relay_mx},
    {"relay_entire_domain", mcimport_feature_relay_domain},
    {"masquerade_envelope", mcimport_feature_masq_envelope},
    {"allmasquerade", mcimport_feature_allmasquerade},
    {"smrsh", mcimport_feature_smrsh},
    {"local_procmail", mcimport_feature_procmail},
    {"no_default_msa", mcimport_feature_no_msa},
    {"msp", mcimport_feature_msp},
    {NULL, NULL},
};

void mcimport_feature(struct mcimport_map *m)
{
    const char *name = mcimport_arg(m->it, 0);
    buf_t fixed = BUF_INIT;
    int known = 0;

    for (const char *p = name; *p; p++) /* OCR: `use cw file' */
        buf_putc(&fixed, *p == ' ' ? '_' : *p);
    for (int i = 0; mcimport_feature_tables[i][0]; i++) {
        if (strcmp(mcimport_feature_tables[i][0], buf_cstr(&fixed)) == 0) {
            mcimport_map_table(m, 1, mcimport_feature_tables[i][1], mcimport_feature_tables[i][2]);
            known = 1;
        }
    }
    for (int i = 0; mcimport_features[i].name; i++) {
        if (strcmp(mcimport_features[i].name, buf_cstr(&fixed)) == 0) {
            mcimport_features[i].map(m);
            known = 1;
        }
    }
    for (int i = 0; mcimport_feature_values[i][0]; i++) {
        if (strcmp(mcimport_feature_values[i][0], buf_cstr(&fixed)) == 0) {
            mcimport_set(m, mcimport_feature_values[i][1], mcimport_feature_values[i][2]);
            known = 1;
        }
    }
    if (!known && mcimport_report_fixed(m, mcimport_feature_reports, buf_cstr(&fixed)) == 0)
        known = 1;
    if (!known)
        mcimport_report(m, MCIMPORT_NOT_MAPPED,
                        "unknown FEATURE %s: tern has no equivalent setting", buf_cstr(&fixed));
    buf_free(&fixed);
}
