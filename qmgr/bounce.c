/*
 * bounce - composing delivery status notifications (docs/bounces.md).
 *
 * A notice is about the recipients of one message that are marked
 * in_notice.  With bounce_format = mime (the default) it is an RFC 3464
 * multipart/report; report-type=delivery-status: a human text/plain part,
 * a message/delivery-status part, and the original headers
 * (text/rfc822-headers) or, for a failure with RET=FULL, the whole original
 * (message/rfc822).  With bounce_format = plain it is one text/plain body in
 * sendmail's layout.  The human texts and subjects come from built-in
 * templates or bounce_template_file.  Nothing from the queue file reaches a
 * header unsanitized: control characters become spaces.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "safefile.h"
#include "timeutil.h"
#include "qmgr.h"
#include "smtputf8.h"

/* longest original returned whole; a bigger one is returned as headers */
#define BOUNCE_FULL_MAX (8 * 1024 * 1024)

static const char *const template_names[] = {"failure_template", "success_template",
                                             "delay_template"};

static const char *const builtin_subject[] = {"Undelivered Mail Returned to Sender",
                                              "Successful Mail Delivery Report",
                                              "Delayed Mail (still being retried)"};

static const char *const builtin_text[] = {
    /* failure */
    "This is the mail system at host $myhostname.\n"
    "\n"
    "I'm sorry to have to inform you that your message could not\n"
    "be delivered to one or more recipients. It's attached below.\n"
    "\n"
    "For further assistance, please send mail to postmaster.\n"
    "\n"
    "If you do so, please include this problem report. You can\n"
    "delete your own text from the attached returned message.\n"
    "\n"
    "                   The mail system\n",
    /* success */
    "This is the mail system at host $myhostname.\n"
    "\n"
    "Your message was successfully delivered to the destination(s)\n"
    "listed below. If the message was delivered to mailbox you will\n"
    "receive no further notifications. Otherwise you may still receive\n"
    "notifications of mail delivery errors from other systems.\n"
    "\n"
    "                   The mail system\n",
    /* delay */
    "This is the mail system at host $myhostname.\n"
    "\n"
    "####################################################################\n"
    "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n"
    "####################################################################\n"
    "\n"
    "Your message could not be delivered for $delay.\n"
    "It will be retried until it is $maximal_queue_lifetime old.\n"
    "\n"
    "For further assistance, please send mail to postmaster.\n"
    "\n"
    "                   The mail system\n",
};

/* plain (sendmail) subjects and section titles */
static const char *const plain_subject[] = {"Returned mail: see transcript for details",
                                            "Return receipt",
                                            "Warning: could not send message for past $delay"};
static const char *const plain_title[] = {
    "   ----- The following addresses had permanent fatal errors -----",
    "   ----- The following addresses had successful delivery notifications -----",
    "   ----- The following addresses had transient non-fatal errors -----"};

/* template_set - replace one template (subject may be NULL: keep) */
static void template_set(struct qmgr_template *t, const char *subject, const char *text)
{
    if (subject != NULL) {
        free(t->subject);
        t->subject = xstrdup(subject);
    }
    free(t->text);
    t->text = xstrdup(text);
}

/* template_index - which template a "NAME = <<EOF" line opens, or -1 */
static int template_index(const char *line)
{
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(template_names[k]);
        const char *p = line + n;

        if (strncmp(line, template_names[k], n) != 0)
            continue;
        p += strspn(p, " \t");
        if (*p++ != '=')
            return -1;
        p += strspn(p, " \t");
        return strncmp(p, "<<EOF", 5) == 0 ? k : -1;
    }
    return -1;
}

/* template_parse_block - "Subject: x" header lines, an empty line, the text */
static void template_parse_block(struct qmgr_template *t, const char *block)
{
    buf_t subject = BUF_INIT;
    const char *p = block, *text = block;
    int have_subject = 0;

    while (*p && *p != '\n') {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);

        if (memchr(p, ':', len) == NULL)
            break; /* no header section */
        if (len > 8 && strncasecmp(p, "Subject:", 8) == 0) {
            buf_reset(&subject);
            buf_append(&subject, p + 8 + strspn(p + 8, " \t"), len - 8 - strspn(p + 8, " \t"));
            have_subject = 1;
        }
        p = eol ? eol + 1 : p + len;
        text = *p == '\n' ? p + 1 : p;
    }
    template_set(t, have_subject ? subject.data : NULL, text);
    buf_free(&subject);
}

