/*
 * command - "|command" deliveries (aliases, .forward, :include:,
 * mailbox_command).  The command runs through local_command_shell -c in a
 * forked child of its own session, with the recipient's ids (never root),
 * the recipient's home as working directory and a clean environment (HOME,
 * USER, LOGNAME, SHELL, PATH, SENDER, RECIPIENT, LOCAL, DOMAIN, EXTENSION).
 * stdin gets "From sender date", Return-Path:, Delivered-To: and the
 * message with LF line ends; the first line of its output (bounded) becomes
 * the reason of a failure.  Exit codes follow sysexits: 0 sent, 75 defer,
 * others bounce; command_time_limit kills the whole process group.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "local.h"
#include "safefile.h"
#include "service.h"

#define EX_TEMPFAIL 75

struct command_io {
    int in_fd;  /* the command's stdin, -1 once done */
    int out_fd; /* its stdout+stderr, -1 at EOF */
    const buf_t *data;
    size_t written;
    buf_t output; /* first LOCAL_MAX_REASON bytes */
};

/* command_env_add - NAME=value into env (bounded list) */
static void command_env_add(char **env, size_t *n, const char *name, const char *value)
{
    buf_t b = BUF_INIT;

    buf_printf(&b, "%s=%s", name, value ? value : "");
    env[(*n)++] = buf_steal(&b);
}

/* command_exec - the child: session, ids, cwd, environment, pipes, exec */
static void command_exec(const struct local_env *env, const struct local_target *t,
                         const char *command, int in, int out)
{
    char *envv[16];
    size_t n = 0;
    const char *at = strrchr(t->address, '@');
    buf_t local = BUF_INIT;

    setsid();
    if (local_become_user(&t->user) < 0)
        _exit(EX_TEMPFAIL);
    if (chdir(t->user.home && *t->user.home ? t->user.home : "/") < 0 && chdir("/") < 0)
        _exit(EX_TEMPFAIL);
    buf_append(&local, t->address, at ? (size_t)(at - t->address) : strlen(t->address));
    command_env_add(envv, &n, "HOME", t->user.home);
    command_env_add(envv, &n, "USER", t->user.name);
    command_env_add(envv, &n, "LOGNAME", t->user.name);
    command_env_add(envv, &n, "SHELL", t->user.shell);
    command_env_add(envv, &n, "PATH", "/usr/bin:/bin");
    command_env_add(envv, &n, "SENDER", t->sender);
    command_env_add(envv, &n, "RECIPIENT", t->address);
    command_env_add(envv, &n, "LOCAL", buf_cstr(&local));
    command_env_add(envv, &n, "DOMAIN", at ? at + 1 : "");
    command_env_add(envv, &n, "EXTENSION", t->extension);
    envv[n] = NULL;
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        _exit(EX_TEMPFAIL);
    closefrom(3);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    execle(env->shell, env->shell, "-c", command, (char *)NULL, envv);
    _exit(EX_TEMPFAIL);
}

/* command_pump - one poll round: feed stdin, collect output; 0 go on, 1 done */
static int command_pump(struct command_io *io, int timeout_ms)
{
    struct pollfd p[2] = {{io->out_fd, POLLIN, 0}, {io->in_fd, POLLOUT, 0}};
    int count = io->in_fd >= 0 ? 2 : 1;
    char chunk[4096];

    if (poll(p, (nfds_t)count, timeout_ms) < 0)
        return errno == EINTR ? 0 : 1;
    if (p[0].revents) {
        ssize_t n = read(io->out_fd, chunk, sizeof(chunk));
        if (n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN)))
            return 1;
        if (n > 0 && io->output.len < LOCAL_MAX_REASON)
            buf_append(&io->output, chunk, (size_t)n);
    }
    if (count == 2 && p[1].revents) {
        ssize_t n = write(io->in_fd, io->data->data + io->written, io->data->len - io->written);
        if (n > 0)
            io->written += (size_t)n;
        if ((n < 0 && errno != EAGAIN && errno != EINTR) || io->written == io->data->len) {
            close(io->in_fd); /* EPIPE: the command did not read everything */
            io->in_fd = -1;
        }
    }
    return 0;
}

