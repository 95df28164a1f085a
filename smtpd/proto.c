/*
 * proto - parse SMTP command lines and ESMTP parameters, and decode DATA
 * content (no I/O).
 *
 * See proto.h.  The reply texts follow sendmail where the SPEC names them.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "proto.h"
#include "smtputf8.h"

/* longest ESMTP keyword quoted back in a 555 reply */
#define PROTO_KEYWORD_MAX 32

static const struct {
    const char *verb;
    const char *name;
} proto_cmds[PROTO_CMD_COUNT] = {
    [PROTO_CMD_UNKNOWN] = {"", "unknown"},
    [PROTO_CMD_HELO] = {"HELO", "helo"},
    [PROTO_CMD_EHLO] = {"EHLO", "ehlo"},
    [PROTO_CMD_MAIL] = {"MAIL", "mail"},
    [PROTO_CMD_RCPT] = {"RCPT", "rcpt"},
    [PROTO_CMD_DATA] = {"DATA", "data"},
    [PROTO_CMD_RSET] = {"RSET", "rset"},
    [PROTO_CMD_NOOP] = {"NOOP", "noop"},
    [PROTO_CMD_QUIT] = {"QUIT", "quit"},
    [PROTO_CMD_HELP] = {"HELP", "help"},
    [PROTO_CMD_VRFY] = {"VRFY", "vrfy"},
    [PROTO_CMD_EXPN] = {"EXPN", "expn"},
    [PROTO_CMD_VERB] = {"VERB", "verb"},
    [PROTO_CMD_ETRN] = {"ETRN", "etrn"},
    [PROTO_CMD_STARTTLS] = {"STARTTLS", "starttls"},
    [PROTO_CMD_AUTH] = {"AUTH", "auth"},
    [PROTO_CMD_BDAT] = {"BDAT", "bdat"},
    [PROTO_CMD_XCLIENT] = {"XCLIENT", "xclient"},
    [PROTO_CMD_XFORWARD] = {"XFORWARD", "xforward"},
    [PROTO_CMD_ONEX] = {"ONEX", "onex"},
    [PROTO_CMD_XUSR] = {"XUSR", "xusr"},
};

/* proto_is_space - SMTP white space */
static int proto_is_space(int c)
{
    return c == ' ' || c == '\t';
}

/* proto_cmd_parse - split off the verb */
enum proto_cmd proto_cmd_parse(const char *line, const char **arg)
{
    size_t n = 0;

    while (line[n] != '\0' && !proto_is_space((unsigned char)line[n]))
        n++;
    *arg = line + n;
    while (proto_is_space((unsigned char)**arg))
        (*arg)++;
    for (int i = 1; i < PROTO_CMD_COUNT; i++) {
        if (strlen(proto_cmds[i].verb) == n && strncasecmp(line, proto_cmds[i].verb, n) == 0)
            return (enum proto_cmd)i;
    }
    return PROTO_CMD_UNKNOWN;
}

/* proto_cmd_name - lower-case name */
const char *proto_cmd_name(enum proto_cmd cmd)
{
    if ((int)cmd < 0 || cmd >= PROTO_CMD_COUNT)
        return "unknown";
    return proto_cmds[cmd].name;
}

/* proto_cmd_upper - upper-case name */
const char *proto_cmd_upper(enum proto_cmd cmd)
{
    if ((int)cmd <= 0 || cmd >= PROTO_CMD_COUNT)
        return "UNKNOWN";
    return proto_cmds[cmd].verb;
}

void proto_unbracket(const char *arg, buf_t *out)
{
    size_t len = strlen(arg);

    if (len >= 2 && arg[0] == '<' && arg[len - 1] == '>')
        buf_append(out, arg + 1, len - 2);
    else
        buf_append(out, arg, len);
}

/* proto_printable - copy with non-printables replaced, bounded */
void proto_printable(const char *s, size_t len, size_t max, buf_t *out)
{
    for (size_t i = 0; i < len && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        buf_putc(out, (c >= 0x20 && c < 0x7f) ? c : '?');
    }
}

