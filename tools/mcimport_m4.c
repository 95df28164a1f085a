/*
 * mcimport_m4 - the m4 tokenizer of `tern import-sendmail` (mcimport.h).
 *
 * Not m4: it finds the macro calls of a sendmail .mc file and their
 * arguments, the way m4 would collect them, and nothing is expanded here
 * (the mapper expands the site's own define()s in values).  The seeds'
 * copies of .mc files were scanned from slides and web pages, so it also
 * takes what those copies did to them: dn1 for dnl, 'x' for `x', a space
 * for an underscore in a name (MASQUERADE AS(...), `use cw file'), a space
 * between a macro and its parenthesis.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "mcimport.h"

/* the macros whose names the OCR repair may join, and that count as calls
 * without parentheses */
static const char *const mcimport_m4_known[] = {"FEATURE",
                                                "MASQUERADE_AS",
                                                "MASQUERADE_DOMAIN",
                                                "MASQUERADE_DOMAIN_FILE",
                                                "MASQUERADE_EXCEPTION",
                                                "EXPOSED_USER",
                                                "EXPOSED_USER_FILE",
                                                "LOCAL_DOMAIN",
                                                "SMART_HOST",
                                                "MAIL_HUB",
                                                "LUSER_RELAY",
                                                "RELAY_DOMAIN",
                                                "RELAY_DOMAIN_FILE",
                                                "VIRTUSER_DOMAIN",
                                                "VIRTUSER_DOMAIN_FILE",
                                                "TRUST_AUTH_MECH",
                                                "DAEMON_OPTIONS",
                                                "CLIENT_OPTIONS",
                                                "INPUT_MAIL_FILTER",
                                                "MAIL_FILTER",
                                                "OSTYPE",
                                                "DOMAIN",
                                                "MAILER",
                                                "VERSIONID",
                                                "LOCAL_CONFIG",
                                                "LOCAL_RULESETS",
                                                "LOCAL_RULE_0",
                                                "LOCAL_RULE_1",
                                                "LOCAL_RULE_2",
                                                "LOCAL_RULE_3",
                                                "LOCAL_NET_CONFIG",
                                                "MAILER_DEFINITIONS",
                                                "LOCAL_USER",
                                                "GENERICS_DOMAIN",
                                                "GENERICS_DOMAIN_FILE",
                                                "CANONIFY_DOMAIN",
                                                "CANONIFY_DOMAIN_FILE",
                                                "UNDIVERT",
                                                "define",
                                                "undefine",
                                                "include",
                                                "divert",
                                                "ifdef",
                                                "dnl",
                                                NULL};

static int mcimport_m4_is_known(const char *name, size_t len)
{
    for (size_t i = 0; mcimport_m4_known[i] != NULL; i++)
        if (strlen(mcimport_m4_known[i]) == len && memcmp(mcimport_m4_known[i], name, len) == 0)
            return 1;
    return 0;
}

struct mcimport_m4 {
    const char *p;
    const char *end;
    int line;
    int diverted;     /* inside divert(-1): stray text is m4's comment */
    int local_config; /* after LOCAL_CONFIG: lines are raw .cf lines */
    buf_t text;       /* stray text of the current line */
    int text_line;
    struct mcimport_doc *doc;
};

static int mcimport_m4_ident_start(int c)
{
    return isalpha(c) || c == '_';
}

static int mcimport_m4_ident_char(int c)
{
    return isalnum(c) || c == '_';
}

static struct mcimport_item *mcimport_m4_add(struct mcimport_m4 *m, enum mcimport_item_kind kind,
                                             int line, char *name)
{
    struct mcimport_doc *doc = m->doc;

    doc->items = xrealloc(doc->items, (doc->count + 1) * sizeof(*doc->items));
    struct mcimport_item *it = &doc->items[doc->count++];
    memset(it, 0, sizeof(*it));
    it->kind = kind;
    it->line = line;
    it->name = name;
    return it;
}

/* mcimport_m4_trimmed - a copy of s..s+n without leading/trailing white space */
static char *mcimport_m4_trimmed(const char *s, size_t n)
{
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    return xstrndup(s, n);
}

