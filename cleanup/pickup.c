/*
 * pickup - take local submissions from maildrop/ into the queue.
 *
 * terndrop (set-gid terndrop) writes maildrop/ID; anything a local user can
 * reach may be there, so each file is checked like hostile input: opened
 * with O_NOFOLLOW|O_NONBLOCK, a regular file with one link and a bounded
 * size, parsed with qfile_read, its uid attribute equal to the owner.  A bad
 * file is logged ("warning: maildrop/NAME: ...; removed") and unlinked.  A
 * good one runs through the same cleanup_msg_* path as SMTP mail (protocol
 * "local"), keeping its ID when that is free.  Files are taken in batches:
 * each file is written and renamed into incoming/, incoming/ is fsynced once,
 * and only then are the maildrop files unlinked.  A scan runs at start,
 * every PICKUP_SCAN_INTERVAL seconds, and when anyone connects to
 * public/pickup.
 *
 * With non_smtpd_milters, files go one at a time through the milters
 * without blocking the event loop: the message is written (not committed),
 * the milters get connect "localhost", HELO, MAIL, each RCPT, DATA and then
 * cleanup's content phase (milter.c); then it is committed.  A milter's
 * reject queues the message with every recipient failed (qmgr bounces it
 * to the sender), a tempfail leaves the maildrop file for a later scan, a
 * discard removes it.
 *
 * Remote tables (lib/table_proxy.h): before a file goes through cleanup, a
 * dry pass (pickup_lookups) asks, in pickup_scope, every lookup its
 * envelope, header section and refusal notice will need, writing nothing.
 * While the answers come the scan stops (the event loop, and the SMTP
 * streams of this cleanup, go on); then it starts again with that file,
 * whose steps look up in the scope.  A lookup that failed or timed out
 * leaves the file in maildrop/ until the next periodic scan.  The recipients
 * a milter adds wait the same way in milter.c.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "cleanup.h"
#include "config.h"
#include "log.h"
#include "maillog.h"
#include "milter.h"
#include "safefile.h"
#include "service.h"
#include "stats.h"
#include "table_proxy.h"
#include "tern_build.h"

#define PICKUP_SCAN_INTERVAL 60
#define PICKUP_STALE_TMP 3600 /* seconds before a terndrop temp file counts as abandoned */
#define PICKUP_BATCH 64
#define PICKUP_ENVELOPE_ROOM (1024 * 1024)
#define PICKUP_CHUNK 65536

enum pickup_result {
    PICKUP_OK,
    PICKUP_BAD,
    PICKUP_LATER,
    PICKUP_MILTER /* in the milters (pickup_job) */
};

struct pickup_item {
    char name[QID_LEN + 1];
    struct cleanup_msg msg;
    unsigned long uid;
};

static struct service *pickup_svc;
static const struct cleanup_settings *pickup_set;
static struct evconnlistener *pickup_listener;
static struct event *pickup_scan_ev, *pickup_timer_ev;

/* non_smtpd_milters: the list, the file in the milters (one at a time),
 * and the files that got a tempfail (left for the next periodic scan) */
enum pickup_milter_step {
    PICKUP_MILTER_OPEN,
    PICKUP_MILTER_CONNECT,
    PICKUP_MILTER_HELO,
    PICKUP_MILTER_MAIL,
    PICKUP_MILTER_RCPT,
    PICKUP_MILTER_DATA,
    PICKUP_MILTER_CONTENT
};

struct pickup_job {
    struct pickup_item it;
    struct qfile_msg q; /* the maildrop file's envelope: MAIL and RCPT */
    struct milter_facts facts;
    struct milter_chain *chain;
    struct cleanup_milter_run *run;
    enum pickup_milter_step step;
    size_t rcpt;
};

/* remote tables (lib/table_proxy.h): every lookup of a maildrop file is
 * asked first by a dry pass (pickup_lookups) in pickup_scope; while it
 * waits for the answers the scan stops, and it starts again with that
 * file (pickup_tables_name) once they are in */
static struct table_proxy_scope *pickup_scope;
static char pickup_tables_name[QID_LEN + 1];

static struct milter_list pickup_milters;
static struct pickup_job *pickup_job;
static char (*pickup_deferred)[QID_LEN + 1];
static size_t pickup_deferred_count;

/* pickup_remove - unlink maildrop/NAME */
static void pickup_remove(const char *name)
{
    buf_t path = BUF_INIT;

    buf_printf(&path, "maildrop/%s", name);
    if (unlink(buf_cstr(&path)) < 0 && errno != ENOENT)
        log_warn("cannot remove maildrop/%.64s: %s", name, strerror(errno));
    buf_free(&path);
}

/* pickup_discard - log and remove a file that is not a valid submission */
static void pickup_discard(const char *name, const char *why)
{
    log_warn("maildrop/%.64s: %s; removed", name, why);
    pickup_remove(name);
}

/* pickup_trusted - user is in trusted_users */
static int pickup_trusted(const char *user)
{
    char *const *list = config_list(pickup_svc->cfg, "trusted_users", NULL);
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], user) == 0)
            return 1;
    return 0;
}

