/*
 * mcimport_map - sendmail .mc macros to tern settings (mcimport.h).
 *
 * One handler per macro; FEATURE(...) and define(`conf...') have tables of
 * their own.  Every item gets one report line: mapped (with the setting),
 * noted (tern needs no setting for it) or not mapped (and why).  Settings
 * that collect several macros (mydestination, the DNS lists, the milters,
 * the listeners, masquerade_classes) are finished after the last item.
 * The mapping is the one docs/migrating.md tabulates; the per-area pages
 * (routing, policy, auth, tls, smtpd, milter) explain each setting.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "mcimport_impl.h"

#define MCIMPORT_SOURCE_MAX 160 /* a report line quotes this much of the macro */
#define MCIMPORT_EXPAND_DEPTH 8 /* define()s within define()s, at most */

/* ---------------------------------------------------------------- report */

static void mcimport_source(const struct mcimport_item *it, buf_t *out)
{
    buf_puts(out, it->name);
    if (it->kind == MCIMPORT_CALL && it->args != NULL) {
        buf_putc(out, '(');
        for (size_t i = 0; i < it->nargs; i++)
            buf_printf(out, "%s`%s'", i ? ", " : "", it->args[i]);
        buf_putc(out, ')');
    }
    mcimport_one_line(out);
    if (out->len > MCIMPORT_SOURCE_MAX) {
        buf_truncate(out, MCIMPORT_SOURCE_MAX);
        buf_puts(out, "...");
    }
}

void mcimport_report(struct mcimport_map *m, enum mcimport_verdict verdict, const char *fmt, ...)
{
    struct mcimport_result *res = m->res;
    buf_t source = BUF_INIT, text = BUF_INIT;
    va_list ap;

    mcimport_source(m->it, &source);
    va_start(ap, fmt);
    buf_vprintf(&text, fmt, ap);
    va_end(ap);
    mcimport_one_line(&text);
    res->report = xrealloc(res->report, (res->nreport + 1) * sizeof(*res->report));
    res->report[res->nreport++] =
        (struct mcimport_report_line){m->it->line, verdict, buf_steal(&source), buf_steal(&text)};
}

int mcimport_report_fixed(struct mcimport_map *m, const struct mcimport_fixed *table,
                          const char *name)
{
    for (int i = 0; table[i].name; i++) {
        if (strcmp(table[i].name, name) == 0) {
            mcimport_report(m, table[i].verdict, "%s", table[i].why);
            return 0;
        }
    }
    return -1;
}

/* -------------------------------------------------------------- settings */

struct mcimport_setting *mcimport_find(struct mcimport_result *res, const char *name)
{
    for (size_t i = 0; i < res->nsettings; i++)
        if (strcmp(res->settings[i].name, name) == 0)
            return &res->settings[i];
    return NULL;
}

void mcimport_one_line(buf_t *text)
{
    for (size_t i = 0; i < text->len; i++)
        if (text->data[i] == '\n' || text->data[i] == '\r' || text->data[i] == '\t')
            text->data[i] = ' ';
}

/* mcimport_origins_has - line is one of the comma-separated numbers */
static int mcimport_origins_has(const char *origins, int line)
{
    const char *p = origins;

    while (*p) {
        char *end;
        long n = strtol(p, &end, 10);
        if (end == p)
            return 0;
        if (n == line)
            return 1;
        p = end + strspn(end, ", ");
    }
    return 0;
}

/* mcimport_setting - name's setting, created empty (origins: this line) */
static struct mcimport_setting *mcimport_setting(struct mcimport_map *m, const char *name, int line)
{
    struct mcimport_result *res = m->res;
    struct mcimport_setting *s = mcimport_find(res, name);

    if (s == NULL) {
        res->settings = xrealloc(res->settings, (res->nsettings + 1) * sizeof(*res->settings));
        s = &res->settings[res->nsettings++];
        memset(s, 0, sizeof(*s));
        s->name = xstrdup(name);
        buf_init(&s->value);
        buf_init(&s->origins);
    }
    if (!mcimport_origins_has(buf_cstr(&s->origins), line))
        buf_printf(&s->origins, "%s%d", s->origins.len ? ", " : "", line);
    return s;
}

void mcimport_put_at(struct mcimport_map *m, const char *name, const char *value, int line)
{
    struct mcimport_setting *s = mcimport_setting(m, name, line);

    buf_set(&s->value, value);
    mcimport_one_line(&s->value);
}

void mcimport_put(struct mcimport_map *m, const char *name, const char *value)
{
    mcimport_put_at(m, name, value, m->it->line);
}

/* mcimport_set - name = value, and the report line saying so */
void mcimport_set(struct mcimport_map *m, const char *name, const char *value)
{
    mcimport_put(m, name, value);
    mcimport_report(m, MCIMPORT_MAPPED, "%s = %s", name,
                    buf_cstr(&mcimport_find(m->res, name)->value));
}