/* proto_mail_init - empty MAIL state */
void proto_mail_init(struct proto_mail *m)
{
    buf_init(&m->echo);
    buf_init(&m->addr);
    buf_init(&m->envid);
    buf_init(&m->auth);
    m->size = -1;
    m->body = "";
    m->ret = "";
    m->requiretls = 0;
    m->smtputf8 = 0;
}

/* proto_mail_free - release */
void proto_mail_free(struct proto_mail *m)
{
    buf_free(&m->echo);
    buf_free(&m->addr);
    buf_free(&m->envid);
    buf_free(&m->auth);
    proto_mail_init(m);
}

/* proto_rcpt_init - empty RCPT state */
void proto_rcpt_init(struct proto_rcpt *r)
{
    buf_init(&r->echo);
    buf_init(&r->addr);
    buf_init(&r->notify);
    buf_init(&r->orcpt);
}

/* proto_rcpt_free - release */
void proto_rcpt_free(struct proto_rcpt *r)
{
    buf_free(&r->echo);
    buf_free(&r->addr);
    buf_free(&r->notify);
    buf_free(&r->orcpt);
}

/* proto_reply_set - replace reply with a fixed text */
static int proto_reply_set(buf_t *reply, const char *text)
{
    buf_set(reply, text);
    return -1;
}

/* proto_reply_param - "501 5.5.4 Syntax error in parameter NAME" */
static int proto_reply_param(buf_t *reply, const char *name, size_t len)
{
    buf_set(reply, "501 5.5.4 Syntax error in parameter ");
    proto_printable(name, len, PROTO_KEYWORD_MAX, reply);
    return -1;
}

/* proto_reply_unknown_param - "555 5.5.4 NAME parameter unrecognized" */
static int proto_reply_unknown_param(buf_t *reply, const char *name, size_t len)
{
    buf_set(reply, "555 5.5.4 ");
    proto_printable(name, len, PROTO_KEYWORD_MAX, reply);
    buf_puts(reply, " parameter unrecognized");
    return -1;
}

/* proto_path_parse - "FROM:" / "TO:" then the path; fills echo and addr and
 * points *params after the path.  -1 on bad syntax. */
static int proto_path_parse(const char *arg, const char *keyword, buf_t *echo, buf_t *addr,
                            const char **params)
{
    size_t klen = strlen(keyword);
    const char *err = NULL;
    const char *path;
    const char *end;

    if (strncasecmp(arg, keyword, klen) != 0)
        return -1;
    path = arg + klen;
    while (proto_is_space((unsigned char)*path))
        path++;
    if (*path == '\0')
        return -1;
    buf_reset(addr);
    if (addr_parse_path(path, addr, params, &err) < 0)
        return -1;
    end = *params;
    while (end > path && proto_is_space((unsigned char)end[-1]))
        end--;
    if (end == path)
        return -1;
    buf_reset(echo);
    if (smtputf8_form(path, (size_t)(end - path)) == SMTPUTF8_UTF8 &&
        (size_t)(end - path) <= ADDR_MAX_LENGTH + 2)
        buf_append(echo, path, (size_t)(end - path)); /* RFC 6531 3.7.4: UTF-8 may be echoed */
    else
        proto_printable(path, (size_t)(end - path), ADDR_MAX_LENGTH + 2, echo);
    return 0;
}

/* proto_param_next - split the next "NAME[=VALUE]" token off *p.  Returns 0
 * at the end of the list, 1 with name/value pointers and lengths. */
static int proto_param_next(const char **p, const char **name, size_t *nlen, const char **value,
                            size_t *vlen)
{
    const char *s = *p;
    const char *eq;
    size_t len = 0;

    while (proto_is_space((unsigned char)*s))
        s++;
    if (*s == '\0')
        return 0;
    while (s[len] != '\0' && !proto_is_space((unsigned char)s[len]))
        len++;
    *p = s + len;
    *name = s;
    eq = memchr(s, '=', len);
    if (eq == NULL) {
        *nlen = len;
        *value = NULL;
        *vlen = 0;
        return 1;
    }
    *nlen = (size_t)(eq - s);
    *value = eq + 1;
    *vlen = len - *nlen - 1;
    return 1;
}

