/*
 * reply - SMTP reply, enhanced status code and EHLO parsing (see reply.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "reply.h"

/* smtp_reply_init - an empty reply */
void smtp_reply_init(struct smtp_reply *r)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->text);
    buf_init(&r->ext);
}

/* smtp_reply_free - release */
void smtp_reply_free(struct smtp_reply *r)
{
    buf_free(&r->text);
    buf_free(&r->ext);
}

/* smtp_reply_reset - forget the last reply */
void smtp_reply_reset(struct smtp_reply *r)
{
    r->code = 0;
    r->pending_code = 0;
    r->lines = 0;
    buf_reset(&r->text);
    buf_reset(&r->ext);
}

/* smtp_reply_code - the code of a line "ddd", "ddd-..." or "ddd ...", or -1 */
static int smtp_reply_code(const char *line, size_t len)
{
    if (len < 3 || line[0] < '2' || line[0] > '5' || !isdigit((unsigned char)line[1]) ||
        !isdigit((unsigned char)line[2]))
        return -1;
    if (len > 3 && line[3] != ' ' && line[3] != '-')
        return -1;
    return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

/* smtp_reply_append_text - add printable text to buf, bounded */
static void smtp_reply_append_text(buf_t *b, const char *p, size_t n, size_t limit)
{
    for (size_t i = 0; i < n && b->len < limit; i++) {
        unsigned char c = (unsigned char)p[i];
        buf_putc(b, (c < ' ' || c >= 127) ? '?' : c);
    }
}

/* smtp_reply_feed - see reply.h */
int smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len)
{
    int code = smtp_reply_code(line, len);
    const char *text = len > 4 ? line + 4 : "";
    size_t tlen = len > 4 ? len - 4 : 0;

    if (code < 0 || len > SMTP_REPLY_MAX_LINE || r->code != 0)
        return -1;
    if (r->lines > 0 && code != r->pending_code)
        return -1;
    if (++r->lines > SMTP_REPLY_MAX_LINES)
        return -1;
    r->pending_code = code;
    if (r->lines == 1)
        buf_printf(&r->text, "%d", code);
    if (tlen > 0) {
        buf_putc(&r->text, ' ');
        smtp_reply_append_text(&r->text, text, tlen, SMTP_REPLY_MAX_TEXT);
    }
    smtp_reply_append_text(&r->ext, text, tlen, (size_t)-1);
    buf_putc(&r->ext, '\n');
    if (len > 3 && line[3] == '-')
        return 0;
    r->code = code;
    return 1;
}

/* smtp_dsn_part - length of a 1-3 digit run at p, or 0 */
static size_t smtp_dsn_part(const char *p, size_t max)
{
    size_t n = 0;

    while (n < max && n < 3 && isdigit((unsigned char)p[n]))
        n++;
    return n;
}

/* smtp_dsn_scan - length of "c.ddd.ddd" at p (c = class digit) or 0 */
static size_t smtp_dsn_scan(const char *p, size_t len, int code_class)
{
    size_t i = 0, n;

    if (len < 5 || p[0] != '0' + code_class || p[1] != '.')
        return 0;
    i = 2;
    n = smtp_dsn_part(p + i, len - i);
    if (n == 0 || i + n >= len || p[i + n] != '.')
        return 0;
    i += n + 1;
    n = smtp_dsn_part(p + i, len - i);
    if (n == 0)
        return 0;
    i += n;
    if (i < len && p[i] != ' ')
        return 0;
    return i;
}

/* smtp_reply_last_text - see reply.h */
void smtp_reply_last_text(const struct smtp_reply *r, buf_t *out)
{
    const char *p = buf_cstr(&r->ext);
    size_t len = r->ext.len;
    const char *start;

    if (len > 0 && p[len - 1] == '\n')
        len--;
    start = memrchr(p, '\n', len);
    start = start ? start + 1 : p;
    buf_reset(out);
    buf_append(out, start, len - (size_t)(start - p));
}

