/*
 * sdnotify - the sd_notify(3) datagram (see sdnotify.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sdnotify.h"

int sdnotify_address(const char *text, struct sockaddr_un *sa, socklen_t *len)
{
    size_t n = text ? strlen(text) : 0;

    if (n < 2 || (text[0] != '/' && text[0] != '@') || n > sizeof(sa->sun_path)) {
        errno = EINVAL;
        return -1;
    }
    /* a path needs its NUL inside sun_path; an abstract name does not */
    if (text[0] == '/' && n == sizeof(sa->sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, text, n);
    if (text[0] == '@')
        sa->sun_path[0] = 0;
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (text[0] == '/'));
    return 0;
}

int sdnotify_send(const char *state)
{
    const char *where = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    socklen_t len;
    ssize_t sent;
    int fd, saved;

    if (where == NULL || *where == 0)
        return 0;
    if (sdnotify_address(where, &sa, &len) < 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
    saved = errno;
    close(fd);
    errno = saved;
    return sent == (ssize_t)strlen(state) ? 0 : -1;
}