/* proto_param_is - case-insensitive keyword compare */
static int proto_param_is(const char *name, size_t nlen, const char *keyword)
{
    return strlen(keyword) == nlen && strncasecmp(name, keyword, nlen) == 0;
}

/* proto_value_is - case-insensitive value compare */
static int proto_value_is(const char *value, size_t vlen, const char *word)
{
    return value != NULL && strlen(word) == vlen && strncasecmp(value, word, vlen) == 0;
}

/* proto_xtext_decode - decode a bounded xtext value into printable text;
 * -1 when malformed, too long, or decoding to non-printable bytes */
static int proto_xtext_decode(const char *value, size_t vlen, size_t max, buf_t *out)
{
    buf_t raw = BUF_INIT;
    int rc = -1;

    if (value == NULL || vlen == 0 || vlen > max)
        return -1;
    buf_append(&raw, value, vlen);
    buf_reset(out);
    if (xtext_decode(buf_cstr(&raw), out) == 0) {
        rc = 0;
        for (size_t i = 0; i < out->len; i++) {
            unsigned char c = (unsigned char)out->data[i];
            if (c < 0x21 || c > 0x7e)
                rc = -1;
        }
    }
    buf_free(&raw);
    return rc;
}

/* proto_size_parse - decimal SIZE value; huge values saturate */
static int proto_size_parse(const char *value, size_t vlen, long long *out)
{
    long long n = 0;

    if (value == NULL || vlen == 0 || vlen > 20)
        return -1;
    for (size_t i = 0; i < vlen; i++) {
        if (!isdigit((unsigned char)value[i]))
            return -1;
        if (n < 100000000000000000LL)
            n = n * 10 + (value[i] - '0');
    }
    *out = n;
    return 0;
}

/* proto_mail_param - apply one MAIL parameter; -1 with reply set */
static int proto_mail_param(const char *name, size_t nlen, const char *value, size_t vlen,
                            long long size_limit, struct proto_mail *m, buf_t *reply)
{
    if (proto_param_is(name, nlen, "SIZE")) {
        if (proto_size_parse(value, vlen, &m->size) < 0)
            return proto_reply_param(reply, name, nlen);
        if (size_limit > 0 && m->size > size_limit) {
            buf_reset(reply);
            buf_printf(reply, "552 5.2.3 Message size exceeds fixed maximum message size (%lld)",
                       size_limit);
            return -1;
        }
    } else if (proto_param_is(name, nlen, "BODY")) {
        if (proto_value_is(value, vlen, "7BIT"))
            m->body = "7BIT";
        else if (proto_value_is(value, vlen, "8BITMIME"))
            m->body = "8BITMIME";
        else if (proto_value_is(value, vlen, "BINARYMIME")) /* RFC 3030: BDAT only */
            m->body = "BINARYMIME";
        else
            return proto_reply_param(reply, name, nlen);
    } else if (proto_param_is(name, nlen, "RET")) {
        if (proto_value_is(value, vlen, "FULL"))
            m->ret = "FULL";
        else if (proto_value_is(value, vlen, "HDRS"))
            m->ret = "HDRS";
        else
            return proto_reply_param(reply, name, nlen);
    } else if (proto_param_is(name, nlen, "ENVID")) {
        if (proto_xtext_decode(value, vlen, PROTO_ENVID_MAX, &m->envid) < 0)
            return proto_reply_param(reply, name, nlen);
    } else if (proto_param_is(name, nlen, "AUTH")) {
        if (proto_value_is(value, vlen, "<>"))
            buf_set(&m->auth, "<>");
        else if (proto_xtext_decode(value, vlen, ADDR_MAX_LENGTH, &m->auth) < 0)
            return proto_reply_param(reply, name, nlen);
    } else if (proto_param_is(name, nlen, "REQUIRETLS")) {
        if (value != NULL) /* RFC 8689 section 2: a keyword without a value */
            return proto_reply_param(reply, name, nlen);
        if (m->requiretls)
            return proto_reply_set(reply, "501 5.5.4 Duplicate REQUIRETLS parameter");
        m->requiretls = 1;
    } else if (proto_param_is(name, nlen, "SMTPUTF8")) {
        if (value != NULL) /* RFC 6531 section 3.4: a keyword without a value */
            return proto_reply_param(reply, name, nlen);
        m->smtputf8 = 1;
    } else {
        return proto_reply_unknown_param(reply, name, nlen);
    }
    return 0;
}