/* pickup_user - the submitter's login name: terndrop's user attribute,
 * else the password database, else "uidN" */
static void pickup_user(const struct qfile_msg *q, unsigned long uid, buf_t *out)
{
    const char *user = qfile_msg_attr(q, "user");
    struct passwd *pw;

    if (user && *user && strlen(user) <= 64 && strspn(user, " \t\r\n") == 0)
        buf_set(out, user);
    else if ((pw = getpwuid((uid_t)uid)) != NULL)
        buf_set(out, pw->pw_name);
    else
        buf_printf(out, "uid%lu", uid);
}

/* pickup_sender_warning - the address for X-Authentication-Warning, or ""
 * when -f was not used, the user is trusted, or set his own address */
static void pickup_sender_warning(const struct qfile_msg *q, const char *user, buf_t *out)
{
    const char *flags = qfile_msg_attr(q, "submit_flags");
    buf_t own = BUF_INIT;

    buf_reset(out);
    buf_printf(&own, "%s@%s", user, pickup_set->myorigin);
    if (flags && strchr(flags, 'f') && !pickup_trusted(user) && strcmp(q->sender, user) != 0 &&
        strcasecmp(q->sender, buf_cstr(&own)) != 0)
        buf_set(out, *q->sender ? q->sender : "<>");
    buf_free(&own);
}

/* pickup_request - the cleanup.submit request for a maildrop file */
static void pickup_request(const struct qfile_msg *q, const char *name, unsigned long uid,
                           struct attr_msg *req)
{
    static const char *copied[] = {"envid", "ret", "body", NULL};
    buf_t out = BUF_INIT, user = BUF_INIT, warn = BUF_INIT;
    const char *full = qfile_msg_attr(q, "fullname");
    size_t used;

    pickup_user(q, uid, &user);
    pickup_sender_warning(q, buf_cstr(&user), &warn);
    attr_begin(&out, "cleanup.submit");
    attr_add_str(&out, "sender", q->sender);
    attr_add_str(&out, "client_name", "localhost");
    attr_add_str(&out, "client_addr", "");
    attr_add_str(&out, "helo", "");
    attr_add_str(&out, "protocol", "local");
    attr_add_str(&out, "queue_id", name);
    attr_add_str(&out, "local_user", buf_cstr(&user));
    attr_add_str(&out, "full_name", full && strlen(full) <= 256 ? full : "");
    attr_add_str(&out, "sender_warning", buf_cstr(&warn));
    for (int i = 0; copied[i]; i++)
        if (qfile_msg_attr(q, copied[i]))
            attr_add_str(&out, copied[i], qfile_msg_attr(q, copied[i]));
    for (size_t i = 0; i < q->rcpt_count; i++) {
        attr_add_str(&out, "rcpt", q->rcpts[i].address);
        attr_add_str(&out, "orig_rcpt", q->rcpts[i].original);
        attr_add_str(&out, "notify", q->rcpts[i].notify);
        attr_add_str(&out, "orcpt", q->rcpts[i].orcpt);
    }
    attr_end(&out);
    if (attr_decode(out.data, out.len, &used, req) != 1)
        attr_msg_free(req); /* leaves an empty request: cleanup_msg_begin refuses it */
    buf_free(&out);
    buf_free(&user);
    buf_free(&warn);
}

/* pickup_open - open and check the file; -1 with why set, -2 when gone */
static int pickup_open(const char *name, struct stat *st, buf_t *why)
{
    buf_t path = BUF_INIT;
    long long limit = pickup_set->message_size_limit > 0
                          ? pickup_set->message_size_limit + PICKUP_ENVELOPE_ROOM
                          : QFILE_MAX_RECORD;
    int fd;

    buf_printf(&path, "maildrop/%s", name);
    fd = open(buf_cstr(&path), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    buf_free(&path);
    if (fd < 0 && errno == ENOENT)
        return -2; /* gone meanwhile */
    if (fd < 0) {
        buf_printf(why, "cannot open: %s", strerror(errno));
        return -1;
    }
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || st->st_nlink != 1)
        buf_set(why, "not a regular file with one link");
    else if (st->st_size > limit)
        buf_printf(why, "too large (%lld bytes)", (long long)st->st_size);
    if (why->len) {
        close(fd);
        return -1;
    }
    return fd;
}

/* pickup_copy_content - the M record into the cleanup message */
static int pickup_copy_content(int fd, const struct qfile_msg *q, struct cleanup_msg *m)
{
    char chunk[PICKUP_CHUNK];
    size_t done = 0;

    while (done < q->content_length) {
        size_t want = q->content_length - done;
        ssize_t n = pread(fd, chunk, want < sizeof(chunk) ? want : sizeof(chunk),
                          q->content_offset + (off_t)done);
        if (n <= 0)
            return -1;
        cleanup_msg_data(m, chunk, (size_t)n);
        done += (size_t)n;
        if (m->tables_wait) /* pickup_end_of_data fails it */
            return 0;
    }
    return 0;
}

