/*
 * message - one message inside cleanup: queue file, headers, content.
 *
 * The header section is collected until its end is known (an empty line, a
 * line that is not a header, or the end of the data); then the Received:
 * header goes first, the original headers follow unchanged, Message-ID: and
 * Date: are added when missing, and the body is copied byte for byte.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "addr.h"
#include "cleanup.h"
#include "hdraddr.h"
#include "log.h"
#include "netaddr.h"
#include "route.h"
#include "safefile.h"
#include "table_proxy.h"
#include "timeutil.h"
#include "tern_build.h"

#define CLEANUP_MAX_CREATE_TRIES 10

void cleanup_msg_fail(struct cleanup_msg *m, enum cleanup_status st, const char *code,
                      const char *dsn, const char *text)
{
    if (m->status != CLEANUP_OK)
        return; /* the first failure is the one the client hears about */
    m->status = st;
    buf_set(&m->code, code);
    buf_set(&m->dsn, dsn);
    buf_set(&m->text, text);
}

/* cleanup_fail_errno - a write error: no space is 452 4.3.1, else 451 4.3.0 */
static void cleanup_fail_errno(struct cleanup_msg *m, int err)
{
    if (err == ENOSPC || err == EDQUOT)
        cleanup_msg_fail(m, CLEANUP_TEMPFAIL, "452", "4.3.1", "Insufficient system storage");
    else
        cleanup_msg_fail(m, CLEANUP_TEMPFAIL, "451", "4.3.0", "Error: queue file write error");
    log_warn("%s: queue file write error: %s", m->queue_id, strerror(err));
}

/* cleanup_id_in_use - a queue file with this ID exists anywhere */
static int cleanup_id_in_use(const char *id)
{
    char path[64];
    const char *dirs[] = {"incoming", "active", "hold", "corrupt", NULL};

    for (int i = 0; dirs[i]; i++) {
        snprintf(path, sizeof(path), "%s/%s", dirs[i], id);
        if (access(path, F_OK) == 0)
            return 1;
    }
    snprintf(path, sizeof(path), "deferred/%c/%s", qid_hash_dir(id), id);
    return access(path, F_OK) == 0;
}

/* cleanup_create_file - make incoming/.tmp.ID with a fresh ID; a valid
 * unused queue_id hint (pickup: the maildrop ID) is tried first */
static int cleanup_create_file(struct cleanup_msg *m, const char *hint)
{
    for (int i = 0; i < CLEANUP_MAX_CREATE_TRIES; i++) {
        if (i == 0 && hint && qid_valid(hint) && !cleanup_id_in_use(hint))
            snprintf(m->queue_id, sizeof(m->queue_id), "%s", hint);
        else
            qid_new(m->queue_id);
        buf_reset(&m->tmp_path);
        buf_printf(&m->tmp_path, "incoming/.tmp.%s", m->queue_id);
        m->fd = safe_create(buf_cstr(&m->tmp_path), O_RDWR, 0600);
        if (m->fd >= 0) {
            buf_reset(&m->final_path);
            buf_printf(&m->final_path, "incoming/%s", m->queue_id);
            if (access(buf_cstr(&m->final_path), F_OK) == 0) { /* ID in use */
                close(m->fd);
                unlink(buf_cstr(&m->tmp_path));
                continue;
            }
            if (hint && qid_valid(hint) && strcmp(hint, m->queue_id) != 0)
                log_info("%s: the queue ID %.*s asked for (milters' i macro, a maildrop "
                         "name) is taken; the message is %s",
                         m->queue_id, QID_LEN, hint, m->queue_id);
            return 0;
        }
        if (errno != EEXIST)
            break;
    }
    cleanup_fail_errno(m, errno);
    m->fd = -1;
    return -1;
}

/* cleanup_get - an attribute as a C string, "" when absent */
static const char *cleanup_get(const struct attr_msg *req, const char *name)
{
    const char *v = attr_get(req, name, NULL);
    return v ? v : "";
}

/* cleanup_qualify - copy addr, adding @myorigin when unqualified */
static void cleanup_qualify(const struct cleanup_settings *set, const char *addr, buf_t *out)
{
    buf_set(out, addr);
    addr_qualify(out, set->myorigin);
}

/* cleanup_auth_mailbox_ok - "<>" or an address that can go into AUTH= on
 * the way out (lib/delivery refuses anything else) */
