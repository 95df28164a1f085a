/*
 * deliver - one local.deliver request, inside a worker process: read the
 * content from the queue file, then for every recipient check the
 * Delivered-To: loop, expand it into targets, deliver each target (mailbox,
 * Maildir, file or command as the right user; forwarded addresses through
 * cleanup, one message per envelope sender), log one line per target and
 * fold the targets' results into the recipient's: any deferral defers the
 * recipient (qmgr retries it), else any bounce bounces it, else it is sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "local.h"
#include "log.h"
#include "maillog.h"
#include "proctitle.h"
#include "timeutil.h"

/* arguments of a delivery done through local_runas */
struct deliver_job {
    const struct local_env *env;
    const struct local_message *msg;
    const struct local_target *t;
    const char *path;
};

/* deliver_log - "ID: to=<...>, orig_to=<...>, relay=local, ..." */
static void deliver_log(const struct delivery_request *req, const char *to, const char *orig,
                        const struct delivery_outcome *r)
{
    static const char *words[] = {"deferred", "sent", "deferred", "bounced"};
    double now = time_now_double();
    struct maillog_delivery ev = {
        .queue_id = req->queue_id,
        .rcpt = to,
        .orig_rcpt = orig && strcasecmp(orig, to) != 0 ? orig : NULL,
        .relay = "local",
        .mailer = "local",
        .delay = now - (double)req->arrival,
        .xdelay = now - req->started,
        .size = req->size,
        .nrcpts = req->rcpt_count,
        .dsn = r->dsn,
        .status = words[r->status],
        .reason = buf_cstr(&r->reason),
    };

    maillog_log_delivery(&ev);
}

/* deliver_job_mbox / _maildir / _file - runas bodies */
static void deliver_job_mbox(void *arg, struct delivery_outcome *res)
{
    struct deliver_job *j = arg;
    local_deliver_mbox(j->env, j->msg, j->t, res);
}

static void deliver_job_maildir(void *arg, struct delivery_outcome *res)
{
    struct deliver_job *j = arg;
    local_deliver_maildir(j->path, j->msg, j->t, res);
}

static void deliver_job_file(void *arg, struct delivery_outcome *res)
{
    struct deliver_job *j = arg;
    local_deliver_file(j->path, j->msg, j->t, res);
}

/* deliver_mailbox - spool mbox, or home_mailbox (Maildir/ or a file) */
static void deliver_mailbox(const struct local_env *env, const struct local_message *msg,
                            struct local_target *t)
{
    struct deliver_job j = {env, msg, t, NULL};
    buf_t path = BUF_INIT;
    size_t n = strlen(env->home_mailbox);

    if (n == 0) {
        local_runas(&t->user, 0, deliver_job_mbox, &j, &t->result);
        return;
    }
    buf_printf(&path, "%s/%s", t->user.home, env->home_mailbox);
    while (path.len > 1 && path.data[path.len - 1] == '/')
        buf_truncate(&path, path.len - 1);
    j.path = buf_cstr(&path);
    local_runas(&t->user, 1,
                env->home_mailbox[n - 1] == '/' ? deliver_job_maildir : deliver_job_file, &j,
                &t->result);
    buf_free(&path);
}

/* deliver_target - one mailbox, file or command target */
static void deliver_target(const struct local_env *env, const struct local_message *msg,
                           struct local_target *t)
{
    struct local_message m = *msg; /* with the target's sender (owner- rule) */
    struct deliver_job j = {env, &m, t, t->what};

    m.sender = t->sender;
    switch (t->kind) {
    case TARGET_MAILBOX:
        deliver_mailbox(env, &m, t);
        break;
    case TARGET_FILE:
        local_runas(&t->user, 1, deliver_job_file, &j, &t->result);
        break;
    case TARGET_COMMAND:
        local_deliver_command(env, &m, t, t->what, &t->result);
        break;
    case TARGET_FORWARD:
        break;
    }
}

