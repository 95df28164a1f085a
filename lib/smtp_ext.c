/*
 * smtp_ext - BDAT, ETRN and HELP arguments and sendmail's help file (see
 * smtp_ext.h).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_ext.h"

#define SMTP_EXT_BDAT_SYNTAX "501 5.5.4 Syntax: BDAT <size> [LAST]"
/* a reply line is at most 512 bytes with its code and CRLF (RFC 5321) */
#define SMTP_EXT_HELP_LINE_MAX 490
#define SMTP_EXT_ETRN_SYNTAX "501 5.5.4 Syntax: ETRN <domain> | @<domain> | #<queue>"

/* smtp_ext_bdat_size - the decimal at *p, advancing *p; -1 when there is
 * no digit or too many significant ones */
static long long smtp_ext_bdat_size(const char **p)
{
    long long size = 0;
    size_t digits = 0;
    const char *s = *p;

    if (!isdigit((unsigned char)*s))
        return -1;
    for (; isdigit((unsigned char)*s); s++) {
        if (size == 0 && *s == '0')
            continue;
        if (++digits > SMTP_EXT_BDAT_DIGITS)
            return -1;
        size = size * 10 + (*s - '0');
    }
    *p = s;
    return size;
}

/* smtp_ext_bdat_parse - "<size>" or "<size> LAST" */
enum smtp_ext_status smtp_ext_bdat_parse(const char *arg, long long max, struct smtp_ext_bdat *bdat,
                                         buf_t *reply)
{
    const char *p = arg;
    long long size = smtp_ext_bdat_size(&p);

    buf_reset(reply);
    bdat->size = 0;
    bdat->last = 0;
    if (size < 0 || (*p != 0 && (*p != ' ' || strcasecmp(p + 1, "LAST") != 0))) {
        buf_puts(reply, SMTP_EXT_BDAT_SYNTAX);
        return SMTP_EXT_SYNTAX;
    }
    bdat->size = size;
    bdat->last = *p != 0;
    if (size > max) {
        buf_puts(reply, "552 5.3.4 Message size exceeds fixed maximum message size");
        return SMTP_EXT_TOO_BIG;
    }
    return SMTP_EXT_OK;
}

/* smtp_ext_label_valid - one LDH label */
static int smtp_ext_label_valid(const char *label, size_t len)
{
    size_t i;

    if (len == 0 || len > 63 || label[0] == '-' || label[len - 1] == '-')
        return 0;
    for (i = 0; i < len; i++)
        if (!isalnum((unsigned char)label[i]) && label[i] != '-')
            return 0;
    return 1;
}

/* smtp_ext_domain_valid - dot-separated LDH labels */
int smtp_ext_domain_valid(const char *name, size_t len)
{
    const char *dot;

    if (len == 0 || len > SMTP_EXT_DOMAIN_MAX)
        return 0;
    while ((dot = memchr(name, '.', len)) != NULL) {
        if (!smtp_ext_label_valid(name, (size_t)(dot - name)))
            return 0;
        len -= (size_t)(dot - name) + 1;
        name = dot + 1;
    }
    return smtp_ext_label_valid(name, len);
}

/* smtp_ext_queue_valid - printable ASCII without space, bounded */
static int smtp_ext_queue_valid(const char *name)
{
    size_t len = strlen(name), i;

    if (len == 0 || len > SMTP_EXT_QUEUE_MAX)
        return 0;
    for (i = 0; i < len; i++)
        if (name[i] <= ' ' || name[i] > '~')
            return 0;
    return 1;
}

/* smtp_ext_etrn_parse - "domain", "@domain" or "#queue" */
int smtp_ext_etrn_parse(const char *arg, enum smtp_ext_etrn_form *form, buf_t *name, buf_t *reply)
{
    size_t i;

    buf_reset(name);
    buf_reset(reply);
    *form = SMTP_EXT_ETRN_DOMAIN;
    if (arg[0] == '#') {
        *form = SMTP_EXT_ETRN_QUEUE;
        if (!smtp_ext_queue_valid(arg + 1))
            goto syntax;
        buf_puts(name, arg + 1);
        return 0;
    }
    if (arg[0] == '@') {
        *form = SMTP_EXT_ETRN_SUBDOMAINS;
        arg++;
    }
    if (!smtp_ext_domain_valid(arg, strlen(arg)))
        goto syntax;
    for (i = 0; arg[i]; i++)
        buf_putc(name, tolower((unsigned char)arg[i]));
    return 0;
syntax:
    buf_puts(reply, SMTP_EXT_ETRN_SYNTAX);
    return -1;
}

void smtp_ext_helpfile_init(struct smtp_ext_helpfile *hf)
{
    hf->lines = NULL;
    hf->count = 0;
    hf->cap = 0;
}

void smtp_ext_helpfile_free(struct smtp_ext_helpfile *hf)
{
    size_t i;

    for (i = 0; i < hf->count; i++) {
        free(hf->lines[i].topic);
        free(hf->lines[i].text);
    }
    free(hf->lines);
    smtp_ext_helpfile_init(hf);
}

/* smtp_ext_help_text - a copy of the text with controls other than TAB as
 * '?', cut at SMTP_EXT_HELP_TEXT_MAX */
