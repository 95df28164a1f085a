/*
 * sendmail_addr - RFC 5322 address lists for sendmail -t and its arguments.
 *
 * A list is split at commas outside quotes, comments and angle brackets.
 * Each element is "Display Name <addr-spec>" (the angle part wins; a source
 * route "@a,@b:" in it is dropped) or a bare addr-spec with (comments)
 * removed.  Groups "name: a, b;" give their members; an empty group
 * ("undisclosed-recipients:;") gives nothing.  Line folding is white space.
 */
#include <ctype.h>
#include <string.h>

#include "addr.h"
#include "sendmail.h"

struct addr_scan {
    buf_t text;  /* element text outside <> (comments dropped) */
    buf_t angle; /* text inside <> */
    int have_angle;
    int in_angle;
};

/* addr_trim - copy s without leading/trailing white space */
static void addr_trim(const char *s, buf_t *out)
{
    size_t n = strlen(s);

    while (*s && isspace((unsigned char)*s))
        s++, n--;
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    buf_reset(out);
    buf_append(out, s, n);
}

int sendmail_addr_valid(const char *addr)
{
    int quoted = 0;
    size_t n = strlen(addr);

    if (n == 0 || n > ADDR_MAX_LENGTH || addr[0] == '-')
        return 0;
    for (const char *p = addr; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 32 || c == 127)
            return 0;
        if (c == '\\' && quoted && p[1]) {
            p++;
            continue;
        }
        if (c == '"')
            quoted = !quoted;
        else if (!quoted && strchr(" \t<>(),;", c))
            return 0;
    }
    return !quoted;
}

/* addr_finish_element - turn the scanned element into an address */
static int addr_finish_element(struct addr_scan *sc, struct submission *s, buf_t *err)
{
    buf_t addr = BUF_INIT;
    int rc = 0;

    addr_trim(sc->have_angle ? buf_cstr(&sc->angle) : buf_cstr(&sc->text), &addr);
    if (sc->have_angle && addr.len && addr.data[0] == '@') { /* source route */
        const char *colon = strchr(addr.data, ':');
        buf_t rest = BUF_INIT;
        buf_set(&rest, colon ? colon + 1 : "");
        buf_set(&addr, buf_cstr(&rest));
        buf_free(&rest);
    }
    if (addr.len == 0 && !sc->have_angle) {
        /* empty element: nothing to add */
    } else if (!sendmail_addr_valid(buf_cstr(&addr))) {
        buf_printf(err, "bad address syntax: %.200s",
                   sc->have_angle ? buf_cstr(&sc->angle) : buf_cstr(&sc->text));
        rc = -1;
    } else if (submission_add_rcpt(s, buf_cstr(&addr)) < 0) {
        buf_printf(err, "too many recipients (limit %d)", SENDMAIL_MAX_RCPTS);
        rc = -1;
    }
    buf_reset(&sc->text);
    buf_reset(&sc->angle);
    sc->have_angle = sc->in_angle = 0;
    buf_free(&addr);
    return rc;
}

/* addr_skip_comment - p at '('; returns the position after the matching ')' */
static const char *addr_skip_comment(const char *p)
{
    int depth = 0;

    for (; *p; p++) {
        if (*p == '\\' && p[1])
            p++;
        else if (*p == '(')
            depth++;
        else if (*p == ')' && --depth == 0)
            return p + 1;
    }
    return p;
}

/* addr_copy_quoted - p at '"'; copy the quoted string into out */
static const char *addr_copy_quoted(const char *p, buf_t *out)
{
    buf_putc(out, *p++);
    for (; *p; p++) {
        if (*p == '\\' && p[1]) {
            buf_append(out, p, 2);
            p++;
            continue;
        }
        buf_putc(out, *p);
        if (*p == '"')
            return p + 1;
    }
    return p;
}

int sendmail_addr_list(const char *text, struct submission *s, buf_t *err)
{
    struct addr_scan sc = {BUF_INIT, BUF_INIT, 0, 0};
    const char *p = text;
    int rc = 0;

    while (rc == 0 && *p) {
        buf_t *cur = sc.in_angle ? &sc.angle : &sc.text;
        if (*p == '(') {
            p = addr_skip_comment(p);
            buf_putc(cur, ' ');
        } else if (*p == '"') {
            p = addr_copy_quoted(p, cur);
        } else if (*p == '<' && !sc.in_angle) {
            sc.in_angle = sc.have_angle = 1;
            buf_reset(&sc.angle);
            p++;
        } else if (*p == '>' && sc.in_angle) {
            sc.in_angle = 0;
            p++;
        } else if (!sc.in_angle && *p == ':' && !sc.have_angle) {
            buf_reset(&sc.text); /* group name */
            p++;
        } else if (!sc.in_angle && (*p == ',' || *p == ';')) {
            rc = addr_finish_element(&sc, s, err);
            p++;
        } else {
            buf_putc(cur, (*p == '\r' || *p == '\n') ? ' ' : *p);
            p++;
        }
    }
    if (rc == 0 && sc.in_angle) {
        buf_printf(err, "unbalanced '<' in: %.200s", text);
        rc = -1;
    }
    if (rc == 0)
        rc = addr_finish_element(&sc, s, err);
    buf_free(&sc.text);
    buf_free(&sc.angle);
    return rc;
}
