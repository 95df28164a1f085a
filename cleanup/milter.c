/*
 * milter - cleanup's content phase: each milter in turn sees the message as
 * it is queued (the header section, our Received: first; the body; the end
 * of message), and its changes are applied before the next one runs.
 *
 * The message is read back from its temp queue file (cleanup_msg_finish
 * wrote it, nothing synced yet).  The header section is kept as a list
 * (milter_model.c); the body stays in the file until a milter replaces it.
 * When a milter changed anything (headers, sender, recipients, body, a
 * quarantine) a new temp file is written and renamed over the old one;
 * an unchanged message costs no extra write.  Refusals (reject, tempfail,
 * shutdown) and discards remove the temp file.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "cleanup.h"
#include "log.h"
#include "milter.h"
#include "proto.h" /* smtpd's MAIL / RCPT parameter parser, for chgfrom and addrcpt_par */
#include "safefile.h"
#include "stats.h"
#include "table_proxy.h"

/* header and body commands carry no macros (sendmail sends none) */
#define CLEANUP_MILTER_NO_MACROS (-1)
#define CLEANUP_MILTER_READ_CHUNK 65536

enum cleanup_milter_phase {
    CLEANUP_MILTER_HEADER,
    CLEANUP_MILTER_EOH,
    CLEANUP_MILTER_BODY,
    CLEANUP_MILTER_EOM
};

/* an addrcpt or delrcpt, in the order milters sent them */
struct cleanup_milter_rcpt_op {
    int add;
    char *addr;
    char *notify; /* addrcpt_par's NOTIFY= ("" when none) */
    char *orcpt;  /* addrcpt_par's ORCPT= decoded ("" when none) */
};

struct cleanup_milter_run {
    struct event_base *base;
    struct cleanup_msg *msg;
    struct milter *milters[MILTER_MAX];
    size_t count, cur;
    cleanup_milter_done_fn done;
    void *arg;
    struct event *start_ev;
    enum cleanup_milter_phase phase;
    struct cleanup_milter_headers headers;
    size_t next_header;
    off_t body_at; /* the body in the file (until replaced) */
    size_t body_len;
    size_t body_sent;
    buf_t body; /* the replaced body */
    int body_replaced;
    buf_t data; /* the command being sent */
    buf_t sender;
    int sender_changed;
    int dsn_changed; /* chgfrom with ESMTP arguments: ret and envid below replace the old */
    char ret[8];     /* "FULL", "HDRS" or "" */
    buf_t envid;
    struct cleanup_milter_rcpt_op *ops;
    size_t op_count;
    int changed;       /* body, envelope or hold changed */
    unsigned eom_done; /* bit i: milters[i] answered the end of message */
};

void cleanup_milter_client(const struct cleanup_msg *m, buf_t *out)
{
    buf_reset(out);
    buf_printf(out, "%s[%s]", m->client_name.len ? buf_cstr(&m->client_name) : "localhost",
               m->client_addr.len ? buf_cstr(&m->client_addr) : "127.0.0.1");
}

/* cleanup_milter_log - "ID: milter-WHAT: END-OF-MESSAGE from CLIENT: TEXT" */
static void cleanup_milter_log(const struct cleanup_msg *m, const char *what, const char *text)
{
    buf_t client = BUF_INIT;

    cleanup_milter_client(m, &client);
    log_info("%s: milter-%s: END-OF-MESSAGE from %s: %s", m->queue_id, what, buf_cstr(&client),
             text);
    buf_free(&client);
}

/* cleanup_milter_name - the current milter's name */
static const char *cleanup_milter_name(const struct cleanup_milter_run *r)
{
    return milter_spec_of(r->milters[r->cur])->name;
}

/* cleanup_milter_read_headers - the header section of the written file
 * into the model, and where the body is; -1 on a read error */
