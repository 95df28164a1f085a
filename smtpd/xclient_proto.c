/*
 * xclient_proto - the arguments of XCLIENT and XFORWARD, without any I/O
 * (xclient.h).  Checks follow Postfix's smtpd (xclient_cmd, xforward_cmd):
 * names are host names, addresses IPv4 or "IPV6:" literals, ports 1 to 5
 * digits, PROTO SMTP or ESMTP (XFORWARD: any short word), SOURCE LOCAL or
 * REMOTE; characters that could break a Received header are masked.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "proto.h"
#include "smtp_ext.h"
#include "xclient.h"

#define XCLIENT_FOR_XCLIENT 1
#define XCLIENT_FOR_XFORWARD 2
#define XCLIENT_FOR_BOTH 3
/* the longest PROTO of XFORWARD (Postfix) and IDENT */
#define XCLIENT_WORD_MAX 64

static const struct {
    const char *name;
    int commands; /* XCLIENT_FOR_* */
} xclient_attrs[SMTPD_XATTR_COUNT] = {
    [SMTPD_XATTR_NAME] = {"NAME", XCLIENT_FOR_BOTH},
    [SMTPD_XATTR_ADDR] = {"ADDR", XCLIENT_FOR_BOTH},
    [SMTPD_XATTR_PORT] = {"PORT", XCLIENT_FOR_BOTH},
    [SMTPD_XATTR_PROTO] = {"PROTO", XCLIENT_FOR_BOTH},
    [SMTPD_XATTR_HELO] = {"HELO", XCLIENT_FOR_BOTH},
    [SMTPD_XATTR_LOGIN] = {"LOGIN", XCLIENT_FOR_XCLIENT},
    [SMTPD_XATTR_DESTADDR] = {"DESTADDR", XCLIENT_FOR_XCLIENT},
    [SMTPD_XATTR_DESTPORT] = {"DESTPORT", XCLIENT_FOR_XCLIENT},
    [SMTPD_XATTR_IDENT] = {"IDENT", XCLIENT_FOR_XFORWARD},
    [SMTPD_XATTR_SOURCE] = {"SOURCE", XCLIENT_FOR_XFORWARD},
};

void smtpd_xclient_args_init(struct smtpd_xclient_args *a)
{
    memset(a, 0, sizeof(*a));
}

void smtpd_xclient_args_free(struct smtpd_xclient_args *a)
{
    for (int i = 0; i < SMTPD_XATTR_COUNT; i++)
        buf_free(&a->value[i]);
    smtpd_xclient_args_init(a);
}

int smtpd_xclient_has(const struct smtpd_xclient_args *a, enum smtpd_xattr x)
{
    return (a->given & (1u << x)) != 0 && (a->unavailable & (1u << x)) == 0;
}

/* xclient_attr_find - the attribute called name[0..len) that cmd accepts */
static int xclient_attr_find(const char *name, size_t len, int cmd)
{
    for (int i = 0; i < SMTPD_XATTR_COUNT; i++)
        if ((xclient_attrs[i].commands & cmd) && strlen(xclient_attrs[i].name) == len &&
            strncasecmp(xclient_attrs[i].name, name, len) == 0)
            return i;
    return -1;
}

/* xclient_address - "1.2.3.4" or "IPV6:..." into ss (port 0); -1 bad */
static int xclient_address(const char *text, struct sockaddr_storage *ss)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (strncasecmp(text, "IPV6:", 5) == 0) {
        in6->sin6_family = AF_INET6;
        return inet_pton(AF_INET6, text + 5, &in6->sin6_addr) == 1 ? 0 : -1;
    }
    in4->sin_family = AF_INET;
    return inet_pton(AF_INET, text, &in4->sin_addr) == 1 ? 0 : -1;
}

/* xclient_port - 1 to 5 digits, at most 65535 */
static int xclient_port(const char *text)
{
    size_t len = strlen(text);

    if (len == 0 || len > 5 || strspn(text, "0123456789") != len)
        return -1;
    return atoi(text) <= 65535 ? 0 : -1;
}

/* xclient_word - letters, digits, '-', '.', '_', 1..max bytes */
static int xclient_word(const char *text, size_t max)
{
    size_t len = strlen(text);

    if (len == 0 || len > max)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)text[i]) && strchr("-._", text[i]) == NULL)
            return -1;
    return 0;
}

/* xclient_neuter - mask what could break a Received header (Postfix's
 * NEUTER_CHARACTERS) */
static void xclient_neuter(buf_t *v)
{
    for (size_t i = 0; i < v->len; i++)
        if (strchr(" <>()\\\";@", v->data[i]) != NULL)
            v->data[i] = '?';
}

