/*
 * safefile - race-free file creation and opening (see safefile.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "safefile.h"

int safe_create(const char *path, int flags, mode_t mode)
{
    return open(path, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
}

int safe_open_regular(const char *path, int flags)
{
    struct stat st;
    /* O_NONBLOCK so a FIFO planted in place of the file cannot hang us */
    int fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    if (!(flags & O_NONBLOCK))
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int write_all(int fd, const void *p, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, (const char *)p + off, n - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        off += (size_t)w;
    }
    return 0;
}

int mkdir_owned(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
    struct stat st;

    if (mkdir(path, mode) < 0 && errno != EEXIST)
        return -1;
    if (lstat(path, &st) < 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    if ((st.st_uid != uid || st.st_gid != gid) && lchown(path, uid, gid) < 0)
        return -1;
    if ((st.st_mode & 07777) != mode && chmod(path, mode) < 0)
        return -1;
    return 0;
}
