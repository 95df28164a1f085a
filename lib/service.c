/*
 * service - the shared start-up idiom of every service (see service.h).
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "privs.h"
#include "proctitle.h"
#include "service.h"
#include "stats.h"
#include "table_proxy.h"
#include "tern_build.h"

static struct event *service_sighup_ev, *service_sigterm_ev, *service_sigint_ev;

static void service_usage(const char *name)
{
    fprintf(stderr,
            "usage: tern-%s -c CONFIG_DIR [-o name=value]... [-v]\n(started by tern-master)\n",
            name);
    exit(2);
}

/* the master's -o name=value start-time overrides (tern start -o) */
static char *service_overrides[SERVICE_MAX_OVERRIDES];
static size_t service_override_count;

/* service_parse_args - -c DIR, -v and -o name=value */
static const char *service_parse_args(struct service *svc, int argc, char **argv)
{
    const char *dir = NULL;
    int c;

    while ((c = getopt(argc, argv, "c:o:v")) != -1) {
        if (c == 'c')
            dir = optarg;
        else if (c == 'v')
            svc->verbose = 1;
        else if (c == 'o' && service_override_count < SERVICE_MAX_OVERRIDES)
            service_overrides[service_override_count++] = optarg;
        else
            service_usage(svc->name);
    }
    return config_default_dir(dir);
}

/* service_inherit_fds - the listening sockets master handed us */
static void service_inherit_fds(struct service *svc)
{
    const char *env = getenv("TERN_LISTEN_FDS");
    long n = env ? strtol(env, NULL, 10) : 0;

    if (n < 0 || n > SERVICE_MAX_LISTEN)
        log_fatal("TERN_LISTEN_FDS=%s is out of range", env);
    for (long i = 0; i < n; i++) {
        int fd = 3 + (int)i;
        if (fcntl(fd, F_GETFD) < 0)
            log_fatal("listening socket fd %d is not open", fd);
        set_cloexec(fd);
        set_nonblock(fd);
        svc->listen_fds[svc->listen_count++] = fd;
    }
    unsetenv("TERN_LISTEN_FDS");
}

void service_init(struct service *svc, const char *name, int argc, char **argv)
{
    buf_t err = BUF_INIT;
    char program[40];
    const char *dir;
    const char *qdir;

    memset(svc, 0, sizeof(*svc));
    svc->name = name;
    snprintf(program, sizeof(program), "tern-%s", name);
    proctitle_init(argc, argv, program); /* first: argv[] then points to copies */
    dir = service_parse_args(svc, argc, argv);
    log_init(name, LOG_TARGET_STDERR, NULL);
    if (config_load_overrides(dir, service_overrides, service_override_count, &svc->cfg, &err) < 0)
        log_fatal("%s", buf_cstr(&err));
    log_init_from_config(name, svc->cfg, getenv("TERN_LOG_STDERR") != NULL);
    log_set_verbose(svc->verbose);
    table_proxy_default(1); /* remote tables through tern-proxymap */
    table_proxy_configure(svc->cfg);
    service_inherit_fds(svc);
    if (strcmp(name, "metrics") != 0) /* it only reads: maps the file PROT_READ itself */
        stats_attach(config_str(svc->cfg, "data_directory"));
    qdir = config_str(svc->cfg, "queue_directory");
    if (chdir(qdir) < 0)
        log_fatal("chdir %s: %s", qdir, strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    svc->base = event_base_new();
    if (svc->base == NULL)
        log_fatal("cannot create the event loop");
}

void service_drop_privileges(struct service *svc)
{
    const char *root = NULL;
    if (config_bool(svc->cfg, "service_chroot"))
        root = config_str(svc->cfg, "queue_directory");
    privs_drop(config_str(svc->cfg, "mail_owner"), root);
}

/* service_on_signal - turn signals into drain / stop callbacks */
static void service_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct service *svc = arg;

    if (sig == SIGHUP) {
        if (svc->draining)
            return;
        svc->draining = 1;
        log_debug("draining: finishing work in flight, then exiting");
        if (svc->on_drain)
            svc->on_drain(svc->ctx);
        else
            service_stop(svc);
        return;
    }
    if (svc->on_stop)
        svc->on_stop(svc->ctx);
    else
        service_stop(svc);
}