static int cleanup_milter_read_headers(struct cleanup_milter_run *r)
{
    struct cleanup_msg *m = r->msg;
    off_t at = m->w.content_len_at + 4;
    size_t total = m->w.content_length, hdr_len = 0, skip = 0;
    buf_t b = BUF_INIT;
    int rc = 0;

    for (;;) {
        const char *e = b.len >= 3 ? memmem(b.data, b.len, "\n\r\n", 3) : NULL;
        if (b.len >= 2 && memcmp(b.data, "\r\n", 2) == 0) {
            skip = 2;
            break;
        }
        if (e) {
            hdr_len = (size_t)(e - b.data) + 1, skip = 2;
            break;
        }
        if (b.len == total) {
            hdr_len = b.len;
            break;
        }
        size_t want =
            total - b.len < CLEANUP_MILTER_READ_CHUNK ? total - b.len : CLEANUP_MILTER_READ_CHUNK;
        buf_reserve(&b, want);
        ssize_t n = pread(m->fd, b.data + b.len, want, at + (off_t)b.len);
        if (n <= 0) {
            rc = -1;
            break;
        }
        b.len += (size_t)n;
    }
    if (rc == 0) {
        cleanup_milter_headers_parse(&r->headers, b.data, hdr_len);
        r->body_at = at + (off_t)(hdr_len + skip);
        r->body_len = total - hdr_len - skip;
    }
    buf_free(&b);
    return rc;
}

static void cleanup_milter_next(struct cleanup_milter_run *r);
static void cleanup_milter_finish(struct cleanup_milter_run *r);

/* cleanup_milter_send - one command to the current milter */
static void cleanup_milter_send(struct cleanup_milter_run *r, int stage, char cmd);

/* cleanup_milter_send_header - the next header, or the end of headers */
static void cleanup_milter_send_header(struct cleanup_milter_run *r)
{
    struct milter *mt = r->milters[r->cur];
    int leadspc = (milter_agreed(mt)->protocol & SMFIP_HDR_LEADSPC) != 0;
    buf_t value = BUF_INIT;

    while (r->next_header < r->headers.count && r->headers.v[r->next_header].value == NULL)
        r->next_header++;
    if (r->next_header == r->headers.count ||
        !milter_proto_step_sent(milter_agreed(mt), SMFIC_HEADER)) {
        r->phase = CLEANUP_MILTER_EOH;
        buf_reset(&r->data);
        cleanup_milter_send(r, SMFIM_EOH, SMFIC_EOH);
        return;
    }
    const struct cleanup_milter_header *h = &r->headers.v[r->next_header++];
    cleanup_milter_value_out(h->value, leadspc, &value);
    buf_reset(&r->data);
    buf_append(&r->data, h->name, strlen(h->name) + 1);
    buf_append(&r->data, value.data ? value.data : "", value.len + 1);
    buf_free(&value);
    cleanup_milter_send(r, CLEANUP_MILTER_NO_MACROS, SMFIC_HEADER);
}

/* cleanup_milter_send_body - the next body chunk, or the end of message */
static void cleanup_milter_send_body(struct cleanup_milter_run *r)
{
    size_t total = r->body_replaced ? r->body.len : r->body_len;
    size_t want = total - r->body_sent;

    r->phase = CLEANUP_MILTER_BODY;
    if (want == 0 || !milter_proto_step_sent(milter_agreed(r->milters[r->cur]), SMFIC_BODY)) {
        r->phase = CLEANUP_MILTER_EOM;
        buf_reset(&r->data);
        cleanup_milter_send(r, SMFIM_EOM, SMFIC_BODYEOB);
        return;
    }
    if (want > MILTER_PROTO_BODY_CHUNK)
        want = MILTER_PROTO_BODY_CHUNK;
    buf_reset(&r->data);
    if (r->body_replaced) {
        buf_append(&r->data, r->body.data + r->body_sent, want);
    } else {
        buf_reserve(&r->data, want);
        ssize_t n = pread(r->msg->fd, r->data.data, want, r->body_at + (off_t)r->body_sent);
        if (n <= 0) {
            cleanup_msg_fail(r->msg, CLEANUP_TEMPFAIL, "451", "4.3.0",
                             "Error: queue file read error");
            cleanup_milter_finish(r);
            return;
        }
        r->data.len = want = (size_t)n;
    }
    r->body_sent += want;
    cleanup_milter_send(r, CLEANUP_MILTER_NO_MACROS, SMFIC_BODY);
}

/* cleanup_milter_refuse - a reject, tempfail or shutdown: the whole reply
 * for smtpd, its first line as code, dsn, text for the log and old clients */
