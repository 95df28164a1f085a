/*
 * runas - do something as a user.
 *
 * Mailbox, Maildir and file deliveries run in the delivery worker itself
 * with the user's effective ids: setgroups (the user's groups), setegid,
 * seteuid, run the function, then seteuid(0), setegid and setgroups back.
 * The worker serves one request and exits, its real and saved uid stay 0
 * (so the user can neither signal nor trace it, and it is not dumpable
 * while switched), and it never runs a program: commands get a forked child
 * that drops all ids for good (local_become_user, command.c).  A worker
 * that cannot get its root ids back exits without answering (qmgr defers)
 * rather than go on with the wrong ids.  When tern runs as a non-root user
 * (tests), no ids change.
 */
#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "local.h"
#include "log.h"

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

/* runas_enter - the user's groups, effective gid and uid, verified */
static int runas_enter(const struct local_user *u)
{
    if (u->uid == 0)
        return -1; /* never deliver as root */
    if ((u->name && *u->name ? initgroups(u->name, u->gid) : setgroups(1, &u->gid)) < 0 ||
        setegid(u->gid) < 0 || seteuid(u->uid) < 0)
        return -1;
    return geteuid() == u->uid && getegid() == u->gid ? 0 : -1;
}

/* runas_leave - back to uid 0, egid and the saved groups; exits on failure */
static void runas_leave(gid_t egid, const gid_t *groups, int ngroups)
{
    if (seteuid(0) == 0 && setegid(egid) == 0 && setgroups((size_t)ngroups, groups) == 0 &&
        geteuid() == 0 && getegid() == egid)
        return;
    log_error("cannot switch back to root after a delivery: %s", strerror(errno));
    _exit(1);
}

/* local_runas - see local.h */
void local_runas(const struct local_user *u, int drop, local_runas_fn fn, void *arg,
                 struct delivery_outcome *res)
{
    gid_t egid = getegid(), *groups;
    int ngroups;

    if (!drop || geteuid() != 0) {
        fn(arg, res);
    } else if ((ngroups = getgroups(0, NULL)) < 0) {
        local_result_set(res, DELIVERY_DEFER, "4.3.0", "getgroups: %s", strerror(errno));
    } else {
        groups = xcalloc((size_t)ngroups + 1, sizeof(*groups));
        if ((ngroups = getgroups(ngroups, groups)) < 0) {
            local_result_set(res, DELIVERY_DEFER, "4.3.0", "getgroups: %s", strerror(errno));
        } else {
            if (runas_enter(u) < 0)
                local_result_set(res, DELIVERY_DEFER, "4.3.0", "cannot switch to uid %ld: %s",
                                 (long)u->uid,
                                 u->uid == 0 ? "delivery as root is refused" : "error");
            else
                fn(arg, res);
            runas_leave(egid, groups, ngroups);
        }
        free(groups);
    }
    if (res->status == DELIVERY_PENDING)
        local_result_set(res, DELIVERY_DEFER, "4.3.0", "delivery gave no result");
}