/* pickup_begin - cleanup_msg_begin_failed in pickup_scope, which has the
 * answers of the file's dry pass (a lookup it lacks fails: 451); the
 * message's header rewriting looks up there too */
static int pickup_begin(struct cleanup_msg *m, const struct attr_msg *req, const char *fail_reason)
{
    int rc;

    table_proxy_scope_enter(pickup_scope);
    rc = cleanup_msg_begin_failed(m, pickup_set, req, fail_reason);
    table_proxy_scope_leave();
    if (rc == 0)
        m->scope = pickup_scope;
    return rc;
}

/* pickup_end_of_data - the content is in: the header section ends.  The
 * dry pass (pickup_lookups) asked every answer, so the header rewriting
 * does not wait; if it would, the message fails (451, retried later)
 * rather than block the event loop. */
static void pickup_end_of_data(struct cleanup_msg *m)
{
    if (!m->tables_wait)
        cleanup_msg_end_of_data(m);
    if (m->tables_wait) {
        m->tables_wait = 0;
        cleanup_msg_fail(m, CLEANUP_TEMPFAIL, "451", "4.3.0", "Error: table lookup failure");
    }
}

/* pickup_check_owner - the uid attribute terndrop wrote equals the owner */
static int pickup_check_owner(const struct qfile_msg *q, const struct stat *st, buf_t *why)
{
    const char *uid = qfile_msg_attr(q, "uid");
    char *end;
    unsigned long v = uid ? strtoul(uid, &end, 10) : 0;

    if (uid == NULL || *uid == 0 || *end != 0 || v != (unsigned long)st->st_uid) {
        buf_printf(why, "uid attribute does not match the owner %lu", (unsigned long)st->st_uid);
        return -1;
    }
    return 0;
}

/* pickup_notice_build - the cleanup.submit request and the content of a
 * refusal notice to user */
static void pickup_notice_build(const struct qfile_msg *q, const char *user, const char *refusal,
                                struct attr_msg *req, buf_t *text)
{
    buf_t out = BUF_INIT, rcpt = BUF_INIT;
    size_t used;

    buf_printf(&rcpt, "%s@%s", user, pickup_set->myorigin);
    attr_begin(&out, "cleanup.submit");
    attr_add_str(&out, "sender", "");
    attr_add_str(&out, "client_name", "localhost");
    attr_add_str(&out, "client_addr", "");
    attr_add_str(&out, "helo", "");
    attr_add_str(&out, "protocol", "local");
    attr_add_str(&out, "rcpt", buf_cstr(&rcpt));
    attr_add_str(&out, "orig_rcpt", buf_cstr(&rcpt));
    attr_add_str(&out, "notify", "NEVER");
    attr_add_str(&out, "orcpt", "");
    attr_end(&out);
    buf_printf(text,
               "From: Mail Delivery Subsystem <MAILER-DAEMON@%s>\r\nTo: <%s>\r\n"
               "Subject: Undelivered Mail Returned to Sender\r\n"
               "Auto-Submitted: auto-generated (failure)\r\n\r\n"
               "The mail system refused a message you submitted with sendmail\r\n"
               "(sender <%s>, %zu recipient(s)): %s\r\n",
               pickup_set->myhostname, buf_cstr(&rcpt), q->sender, q->rcpt_count, refusal);
    if (attr_decode(out.data, out.len, &used, req) != 1)
        attr_msg_free(req); /* an empty request: cleanup_msg_begin refuses it */
    buf_free(&out);
    buf_free(&rcpt);
}

/* pickup_notice - queue, in it->msg, a note to the submitting user that
 * cleanup refused the message (too many hops, header too large): a local
 * submission has no SMTP client to hear the refusal, so it must not vanish
 * with only a log line.  0 ok (queued like a message), -1 not. */
static int pickup_notice(struct pickup_item *it, const struct qfile_msg *q, const char *user,
                         const char *refusal)
{
    struct attr_msg req;
    buf_t text = BUF_INIT;
    int rc = -1;

    attr_msg_init(&req);
    pickup_notice_build(q, user, refusal, &req, &text);
    if (pickup_begin(&it->msg, &req, NULL) == 0) {
        cleanup_msg_data(&it->msg, text.data, text.len);
        pickup_end_of_data(&it->msg);
        rc = cleanup_msg_finish(&it->msg) == 0 && cleanup_msg_sync(&it->msg) == 0 &&
                     cleanup_msg_publish(&it->msg) == 0
                 ? 0
                 : -1;
    }
    if (rc < 0)
        cleanup_msg_free(&it->msg);
    attr_msg_free(&req);
    buf_free(&text);
    return rc;
}

/* pickup_load - read and check a maildrop file into q and begin its
 * message in it->msg with the content copied (not finished; a refusal is
 * in its outcome); every recipient failed for fail_reason unless NULL.
 * PICKUP_BAD with why set for a file that is not a valid submission. */
