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

/* master_bind_tcp - one "host:port" listener of parameter param */
static int master_bind_tcp(const char *param, const char *spec, buf_t *err)
{
    char host[256];
    char port_text[16];
    int port, bracketed, fd, on = 1;
    struct addrinfo hints, *res = NULL;

    if (netaddr_parse_hostport(spec, host, sizeof(host), &port, 25, &bracketed) < 0) {
        buf_printf(err, "%s: bad address '%s' (expected host:port)", param, spec);
        return -1;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE | AI_NUMERICSERV;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port_text, sizeof(port_text), "%d", port);
    if (getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port_text, &hints, &res) != 0) {
        buf_printf(err, "%s: '%s' is not a numeric IP address", param, spec);
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
        buf_printf(err, "%s: cannot listen on %s: %s", param, spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* master_bind_unix - DIR/NAME ("private/cleanup"), owned by the service
 * user; private sockets are 0600, public ones 0666 (public/ itself is 0710
 * group terndrop, so only the set-gid terndrop program reaches them) */
static int master_bind_unix(const char *queue_dir, const char *name, uid_t uid, gid_t gid,
                            buf_t *err)
{
    mode_t mode = strncmp(name, "public/", 7) == 0 ? 0666 : 0600;
    struct sockaddr_un sun;
    buf_t path = BUF_INIT;
    int fd = -1;

    buf_printf(&path, "%s/%s", queue_dir, name);
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
        chown(path.data, uid, gid) < 0 || chmod(path.data, mode) < 0 ||
        listen(fd, MASTER_LISTEN_BACKLOG) < 0) {
        buf_printf(err, "%s: %s", buf_cstr(&path), strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    buf_free(&path);
    return fd;
}

/* master_bind_listeners - every address of every listener (smtpd_listen,
 * submission_listen, smtps_listen) */
static int master_bind_listeners(const struct config *cfg, struct master_sockets *s, buf_t *err)
{
    const size_t max = sizeof(s->smtpd) / sizeof(s->smtpd[0]);

    for (const struct listener_def *l = listener_table; l->name != NULL; l++) {
        size_t count;
        char *const *list = config_list(cfg, l->param, &count);

        for (size_t i = 0; i < count; i++) {
            int fd;
            if (s->smtpd_count == max) {
                buf_printf(err, "%s: at most %zu listening addresses in all", l->param, max);
                return -1;
            }
            if ((fd = master_bind_tcp(l->param, list[i], err)) < 0)
                return -1;
            s->smtpd_names[s->smtpd_count] = l->name;
            s->smtpd[s->smtpd_count++] = fd;
        }
    }
    return 0;
}

int master_sockets_open(const struct config *cfg, uid_t uid, gid_t gid, struct master_sockets *s,
                        buf_t *err)
{
    const char *qdir = config_str(cfg, "queue_directory");

    memset(s, 0, sizeof(*s));
    s->cleanup = s->qmgr = s->smtp = s->lmtp = s->local = s->auth = s->anvil = s->proxymap = -1;
    s->pickup = s->qmgr_public = s->showq = s->metrics = -1;
    if (master_bind_listeners(cfg, s, err) < 0)
        return -1;
    if (*config_str(cfg, "metrics_listen") &&
        (s->metrics = master_bind_tcp("metrics_listen", config_str(cfg, "metrics_listen"), err)) <
            0)
        return -1;
    struct {
        int *fd;
        const char *name;
    } unix_sockets[] = {
        {&s->cleanup, "private/cleanup"}, {&s->qmgr, "private/qmgr"},
        {&s->smtp, "private/smtp"},       {&s->lmtp, "private/lmtp"},
        {&s->local, "private/local"},     {&s->auth, "private/auth"},
        {&s->anvil, "private/anvil"},     {&s->proxymap, "private/proxymap"},
        {&s->pickup, "public/pickup"},    {&s->qmgr_public, "public/qmgr"},
        {&s->showq, "public/showq"},
    };
    for (size_t i = 0; i < sizeof(unix_sockets) / sizeof(unix_sockets[0]); i++)
        if ((*unix_sockets[i].fd = master_bind_unix(qdir, unix_sockets[i].name, uid, gid, err)) < 0)
            return -1;
    return 0;
}

void master_sockets_close(struct master_sockets *s)
{
    int fds[] = {s->cleanup, s->qmgr,     s->smtp,   s->lmtp,        s->local, s->auth,
                 s->anvil,   s->proxymap, s->pickup, s->qmgr_public, s->showq, s->metrics};

    for (size_t i = 0; i < s->smtpd_count; i++)
        close(s->smtpd[i]);
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
}
