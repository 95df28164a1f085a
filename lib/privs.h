/*
 * privs - the one privilege-drop idiom (DESIGN §3).
 *
 * privs_drop: when running as root, look up user, optionally chroot into
 * chroot_dir, then setgroups/setgid/setuid and verify that root cannot be
 * regained.  When not root, do nothing and log once that everything runs as
 * the invoking user.  Any failure is fatal: a service never runs with more
 * privilege than it should.
 */
#ifndef TERN_PRIVS_H
#define TERN_PRIVS_H

#include <sys/types.h>

/* privs_lookup - uid/gid of a user name; 0 ok, -1 unknown */
int privs_lookup(const char *user, uid_t *uid, gid_t *gid);
/* privs_drop - see above; chroot_dir may be NULL or "" */
void privs_drop(const char *user, const char *chroot_dir);
/* privs_drop_with_groups - privs_drop without chroot that keeps the user's
 * supplementary groups (/etc/group): tern-auth reaches saslauthd's socket
 * through one (Debian's sasl group) */
void privs_drop_with_groups(const char *user);

#endif
