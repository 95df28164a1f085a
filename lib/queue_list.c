/*
 * queue_list - read the queue's envelopes and print them as mailq does.
 *
 * See queue_list.h.  Only the envelope records of each queue file are read
 * (qfile_read seeks over the content), so a listing of 20,000 messages takes
 * a fraction of a second.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "qfile.h"
#include "json.h"
#include "queue_list.h"

/* defer/H/ID is one line per pending recipient; a bigger file is cut here */
#define QUEUE_LIST_DEFER_MAX (4u * 1024 * 1024)

static const char *queue_names[] = {"incoming", "active", "deferred", "hold", "maildrop"};

const char *queue_name_str(enum queue_name q)
{
    return queue_names[q];
}

void queue_list_init(struct queue_list *ql)
{
    memset(ql, 0, sizeof(*ql));
}

/* queue_list_entry_free - release one entry's strings */
static void queue_list_entry_free(struct queue_list_entry *e)
{
    for (size_t i = 0; i < e->rcpt_count; i++) {
        free(e->rcpts[i].address);
        free(e->rcpts[i].reason);
    }
    free(e->rcpts);
    free(e->sender);
}

void queue_list_free(struct queue_list *ql)
{
    for (size_t i = 0; i < ql->count; i++)
        queue_list_entry_free(&ql->v[i]);
    free(ql->v);
    queue_list_init(ql);
}

void queue_list_defer_path(const char *top, const char *id, buf_t *out)
{
    buf_reset(out);
    buf_printf(out, "%s/defer/%c/%s", top, qid_hash_dir(id), id);
}

/* queue_list_read_bounded - up to max bytes of path into out; -1 on error */
static int queue_list_read_bounded(const char *path, size_t max, buf_t *out)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ssize_t r = 0;

    if (fd < 0)
        return -1;
    buf_reset(out);
    while (out->len < max) {
        buf_reserve(out, 65536);
        size_t room = out->cap - out->len - 1;
        r = read(fd, out->data + out->len, room < max - out->len ? room : max - out->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        out->len += (size_t)r;
        out->data[out->len] = 0;
    }
    close(fd);
    return r < 0 ? -1 : 0;
}

/* queue_list_set_reason - give reason to the pending recipient address that
 * has none yet, searching from *cursor (defer lines follow recipient order) */
static void queue_list_set_reason(struct queue_list_entry *e, const char *address,
                                  const char *reason, size_t *cursor)
{
    for (size_t k = 0; k < e->rcpt_count; k++) {
        struct queue_list_rcpt *r = &e->rcpts[(*cursor + k) % e->rcpt_count];
        if (r->reason == NULL && r->status == QFILE_RCPT_PENDING &&
            strcmp(r->address, address) == 0) {
            r->reason = xstrdup(reason);
            *cursor = (*cursor + k + 1) % e->rcpt_count;
            return;
        }
    }
}

/* queue_list_read_reasons - defer/H/ID lines "address<TAB>dsn<TAB>reason" */
static void queue_list_read_reasons(const char *top, struct queue_list_entry *e)
{
    buf_t path = BUF_INIT, text = BUF_INIT;
    size_t cursor = 0;

    queue_list_defer_path(top, e->id, &path);
    if (e->rcpt_count > 0 && queue_list_read_bounded(path.data, QUEUE_LIST_DEFER_MAX, &text) == 0) {
        char *line = text.data;
        while (line && *line) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = 0;
            char *tab1 = strchr(line, '\t');
            char *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
            if (tab2) {
                *tab1 = 0;
                queue_list_set_reason(e, line, tab2 + 1, &cursor);
            }
            line = nl ? nl + 1 : NULL;
        }
    }
    buf_free(&path);
    buf_free(&text);
}

/* queue_list_add - append an entry made from a parsed queue file */
static void queue_list_add(struct queue_list *ql, const char *id, enum queue_name q,
                           const struct qfile_msg *m)
{
    struct queue_list_entry *e;

    if (ql->count == ql->cap) {
        ql->cap = ql->cap ? ql->cap * 2 : 64;
        ql->v = xrealloc(ql->v, ql->cap * sizeof(*ql->v));
    }
    e = &ql->v[ql->count++];
    memset(e, 0, sizeof(*e));
    memcpy(e->id, id, QID_LEN + 1);
    e->queue = q;
    e->arrival_sec = m->arrival_sec;
    e->arrival_usec = m->arrival_usec;
    e->size = (long long)m->content_length;
    e->sender = xstrdup(m->sender);
    e->rcpts = xcalloc(m->rcpt_count ? m->rcpt_count : 1, sizeof(*e->rcpts));
    e->rcpt_count = m->rcpt_count;
    for (size_t i = 0; i < m->rcpt_count; i++) {
        e->rcpts[i].address = xstrdup(m->rcpts[i].address);
        e->rcpts[i].status = m->rcpts[i].status;
    }
}