static int cleanup_auth_mailbox_ok(const char *v)
{
    if (strcmp(v, "<>") == 0)
        return 1;
    if (*v == '\0' || strlen(v) > ADDR_MAX_LENGTH || strpbrk(v, "<>") != NULL)
        return 0;
    for (; *v; v++)
        if ((unsigned char)*v <= ' ' || (unsigned char)*v == 127)
            return 0;
    return 1;
}

/* cleanup_write_envelope - V T S A records */
static void cleanup_write_envelope(struct cleanup_msg *m, const struct attr_msg *req)
{
    static const char *copied[] = {"client_name", "client_addr",    "helo",     "protocol",
                                   "auth",        "envid",          "ret",      "size",
                                   "body",        "local_expanded", "smtputf8", NULL};
    struct timeval tv;
    char stamp[64];

    gettimeofday(&tv, NULL);
    m->arrival = tv.tv_sec;
    snprintf(stamp, sizeof(stamp), "%lld.%06ld", (long long)tv.tv_sec, (long)tv.tv_usec);
    qfile_put_str(&m->w, QFILE_REC_VERSION, "1");
    qfile_put_str(&m->w, QFILE_REC_TIME, stamp);
    qfile_put_str(&m->w, QFILE_REC_SENDER, buf_cstr(&m->sender));
    qfile_put_attr(&m->w, "queue_id", m->queue_id);
    for (int i = 0; copied[i]; i++) {
        const char *v = attr_get(req, copied[i], NULL);
        if (v && *v)
            qfile_put_attr(&m->w, copied[i], v);
    }
    if (m->requiretls)
        qfile_put_attr(&m->w, "requiretls", "yes");
    if (cleanup_auth_mailbox_ok(cleanup_get(req, "auth_mailbox")))
        qfile_put_attr(&m->w, "auth_mailbox", cleanup_get(req, "auth_mailbox"));
}

/* the recipients written so far, for dropping duplicates: an open-addressed
 * set of "address\nnotify\norcpt" keys, the address case-folded */
struct cleanup_seen {
    char **slots;
    size_t nslots;
    size_t count;
};

