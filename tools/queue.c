/*
 * queue - `tern queue ...`: the administrator's queue tools (postqueue and
 * postsuper in one; docs/queue-tools.md).
 *
 *   list [-j]                       the mailq listing (-j: JSON lines)
 *   show ID                         envelope, headers and body of one message
 *   flush [ID...]                   retry deferred mail now
 *   delete|hold|release|requeue ID...|ALL
 *
 * While tern runs, list asks tern-showq (public/showq) and the actions go to
 * qmgr as `qmgr.control` on private/qmgr, so they are safe against messages in
 * flight.  When tern is stopped, list and show read the queue directly and
 * delete/hold/release act on the files; flush and requeue need tern running.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "attr.h"
#include "buf.h"
#include "config.h"
#include "qfile.h"
#include "qid.h"
#include "queue.h"
#include "queue_list.h"
#include "safefile.h"
#include "service.h"
#include "timeutil.h"

/* how long to wait for showq or qmgr to answer */
#define QUEUE_REPLY_TIMEOUT_SECONDS 120
/* a listing bigger than this is cut (a million messages is ~100 MB) */
#define QUEUE_LISTING_MAX (1024u * 1024 * 1024)

struct queue_cmd {
    struct config *cfg;
    const char *top; /* queue_directory */
};

/* queue_usage - the subcommands */
static int queue_usage(void)
{
    fprintf(stderr, "usage: tern [-c DIR] queue list [-j]\n"
                    "       tern [-c DIR] queue show ID\n"
                    "       tern [-c DIR] queue flush [ID...]\n"
                    "       tern [-c DIR] queue delete|hold|release|requeue ID...|ALL\n");
    return 2;
}

/* queue_running - 1 when queue_directory/pid/master.pid names a live master */
static int queue_running(const struct queue_cmd *qc)
{
    return service_master_pid(qc->top) > 0;
}

/* queue_connect - connect to top/name; fd or -1 */
static int queue_connect(const struct queue_cmd *qc, const char *name)
{
    buf_t path = BUF_INIT;
    int fd;

    buf_printf(&path, "%s/%s", qc->top, name);
    fd = unix_connect(path.data, 0);
    buf_free(&path);
    return fd;
}

/* queue_read_all - every byte until EOF (bounded, with a timeout); 0 ok */
static int queue_read_all(int fd, buf_t *out)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    while (out->len < QUEUE_LISTING_MAX) {
        if (poll(&p, 1, QUEUE_REPLY_TIMEOUT_SECONDS * 1000) <= 0)
            return -1;
        buf_reserve(out, 65536);
        ssize_t r = read(fd, out->data + out->len, out->cap - out->len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
        out->len += (size_t)r;
        out->data[out->len] = 0;
    }
    return 0;
}

/* queue_list_showq - ask tern-showq; 0 ok, -1 not reachable, 1 refused */
static int queue_list_showq(const struct queue_cmd *qc, int json, buf_t *out)
{
    buf_t req = BUF_INIT;
    int fd = queue_connect(qc, "public/showq"), rc = -1;

    if (fd < 0)
        return -1;
    attr_begin(&req, "showq.list");
    attr_add_str(&req, "format", json ? "json" : "sendmail");
    attr_end(&req);
    if (attr_write_fd(fd, &req) == 0 && queue_read_all(fd, out) == 0 && out->len > 0)
        rc = strcmp(out->data, QUEUE_LIST_DENIED) == 0 ? 1 : 0;
    close(fd);
    buf_free(&req);
    return rc;
}

/* queue_cmd_list - through showq, or read the queue when tern is stopped */
static int queue_cmd_list(const struct queue_cmd *qc, int argc, char **argv)
{
    int json = argc == 2 && strcmp(argv[1], "-j") == 0;
    buf_t out = BUF_INIT, err = BUF_INIT;
    int rc;

    if (argc > 2 || (argc == 2 && !json))
        return queue_usage();
    rc = queue_list_showq(qc, json, &out);
    if (rc < 0) {
        buf_reset(&out);
        if ((rc = queue_list_print(qc->top, json, &out, &err)) < 0)
            fprintf(stderr, "tern: queue: %s\n", buf_cstr(&err));
    }
    fwrite(out.data ? out.data : "", 1, out.len, rc == 1 ? stderr : stdout);
    buf_free(&out);
    buf_free(&err);
    return rc == 0 ? 0 : 1;
}

/* queue_show_envelope - the envelope records, one per line */
static void queue_show_envelope(const struct queue_cmd *qc, const char *path, const char *id,
                                enum queue_name q, const struct qfile_msg *m)
{
    buf_t date = BUF_INIT;
    struct queue_list ql;