void cleanup_milter_split_reply(const char *reply, const char *dflt, buf_t *code, buf_t *dsn,
                                buf_t *text)
{
    size_t line = strcspn(reply, "\r\n");
    const char *p = reply + (line >= 4 ? 4 : line);
    size_t word = strcspn(p, " \r\n");

    buf_reset(code);
    buf_reset(dsn);
    buf_reset(text);
    buf_append(code, reply, line < 3 ? line : 3);
    if (word > 0 && p[0] >= '2' && p[0] <= '5' && p[1] == '.') {
        buf_append(dsn, p, word);
        p += word + (p[word] == ' ');
    } else {
        buf_puts(dsn, dflt);
    }
    buf_append(text, p, (size_t)(reply + line - p));
}

static void cleanup_milter_refuse(struct cleanup_milter_run *r, const struct milter_result *res)
{
    struct cleanup_msg *m = r->msg;
    const char *reply = buf_cstr(&res->reply);
    buf_t code = BUF_INIT, dsn = BUF_INIT, text = BUF_INIT, log = BUF_INIT;

    cleanup_milter_split_reply(reply, res->outcome == MILTER_REJECT ? "5.7.1" : "4.7.1", &code,
                               &dsn, &text);
    cleanup_msg_fail(m, res->outcome == MILTER_REJECT ? CLEANUP_PERMFAIL : CLEANUP_TEMPFAIL,
                     buf_cstr(&code), buf_cstr(&dsn), buf_cstr(&text));
    buf_set(&m->milter_reply, reply);
    m->milter_shutdown = res->outcome == MILTER_SHUTDOWN;
    for (const char *s = reply; *s; s++)
        buf_putc(&log, *s == '\r' || *s == '\n' ? ' ' : *s);
    buf_printf(&log, "; from=<%s> to=<%s>", buf_cstr(&m->sender), buf_cstr(&m->only_rcpt));
    cleanup_milter_log(m, "reject", buf_cstr(&log));
    buf_free(&code);
    buf_free(&dsn);
    buf_free(&text);
    buf_free(&log);
}

/* cleanup_milter_hold - quarantine: the file goes to hold/ */
static void cleanup_milter_hold(struct cleanup_milter_run *r, const char *reason)
{
    buf_t why = BUF_INIT;

    buf_printf(&why, "milter %s: %s", cleanup_milter_name(r), reason);
    cleanup_milter_log(r->msg, "hold", buf_cstr(&why));
    cleanup_msg_hold(r->msg, buf_cstr(&why));
    r->changed = 1;
    buf_free(&why);
}

/* cleanup_milter_address - a milter's address (cleanup_milter_check
 * found it good), without <>, qualified */
static void cleanup_milter_address(const struct cleanup_milter_run *r, const char *addr, buf_t *out)
{
    if (cleanup_milter_addr_check(addr, 1, out) < 0)
        cleanup_milter_addr_strip(addr, out);
    addr_qualify(out, r->msg->set->myorigin);
}

/* cleanup_milter_check - whether the changes of res can be made: every
 * added recipient and a new sender an address (lib/milter already held
 * the changes to message_size_limit bytes, milter_limit_mods); -1 with
 * why */
static int cleanup_milter_check(const struct milter_result *res, buf_t *why)
{
    buf_t a = BUF_INIT;

    for (size_t i = 0; i < res->mod_count && why->len == 0; i++) {
        const struct milter_mod *mod = &res->mods[i];
        int is_from = mod->cmd == SMFIR_CHGFROM;
        if ((is_from || mod->cmd == SMFIR_ADDRCPT || mod->cmd == SMFIR_ADDRCPT_PAR) &&
            cleanup_milter_addr_check(mod->name, is_from, &a) < 0)
            buf_printf(why, "bad address in %s: \"%.100s\"",
                       is_from ? "change sender" : "add recipient", mod->name);
    }
    buf_free(&a);
    return why->len > 0 ? -1 : 0;
}

/* cleanup_milter_esmtp - "KEYWORD<addr> ARGS" for smtpd's parser of MAIL
 * FROM: / RCPT TO: arguments (the same checks as from a client) */
static void cleanup_milter_esmtp(const char *keyword, const struct milter_mod *mod, buf_t *out)
{
    buf_reset(out);
    buf_printf(out, "%s%s%s%s %s", keyword, mod->name[0] == '<' ? "" : "<", mod->name,
               mod->name[0] == '<' ? "" : ">", mod->value ? mod->value : "");
}