/* cleanup_seen_hash - FNV-1a */
static size_t cleanup_seen_hash(const char *s)
{
    size_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* cleanup_seen_grow - double the table */
static void cleanup_seen_grow(struct cleanup_seen *set)
{
    struct cleanup_seen bigger = {NULL, set->nslots ? 2 * set->nslots : 64, set->count};

    bigger.slots = xcalloc(bigger.nslots, sizeof(char *));
    for (size_t i = 0; i < set->nslots; i++) {
        size_t h;
        if (set->slots[i] == NULL)
            continue;
        for (h = cleanup_seen_hash(set->slots[i]) % bigger.nslots; bigger.slots[h];
             h = (h + 1) % bigger.nslots)
            ;
        bigger.slots[h] = set->slots[i];
    }
    free(set->slots);
    *set = bigger;
}

/* cleanup_seen_add - 1 when the recipient is new (and now remembered) */
static int cleanup_seen_add(struct cleanup_rcpt_sink *out, const char *addr, const char *notify,
                            const char *orcpt)
{
    struct cleanup_seen *set = out->seen;
    buf_t key = BUF_INIT;
    size_t h;

    if (set == NULL)
        set = out->seen = xcalloc(1, sizeof(*set));
    if (2 * (set->count + 1) > set->nslots)
        cleanup_seen_grow(set);
    for (const char *p = addr; *p; p++)
        buf_putc(&key, tolower((unsigned char)*p));
    buf_printf(&key, "\n%s\n%s", notify, orcpt);
    for (h = cleanup_seen_hash(key.data) % set->nslots; set->slots[h]; h = (h + 1) % set->nslots) {
        if (strcmp(set->slots[h], key.data) == 0) {
            buf_free(&key);
            return 0;
        }
    }
    set->slots[h] = buf_steal(&key);
    set->count++;
    return 1;
}

void cleanup_rcpt_sink_free(struct cleanup_rcpt_sink *out)
{
    struct cleanup_seen *set = out->seen;

    if (set == NULL)
        return;
    for (size_t i = 0; i < set->nslots; i++)
        free(set->slots[i]);
    free(set->slots);
    free(set);
    out->seen = NULL;
}

void cleanup_rcpt_put(struct cleanup_rcpt_sink *out, const char *addr, const char *orig,
                      const char *notify, const char *orcpt, const char *reason)
{
    if (!cleanup_seen_add(out, addr, notify, orcpt))
        return;
    qfile_put_rcpt_failed(out->w, addr, orig, notify, orcpt, reason);
    out->count++;
}

int cleanup_rcpt_expand(struct cleanup_msg *m, struct cleanup_rcpt_sink *out, const char *addr,
                        const char *orig, const char *notify, const char *orcpt, buf_t *canonical)
{
    struct route_expansion x;
    struct route_reply why;
    enum route_status st;
    buf_t reason = BUF_INIT;

    if (m->set->route == NULL) {
        cleanup_qualify(m->set, addr, canonical);
        cleanup_rcpt_put(out, buf_cstr(canonical), orig, notify, orcpt, m->fail_reason);
        return 0;
    }
    route_expansion_init(&x);
    route_reply_init(&why);
    st = route_expand_recipient(m->set->route, addr, &x, &why);
    buf_set(canonical, x.canonical.len ? buf_cstr(&x.canonical) : addr);
    if (st == ROUTE_TEMPFAIL) {
        buf_printf(&reason, "Error: <%s>: %s", addr, buf_cstr(&why.text));
        cleanup_msg_fail(m, CLEANUP_TEMPFAIL, why.code, why.dsn, buf_cstr(&reason));
    } else if (st == ROUTE_REJECT) {
        buf_printf(&reason, "%s %s", why.dsn, buf_cstr(&why.text));
        qfile_put_rcpt_failed(out->w, buf_cstr(&x.canonical), orig, notify, orcpt,
                              buf_cstr(&reason));
        out->count++;
    } else {
        for (size_t k = 0; k < x.count; k++)
            cleanup_rcpt_put(out, x.v[k], orig, notify, orcpt, m->fail_reason);
    }
    buf_free(&reason);
    route_reply_free(&why);
    route_expansion_free(&x);
    return st == ROUTE_TEMPFAIL ? -1 : 0;
}

/* cleanup_write_recipients - the R records of every rcpt group of four:
 * qualified (and with a resolver, rewritten and expanded) */
static int cleanup_write_recipients(struct cleanup_msg *m, const struct attr_msg *req)
{
    buf_t addr = BUF_INIT;
    const struct attr *v = req->v;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < req->count; i++) {
        if (strcmp(v[i].name, "rcpt") != 0)
            continue;
        if (i + 3 >= req->count || strcmp(v[i + 1].name, "orig_rcpt") != 0 ||
            strcmp(v[i + 2].name, "notify") != 0 || strcmp(v[i + 3].name, "orcpt") != 0 ||
            v[i].len == 0 || v[i].len > ADDR_MAX_LENGTH) {
            rc = -1;
            break;
        }
        rc = cleanup_rcpt_expand(m, &m->rcpts, v[i].value, v[i + 1].value, v[i + 2].value,
                                 v[i + 3].value, &addr);
        if (m->input_rcpts++ == 0)
            buf_set(&m->only_rcpt, buf_cstr(&addr));
        i += 3;
    }
    buf_free(&addr);
    return rc == 0 && m->rcpts.count > 0 ? 0 : -1;
}

/* cleanup_set_sender - the envelope sender, qualified, and with a resolver
 * mapped and masqueraded; -1 after a temporary failure */
static int cleanup_set_sender(struct cleanup_msg *m, const char *sender)
{
    struct route_reply why;
    int rc = 0;

    if (*sender == 0)
        return 0;
    if (m->set->route == NULL) {
        cleanup_qualify(m->set, sender, &m->sender);
        return 0;
    }
    route_reply_init(&why);
    if (route_rewrite_sender(m->set->route, sender, &m->sender, &why) < 0) {
        cleanup_msg_fail(m, CLEANUP_TEMPFAIL, why.code, why.dsn, buf_cstr(&why.text));
        rc = -1;
    }
    route_reply_free(&why);
    return rc;
}

/* cleanup_lookup_recipient - one recipient's expansion, thrown away */
static void cleanup_lookup_recipient(struct route *r, const char *addr)
{
    struct route_expansion x;
    struct route_reply why;

    route_expansion_init(&x);
    route_reply_init(&why);
    route_expand_recipient(r, addr, &x, &why);
    route_reply_free(&why);
    route_expansion_free(&x);
}

void cleanup_msg_rcpt_lookups(const struct cleanup_settings *set, const char *addr)
{
    if (set->route != NULL && *addr && strlen(addr) <= ADDR_MAX_LENGTH)
        cleanup_lookup_recipient(set->route, addr);
}