/* proto_mail_parse - MAIL FROM: */
int proto_mail_parse(const char *arg, long long size_limit, struct proto_mail *m, buf_t *reply)
{
    const char *params;
    const char *name;
    const char *value;
    size_t nlen;
    size_t vlen;

    proto_mail_free(m);
    if (proto_path_parse(arg, "FROM:", &m->echo, &m->addr, &params) < 0)
        return proto_reply_set(reply, "501 5.5.2 Syntax error in parameters scanning \"FROM\"");
    while (proto_param_next(&params, &name, &nlen, &value, &vlen)) {
        if (proto_mail_param(name, nlen, value, vlen, size_limit, m, reply) < 0)
            return -1;
    }
    return 0;
}

/* proto_path_args - the ESMTP parameters after the path of "FROM:<a> ..."
 * or "TO:<a> ..." (keyword "FROM:" or "TO:"), as the client wrote them;
 * NULL on bad syntax */
const char *proto_path_args(const char *arg, const char *keyword)
{
    buf_t echo = BUF_INIT;
    buf_t addr = BUF_INIT;
    const char *params = NULL;
    int rc = proto_path_parse(arg, keyword, &echo, &addr, &params);

    buf_free(&echo);
    buf_free(&addr);
    if (rc < 0)
        return NULL;
    while (proto_is_space((unsigned char)*params))
        params++;
    return params;
}

/* proto_notify_parse - NEVER, or a list of SUCCESS, FAILURE, DELAY */
static int proto_notify_parse(const char *value, size_t vlen, buf_t *out)
{
    static const char *const words[] = {"SUCCESS", "FAILURE", "DELAY"};
    size_t start = 0;

    buf_reset(out);
    if (value == NULL || vlen == 0)
        return -1;
    if (proto_value_is(value, vlen, "NEVER")) {
        buf_set(out, "NEVER");
        return 0;
    }
    while (start <= vlen) {
        const char *comma = memchr(value + start, ',', vlen - start);
        size_t len = comma ? (size_t)(comma - value) - start : vlen - start;
        size_t i;

        for (i = 0; i < 3 && !proto_value_is(value + start, len, words[i]); i++)
            ;
        if (i == 3)
            return -1;
        if (out->len > 0)
            buf_putc(out, ',');
        buf_puts(out, words[i]);
        start += len + 1;
    }
    return 0;
}

/* proto_orcpt_parse - "addr-type;xtext" into "addr-type;decoded" */
static int proto_orcpt_parse(const char *value, size_t vlen, buf_t *out)
{
    const char *semi;
    size_t tlen;
    buf_t addr = BUF_INIT;
    int rc;

    if (value == NULL || vlen == 0 || vlen > PROTO_ORCPT_MAX)
        return -1;
    semi = memchr(value, ';', vlen);
    if (semi == NULL || semi == value)
        return -1;
    tlen = (size_t)(semi - value);
    for (size_t i = 0; i < tlen; i++) {
        if (!isalnum((unsigned char)value[i]) && value[i] != '-')
            return -1;
    }
    rc = proto_xtext_decode(semi + 1, vlen - tlen - 1, PROTO_ORCPT_MAX, &addr);
    if (rc == 0) {
        buf_reset(out);
        buf_append(out, value, tlen);
        buf_putc(out, ';');
        buf_append(out, addr.data, addr.len);
    }
    buf_free(&addr);
    return rc;
}

/* proto_rcpt_param - apply one RCPT parameter; -1 with reply set */
static int proto_rcpt_param(const char *name, size_t nlen, const char *value, size_t vlen,
                            struct proto_rcpt *r, buf_t *reply)
{
    if (proto_param_is(name, nlen, "NOTIFY")) {
        if (proto_notify_parse(value, vlen, &r->notify) < 0)
            return proto_reply_param(reply, name, nlen);
    } else if (proto_param_is(name, nlen, "ORCPT")) {
        if (proto_orcpt_parse(value, vlen, &r->orcpt) < 0)
            return proto_reply_param(reply, name, nlen);
    } else {
        return proto_reply_unknown_param(reply, name, nlen);
    }
    return 0;
}