/* cleanup_milter_bad_args - ESMTP arguments smtpd would refuse: logged, not used */
static void cleanup_milter_bad_args(const struct cleanup_milter_run *r,
                                    const struct milter_mod *mod, const buf_t *why)
{
    log_warn("%s: milter %s: ESMTP arguments \"%s\" for <%s> ignored: %s", r->msg->queue_id,
             cleanup_milter_name(r), mod->value, mod->name, buf_cstr(why));
}

/* cleanup_milter_rcpt_op - remember an addrcpt (with addrcpt_par's NOTIFY=
 * and ORCPT=) or a delrcpt */
static void cleanup_milter_rcpt_op(struct cleanup_milter_run *r, int add,
                                   const struct milter_mod *mod)
{
    struct cleanup_milter_rcpt_op *op;
    struct proto_rcpt pr;
    buf_t a = BUF_INIT, arg = BUF_INIT, why = BUF_INIT;

    proto_rcpt_init(&pr);
    if (add)
        cleanup_milter_address(r, mod->name, &a);
    else
        cleanup_milter_addr_strip(mod->name, &a);
    if (add && mod->value != NULL && *mod->value) {
        cleanup_milter_esmtp("TO:", mod, &arg);
        if (proto_rcpt_parse(buf_cstr(&arg), &pr, &why) < 0) {
            cleanup_milter_bad_args(r, mod, &why);
            buf_reset(&pr.notify);
            buf_reset(&pr.orcpt);
        }
    }
    r->ops = xrealloc(r->ops, (r->op_count + 1) * sizeof(*r->ops));
    op = &r->ops[r->op_count++];
    op->add = add;
    op->addr = buf_steal(&a);
    op->notify = xstrdup(buf_cstr(&pr.notify));
    op->orcpt = xstrdup(buf_cstr(&pr.orcpt));
    r->changed = 1;
    proto_rcpt_free(&pr);
    buf_free(&arg);
    buf_free(&why);
}

/* cleanup_milter_chgfrom - the new sender, and chgfrom's RET= and ENVID=
 * (SIZE= and BODY= describe what is already in the queue: not changed) */
static void cleanup_milter_chgfrom(struct cleanup_milter_run *r, const struct milter_mod *mod)
{
    struct proto_mail pm;
    buf_t arg = BUF_INIT, why = BUF_INIT;

    cleanup_milter_address(r, mod->name, &r->sender);
    r->sender_changed = r->changed = 1;
    if (mod->value == NULL || *mod->value == 0)
        return;
    proto_mail_init(&pm);
    cleanup_milter_esmtp("FROM:", mod, &arg);
    if (proto_mail_parse(buf_cstr(&arg), 0, &pm, &why) < 0) {
        cleanup_milter_bad_args(r, mod, &why);
    } else {
        r->dsn_changed = 1;
        snprintf(r->ret, sizeof(r->ret), "%s", pm.ret);
        buf_set(&r->envid, buf_cstr(&pm.envid));
    }
    proto_mail_free(&pm);
    buf_free(&arg);
    buf_free(&why);
}

/* cleanup_milter_apply - one milter's changes, in the order it sent them */
static void cleanup_milter_apply(struct cleanup_milter_run *r, const struct milter_result *res)
{
    int leadspc = (milter_agreed(r->milters[r->cur])->protocol & SMFIP_HDR_LEADSPC) != 0;
    buf_t newbody = BUF_INIT;
    int replaced = 0;

    for (size_t i = 0; i < res->mod_count; i++) {
        const struct milter_mod *mod = &res->mods[i];
        switch (mod->cmd) {
        case SMFIR_ADDHEADER:
            cleanup_milter_headers_add(&r->headers, mod->name, mod->value, leadspc);
            break;
        case SMFIR_INSHEADER:
            cleanup_milter_headers_insert(&r->headers, mod->index, mod->name, mod->value, leadspc);
            break;
        case SMFIR_CHGHEADER:
            cleanup_milter_headers_change(&r->headers, mod->index, mod->name, mod->value, leadspc);
            break;
        case SMFIR_ADDRCPT:
        case SMFIR_ADDRCPT_PAR:
            cleanup_milter_rcpt_op(r, 1, mod);
            break;
        case SMFIR_DELRCPT:
            cleanup_milter_rcpt_op(r, 0, mod);
            break;
        case SMFIR_CHGFROM:
            cleanup_milter_chgfrom(r, mod);
            break;
        case SMFIR_REPLBODY:
            buf_append(&newbody, mod->body.data, mod->body.len);
            replaced = 1;
            break;
        case SMFIR_QUARANTINE:
            cleanup_milter_hold(r, mod->name);
            break;
        }
    }
    if (replaced) {
        buf_reset(&r->body);
        cleanup_milter_body_crlf(newbody.data, newbody.len, &r->body);
        r->body_replaced = r->changed = 1;
    }
    buf_free(&newbody);
}