static enum pickup_result pickup_load(struct pickup_item *it, struct qfile_msg *q,
                                      const char *fail_reason, buf_t *why)
{
    struct attr_msg req;
    struct stat st;
    int fd = pickup_open(it->name, &st, why);

    if (fd < 0)
        return fd == -2 ? PICKUP_LATER : PICKUP_BAD;
    it->uid = (unsigned long)st.st_uid;
    if (qfile_read(fd, q, why) < 0 || pickup_check_owner(q, &st, why) < 0) {
        close(fd);
        return PICKUP_BAD;
    }
    attr_msg_init(&req);
    pickup_request(q, it->name, it->uid, &req);
    if (pickup_begin(&it->msg, &req, fail_reason) == 0) {
        if (pickup_copy_content(fd, q, &it->msg) < 0)
            cleanup_msg_fail(&it->msg, CLEANUP_TEMPFAIL, "451", "4.3.0", "read error");
        pickup_end_of_data(&it->msg);
    }
    attr_msg_free(&req);
    close(fd);
    return PICKUP_OK;
}

/* pickup_publish - finish, sync and rename a loaded message; a refused one
 * is returned to its author (pickup_notice) */
static enum pickup_result pickup_publish(struct pickup_item *it, const struct qfile_msg *q,
                                         buf_t *why)
{
    enum pickup_result res;

    if (cleanup_msg_finish(&it->msg) == 0 && cleanup_msg_sync(&it->msg) == 0 &&
        cleanup_msg_publish(&it->msg) == 0)
        return PICKUP_OK;
    res = it->msg.status == CLEANUP_TEMPFAIL ? PICKUP_LATER : PICKUP_BAD;
    buf_printf(why, "rejected: %s %s %s", buf_cstr(&it->msg.code), buf_cstr(&it->msg.dsn),
               buf_cstr(&it->msg.text));
    int refused = it->msg.status == CLEANUP_PERMFAIL && *q->sender;
    cleanup_msg_free(&it->msg);
    if (refused) { /* a well-formed submission cleanup refused: tell its author */
        buf_t user = BUF_INIT;
        pickup_user(q, it->uid, &user);
        if (pickup_notice(it, q, buf_cstr(&user), buf_cstr(why)) == 0) {
            log_warn("maildrop/%s: %s; returned to %s", it->name, buf_cstr(why), buf_cstr(&user));
            res = PICKUP_OK; /* the notice stands in for the message */
        }
        buf_free(&user);
    }
    return res;
}

/* pickup_queue_file - one maildrop file to a finished, renamed queue file;
 * with fail_reason, every recipient failed for it */
static enum pickup_result pickup_queue_file(struct pickup_item *it, const char *fail_reason,
                                            buf_t *why)
{
    struct qfile_msg q;
    enum pickup_result res;

    qfile_msg_init(&q);
    res = pickup_load(it, &q, fail_reason, why);
    if (res == PICKUP_OK)
        res = pickup_publish(it, &q, why);
    qfile_msg_free(&q);
    return res;
}

/* pickup_log - the per-message log lines (Postfix's pickup + cleanup) */
static void pickup_log(const struct pickup_item *it)
{
    const struct cleanup_msg *m = &it->msg;
    struct maillog_received ev = {.user = buf_cstr(&m->local_user)};
    buf_t first = BUF_INIT;

    buf_printf(&first, "uid=%lu from=<%s>", it->uid, buf_cstr(&m->sender));
    cleanup_log_received(m, &ev, buf_cstr(&first));
    buf_free(&first);
}

/* pickup_commit - make the batch durable, then remove the maildrop files */
static void pickup_commit(struct pickup_item *items, size_t count)
{
    buf_t path = BUF_INIT;
    int held = 0, durable;

    for (size_t i = 0; i < count; i++)
        held |= items[i].msg.hold.len > 0;
    durable = fsync_dir("incoming") == 0 && (!held || fsync_dir("hold") == 0);
    if (!durable)
        log_error("fsync incoming/ or hold/: %s", strerror(errno));
    for (size_t i = 0; i < count; i++) {
        if (durable) {
            pickup_log(&items[i]);
            buf_reset(&path);
            buf_printf(&path, "maildrop/%s", items[i].name);
            if (unlink(buf_cstr(&path)) < 0)
                log_warn("cannot remove %s: %s", buf_cstr(&path), strerror(errno));
        } else { /* not durable: take it back, the maildrop file stays */
            unlink(buf_cstr(&items[i].msg.final_path));
        }
        cleanup_msg_free(&items[i].msg);
    }
    if (durable && count > 0) {
        fsync_dir("maildrop");
        cleanup_trigger_qmgr();
    }
    buf_free(&path);
}

/* pickup_stale_tmp - remove a .tmp.* file a crashed terndrop left behind
 * (nothing writes one for an hour: it was never renamed and never will be) */
static void pickup_stale_tmp(const char *name)
{
    buf_t path = BUF_INIT;
    struct stat st;

    if (strncmp(name, ".tmp.", 5) != 0)
        return;
    buf_printf(&path, "maildrop/%s", name);
    if (lstat(buf_cstr(&path), &st) == 0 && S_ISREG(st.st_mode) &&
        st.st_mtime < time(NULL) - PICKUP_STALE_TMP) {
        log_warn("maildrop/%.64s: left by an interrupted submission; removed", name);
        unlink(buf_cstr(&path));
    }
    buf_free(&path);
}