void cleanup_msg_lookups(const struct cleanup_settings *set, const struct attr_msg *req)
{
    const char *sender = attr_get(req, "sender", NULL);
    struct route_reply why;
    buf_t out = BUF_INIT;

    if (set->route == NULL)
        return;
    route_reply_init(&why);
    if (sender != NULL && *sender && strlen(sender) <= ADDR_MAX_LENGTH)
        route_rewrite_sender(set->route, sender, &out, &why);
    route_reply_free(&why);
    buf_free(&out);
    for (size_t i = 0; i < req->count; i++)
        if (strcmp(req->v[i].name, "rcpt") == 0)
            cleanup_msg_rcpt_lookups(set, req->v[i].value);
}

/* cleanup_header_client - may this message's header addresses be
 * rewritten?  Local submissions always; SMTP clients per
 * local_header_rewrite_clients */
static int cleanup_header_client(const struct cleanup_settings *set, const struct attr_msg *req)
{
    const char *addr = attr_get(req, "client_addr", NULL);
    struct sockaddr_storage ss;

    if (addr == NULL || *addr == 0)
        return 1;
    if (set->header_rewrite_all)
        return 1;
    if (netaddr_parse_addr(addr, &ss) < 0)
        return 0;
    return netaddr_match((struct sockaddr *)&ss, set->header_nets, set->header_net_count);
}

/* cleanup_msg_start - cleanup_msg_begin, every recipient failed for
 * reason unless it is NULL */
static int cleanup_msg_start(struct cleanup_msg *m, const struct cleanup_settings *set,
                             const struct attr_msg *req, const char *reason)
{
    const char *sender = attr_get(req, "sender", NULL);

    memset(m, 0, sizeof(*m));
    m->fail_reason = reason;
    m->set = set;
    m->fd = -1;
    m->rcpts.w = &m->w;
    if (sender == NULL || strlen(sender) > ADDR_MAX_LENGTH) {
        cleanup_msg_fail(m, CLEANUP_PERMFAIL, "554", "5.5.0", "Error: malformed submission");
        return -1;
    }
    if (cleanup_set_sender(m, sender) < 0)
        return -1;
    m->rewrite_headers = set->route != NULL && cleanup_header_client(set, req);
    buf_set(&m->helo, cleanup_get(req, "helo"));
    buf_set(&m->client_name, cleanup_get(req, "client_name"));
    buf_set(&m->client_addr, cleanup_get(req, "client_addr"));
    buf_set(&m->protocol, *cleanup_get(req, "protocol") ? cleanup_get(req, "protocol") : "SMTP");
    buf_set(&m->local_user, cleanup_get(req, "local_user"));
    buf_set(&m->listener, cleanup_get(req, "listener"));
    buf_set(&m->tls, cleanup_get(req, "tls"));
    buf_set(&m->sasl_method, cleanup_get(req, "sasl_method"));
    buf_set(&m->sasl_username, cleanup_get(req, "sasl_username"));
    m->sasl_header = strcmp(cleanup_get(req, "sasl_header"), "yes") == 0;
    m->requiretls = strcmp(cleanup_get(req, "requiretls"), "yes") == 0;
    buf_set(&m->full_name, cleanup_get(req, "full_name"));
    buf_set(&m->sender_warning, cleanup_get(req, "sender_warning"));
    buf_set(&m->prepend, cleanup_get(req, "prepend"));
    buf_set(&m->ident, cleanup_get(req, "ident"));
    if (cleanup_create_file(m, attr_get(req, "queue_id", NULL)) < 0)
        return -1;
    if (*cleanup_get(req, "hold"))
        cleanup_msg_hold(m, cleanup_get(req, "hold"));
    qfile_writer_init(&m->w, m->fd);
    cleanup_write_envelope(m, req);
    if (cleanup_write_recipients(m, req) < 0) {
        cleanup_msg_fail(m, CLEANUP_PERMFAIL, "554", "5.5.0", "Error: malformed recipient list");
        cleanup_msg_discard(m);
        return -1;
    }
    qfile_content_begin(&m->w);
    m->phase = CLEANUP_HEADERS;
    m->fail_reason = NULL;
    return 0;
}

int cleanup_msg_begin(struct cleanup_msg *m, const struct cleanup_settings *set,
                      const struct attr_msg *req)
{
    return cleanup_msg_start(m, set, req, NULL);
}

int cleanup_msg_begin_failed(struct cleanup_msg *m, const struct cleanup_settings *set,
                             const struct attr_msg *req, const char *reason)
{
    return cleanup_msg_start(m, set, req, reason);
}