int service_run(struct service *svc)
{
    service_sighup_ev = evsignal_new(svc->base, SIGHUP, service_on_signal, svc);
    service_sigterm_ev = evsignal_new(svc->base, SIGTERM, service_on_signal, svc);
    service_sigint_ev = evsignal_new(svc->base, SIGINT, service_on_signal, svc);
    evsignal_add(service_sighup_ev, NULL);
    evsignal_add(service_sigterm_ev, NULL);
    evsignal_add(service_sigint_ev, NULL);
    if (event_base_dispatch(svc->base) < 0)
        log_fatal("event loop failed");
    event_free(service_sighup_ev);
    event_free(service_sigterm_ev);
    event_free(service_sigint_ev);
    return 0;
}

void service_stop(struct service *svc)
{
    event_base_loopbreak(svc->base);
}

int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int set_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    return fl < 0 ? -1 : fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

int unix_connect(const char *path, int nonblock)
{
    struct sockaddr_un sun;
    int fd;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 && errno != EINPROGRESS) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* unix_connect_ms_left - milliseconds until deadline (CLOCK_MONOTONIC ms), >= 0 */
static int unix_connect_ms_left(long long deadline)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    long long left = deadline - ((long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    return left > 0 ? (int)(left < 60000 ? left : 60000) : 0;
}

/* unix_connect_finish - wait for fd's connect to complete: 0 or -1 */
static int unix_connect_finish(int fd, long long deadline)
{
    struct pollfd pfd = {fd, POLLOUT, 0};
    int rc, err = 0;
    socklen_t len = sizeof(err);

    while ((rc = poll(&pfd, 1, unix_connect_ms_left(deadline))) < 0 && errno == EINTR)
        ;
    if (rc == 0)
        errno = ETIMEDOUT;
    if (rc <= 0)
        return -1;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -1;
    if (err != 0) {
        errno = err;
        return -1;
    }
    return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
}

int unix_connect_timeout(const char *path, long long timeout)
{
    struct timespec now;
    int fd;

    clock_gettime(CLOCK_MONOTONIC, &now);
    long long deadline = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 + timeout * 1000;
    while ((fd = unix_connect(path, 1)) < 0) {
        if (errno != EAGAIN)
            return -1;
        if (unix_connect_ms_left(deadline) == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        poll(NULL, 0, 10); /* the accept backlog is full: try again shortly */
    }
    if (unix_connect_finish(fd, deadline) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* service_exists - 1 when path is an executable file */
static int service_exists(const char *path)
{
    return access(path, X_OK) == 0;
}

/* service_build_folder - the build-tree folder of program: its name without
 * "tern-", except for a second name of another program's binary (tern-lmtp
 * is tern-smtp by argv[0], a symlink built in smtp/) */
static const char *service_build_folder(const char *program)
{
    if (strcmp(program, "tern-lmtp") == 0)
        return "smtp";
    return strncmp(program, "tern-", 5) == 0 ? program + 5 : program;
}

void service_program_path(const struct config *cfg, const char *program, buf_t *out)
{
    const char *dir = config_str(cfg, "daemon_directory");
    char exe[4096];
    ssize_t n;

    buf_reset(out);
    if (*dir) {
        buf_printf(out, "%s/%s", dir, program);
        return;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            buf_printf(out, "%s/%s", exe, program);
            if (service_exists(buf_cstr(out)))
                return;
            buf_reset(out);
            buf_printf(out, "%s/../%s/%s", exe, service_build_folder(program), program);
            if (service_exists(buf_cstr(out)))
                return;
        }
    }
    buf_reset(out);
    buf_printf(out, "%s/%s", TERN_LIBEXECDIR, program);
}

/* service_pid_alive - running and not a zombie waiting for its parent */
static int service_pid_alive(pid_t pid)
{
    char path[64], line[512];
    FILE *fp;
    int alive = kill(pid, 0) == 0 || errno == EPERM;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if (alive && (fp = fopen(path, "re")) != NULL) {
        if (fgets(line, sizeof(line), fp)) {
            char *paren = strrchr(line, ')');
            if (paren && paren[1] == ' ' && paren[2] == 'Z')
                alive = 0;
        }
        fclose(fp);
    }
    return alive;
}

pid_t service_master_pid(const char *queue_dir)
{
    buf_t path = BUF_INIT;
    FILE *fp;
    long pid = 0;

    buf_printf(&path, "%s/pid/master.pid", queue_dir);
    fp = fopen(path.data, "re");
    buf_free(&path);
    if (fp == NULL)
        return 0;
    if (fscanf(fp, "%ld", &pid) != 1 || pid <= 1)
        pid = 0;
    fclose(fp);
    return pid > 0 && service_pid_alive((pid_t)pid) ? (pid_t)pid : 0;
}