/* pickup_milter_end - the file leaves the milters (NULL: whichever is
 * there): close them, free everything, and go on scanning */
static void pickup_milter_end(struct pickup_job *j)
{
    if (j == NULL && (j = pickup_job) == NULL)
        return;
    cleanup_milter_cancel(j->run);
    if (j->chain)
        milter_chain_close(j->chain);
    cleanup_msg_free(&j->it.msg); /* removes a temp file not published */
    qfile_msg_free(&j->q);
    milter_facts_free(&j->facts);
    free(j);
    pickup_job = NULL;
    if (pickup_listener) /* not draining */
        event_active(pickup_scan_ev, EV_TIMEOUT, 0);
}

/* pickup_defer - leave the maildrop file until the next periodic scan */
static void pickup_defer(const char *name, const char *why)
{
    log_warn("maildrop/%s: %s; will retry", name, why);
    pickup_deferred =
        xrealloc(pickup_deferred, (pickup_deferred_count + 1) * sizeof(*pickup_deferred));
    memcpy(pickup_deferred[pickup_deferred_count++], name, QID_LEN + 1);
}

/* pickup_milter_bounce - a milter rejected the message: queue it with every
 * recipient failed for the milter's reply; qmgr returns it to the sender */
static enum pickup_result pickup_milter_bounce(struct pickup_job *j, buf_t *why)
{
    buf_t code = BUF_INIT, dsn = BUF_INIT, text = BUF_INIT, reason = BUF_INIT;
    enum pickup_result res;

    cleanup_milter_split_reply(buf_cstr(&j->it.msg.milter_reply), "5.7.1", &code, &dsn, &text);
    buf_printf(&reason, "%s %s", buf_cstr(&dsn), buf_cstr(&text));
    cleanup_msg_free(&j->it.msg);
    res = pickup_queue_file(&j->it, buf_cstr(&reason), why);
    buf_free(&code);
    buf_free(&dsn);
    buf_free(&text);
    buf_free(&reason);
    return res;
}

/* pickup_milter_finished - the milters are done: commit, bounce, defer or
 * remove the file */
static void pickup_milter_finished(struct pickup_job *j)
{
    struct cleanup_msg *m = &j->it.msg;
    buf_t why = BUF_INIT;
    enum pickup_result res;

    if (m->milter_discarded) {
        res = PICKUP_OK;
        pickup_remove(j->it.name);
    } else if (m->milter_reply.len && m->status == CLEANUP_PERMFAIL) {
        res = pickup_milter_bounce(j, &why);
        if (res == PICKUP_OK)
            pickup_commit(&j->it, 1);
    } else if (m->milter_reply.len) {
        res = PICKUP_LATER;
        buf_printf(&why, "milter: %s", buf_cstr(&m->milter_reply));
    } else if ((res = pickup_publish(&j->it, &j->q, &why)) == PICKUP_OK) {
        pickup_commit(&j->it, 1);
    }
    if (res == PICKUP_LATER)
        pickup_defer(j->it.name, buf_cstr(&why));
    else if (res == PICKUP_BAD)
        pickup_discard(j->it.name, buf_cstr(&why));
    buf_free(&why);
    pickup_milter_end(j);
}

static void pickup_milter_on_content(void *arg)
{
    struct pickup_job *j = arg;

    j->run = NULL;
    pickup_milter_finished(j);
}

/* pickup_milter_content - write the file out, then cleanup's content phase */
static void pickup_milter_content(struct pickup_job *j)
{
    struct milter *v[MILTER_MAX];
    size_t n = milter_chain_count(j->chain);
    const char *quarantine = milter_chain_quarantine(j->chain);

    if (quarantine)
        cleanup_msg_hold(&j->it.msg, quarantine);
    if (cleanup_msg_finish(&j->it.msg) < 0) {
        pickup_milter_finished(j);
        return;
    }
    n = n < MILTER_MAX ? n : MILTER_MAX;
    for (size_t i = 0; i < n; i++)
        v[i] = milter_chain_get(j->chain, i);
    milter_facts_set(&j->facts, MILTER_FACT_MSG_ID, buf_cstr(&j->it.msg.message_id));
    j->run =
        cleanup_milter_content(pickup_svc->base, &j->it.msg, v, n, pickup_milter_on_content, j);
}

static void pickup_milter_on_step(void *arg, struct milter_chain *c, const struct milter_result *r);

/* pickup_milter_address - "<address>", qualified */
static void pickup_milter_address(const char *addr, buf_t *out)
{
    buf_t a = BUF_INIT;

    buf_set(&a, addr);
    addr_qualify(&a, pickup_set->myorigin);
    buf_reset(out);
    buf_printf(out, "<%s>", buf_cstr(&a));
    buf_free(&a);
}

/* pickup_milter_next - the SMTP-stage command of j->step, as sendmail
 * gives a local submission */