/* queue_list_hold_reason - why a held message is held (cleanup's
 * hold_reason: smtpd's HOLD, a milter's quarantine) as the reason of its
 * pending recipients that have none */
static void queue_list_hold_reason(struct queue_list_entry *e, const char *reason)
{
    for (size_t i = 0; reason && i < e->rcpt_count; i++)
        if (e->rcpts[i].reason == NULL && qfile_rcpt_is_pending(e->rcpts[i].status))
            e->rcpts[i].reason = xstrdup(reason);
}

int queue_list_add_file(struct queue_list *ql, const char *top, const char *path, const char *id,
                        enum queue_name q)
{
    struct qfile_msg m;
    buf_t err = BUF_INIT;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK), rc = -1;

    if (fd < 0 || !qid_valid(id))
        goto out;
    qfile_msg_init(&m);
    if (qfile_read(fd, &m, &err) == 0) {
        queue_list_add(ql, id, q, &m);
        if (q != QUEUE_INCOMING && q != QUEUE_MAILDROP)
            queue_list_read_reasons(top, &ql->v[ql->count - 1]);
        if (q == QUEUE_HOLD)
            queue_list_hold_reason(&ql->v[ql->count - 1], qfile_msg_attr(&m, "hold_reason"));
        rc = 0;
    }
    qfile_msg_free(&m);
out:
    buf_free(&err);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* queue_list_scan_dir - every queue file in top/sub; -1 when unreadable */
static int queue_list_scan_dir(struct queue_list *ql, const char *top, const char *sub,
                               enum queue_name q)
{
    buf_t path = BUF_INIT;
    DIR *dir;
    struct dirent *de;

    buf_printf(&path, "%s/%s", top, sub);
    dir = opendir(path.data);
    if (dir == NULL) {
        buf_free(&path);
        return -1;
    }
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.' || !qid_valid(de->d_name))
            continue;
        buf_reset(&path);
        buf_printf(&path, "%s/%s/%s", top, sub, de->d_name);
        (void)queue_list_add_file(ql, top, path.data, de->d_name, q);
    }
    closedir(dir);
    buf_free(&path);
    return 0;
}

