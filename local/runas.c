/*
 * runas - do something as a user: fork, switch the child to the user's ids,
 * run a function there, and carry its result back through a pipe.  The
 * parent (root) never changes its own ids, so there is no window in which
 * root code runs with a user's effective id or the reverse.
 *
 * Result wire format on the pipe: one byte status ('S', 'D', 'B'), the DSN
 * code, a TAB, the reason.  A child that dies without writing one is a
 * deferral.  When tern runs as a non-root user (tests), no ids change.
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "local.h"
#include "log.h"
#include "safefile.h"

/* local_become_user - see local.h */
int local_become_user(const struct local_user *u)
{
    if (geteuid() != 0)
        return 0; /* unprivileged instance: everything runs as us */
    if (u->uid == 0)
        return -1; /* never deliver as root */
    if ((u->name && *u->name ? initgroups(u->name, u->gid) : setgroups(1, &u->gid)) < 0 ||
        setgid(u->gid) < 0 || setuid(u->uid) < 0)
        return -1;
    if (setuid(0) == 0 || geteuid() != u->uid || getegid() != u->gid)
        return -1;
    return 0;
}

/* local_runas_child - the child side: switch, run, report, exit */
static void local_runas_child(const struct local_user *u, int drop, local_runas_fn fn, void *arg,
                              int fd)
{
    struct delivery_outcome res;
    buf_t out = BUF_INIT;
    static const char codes[] = "?SDB";
    int rc = drop ? local_become_user(u) : 0;

    memset(&res, 0, sizeof(res));
    if (rc < 0)
        local_result_set(&res, DELIVERY_DEFER, "4.3.0", "cannot switch to uid %ld: %s",
                         (long)u->uid, u->uid == 0 ? "delivery as root is refused" : "error");
    else
        fn(arg, &res);
    if (res.status == DELIVERY_PENDING)
        local_result_set(&res, DELIVERY_DEFER, "4.3.0", "delivery gave no result");
    buf_printf(&out, "%c%s\t%s", codes[res.status], res.dsn, buf_cstr(&res.reason));
    (void)write_all(fd, out.data, out.len);
    _exit(0);
}

/* local_runas_parse - the child's report into res */
static void local_runas_parse(const buf_t *in, struct delivery_outcome *res)
{
    const char *s = buf_cstr(in), *tab = strchr(s, '\t');
    enum delivery_status st = s[0] == 'S'   ? DELIVERY_SENT
                              : s[0] == 'B' ? DELIVERY_BOUNCE
                                            : DELIVERY_DEFER;
    char dsn[16];

    if (in->len < 2 || tab == NULL || (s[0] != 'S' && s[0] != 'D' && s[0] != 'B')) {
        local_result_set(res, DELIVERY_DEFER, "4.3.0", "delivery process failed");
        return;
    }
    snprintf(dsn, sizeof(dsn), "%.*s", (int)(tab - s - 1), s + 1);
    local_result_set(res, st, dsn, "%.*s", LOCAL_MAX_REASON, tab + 1);
}

/* local_runas - see local.h */
void local_runas(const struct local_user *u, int drop, local_runas_fn fn, void *arg,
                 struct delivery_outcome *res)
{
    int fds[2], status;
    pid_t pid;
    buf_t in = BUF_INIT;
    char chunk[1024];
    ssize_t n;

    if (pipe(fds) < 0 || (pid = fork()) < 0) {
        local_result_set(res, DELIVERY_DEFER, "4.3.0", "cannot fork: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        local_runas_child(u, drop, fn, arg, fds[1]);
    }
    close(fds[1]);
    while ((n = read(fds[0], chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && in.len < 4 * LOCAL_MAX_REASON)
            buf_append(&in, chunk, (size_t)n);
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    local_runas_parse(&in, res);
    buf_free(&in);
}
