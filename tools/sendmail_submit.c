/*
 * sendmail_submit - read a message and hand it to terndrop.
 *
 * The message comes from stdin: LF or CRLF line ends (stored as CRLF), a
 * leading mbox "From " line dropped, input ended by EOF or (without -i) by a
 * line holding only ".".  With -t the To:, Cc: and Bcc: headers give the
 * recipients (added to any on the command line) and Bcc: lines are removed.
 * The maildrop file (lib/qfile.h records) is built in an anonymous file that
 * becomes terndrop's stdin; terndrop is run with execve, never a shell, and
 * with a fixed environment.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "qfile.h"
#include "safefile.h"
#include "sendmail.h"

#define SUBMIT_CHUNK 65536
#define SUBMIT_MAX_ARGS 80 /* tern start -f and -o name=value pairs */

void submission_init(struct submission *s)
{
    memset(s, 0, sizeof(*s));
}

void submission_free(struct submission *s)
{
    buf_t *bufs[] = {&s->sender, &s->full_name, &s->notify, &s->ret,
                     &s->envid,  &s->body_type, &s->content};
    for (size_t i = 0; i < s->rcpt_count; i++)
        free(s->rcpts[i]);
    free(s->rcpts);
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        buf_free(bufs[i]);
    memset(s, 0, sizeof(*s));
}

int submission_add_rcpt(struct submission *s, const char *addr)
{
    if (s->rcpt_count >= SENDMAIL_MAX_RCPTS)
        return -1;
    s->rcpts = xrealloc(s->rcpts, (s->rcpt_count + 1) * sizeof(*s->rcpts));
    s->rcpts[s->rcpt_count++] = xstrdup(addr);
    return 0;
}

void sendmail_self_dir(buf_t *out)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash;

    buf_reset(out);
    if (n <= 0) {
        buf_puts(out, TERN_SBINDIR);
        return;
    }
    exe[n] = 0;
    slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    buf_puts(out, exe);
}

/* submit_add_line - one input line (without its line end) as CRLF content */
static void submit_add_line(buf_t *content, const char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    buf_append(content, line, len);
    buf_puts(content, "\r\n");
}

/* submit_read_stdin - the raw message; 1 when a lone dot ended it */
static int submit_read_stdin(buf_t *content, long long limit, int ignore_dots)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int first = 1;

    while ((n = getline(&line, &cap, stdin)) > 0) {
        size_t len = (size_t)n;
        if (line[len - 1] == '\n')
            len--;
        if (first && len >= 5 && strncmp(line, "From ", 5) == 0) {
            first = 0;
            continue; /* mbox separator line */
        }
        first = 0;
        if (!ignore_dots && (len == 1 || (len == 2 && line[1] == '\r')) && line[0] == '.')
            break;
        submit_add_line(content, line, len);
        if (limit > 0 && (long long)content->len > limit) {
            free(line);
            return -1;
        }
    }
    free(line);
    return 0;
}

/* submit_header_end - length of the header section (up to the blank line) */
static size_t submit_header_end(const buf_t *content)
{
    const char *p = content->data, *end = p + content->len;

    if (content->len >= 2 && strncmp(p, "\r\n", 2) == 0)
        return 0;
    while (p < end) {
        const char *nl = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (nl == NULL)
            return content->len;
        if (nl == p)
            return (size_t)(p - content->data);
        p = nl + 2;
    }
    return content->len;
}