static char *smtp_ext_help_text(const char *s, size_t len)
{
    char *text;
    size_t i;

    if (len > SMTP_EXT_HELP_TEXT_MAX)
        len = SMTP_EXT_HELP_TEXT_MAX;
    text = xmalloc(len + 1); /* not xstrndup: a NUL in the file becomes '?' too */
    memcpy(text, s, len);
    text[len] = 0;
    for (i = 0; i < len; i++)
        if (((unsigned char)text[i] < ' ' && text[i] != '\t') || text[i] == 0x7F || text[i] == 0)
            text[i] = '?';
    return text;
}

/* smtp_ext_helpfile_add - one "topic<TAB>text" line (no line end) */
static void smtp_ext_helpfile_add(struct smtp_ext_helpfile *hf, const char *line, size_t len)
{
    size_t topic_len = 0, i;
    struct smtp_ext_help_line *l;

    while (topic_len < len && line[topic_len] != ' ' && line[topic_len] != '\t')
        topic_len++;
    if (hf->count == hf->cap) {
        hf->cap = hf->cap ? hf->cap * 2 : 64;
        hf->lines = xrealloc(hf->lines, hf->cap * sizeof(*hf->lines));
    }
    l = &hf->lines[hf->count++];
    l->topic = xstrndup(line, topic_len);
    for (i = 0; l->topic[i]; i++)
        l->topic[i] = (char)tolower((unsigned char)l->topic[i]);
    if (topic_len < len)
        topic_len++; /* the separator */
    l->text = smtp_ext_help_text(line + topic_len, len - topic_len);
}

/* smtp_ext_helpfile_parse - every line that is not a comment */
void smtp_ext_helpfile_parse(const char *data, size_t len, struct smtp_ext_helpfile *hf)
{
    const char *end = data + len, *nl;
    size_t n;

    smtp_ext_helpfile_free(hf);
    while (data < end) {
        nl = memchr(data, '\n', (size_t)(end - data));
        n = nl ? (size_t)(nl - data) : (size_t)(end - data);
        if (n > 0 && data[n - 1] == '\r')
            n--;
        if (n > 0 && data[0] != '#')
            smtp_ext_helpfile_add(hf, data, n);
        data = nl ? nl + 1 : end;
    }
}

/* smtp_ext_help_topic - lower case, "smtp" for none */
void smtp_ext_help_topic(const char *arg, buf_t *topic)
{
    size_t len = strlen(arg), i;

    buf_reset(topic);
    while (len > 0 && (arg[len - 1] == ' ' || arg[len - 1] == '\t'))
        len--;
    if (len == 0) {
        buf_puts(topic, "smtp");
        return;
    }
    for (i = 0; i < len; i++)
        buf_putc(topic, tolower((unsigned char)arg[i]));
}

/* smtp_ext_help_expand - append text with $v and $$ expanded, controls
 * (of the version too) as '?', at most SMTP_EXT_HELP_LINE_MAX bytes */
static void smtp_ext_help_expand(const char *text, const char *version, buf_t *out)
{
    size_t mark = out->len, i;

    for (; *text; text++) {
        if (text[0] == '$' && text[1] == 'v') {
            buf_puts(out, version);
            text++;
        } else if (text[0] == '$' && text[1] == '$') {
            buf_putc(out, '$');
            text++;
        } else {
            buf_putc(out, *text);
        }
    }
    buf_truncate(out, mark + SMTP_EXT_HELP_LINE_MAX);
    for (i = mark; i < out->len; i++)
        if (((unsigned char)out->data[i] < ' ' && out->data[i] != '\t') || out->data[i] == 0x7F)
            out->data[i] = '?';
}

/* smtp_ext_help_echo - the topic as a reply may quote it: printable
 * ASCII, '"' and others as '?', at most SMTP_EXT_HELP_TOPIC_MAX bytes */
static void smtp_ext_help_echo(const buf_t *topic, buf_t *out)
{
    size_t i;

    for (i = 0; i < topic->len && i < SMTP_EXT_HELP_TOPIC_MAX; i++) {
        char c = topic->data[i];

        buf_putc(out, c > ' ' && c <= '~' && c != '"' ? c : '?');
    }
}

/* smtp_ext_help_reply - 214 lines of the topic, 504 or 502 */
void smtp_ext_help_reply(const struct smtp_ext_helpfile *hf, const char *arg, const char *version,
                         buf_t *reply)
{
    buf_t topic = BUF_INIT;
    size_t i;
    int found = 0;

    buf_reset(reply);
    if (hf == NULL) {
        buf_puts(reply, "502 5.3.0 HELP not implemented");
        return;
    }
    smtp_ext_help_topic(arg, &topic);
    for (i = 0; i < hf->count; i++) {
        if (strcmp(hf->lines[i].topic, buf_cstr(&topic)) != 0)
            continue;
        buf_puts(reply, "214-2.0.0 ");
        smtp_ext_help_expand(hf->lines[i].text, version ? version : "", reply);
        buf_puts(reply, "\r\n");
        found = 1;
    }
    if (found) {
        buf_puts(reply, "214 2.0.0 End of HELP info");
    } else {
        buf_puts(reply, "504 5.3.0 HELP topic \"");
        smtp_ext_help_echo(&topic, reply);
        buf_puts(reply, "\" unknown");
    }
    buf_free(&topic);
}
