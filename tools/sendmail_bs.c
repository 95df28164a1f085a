/*
 * sendmail_bs - sendmail -bs: an SMTP dialogue on stdin/stdout (inetd,
 * swaks --pipe).  A small server with smtpd's reply texts: EHLO/HELO, MAIL,
 * RCPT, DATA, RSET, NOOP, HELP, VRFY (252), QUIT.  Each message is submitted
 * through terndrop like any local submission, so it is queued even while the
 * daemon is stopped; the envelope sender given in MAIL counts as -f.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "config.h"
#include "sendmail.h"
#include "tern_build.h"

#define BS_LINE_MAX 2048
#define BS_MAX_ERRORS 20

struct bs_session {
    const struct config *cfg;
    const char *config_dir;
    const struct submission *defaults;
    const char *host;
    struct submission msg;
    int have_helo, have_mail, errors;
};

static void bs_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* bs_reply - one reply line, CRLF, flushed */
static void bs_reply(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputs("\r\n", stdout);
    fflush(stdout);
}

/* bs_reset - forget the current transaction */
static void bs_reset(struct bs_session *s)
{
    submission_free(&s->msg);
    submission_init(&s->msg);
    buf_set(&s->msg.full_name, buf_cstr(&s->defaults->full_name));
    s->have_mail = 0;
}

/* bs_param - the value of NAME= in an ESMTP parameter string, or NULL */
static char *bs_param(const char *params, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = params; p && *p;) {
        while (*p == ' ')
            p++;
        if (strncasecmp(p, name, n) == 0 && p[n] == '=')
            return xstrndup(p + n + 1, strcspn(p + n + 1, " "));
        p += strcspn(p, " ");
    }
    return NULL;
}

static void bs_cmd_ehlo(struct bs_session *s, const char *arg, int extended)
{
    const char *user = buf_cstr(&s->defaults->sender);
    long long limit = config_size(s->cfg, "message_size_limit");

    if (*arg == 0) {
        bs_reply("501 5.0.0 %s requires domain address", extended ? "EHLO" : "HELO");
        return;
    }
    bs_reset(s);
    s->have_helo = 1;
    if (!extended) {
        bs_reply("250 %s Hello %s@localhost, pleased to meet you", s->host, user);
        return;
    }
    bs_reply("250-%s Hello %s@localhost, pleased to meet you", s->host, user);
    bs_reply("250-ENHANCEDSTATUSCODES");
    bs_reply("250-PIPELINING");
    bs_reply("250-8BITMIME");
    if (limit > 0)
        bs_reply("250-SIZE %lld", limit);
    else
        bs_reply("250-SIZE");
    bs_reply("250-DSN");
    bs_reply("250 HELP");
}

/* bs_cmd_mail - MAIL FROM:<addr> [BODY= RET= ENVID= SIZE=] */
static void bs_cmd_mail(struct bs_session *s, const char *arg)
{
    buf_t addr = BUF_INIT;
    const char *params, *err;
    char *v;

    if (s->have_mail) {
        bs_reply("503 5.5.0 Sender already specified");
    } else if (strncasecmp(arg, "FROM:", 5) != 0 ||
               addr_parse_path(arg + 5, &addr, &params, &err) < 0) {
        bs_reply("501 5.5.2 Syntax error in parameters scanning \"FROM\"");
        s->errors++;
    } else {
        buf_set(&s->msg.sender, buf_cstr(&addr));
        s->msg.sender_set = 1;
        if ((v = bs_param(params, "BODY")) != NULL)
            buf_set(&s->msg.body_type, strcasecmp(v, "8BITMIME") == 0 ? "8BITMIME" : "7BIT");
        free(v);
        if ((v = bs_param(params, "RET")) != NULL)
            buf_set(&s->msg.ret, strcasecmp(v, "FULL") == 0 ? "FULL" : "HDRS");
        free(v);
        if ((v = bs_param(params, "ENVID")) != NULL && strlen(v) <= SENDMAIL_MAX_ENVID)
            buf_set(&s->msg.envid, v);
        free(v);
        s->have_mail = 1;
        bs_reply("250 2.1.0 <%s>... Sender ok", buf_cstr(&addr));
    }
    buf_free(&addr);
}

/* bs_cmd_rcpt - RCPT TO:<addr> [NOTIFY=] */
static void bs_cmd_rcpt(struct bs_session *s, const char *arg)
{
    buf_t addr = BUF_INIT;
    const char *params, *err;
    char *notify;

    if (!s->have_mail) {
        bs_reply("503 5.0.0 Need MAIL before RCPT");
    } else if (strncasecmp(arg, "TO:", 3) != 0 ||
               addr_parse_path(arg + 3, &addr, &params, &err) < 0 || addr.len == 0 ||
               !sendmail_addr_valid(buf_cstr(&addr))) {
        bs_reply("501 5.5.2 Syntax error in parameters scanning \"TO\"");
        s->errors++;
    } else if (submission_add_rcpt(&s->msg, buf_cstr(&addr)) < 0) {
        bs_reply("452 4.5.3 Too many recipients");
    } else {
        if ((notify = bs_param(params, "NOTIFY")) != NULL && strlen(notify) < 64)
            buf_set(&s->msg.notify, notify);
        free(notify);
        bs_reply("250 2.1.5 <%s>... Recipient ok", buf_cstr(&addr));
    }
    buf_free(&addr);
}