/* cleanup_milter_failed - the current milter failed: its default_action */
static void cleanup_milter_failed(struct cleanup_milter_run *r)
{
    struct milter_result res;
    int quarantine = 0;

    r->msg->milter_failed |= 1u << r->cur;
    milter_result_init(&res);
    milter_failure_verdict(milter_spec_of(r->milters[r->cur]), &res, &quarantine);
    if (res.outcome == MILTER_TEMPFAIL || res.outcome == MILTER_REJECT) {
        cleanup_milter_refuse(r, &res);
        cleanup_milter_finish(r);
    } else {
        if (quarantine)
            cleanup_milter_hold(r, "unavailable");
        r->cur++;
        cleanup_milter_next(r);
    }
    milter_result_free(&res);
}

/* cleanup_milter_discard - accept the message and throw it away */
static void cleanup_milter_discard(struct cleanup_milter_run *r)
{
    buf_t why = BUF_INIT;

    r->msg->milter_discarded = 1;
    stats_add(STATS_DISCARDED, r->msg->client_addr.len ? "smtp" : "local", 1);
    buf_printf(&why, "milter %s: message discarded", cleanup_milter_name(r));
    cleanup_milter_log(r->msg, "discard", buf_cstr(&why));
    buf_free(&why);
    cleanup_milter_finish(r);
}

/* cleanup_milter_end - the current milter's end of message went on: its
 * changes, then the next milter; changes that cannot be made fail it */
static void cleanup_milter_end(struct cleanup_milter_run *r, const struct milter_result *res)
{
    buf_t why = BUF_INIT;

    if (cleanup_milter_check(res, &why) < 0) {
        log_warn("%s: milter %s: %s", r->msg->queue_id, cleanup_milter_name(r), buf_cstr(&why));
        buf_free(&why);
        cleanup_milter_failed(r);
        return;
    }
    cleanup_milter_apply(r, res);
    r->cur++;
    cleanup_milter_next(r);
}

/* cleanup_milter_on_reply - the current milter answered a command */
static void cleanup_milter_on_reply(void *arg, struct milter *mt, const struct milter_result *res)
{
    struct cleanup_milter_run *r = arg;

    if (r->phase == CLEANUP_MILTER_EOM && res->outcome != MILTER_FAILED)
        r->eom_done |= 1u << r->cur;

    switch (res->outcome) {
    case MILTER_CONTINUE:
    case MILTER_SKIP:
        if (r->phase == CLEANUP_MILTER_HEADER) {
            cleanup_milter_send_header(r);
        } else if (r->phase == CLEANUP_MILTER_EOH) {
            r->body_sent = 0;
            cleanup_milter_send_body(r);
        } else if (r->phase == CLEANUP_MILTER_BODY) {
            if (res->outcome == MILTER_SKIP)
                r->body_sent = r->body_replaced ? r->body.len : r->body_len;
            cleanup_milter_send_body(r);
        } else {
            cleanup_milter_end(r, res);
        }
        return;
    case MILTER_ACCEPT: /* this milter is done with the message */
        if (r->phase == CLEANUP_MILTER_EOM) {
            cleanup_milter_end(r, res);
            return;
        }
        r->cur++;
        cleanup_milter_next(r);
        return;
    case MILTER_DISCARD:
        cleanup_milter_discard(r);
        return;
    case MILTER_FAILED:
        cleanup_milter_failed(r);
        return;
    default: /* REJECT, TEMPFAIL, SHUTDOWN */
        cleanup_milter_refuse(r, res);
        cleanup_milter_finish(r);
        return;
    }
}

static void cleanup_milter_send(struct cleanup_milter_run *r, int stage, char cmd)
{
    milter_command(r->milters[r->cur], stage, cmd, r->data.data, r->data.len,
                   cleanup_milter_on_reply, r);
}