/* proto_rcpt_parse - RCPT TO: */
int proto_rcpt_parse(const char *arg, struct proto_rcpt *r, buf_t *reply)
{
    const char *params;
    const char *name;
    const char *value;
    size_t nlen;
    size_t vlen;

    buf_reset(&r->notify);
    buf_reset(&r->orcpt);
    if (proto_path_parse(arg, "TO:", &r->echo, &r->addr, &params) < 0)
        return proto_reply_set(reply, "501 5.5.2 Syntax error in parameters scanning \"TO\"");
    if (r->addr.len == 0)
        return proto_reply_set(reply, "553 5.1.3 <>... User address required");
    while (proto_param_next(&params, &name, &nlen, &value, &vlen)) {
        if (proto_rcpt_param(name, nlen, value, vlen, r, reply) < 0)
            return -1;
    }
    return 0;
}

/* proto_address_check - see proto.h */
int proto_address_check(const char *addr, int sender, int smtputf8, buf_t *reply)
{
    const char *domain = addr_domain(addr);
    const char *dsn = sender ? "5.1.7" : "5.1.3";
    enum smtputf8_form form = smtputf8_form(addr, strlen(addr));
    buf_t alabel = BUF_INIT;
    int rc = 0;

    if (form == SMTPUTF8_ASCII)
        return 0;
    buf_reset(reply);
    if (!smtputf8)
        return proto_reply_set(reply, "553 5.6.7 Must declare SMTPUTF8 to send unicode address");
    if (form == SMTPUTF8_INVALID) {
        buf_printf(reply, "553 %s Malformed UTF-8 in %s address", dsn,
                   sender ? "sender" : "recipient");
        return -1;
    }
    if (domain != NULL && smtputf8_domain_to_ascii(domain, &alabel) < 0) {
        buf_printf(reply, "553 %s Invalid international domain name in %s address", dsn,
                   sender ? "sender" : "recipient");
        rc = -1;
    }
    buf_free(&alabel);
    return rc;
}

/* proto_banner_expand - replace the $j, $v, $b macros */
static void proto_banner_expand(const char *template, const char *hostname, const char *version,
                                const char *date, buf_t *out)
{
    for (const char *p = template; *p != '\0'; p++) {
        if (p[0] == '$' && p[1] == 'j') {
            buf_puts(out, hostname);
            p++;
        } else if (p[0] == '$' && p[1] == 'v') {
            buf_puts(out, version);
            p++;
        } else if (p[0] == '$' && p[1] == 'b') {
            buf_puts(out, date);
            p++;
        } else {
            unsigned char c = (unsigned char)*p;
            buf_putc(out, (c == '\r' || c == '\n') ? ' ' : c);
        }
    }
}

/* ---- AUTH (RFC 4954) */

static const char proto_base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* proto_base64_value - the 6 bits of one base64 character, -1 for others */
static int proto_base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    return c == '/' ? 63 : -1;
}

/* proto_base64_quad - decode 4 characters; pads ('=') only when last is
 * set, as "xx==" or "xxx=", with the bits they leave unused zero */
static int proto_base64_quad(const char *q, int last, buf_t *out)
{
    int pads = last ? (q[3] == '=') + (q[3] == '=' && q[2] == '=') : 0;
    int v[4] = {0, 0, 0, 0};

    for (int i = 0; i < 4 - pads; i++)
        if ((v[i] = proto_base64_value((unsigned char)q[i])) < 0)
            return -1;
    if ((pads == 1 && (v[2] & 0x3) != 0) || (pads == 2 && (v[1] & 0xf) != 0))
        return -1;
    buf_putc(out, (v[0] << 2) | (v[1] >> 4));
    if (pads < 2)
        buf_putc(out, ((v[1] & 0xf) << 4) | (v[2] >> 2));
    if (pads < 1)
        buf_putc(out, ((v[2] & 0x3) << 6) | v[3]);
    return 0;
}

int proto_base64_decode(const char *in, size_t len, buf_t *out)
{
    if (len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i += 4)
        if (proto_base64_quad(in + i, i + 4 == len, out) < 0)
            return -1;
    return 0;
}

