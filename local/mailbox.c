/*
 * mailbox - the three ways a message is stored: an mbox file in
 * mail_spool_directory (/var/mail/USER), a Maildir under the user's home,
 * and an mbox-style append to a /file named in an alias or .forward.
 *
 * Every function here runs through local_runas, in the delivery worker.
 * The spool mbox delivery starts as root, because /var/mail is root:mail
 * 2775: it takes the dot-lock (USER.lock), opens or creates the mailbox
 * (0600, owned by the user, never following a symlink, refusing hard links
 * and foreign owners), takes an fcntl lock, then writes with the user's
 * effective ids and truncates back to the old size on any failure, so a
 * mailbox never holds half a message.  Maildir and file deliveries run
 * entirely with the user's effective ids and groups.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/time.h>
#include <unistd.h>

#include "local.h"
#include "log.h"
#include "safefile.h"

#define LOCK_TRIES 60          /* half-second steps: 30 s */
#define LOCK_STALE_SECONDS 300 /* a dot-lock older than this is removed */

/* mailbox_dotlock - create PATH.lock exclusively; 0 ok, -1 gave up */
static int mailbox_dotlock(const char *lock)
{
    struct stat st;

    for (int i = 0; i < LOCK_TRIES; i++) {
        int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
        if (fd >= 0) {
            char pid[32];
            int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
            (void)write_all(fd, pid, (size_t)n);
            close(fd);
            return 0;
        }
        if (errno != EEXIST)
            return -1;
        if (lstat(lock, &st) == 0 && time(NULL) - st.st_mtime > LOCK_STALE_SECONDS)
            unlink(lock);
        else
            usleep(500000);
    }
    return -1;
}

/* mailbox_fcntl_lock - exclusive fcntl lock, bounded wait; 0 ok, -1 */
static int mailbox_fcntl_lock(int fd)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};

    for (int i = 0; i < LOCK_TRIES; i++) {
        if (fcntl(fd, F_SETLK, &fl) == 0)
            return 0;
        if (errno != EACCES && errno != EAGAIN)
            return -1;
        usleep(500000);
    }
    return -1;
}

/* mailbox_open - open (or create, owned by uid) an mbox for appending;
 * refuses symlinks, non-regular files, hard links, another owner */
static int mailbox_open(const char *path, uid_t uid, gid_t gid, struct delivery_outcome *res)
{
    struct stat st;
    int fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);

    if (fd < 0 && errno == ENOENT) {
        fd = safe_create(path, O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0 && geteuid() == 0 && fchown(fd, uid, gid) < 0) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0) {
        local_result_set(res, DELIVERY_DEFER, "4.2.0", "cannot open mailbox %s: %s", path,
                         strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
        (geteuid() == 0 && st.st_uid != uid)) {
        local_result_set(res, DELIVERY_DEFER, "4.2.0",
                         "mailbox %s is not a regular file with one link owned by the recipient",
                         path);
        close(fd);
        return -1;
    }
    return fd;
}

/* mailbox_append - write data at the end, fsync; truncate back on failure */
static int mailbox_append(int fd, const buf_t *data, const char *what, struct delivery_outcome *res)
{
    struct stat st;
    int err;

    if (fstat(fd, &st) < 0) {
        local_result_set(res, DELIVERY_DEFER, "4.2.0", "cannot stat %s: %s", what, strerror(errno));
        return -1;
    }
    if (write_all(fd, data->data, data->len) == 0 && fsync(fd) == 0)
        return 0;
    err = errno;
    (void)ftruncate(fd, st.st_size);
    local_result_set(res, DELIVERY_DEFER, err == ENOSPC || err == EDQUOT ? "4.2.2" : "4.3.0",
                     "cannot write %s: %s", what, strerror(err));
    return -1;
}

/* mailbox_mail_gid - group "mail" when it exists, else the user's group */
static gid_t mailbox_mail_gid(gid_t fallback)
{
    struct group *gr = getgrnam("mail");
    return gr ? gr->gr_gid : fallback;
}

