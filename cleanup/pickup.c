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
#include "safefile.h"
#include "service.h"

#define PICKUP_SCAN_INTERVAL 60
#define PICKUP_STALE_TMP 3600 /* seconds before a terndrop temp file counts as abandoned */
#define PICKUP_BATCH 64
#define PICKUP_ENVELOPE_ROOM (1024 * 1024)
#define PICKUP_CHUNK 65536

enum pickup_result { PICKUP_OK, PICKUP_BAD, PICKUP_LATER };

struct pickup_item {
    char name[QID_LEN + 1];
    struct cleanup_msg msg;
    unsigned long uid;
};

static struct service *pickup_svc;
static const struct cleanup_settings *pickup_set;
static struct evconnlistener *pickup_listener;
static struct event *pickup_scan_ev, *pickup_timer_ev;

/* pickup_discard - log and remove a file that is not a valid submission */
static void pickup_discard(const char *name, const char *why)
{
    buf_t path = BUF_INIT;

    buf_printf(&path, "maildrop/%s", name);
    log_warn("maildrop/%.64s: %s; removed", name, why);
    if (unlink(buf_cstr(&path)) < 0 && errno != ENOENT)
        log_warn("cannot remove maildrop/%.64s: %s", name, strerror(errno));
    buf_free(&path);
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
    }
    return 0;
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

/* pickup_notice - queue, in it->msg, a note to the submitting user that
 * cleanup refused the message (too many hops, header too large): a local
 * submission has no SMTP client to hear the refusal, so it must not vanish
 * with only a log line.  0 ok (queued like a message), -1 not. */
static int pickup_notice(struct pickup_item *it, const struct qfile_msg *q, const char *user,
                         const char *refusal)
{
    struct attr_msg req;
    buf_t out = BUF_INIT, rcpt = BUF_INIT, text = BUF_INIT;
    size_t used;
    int rc = -1;

    buf_printf(&rcpt, "%s@%s", user, pickup_set->myorigin);
    attr_msg_init(&req);
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
    buf_printf(&text,
               "From: Mail Delivery Subsystem <MAILER-DAEMON@%s>\r\nTo: <%s>\r\n"
               "Subject: Undelivered Mail Returned to Sender\r\n"
               "Auto-Submitted: auto-generated (failure)\r\n\r\n"
               "The mail system refused a message you submitted with sendmail\r\n"
               "(sender <%s>, %zu recipient(s)): %s\r\n",
               pickup_set->myhostname, buf_cstr(&rcpt), q->sender, q->rcpt_count, refusal);
    if (attr_decode(out.data, out.len, &used, &req) == 1 &&
        cleanup_msg_begin(&it->msg, pickup_set, &req) == 0) {
        cleanup_msg_data(&it->msg, text.data, text.len);
        rc = cleanup_msg_finish(&it->msg) == 0 && cleanup_msg_sync(&it->msg) == 0 &&
                     cleanup_msg_publish(&it->msg) == 0
                 ? 0
                 : -1;
    }
    if (rc < 0)
        cleanup_msg_free(&it->msg);
    attr_msg_free(&req);
    buf_free(&out);
    buf_free(&rcpt);
    buf_free(&text);
    return rc;
}

/* pickup_queue_file - one maildrop file to a finished, renamed queue file */
static enum pickup_result pickup_queue_file(struct pickup_item *it, buf_t *why)
{
    struct qfile_msg q;
    struct attr_msg req;
    struct stat st;
    int fd = pickup_open(it->name, &st, why);
    enum pickup_result res = PICKUP_BAD;

    if (fd < 0)
        return fd == -2 ? PICKUP_LATER : PICKUP_BAD;
    qfile_msg_init(&q);
    attr_msg_init(&req);
    it->uid = (unsigned long)st.st_uid;
    if (qfile_read(fd, &q, why) < 0 || pickup_check_owner(&q, &st, why) < 0)
        goto out;
    pickup_request(&q, it->name, it->uid, &req);
    if (cleanup_msg_begin(&it->msg, pickup_set, &req) == 0 &&
        pickup_copy_content(fd, &q, &it->msg) < 0)
        cleanup_msg_fail(&it->msg, CLEANUP_TEMPFAIL, "451", "4.3.0", "read error");
    if (cleanup_msg_finish(&it->msg) == 0 && cleanup_msg_sync(&it->msg) == 0 &&
        cleanup_msg_publish(&it->msg) == 0) {
        res = PICKUP_OK;
    } else {
        res = it->msg.status == CLEANUP_TEMPFAIL ? PICKUP_LATER : PICKUP_BAD;
        buf_printf(why, "rejected: %s %s %s", buf_cstr(&it->msg.code), buf_cstr(&it->msg.dsn),
                   buf_cstr(&it->msg.text));
        int refused = it->msg.status == CLEANUP_PERMFAIL && *q.sender;
        cleanup_msg_free(&it->msg);
        if (refused) { /* a well-formed submission cleanup refused: tell its author */
            buf_t user = BUF_INIT;
            pickup_user(&q, it->uid, &user);
            if (pickup_notice(it, &q, buf_cstr(&user), buf_cstr(why)) == 0) {
                log_warn("maildrop/%s: %s; returned to %s", it->name, buf_cstr(why),
                         buf_cstr(&user));
                res = PICKUP_OK; /* the notice stands in for the message */
            }
            buf_free(&user);
        }
    }
out:
    attr_msg_free(&req);
    qfile_msg_free(&q);
    close(fd);
    return res;
}

/* pickup_log - the per-message log lines (Postfix's pickup + cleanup) */
static void pickup_log(const struct pickup_item *it)
{
    const struct cleanup_msg *m = &it->msg;

    log_info("%s: uid=%lu from=<%s>", m->queue_id, it->uid, buf_cstr(&m->sender));
    log_info("%s: message-id=%s", m->queue_id, buf_cstr(&m->message_id));
    log_info("%s: from=<%s>, size=%zu, nrcpt=%zu (queue active)", m->queue_id, buf_cstr(&m->sender),
             m->content_bytes, m->rcpt_count);
}

/* pickup_commit - make the batch durable, then remove the maildrop files */
static void pickup_commit(struct pickup_item *items, size_t count)
{
    buf_t path = BUF_INIT;
    int durable = fsync_dir("incoming") == 0;

    if (!durable)
        log_error("fsync incoming/: %s", strerror(errno));
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

/* pickup_scan - one batch; schedules itself again when more files wait */
static void pickup_scan(evutil_socket_t fd, short what, void *arg)
{
    struct pickup_item *items = xcalloc(PICKUP_BATCH, sizeof(*items));
    DIR *dir = opendir("maildrop");
    struct dirent *de;
    size_t count = 0, seen = 0, removed = 0;
    buf_t why = BUF_INIT;

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
        enum pickup_result r = pickup_queue_file(it, &why);
        if (r == PICKUP_OK)
            count++;
        else if (r == PICKUP_BAD && ++removed)
            pickup_discard(it->name, buf_cstr(&why));
        else if (why.len)
            log_warn("maildrop/%s: %s; will retry", it->name, buf_cstr(&why));
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

    pickup_svc = svc;
    pickup_set = set;
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
    if (pickup_listener)
        evconnlistener_free(pickup_listener);
    pickup_listener = NULL;
    if (pickup_timer_ev)
        event_free(pickup_timer_ev);
    pickup_timer_ev = NULL;
    if (pickup_scan_ev)
        event_del(pickup_scan_ev);
}
