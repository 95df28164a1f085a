/*
 * privs - the privilege-drop idiom (see privs.h).
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "privs.h"

int privs_lookup(const char *user, uid_t *uid, gid_t *gid)
{
    struct passwd *pw = getpwnam(user);
    if (pw == NULL)
        return -1;
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

/* privs_drop_to - see privs_drop; keep_groups: user's supplementary groups
 * too, else its primary group only */
static void privs_drop_to(const char *user, const char *chroot_dir, int keep_groups)
{
    uid_t uid;
    gid_t gid;

    if (geteuid() != 0) {
        log_debug("not started as root: running as uid %ld", (long)geteuid());
        return;
    }
    if (privs_lookup(user, &uid, &gid) < 0)
        log_fatal("mail_owner %s: no such user", user);
    if (uid == 0)
        log_fatal("mail_owner %s must not be root", user);
    if (chroot_dir && *chroot_dir) {
        if (chroot(chroot_dir) < 0 || chdir("/") < 0)
            log_fatal("chroot %s: %s", chroot_dir, strerror(errno));
    }
    if (keep_groups ? initgroups(user, gid) < 0 : setgroups(1, &gid) < 0)
        log_fatal("setgroups: %s", strerror(errno));
    if (setresgid(gid, gid, gid) < 0)
        log_fatal("setgid %ld: %s", (long)gid, strerror(errno));
    if (setresuid(uid, uid, uid) < 0)
        log_fatal("setuid %ld: %s", (long)uid, strerror(errno));
    /* verify: root must be gone for good */
    if (setuid(0) == 0 || geteuid() != uid || getuid() != uid || getegid() != gid)
        log_fatal("privilege drop to %s did not hold", user);
}

void privs_drop(const char *user, const char *chroot_dir)
{
    privs_drop_to(user, chroot_dir, 0);
}

void privs_drop_with_groups(const char *user)
{
    privs_drop_to(user, NULL, 1);
}