/* mailbox_as_user - effective ids of the user (1) or back to root (0);
 * the worker goes on delivering, so failing to get root back ends it */
static int mailbox_as_user(const struct local_user *u, int on)
{
    if (getuid() != 0)
        return 0;
    if (on)
        return setegid(u->gid) == 0 && seteuid(u->uid) == 0 ? 0 : -1;
    if (seteuid(0) == 0 && setegid(0) == 0)
        return 0;
    log_error("cannot switch back to root after a delivery: %s", strerror(errno));
    _exit(1);
}

/* mailbox_spool_write - the locked part of an mbox delivery */
static void mailbox_spool_write(const char *path, const struct local_message *msg,
                                const struct local_target *t, struct delivery_outcome *res)
{
    buf_t data = BUF_INIT;
    int fd = mailbox_open(path, t->user.uid, mailbox_mail_gid(t->user.gid), res);

    if (fd < 0)
        return;
    if (mailbox_fcntl_lock(fd) < 0) {
        local_result_set(res, DELIVERY_DEFER, "4.2.0", "cannot lock mailbox %s", path);
    } else if (mailbox_as_user(&t->user, 1) < 0) {
        local_result_set(res, DELIVERY_DEFER, "4.3.0", "cannot switch to the recipient's ids");
        (void)mailbox_as_user(&t->user, 0); /* undo a half switch */
    } else {
        local_message_format(msg, t->address, MSG_FROM_LINE | MSG_QUOTE_FROM | MSG_BLANK_END,
                             &data);
        if (mailbox_append(fd, &data, "mailbox", res) == 0)
            local_result_set(res, DELIVERY_SENT, "2.0.0", "delivered to mailbox");
        (void)mailbox_as_user(&t->user, 0);
    }
    buf_free(&data);
    close(fd); /* drops the fcntl lock */
}

/* local_deliver_mbox - see local.h */
void local_deliver_mbox(const struct local_env *env, const struct local_message *msg,
                        const struct local_target *t, struct delivery_outcome *res)
{
    buf_t path = BUF_INIT, lock = BUF_INIT;

    if (strchr(t->user.name, '/') != NULL || t->user.name[0] == '.') {
        local_result_set(res, DELIVERY_BOUNCE, "5.1.3", "bad user name for a mailbox");
        return;
    }
    buf_printf(&path, "%s/%s", env->spool_dir, t->user.name);
    buf_printf(&lock, "%s.lock", buf_cstr(&path));
    if (mailbox_dotlock(buf_cstr(&lock)) < 0) {
        local_result_set(res, DELIVERY_DEFER, "4.2.0", "cannot create dot-lock %s: %s",
                         buf_cstr(&lock), errno ? strerror(errno) : "locked");
    } else {
        mailbox_spool_write(buf_cstr(&path), msg, t, res);
        unlink(buf_cstr(&lock));
    }
    buf_free(&path);
    buf_free(&lock);
}

/* maildir_mkdirs - DIR, DIR/tmp, DIR/new, DIR/cur (0700, as the user) */
static int maildir_mkdirs(const char *dir)
{
    static const char *subs[] = {"", "/tmp", "/new", "/cur"};
    buf_t p = BUF_INIT;
    int rc = 0;

    for (size_t i = 0; i < 4 && rc == 0; i++) {
        buf_reset(&p);
        buf_printf(&p, "%s%s", dir, subs[i]);
        if (mkdir(buf_cstr(&p), 0700) < 0 && errno != EEXIST)
            rc = -1;
    }
    buf_free(&p);
    return rc;
}