/* mcimport_m4_flush_text - the stray text of the line, as one item */
static void mcimport_m4_flush_text(struct mcimport_m4 *m)
{
    char *t = mcimport_m4_trimmed(m->text.data ? m->text.data : "", m->text.len);

    if (*t == '\0' || m->diverted)
        free(t);
    else
        mcimport_m4_add(m, MCIMPORT_TEXT, m->text_line, t);
    buf_reset(&m->text);
}

static void mcimport_m4_text_putc(struct mcimport_m4 *m, int c)
{
    if (m->text.len == 0)
        m->text_line = m->line;
    buf_putc(&m->text, c);
}

/* mcimport_m4_skip_line - past the end of the line (dnl, #) */
static void mcimport_m4_skip_line(struct mcimport_m4 *m)
{
    while (m->p < m->end && *m->p != '\n')
        m->p++;
}

/* mcimport_m4_is_dnl - dnl or its OCR dn1 at p, as a word */
static int mcimport_m4_is_dnl(const char *p, const char *end)
{
    if (end - p < 3 || p[0] != 'd' || p[1] != 'n' || (p[2] != 'l' && p[2] != '1'))
        return 0;
    return p + 3 == end || !isalpha((unsigned char)p[3]);
}

/* mcimport_m4_quote - a `quoted' (nested) or 'OCR' string at m->p into arg */
static void mcimport_m4_quote(struct mcimport_m4 *m, buf_t *arg)
{
    int depth = 1;

    if (*m->p == '\'') { /* OCR: closed by the next straight quote on the line */
        for (m->p++; m->p < m->end && *m->p != '\'' && *m->p != '\n'; m->p++)
            buf_putc(arg, *m->p);
        if (m->p < m->end && *m->p == '\'')
            m->p++;
        return;
    }
    int start_line = m->line;
    for (m->p++; m->p < m->end; m->p++) {
        if (*m->p == '`')
            depth++;
        else if (*m->p == '\'' && --depth == 0)
            break;
        if (*m->p == '\n')
            m->line++;
        buf_putc(arg, *m->p);
    }
    if (m->p < m->end)
        m->p++;
    else
        m->doc->unterminated_quote_line = start_line;
}

/* mcimport_m4_args - the arguments after '(' at m->p, up to the matching ')' */
static void mcimport_m4_args(struct mcimport_m4 *m, struct mcimport_item *it)
{
    buf_t arg = BUF_INIT;
    int depth = 0, at_start = 1;

    for (m->p++; m->p < m->end;) {
        int c = (unsigned char)*m->p;
        if (at_start && isspace(c)) {
            m->line += c == '\n';
            m->p++;
            continue;
        }
        if (c == '`' || (c == '\'' && at_start)) {
            at_start = 0;
            mcimport_m4_quote(m, &arg);
            continue;
        }
        at_start = 0;
        if (depth == 0 && (c == ',' || c == ')')) {
            it->args = xrealloc(it->args, (it->nargs + 1) * sizeof(char *));
            it->args[it->nargs++] = mcimport_m4_trimmed(arg.data ? arg.data : "", arg.len);
            buf_reset(&arg);
            m->p++;
            if (c == ')')
                break;
            at_start = 1;
            continue;
        }
        if (c == '(')
            depth++;
        else if (c == ')')
            depth--;
        m->line += c == '\n';
        if (c != '\'') /* a stray closing quote (003:1288's `...'') */
            buf_putc(&arg, c);
        m->p++;
    }
    buf_free(&arg);
}

/* mcimport_m4_name - the identifier at m->p, joining an OCR-split name
 * ("MASQUERADE AS(") when the joined one is a known macro; NULL if none */
static char *mcimport_m4_name(struct mcimport_m4 *m)
{
    const char *s = m->p, *e = s;

    while (e < m->end && mcimport_m4_ident_char((unsigned char)*e))
        e++;
    const char *q = e;
    while (q < m->end && *q == ' ')
        q++;
    if (q > e && q < m->end && mcimport_m4_ident_start((unsigned char)*q)) {
        const char *e2 = q;
        while (e2 < m->end && mcimport_m4_ident_char((unsigned char)*e2))
            e2++;
        buf_t joined = BUF_INIT;
        buf_append(&joined, s, (size_t)(e - s));
        buf_putc(&joined, '_');
        buf_append(&joined, q, (size_t)(e2 - q));
        if (mcimport_m4_is_known(joined.data, joined.len)) {
            m->p = e2;
            return buf_steal(&joined);
        }
        buf_free(&joined);
    }
    m->p = e;
    return xstrndup(s, (size_t)(e - s));
}