    time_rfc2822((time_t)m->arrival_sec, &date);
    printf("*** ENVELOPE ***\nqueue_id: %s\nqueue_name: %s\narrival_time: %s\n"
           "message_size: %zu\nsender: %s\n",
           id, queue_name_str(q), date.data, m->content_length, m->sender);
    for (size_t i = 0; i < m->attr_count; i++)
        printf("attribute: %s=%s\n", m->attrs[i].name, m->attrs[i].value);
    for (size_t i = 0; i < m->rcpt_count; i++) {
        const struct qfile_rcpt *r = &m->rcpts[i];
        printf("recipient: %s status=%s", r->address,
               r->status == QFILE_RCPT_SENT     ? "sent"
               : r->status == QFILE_RCPT_FAILED ? "failed"
                                                : "pending");
        if (*r->original && strcmp(r->original, r->address) != 0)
            printf(" original=%s", r->original);
        if (*r->notify)
            printf(" notify=%s", r->notify);
        if (*r->orcpt)
            printf(" orcpt=%s", r->orcpt);
        putchar('\n');
    }
    /* the deferral reasons, as the listing shows them */
    queue_list_init(&ql);
    if (queue_list_add_file(&ql, qc->top, path, id, q) == 0) {
        for (size_t j = 0; j < ql.v[0].rcpt_count; j++)
            if (ql.v[0].rcpts[j].reason)
                printf("reason: %s: %s\n", ql.v[0].rcpts[j].address, ql.v[0].rcpts[j].reason);
    }
    queue_list_free(&ql);
    buf_free(&date);
}

/* queue_show_putc - one content byte; the first empty line starts the body */
static void queue_show_putc(int c, int *in_headers, int *prev)
{
    if (*in_headers && c == '\n' && *prev == '\n') {
        fputs("*** BODY ***\n", stdout);
        *in_headers = 0;
        return;
    }
    putchar(c);
    *prev = c;
}

/* queue_show_content - headers and body with CRLF shown as LF */
static int queue_show_content(int fd, const struct qfile_msg *m)
{
    static char chunk[65536];
    off_t at = m->content_offset;
    size_t left = m->content_length;
    int in_headers = 1, prev = '\n', pending_cr = 0;

    fputs("*** HEADERS ***\n", stdout);
    while (left > 0) {
        ssize_t n = pread(fd, chunk, left < sizeof(chunk) ? left : sizeof(chunk), at);
        if (n <= 0)
            return -1;
        for (ssize_t i = 0; i < n; i++) {
            if (pending_cr && chunk[i] != '\n')
                queue_show_putc('\r', &in_headers, &prev);
            pending_cr = chunk[i] == '\r';
            if (!pending_cr)
                queue_show_putc(chunk[i], &in_headers, &prev);
        }
        at += n;
        left -= (size_t)n;
    }
    if (pending_cr)
        queue_show_putc('\r', &in_headers, &prev);
    if (prev != '\n')
        putchar('\n');
    return 0;
}

/* queue_cmd_show - one message, read directly from its queue file */
static int queue_cmd_show(const struct queue_cmd *qc, int argc, char **argv)
{
    buf_t path = BUF_INIT, err = BUF_INIT;
    struct qfile_msg m;
    enum queue_name q;
    int fd = -1, rc = 1;

    if (argc != 2)
        return queue_usage();
    qfile_msg_init(&m);
    if (queue_list_find(qc->top, argv[1], &path, &q) < 0 ||
        (fd = safe_open_regular(path.data, O_RDONLY)) < 0) {
        fprintf(stderr, "tern: queue: no message with ID %s\n", argv[1]);
    } else if (qfile_read(fd, &m, &err) < 0) {
        fprintf(stderr, "tern: queue: %s: %s\n", path.data, buf_cstr(&err));
    } else {
        queue_show_envelope(qc, path.data, argv[1], q, &m);
        rc = queue_show_content(fd, &m) < 0 ? 1 : 0;
        if (rc)
            fprintf(stderr, "tern: queue: %s: cannot read the content\n", path.data);
    }
    if (fd >= 0)
        close(fd);
    qfile_msg_free(&m);
    buf_free(&path);
    buf_free(&err);
    return rc;
}