/* template_parse - every NAME = <<EOF ... EOF block of the file */
static void template_parse(struct qmgr *qm, const char *path, const char *data)
{
    buf_t block = BUF_INIT;
    const char *p = data;
    int current = -1;

    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        buf_t line = BUF_INIT;

        buf_append(&line, p, len);
        if (current < 0 && len > 0 && line.data[0] != '#') {
            current = template_index(line.data);
            if (current < 0)
                log_warn("%s: unknown line \"%.60s\" ignored", path, line.data);
            buf_reset(&block);
        } else if (current >= 0 && strcmp(line.data, "EOF") == 0) {
            template_parse_block(&qm->templates[current], buf_cstr(&block));
            current = -1;
        } else if (current >= 0) {
            buf_append(&block, p, len);
            buf_putc(&block, '\n');
        }
        buf_free(&line);
        p = eol ? eol + 1 : p + len;
    }
    if (current >= 0)
        log_warn("%s: %s has no EOF line; ignored", path, template_names[current]);
    buf_free(&block);
}

/* template_read_file - the whole file, bounded; -1 on error */
static int template_read_file(const char *path, buf_t *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    char chunk[4096];
    ssize_t n;

    if (fd < 0)
        return -1;
    while ((n = read(fd, chunk, sizeof(chunk))) > 0 && out->len < QMGR_TEMPLATE_MAX)
        buf_append(out, chunk, (size_t)n);
    close(fd);
    if (n < 0)
        return -1;
    if (out->len >= QMGR_TEMPLATE_MAX) {
        errno = EFBIG;
        return -1;
    }
    return 0;
}

/* qmgr_bounce_templates_load - built-in texts, replaced from the file when set */
void qmgr_bounce_templates_load(struct qmgr *qm, const char *path)
{
    buf_t data = BUF_INIT;

    for (int k = 0; k < 3; k++)
        template_set(&qm->templates[k], builtin_subject[k], builtin_text[k]);
    if (path == NULL || *path == 0)
        return;
    if (template_read_file(path, &data) < 0)
        log_error("cannot read bounce_template_file %s: %m; using the built-in texts", path);
    else if (memchr(data.data, 0, data.len) != NULL)
        log_error("bounce_template_file %s holds a NUL byte; using the built-in texts", path);
    else
        template_parse(qm, path, data.data);
    buf_free(&data);
}

/* put_clean - append s with control characters as spaces (header-safe) */
static void put_clean(buf_t *out, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        buf_putc(out, c < 0x20 || c == 0x7f ? ' ' : c);
    }
}