/* xclient_check - is value (known, printable) right for attribute x? */
static int xclient_check(struct smtpd_xclient_args *a, int x, int cmd, buf_t *v)
{
    const char *text = buf_cstr(v);

    switch (x) {
    case SMTPD_XATTR_NAME:
        return smtp_ext_domain_valid(text, v->len) ? 0 : -1;
    case SMTPD_XATTR_ADDR:
        return xclient_address(text, &a->addr);
    case SMTPD_XATTR_DESTADDR:
        return xclient_address(text, &a->destaddr);
    case SMTPD_XATTR_PORT:
    case SMTPD_XATTR_DESTPORT:
        return xclient_port(text);
    case SMTPD_XATTR_PROTO:
        if (cmd == XCLIENT_FOR_XFORWARD)
            return xclient_word(text, XCLIENT_WORD_MAX);
        return strcasecmp(text, "SMTP") == 0 || strcasecmp(text, "ESMTP") == 0 ? 0 : -1;
    case SMTPD_XATTR_HELO:
        xclient_neuter(v);
        return v->len > 255 ? -1 : 0;
    case SMTPD_XATTR_IDENT:
        xclient_neuter(v);
        return v->len > XCLIENT_WORD_MAX ? -1 : 0;
    case SMTPD_XATTR_SOURCE:
        return strcasecmp(text, "LOCAL") == 0 || strcasecmp(text, "REMOTE") == 0 ? 0 : -1;
    default: /* LOGIN: any printable name */
        return 0;
    }
}

/* xclient_unavailable - "[UNAVAILABLE]", or "[TEMPUNAVAIL]" for NAME */
static int xclient_unavailable(struct smtpd_xclient_args *a, int x, const char *text)
{
    if (strcasecmp(text, "[UNAVAILABLE]") == 0)
        return 1;
    if (x == SMTPD_XATTR_NAME && strcasecmp(text, "[TEMPUNAVAIL]") == 0) {
        a->name_tempfail = 1;
        return 1;
    }
    return 0;
}

/* xclient_one - one NAME=value word (word[0..len)) */
static int xclient_one(const char *word, size_t len, int cmd, struct smtpd_xclient_args *a,
                       buf_t *reply)
{
    const char *verb = cmd == XCLIENT_FOR_XCLIENT ? "XCLIENT" : "XFORWARD";
    const char *eq = memchr(word, '=', len);
    buf_t raw = BUF_INIT, decoded = BUF_INIT;
    int x, rc = -1;

    if (eq == NULL || eq + 1 == word + len) {
        buf_set(reply, "501 5.5.4 Error: attribute=value expected");
        return -1;
    }
    if ((size_t)(word + len - eq - 1) > SMTPD_XCLIENT_VALUE_MAX) {
        buf_set(reply, "501 5.5.4 Error: attribute value too long");
        return -1;
    }
    if ((x = xclient_attr_find(word, (size_t)(eq - word), cmd)) < 0) {
        buf_printf(reply, "501 5.5.4 Bad %s attribute name: ", verb);
        proto_printable(word, (size_t)(eq - word), PROTO_ECHO_MAX, reply);
        return -1;
    }
    buf_append(&raw, eq + 1, (size_t)(word + len - eq - 1));
    if (xtext_decode(buf_cstr(&raw), &decoded) < 0)
        buf_set(&decoded, buf_cstr(&raw)); /* not xtext: Postfix before 2.3 */
    buf_reset(&a->value[x]);
    a->given |= 1u << x;
    a->unavailable &= ~(1u << x);
    if (xclient_unavailable(a, x, buf_cstr(&decoded))) {
        a->unavailable |= 1u << x;
        rc = 0;
    } else {
        proto_printable(decoded.data, decoded.len, decoded.len, &a->value[x]);
        rc = xclient_check(a, x, cmd, &a->value[x]);
        if (rc < 0) {
            buf_printf(reply, "501 5.5.4 Bad %s syntax: ", xclient_attrs[x].name);
            proto_printable(raw.data, raw.len, PROTO_ECHO_MAX, reply);
        }
    }
    buf_free(&raw);
    buf_free(&decoded);
    return rc;
}

int smtpd_xclient_parse(const char *arg, int xforward, struct smtpd_xclient_args *a, buf_t *reply)
{
    int cmd = xforward ? XCLIENT_FOR_XFORWARD : XCLIENT_FOR_XCLIENT;
    const char *p = arg;
    size_t len;

    buf_reset(reply);
    while (*p == ' ')
        p++;
    if (*p == '\0') {
        buf_printf(reply, "501 5.5.4 Syntax: %s attribute=value...",
                   xforward ? "XFORWARD" : "XCLIENT");
        return -1;
    }
    while (*p != '\0') {
        len = strcspn(p, " ");
        if (xclient_one(p, len, cmd, a, reply) < 0)
            return -1;
        p += len;
        while (*p == ' ')
            p++;
    }
    return 0;
}
