/*
 * tern-master - the root supervisor (DESIGN §3).
 *
 * Reads the config, creates or checks the queue, binds every listener,
 * then forks and supervises the services.  SIGHUP reloads the config (a bad
 * new config is logged and the old one kept); SIGTERM stops gracefully.
 * Usually started by `tern start [-f | -D]`.
 *
 * -f stays in the foreground and logs to stderr (a terminal, a test); -D
 * stays in the foreground and logs as configured (syslog or maillog_file),
 * for a supervisor such as systemd.  With NOTIFY_SOCKET set (systemd's
 * Type=notify) the master says READY=1 once every listener is bound and
 * every service started, RELOADING=1 / READY=1 around a reload and
 * STOPPING=1 when it stops (lib/sdnotify.h).  -l creates or checks the queue
 * layout and exits: the Debian package's postinst runs it, so sendmail and
 * tern check work before the first start.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "milter.h"
#include "policy.h"
#include "master.h"
#include "privs.h"
#include "proctitle.h"
#include "sdnotify.h"
#include "service.h"
#include "tern_build.h"

#define MASTER_STOP_GRACE 10

static struct event_base *base;
static struct config *cfg;
static const char *dir;
static buf_t pid_path = BUF_INIT;
static struct event *kill_timer;
static char *overrides[SERVICE_MAX_OVERRIDES]; /* -o name=value */
static size_t override_count;

static void master_usage(void)
{
    fprintf(stderr, "usage: tern-master [-c CONFIG_DIR] [-f | -D | -l] [-o name=value]... [-v]\n"
                    "  -f  foreground, log to stderr\n"
                    "  -D  foreground, log as configured (systemd)\n"
                    "  -l  create or check the queue layout, then exit\n"
                    "  -o  a parameter for this run, over tern.conf\n");
    exit(2);
}

/* master_owner - the uid/gid services run as */
static void master_owner(uid_t *uid, gid_t *gid)
{
    const char *owner = config_str(cfg, "mail_owner");

    if (geteuid() != 0) {
        *uid = geteuid();
        *gid = getegid();
        log_info("not started as root: every service runs as uid %ld, not as %s", (long)*uid,
                 owner);
        return;
    }
    if (privs_lookup(owner, uid, gid) < 0)
        log_fatal("mail_owner = %s: no such user (create it, or set mail_owner in %s)", owner,
                  config_file(cfg));
    if (*uid == 0)
        log_fatal("mail_owner = %s: must not be root", owner);
}

/* master_lock_pid - lock pid/master.pid; refuses a second master */
static int master_lock_pid(void)
{
    int fd;
    char old[32] = "";

    buf_printf(&pid_path, "%s/pid/master.pid", config_str(cfg, "queue_directory"));
    fd = open(pid_path.data, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        log_fatal("%s: %s", pid_path.data, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        ssize_t n = read(fd, old, sizeof(old) - 1);
        old[n > 0 ? n : 0] = 0;
        old[strcspn(old, "\n")] = 0;
        log_fatal("tern is already running (pid %s)", old);
    }
    return fd;
}

/* master_write_pid - sendmail's format (OPS-03): the pid, then the
 * command line; readers take the first number */
static void master_write_pid(int fd, int argc, char **argv)
{
    buf_t text = BUF_INIT;

    buf_printf(&text, "%ld\n", (long)getpid());
    for (int i = 0; i < argc; i++)
        buf_printf(&text, "%s%s", i ? " " : "", argv[i]);
    buf_putc(&text, '\n');
    if (ftruncate(fd, 0) < 0 || pwrite(fd, text.data, text.len, 0) != (ssize_t)text.len)
        log_fatal("%s: %s", pid_path.data, strerror(errno));
    buf_free(&text);
}

static void master_daemonize(void)
{
    pid_t pid = fork();
    int null;

    if (pid < 0)
        log_fatal("fork: %s", strerror(errno));
    if (pid > 0)
        _exit(0);
    setsid();
    null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (null > 2)
            close(null);
    }
}

/* master_notify - tell systemd (if it asked) how the master is doing */
static void master_notify(const char *state)
{
    if (sdnotify_send(state) < 0)
        log_warn("cannot notify the service manager (NOTIFY_SOCKET): %s", strerror(errno));
}

/* master_notify_ready - READY=1 with the status line systemctl shows */
static void master_notify_ready(void)
{
    char state[256];

    snprintf(state, sizeof(state), "READY=1\nSTATUS=accepting mail -- configuration %s", dir);
    master_notify(state);
}