/* cleanup_milter_next - start the current milter, or finish after the last */
static void cleanup_milter_next(struct cleanup_milter_run *r)
{
    while (r->cur < r->count &&
           (milter_failed(r->milters[r->cur]) || milter_accepted(r->milters[r->cur])))
        r->cur++;
    if (r->cur == r->count) {
        cleanup_milter_finish(r);
        return;
    }
    r->phase = CLEANUP_MILTER_HEADER;
    r->next_header = 0;
    cleanup_milter_send_header(r);
}

static void cleanup_milter_on_start(evutil_socket_t fd, short what, void *arg)
{
    cleanup_milter_next(arg);
}

/* the recipients of the rewritten file: the old ones, then the added */
struct cleanup_milter_rcpt {
    const struct qfile_rcpt *old;            /* NULL: added by a milter */
    const struct cleanup_milter_rcpt_op *op; /* the milter's addrcpt, or NULL */
    const char *addr;
    int deleted;
};

/* cleanup_milter_recipients - the old recipients with the milters' adds
 * and deletes applied in order; returns how many remain */
static size_t cleanup_milter_recipients(const struct cleanup_milter_run *r,
                                        const struct qfile_msg *q, struct cleanup_milter_rcpt **out,
                                        size_t *count)
{
    struct cleanup_milter_rcpt *v = xcalloc(q->rcpt_count + r->op_count + 1, sizeof(*v));
    size_t n = 0, live = q->rcpt_count;

    for (size_t i = 0; i < q->rcpt_count; i++, n++) {
        v[n].old = &q->rcpts[i];
        v[n].addr = q->rcpts[i].address;
    }
    for (size_t k = 0; k < r->op_count; k++) {
        const char *a = r->ops[k].addr;
        if (r->ops[k].add) {
            v[n].op = &r->ops[k];
            v[n++].addr = a;
            live++;
            continue;
        }
        for (size_t i = 0; i < n; i++)
            if (!v[i].deleted && (cleanup_milter_addr_match(v[i].addr, a) ||
                                  (v[i].old && cleanup_milter_addr_match(v[i].old->original, a)))) {
                v[i].deleted = 1;
                live--;
            }
    }
    *out = v;
    *count = n;
    return live;
}

/* cleanup_milter_write_envelope - V T S A R records of the new file (into
 * out->w); an added recipient goes through the same rewriting and virtual
 * alias expansion as the client's, its original the address the milter
 * gave; -1 when a table could not answer (the outcome set) */
static int cleanup_milter_write_envelope(struct cleanup_milter_run *r,
                                         struct cleanup_rcpt_sink *out, const struct qfile_msg *q,
                                         const struct cleanup_milter_rcpt *v, size_t n)
{
    struct qfile_writer *w = out->w;
    buf_t canonical = BUF_INIT;
    char stamp[64];
    int rc = 0;

    snprintf(stamp, sizeof(stamp), "%lld.%06ld", q->arrival_sec, q->arrival_usec);
    qfile_put_str(w, QFILE_REC_VERSION, "1");
    qfile_put_str(w, QFILE_REC_TIME, stamp);
    qfile_put_str(w, QFILE_REC_SENDER, r->sender_changed ? buf_cstr(&r->sender) : q->sender);
    for (size_t i = 0; i < q->attr_count; i++) {
        const char *name = q->attrs[i].name;
        if (strcmp(name, "tls_required_no") != 0 && strcmp(name, "hold_reason") != 0 &&
            !(r->dsn_changed && (strcmp(name, "ret") == 0 || strcmp(name, "envid") == 0)))
            qfile_put_attr(w, name, q->attrs[i].value);
    }
    if (r->dsn_changed && r->ret[0])
        qfile_put_attr(w, "ret", r->ret);
    if (r->dsn_changed && r->envid.len)
        qfile_put_attr(w, "envid", buf_cstr(&r->envid));
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (v[i].deleted)
            continue;
        if (v[i].old)
            cleanup_rcpt_put(out, v[i].addr, v[i].old->original, v[i].old->notify, v[i].old->orcpt,
                             v[i].old->reason);
        else
            rc = cleanup_rcpt_expand(r->msg, out, v[i].addr, v[i].addr, v[i].op->notify,
                                     v[i].op->orcpt, &canonical);
    }
    buf_free(&canonical);
    return rc;
}

