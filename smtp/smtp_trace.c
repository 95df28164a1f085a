/*
 * smtp_trace - the dialogue of a traced delivery (sendmail -q -v; see
 * lib/delivery.h, "trace=yes"): the client's commands as ">>> COMMAND",
 * the server's lines as they came (MAIL and RCPT in sendmail's spelling,
 * "MAIL From:").  Nothing is recorded for a request
 * without trace.  SASL data never is: "AUTH PLAIN <hidden>", and every
 * line sent while authenticating is "<hidden>".
 */
#include <stdio.h>
#include <string.h>

#include "delivery.h"
#include "smtp.h"

/* trace_verb - ">>> MAIL From:" / ">>> RCPT To:": sendmail's spelling,
 * which is what admins grep -v output for (the case of a verb is not
 * significant in SMTP; on the wire tern writes MAIL FROM: and RCPT TO:) */
static int trace_verb(struct delivery_request *req, const char *line, size_t len)
{
    static const struct {
        const char *wire, *shown;
    } verbs[] = {{"MAIL FROM:", ">>> MAIL From:"}, {"RCPT TO:", ">>> RCPT To:"}};

    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        size_t n = strlen(verbs[i].wire);
        if (len >= n && memcmp(line, verbs[i].wire, n) == 0) {
            delivery_trace(req, verbs[i].shown, line + n, len - n);
            return 1;
        }
    }
    return 0;
}

/* trace_command - one command line (without CRLF) */
static void trace_command(struct delivery_request *req, int authenticating, const char *line,
                          size_t len)
{
    char head[64];

    if (!authenticating) {
        if (!trace_verb(req, line, len))
            delivery_trace(req, ">>> ", line, len);
        return;
    }
    if (len > 5 && strncasecmp(line, "AUTH ", 5) == 0) {
        size_t mech = strcspn(line + 5, " ");
        int n = snprintf(head, sizeof(head), "%.*s%s", (int)(5 + (mech < 40 ? mech : 40)), line,
                         5 + mech < len ? " <hidden>" : "");
        delivery_trace(req, ">>> ", head, (size_t)n);
        return;
    }
    delivery_trace(req, ">>> ", "<hidden>", 8);
}

void smtp_trace_commands(struct delivery_request *req, int authenticating, const char *data,
                         size_t len)
{
    if (!req->trace)
        return;
    while (len > 0) {
        const char *eol = memchr(data, '\n', len);
        size_t line = eol ? (size_t)(eol - data) + 1 : len;
        size_t text = line - (eol != NULL) - (eol != NULL && line >= 2 && data[line - 2] == '\r');

        trace_command(req, authenticating, data, text);
        data += line;
        len -= line;
    }
}

void smtp_trace_connecting(struct delivery_request *req, const char *peer, int port, int lmtp)
{
    char line[512];
    int n;

    if (!req->trace)
        return;
    if (port > 0)
        n = snprintf(line, sizeof(line), "Connecting to %s port %d via %s...", peer, port,
                     lmtp ? "lmtp" : "esmtp");
    else
        n = snprintf(line, sizeof(line), "Connecting to %s via lmtp...", peer);
    if (n > 0)
        delivery_trace(req, "", line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void smtp_trace_closing(struct delivery_request *req, const char *peer)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "Closing connection to %s", peer);

    if (n > 0)
        delivery_trace(req, "", line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}