/* master_notify_reloading - RELOADING=1 with the time systemd >= 253 wants */
static void master_notify_reloading(void)
{
    struct timespec ts;
    char state[96];

    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%lld",
             (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
    master_notify(state);
}

/* master_log_starting - sendmail's line: "starting daemon (VERSION):
 * SMTP+queueing@01:00:00"; tern's qmgr always runs the deferred queue, so
 * the queue_run_delay is always shown; "SMTP" only with a TCP listener */
static void master_log_starting(const struct master_sockets *socks)
{
    long long delay = config_time(cfg, "queue_run_delay");

    log_info("starting daemon (%s): %squeueing@%02lld:%02lld:%02lld", TERN_VERSION,
             socks->smtpd_count > 0 ? "SMTP+" : "", delay / 3600, delay / 60 % 60, delay % 60);
}

static void master_stopped(void)
{
    unlink(pid_path.data);
    log_info("terminating");
    event_base_loopbreak(base);
}

static void master_kill_late(evutil_socket_t fd, short what, void *arg)
{
    log_warn("services did not stop within %ds: killing them", MASTER_STOP_GRACE);
    master_services_kill();
}

/* master_reload_warn_restart - the parameters a reload cannot apply: their
 * sockets are bound (and tern-metrics started) only at start */
static void master_reload_warn_restart(const struct config *fresh)
{
    static const char *const at_start[] = {"smtpd_listen", "queue_directory", "metrics_listen"};

    for (size_t i = 0; i < sizeof(at_start) / sizeof(at_start[0]); i++)
        if (strcmp(config_str(fresh, at_start[i]), config_str(cfg, at_start[i])) != 0)
            log_warn("%s changed: it takes effect at the next start (tern stop, then tern start)",
                     at_start[i]);
}

static void master_reload(void)
{
    struct config *fresh = NULL;
    buf_t err = BUF_INIT;

    if (config_load_overrides(dir, overrides, override_count, &fresh, &err) < 0 ||
        policy_check_listeners(fresh, &err) < 0 || milter_check_config(fresh, &err) < 0) {
        config_free(fresh);
        log_error("reload refused, keeping the running configuration: %s", buf_cstr(&err));
        buf_free(&err);
        return;
    }
    master_reload_warn_restart(fresh);
    log_info("reload -- version %s, configuration %s", TERN_VERSION, dir);
    master_services_reload(fresh);
    /* the old config stays allocated: draining children were exec'd from it
     * and the slot table may still point into it until they exit */
    cfg = fresh;
}

static void master_on_signal(evutil_socket_t sig, short what, void *arg)
{
    static int stopping;
    struct timeval grace = {MASTER_STOP_GRACE, 0};

    if (sig == SIGCHLD) {
        master_services_reap();
    } else if (sig == SIGHUP) {
        if (!stopping) {
            master_notify_reloading();
            master_reload();
            master_notify_ready();
        }
    } else if (!stopping) {
        stopping = 1;
        log_info("stopping on signal %d", (int)sig);
        master_notify("STOPPING=1");
        kill_timer = evtimer_new(base, master_kill_late, NULL);
        evtimer_add(kill_timer, &grace);
        master_services_stop(master_stopped);
    }
}

static void master_signals(void)
{
    static const int sigs[] = {SIGCHLD, SIGHUP, SIGTERM, SIGINT};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        struct event *ev = evsignal_new(base, sigs[i], master_on_signal, NULL);
        evsignal_add(ev, NULL);
    }
    signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
    int foreground = 0, to_stderr = 0, layout_only = 0, c, pid_fd;
    buf_t err = BUF_INIT;
    struct master_sockets socks;
    uid_t uid;
    gid_t gid;

    proctitle_init(argc, argv, "tern-master"); /* first: optarg then points to a copy */
    while ((c = getopt(argc, argv, "c:fDlo:v")) != -1) {
        if (c == 'c')
            dir = optarg;
        else if (c == 'f')
            foreground = to_stderr = 1;
        else if (c == 'D')
            foreground = 1;
        else if (c == 'l')
            layout_only = to_stderr = 1;
        else if (c == 'o' && override_count < SERVICE_MAX_OVERRIDES)
            overrides[override_count++] = optarg;
        else if (c == 'v')
            log_set_verbose(1);
        else
            master_usage();
    }
    dir = config_default_dir(dir);
    log_init("master", LOG_TARGET_STDERR, NULL);
    if (config_load_overrides(dir, overrides, override_count, &cfg, &err) < 0 ||
        policy_check_listeners(cfg, &err) < 0 || milter_check_config(cfg, &err) < 0) {
        fprintf(stderr, "tern-master: fatal: %s\n", buf_cstr(&err));
        return 1;
    }
    log_init_from_config("master", cfg, to_stderr);
    umask(022);
    master_owner(&uid, &gid);
    if (master_layout_create(cfg, uid, gid, &err) < 0)
        log_fatal("queue layout: %s", buf_cstr(&err));
    if (layout_only)
        return 0;
    pid_fd = master_lock_pid();
    if (master_sockets_open(cfg, uid, gid, &socks, &err) < 0)
        log_fatal("%s", buf_cstr(&err));
    if (!foreground)
        master_daemonize();
    master_write_pid(pid_fd, argc, argv);
    base = event_base_new();
    if (base == NULL)
        log_fatal("cannot create the event loop");
    master_signals();
    master_services_init(base, dir, to_stderr, &socks);
    master_services_set_overrides(overrides, override_count);
    log_info("daemon started -- version %s, configuration %s", TERN_VERSION, dir);
    master_log_starting(&socks);
    master_services_start(cfg);
    proctitle_set("accepting connections");
    master_notify_ready();
    event_base_dispatch(base);
    return 0;
}