static void pickup_milter_next(struct pickup_job *j)
{
    buf_t pkt = BUF_INIT, addr = BUF_INIT;
    int stage = SMFIM_DATA;
    char cmd = SMFIC_DATA;

    switch (j->step) {
    case PICKUP_MILTER_CONNECT:
        milter_proto_connect(&pkt, "localhost", SMFIA_INET, 0, "127.0.0.1");
        stage = SMFIM_CONNECT, cmd = SMFIC_CONNECT;
        break;
    case PICKUP_MILTER_HELO:
        milter_proto_helo(&pkt, "localhost");
        stage = SMFIM_HELO, cmd = SMFIC_HELO;
        break;
    case PICKUP_MILTER_MAIL:
        pickup_milter_address(j->q.sender, &addr);
        if (*j->q.sender == 0)
            buf_set(&addr, "<>");
        milter_facts_set(&j->facts, MILTER_FACT_MAIL_ADDR, j->q.sender);
        milter_proto_mail(&pkt, buf_cstr(&addr), NULL, 0);
        stage = SMFIM_ENVFROM, cmd = SMFIC_MAIL;
        break;
    case PICKUP_MILTER_RCPT:
        pickup_milter_address(j->q.rcpts[j->rcpt].address, &addr);
        milter_facts_set(&j->facts, MILTER_FACT_RCPT_ADDR, j->q.rcpts[j->rcpt].address);
        milter_proto_rcpt(&pkt, buf_cstr(&addr), NULL, 0);
        stage = SMFIM_ENVRCPT, cmd = SMFIC_RCPT;
        break;
    case PICKUP_MILTER_DATA:
        milter_proto_data(&pkt);
        break;
    default:
        pickup_milter_content(j);
        return;
    }
    /* the chain takes the data part: without the length and command byte */
    milter_chain_step(j->chain, stage, cmd, pkt.data + 5, pkt.len - 5, pickup_milter_on_step, j);
    buf_free(&pkt);
    buf_free(&addr);
}

/* pickup_milter_refused - a milter refused the message before its content */
static void pickup_milter_refused(struct pickup_job *j, const struct milter_result *r)
{
    struct cleanup_msg *m = &j->it.msg;
    static const char *const steps[] = {"CONNECT", "CONNECT", "HELO", "MAIL", "RCPT", "DATA"};

    if (r->outcome == MILTER_DISCARD) {
        m->milter_discarded = 1;
        stats_add(STATS_DISCARDED, "local", 1);
        log_info("%s: milter-discard: %s from localhost[127.0.0.1]: message discarded", m->queue_id,
                 steps[j->step]);
    } else {
        cleanup_msg_fail(m, r->outcome == MILTER_REJECT ? CLEANUP_PERMFAIL : CLEANUP_TEMPFAIL, "",
                         "", "");
        buf_set(&m->milter_reply, buf_cstr(&r->reply));
        log_info("%s: milter-reject: %s from localhost[127.0.0.1]: %s; from=<%s>", m->queue_id,
                 steps[j->step], buf_cstr(&r->reply), buf_cstr(&m->sender));
    }
    pickup_milter_finished(j);
}

static void pickup_milter_on_step(void *arg, struct milter_chain *c, const struct milter_result *r)
{
    struct pickup_job *j = arg;

    if (r->outcome != MILTER_CONTINUE) {
        pickup_milter_refused(j, r);
        return;
    }
    if (j->step == PICKUP_MILTER_RCPT && j->rcpt + 1 < j->q.rcpt_count)
        j->rcpt++;
    else
        j->step++;
    pickup_milter_next(j);
}

/* pickup_milter_facts - the sendmail macros of a local submission */
static void pickup_milter_facts(struct pickup_job *j)
{
    milter_facts_init(&j->facts);
    milter_facts_set(&j->facts, MILTER_FACT_J, pickup_set->myhostname);
    milter_facts_set(&j->facts, MILTER_FACT_DAEMON_NAME, "pickup");
    milter_facts_set(&j->facts, MILTER_FACT_V, "tern " TERN_VERSION);
    milter_facts_set(&j->facts, MILTER_FACT_UNDERSCORE, "localhost [127.0.0.1]");
    milter_facts_set(&j->facts, MILTER_FACT_CLIENT_ADDR, "127.0.0.1");
    milter_facts_set(&j->facts, MILTER_FACT_CLIENT_NAME, "localhost");
    milter_facts_set(&j->facts, MILTER_FACT_QUEUE_ID, j->it.msg.queue_id);
}

/* pickup_milter_start - load a maildrop file and hand it to the milters
 * (PICKUP_MILTER); a file cleanup refuses is handled at once as without
 * milters (it->msg then holds a notice when PICKUP_OK) */
static enum pickup_result pickup_milter_start(struct pickup_item *it, buf_t *why)
{
    struct pickup_job *j = xcalloc(1, sizeof(*j));
    enum pickup_result res;