/* mcimport_add - append item to the list name (starting from tern's
 * default when from_default), and report it */
void mcimport_add(struct mcimport_map *m, const char *name, const char *item, int from_default)
{
    struct mcimport_setting *s = mcimport_find(m->res, name);

    if (s == NULL && from_default) {
        const struct param_def *p = config_find_param(name);
        mcimport_put(m, name, p ? p->default_value : "");
    }
    s = mcimport_setting(m, name, m->it->line);
    buf_printf(&s->value, "%s%s", s->value.len ? ", " : "", item);
    mcimport_one_line(&s->value);
    mcimport_report(m, MCIMPORT_MAPPED, "%s += %s", name, item);
}

/* ----------------------------------------------------------------- values */

const char *mcimport_arg(const struct mcimport_item *it, size_t i)
{
    return i < it->nargs ? it->args[i] : "";
}

/* mcimport_expand - value with the site's define()d words replaced */
void mcimport_expand(const struct mcimport_map *m, const char *value, buf_t *out, int depth)
{
    const char *p = value;

    while (*p) {
        if (!(isalpha((unsigned char)*p) || *p == '_')) {
            buf_putc(out, *p++);
            continue;
        }
        const char *e = p;
        while (isalnum((unsigned char)*e) || *e == '_')
            e++;
        const char *hit = NULL;
        for (size_t i = 0; i < m->nmacros && depth < MCIMPORT_EXPAND_DEPTH; i++)
            if (strlen(m->macros[i].name) == (size_t)(e - p) &&
                memcmp(m->macros[i].name, p, (size_t)(e - p)) == 0)
                hit = m->macros[i].value;
        if (hit == NULL && e - p == 17 && memcmp(p, "MAIL_SETTINGS_DIR", 17) == 0)
            hit = "/etc/mail/"; /* cf.m4's default */
        if (hit)
            mcimport_expand(m, hit, out, depth + 1);
        else
            buf_append(out, p, (size_t)(e - p));
        p = e;
    }
}

/* mcimport_path - a path as tern should see it: macros expanded, //
 * collapsed, /etc/mail/ replaced by the options' mail_dir */
void mcimport_path(const struct mcimport_map *m, const char *value, buf_t *out)
{
    buf_t x = BUF_INIT;
    const char *dir = m->opt->mail_dir;

    mcimport_expand(m, value, &x, 0);
    const char *p = buf_cstr(&x);
    if (dir && *dir && strncmp(p, "/etc/mail", 9) == 0 && (p[9] == '/' || p[9] == '\0')) {
        buf_puts(out, dir);
        p += 9;
    }
    for (; *p; p++)
        if (!(*p == '/' && out->len > 0 && out->data[out->len - 1] == '/'))
            buf_putc(out, *p);
    buf_free(&x);
}

/* mcimport_words - split a list argument (commas and/or white space) */
size_t mcimport_words(const char *s, char ***out)
{
    size_t n = 0;

    *out = NULL;
    while (*s) {
        while (*s && (isspace((unsigned char)*s) || *s == ','))
            s++;
        const char *e = s;
        while (*e && !(isspace((unsigned char)*e) || *e == ','))
            e++;
        if (e > s) {
            *out = xrealloc(*out, (n + 1) * sizeof(char *));
            (*out)[n++] = xstrndup(s, (size_t)(e - s));
        }
        s = e;
    }
    return n;
}

void mcimport_words_free(char **w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(w[i]);
    free(w);
}

/* mcimport_table - a sendmail map spec ("hash -o -T<TMPF> /etc/mail/x.db",
 * or empty for hash MAIL_DIR/deflt) as tern's [optional:]TYPE:PATH in spec;
 * -1 (reported) for a map type tern cannot read */
int mcimport_table(struct mcimport_map *m, const char *arg, const char *deflt, int aliases,
                   buf_t *spec)
{
    char **w;
    size_t n = mcimport_words(arg, &w);
    const char *type = "hash", *path = NULL;
    int optional = 0, rc = 0;

    for (size_t i = 0; i < n; i++) {
        if (strcmp(w[i], "-o") == 0)
            optional = 1;
        else if (w[i][0] == '-')
            continue;
        else if (path == NULL && i == 0 && w[i][0] != '/' && w[i][0] != '.' && i + 1 < n)
            type = w[i];
        else
            path = w[i];
    }
    if (strcmp(type, "hash") != 0 && strcmp(type, "btree") != 0 && strcmp(type, "dbm") != 0) {
        mcimport_report(m, MCIMPORT_NOT_MAPPED,
                        "map type %s: tern reads hash, btree and dbm tables it builds itself "
                        "(and texthash, cidr, regexp); convert the map to a file",
                        type);
        rc = -1;
    } else {
        buf_t p = BUF_INIT;
        buf_t full = BUF_INIT;
        if (path == NULL)
            buf_printf(&full, "/etc/mail/%s", deflt);
        else
            buf_puts(&full, path);
        mcimport_path(m, buf_cstr(&full), &p);
        if (p.len > 3 && strcmp(p.data + p.len - 3, ".db") == 0)
            buf_truncate(&p, p.len - 3);
        buf_printf(spec, "%s%s:%s", optional ? "optional:" : "", type, buf_cstr(&p));
        buf_printf(&m->res->tables, "tern map%s %s:%s\n", aliases ? " -A" : "", type, buf_cstr(&p));
        buf_free(&p);
        buf_free(&full);
    }
    mcimport_words_free(w, n);
    return rc;
}