/* cleanup_header_is - does line (a header) have this name? */
static int cleanup_header_is(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

/* cleanup_is_header_line - "name:" with printable name characters */
static int cleanup_is_header_line(const char *line, size_t len)
{
    size_t i;
    for (i = 0; i < len && line[i] != ':'; i++)
        if ((unsigned char)line[i] <= 32 || (unsigned char)line[i] >= 127)
            return 0;
    return i > 0 && i < len;
}

/* cleanup_header_value_is - is the value of the header line (its first
 * line, white space around it ignored) word, in any case? */
static int cleanup_header_value_is(const char *line, size_t len, const char *word)
{
    const char *colon = memchr(line, ':', len);
    const char *v = colon + 1;
    const char *end = line + len;
    size_t n = strlen(word);

    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return (size_t)(end - v) == n && strncasecmp(v, word, n) == 0;
}

/* cleanup_note_header - remember what the header section already has */
static void cleanup_note_header(struct cleanup_msg *m, const char *line, size_t len)
{
    if (cleanup_header_is(line, len, "Received"))
        m->received_count++;
    else if (cleanup_header_is(line, len, "Message-ID"))
        m->have_message_id = 1;
    else if (cleanup_header_is(line, len, "Date"))
        m->have_date = 1;
    else if (cleanup_header_is(line, len, "From"))
        m->have_from = 1;
    else if (cleanup_header_is(line, len, "TLS-Required"))
        m->tls_required_no |= cleanup_header_value_is(line, len, "No");
}

/* cleanup_emit_received - our Received: header, first in the message */
static void cleanup_emit_received(struct cleanup_msg *m, buf_t *out)
{
    const char *helo = m->helo.len ? buf_cstr(&m->helo) : buf_cstr(&m->client_addr);
    const char *name = m->client_name.len ? buf_cstr(&m->client_name) : "unknown";

    if (m->client_addr.len) {
        buf_printf(out, "Received: from %s (%s%s%s%s [%s])\r\n", helo, m->ident.len ? "IDENT:" : "",
                   buf_cstr(&m->ident), m->ident.len ? "@" : "", name, buf_cstr(&m->client_addr));
        if (m->tls.len)
            buf_printf(out, "\t(%s)\r\n", buf_cstr(&m->tls));
        if (m->sasl_header && m->sasl_username.len)
            buf_printf(out, "\t(Authenticated sender: %s)\r\n", buf_cstr(&m->sasl_username));
        buf_printf(out, "\tby %s (tern %s) with %s id %s", m->set->myhostname, TERN_VERSION,
                   buf_cstr(&m->protocol), m->queue_id);
    } else if (m->local_user.len)
        buf_printf(out, "Received: (from %s@localhost)\r\n\tby %s (tern %s) id %s",
                   buf_cstr(&m->local_user), m->set->myhostname, TERN_VERSION, m->queue_id);
    else
        buf_printf(out, "Received: by %s (tern %s) id %s", m->set->myhostname, TERN_VERSION,
                   m->queue_id);
    if (m->input_rcpts == 1)
        buf_printf(out, "\r\n\tfor <%s>; ", buf_cstr(&m->only_rcpt));
    else
        buf_puts(out, ";\r\n\t");
    time_rfc2822(m->arrival, out);
    buf_puts(out, "\r\n");
    for (const char *p = buf_cstr(&m->prepend); *p;) { /* smtpd's PREPEND actions */
        size_t n = strcspn(p, "\r\n");
        if (n > 0)
            buf_printf(out, "%.*s\r\n", (int)n, p);
        p += n;
        while (*p == '\r' || *p == '\n')
            p++;
    }
    if (m->local_user.len && m->sender_warning.len)
        buf_printf(out, "X-Authentication-Warning: %s: %s set sender to %s using -f\r\n",
                   m->set->myhostname, buf_cstr(&m->local_user), buf_cstr(&m->sender_warning));
}

/* cleanup_emit_from - From: for a local submission without one: the full
 * name (quoted when it has specials) and the envelope sender */
static void cleanup_emit_from(struct cleanup_msg *m, buf_t *out)
{
    const char *addr = m->sender.len ? buf_cstr(&m->sender) : "MAILER-DAEMON";

    buf_puts(out, "From: ");
    if (m->full_name.len) {
        int quote = strpbrk(buf_cstr(&m->full_name), "()<>[]:;@\\,.\"") != NULL;
        if (quote)
            buf_putc(out, '"');
        for (const char *p = buf_cstr(&m->full_name); *p; p++) {
            if (quote && (*p == '"' || *p == '\\'))
                buf_putc(out, '\\');
            buf_putc(out, (unsigned char)*p < 32 ? ' ' : *p);
        }
        if (quote)
            buf_putc(out, '"');
        buf_printf(out, " <%s>\r\n", addr);
    } else {
        buf_printf(out, "%s\r\n", addr);
    }
}

/* cleanup_emit_missing - Message-ID: and Date: when the client sent none */
static void cleanup_emit_missing(struct cleanup_msg *m, buf_t *out)
{
    if (!m->have_message_id) {
        struct tm tm;
        char stamp[32];
        localtime_r(&m->arrival, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%d%H%M", &tm);
        buf_reset(&m->message_id);
        buf_printf(&m->message_id, "<%s.%s@%s>", stamp, m->queue_id, m->set->myhostname);
        buf_printf(out, "Message-ID: %s\r\n", buf_cstr(&m->message_id));
    }
    if (!m->have_from && m->local_user.len)
        cleanup_emit_from(m, out);
    if (!m->have_date) {
        buf_puts(out, "Date: ");
        time_rfc2822(m->arrival, out);
        buf_puts(out, "\r\n");
    }
}

/* cleanup_find_message_id - the client's Message-ID value, for the log */
static void cleanup_find_message_id(struct cleanup_msg *m, size_t hdr_len)
{
    const char *p = m->headers.data;
    const char *end = p + hdr_len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (cleanup_header_is(p, len, "Message-ID")) {
            const char *v = p + 11;
            while (v < p + len && (*v == ' ' || *v == '\t'))
                v++;
            buf_reset(&m->message_id);
            buf_append(&m->message_id, v, (size_t)(p + len - v));
            while (m->message_id.len &&
                   isspace((unsigned char)m->message_id.data[m->message_id.len - 1]))
                buf_truncate(&m->message_id, m->message_id.len - 1);
            return;
        }
        p += len + 1;
    }
}

/* the message whose header addresses are rewritten, and whether a table
 * failed meanwhile */
struct cleanup_hdr {
    struct cleanup_msg *m;
    int failed;
    int dry; /* into a throwaway output: fail nothing */
};

/* cleanup_hdr_address - one address of a sender or recipient header:
 * qualified, canonical maps, masquerading (lib/route.h) */
static int cleanup_hdr_address(enum hdraddr_class cls, const char *addr, buf_t *out, void *ctx)
{
    struct cleanup_hdr *h = ctx;
    struct route_reply why;
    int rc;

    route_reply_init(&why);
    rc = route_rewrite_header(h->m->set->route,
                              cls == HDRADDR_SENDER ? ROUTE_HEADER_SENDER : ROUTE_HEADER_RECIPIENT,
                              addr, out, &why);
    if (rc < 0 && !h->failed && !h->dry) {
        h->failed = 1;
        cleanup_msg_fail(h->m, CLEANUP_TEMPFAIL, why.code, why.dsn, buf_cstr(&why.text));
    }
    route_reply_free(&why);
    return rc > 0;
}

/* cleanup_rewrite_headers - the header section [0, hdr_len) of m->headers
 * into out with the addresses of sender and recipient headers rewritten,
 * in m's proxy scope (dry: a pass that only asks, failing nothing) */
static void cleanup_rewrite_headers(struct cleanup_msg *m, size_t hdr_len, buf_t *out, int dry)
{
    struct cleanup_hdr h = {m, 0, dry};

    table_proxy_scope_enter(m->scope);
    hdraddr_rewrite_section(m->headers.data, hdr_len, 1 << HDRADDR_SENDER | 1 << HDRADDR_RECIPIENT,
                            cleanup_hdr_address, &h, out);
    table_proxy_scope_leave();
}

/* cleanup_headers_wait - with a scope, the dry pass of the header
 * rewriting; 1 when it waits for an answer (nothing is written meanwhile) */
static int cleanup_headers_wait(struct cleanup_msg *m, size_t hdr_len, int at_eof)
{
    buf_t out = BUF_INIT;

    if (!m->rewrite_headers || m->scope == NULL)
        return 0;
    cleanup_rewrite_headers(m, hdr_len, &out, 1);
    buf_free(&out);
    m->tables_wait = table_proxy_scope_pending(m->scope);
    m->tables_eof = at_eof;
    return m->tables_wait;
}

/* cleanup_end_headers - the header section ends at hdr_len bytes of
 * m->headers: write our headers, theirs, the additions, then the rest */
static void cleanup_end_headers(struct cleanup_msg *m, size_t hdr_len, int need_blank)
{
    buf_t out = BUF_INIT;

    m->phase = CLEANUP_BODY;
    if (m->received_count > (size_t)m->set->hopcount_limit) {
        buf_t text = BUF_INIT;
        buf_printf(&text, "Too many hops %zu (%lld max): from <%s>, to <%s>", m->received_count,
                   m->set->hopcount_limit, buf_cstr(&m->sender), buf_cstr(&m->only_rcpt));
        cleanup_msg_fail(m, CLEANUP_PERMFAIL, "554", "5.4.6", buf_cstr(&text));
        buf_free(&text);
    }
    if (m->have_message_id)
        cleanup_find_message_id(m, hdr_len);
    cleanup_emit_received(m, &out);
    if (m->rewrite_headers)
        cleanup_rewrite_headers(m, hdr_len, &out, 0);
    else
        buf_append(&out, m->headers.data, hdr_len);
    cleanup_emit_missing(m, &out);
    if (need_blank) /* the body started without the empty line: add it */
        buf_puts(&out, "\r\n");
    qfile_content_append(&m->w, out.data, out.len);
    if (m->headers.len > hdr_len) /* an empty message has no data at all */
        qfile_content_append(&m->w, m->headers.data + hdr_len, m->headers.len - hdr_len);
    buf_free(&out);
    buf_free(&m->headers);
}

/* cleanup_header_section - the length of the header section in what m has
 * (noting what it holds), with *blank_missing 1 when a non-header line
 * ends it; SIZE_MAX when more data is needed to know */
static size_t cleanup_header_section(struct cleanup_msg *m, int at_eof, int *blank_missing)
{
    size_t pos = 0;

    m->received_count = 0;
    m->have_message_id = m->have_date = m->have_from = 0;
    m->tls_required_no = 0;
    *blank_missing = 0;
    while (pos < m->headers.len) {
        const char *line = m->headers.data + pos;
        const char *nl = memchr(line, '\n', m->headers.len - pos);
        if (nl == NULL && !at_eof)
            return SIZE_MAX;
        size_t len = nl ? (size_t)(nl - line + 1) : m->headers.len - pos;
        size_t text = len - (nl ? 1 : 0) - (len >= 2 && nl && nl[-1] == '\r' ? 1 : 0);
        int cont = (line[0] == ' ' || line[0] == '\t') && pos > 0;
        if (text == 0 || (!cont && !cleanup_is_header_line(line, text))) {
            *blank_missing = text != 0; /* the blank line stays with the body */
            return pos;
        }
        if (!cont)
            cleanup_note_header(m, line, text);
        pos += len;
    }
    return at_eof ? pos : SIZE_MAX;
}

/* cleanup_scan_headers - find the end of the header section in what we
 * have; returns 1 when found (and handled), 0 when more data is needed */
static int cleanup_scan_headers(struct cleanup_msg *m, int at_eof)
{
    int blank_missing;
    size_t len = cleanup_header_section(m, at_eof, &blank_missing);

    if (len == SIZE_MAX)
        return 0;
    if (!cleanup_headers_wait(m, len, at_eof))
        cleanup_end_headers(m, len, blank_missing);
    return 1;
}

void cleanup_msg_header_lookups(const struct cleanup_settings *set, struct table_proxy_scope *scope,
                                const char *data, size_t len)
{
    struct cleanup_msg m;
    buf_t out = BUF_INIT;
    int blank_missing;

    if (set->route == NULL)
        return;
    memset(&m, 0, sizeof(m));
    m.set = set;
    m.scope = scope;
    m.fd = -1;
    buf_append(&m.headers, data, len);
    cleanup_rewrite_headers(&m, cleanup_header_section(&m, 1, &blank_missing), &out, 1);
    buf_free(&out);
    buf_free(&m.headers);
}

void cleanup_msg_tables_answered(struct cleanup_msg *m)
{
    m->tables_wait = 0;
    if (m->status == CLEANUP_OK && m->phase == CLEANUP_HEADERS)
        cleanup_scan_headers(m, m->tables_eof);
}

void cleanup_msg_end_of_data(struct cleanup_msg *m)
{
    if (m->status == CLEANUP_OK && m->phase == CLEANUP_HEADERS && !m->tables_wait)
        cleanup_scan_headers(m, 1);
}

void cleanup_msg_data(struct cleanup_msg *m, const char *data, size_t len)
{
    m->content_bytes += len;
    if (m->set->message_size_limit > 0 && m->content_bytes > (size_t)m->set->message_size_limit) {
        cleanup_msg_fail(m, CLEANUP_PERMFAIL, "552", "5.3.4", "Error: message file too big");
        return;
    }
    if (m->status != CLEANUP_OK)
        return;
    if (m->phase == CLEANUP_BODY) {
        qfile_content_append(&m->w, data, len);
        return;
    }
    buf_append(&m->headers, data, len);
    if (cleanup_scan_headers(m, 0))
        return;
    if (m->headers.len > (size_t)m->set->header_size_limit)
        cleanup_msg_fail(m, CLEANUP_PERMFAIL, "552", "5.6.0",
                         "Error: message header size exceeds limit");
}

/* cleanup_write_header_attrs - the 'A' records learnt from the header
 * section, after the content (lib/qfile.h): RFC 8689 section 4.1 ignores
 * TLS-Required: when the MAIL had REQUIRETLS */
static void cleanup_write_header_attrs(struct cleanup_msg *m)
{
    if (m->tls_required_no && !m->requiretls)
        qfile_put_attr(&m->w, "tls_required_no", "yes");
    if (m->hold.len > 0) /* what `tern queue` shows for a held message */
        qfile_put_attr(&m->w, "hold_reason", buf_cstr(&m->hold));
}

/* cleanup_write_end - the content's length, the late 'A' records, 'X' */
static int cleanup_write_end(struct cleanup_msg *m)
{
    if (qfile_content_end(&m->w) < 0)
        return -1;
    cleanup_write_header_attrs(m);
    return qfile_finish(&m->w);
}

int cleanup_msg_finish(struct cleanup_msg *m)
{
    if (m->finished) /* main.c: already finished for the milters */
        return m->status == CLEANUP_OK ? 0 : -1;
    m->finished = 1;
    if (m->status == CLEANUP_OK && m->phase == CLEANUP_HEADERS)
        cleanup_scan_headers(m, 1);
    if (m->status == CLEANUP_OK && cleanup_write_end(m) < 0)
        cleanup_fail_errno(m, m->w.failed_errno ? m->w.failed_errno : errno);
    if (m->status != CLEANUP_OK) {
        cleanup_msg_discard(m);
        return -1;
    }
    return 0;
}

int cleanup_msg_sync(struct cleanup_msg *m)
{
    if (m->status != CLEANUP_OK)
        return -1;
    if (fsync(m->fd) < 0) {
        cleanup_fail_errno(m, errno);
        cleanup_msg_discard(m);
        return -1;
    }
    return 0;
}

void cleanup_msg_hold(struct cleanup_msg *m, const char *reason)
{
    buf_set(&m->hold, *reason ? reason : "held by policy");
    buf_reset(&m->final_path);
    buf_printf(&m->final_path, "hold/%s", m->queue_id);
}

int cleanup_msg_publish(struct cleanup_msg *m)
{
    if (rename(buf_cstr(&m->tmp_path), buf_cstr(&m->final_path)) < 0) {
        cleanup_fail_errno(m, errno);
        cleanup_msg_discard(m);
        return -1;
    }
    close(m->fd);
    m->fd = -1;
    return 0;
}

void cleanup_msg_discard(struct cleanup_msg *m)
{
    if (m->fd >= 0) {
        close(m->fd);
        m->fd = -1;
        unlink(buf_cstr(&m->tmp_path));
    }
}

void cleanup_msg_free(struct cleanup_msg *m)
{
    buf_free(&m->hold);
    buf_free(&m->prepend);
    buf_free(&m->ident);
    buf_free(&m->milter_reply);
    buf_t *bufs[] = {&m->tmp_path, &m->final_path, &m->headers,     &m->message_id,
                     &m->sender,   &m->helo,       &m->client_name, &m->client_addr,
                     &m->protocol, &m->only_rcpt,  &m->code,        &m->dsn,
                     &m->text,     &m->local_user, &m->full_name,   &m->sender_warning,
                     &m->listener, &m->tls,        &m->sasl_method, &m->sasl_username};
    if (m->fd >= 0)
        cleanup_msg_discard(m);
    cleanup_rcpt_sink_free(&m->rcpts);
    qfile_writer_free(&m->w);
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        buf_free(bufs[i]);
}
