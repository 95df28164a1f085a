/*
 * terndrop - the one way a local user's mail enters maildrop/ (DESIGN §3).
 *
 *   terndrop [-c DIR] [-I] [-W]   read a maildrop file (lib/qfile.h) on stdin
 *                                 (-W: no pickup trigger; the queue run of
 *                                 sendmail -v that follows sends it)
 *   terndrop [-c DIR] -p [-j]     copy the queue listing (public/showq)
 *   terndrop [-c DIR] -q [SEL]    ask qmgr to flush (public/qmgr)
 *   terndrop [-c DIR] -q -w [-v] [SEL]  a queue run in the foreground:
 *                                 return when every selected message had
 *                                 its attempt (-v: print the transcript);
 *                                 EX_UNAVAILABLE when qmgr is not running,
 *                                 EX_TEMPFAIL when some were left untried
 *   terndrop [-c DIR] -s ID       exit 0 while maildrop/ID waits for pickup
 *   terndrop [-c DIR] -k          trigger pickup (after -W when no run came)
 *
 * Installed set-gid terndrop: maildrop/ (01730) and public/ (0710) are open
 * to that group only.  The input is copied (bounded by message_size_limit)
 * into an anonymous file and parsed with qfile_read; nothing of it is
 * trusted: the records are checked and written anew, with the attributes
 * uid and user set from the real uid.  The file is written as
 * maildrop/.tmp.ID, fsynced, renamed to maildrop/ID, the directory fsynced
 * (syncfs when the directory cannot be opened), and public/pickup poked (a failure there is fine:
 * pickup scans at start and every minute).  -I prints the ID.  Exit 0, EX_DATAERR for input that is
 * not a valid message, EX_NOPERM for a refused config, EX_TEMPFAIL for any
 * other failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sysexits.h>
#include <unistd.h>

#include "addr.h"
#include "attr.h"
#include "config.h"
#include "qfile.h"
#include "qid.h"
#include "safefile.h"
#include "sendmail.h"
#include "service.h"

#define TERNDROP_ENVELOPE_ROOM (1024 * 1024)
#define TERNDROP_MAX_ATTR 1024
#define TERNDROP_CHUNK 65536
#define TERNDROP_REPLY_TIMEOUT 10

/* attributes a submitter may set; uid and user are always terndrop's */
static const char *terndrop_attrs[] = {"fullname", "submit_flags", "envid", "ret",
                                       "body",     "log_tag",      NULL};

static const char *queue_dir;
static int leave_pickup; /* -W: a queue run triggers pickup (sendmail -v) */

static void terndrop_usage(void)
{
    fprintf(stderr, "usage: terndrop [-c DIR] [-I] [-W] < maildrop-file\n"
                    "       terndrop [-c DIR] -p [-j]\n"
                    "       terndrop [-c DIR] -q [-w [-v]] [[!]R<substr>|[!]S<substr>|[!]I<id>]\n"
                    "       terndrop [-c DIR] -s ID\n"
                    "       terndrop [-c DIR] -k\n");
    exit(EX_USAGE);
}

/* terndrop_copy_input - stdin into an anonymous file, at most limit bytes */
static int terndrop_copy_input(long long limit, int *fd_out)
{
    char chunk[TERNDROP_CHUNK];
    long long total = 0;
    ssize_t n;
    int fd = memfd_create("terndrop", MFD_CLOEXEC);

    if (fd < 0) {
        fprintf(stderr, "terndrop: cannot make a temporary file: %s\n", strerror(errno));
        return EX_TEMPFAIL;
    }
    while ((n = read(0, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "terndrop: read error on standard input: %s\n", strerror(errno));
            close(fd);
            return EX_TEMPFAIL;
        }
        total += n;
        if (total > limit) {
            fprintf(stderr, "terndrop: message too large (limit %lld bytes)\n", limit);
            close(fd);
            return EX_DATAERR;
        }
        if (write_all(fd, chunk, (size_t)n) < 0) {
            fprintf(stderr, "terndrop: cannot buffer the message: %s\n", strerror(errno));
            close(fd);
            return EX_TEMPFAIL;
        }
    }
    *fd_out = fd;
    return 0;
}