/* mcimport_map_table - NAME's map spec in argument i to the list param */
void mcimport_map_table(struct mcimport_map *m, size_t i, const char *deflt, const char *param)
{
    buf_t spec = BUF_INIT;

    if (mcimport_table(m, mcimport_arg(m->it, i), deflt, 0, &spec) == 0)
        mcimport_set(m, param, buf_cstr(&spec));
    buf_free(&spec);
}

/* mcimport_is_number - digits only */
int mcimport_is_number(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* mcimport_time - a sendmail time ("5m", "0s", OCR "lm" for 1m) */
void mcimport_time(const char *s, buf_t *out)
{
    for (; *s; s++)
        buf_putc(out, (*s == 'l' && isalpha((unsigned char)s[1])) ? '1' : *s);
}

/* ------------------------------------------------------------- dispatch */

static void mcimport_map_item(struct mcimport_map *m)
{
    const struct mcimport_item *it = m->it;

    m->nreport_before = m->res->nreport;
    if (it->kind == MCIMPORT_TEXT) {
        mcimport_report(m, MCIMPORT_NOT_MAPPED,
                        "text outside any macro (m4 copies it into sendmail.cf as it is)");
    } else if (it->kind == MCIMPORT_CF_LINE) {
        mcimport_cf_line(m);
    } else if (strcmp(it->name, "FEATURE") == 0) {
        mcimport_feature(m);
    } else if (strcmp(it->name, "define") == 0) {
        mcimport_define(m);
    } else if (mcimport_macro_call(m) < 0) {
        mcimport_report(m, MCIMPORT_NOT_MAPPED, "unknown macro %s: tern has no equivalent",
                        it->name);
    }
    if (m->res->nreport == m->nreport_before) /* a handler's bug: never a silent line */
        mcimport_report(m, MCIMPORT_NOT_MAPPED, "(internal) no verdict");
}

/* mcimport_map_finish - the settings collected from several lines */
static void mcimport_map_finish(struct mcimport_map *m)
{
    struct mcimport_setting *s;

    if (m->masquerade) {
        buf_t classes = BUF_INIT;
        buf_puts(&classes, "header_sender");
        if (m->masquerade_envelope)
            buf_puts(&classes, ", envelope_sender");
        if (m->allmasquerade)
            buf_puts(&classes, ", header_recipient");
        mcimport_put_at(m, "masquerade_classes", buf_cstr(&classes), m->masquerade);
        buf_free(&classes);
    }
    if (m->no_default_msa && m->daemon_options_line == 0)
        mcimport_put_at(m, "submission_listen", "", m->it->line);
    if (m->milters_line && (s = mcimport_find(m->res, "smtpd_milters")) != NULL)
        mcimport_put_at(m, "non_smtpd_milters", "$smtpd_milters", m->milters_line);
}

/* mcimport_map_aliases - sendmail reads MAIL_DIR/aliases unless told */
static void mcimport_map_aliases(struct mcimport_map *m)
{
    if (mcimport_find(m->res, "alias_maps") == NULL) {
        buf_t spec = BUF_INIT;
        if (mcimport_table(m, "", "aliases", 1, &spec) == 0)
            mcimport_put_at(m, "alias_maps", buf_cstr(&spec), 0);
        buf_free(&spec);
    }
    if (!m->relay_file_seen) { /* RELAY_DOMAIN adds to class R: the file is read too */
        struct mcimport_setting *s = mcimport_find(m->res, "relay_domains");
        buf_t p = BUF_INIT;
        buf_puts(&p, "optional:");
        mcimport_path(m, "/etc/mail/relay-domains", &p);
        if (s == NULL)
            mcimport_put_at(m, "relay_domains", buf_cstr(&p), 0);
        else
            buf_printf(&s->value, "%s%s", s->value.len ? ", " : "", buf_cstr(&p));
        buf_free(&p);
    }
}

void mcimport_map(const struct mcimport_doc *doc, const struct mcimport_options *opt,
                  struct mcimport_result *out)
{
    static const struct mcimport_item none = {MCIMPORT_TEXT, 0, "(end)", 0, NULL};
    struct mcimport_map m = {.opt = opt, .res = out, .it = &none};

    memset(out, 0, sizeof(*out));
    buf_init(&out->rbl_reply);
    buf_init(&out->tables);
    for (size_t i = 0; i < doc->count; i++) {
        m.it = &doc->items[i];
        mcimport_map_item(&m);
    }
    m.it = &none;
    mcimport_map_aliases(&m);
    if (doc->count > 0)
        m.it = &doc->items[doc->count - 1];
    mcimport_map_finish(&m);
    if (doc->unterminated_quote_line) {
        struct mcimport_item at = {MCIMPORT_TEXT, doc->unterminated_quote_line, "`", 0, NULL};
        m.it = &at;
        mcimport_report(&m, MCIMPORT_NOT_MAPPED,
                        "a quote opened here is never closed: the rest of the file is its text");
    }
    for (size_t i = 0; i < m.nmacros; i++) {
        free(m.macros[i].name);
        free(m.macros[i].value);
    }
    free(m.macros);
}

const char *mcimport_setting_value(const struct mcimport_result *res, const char *name)
{
    for (size_t i = 0; i < res->nsettings; i++)
        if (strcmp(res->settings[i].name, name) == 0)
            return buf_cstr(&res->settings[i].value);
    return NULL;
}

void mcimport_result_free(struct mcimport_result *res)
{
    for (size_t i = 0; i < res->nsettings; i++) {
        free(res->settings[i].name);
        buf_free(&res->settings[i].value);
        buf_free(&res->settings[i].origins);
    }
    for (size_t i = 0; i < res->nreport; i++) {
        free(res->report[i].source);
        free(res->report[i].text);
    }
    free(res->settings);
    free(res->report);
    buf_free(&res->rbl_reply);
    buf_free(&res->tables);
    memset(res, 0, sizeof(*res));
}

/* -------------------------------------------------------------- output */

void mcimport_write_conf(const struct mcimport_result *res, const char *source, buf_t *out)
{
    buf_printf(out,
               "# tern.conf imported from %s by tern import-sendmail.\n"
               "# What could not be mapped, and why: import-report.txt (or the command's\n"
               "# standard error).  Every parameter not set here has tern's default\n"
               "# (tern conf -d).\n",
               source);
    for (size_t i = 0; i < res->nsettings; i++) {
        const struct mcimport_setting *s = &res->settings[i];
        const char *origins = buf_cstr(&s->origins);
        if (strcmp(origins, "0") == 0)
            buf_puts(out, "\n# sendmail's default\n");
        else
            buf_printf(out, "\n# %s line %s\n", source, origins);
        buf_printf(out, "%s%s = %s\n", s->disabled ? "# (refused by tern) " : "", s->name,
                   buf_cstr(&s->value));
    }
}

static int mcimport_report_cmp(const void *a, const void *b)
{
    const struct mcimport_report_line *const *x = a, *const *y = b;

    if ((*x)->line != (*y)->line)
        return ((*x)->line > (*y)->line) - ((*x)->line < (*y)->line);
    return (*x > *y) - (*x < *y); /* in mapping order within a line */
}

void mcimport_write_report(const struct mcimport_result *res, const char *source, buf_t *out)
{
    static const char *const verdicts[] = {"mapped", "noted", "NOT MAPPED"};
    size_t count[3] = {0, 0, 0};
    const struct mcimport_report_line **sorted = xcalloc(res->nreport + 1, sizeof(*sorted));

    for (size_t i = 0; i < res->nreport; i++) {
        sorted[i] = &res->report[i];
        count[res->report[i].verdict]++;
    }
    qsort(sorted, res->nreport, sizeof(*sorted), mcimport_report_cmp);
    buf_printf(out, "tern import-sendmail: %s: %zu mapped, %zu noted, %zu not mapped\n", source,
               count[0], count[1], count[2]);
    for (size_t i = 0; i < res->nreport; i++)
        buf_printf(out, "%s:%d: %s: %s: %s\n", source, sorted[i]->line,
                   verdicts[sorted[i]->verdict], sorted[i]->source, sorted[i]->text);
    free(sorted);
    if (res->tables.len)
        buf_printf(out,
                   "\nTables: build each one in tern's format once its text file is in place\n"
                   "(this replaces sendmail's .db file; keep a copy while you switch over):\n%s",
                   buf_cstr(&res->tables));
    if (res->rbl_reply.len)
        buf_printf(out, "\nDNS list replies (rbl_reply_maps, a texthash table):\n%s",
                   buf_cstr(&res->rbl_reply));
}
