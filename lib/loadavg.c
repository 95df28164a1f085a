/*
 * loadavg - the load average from /proc/loadavg or load_average_file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "loadavg.h"

/* loadavg_open - keep the file open for a chroot without /proc */
void loadavg_open(struct loadavg_source *src, const char *path)
{
    src->path = xstrdup(path != NULL && path[0] != '\0' ? path : LOADAVG_DEFAULT_FILE);
    src->fd = open(src->path, O_RDONLY | O_CLOEXEC);
}

void loadavg_close(struct loadavg_source *src)
{
    if (src->fd >= 0)
        close(src->fd);
    src->fd = -1;
    free(src->path);
    src->path = NULL;
}

/* loadavg_parse - digits with at most one '.', then the end or a blank */
int loadavg_parse(const char *text, double *load)
{
    size_t n;
    char *end;
    double v;

    while (*text == ' ' || *text == '\t')
        text++;
    n = strspn(text, "0123456789.");
    if (n == 0 || text[0] == '.' || memchr(text, '.', n) != memrchr(text, '.', n) ||
        (text[n] != '\0' && strchr(" \t\r\n", text[n]) == NULL))
        return -1;
    errno = 0;
    v = strtod(text, &end);
    if (errno != 0 || end != text + n)
        return -1;
    *load = v;
    return 0;
}

int loadavg_limit_parse(const char *text, double *limit)
{
    return loadavg_parse(text, limit);
}

/* loadavg_pread - the first bytes of fd from offset 0 */
static int loadavg_pread(int fd, double *load)
{
    char text[128];
    ssize_t n = pread(fd, text, sizeof(text) - 1, 0);

    if (n <= 0)
        return -1;
    text[n] = '\0';
    return loadavg_parse(text, load);
}

/* loadavg_read - the path afresh when it opens, else the file kept open */
int loadavg_read(struct loadavg_source *src, double *load)
{
    int fd = open(src->path, O_RDONLY | O_CLOEXEC);
    int rc;

    if (fd >= 0) {
        rc = loadavg_pread(fd, load);
        close(fd);
        return rc;
    }
    if (src->fd < 0)
        return -1;
    return loadavg_pread(src->fd, load);
}