/* terndrop_text_ok - printable text without line breaks, at most max bytes */
static int terndrop_text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 32 || *s == 127)
            return 0;
    return 1;
}

static int terndrop_attr_allowed(const char *name)
{
    for (int i = 0; terndrop_attrs[i]; i++)
        if (strcmp(name, terndrop_attrs[i]) == 0)
            return 1;
    return 0;
}

/* terndrop_validate - the parsed input is a message we can queue */
static int terndrop_validate(const struct qfile_msg *m, buf_t *why)
{
    if (m->rcpt_count == 0)
        buf_set(why, "no recipients");
    else if (!terndrop_text_ok(m->sender, ADDR_MAX_LENGTH))
        buf_set(why, "bad sender address");
    for (size_t i = 0; why->len == 0 && i < m->rcpt_count; i++) {
        const struct qfile_rcpt *r = &m->rcpts[i];
        if (!*r->address || !terndrop_text_ok(r->address, ADDR_MAX_LENGTH) ||
            !terndrop_text_ok(r->original, ADDR_MAX_LENGTH) ||
            !terndrop_text_ok(r->notify, TERNDROP_MAX_ATTR) ||
            !terndrop_text_ok(r->orcpt, TERNDROP_MAX_ATTR))
            buf_printf(why, "bad recipient #%zu", i + 1);
    }
    for (size_t i = 0; why->len == 0 && i < m->attr_count; i++)
        if (terndrop_attr_allowed(m->attrs[i].name) &&
            !terndrop_text_ok(m->attrs[i].value, TERNDROP_MAX_ATTR))
            buf_printf(why, "bad attribute %.40s", m->attrs[i].name);
    return why->len ? -1 : 0;
}

/* terndrop_write_records - the whole maildrop file from the parsed input */
static int terndrop_write_records(struct qfile_writer *w, const struct qfile_msg *m, int in_fd)
{
    char chunk[TERNDROP_CHUNK], stamp[64], uid[32];
    struct timeval tv;
    struct passwd *pw = getpwuid(getuid());
    size_t done = 0;

    gettimeofday(&tv, NULL);
    snprintf(stamp, sizeof(stamp), "%lld.%06ld", (long long)tv.tv_sec, (long)tv.tv_usec);
    snprintf(uid, sizeof(uid), "%lu", (unsigned long)getuid());
    qfile_put_str(w, QFILE_REC_VERSION, "1");
    qfile_put_str(w, QFILE_REC_TIME, stamp);
    qfile_put_str(w, QFILE_REC_SENDER, m->sender);
    qfile_put_attr(w, "uid", uid);
    if (pw && terndrop_text_ok(pw->pw_name, 64))
        qfile_put_attr(w, "user", pw->pw_name);
    for (size_t i = 0; i < m->attr_count; i++)
        if (terndrop_attr_allowed(m->attrs[i].name))
            qfile_put_attr(w, m->attrs[i].name, m->attrs[i].value);
    for (size_t i = 0; i < m->rcpt_count; i++)
        qfile_put_rcpt(w, m->rcpts[i].address, m->rcpts[i].original, m->rcpts[i].notify,
                       m->rcpts[i].orcpt);
    qfile_content_begin(w);
    while (done < m->content_length) {
        size_t want =
            m->content_length - done < sizeof(chunk) ? m->content_length - done : sizeof(chunk);
        ssize_t n = pread(in_fd, chunk, want, m->content_offset + (off_t)done);
        if (n <= 0)
            return -1;
        qfile_content_append(w, chunk, (size_t)n);
        if (qfile_writer_flush(w, TERNDROP_CHUNK) < 0)
            return -1;
        done += (size_t)n;
    }
    return qfile_content_end(w) < 0 || qfile_finish(w) < 0 ? -1 : 0;
}