/* queue_list_compare - arrival, then ID */
static int queue_list_compare(const void *a, const void *b)
{
    const struct queue_list_entry *x = a, *y = b;

    if (x->arrival_sec != y->arrival_sec)
        return x->arrival_sec < y->arrival_sec ? -1 : 1;
    if (x->arrival_usec != y->arrival_usec)
        return x->arrival_usec < y->arrival_usec ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* queue_list_dedup - drop the second sighting of a message that moved */
static void queue_list_dedup(struct queue_list *ql)
{
    size_t out = 0;

    for (size_t i = 0; i < ql->count; i++) {
        if (out > 0 && strcmp(ql->v[out - 1].id, ql->v[i].id) == 0) {
            queue_list_entry_free(&ql->v[i]);
            continue;
        }
        ql->v[out++] = ql->v[i];
    }
    ql->count = out;
}

int queue_list_scan(const char *top, struct queue_list *ql, buf_t *err)
{
    int readable = 0;
    char sub[16];

    readable += queue_list_scan_dir(ql, top, "incoming", QUEUE_INCOMING) == 0;
    readable += queue_list_scan_dir(ql, top, "active", QUEUE_ACTIVE) == 0;
    for (int h = 0; h < 16; h++) {
        snprintf(sub, sizeof(sub), "deferred/%x", h);
        readable += queue_list_scan_dir(ql, top, sub, QUEUE_DEFERRED) == 0;
    }
    readable += queue_list_scan_dir(ql, top, "hold", QUEUE_HOLD) == 0;
    readable += queue_list_scan_dir(ql, top, "maildrop", QUEUE_MAILDROP) == 0;
    if (readable == 0) {
        buf_printf(err, "cannot read the queue directory %s: %s", top, strerror(errno));
        return -1;
    }
    if (ql->count > 1)
        qsort(ql->v, ql->count, sizeof(*ql->v), queue_list_compare);
    queue_list_dedup(ql);
    return 0;
}

/* queue_list_put_safe - s with control characters shown as '?' */
static void queue_list_put_safe(buf_t *out, const char *s)
{
    for (; *s; s++)
        buf_putc(out, (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

/* queue_list_is_pending - not yet delivered or bounced */
static int queue_list_is_pending(const struct queue_list_rcpt *r)
{
    return r->status != QFILE_RCPT_SENT && r->status != QFILE_RCPT_FAILED;
}

/* queue_list_format_entry - first line, then reasons and recipients */
static void queue_list_format_entry(const struct queue_list_entry *e, buf_t *out)
{
    char idmark[QID_LEN + 2], when[32];
    time_t t = (time_t)e->arrival_sec;
    struct tm tm;
    const char *last_reason = NULL;

    snprintf(idmark, sizeof(idmark), "%s%c", e->id,
             e->queue == QUEUE_ACTIVE ? '*'
             : e->queue == QUEUE_HOLD ? '!'
                                      : ' ');
    if (localtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%a %b %e %H:%M", &tm) == 0)
        snprintf(when, sizeof(when), "%-16s", "?");
    buf_printf(out, "%-15s%8lld %.16s <", idmark, e->size, when);
    queue_list_put_safe(out, e->sender);
    buf_puts(out, ">\n");
    for (size_t i = 0; i < e->rcpt_count; i++) {
        const struct queue_list_rcpt *r = &e->rcpts[i];
        if (!queue_list_is_pending(r))
            continue;
        if (r->reason && (last_reason == NULL || strcmp(r->reason, last_reason) != 0)) {
            buf_puts(out, "                 (");
            queue_list_put_safe(out, r->reason);
            buf_puts(out, ")\n");
            last_reason = r->reason;
        }
        buf_puts(out, "\t\t\t\t\t <");
        queue_list_put_safe(out, r->address);
        buf_puts(out, ">\n");
    }
}

/* queue_list_format_section - the header line and the entries of one
 * section: the queue (maildrop 0) or maildrop/ (maildrop 1); the count */
static size_t queue_list_format_section(const struct queue_list *ql, const char *name, int maildrop,
                                        buf_t *out)
{
    size_t n = 0;

    for (size_t i = 0; i < ql->count; i++)
        n += (ql->v[i].queue == QUEUE_MAILDROP) == maildrop;
    if (n == 0 && maildrop)
        return 0;
    if (n == 0) {
        buf_printf(out, "%s is empty\n", name);
        return 0;
    }
    buf_printf(out, "\t\t%s (%zu request%s)\n", name, n, n == 1 ? "" : "s");
    buf_puts(out, "-----Q-ID----- --Size-- -----Q-Time----- "
                  "------------Sender/Recipient-----------\n");
    for (size_t i = 0; i < ql->count; i++)
        if ((ql->v[i].queue == QUEUE_MAILDROP) == maildrop)
            queue_list_format_entry(&ql->v[i], out);
    return n;
}

void queue_list_format_sendmail(const struct queue_list *ql, const char *queue_dir, buf_t *out)
{
    buf_t maildrop = BUF_INIT;
    size_t total = queue_list_format_section(ql, queue_dir, 0, out);

    buf_printf(&maildrop, "%s/maildrop", queue_dir);
    total += queue_list_format_section(ql, buf_cstr(&maildrop), 1, out);
    buf_printf(out, "\t\tTotal requests: %zu\n", total);
    buf_free(&maildrop);
}

/* queue_list_json_status - the Postfix-style recipient status */
static const char *queue_list_json_status(char status)
{
    return status == QFILE_RCPT_SENT ? "sent" : status == QFILE_RCPT_FAILED ? "failed" : "pending";
}

void queue_list_format_json(const struct queue_list *ql, buf_t *out)
{
    for (size_t i = 0; i < ql->count; i++) {
        const struct queue_list_entry *e = &ql->v[i];
        buf_printf(out,
                   "{\"queue_id\":\"%s\",\"queue_name\":\"%s\",\"arrival_time\":%lld,"
                   "\"message_size\":%lld,\"sender\":",
                   e->id, queue_name_str(e->queue), e->arrival_sec, e->size);
        json_put_string(out, e->sender);
        buf_puts(out, ",\"recipients\":[");
        for (size_t j = 0; j < e->rcpt_count; j++) {
            buf_puts(out, j ? ",{\"address\":" : "{\"address\":");
            json_put_string(out, e->rcpts[j].address);
            buf_printf(out, ",\"status\":\"%s\"", queue_list_json_status(e->rcpts[j].status));
            if (e->rcpts[j].reason) {
                buf_puts(out, ",\"delay_reason\":");
                json_put_string(out, e->rcpts[j].reason);
            }
            buf_putc(out, '}');
        }
        buf_puts(out, "]}\n");
    }
}

int queue_list_print(const char *top, int json, buf_t *out, buf_t *err)
{
    struct queue_list ql;
    int rc;

    queue_list_init(&ql);
    rc = queue_list_scan(top, &ql, err);
    if (rc == 0 && json)
        queue_list_format_json(&ql, out);
    else if (rc == 0)
        queue_list_format_sendmail(&ql, top, out);
    queue_list_free(&ql);
    return rc;
}

int queue_list_find(const char *top, const char *id, buf_t *out, enum queue_name *q)
{
    struct stat st;
    static const enum queue_name order[] = {QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED,
                                            QUEUE_HOLD};

    if (!qid_valid(id))
        return -1;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        buf_reset(out);
        if (order[i] == QUEUE_DEFERRED)
            buf_printf(out, "%s/deferred/%c/%s", top, qid_hash_dir(id), id);
        else
            buf_printf(out, "%s/%s/%s", top, queue_name_str(order[i]), id);
        if (lstat(out->data, &st) == 0 && S_ISREG(st.st_mode)) {
            *q = order[i];
            return 0;
        }
    }
    buf_reset(out);
    return -1;
}