/* cleanup_milter_write_content - the M record and what follows it */
static int cleanup_milter_write_content(struct cleanup_milter_run *r, struct qfile_writer *w,
                                        const struct qfile_msg *q)
{
    buf_t b = BUF_INIT;
    int rc = 0;

    qfile_content_begin(w);
    cleanup_milter_headers_write(&r->headers, &b);
    buf_puts(&b, "\r\n");
    qfile_content_append(w, b.data, b.len);
    buf_reset(&b);
    if (r->body_replaced)
        qfile_content_append(w, r->body.data, r->body.len);
    for (size_t done = 0; !r->body_replaced && done < r->body_len;) {
        size_t want = r->body_len - done;
        if (want > CLEANUP_MILTER_READ_CHUNK)
            want = CLEANUP_MILTER_READ_CHUNK;
        buf_reserve(&b, want);
        ssize_t n = pread(r->msg->fd, b.data, want, r->body_at + (off_t)done);
        if (n <= 0) {
            rc = -1;
            break;
        }
        qfile_content_append(w, b.data, (size_t)n);
        done += (size_t)n;
        if (qfile_writer_flush(w, CLEANUP_MILTER_READ_CHUNK) < 0)
            rc = -1;
    }
    buf_free(&b);
    if (rc < 0 || qfile_content_end(w) < 0)
        return -1;
    if (qfile_msg_attr(q, "tls_required_no"))
        qfile_put_attr(w, "tls_required_no", "yes");
    if (r->msg->hold.len)
        qfile_put_attr(w, "hold_reason", buf_cstr(&r->msg->hold));
    return qfile_finish(w);
}

/* cleanup_milter_replace - the new file takes the old one's place */
static void cleanup_milter_replace(struct cleanup_milter_run *r, struct qfile_writer *w, size_t n)
{
    struct cleanup_msg *m = r->msg;

    close(m->fd);
    qfile_writer_free(&m->w);
    m->w = *w;
    m->fd = w->fd;
    m->rcpts.count = n;
    m->content_bytes = w->content_length;
    if (r->sender_changed)
        buf_set(&m->sender, buf_cstr(&r->sender));
}

/* cleanup_milter_rewrite - write the changed message to a new temp file
 * and rename it over the old one; -1 on failure (outcome set) */
static int cleanup_milter_rewrite(struct cleanup_milter_run *r)
{
    struct cleanup_msg *m = r->msg;
    struct qfile_msg q;
    struct qfile_writer w;
    struct cleanup_milter_rcpt *v = NULL;
    struct cleanup_rcpt_sink rcpts = {NULL, NULL, 0};
    buf_t err = BUF_INIT, path = BUF_INIT;
    size_t n = 0;
    int fd = -1, rc = -1, table_failed = 0;

    qfile_msg_init(&q);
    buf_printf(&path, "%s.milter", buf_cstr(&m->tmp_path));
    if (qfile_read(m->fd, &q, &err) < 0) {
        log_warn("%s: cannot read back the queue file: %s", m->queue_id, buf_cstr(&err));
        goto out;
    }
    if (cleanup_milter_recipients(r, &q, &v, &n) == 0) { /* every one deleted */
        cleanup_milter_log(m, "discard", "milters deleted every recipient: message discarded");
        m->milter_discarded = 1;
        rc = 0;
        goto out;
    }
    if ((fd = safe_create(buf_cstr(&path), O_RDWR, 0600)) < 0)
        goto out;
    qfile_writer_init(&w, fd);
    rcpts.w = &w;
    if ((table_failed = cleanup_milter_write_envelope(r, &rcpts, &q, v, n) < 0) ||
        cleanup_milter_write_content(r, &w, &q) < 0 ||
        rename(buf_cstr(&path), buf_cstr(&m->tmp_path)) < 0) {
        if (!table_failed)
            log_warn("%s: queue file write error: %s", m->queue_id,
                     strerror(w.failed_errno ? w.failed_errno : errno));
        qfile_writer_free(&w);
        close(fd);
        unlink(buf_cstr(&path));
        goto out;
    }
    cleanup_milter_replace(r, &w, rcpts.count);
    rc = 0;
out:
    if (rc < 0)
        cleanup_msg_fail(m, CLEANUP_TEMPFAIL, "451", "4.3.0", "Error: queue file write error");
    cleanup_rcpt_sink_free(&rcpts);
    free(v);
    qfile_msg_free(&q);
    buf_free(&err);
    buf_free(&path);
    return rc;
}