/* put_line - append a header or text line built from fmt, then CRLF */
static void put_line(buf_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_line(buf_t *out, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    buf_vprintf(out, fmt, ap);
    va_end(ap);
    buf_puts(out, "\r\n");
}

/* put_expanded - text with $myhostname, $delay, $maximal_queue_lifetime
 * expanded and LF turned into CRLF */
static void put_expanded(const struct qmgr *qm, const struct qmgr_message *m, const char *text,
                         buf_t *out)
{
    static const char *const names[] = {"$myhostname", "$maximal_queue_lifetime", "$delay"};
    const char *p;

    for (p = text; *p; p++) {
        int k;

        for (k = 0; k < 3 && strncmp(p, names[k], strlen(names[k])) != 0; k++)
            ;
        if (k == 0)
            buf_puts(out, qm->myhostname);
        else if (k == 1)
            buf_printf(out, "%lld hours", qm->lifetime / 3600);
        else if (k == 2)
            buf_printf(out, "%lld hours", ((long long)time(NULL) - m->qf.arrival_sec) / 3600);
        if (k < 3) {
            p += strlen(names[k]) - 1;
        } else if (*p == '\n') {
            buf_puts(out, "\r\n");
        } else if (*p != '\r') {
            buf_putc(out, *p);
        }
    }
}

/* reason_remote_host - the H of "host H[A] said: ..." into out; 0 found */
static int reason_remote_host(const char *reason, buf_t *out)
{
    const char *bracket;

    if (reason == NULL || strncmp(reason, "host ", 5) != 0 || strstr(reason, " said: ") == NULL)
        return -1;
    bracket = strchr(reason + 5, '[');
    if (bracket == NULL || bracket == reason + 5)
        return -1;
    buf_reset(out);
    buf_append(out, reason + 5, (size_t)(bracket - reason - 5));
    return strpbrk(out->data, " \t") == NULL ? 0 : -1;
}

/* reason_diagnostic - "smtp; 550 ..." from a remote reply, else "X-tern; reason" */
static void reason_diagnostic(const char *reason, buf_t *out)
{
    const char *said = reason ? strstr(reason, " said: ") : NULL;
    const char *tail;

    buf_reset(out);
    if (said != NULL && strncmp(reason, "host ", 5) == 0) {
        said += 7;
        tail = strstr(said, " (in reply to ");
        buf_puts(out, "smtp; ");
        buf_append(out, said, tail ? (size_t)(tail - said) : strlen(said));
    } else {
        buf_puts(out, "X-tern; ");
        buf_puts(out, reason && *reason ? reason : "no reason recorded (qmgr restarted)");
    }
}

/* action_word - the Action: of recipient i */
static const char *action_word(const struct qmgr_message *m, size_t i, enum qmgr_notice_kind kind)
{
    if (kind == QMGR_NOTICE_FAILURE)
        return "failed";
    if (kind == QMGR_NOTICE_DELAY)
        return "delayed";
    return m->rcpt[i].relayed ? "relayed" : "delivered";
}

/* status_code - the Status: of recipient i (class fixed by kind) */
static void status_code(const struct qmgr_message *m, size_t i, enum qmgr_notice_kind kind,
                        buf_t *out)
{
    const char *dsn = m->rcpt[i].dsn;
    static const char fallback[][6] = {"5.0.0", "2.0.0", "4.0.0"};

    buf_reset(out);
    if (dsn[0] && (dsn[0] == fallback[kind][0] || (kind == QMGR_NOTICE_FAILURE && dsn[0] == '4')))
        buf_puts(out, dsn); /* a failure after expiry keeps its 4.x.x */
    else
        buf_puts(out, fallback[kind]);
}

/* put_typed_address - "rfc822; addr", or RFC 6533's "utf-8; addr" for an
 * address with UTF-8 (then the part is message/global-delivery-status) */
static void put_typed_address(buf_t *out, const char *addr)
{
    buf_puts(out, smtputf8_is_ascii(addr, strlen(addr)) ? "rfc822; " : "utf-8; ");
    put_clean(out, addr);
}

/* notice_is_global - RFC 6533: a message that came with SMTPUTF8 or has a
 * UTF-8 envelope address gets the "global" types: UTF-8 text, a
 * message/global-delivery-status, the original as message/global */
static int notice_is_global(const struct qmgr_message *m)
{
    const char *sender = m->qf.sender ? m->qf.sender : "";

    if (qmgr_message_smtputf8(m) || !smtputf8_is_ascii(sender, strlen(sender)))
        return 1;
    for (size_t i = 0; i < m->qf.rcpt_count; i++) {
        const char *a = m->qf.rcpts[i].address;
        if (!smtputf8_is_ascii(a, strlen(a)))
            return 1;
    }
    return 0;
}

/* put_rcpt_fields - the per-recipient block of message/delivery-status */
static void put_rcpt_fields(const struct qmgr_message *m, size_t i, enum qmgr_notice_kind kind,
                            buf_t *out)
{
    const struct qfile_rcpt *r = &m->qf.rcpts[i];
    const char *reason = m->rcpt[i].reason;
    buf_t tmp = BUF_INIT;

    buf_puts(out, "\r\nFinal-Recipient: ");
    put_typed_address(out, r->address);
    if (r->orcpt && strchr(r->orcpt, ';') != NULL) {
        buf_puts(out, "\r\nOriginal-Recipient: ");
        buf_append(out, r->orcpt, (size_t)(strchr(r->orcpt, ';') - r->orcpt));
        buf_puts(out, "; ");
        put_clean(out, strchr(r->orcpt, ';') + 1);
    }
    status_code(m, i, kind, &tmp);
    buf_printf(out, "\r\nAction: %s\r\nStatus: %s", action_word(m, i, kind), tmp.data);
    if (reason_remote_host(reason, &tmp) == 0) {
        buf_puts(out, "\r\nRemote-MTA: dns; ");
        put_clean(out, tmp.data);
    }
    if (kind != QMGR_NOTICE_SUCCESS || (reason && *reason)) {
        reason_diagnostic(reason, &tmp);
        buf_puts(out, "\r\nDiagnostic-Code: ");
        put_clean(out, tmp.data);
    }
    buf_puts(out, "\r\n");
    buf_free(&tmp);
}

/* put_delivery_status - the message/delivery-status body */
static void put_delivery_status(const struct qmgr *qm, const struct qmgr_message *m,
                                enum qmgr_notice_kind kind, buf_t *out)
{
    const char *envid = qfile_msg_attr(&m->qf, "envid");

    buf_puts(out, "Reporting-MTA: dns; ");
    put_clean(out, qm->myhostname);
    buf_puts(out, "\r\nX-Tern-Queue-ID: ");
    buf_puts(out, m->id);
    buf_puts(out, "\r\nX-Tern-Sender: ");
    put_typed_address(out, m->qf.sender ? m->qf.sender : "");
    if (envid && *envid) {
        buf_puts(out, "\r\nOriginal-Envelope-Id: ");
        put_clean(out, envid);
    }
    buf_puts(out, "\r\nArrival-Date: ");
    time_rfc2822((time_t)m->qf.arrival_sec, out);
    buf_puts(out, "\r\n");
    for (size_t i = 0; i < m->qf.rcpt_count; i++)
        if (m->rcpt[i].in_notice)
            put_rcpt_fields(m, i, kind, out);
}

/* original_read - the original content (headers only when headers_only) */
static int original_read(const struct qmgr_message *m, int headers_only, buf_t *out)
{
    char *end;

    buf_reset(out);
    int rc = qmgr_message_read_content(m, out);
    if (rc == 0 && headers_only && (end = strstr(out->data, "\r\n\r\n")) != NULL)
        buf_truncate(out, (size_t)(end - out->data) + 2);
    if (rc == 0 && (out->len < 2 || memcmp(out->data + out->len - 2, "\r\n", 2) != 0))
        buf_puts(out, "\r\n");
    return rc;
}

/* want_full - return the whole original? */
static int want_full(const struct qmgr_message *m, enum qmgr_notice_kind kind, int plain)
{
    const char *ret = qfile_msg_attr(&m->qf, "ret");

    if (kind != QMGR_NOTICE_FAILURE || m->qf.content_length > BOUNCE_FULL_MAX)
        return 0;
    if (ret != NULL && strcmp(ret, "FULL") == 0)
        return 1;
    return plain && (ret == NULL || strcmp(ret, "HDRS") != 0);
}

/* put_headers - the notice's own header section */
static void put_headers(const struct qmgr *qm, const struct qmgr_message *m, const char *to,
                        const char *subject, const char *auto_what, buf_t *out)
{
    static unsigned long seq;
    time_t now = time(NULL);

    buf_puts(out, "From: Mail Delivery Subsystem <MAILER-DAEMON@");
    put_clean(out, qm->myhostname);
    buf_puts(out, ">\r\nTo: <");
    put_clean(out, to);
    buf_puts(out, ">\r\nSubject: ");
    put_expanded(qm, m, subject, out);
    put_line(out, "\r\nAuto-Submitted: auto-generated (%s)", auto_what);
    buf_puts(out, "Date: ");
    time_rfc2822(now, out);
    buf_printf(out, "\r\nMessage-ID: <%lld.%lu.%s@", (long long)now, ++seq, m->id);
    put_clean(out, qm->myhostname);
    buf_puts(out, ">\r\nMIME-Version: 1.0\r\n");
}

/* compose_plain - sendmail's one-part layout */
static void compose_plain(struct qmgr *qm, const struct qmgr_message *m, enum qmgr_notice_kind kind,
                          const buf_t *original, int full, buf_t *out)
{
    const char *client = qfile_msg_attr(&m->qf, "client_name");
    const char *addr = qfile_msg_attr(&m->qf, "client_addr");

    buf_puts(out, "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
    buf_puts(out, "The original message was received at ");
    time_rfc2822((time_t)m->qf.arrival_sec, out);
    buf_puts(out, "\r\nfrom ");
    put_clean(out, client && *client ? client : "localhost");
    buf_puts(out, " [");
    put_clean(out, addr && *addr ? addr : "127.0.0.1");
    put_line(out, "]\r\n\r\n%s", plain_title[kind]);
    for (size_t i = 0; i < m->qf.rcpt_count; i++) {
        if (!m->rcpt[i].in_notice)
            continue;
        put_clean(out, m->qf.rcpts[i].address);
        buf_puts(out, "\r\n    (");
        if (kind == QMGR_NOTICE_SUCCESS)
            buf_puts(out, m->rcpt[i].relayed ? "relayed to non-DSN-aware mailer"
                                             : "successfully delivered to mailbox");
        else {
            buf_puts(out, "reason: ");
            put_clean(out, m->rcpt[i].reason ? m->rcpt[i].reason : "");
        }
        buf_puts(out, ")\r\n");
    }
    put_line(out, "\r\n   ----- Transcript of session follows -----");
    for (size_t i = 0; i < m->qf.rcpt_count; i++) {
        if (!m->rcpt[i].in_notice || m->rcpt[i].reason == NULL)
            continue;
        put_clean(out, m->rcpt[i].dsn);
        buf_puts(out, " <");
        put_clean(out, m->qf.rcpts[i].address);
        buf_puts(out, ">... ");
        put_clean(out, m->rcpt[i].reason);
        buf_puts(out, "\r\n");
    }
    put_line(out, "\r\n   ----- %s follows -----", full ? "Original message" : "Message header");
    buf_append(out, original->data, original->len);
}

/* compose_mime - the RFC 3464 multipart/report */
static void compose_mime(struct qmgr *qm, const struct qmgr_message *m, enum qmgr_notice_kind kind,
                         const buf_t *original, int full, buf_t *out)
{
    buf_t boundary = BUF_INIT;
    int global = notice_is_global(m);
    const char *original_type = full ? "message/rfc822" : "text/rfc822-headers";

    if (global)
        original_type = full ? "message/global" : "message/global-headers";
    buf_printf(&boundary, "%s.%lld/", m->id, (long long)time(NULL));
    put_clean(&boundary, qm->myhostname);
    put_line(out,
             "Content-Type: multipart/report; report-type=%sdelivery-status;\r\n"
             "\tboundary=\"%s\"",
             global ? "global-" : "", boundary.data);
    put_line(out, "\r\nThis is a MIME-encapsulated message.\r\n");
    put_line(out,
             "--%s\r\nContent-Description: Notification\r\n"
             "Content-Type: text/plain; charset=%s\r\n",
             boundary.data, global ? "utf-8" : "us-ascii");
    put_expanded(qm, m, qm->templates[kind].text, out);
    buf_puts(out, "\r\n");
    for (size_t i = 0; i < m->qf.rcpt_count; i++) {
        if (!m->rcpt[i].in_notice)
            continue;
        buf_puts(out, "<");
        put_clean(out, m->qf.rcpts[i].address);
        buf_puts(out, ">: ");
        put_clean(out, m->rcpt[i].reason && *m->rcpt[i].reason ? m->rcpt[i].reason
                                                               : "no reason recorded");
        buf_puts(out, "\r\n");
    }
    put_line(out,
             "\r\n--%s\r\nContent-Description: Delivery report\r\n"
             "Content-Type: message/%sdelivery-status\r\n",
             boundary.data, global ? "global-" : "");
    put_delivery_status(qm, m, kind, out);
    put_line(out, "\r\n--%s\r\nContent-Description: %s\r\nContent-Type: %s\r\n", boundary.data,
             full ? "Undelivered Message" : "Message Headers", original_type);
    buf_append(out, original->data, original->len);
    put_line(out, "\r\n--%s--", boundary.data);
    buf_free(&boundary);
}

/* qmgr_bounce_compose - the content of a notice of kind about the recipients
 * of m marked in_notice, addressed to to; 0 ok, -1 content unreadable */
int qmgr_bounce_compose(struct qmgr *qm, const struct qmgr_message *m, enum qmgr_notice_kind kind,
                        int postmaster, const char *to, buf_t *out)
{
    static const char *const auto_what[] = {"failure", "success", "delay"};
    int plain = qm->bounce_plain;
    /* nobodyreturn; a REQUIRETLS message's body never goes back in a
     * notice (RFC 8689 5: the way back may not be as safe) */
    int full = !qm->no_body_return && !qmgr_message_requiretls(m) && want_full(m, kind, plain);
    buf_t original = BUF_INIT;
    const char *subject = plain ? plain_subject[kind] : qm->templates[kind].subject;

    if (original_read(m, !full, &original) < 0) {
        log_error("%s: cannot read the original message for a notice: %m", m->id);
        buf_free(&original);
        return -1;
    }
    buf_reset(out);
    if (postmaster)
        subject = "Postmaster Copy: Undelivered Mail";
    put_headers(qm, m, to, subject, auto_what[kind], out);
    if (plain)
        compose_plain(qm, m, kind, &original, full, out);
    else
        compose_mime(qm, m, kind, &original, full, out);
    buf_free(&original);
    return 0;
}