/* smtp_reply_dsn - see reply.h */
void smtp_reply_dsn(const struct smtp_reply *r, char *out, size_t outlen)
{
    int code_class = r->code / 100;
    const char *p = buf_cstr(&r->text);
    size_t len = r->text.len, n = 0;

    if (len > 4)
        n = smtp_dsn_scan(p + 4, len - 4, code_class);
    if (n > 0 && n < outlen) {
        memcpy(out, p + 4, n);
        out[n] = 0;
        return;
    }
    snprintf(out, outlen, "%d.0.0", code_class >= 2 && code_class <= 5 ? code_class : 4);
}

/* smtp_ehlo_auth - add the mechanism names after "AUTH" (or the old
 * "AUTH=") to e->auth, upper case, once each, bounded */
static void smtp_ehlo_auth(const char *p, size_t len, struct smtp_ehlo *e)
{
    size_t i = 0;

    while (i < len) {
        size_t start, n, have = strlen(e->auth);
        while (i < len && (p[i] == ' ' || p[i] == '='))
            i++;
        start = i;
        while (i < len && p[i] != ' ')
            i++;
        n = i - start;
        if (n == 0 || have + n + 2 > sizeof(e->auth))
            continue;
        char word[SMTP_EHLO_AUTH_MAX];
        for (size_t k = 0; k < n; k++)
            word[k] = (char)toupper((unsigned char)p[start + k]);
        word[n] = 0;
        if (smtp_ehlo_has_auth(e, word))
            continue;
        if (have > 0)
            e->auth[have++] = ' ';
        memcpy(e->auth + have, word, n + 1);
    }
}

/* smtp_ehlo_keyword - handle one EHLO line "KEYWORD [params]" */
static void smtp_ehlo_keyword(const char *line, size_t len, struct smtp_ehlo *e)
{
    size_t kw = 0;

    while (kw < len && line[kw] != ' ')
        kw++;
    if (kw == 10 && strncasecmp(line, "PIPELINING", 10) == 0) {
        e->pipelining = 1;
    } else if (kw == 8 && strncasecmp(line, "8BITMIME", 8) == 0) {
        e->eightbitmime = 1;
    } else if (kw == 8 && strncasecmp(line, "CHUNKING", 8) == 0) {
        e->chunking = 1;
    } else if (kw == 10 && strncasecmp(line, "BINARYMIME", 10) == 0) {
        e->binarymime = 1;
    } else if (kw == 3 && strncasecmp(line, "DSN", 3) == 0) {
        e->dsn = 1;
    } else if (kw == 8 && strncasecmp(line, "STARTTLS", 8) == 0) {
        e->starttls = 1;
    } else if (kw == 10 && strncasecmp(line, "REQUIRETLS", 10) == 0) {
        e->requiretls = 1;
    } else if (kw == 8 && strncasecmp(line, "SMTPUTF8", 8) == 0) {
        e->smtputf8 = 1;
    } else if ((kw == 4 || (kw > 5 && line[4] == '=')) && strncasecmp(line, "AUTH", 4) == 0) {
        smtp_ehlo_auth(line + 4, len - 4, e); /* "AUTH=" is what old Microsoft servers send */
    } else if (kw == 4 && strncasecmp(line, "SIZE", 4) == 0) {
        long long v = 0;
        size_t i = kw + 1;
        e->size = 1;
        while (i < len && isdigit((unsigned char)line[i]) && v < 1000000000000000LL)
            v = v * 10 + (line[i++] - '0');
        e->size_limit = v;
    }
}

/* smtp_ehlo_has_auth - see reply.h */
int smtp_ehlo_has_auth(const struct smtp_ehlo *e, const char *mech)
{
    size_t n = strlen(mech);
    const char *p = e->auth;

    while (n > 0 && (p = strstr(p, mech)) != NULL) {
        if ((p == e->auth || p[-1] == ' ') && (p[n] == 0 || p[n] == ' '))
            return 1;
        p += n;
    }
    return 0;
}

/* smtp_ehlo_parse - see reply.h; the first line is the server's name */
void smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *e)
{
    const char *p = buf_cstr(&r->ext);
    const char *end = p + r->ext.len;
    int first = 1;

    memset(e, 0, sizeof(*e));
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            nl = end;
        if (!first)
            smtp_ehlo_keyword(p, (size_t)(nl - p), e);
        first = 0;
        p = nl + 1;
    }
}