/* cleanup_milter_free - release the run */
static void cleanup_milter_free(struct cleanup_milter_run *r)
{
    for (size_t i = 0; i < r->op_count; i++) {
        free(r->ops[i].addr);
        free(r->ops[i].notify);
        free(r->ops[i].orcpt);
    }
    free(r->ops);
    cleanup_milter_headers_free(&r->headers);
    buf_free(&r->body);
    buf_free(&r->data);
    buf_free(&r->sender);
    buf_free(&r->envid);
    event_free(r->start_ev);
    free(r);
}

static void cleanup_milter_on_tables(void *arg)
{
    cleanup_milter_finish(arg);
}

/* cleanup_milter_tables_wait - the dry pass of the added recipients'
 * rewriting and expansion in the message's scope; 1 when it waits for
 * remote answers (cleanup_milter_finish runs again once they are in) */
static int cleanup_milter_tables_wait(struct cleanup_milter_run *r)
{
    struct cleanup_msg *m = r->msg;

    if (m->scope == NULL)
        return 0;
    table_proxy_scope_enter(m->scope);
    for (size_t k = 0; k < r->op_count; k++)
        if (r->ops[k].add)
            cleanup_msg_rcpt_lookups(m->set, r->ops[k].addr);
    table_proxy_scope_leave();
    if (!table_proxy_scope_pending(m->scope))
        return 0;
    if (table_proxy_scope_wait(m->scope, r->base, cleanup_milter_on_tables, r) == 0)
        return 1;
    log_warn("%s: cannot wait for tern-proxymap; the lookups fail", m->queue_id);
    return 0;
}

/* cleanup_milter_finish - every milter ran, or one decided: write the
 * changes (once the added recipients' lookups are answered) or remove the
 * file, then tell the caller */
static void cleanup_milter_finish(struct cleanup_milter_run *r)
{
    struct cleanup_msg *m = r->msg;
    cleanup_milter_done_fn done = r->done;
    void *arg = r->arg;

    if (m->status == CLEANUP_OK && !m->milter_discarded && (r->headers.changed || r->changed)) {
        if (cleanup_milter_tables_wait(r))
            return;
        table_proxy_scope_enter(m->scope); /* NULL: no scope, lookups block */
        cleanup_milter_rewrite(r);
        table_proxy_scope_leave();
    }
    if (m->status != CLEANUP_OK || m->milter_discarded)
        cleanup_msg_discard(m);
    /* a milter the transaction ended for before its end of message (a
     * refusal, a discard, an accept at a header) gets SMFIC_ABORT now,
     * while the socket is still ours */
    for (size_t i = 0; i < r->count; i++)
        if (!(r->eom_done & (1u << i)))
            milter_abort(r->milters[i]);
    cleanup_milter_free(r);
    done(arg);
}

struct cleanup_milter_run *cleanup_milter_content(struct event_base *base, struct cleanup_msg *m,
                                                  struct milter *const *milters, size_t n,
                                                  cleanup_milter_done_fn done, void *arg)
{
    struct cleanup_milter_run *r = xcalloc(1, sizeof(*r));

    r->base = base;
    r->msg = m;
    r->count = n < MILTER_MAX ? n : MILTER_MAX;
    memcpy(r->milters, milters, r->count * sizeof(*milters));
    for (size_t i = 0; i < r->count && m->set->message_size_limit > 0; i++)
        milter_limit_mods(r->milters[i], (size_t)m->set->message_size_limit);
    r->done = done;
    r->arg = arg;
    cleanup_milter_headers_init(&r->headers);
    r->start_ev = event_new(base, -1, 0, cleanup_milter_on_start, r);
    if (cleanup_milter_read_headers(r) < 0) {
        cleanup_msg_fail(m, CLEANUP_TEMPFAIL, "451", "4.3.0", "Error: queue file read error");
        r->cur = r->count; /* finish at once, from the event loop */
    }
    event_active(r->start_ev, EV_TIMEOUT, 0);
    return r;
}

void cleanup_milter_cancel(struct cleanup_milter_run *r)
{
    if (r)
        cleanup_milter_free(r);
}
