/*
 * message - the copy of a message that a mailbox, a file or a command gets:
 * an optional Unix "From sender date" line (MAILER-DAEMON for the null
 * sender), Return-Path: and Delivered-To: headers, then the queued content
 * with LF line ends, ">From " quoting for mbox files, and a blank line at the
 * end of an mbox entry.  Also the Delivered-To: loop check.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "local.h"

/* local_message_from_line - "From sender Thu Nov 24 18:22:48 1986" */
static void local_message_from_line(const struct local_message *msg, buf_t *out)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;

    localtime_r(&now, &tm);
    if (strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm) == 0)
        date[0] = 0;
    buf_printf(out, "From %s %s\n", msg->sender[0] ? msg->sender : "MAILER-DAEMON", date);
}

/* local_message_format - see local.h */
void local_message_format(const struct local_message *msg, const char *delivered_to, int flags,
                          buf_t *out)
{
    const char *p = msg->content, *end = msg->content + msg->len;

    if (flags & MSG_FROM_LINE)
        local_message_from_line(msg, out);
    buf_printf(out, "Return-Path: <%s>\n", msg->sender);
    if (delivered_to && *delivered_to)
        buf_printf(out, "Delivered-To: %s\n", delivered_to);
    buf_reserve(out, msg->len + 2);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        size_t n = (size_t)(stop - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if ((flags & MSG_QUOTE_FROM) && n >= 5 && memcmp(p, "From ", 5) == 0)
            buf_putc(out, '>');
        buf_append(out, p, n);
        buf_putc(out, '\n');
        p = nl ? nl + 1 : end;
    }
    if (flags & MSG_BLANK_END)
        buf_putc(out, '\n');
}

/* local_header_value_is - does the header value (trimmed, <> optional)
 * equal addr, case-insensitively? */
static int local_header_value_is(const char *v, size_t len, const char *addr)
{
    size_t alen = strlen(addr);

    while (len > 0 && isspace((unsigned char)*v)) {
        v++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)v[len - 1]))
        len--;
    if (len >= 2 && v[0] == '<' && v[len - 1] == '>') {
        v++;
        len -= 2;
    }
    return len == alen && strncasecmp(v, addr, len) == 0;
}

/* local_message_has_delivered_to - see local.h */
int local_message_has_delivered_to(const struct local_message *msg, const char *addr)
{
    const char *p = msg->content, *end = msg->content + msg->len;
    static const char name[] = "Delivered-To:";
    size_t nlen = sizeof(name) - 1;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        size_t n = (size_t)(stop - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n == 0)
            break; /* end of the header section */
        if (n > nlen && strncasecmp(p, name, nlen) == 0 &&
            local_header_value_is(p + nlen, n - nlen, addr))
            return 1;
        p = nl ? nl + 1 : end;
    }
    return 0;
}