/* terndrop_poke_pickup - tell pickup to look now; failure is fine */
static void terndrop_poke_pickup(void)
{
    buf_t path = BUF_INIT, out = BUF_INIT;
    int fd;

    buf_printf(&path, "%s/public/pickup", queue_dir);
    fd = unix_connect(buf_cstr(&path), 1);
    if (fd >= 0) {
        attr_begin(&out, "pickup.trigger");
        attr_end(&out);
        if (send(fd, out.data, out.len, MSG_NOSIGNAL) < 0) { /* pickup scans anyway */
        }
        close(fd);
    }
    buf_free(&out);
    buf_free(&path);
}

/* terndrop_create - maildrop/.tmp.ID with a fresh ID */
static int terndrop_create(char id[QID_LEN + 1], buf_t *tmp, buf_t *final)
{
    for (int tries = 0; tries < 10; tries++) {
        qid_new(id);
        buf_reset(tmp);
        buf_reset(final);
        buf_printf(tmp, "%s/maildrop/.tmp.%s", queue_dir, id);
        buf_printf(final, "%s/maildrop/%s", queue_dir, id);
        int fd = safe_create(buf_cstr(tmp), O_WRONLY, 0644);
        if (fd >= 0) {
            fchmod(fd, 0644);
            return fd;
        }
        if (errno != EEXIST)
            return -1;
    }
    return -1;
}

/* terndrop_store - write, fsync, rename, fsync the directory */
static int terndrop_store(const struct qfile_msg *m, int in_fd, int print_id)
{
    char id[QID_LEN + 1];
    buf_t tmp = BUF_INIT, final = BUF_INIT, dir = BUF_INIT;
    struct qfile_writer w;
    int fd = terndrop_create(id, &tmp, &final), rc = EX_TEMPFAIL;

    if (fd < 0) {
        fprintf(stderr, "terndrop: cannot write %s/maildrop/: %s\n", queue_dir, strerror(errno));
        goto out;
    }
    qfile_writer_init(&w, fd);
    if (terndrop_write_records(&w, m, in_fd) < 0 || fsync(fd) < 0) {
        int err = w.failed_errno ? w.failed_errno : errno;
        fprintf(stderr, "terndrop: cannot write %s: %s\n", buf_cstr(&tmp), strerror(err));
        unlink(buf_cstr(&tmp));
    } else if (rename(buf_cstr(&tmp), buf_cstr(&final)) < 0) {
        fprintf(stderr, "terndrop: cannot rename %s: %s\n", buf_cstr(&tmp), strerror(errno));
        unlink(buf_cstr(&tmp));
    } else {
        buf_printf(&dir, "%s/maildrop", queue_dir);
        /* maildrop/ is not readable by group terndrop, so the directory
         * cannot be opened for fsync: then flush the whole file system */
        if (fsync_dir(buf_cstr(&dir)) < 0 && (errno != EACCES || syncfs(fd) < 0))
            fprintf(stderr, "terndrop: fsync %s: %s\n", buf_cstr(&dir), strerror(errno));
        else
            rc = 0;
    }
    qfile_writer_free(&w);
    close(fd);
    if (rc == 0) {
        if (!leave_pickup)
            terndrop_poke_pickup();
        if (print_id)
            printf("%s\n", id);
    }
out:
    buf_free(&tmp);
    buf_free(&final);
    buf_free(&dir);
    return rc;
}

/* terndrop_drop - stdin to maildrop/ */
static int terndrop_drop(const struct config *cfg, int print_id)
{
    long long size_limit = config_size(cfg, "message_size_limit");
    long long limit = size_limit > 0 ? size_limit + TERNDROP_ENVELOPE_ROOM : QFILE_MAX_RECORD;
    struct qfile_msg m;
    buf_t err = BUF_INIT;
    int fd = -1, rc = terndrop_copy_input(limit, &fd);

    if (rc != 0)
        return rc;
    qfile_msg_init(&m);
    if (qfile_read(fd, &m, &err) < 0 || terndrop_validate(&m, &err) < 0) {
        fprintf(stderr, "terndrop: invalid input: %s\n", buf_cstr(&err));
        rc = EX_DATAERR;
    } else {
        rc = terndrop_store(&m, fd, print_id);
    }
    qfile_msg_free(&m);
    buf_free(&err);
    close(fd);
    return rc;
}

