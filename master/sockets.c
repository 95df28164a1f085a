/*
 * sockets - bind every listening socket before any service starts.
 *
 * TCP listeners come from smtpd_listen ("127.0.0.1:2525", "[::1]:25",
 * "*:25"); service sockets are UNIX stream sockets in private/, owned by
 * mail_owner, mode 0600.  Binding happens as root; services only inherit.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "master.h"
#include "netaddr.h"

#define MASTER_LISTEN_BACKLOG 1024

/* master_bind_tcp - one "host:port" listener */
static int master_bind_tcp(const char *spec, buf_t *err)
{
    char host[256];
    char port_text[16];
    int port, bracketed, fd, on = 1;
    struct addrinfo hints, *res = NULL;

    if (netaddr_parse_hostport(spec, host, sizeof(host), &port, 25, &bracketed) < 0) {
        buf_printf(err, "smtpd_listen: bad address '%s' (expected host:port)", spec);
        return -1;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE | AI_NUMERICSERV;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port_text, sizeof(port_text), "%d", port);
    if (getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port_text, &hints, &res) != 0) {
        buf_printf(err, "smtpd_listen: '%s' is not a numeric IP address", spec);
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        if (res->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    }
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
        listen(fd, MASTER_LISTEN_BACKLOG) < 0) {
        buf_printf(err, "smtpd_listen: cannot listen on %s: %s", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* master_bind_unix - private/NAME, owned by the service user */
static int master_bind_unix(const char *queue_dir, const char *name, uid_t uid, gid_t gid,
                            buf_t *err)
{
    struct sockaddr_un sun;
    buf_t path = BUF_INIT;
    int fd = -1;

    buf_printf(&path, "%s/private/%s", queue_dir, name);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (path.len >= sizeof(sun.sun_path)) {
        buf_printf(err, "%s: path too long for a UNIX socket (queue_directory too deep)",
                   buf_cstr(&path));
        buf_free(&path);
        return -1;
    }
    memcpy(sun.sun_path, path.data, path.len + 1);
    unlink(path.data);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        chown(path.data, uid, gid) < 0 || chmod(path.data, 0600) < 0 ||
        listen(fd, MASTER_LISTEN_BACKLOG) < 0) {
        buf_printf(err, "%s: %s", buf_cstr(&path), strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    buf_free(&path);
    return fd;
}

int master_sockets_open(const struct config *cfg, uid_t uid, gid_t gid, struct master_sockets *s,
                        buf_t *err)
{
    size_t count;
    char *const *listen_list = config_list(cfg, "smtpd_listen", &count);
    const char *qdir = config_str(cfg, "queue_directory");

    memset(s, 0, sizeof(*s));
    s->cleanup = s->qmgr = s->smtp = s->local = -1;
    if (count > sizeof(s->smtpd) / sizeof(s->smtpd[0])) {
        buf_printf(err, "smtpd_listen: at most %zu addresses", sizeof(s->smtpd) / sizeof(int));
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        int fd = master_bind_tcp(listen_list[i], err);
        if (fd < 0)
            return -1;
        s->smtpd[s->smtpd_count++] = fd;
    }
    if ((s->cleanup = master_bind_unix(qdir, "cleanup", uid, gid, err)) < 0 ||
        (s->qmgr = master_bind_unix(qdir, "qmgr", uid, gid, err)) < 0 ||
        (s->smtp = master_bind_unix(qdir, "smtp", uid, gid, err)) < 0 ||
        (s->local = master_bind_unix(qdir, "local", uid, gid, err)) < 0)
        return -1;
    return 0;
}

void master_sockets_close(struct master_sockets *s)
{
    for (size_t i = 0; i < s->smtpd_count; i++)
        close(s->smtpd[i]);
    if (s->cleanup >= 0)
        close(s->cleanup);
    if (s->qmgr >= 0)
        close(s->qmgr);
    if (s->smtp >= 0)
        close(s->smtp);
    if (s->local >= 0)
        close(s->local);
}