/* queue_control_reply - report a qmgr.reply; the exit status */
static int queue_control_reply(const struct attr_msg *am, const char *action)
{
    const char *status = attr_get(am, "status", NULL);
    const char *count = attr_get(am, "count", NULL);
    int rc = 0;

    if (strcmp(attr_proto(am), "qmgr.reply") != 0 || status == NULL) {
        fprintf(stderr, "tern: queue: qmgr sent a malformed reply\n");
        return 1;
    }
    if (strcmp(status, "ok") != 0) {
        const char *text = attr_get(am, "text", NULL);
        fprintf(stderr, "tern: queue: %s refused by qmgr: %s\n", action, text ? text : status);
        return 1;
    }
    for (size_t i = 0; i < am->count; i++) {
        if (strcmp(am->v[i].name, "missing") == 0) {
            fprintf(stderr, "tern: queue: no message with ID %s\n", am->v[i].value);
            rc = 1;
        }
    }
    printf("tern: queue: %s: %s message%s\n", action, count ? count : "0",
           count && strcmp(count, "1") == 0 ? "" : "s");
    return rc;
}

/* queue_control_qmgr - send qmgr.control to a running qmgr */
static int queue_control_qmgr(const struct queue_cmd *qc, const char *action, char **ids, int count)
{
    buf_t req = BUF_INIT;
    struct attr_msg reply;
    int fd = queue_connect(qc, "private/qmgr"), rc = 1;

    if (fd < 0) {
        fprintf(stderr, "tern: queue: cannot reach qmgr (%s/private/qmgr): %s\n", qc->top,
                strerror(errno));
        return 1;
    }
    attr_msg_init(&reply);
    attr_begin(&req, "qmgr.control");
    attr_add_str(&req, "action", action);
    for (int i = 0; i < count; i++)
        attr_add_str(&req, "id", ids[i]);
    if (count == 0)
        attr_add_str(&req, "id", "ALL");
    attr_end(&req);
    if (attr_write_fd(fd, &req) < 0 || attr_read_fd(fd, &reply, QUEUE_REPLY_TIMEOUT_SECONDS) < 0)
        fprintf(stderr, "tern: queue: no answer from qmgr\n");
    else
        rc = queue_control_reply(&reply, action);
    attr_msg_free(&reply);
    buf_free(&req);
    close(fd);
    return rc;
}

/* queue_collect_dir - every queue ID named in top/sub */
static void queue_collect_dir(const struct queue_cmd *qc, const char *sub, char ***ids,
                              size_t *count)
{
    buf_t path = BUF_INIT;
    struct dirent *de;
    DIR *dir;

    buf_printf(&path, "%s/%s", qc->top, sub);
    dir = opendir(path.data);
    buf_free(&path);
    if (dir == NULL)
        return;
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.' || !qid_valid(de->d_name))
            continue;
        *ids = xrealloc(*ids, (*count + 1) * sizeof(**ids));
        (*ids)[(*count)++] = xstrdup(de->d_name);
    }
    closedir(dir);
}

/* queue_collect_all - the IDs ALL means for action */
static void queue_collect_all(const struct queue_cmd *qc, const char *action, char ***ids,
                              size_t *count)
{
    char sub[16];

    if (strcmp(action, "release") == 0) {
        queue_collect_dir(qc, "hold", ids, count);
        return;
    }
    queue_collect_dir(qc, "incoming", ids, count);
    queue_collect_dir(qc, "active", ids, count);
    for (int h = 0; h < 16; h++) {
        snprintf(sub, sizeof(sub), "deferred/%x", h);
        queue_collect_dir(qc, sub, ids, count);
    }
    if (strcmp(action, "delete") == 0)
        queue_collect_dir(qc, "hold", ids, count);
}

/* queue_direct_move - rename path to dest, never over an existing file */
static int queue_direct_move(const char *path, const char *dest)
{
    if (renameat2(AT_FDCWD, path, AT_FDCWD, dest, RENAME_NOREPLACE) == 0)
        return 0;
    fprintf(stderr, "tern: queue: cannot move %s to %s: %s\n", path, dest, strerror(errno));
    return -1;
}

/* queue_direct_one - act on one file: 1 done, 0 nothing to do, -1 missing,
 * -2 error (reported) */
static int queue_direct_one(const struct queue_cmd *qc, const char *action, const char *id)
{
    buf_t path = BUF_INIT, dest = BUF_INIT;
    enum queue_name q;
    int rc = 1;

    if (queue_list_find(qc->top, id, &path, &q) < 0) {
        buf_free(&path);
        return -1;
    }
    if (strcmp(action, "delete") == 0) {
        if (unlink(path.data) < 0 && errno != ENOENT) {
            fprintf(stderr, "tern: queue: cannot remove %s: %s\n", path.data, strerror(errno));
            rc = -2;
        }
        queue_list_defer_path(qc->top, id, &dest);
        (void)unlink(dest.data);
    } else if (strcmp(action, "hold") == 0) {
        buf_printf(&dest, "%s/hold/%s", qc->top, id);
        rc = q == QUEUE_HOLD ? 0 : queue_direct_move(path.data, dest.data) < 0 ? -2 : 1;
    } else if (q != QUEUE_HOLD) {
        rc = 0; /* release of a message that is not held */
    } else {
        /* deferred with mtime = now: due at once when qmgr starts */
        buf_printf(&dest, "%s/deferred/%c/%s", qc->top, qid_hash_dir(id), id);
        (void)utimes(path.data, NULL);
        rc = queue_direct_move(path.data, dest.data) < 0 ? -2 : 1;
    }
    buf_free(&path);
    buf_free(&dest);
    return rc;
}