/* submit_header_name_is - the header at line has this name */
static int submit_header_name_is(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

/* submit_extract - -t: recipients from To/Cc/Bcc; Bcc lines dropped */
static int submit_extract(struct submission *s)
{
    size_t hdr_len = submit_header_end(&s->content), pos = 0;
    buf_t out = BUF_INIT, err = BUF_INIT;
    int rc = 0;

    while (pos < hdr_len && rc == 0) {
        const char *line = s->content.data + pos;
        size_t len = 0;
        /* one header with its continuation lines */
        do {
            const char *nl = memmem(line + len, hdr_len - pos - len, "\r\n", 2);
            len = nl ? (size_t)(nl - line) + 2 : hdr_len - pos;
        } while (pos + len < hdr_len && (line[len] == ' ' || line[len] == '\t'));
        int bcc = submit_header_name_is(line, len, "Bcc");
        if (bcc || submit_header_name_is(line, len, "To") ||
            submit_header_name_is(line, len, "Cc")) {
            const char *colon = memchr(line, ':', len);
            char *value = xstrndup(colon + 1, len - (size_t)(colon + 1 - line));
            if (sendmail_addr_list(value, s, &err) < 0) {
                fprintf(stderr, "sendmail: %s\n", buf_cstr(&err));
                rc = EX_DATAERR;
            }
            free(value);
        }
        if (!bcc)
            buf_append(&out, line, len);
        pos += len;
    }
    buf_append(&out, s->content.data + hdr_len, s->content.len - hdr_len);
    buf_free(&s->content);
    s->content = out;
    buf_free(&err);
    return rc;
}

/* submit_has_8bit - any byte over 127 */
static int submit_has_8bit(const buf_t *b)
{
    for (size_t i = 0; i < b->len; i++)
        if ((unsigned char)b->data[i] > 127)
            return 1;
    return 0;
}

int sendmail_read_message(struct submission *s, const struct config *cfg, int ignore_dots,
                          int extract)
{
    long long limit = config_size(cfg, "message_size_limit");
    int rc;

    if (submit_read_stdin(&s->content, limit, ignore_dots) < 0) {
        fprintf(stderr, "sendmail: message too large (message_size_limit is %lld bytes)\n", limit);
        return EX_DATAERR;
    }
    if (extract && (rc = submit_extract(s)) != 0)
        return rc;
    if (s->body_type.len == 0 && submit_has_8bit(&s->content))
        buf_set(&s->body_type, "8BITMIME");
    return 0;
}

/* submit_build_file - the maildrop file in an anonymous file, rewound */
static int submit_build_file(const struct submission *s)
{
    struct qfile_writer w;
    struct timeval tv;
    char stamp[64];
    int fd = memfd_create("sendmail", MFD_CLOEXEC), rc;

    if (fd < 0)
        return -1;
    gettimeofday(&tv, NULL);
    snprintf(stamp, sizeof(stamp), "%lld.%06ld", (long long)tv.tv_sec, (long)tv.tv_usec);
    qfile_writer_init(&w, fd);
    qfile_put_str(&w, QFILE_REC_VERSION, "1");
    qfile_put_str(&w, QFILE_REC_TIME, stamp);
    qfile_put_str(&w, QFILE_REC_SENDER, buf_cstr(&s->sender));
    if (s->full_name.len)
        qfile_put_attr(&w, "fullname", buf_cstr(&s->full_name));
    if (s->sender_set)
        qfile_put_attr(&w, "submit_flags", "f");
    if (s->envid.len)
        qfile_put_attr(&w, "envid", buf_cstr(&s->envid));
    if (s->ret.len)
        qfile_put_attr(&w, "ret", buf_cstr(&s->ret));
    if (s->body_type.len)
        qfile_put_attr(&w, "body", buf_cstr(&s->body_type));
    for (size_t i = 0; i < s->rcpt_count; i++)
        qfile_put_rcpt(&w, s->rcpts[i], s->rcpts[i], buf_cstr(&s->notify), "");
    qfile_content_begin(&w);
    qfile_content_append(&w, s->content.data, s->content.len);
    rc = qfile_content_end(&w) < 0 || qfile_finish(&w) < 0 || lseek(fd, 0, SEEK_SET) < 0 ? -1 : 0;
    qfile_writer_free(&w);
    if (rc < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* submit_spawn_program - start program (next to this one, else in
 * installed_dir) as `program -c DIR args...`; stdin/stdout as given (-1:
 * inherit); the pid, or -1 */
static pid_t submit_spawn_program(const char *program, const char *installed_dir,
                                  const char *config_dir, char *const *args, int in_fd, int out_fd)
{
    char *env[] = {"PATH=/usr/bin:/bin", NULL};
    char *argv[SUBMIT_MAX_ARGS + 4];
    size_t n = 0;
    buf_t path = BUF_INIT;
    pid_t pid;

    sendmail_self_dir(&path);
    buf_printf(&path, "/%s", program);
    if (access(buf_cstr(&path), X_OK) < 0) {
        buf_reset(&path);
        buf_printf(&path, "%s/%s", installed_dir, program);
    }
    argv[n++] = (char *)program;
    argv[n++] = "-c";
    argv[n++] = (char *)config_dir;
    for (size_t i = 0; args && args[i] && n < SUBMIT_MAX_ARGS + 3; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    fflush(stdout);
    pid = fork();
    if (pid < 0)
        fprintf(stderr, "sendmail: cannot fork: %s\n", strerror(errno));
    if (pid == 0) {
        if ((in_fd >= 0 && dup2(in_fd, 0) < 0) || (out_fd >= 0 && dup2(out_fd, 1) < 0))
            _exit(EX_OSERR);
        execve(buf_cstr(&path), argv, env);
        fprintf(stderr, "sendmail: cannot run %s: %s\n", buf_cstr(&path), strerror(errno));
        _exit(EX_OSERR);
    }
    buf_free(&path);
    return pid;
}

/* submit_spawn - start terndrop */
static pid_t submit_spawn(const char *config_dir, char *const *args, int in_fd, int out_fd)
{
    return submit_spawn_program("terndrop", TERN_SBINDIR, config_dir, args, in_fd, out_fd);
}

/* submit_wait - the exit status of a terndrop run */
static int submit_wait(pid_t pid)
{
    int status;

    if (pid < 0)
        return EX_OSERR;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return EX_OSERR;
    return WIFEXITED(status) ? WEXITSTATUS(status) : EX_SOFTWARE;
}

int sendmail_run_tern(const char *config_dir, char *const *args)
{
    /* its messages ("tern: stopped") are for the log, not sendmail's output */
    return submit_wait(
        submit_spawn_program("tern", TERN_BINDIR, config_dir, args, -1, STDERR_FILENO));
}

int sendmail_run_terndrop(const char *config_dir, char *const *args, int stdout_fd)
{
    return submit_wait(submit_spawn(config_dir, args, -1, stdout_fd));
}

/* submit_capture - run terndrop, its stdout (at most 16 MiB kept) into out */
static int submit_capture(const char *config_dir, char *const *args, int in_fd, buf_t *out)
{
    char chunk[SUBMIT_CHUNK];
    int pipefd[2];
    ssize_t n;
    pid_t pid;

    buf_reset(out);
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return EX_OSERR;
    pid = submit_spawn(config_dir, args, in_fd, pipefd[1]);
    close(pipefd[1]);
    while ((n = read(pipefd[0], chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && out->len < 16 * 1024 * 1024)
            buf_append(out, chunk, (size_t)n);
    close(pipefd[0]);
    return submit_wait(pid);
}

int sendmail_capture_terndrop(const char *config_dir, char *const *args, buf_t *out)
{
    return submit_capture(config_dir, args, -1, out);
}

int sendmail_submit(const struct submission *s, const char *config_dir, buf_t *queue_id)
{
    char *args[] = {"-I", s->leave_pickup ? "-W" : NULL, NULL};
    buf_t out = BUF_INIT;
    int fd = submit_build_file(s), rc;

    if (fd < 0) {
        fprintf(stderr, "sendmail: cannot build the message file: %s\n", strerror(errno));
        return EX_OSERR;
    }
    rc = submit_capture(config_dir, args, fd, &out);
    while (out.len && (out.data[out.len - 1] == '\n' || out.data[out.len - 1] == '\r'))
        buf_truncate(&out, out.len - 1);
    if (queue_id)
        buf_set(queue_id, buf_cstr(&out));
    buf_free(&out);
    close(fd);
    return rc;
}