    qfile_msg_init(&j->q);
    memcpy(j->it.name, it->name, sizeof(it->name));
    res = pickup_load(&j->it, &j->q, NULL, why);
    if (res != PICKUP_OK || j->it.msg.status != CLEANUP_OK || j->q.rcpt_count == 0) {
        if (res == PICKUP_OK)
            res = pickup_publish(&j->it, &j->q, why);
        if (res == PICKUP_OK)
            *it = j->it; /* the notice joins the batch */
        qfile_msg_free(&j->q);
        free(j);
        return res;
    }
    pickup_job = j;
    pickup_milter_facts(j);
    j->chain = milter_chain_open(pickup_svc->base, &pickup_milters, j->it.msg.queue_id,
                                 milter_facts_macro, &j->facts, pickup_milter_on_step, j);
    return PICKUP_MILTER;
}

/* pickup_lookups_request - the dry pass of cleanup_msg_begin for req, in
 * pickup_scope; 1 when it asked for an answer the scope does not hold */
static int pickup_lookups_request(const struct attr_msg *req)
{
    table_proxy_scope_enter(pickup_scope);
    cleanup_msg_lookups(pickup_set, req);
    table_proxy_scope_leave();
    return table_proxy_scope_pending(pickup_scope);
}

/* pickup_lookups_headers - the dry pass of the header rewriting of a
 * content (which enters pickup_scope itself); 1 as pickup_lookups_request */
static int pickup_lookups_headers(const char *data, size_t len)
{
    cleanup_msg_header_lookups(pickup_set, pickup_scope, data, len);
    return table_proxy_scope_pending(pickup_scope);
}

/* pickup_lookups_content - the dry pass of the header rewriting: the
 * start of the content, as far as a header section can go */
static int pickup_lookups_content(int fd, const struct qfile_msg *q)
{
    size_t want = (size_t)pickup_set->header_size_limit + PICKUP_CHUNK;
    buf_t head = BUF_INIT;
    ssize_t n;
    int pending = 0;

    if (want > q->content_length)
        want = q->content_length;
    buf_reserve(&head, want);
    n = pread(fd, head.data, want, q->content_offset);
    if (n > 0)
        pending = pickup_lookups_headers(head.data, (size_t)n);
    buf_free(&head);
    return pending;
}

/* pickup_lookups_notice - the dry pass of the refusal notice to the
 * submitter (pickup_notice), in case cleanup refuses the file */
static int pickup_lookups_notice(const struct qfile_msg *q, unsigned long uid)
{
    struct attr_msg req;
    buf_t user = BUF_INIT, text = BUF_INIT;
    int pending;

    if (*q->sender == 0)
        return 0; /* no notice for a bounce */
    attr_msg_init(&req);
    pickup_user(q, uid, &user);
    pickup_notice_build(q, buf_cstr(&user), "", &req, &text);
    pending = pickup_lookups_request(&req);
    pending |= pickup_lookups_headers(text.data, text.len);
    attr_msg_free(&req);
    buf_free(&user);
    buf_free(&text);
    return pending;
}

/* pickup_lookups - the dry pass of a maildrop file, in pickup_scope: the
 * route calls of its envelope, header section and refusal notice, results
 * thrown away and nothing written; 1 when one of them asked for an answer
 * the scope does not hold.  A file that cannot be read is left to
 * pickup_queue_file, which says why. */
static int pickup_lookups(const char *name)
{
    struct qfile_msg q;
    struct attr_msg req;
    struct stat st;
    buf_t why = BUF_INIT;
    int fd = pickup_open(name, &st, &why), pending = 0;

    buf_free(&why);
    if (fd < 0)
        return 0;
    qfile_msg_init(&q);
    attr_msg_init(&req);
    if (qfile_read(fd, &q, &why) == 0 && pickup_check_owner(&q, &st, &why) == 0) {
        pickup_request(&q, name, (unsigned long)st.st_uid, &req);
        pending = pickup_lookups_request(&req);
        pending |= pickup_lookups_content(fd, &q);
        pending |= pickup_lookups_notice(&q, (unsigned long)st.st_uid);
    }
    attr_msg_free(&req);
    qfile_msg_free(&q);
    buf_free(&why);
    close(fd);
    return pending;
}

static void pickup_on_tables(void *arg)
{
    event_active(pickup_scan_ev, EV_TIMEOUT, 0);
}

/* pickup_tables_wait - the dry pass of a file (a new file: the answers of
 * the one before are forgotten); 1 when it waits for remote answers: the
 * scan stops, and starts again when they are in.  0: go ahead, in the
 * scope (if the wait cannot start, the lookups fail: 451, retried) */
static int pickup_tables_wait(const char *name)
{
    if (strcmp(pickup_tables_name, name) != 0) {
        table_proxy_scope_reset(pickup_scope);
        memcpy(pickup_tables_name, name, QID_LEN + 1);
    }
    if (!pickup_lookups(name))
        return 0;
    if (table_proxy_scope_wait(pickup_scope, pickup_svc->base, pickup_on_tables, NULL) == 0)
        return 1;
    log_warn("maildrop/%s: cannot wait for tern-proxymap; the lookups fail", name);
    return 0;
}