/* deliver_forwards - FORWARD targets, one message per envelope sender */
static void deliver_forwards(const struct delivery_request *req, const struct delivery_rcpt *rcpt,
                             const struct local_message *msg, struct local_expansion *x)
{
    struct local_target **group = xcalloc(x->count ? x->count : 1, sizeof(*group));

    for (size_t i = 0; i < x->count; i++) {
        struct local_target *t = &x->v[i];
        size_t n = 0;
        if (t->kind != TARGET_FORWARD || t->result.status != DELIVERY_PENDING)
            continue;
        for (size_t k = i; k < x->count; k++)
            if (x->v[k].kind == TARGET_FORWARD && x->v[k].result.status == DELIVERY_PENDING &&
                strcmp(x->v[k].sender, t->sender) == 0)
                group[n++] = &x->v[k];
        local_forward(req, rcpt, msg, group, n);
    }
    free(group);
}

/* deliver_fold - the recipient's result from its targets' results */
static void deliver_fold(const struct local_expansion *x, struct delivery_outcome *res)
{
    const struct local_target *worst = NULL;
    static const int rank[] = {3, 0, 2, 1}; /* pending, sent, defer, bounce */

    for (size_t i = 0; i < x->count; i++)
        if (worst == NULL || rank[x->v[i].result.status] > rank[worst->result.status])
            worst = &x->v[i];
    if (worst == NULL || worst->result.status == DELIVERY_PENDING)
        local_result_set(res, DELIVERY_DEFER, "4.3.0", "delivery not completed");
    else if (x->count > 1 && worst->result.status == DELIVERY_SENT)
        local_result_set(res, DELIVERY_SENT, "2.0.0", "delivered to %zu destinations", x->count);
    else
        local_result_set(res, worst->result.status, worst->result.dsn, "%s",
                         buf_cstr(&worst->result.reason));
}

/* deliver_rcpt - loop check, expansion, targets, logging, result */
static void deliver_rcpt(const struct local_env *env, const struct delivery_request *req,
                         struct delivery_rcpt *rcpt, const struct local_message *msg)
{
    struct local_expansion x;

    memset(&x, 0, sizeof(x));
    /* the local part only: one user, never the address list (OPS-04) */
    proctitle_set("%s to %.*s", req->queue_id, (int)strcspn(rcpt->address, "@"), rcpt->address);
    if (local_message_has_delivered_to(msg, rcpt->address)) {
        local_result_set(&rcpt->result, DELIVERY_BOUNCE, "5.4.6", "mail forwarding loop for %s",
                         rcpt->address);
    } else if (local_expand(env, rcpt->address, req->sender, &x, &rcpt->result) == 0) {
        for (size_t i = 0; i < x.count; i++)
            deliver_target(env, msg, &x.v[i]);
        deliver_forwards(req, rcpt, msg, &x);
        for (size_t i = 0; i < x.count; i++) {
            const struct local_target *t = &x.v[i];
            deliver_log(req, t->kind == TARGET_FORWARD ? t->what : t->address, rcpt->address,
                        &t->result);
        }
        deliver_fold(&x, &rcpt->result);
        local_expansion_free(&x);
        return;
    }
    deliver_log(req, rcpt->address, NULL, &rcpt->result);
    local_expansion_free(&x);
}

/* deliver_read_content - the message content from the queue file */
static int deliver_read_content(const struct delivery_request *req, buf_t *content)
{
    int fd = open(req->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    size_t want = (size_t)req->content_length;

    if (fd < 0)
        return -1;
    buf_reserve(content, want + 1);
    while (content->len < want) {
        ssize_t n = pread(fd, content->data + content->len, want - content->len,
                          (off_t)(req->content_offset + (long long)content->len));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        content->len += (size_t)n;
        content->data[content->len] = 0;
    }
    close(fd);
    return 0;
}

/* local_deliver_request - see local.h */
void local_deliver_request(const struct local_env *env, struct delivery_request *req)
{
    buf_t content = BUF_INIT;
    struct local_message msg;

    if (deliver_read_content(req, &content) < 0) {
        log_warn("%s: cannot read %s: %s", req->queue_id, req->path, strerror(errno));
        for (size_t i = 0; i < req->rcpt_count; i++)
            local_result_set(&req->rcpts[i].result, DELIVERY_DEFER, "4.3.0",
                             "cannot read the queue file");
        buf_free(&content);
        return;
    }
    msg.sender = req->sender;
    msg.content = buf_cstr(&content);
    msg.len = content.len;
    msg.arrival = (time_t)req->arrival;
    for (size_t i = 0; i < req->rcpt_count; i++)
        deliver_rcpt(env, req, &req->rcpts[i], &msg);
    buf_free(&content);
}