/* terndrop_connect - a public service socket, or -1 with a message */
static int terndrop_connect(const char *service)
{
    buf_t path = BUF_INIT;
    int fd;

    buf_printf(&path, "%s/public/%s", queue_dir, service);
    fd = unix_connect(buf_cstr(&path), 0);
    if (fd >= 0) { /* a socket nobody serves must not hang us */
        struct timeval tv = {TERNDROP_REPLY_TIMEOUT, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    if (fd < 0)
        fprintf(stderr, "terndrop: cannot connect to %s: %s (is tern running?)\n", buf_cstr(&path),
                strerror(errno));
    buf_free(&path);
    return fd;
}

/* terndrop_list - the queue listing from showq, copied to stdout; a
 * refusal ("You are not permitted ...") exits 1 like sendmail's mailq */
static int terndrop_list(int json)
{
    char chunk[TERNDROP_CHUNK];
    buf_t out = BUF_INIT;
    ssize_t n;
    int fd = terndrop_connect("showq"), rc = 0, first = 1;

    if (fd < 0)
        return EX_TEMPFAIL;
    attr_begin(&out, "showq.list");
    attr_add_str(&out, "format", json ? "json" : "sendmail");
    attr_end(&out);
    if (attr_write_fd(fd, &out) < 0) {
        fprintf(stderr, "terndrop: cannot send to showq: %s\n", strerror(errno));
        rc = EX_TEMPFAIL;
    }
    while (rc == 0 && (n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "terndrop: no answer from showq: %s\n", strerror(errno));
            rc = EX_TEMPFAIL;
            break;
        }
        if (first && n >= 21 && strncmp(chunk, "You are not permitted", 21) == 0)
            rc = 1;
        first = 0;
        if (write_all(1, chunk, (size_t)n) < 0)
            rc = EX_IOERR;
    }
    close(fd);
    buf_free(&out);
    return rc;
}

/* terndrop_waiting - 0 while maildrop/ID exists (sendmail -v follows it) */
static int terndrop_waiting(const char *id)
{
    buf_t path = BUF_INIT;
    struct stat st;
    int rc;

    if (!qid_valid(id))
        return EX_USAGE;
    buf_printf(&path, "%s/maildrop/%s", queue_dir, id);
    rc = lstat(buf_cstr(&path), &st) == 0 ? 0 : 1;
    buf_free(&path);
    return rc;
}

/* terndrop_flush - ask qmgr to retry deferred mail (optionally selected) */
static int terndrop_flush(const char *selector)
{
    buf_t out = BUF_INIT;
    struct attr_msg reply;
    int fd = terndrop_connect("qmgr"), rc = EX_TEMPFAIL;

    if (fd < 0)
        return EX_TEMPFAIL;
    attr_msg_init(&reply);
    attr_begin(&out, "qmgr.flush");
    if (selector && *selector)
        attr_add_str(&out, "selector", selector);
    attr_end(&out);
    if (attr_write_fd(fd, &out) < 0 || attr_read_fd(fd, &reply, TERNDROP_REPLY_TIMEOUT) < 0) {
        fprintf(stderr, "terndrop: no answer from qmgr\n");
    } else {
        const char *status = attr_get(&reply, "status", NULL);
        const char *count = attr_get(&reply, "count", NULL);
        if (status && strcmp(status, "ok") == 0) {
            printf("%s\n", count ? count : "0");
            rc = 0;
        } else if (status && strcmp(status, "denied") == 0) {
            fprintf(stderr, "terndrop: permission denied: queue runs are restricted\n");
            rc = EX_NOPERM;
        } else {
            fprintf(stderr, "terndrop: qmgr refused the flush\n");
        }
    }
    attr_msg_free(&reply);
    buf_free(&out);
    close(fd);
    return rc;
}

/* terndrop_run_print - one qmgr.run.message: sendmail's "Running" line,
 * then what qmgr says about the message (transcripts, recipients) */
static void terndrop_run_print(const struct attr_msg *m, const char *count)
{
    const char *id = attr_get(m, "id", NULL), *text = attr_get(m, "text", NULL);
    const char *seq = attr_get(m, "sequence", NULL), *of = attr_get(m, "of", NULL);

    if (of == NULL) /* it went before the run was counted */
        of = count;
    printf("Running %s/%s (sequence %s of %s)\n", queue_dir, id && qid_valid(id) ? id : "?",
           seq ? seq : "?", of ? of : "?");
    for (const char *p = text ? text : ""; *p; p++) /* no terminal controls from outside */
        putchar(((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f ? '?' : *p);
    fflush(stdout);
}

/* terndrop_read_next - the next message of a stream from fd; bytes read
 * past it stay in *in for the next call; 0 ok, -1 EOF, error or garbage */
static int terndrop_read_next(int fd, buf_t *in, struct attr_msg *m)
{
    char chunk[TERNDROP_CHUNK];

    for (;;) {
        size_t used;
        int r = attr_decode(in->data ? in->data : "", in->len, &used, m);
        ssize_t n;

        if (r < 0)
            return -1;
        if (r > 0) {
            memmove(in->data, in->data + used, in->len - used);
            in->len -= used;
            return 0;
        }
        n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf_append(in, chunk, (size_t)n);
    }
}

/* terndrop_run_left - qmgr.run.done: 0, or EX_TEMPFAIL when it names
 * matching messages qmgr could not take (it drains for a reload, or
 * queue_defer_load holds new mail) */
static int terndrop_run_left(const struct attr_msg *done)
{
    const char *left = attr_get(done, "left", NULL);

    if (left == NULL || strtoll(left, NULL, 10) <= 0)
        return 0;
    fprintf(stderr,
            "terndrop: %s message(s) were not attempted (qmgr is reloading or the load "
            "average is above queue_defer_load); run the queue again later\n",
            left);
    return EX_TEMPFAIL;
}

/* terndrop_run_follow - read qmgr.reply, qmgr.run.message ... qmgr.run.done */
static int terndrop_run_follow(int fd, int verbose)
{
    struct timeval none = {0, 0};
    struct attr_msg m;
    buf_t in = BUF_INIT;
    char count[32] = "?";
    int rc = EX_TEMPFAIL;

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none)); /* a run may be long */
    attr_msg_init(&m);
    if (terndrop_read_next(fd, &in, &m) < 0) {
        fprintf(stderr, "terndrop: no answer from qmgr\n");
        rc = EX_TEMPFAIL;
    } else if (strcmp(attr_get(&m, "status", NULL) ? attr_get(&m, "status", NULL) : "", "ok")) {
        const char *text = attr_get(&m, "text", NULL);
        fprintf(stderr, "terndrop: %s\n", text ? text : "qmgr refused the queue run");
        rc = text && strstr(text, "permission") ? EX_NOPERM : EX_USAGE;
        goto out;
    } else if (attr_get(&m, "count", NULL) != NULL) {
        snprintf(count, sizeof(count), "%s", attr_get(&m, "count", NULL));
    }
    if (verbose && attr_get(&m, "trace", NULL) != NULL) { /* "denied" */
        fprintf(stderr, "terndrop: the queue's contents are not shown to you "
                        "(restrict_queue_listing); running the queue without a transcript\n");
        verbose = 0;
    }
    while (terndrop_read_next(fd, &in, &m) == 0) {
        if (strcmp(attr_proto(&m), "qmgr.run.done") == 0) {
            rc = terndrop_run_left(&m);
            break;
        }
        if (strcmp(attr_proto(&m), "qmgr.run.message") == 0 && verbose)
            terndrop_run_print(&m, count);
    }
    if (rc == EX_TEMPFAIL && strcmp(attr_proto(&m), "qmgr.run.done") != 0)
        fprintf(stderr, "terndrop: qmgr went away during the queue run\n");
out:
    attr_msg_free(&m);
    buf_free(&in);
    return rc;
}

/* terndrop_run - qmgr.flush wait=yes: a foreground queue run */
static int terndrop_run(const char *selector, int verbose)
{
    buf_t out = BUF_INIT, path = BUF_INIT;
    int fd, rc = EX_TEMPFAIL;

    buf_printf(&path, "%s/public/qmgr", queue_dir);
    fd = unix_connect(buf_cstr(&path), 0);
    buf_free(&path);
    if (fd < 0)
        return errno == ENOENT || errno == ECONNREFUSED ? EX_UNAVAILABLE : EX_TEMPFAIL;
    attr_begin(&out, "qmgr.flush");
    attr_add_str(&out, "selector", selector ? selector : "");
    attr_add_str(&out, "wait", "yes");
    if (verbose)
        attr_add_str(&out, "trace", "yes");
    attr_end(&out);
    if (attr_write_fd(fd, &out) < 0)
        fprintf(stderr, "terndrop: cannot send to qmgr: %s\n", strerror(errno));
    else
        rc = terndrop_run_follow(fd, verbose);
    buf_free(&out);
    close(fd);
    return rc;
}

#ifdef __SANITIZE_ADDRESS__
/* LeakSanitizer cannot run in a set-gid process (it needs ptrace of itself),
 * and sendmail execs terndrop with an empty environment: in sanitizer builds
 * leak checking is off here by default; memory errors are still caught. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "detect_leaks=0";
}
#endif

int main(int argc, char **argv)
{
    const char *dir_arg = NULL, *selector = NULL, *waiting = NULL;
    int list = 0, json = 0, flush = 0, print_id = 0, wait = 0, verbose = 0, kick = 0, ch;
    struct config *cfg;
    buf_t err = BUF_INIT;
    char *dir;

    umask(022);
    signal(SIGPIPE, SIG_IGN);
    while ((ch = getopt(argc, argv, "c:Ijkpqs:vWw")) != -1) {
        switch (ch) {
        case 'c':
            dir_arg = optarg;
            break;
        case 'I':
            print_id = 1;
            break;
        case 'j':
            json = 1;
            break;
        case 'p':
            list = 1;
            break;
        case 'q':
            flush = 1;
            break;
        case 's':
            waiting = optarg;
            break;
        case 'v':
            verbose = 1;
            break;
        case 'w':
            wait = 1;
            break;
        case 'W':
            leave_pickup = 1;
            break;
        case 'k':
            kick = 1;
            break;
        default:
            terndrop_usage();
        }
    }
    if (flush && optind < argc)
        selector = argv[optind++];
    if (optind != argc || (list && flush))
        terndrop_usage();
    if ((dir = submit_config_dir(dir_arg, &err)) == NULL) {
        fprintf(stderr, "terndrop: %s\n", buf_cstr(&err));
        return EX_NOPERM;
    }
    if (config_load(dir, &cfg, &err) < 0) {
        fprintf(stderr, "terndrop: %s\n", buf_cstr(&err));
        return EX_TEMPFAIL;
    }
    queue_dir = config_str(cfg, "queue_directory");
    if (kick) {
        terndrop_poke_pickup();
        return 0;
    }
    int rc = waiting         ? terndrop_waiting(waiting)
             : list          ? terndrop_list(json)
             : flush && wait ? terndrop_run(selector, verbose)
             : flush         ? terndrop_flush(selector)
                             : terndrop_drop(cfg, print_id);
    config_free(cfg);
    free(dir);
    buf_free(&err);
    return rc;
}