/* pickup_one - a maildrop file through cleanup once its dry pass has
 * every answer (each step looks up in pickup_scope) */
static enum pickup_result pickup_one(struct pickup_item *it, buf_t *why)
{
    enum pickup_result r;

    r = pickup_milters.count > 0 ? pickup_milter_start(it, why) : pickup_queue_file(it, NULL, why);
    pickup_tables_name[0] = 0; /* done with: the next file starts afresh */
    return r;
}

/* pickup_is_deferred - a milter or a table said tempfail to this file in
 * this period */
static int pickup_is_deferred(const char *name)
{
    for (size_t i = 0; i < pickup_deferred_count; i++)
        if (strcmp(pickup_deferred[i], name) == 0)
            return 1;
    return 0;
}

/* pickup_scan - one batch; schedules itself again when more files wait.
 * With milters: the next file goes to them, one at a time. */
static void pickup_scan(evutil_socket_t fd, short what, void *arg)
{
    struct pickup_item *items;
    DIR *dir;
    struct dirent *de;
    size_t count = 0, seen = 0, removed = 0;
    buf_t why = BUF_INIT;

    /* scanned again when the file in the milters is done, or when the
     * remote answers a file waits for are in */
    if (pickup_scope == NULL || pickup_job || table_proxy_scope_waiting(pickup_scope))
        return;
    items = xcalloc(PICKUP_BATCH, sizeof(*items));
    dir = opendir("maildrop");
    if (dir == NULL) {
        log_warn("cannot open maildrop/: %s", strerror(errno));
        free(items);
        return;
    }
    while (seen < PICKUP_BATCH && (de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.') {
            /* ".", "..", and terndrop's .tmp.ID files in progress */
            pickup_stale_tmp(de->d_name);
            continue;
        }
        seen++;
        buf_reset(&why);
        if (!qid_valid(de->d_name)) {
            pickup_discard(de->d_name, "not a queue ID");
            removed++;
            continue;
        }
        struct pickup_item *it = &items[count];
        memcpy(it->name, de->d_name, QID_LEN); /* qid_valid: exactly QID_LEN */
        it->name[QID_LEN] = 0;
        if (pickup_is_deferred(it->name))
            continue;
        if (pickup_tables_wait(it->name)) {
            seen = 0; /* the scan goes on when the answers are in */
            break;
        }
        enum pickup_result r = pickup_one(it, &why);
        if (r == PICKUP_MILTER)
            break; /* the scan goes on when the milters are done with it */
        if (r == PICKUP_OK)
            count++;
        else if (r == PICKUP_BAD && ++removed)
            pickup_discard(it->name, buf_cstr(&why));
        else if (why.len)
            pickup_defer(it->name, buf_cstr(&why));
    }
    closedir(dir);
    pickup_commit(items, count);
    if (seen == PICKUP_BATCH && count + removed > 0)
        event_active(pickup_scan_ev, EV_TIMEOUT, 0);
    free(items);
    buf_free(&why);
}

/* pickup_on_timer - the periodic scan */
static void pickup_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct timeval tv = {PICKUP_SCAN_INTERVAL, 0};

    pickup_deferred_count = 0; /* files milters deferred are tried again */
    event_active(pickup_scan_ev, EV_TIMEOUT, 0);
    evtimer_add(pickup_timer_ev, &tv);
}

/* pickup_on_accept - any connection to public/pickup means "scan now" */
static void pickup_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                             int socklen, void *arg)
{
    close(fd);
    event_active(pickup_scan_ev, EV_TIMEOUT, 0);
}

void pickup_start(struct service *svc, int fd, const struct cleanup_settings *set)
{
    struct timeval tv = {PICKUP_SCAN_INTERVAL, 0};
    buf_t err = BUF_INIT;

    if (milter_list_load(svc->cfg, "non_smtpd_milters", &pickup_milters, &err) < 0)
        log_fatal("%s", buf_cstr(&err));
    buf_free(&err);

    pickup_svc = svc;
    pickup_set = set;
    pickup_scope = table_proxy_scope_new();
    pickup_scan_ev = event_new(svc->base, -1, 0, pickup_scan, NULL);
    pickup_timer_ev = evtimer_new(svc->base, pickup_on_timer, NULL);
    pickup_listener =
        evconnlistener_new(svc->base, pickup_on_accept, NULL, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (pickup_listener == NULL)
        log_fatal("cannot listen on public/pickup (fd %d)", fd);
    evtimer_add(pickup_timer_ev, &tv);
    event_active(pickup_scan_ev, EV_TIMEOUT, 0);
}

void pickup_stop(void)
{
    pickup_milter_end(NULL);
    if (pickup_scope) /* a wait out is cancelled */
        table_proxy_scope_free(pickup_scope);
    pickup_scope = NULL;
    if (pickup_listener)
        evconnlistener_free(pickup_listener);
    pickup_listener = NULL;
    if (pickup_timer_ev)
        event_free(pickup_timer_ev);
    pickup_timer_ev = NULL;
    if (pickup_scan_ev)
        event_del(pickup_scan_ev);
}
