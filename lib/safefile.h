/*
 * safefile - file creation and opening without symlink races.
 *
 * safe_create makes a new file with O_CREAT|O_EXCL|O_NOFOLLOW (never follows
 * or reuses a name).  safe_open_regular opens an existing file with
 * O_NOFOLLOW and checks with fstat that it is a regular file with one link.
 * fsync_dir makes a rename durable.
 */
#ifndef TERN_SAFEFILE_H
#define TERN_SAFEFILE_H

#include <sys/types.h>

int safe_create(const char *path, int flags, mode_t mode);
int safe_open_regular(const char *path, int flags);
/* fsync_dir - fsync the directory that holds path (or path itself if a dir) */
int fsync_dir(const char *dir);
/* write_all - write all n bytes, retrying on EINTR/partial writes */
int write_all(int fd, const void *p, size_t n);
/* mkdir_owned - create dir if missing, then set owner and mode exactly */
int mkdir_owned(const char *path, mode_t mode, uid_t uid, gid_t gid);

#endif