/* bs_read_data - message lines until "." (dot-unstuffed); -1 at EOF */
static int bs_read_data(struct bs_session *s)
{
    long long limit = config_size(s->cfg, "message_size_limit");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = -1, too_big = 0;

    while ((n = getline(&line, &cap, stdin)) > 0) {
        size_t len = (size_t)n;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (len == 1 && line[0] == '.') {
            rc = too_big ? 1 : 0;
            break;
        }
        const char *p = line[0] == '.' ? line + 1 : line;
        size_t plen = line[0] == '.' ? len - 1 : len;
        if (limit > 0 && (long long)(s->msg.content.len + plen + 2) > limit)
            too_big = 1;
        if (!too_big) {
            buf_append(&s->msg.content, p, plen);
            buf_puts(&s->msg.content, "\r\n");
        }
    }
    free(line);
    return rc;
}

/* bs_cmd_data - DATA: read, submit, answer with the queue ID */
static int bs_cmd_data(struct bs_session *s)
{
    buf_t qid = BUF_INIT;
    int rc;

    if (!s->have_mail) {
        bs_reply("503 5.0.0 Need MAIL command");
        return 0;
    }
    if (s->msg.rcpt_count == 0) {
        bs_reply("503 5.0.0 Need RCPT (recipient)");
        return 0;
    }
    bs_reply("354 Enter mail, end with \".\" on a line by itself");
    rc = bs_read_data(s);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        bs_reply("552 5.2.3 Message exceeds maximum fixed size (%lld)",
                 config_size(s->cfg, "message_size_limit"));
    } else if (sendmail_submit(&s->msg, s->config_dir, &qid) == 0) {
        bs_reply("250 2.0.0 Ok: queued as %s", buf_cstr(&qid));
    } else {
        bs_reply("451 4.3.0 Error: queue file write error");
    }
    buf_free(&qid);
    bs_reset(s);
    return 0;
}

/* bs_dispatch - one command line; 1 ends the session */
static int bs_dispatch(struct bs_session *s, char *line)
{
    char *arg = line + strcspn(line, " ");

    if (*arg)
        *arg++ = 0;
    if (strcasecmp(line, "EHLO") == 0 || strcasecmp(line, "HELO") == 0)
        bs_cmd_ehlo(s, arg, strcasecmp(line, "EHLO") == 0);
    else if (strcasecmp(line, "MAIL") == 0)
        bs_cmd_mail(s, arg);
    else if (strcasecmp(line, "RCPT") == 0)
        bs_cmd_rcpt(s, arg);
    else if (strcasecmp(line, "DATA") == 0)
        return bs_cmd_data(s) < 0;
    else if (strcasecmp(line, "RSET") == 0) {
        bs_reset(s);
        bs_reply("250 2.0.0 Reset state");
    } else if (strcasecmp(line, "NOOP") == 0)
        bs_reply("250 2.0.0 OK");
    else if (strcasecmp(line, "VRFY") == 0)
        bs_reply("252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)");
    else if (strcasecmp(line, "HELP") == 0)
        bs_reply("214 2.0.0 This is tern %s; commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT",
                 TERN_VERSION);
    else if (strcasecmp(line, "QUIT") == 0) {
        bs_reply("221 2.0.0 %s closing connection", s->host);
        return 1;
    } else {
        bs_reply("500 5.5.1 Command unrecognized: \"%.100s\"", line);
        s->errors++;
    }
    if (s->errors >= BS_MAX_ERRORS) {
        bs_reply("421 4.7.0 %s Error: too many errors", s->host);
        return 1;
    }
    return 0;
}

int sendmail_smtp_session(const struct config *cfg, const char *config_dir,
                          const struct submission *defaults)
{
    struct bs_session s;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    memset(&s, 0, sizeof(s));
    s.cfg = cfg;
    s.config_dir = config_dir;
    s.defaults = defaults;
    s.host = config_str(cfg, "myhostname");
    submission_init(&s.msg);
    bs_reset(&s);
    bs_reply("220 %s", config_str(cfg, "smtpd_banner"));
    while ((n = getline(&line, &cap, stdin)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (n > BS_LINE_MAX) {
            bs_reply("500 5.5.2 Line too long");
            continue;
        }
        if (bs_dispatch(&s, line))
            break;
    }
    free(line);
    submission_free(&s.msg);
    return 0;
}