/* maildir_unique_name - "sec.MusecPpid_seq.host" with / and : escaped */
static void maildir_unique_name(buf_t *out)
{
    static unsigned seq;
    char host[256];
    struct timeval tv;

    if (gethostname(host, sizeof(host) - 1) < 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = 0;
    gettimeofday(&tv, NULL);
    buf_printf(out, "%lld.M%06ldP%ld_%u.", (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
               ++seq);
    for (const char *h = host; *h; h++) {
        if (*h == '/')
            buf_puts(out, "\\057");
        else if (*h == ':')
            buf_puts(out, "\\072");
        else
            buf_putc(out, *h);
    }
}

/* maildir_store - write tmp/NAME, fsync, link to new/NAME (link never
 * replaces an existing message, unlike rename), remove tmp/NAME */
static void maildir_store(const char *dir, const buf_t *data, struct delivery_outcome *res)
{
    buf_t name = BUF_INIT, tmp = BUF_INIT, dst = BUF_INIT, newdir = BUF_INIT;
    int fd;

    maildir_unique_name(&name);
    buf_printf(&tmp, "%s/tmp/%s", dir, buf_cstr(&name));
    buf_printf(&dst, "%s/new/%s", dir, buf_cstr(&name));
    buf_printf(&newdir, "%s/new", dir);
    fd = safe_create(buf_cstr(&tmp), O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        local_result_set(res, DELIVERY_DEFER, "4.2.0", "cannot create %s: %s", buf_cstr(&tmp),
                         strerror(errno));
    } else if (write_all(fd, data->data, data->len) < 0 || fsync(fd) < 0 || close(fd) < 0) {
        local_result_set(res, DELIVERY_DEFER,
                         errno == ENOSPC || errno == EDQUOT ? "4.2.2" : "4.3.0",
                         "cannot write maildir file: %s", strerror(errno));
        unlink(buf_cstr(&tmp));
        fd = -1;
    } else if (link(buf_cstr(&tmp), buf_cstr(&dst)) < 0 || fsync_dir(buf_cstr(&newdir)) < 0) {
        local_result_set(res, DELIVERY_DEFER, "4.3.0", "cannot link into %s: %s", buf_cstr(&newdir),
                         strerror(errno));
        unlink(buf_cstr(&tmp));
    } else {
        unlink(buf_cstr(&tmp));
        local_result_set(res, DELIVERY_SENT, "2.0.0", "delivered to maildir");
    }
    buf_free(&name);
    buf_free(&tmp);
    buf_free(&dst);
    buf_free(&newdir);
}

/* local_deliver_maildir - see local.h */
void local_deliver_maildir(const char *dir, const struct local_message *msg,
                           const struct local_target *t, struct delivery_outcome *res)
{
    buf_t data = BUF_INIT;

    if (maildir_mkdirs(dir) < 0) {
        local_result_set(res, DELIVERY_DEFER, "4.2.0", "cannot create maildir %s: %s", dir,
                         strerror(errno));
        return;
    }
    local_message_format(msg, t->address, 0, &data);
    maildir_store(dir, &data, res);
    buf_free(&data);
}

/* local_deliver_file - see local.h */
void local_deliver_file(const char *path, const struct local_message *msg,
                        const struct local_target *t, struct delivery_outcome *res)
{
    buf_t data = BUF_INIT;
    int fd;

    if (strcmp(path, "/dev/null") == 0) {
        local_result_set(res, DELIVERY_SENT, "2.0.0", "delivered to file: %s", path);
        return;
    }
    fd = mailbox_open(path, t->user.uid, t->user.gid, res);
    if (fd < 0)
        return;
    if (mailbox_fcntl_lock(fd) < 0) {
        local_result_set(res, DELIVERY_DEFER, "4.2.0", "cannot lock file %s", path);
    } else {
        local_message_format(msg, t->address, MSG_FROM_LINE | MSG_QUOTE_FROM | MSG_BLANK_END,
                             &data);
        if (mailbox_append(fd, &data, path, res) == 0)
            local_result_set(res, DELIVERY_SENT, "2.0.0", "delivered to file: %s", path);
    }
    buf_free(&data);
    close(fd);
}