/* mcimport_m4_word - an identifier: a call, a bare known macro, or text */
static void mcimport_m4_word(struct mcimport_m4 *m)
{
    int line = m->line;
    char *name = mcimport_m4_name(m);
    const char *q = m->p;
    size_t len = strlen(name);

    while (q < m->end && (*q == ' ' || *q == '\t') && mcimport_m4_is_known(name, len))
        q++;
    if (q < m->end && *q == '(') {
        m->p = q;
        struct mcimport_item *it = mcimport_m4_add(m, MCIMPORT_CALL, line, name);
        mcimport_m4_args(m, it);
        if (strcmp(name, "divert") == 0 && it->nargs == 1)
            m->diverted = strcmp(it->args[0], "-1") == 0;
        return;
    }
    if (mcimport_m4_is_known(name, len) && isupper((unsigned char)name[0])) {
        mcimport_m4_add(m, MCIMPORT_CALL, line, name);
        if (strcmp(name, "LOCAL_CONFIG") == 0)
            m->local_config = 1;
        return;
    }
    if (m->text.len == 0)
        m->text_line = line;
    buf_puts(&m->text, name);
    free(name);
}

/* mcimport_m4_cf_line - in LOCAL_CONFIG: a raw .cf line, up to a dnl;
 * returns 0 when the line starts with a macro call instead */
static int mcimport_m4_cf_line(struct mcimport_m4 *m)
{
    const char *s = m->p, *e = s;

    while (e < m->end && *e != '\n')
        e++;
    const char *w = s;
    while (w < e && mcimport_m4_ident_char((unsigned char)*w))
        w++;
    if (w > s && (mcimport_m4_is_known(s, (size_t)(w - s)) || mcimport_m4_is_dnl(s, e) ||
                  (w < e && *w == '('))) {
        if (!mcimport_m4_is_dnl(s, e))
            m->local_config = 0;
        return 0;
    }
    const char *stop = s;
    while (stop < e && !mcimport_m4_is_dnl(stop, e))
        stop++;
    char *t = mcimport_m4_trimmed(s, (size_t)(stop - s));
    if (*t)
        mcimport_m4_add(m, MCIMPORT_CF_LINE, m->line, t);
    else
        free(t);
    m->p = e;
    return 1;
}

void mcimport_parse(const char *text, size_t len, struct mcimport_doc *doc)
{
    struct mcimport_m4 m = {.p = text, .end = text + len, .line = 1, .text = BUF_INIT, .doc = doc};
    int line_start = 1;

    memset(doc, 0, sizeof(*doc));
    while (m.p < m.end) {
        int c = (unsigned char)*m.p;
        if (line_start && m.local_config && c != '\n' && mcimport_m4_cf_line(&m))
            continue;
        line_start = 0;
        if (c == '\n') {
            mcimport_m4_flush_text(&m);
            m.line++;
            m.p++;
            line_start = 1;
        } else if (mcimport_m4_is_dnl(m.p, m.end) || c == '#') {
            mcimport_m4_skip_line(&m);
        } else if (mcimport_m4_ident_start(c)) {
            mcimport_m4_word(&m);
        } else if (c == '`') {
            buf_t quoted = BUF_INIT;
            int line = m.line;
            mcimport_m4_quote(&m, &quoted);
            if (m.text.len == 0)
                m.text_line = line;
            buf_append(&m.text, quoted.data ? quoted.data : "", quoted.len);
            buf_free(&quoted);
        } else {
            if (!isspace(c) || m.text.len > 0)
                mcimport_m4_text_putc(&m, c);
            m.p++;
        }
    }
    mcimport_m4_flush_text(&m);
    buf_free(&m.text);
}

void mcimport_doc_free(struct mcimport_doc *doc)
{
    for (size_t i = 0; i < doc->count; i++) {
        free(doc->items[i].name);
        for (size_t j = 0; j < doc->items[i].nargs; j++)
            free(doc->items[i].args[j]);
        free(doc->items[i].args);
    }
    free(doc->items);
    memset(doc, 0, sizeof(*doc));
}