void proto_base64_encode(const void *in, size_t len, buf_t *out)
{
    const unsigned char *p = in;

    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        buf_putc(out, proto_base64_alphabet[(v >> 18) & 0x3f]);
        buf_putc(out, proto_base64_alphabet[(v >> 12) & 0x3f]);
        buf_putc(out, i + 1 < len ? proto_base64_alphabet[(v >> 6) & 0x3f] : '=');
        buf_putc(out, i + 2 < len ? proto_base64_alphabet[v & 0x3f] : '=');
    }
}

/* proto_auth_mech_ok - 1 to 20 of A-Z a-z 0-9 - _ */
static int proto_auth_mech_ok(const char *mech, size_t len)
{
    if (len == 0 || len > PROTO_AUTH_MECH_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)mech[i]) && mech[i] != '-' && mech[i] != '_')
            return 0;
    return 1;
}

int proto_auth_parse(const char *arg, buf_t *mech, const char **response, buf_t *reply)
{
    size_t len = strcspn(arg, " \t");
    const char *rest = arg + len;

    buf_reset(mech);
    *response = NULL;
    if (len == 0)
        return proto_reply_set(reply, "501 5.5.4 Syntax: AUTH mechanism");
    if (!proto_auth_mech_ok(arg, len)) {
        buf_set(reply, "504 5.3.3 AUTH mechanism ");
        proto_printable(arg, len, PROTO_AUTH_MECH_MAX, reply);
        buf_puts(reply, " not available");
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        buf_putc(mech, toupper((unsigned char)arg[i]));
    rest += strspn(rest, " \t");
    if (*rest == '\0')
        return 0;
    if (rest[strcspn(rest, " \t")] != '\0')
        return proto_reply_set(reply, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
    *response = rest;
    return 0;
}

int proto_auth_response(const char *line, size_t len, int initial, buf_t *out, buf_t *reply)
{
    buf_reset(out);
    if (!initial && len == 1 && line[0] == '*')
        return 1;
    if (initial && len == 1 && line[0] == '=')
        return 0;
    buf_reserve(out, len / 4 * 3 + 3); /* the decoded size: no realloc leaves a copy */
    if (proto_base64_decode(line, len, out) < 0) {
        buf_wipe(out);
        return proto_reply_set(reply, "501 5.5.4 cannot decode AUTH parameter");
    }
    return 0;
}

/* proto_banner_format - expand and make sure "ESMTP" is there */
void proto_banner_format(const char *template, const char *hostname, const char *version,
                         const char *date, buf_t *out)
{
    buf_t text = BUF_INIT;
    const char *s;
    size_t first;

    proto_banner_expand(template, hostname, version, date, &text);
    s = buf_cstr(&text);
    if (strstr(s, "ESMTP") != NULL) {
        buf_puts(out, s);
        buf_free(&text);
        return;
    }
    while (proto_is_space((unsigned char)*s))
        s++;
    for (first = 0; s[first] != '\0' && !proto_is_space((unsigned char)s[first]); first++)
        ;
    buf_append(out, s, first);
    buf_puts(out, first > 0 ? " ESMTP" : "ESMTP");
    if (s[first] != '\0') {
        buf_append(out, s + first, strlen(s + first));
    }
    buf_free(&text);
}

/* --- DATA content ---------------------------------------------------- */

enum proto_data_state {
    DATA_LINE_START, /* at the start of a line */
    DATA_DOT,        /* the line so far is "." */
    DATA_DOT_CR,     /* the line so far is ".\r" */
    DATA_IN_LINE,    /* inside a line */
    DATA_CR          /* inside a line, just after a CR */
};

/* proto_data_init - the first line counts as preceded by CRLF */
void proto_data_init(struct proto_data_decoder *d)
{
    d->state = DATA_LINE_START;
    d->prev_crlf = 1;
    d->bare_seen = 0;
}

/* proto_data_line_end - store a line end; real is 1 for CRLF, 0 for bare LF/CR */
static void proto_data_line_end(struct proto_data_decoder *d, int real, buf_t *out)
{
    buf_append(out, "\r\n", 2);
    d->prev_crlf = real;
    if (!real)
        d->bare_seen = 1;
    d->state = DATA_LINE_START;
}

/* proto_data_byte_line - one byte at the start of a line or inside it */
static void proto_data_byte_line(struct proto_data_decoder *d, int c, buf_t *out)
{
    if (c == '\r') {
        d->state = DATA_CR;
    } else if (c == '\n') {
        proto_data_line_end(d, 0, out);
    } else if (c == '.' && d->state == DATA_LINE_START) {
        d->state = DATA_DOT;
    } else {
        buf_putc(out, c);
        d->state = DATA_IN_LINE;
    }
}

/* proto_data_byte - advance by one byte; returns 1 at the end of data */
static int proto_data_byte(struct proto_data_decoder *d, int c, buf_t *out)
{
    switch (d->state) {
    case DATA_DOT:
        if (c == '\r') {
            d->state = DATA_DOT_CR;
        } else if (c == '\n') {
            buf_putc(out, '.');
            proto_data_line_end(d, 0, out);
        } else {
            /* a stuffed dot: drop it, keep the byte after it */
            buf_putc(out, c);
            d->state = DATA_IN_LINE;
        }
        return 0;
    case DATA_DOT_CR:
        if (c == '\n' && d->prev_crlf)
            return 1;
        buf_putc(out, '.');
        proto_data_line_end(d, c == '\n', out);
        if (c != '\n')
            proto_data_byte_line(d, c, out);
        return 0;
    case DATA_CR:
        proto_data_line_end(d, c == '\n', out);
        if (c != '\n')
            proto_data_byte_line(d, c, out);
        return 0;
    default:
        proto_data_byte_line(d, c, out);
        return 0;
    }
}

/* proto_data_decode - feed bytes until the end of data or the end of input */
size_t proto_data_decode(struct proto_data_decoder *d, const char *in, size_t len, buf_t *out,
                         int *done)
{
    *done = 0;
    for (size_t i = 0; i < len; i++) {
        if (proto_data_byte(d, (unsigned char)in[i], out)) {
            *done = 1;
            return i + 1;
        }
    }
    return len;
}

int proto_ident_parse(const char *line, buf_t *user)
{
    const char *p = strchr(line, ':');
    const char *q, *u;

    if (p == NULL)
        return -1;
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncmp(p, "USERID", 6) != 0)
        return -1;
    if ((q = strchr(p + 6, ':')) == NULL || (u = strchr(q + 1, ':')) == NULL)
        return -1;
    u++;
    while (*u == ' ' || *u == '\t')
        u++;
    buf_reset(user);
    for (; *u && *u != '\r' && *u != '\n' && user->len < PROTO_IDENT_USER_MAX; u++) {
        unsigned char c = (unsigned char)*u;
        /* no blanks, no '@', nothing a header or log line would misread */
        buf_putc(user,
                 c > 0x20 && c < 0x7f && c != '@' && c != '(' && c != ')' && c != '[' ? c : '_');
    }
    while (user->len > 0 && user->data[user->len - 1] == '_')
        user->len--;
    buf_putc(user, 0);
    user->len--;
    return user->len > 0 ? 0 : -1;
}

/* proto_reply_line - one line of n bytes of a whole reply: the code of
 * the first line, '-' after it on every line but the last, ' ' or nothing
 * on the last, printable */
static int proto_reply_line(const char *line, size_t n, const char *code, int last)
{
    if (n < 3 || memcmp(line, code, 3) != 0)
        return 0;
    if (n == 3 ? !last : line[3] != (last ? ' ' : '-'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
            return 0;
    return 1;
}

int proto_reply_valid(const char *text, char cls)
{
    if (text[0] != cls || !isdigit((unsigned char)text[1]) || !isdigit((unsigned char)text[2]))
        return 0;
    for (const char *line = text;;) {
        const char *crlf = strstr(line, "\r\n");
        size_t n = crlf != NULL ? (size_t)(crlf - line) : strlen(line);
        if (!proto_reply_line(line, n, text, crlf == NULL))
            return 0;
        if (crlf == NULL)
            return 1;
        line = crlf + 2;
    }
}