/* command_first_line - the first non-empty output line, printable only */
static void command_first_line(const buf_t *output, buf_t *out)
{
    const char *p = buf_cstr(output);

    while (*p == '\n' || *p == '\r')
        p++;
    for (; *p && *p != '\n' && *p != '\r' && out->len < 200; p++)
        buf_putc(out, (unsigned char)*p < ' ' || *p == 127 ? '?' : *p);
}

/* command_exit_text - sysexits codes that have their own text */
static const char *command_exit_text(int code, const char **dsn)
{
    static const struct {
        int code;
        const char *dsn, *text;
    } codes[] = {
        {64, "5.3.0", "command line usage error"},
        {65, "5.6.0", "data format error"},
        {67, "5.1.1", "user unknown"},
        {68, "5.1.2", "host name unknown"},
        {69, "5.3.0", "service unavailable"},
        {70, "5.3.0", "internal software error"},
        {73, "5.3.0", "can't create output"},
        {77, "5.7.0", "permission denied"},
    };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (codes[i].code == code) {
            *dsn = codes[i].dsn;
            return codes[i].text;
        }
    *dsn = "5.3.0";
    return "unknown mailer error";
}

/* command_status - exit status -> result */
static void command_status(int status, const char *command, const buf_t *output,
                           struct delivery_outcome *res)
{
    buf_t line = BUF_INIT;
    const char *dsn, *text;

    command_first_line(output, &line);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        local_result_set(res, DELIVERY_SENT, "2.0.0", "delivered to command: %.100s", command);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == EX_TEMPFAIL) {
        local_result_set(res, DELIVERY_DEFER, "4.3.0", "temporary failure. Command output: %s",
                         buf_cstr(&line));
    } else if (WIFEXITED(status)) {
        text = command_exit_text(WEXITSTATUS(status), &dsn);
        local_result_set(res, DELIVERY_BOUNCE, dsn, "%s %d. Command output: %s", text,
                         WEXITSTATUS(status), buf_cstr(&line));
    } else {
        local_result_set(res, DELIVERY_DEFER, "4.3.0", "command killed by signal %d. Output: %s",
                         WTERMSIG(status), buf_cstr(&line));
    }
    buf_free(&line);
}

/* command_wait - reap the child; kill its group at the deadline; 0 exited,
 * -1 timed out */
static int command_wait(pid_t pid, time_t deadline, int *status)
{
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return 0;
        if (time(NULL) >= deadline) {
            kill(-pid, SIGKILL);
            while (waitpid(pid, status, 0) < 0 && errno == EINTR)
                ;
            return -1;
        }
        usleep(20000);
    }
}

/* command_run - feed the child until it exits or the time limit hits */
static void command_run(const struct local_env *env, pid_t pid, struct command_io *io,
                        const char *command, struct delivery_outcome *res)
{
    time_t deadline = time(NULL) + env->command_time_limit;
    int status = 0;

    while (io->out_fd >= 0 && time(NULL) < deadline)
        if (command_pump(io, 1000) != 0)
            break;
    if (io->in_fd >= 0)
        close(io->in_fd);
    if (io->out_fd >= 0)
        close(io->out_fd);
    if (command_wait(pid, deadline, &status) < 0)
        local_result_set(res, DELIVERY_DEFER, "4.3.0", "command time limit exceeded: %.100s",
                         command);
    else
        command_status(status, command, &io->output, res);
}

/* local_deliver_command - see local.h */
void local_deliver_command(const struct local_env *env, const struct local_message *msg,
                           const struct local_target *t, const char *command,
                           struct delivery_outcome *res)
{
    int in[2], out[2];
    pid_t pid;
    buf_t data = BUF_INIT;
    struct command_io io = {-1, -1, &data, 0, BUF_INIT};

    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
        local_result_set(res, DELIVERY_DEFER, "4.3.0", "cannot start command: %s", strerror(errno));
        return;
    }
    if (pid == 0)
        command_exec(env, t, command, in[0], out[1]);
    close(in[0]);
    close(out[1]);
    io.in_fd = in[1];
    io.out_fd = out[0];
    set_nonblock(in[1]);
    local_message_format(msg, t->address, MSG_FROM_LINE, &data);
    command_run(env, pid, &io, command, res);
    buf_free(&data);
    buf_free(&io.output);
}