/* queue_sync_dirs - make the renames and unlinks durable */
static void queue_sync_dirs(const struct queue_cmd *qc)
{
    static const char *subs[] = {"incoming", "active", "hold", NULL};
    buf_t path = BUF_INIT;

    for (int i = 0; subs[i]; i++) {
        buf_reset(&path);
        buf_printf(&path, "%s/%s", qc->top, subs[i]);
        (void)fsync_dir(path.data);
    }
    for (int h = 0; h < 16; h++) {
        buf_reset(&path);
        buf_printf(&path, "%s/deferred/%x", qc->top, h);
        (void)fsync_dir(path.data);
    }
    buf_free(&path);
}

/* queue_control_direct - delete/hold/release on the files (tern stopped) */
static int queue_control_direct(const struct queue_cmd *qc, const char *action, char **argv,
                                int argc)
{
    char **ids = NULL;
    size_t count = 0, done = 0;
    int rc = 0;

    if (argc == 1 && strcmp(argv[0], "ALL") == 0)
        queue_collect_all(qc, action, &ids, &count);
    for (size_t i = 0; ids == NULL && i < (size_t)argc; i++) {
        ids = xrealloc(ids, (i + 1) * sizeof(*ids));
        ids[count++] = xstrdup(argv[i]);
    }
    for (size_t i = 0; i < count; i++) {
        int r = queue_direct_one(qc, action, ids[i]);
        if (r == -1)
            fprintf(stderr, "tern: queue: no message with ID %s\n", ids[i]);
        rc |= r < 0;
        done += r == 1;
        free(ids[i]);
    }
    free(ids);
    queue_sync_dirs(qc);
    printf("tern: queue: %s: %zu message%s\n", action, done, done == 1 ? "" : "s");
    return rc;
}

/* queue_cmd_control - delete, hold, release, requeue, flush */
static int queue_cmd_control(const struct queue_cmd *qc, int argc, char **argv)
{
    const char *action = argv[0];
    int flush = strcmp(action, "flush") == 0;
    int all = argc == 2 && strcmp(argv[1], "ALL") == 0;
    int rc = 0, valid = 0;

    if (argc < 2 && !flush)
        return queue_usage();
    if (!queue_running(qc)) {
        if (flush || strcmp(action, "requeue") == 0) {
            fprintf(stderr, "tern: queue: the mail system is not running: %s needs it\n", action);
            return 1;
        }
        return queue_control_direct(qc, action, argv + 1, argc - 1);
    }
    /* unknown-looking IDs are reported here; qmgr reports the others */
    for (int i = 1; !all && i < argc; i++) {
        if (qid_valid(argv[i])) {
            argv[1 + valid++] = argv[i];
        } else {
            fprintf(stderr, "tern: queue: no message with ID %s\n", argv[i]);
            rc = 1;
        }
    }
    if (!all && valid == 0 && !flush)
        return rc;
    return queue_control_qmgr(qc, action, argv + 1, all ? 1 : valid) | rc;
}

int tern_queue_main(int argc, char **argv, const char *config_dir_arg)
{
    struct queue_cmd qc;
    buf_t err = BUF_INIT;
    int rc;

    if (config_load(config_default_dir(config_dir_arg), &qc.cfg, &err) < 0) {
        fprintf(stderr, "tern: %s\n", buf_cstr(&err));
        buf_free(&err);
        return 1;
    }
    qc.top = config_str(qc.cfg, "queue_directory");
    argc--;
    argv++;
    if (argc == 0) /* plain `tern queue` lists */
        rc = queue_cmd_list(&qc, 1, (char *[]){"list", NULL});
    else if (strcmp(argv[0], "list") == 0)
        rc = queue_cmd_list(&qc, argc, argv);
    else if (strcmp(argv[0], "show") == 0)
        rc = queue_cmd_show(&qc, argc, argv);
    else if (strcmp(argv[0], "flush") == 0 || strcmp(argv[0], "delete") == 0 ||
             strcmp(argv[0], "hold") == 0 || strcmp(argv[0], "release") == 0 ||
             strcmp(argv[0], "requeue") == 0)
        rc = queue_cmd_control(&qc, argc, argv);
    else
        rc = queue_usage();
    config_free(qc.cfg);
    return rc;
}
