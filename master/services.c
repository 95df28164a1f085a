/*
 * services - fork, exec, supervise, restart and drain the services.
 *
 * A slot is a place for one service process (smtpd has smtpd_workers
 * slots, cleanup cleanup_workers — the first of them also runs pickup —, the
 * others one each).  A process that dies while its slot is live
 * is restarted after a back-off that doubles (service_restart_delay up to a
 * minute) while it keeps dying young.  Reload drains: every running child
 * gets SIGHUP (finish, then exit) and a new set of slots starts at once with
 * the new config — except qmgr, whose new instance waits for the old one to
 * exit, so there is never more than one.  tern-lmtp is tern-smtp under a
 * second name (a symlink) that makes it speak LMTP.  tern-local is the one service that
 * keeps root (it delivers as each recipient); the rest drop to mail_owner.
 * tern-auth runs smtpd's SASL exchanges (private/auth); tern-anvil counts
 * connections and rates per client for every smtpd worker (private/anvil).
 * tern-proxymap looks up remote tables for every service (private/proxymap).
 * Each smtpd worker learns its place, TERN_SMTPD_WORKER="INDEX/COUNT" (0/2,
 * 1/2), to take its share of smtpd_connection_rate_throttle; a restarted
 * worker keeps its slot's index.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "master.h"
#include "service.h"
#include "tls.h"

#define MASTER_MAX_BACKOFF 60
#define MASTER_HEALTHY_AFTER 10
#define MASTER_MAX_SLOTS 64
#define MASTER_FD_PARK 100

struct slot {
    const char *program; /* "tern-smtpd" */
    int fds[16];
    size_t fd_count;
    pid_t pid; /* 0 when not running */
    time_t started;
    long long backoff;
    int waiting_for_qmgr; /* start when the draining qmgr exits */
    long long worker;     /* smtpd: this slot's index among smtpd_workers */
    struct event *restart_ev;
};

struct drained {
    pid_t pid;
    int is_qmgr;
};

static struct event_base *base;
static const char *master_config_dir;
static int children_to_stderr; /* tern-master -f: services log to stderr too */
static const struct master_sockets *socks;
static const struct config *current_cfg;
static struct slot slots[MASTER_MAX_SLOTS];
static size_t slot_count;
static struct drained drained[MASTER_MAX_SLOTS * 4];
static size_t drained_count;
static int stopping;
static void (*stop_done)(void);
static struct tls_ratchet ticket_chain; /* see master_ticket_advance */
static long long ticket_period_len;     /* 0 before the chain starts */
static long long smtpd_worker_count;    /* the smtpd slots of the current config */
static char *const *overrides;          /* tern start -o name=value, passed on */
static size_t override_count;

void master_services_set_overrides(char *const *assignments, size_t count)
{
    overrides = assignments;
    override_count = count;
}

/* master_exec_service - exec program as `NAME -c DIR [-o name=value]...` */
static void master_exec_service(const char *path, const char *program)
{
    char *argv[3 + 2 * SERVICE_MAX_OVERRIDES + 1];
    size_t n = 0;

    argv[n++] = (char *)program;
    argv[n++] = "-c";
    argv[n++] = (char *)master_config_dir;
    for (size_t i = 0; i < override_count && i < SERVICE_MAX_OVERRIDES; i++) {
        argv[n++] = "-o";
        argv[n++] = overrides[i];
    }
    argv[n] = NULL;
    execv(path, argv);
}

void master_services_init(struct event_base *b, const char *dir, int fg,
                          const struct master_sockets *s)
{
    base = b;
    master_config_dir = dir;
    children_to_stderr = fg;
    socks = s;
}

/* master_child_env - a clean environment for a service */
static void master_child_env(const struct config *cfg, size_t fd_count)
{
    size_t n;
    char *const *keep = config_list(cfg, "import_environment", &n);
    char **saved = xcalloc(n + 1, sizeof(char *));
    char count[16];

    for (size_t i = 0; i < n; i++) {
        const char *v = getenv(keep[i]);
        saved[i] = v ? xstrdup(v) : NULL;
    }
    clearenv();
    for (size_t i = 0; i < n; i++)
        if (saved[i])
            setenv(keep[i], saved[i], 1);
    setenv("PATH", "/usr/bin:/bin:/usr/sbin:/sbin", 1);
    snprintf(count, sizeof(count), "%zu", fd_count);
    setenv("TERN_LISTEN_FDS", count, 1);
    if (children_to_stderr)
        setenv("TERN_LOG_STDERR", "1", 1);
}

/* master_child_listener_names - TERN_LISTEN_NAMES: the listener of each
 * inherited socket, in order ("smtpd submission smtps") */
static void master_child_listener_names(void)
{
    buf_t names = BUF_INIT;

    for (size_t i = 0; i < socks->smtpd_count; i++)
        buf_printf(&names, "%s%s", i ? " " : "", socks->smtpd_names[i]);
    setenv("TERN_LISTEN_NAMES", buf_cstr(&names), 1);
    buf_free(&names);
}

/* master_child_worker_index - TERN_SMTPD_WORKER: "INDEX/COUNT" */
static void master_child_worker_index(const struct slot *s)
{
    char text[48];

    snprintf(text, sizeof(text), "%lld/%lld", s->worker, smtpd_worker_count);
    setenv("TERN_SMTPD_WORKER", text, 1);
}

/* master_ticket_advance - before an smtpd is forked: the ticket key chain
 * (lib/tls.h) moved forward to the period before the current one, so the new
 * worker also accepts the tickets of that period.  The chain starts with
 * random bytes at the first smtpd and lives as long as the master, so every
 * worker, also after a reload, derives the same keys; older states are
 * overwritten.  A reload that changes smtpd_tls_session_cache_timeout
 * starts a new chain (the periods no longer match).  0 when there is none. */
static int master_ticket_advance(void)
{
    long long len = config_time(current_cfg, "smtpd_tls_session_cache_timeout");
    long long now;

    if (len < TLS_TICKET_MIN_PERIOD)
        len = TLS_TICKET_MIN_PERIOD;
    now = (long long)time(NULL) / len;
    if (len != ticket_period_len) {
        if (ticket_period_len != 0)
            log_info("smtpd_tls_session_cache_timeout changed: new TLS session ticket keys");
        OPENSSL_cleanse(&ticket_chain, sizeof(ticket_chain));
        ticket_period_len = 0;
        if (getrandom(ticket_chain.state, sizeof(ticket_chain.state), 0) !=
            (ssize_t)sizeof(ticket_chain.state)) {
            log_warn("cannot get random bytes for the TLS ticket keys: %s; each smtpd makes its "
                     "own",
                     strerror(errno));
            return 0;
        }
        ticket_chain.period = now;
        ticket_period_len = len;
    }
    tls_ratchet_advance(&ticket_chain, now - 1);
    return 1;
}

/* master_child_ticket_secret - TERN_TLS_TICKET_SECRET for smtpd: the
 * chain's state (master_ticket_advance), "PERIOD:HEX" */
static void master_child_ticket_secret(void)
{
    char text[TLS_RATCHET_TEXT_SIZE];

    if (tls_ratchet_format(&ticket_chain, text, sizeof(text)) == 0)
        setenv("TERN_TLS_TICKET_SECRET", text, 1);
    OPENSSL_cleanse(text, sizeof(text));
}

/* master_child_fds - put the slot's sockets at 3, 4, ... and close the rest */
static void master_child_fds(const struct slot *s)
{
    int parked[16];
    for (size_t i = 0; i < s->fd_count; i++)
        parked[i] = fcntl(s->fds[i], F_DUPFD, MASTER_FD_PARK);
    for (size_t i = 0; i < s->fd_count; i++)
        if (parked[i] < 0 || dup2(parked[i], 3 + (int)i) < 0)
            _exit(71);
    for (int fd = 3 + (int)s->fd_count; fd < MASTER_FD_PARK + 32; fd++)
        close(fd);
}

/* master_slot_spawn - fork and exec one service */
static void master_slot_spawn(struct slot *s)
{
    buf_t path = BUF_INIT;
    int is_smtpd = strcmp(s->program, "tern-smtpd") == 0;
    int have_ticket_chain = is_smtpd && master_ticket_advance();
    pid_t pid;

    service_program_path(current_cfg, s->program, &path);
    pid = fork();
    if (pid < 0) {
        log_error("fork for %s: %s", s->program, strerror(errno));
        buf_free(&path);
        return;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        master_child_env(current_cfg, s->fd_count);
        if (is_smtpd) {
            master_child_listener_names();
            master_child_worker_index(s);
            if (have_ticket_chain)
                master_child_ticket_secret();
        }
        master_child_fds(s);
        master_exec_service(path.data, s->program);
        log_error("cannot run %s: %s", path.data, strerror(errno));
        _exit(71);
    }
    s->pid = pid;
    s->started = time(NULL);
    log_debug("started %s pid %ld", s->program, (long)pid);
    buf_free(&path);
}

static void master_slot_restart_cb(evutil_socket_t fd, short what, void *arg)
{
    struct slot *s = arg;
    if (!stopping && s->pid == 0)
        master_slot_spawn(s);
}

/* master_slot_add - a new slot for program with these sockets; NULL when
 * the program is missing */
static struct slot *master_slot_add(const char *program, const int *fds, size_t fd_count)
{
    struct slot *s;

    if (slot_count >= MASTER_MAX_SLOTS)
        log_fatal("too many service processes (at most %d)", MASTER_MAX_SLOTS);
    buf_t path = BUF_INIT;
    service_program_path(current_cfg, program, &path);
    if (access(path.data, X_OK) < 0) {
        log_warn("%s: %s; that service does not run (see daemon_directory)", path.data,
                 strerror(errno));
        buf_free(&path);
        return NULL;
    }
    buf_free(&path);
    s = &slots[slot_count++];
    memset(s, 0, sizeof(*s));
    s->program = program;
    memcpy(s->fds, fds, fd_count * sizeof(int));
    s->fd_count = fd_count;
    s->backoff = config_time(current_cfg, "service_restart_delay");
    s->restart_ev = evtimer_new(base, master_slot_restart_cb, s);
    return s;
}

/* master_workers - processes for a *_workers parameter: 0 = one per CPU,
 * at most 32 */
static long long master_workers(const struct config *cfg, const char *param)
{
    long long n = config_int(cfg, param);

    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1;
    return n > 32 ? 32 : n;
}

/* master_slots_build - the slot list for cfg */
static void master_slots_build(const struct config *cfg)
{
    long long workers = master_workers(cfg, "smtpd_workers");

    current_cfg = cfg;
    int cleanup_fds[] = {socks->cleanup, socks->pickup};
    int qmgr_fds[] = {socks->qmgr, socks->qmgr_public};

    /* the first cleanup also serves public/pickup: one pickup scans maildrop/ */
    master_slot_add("tern-cleanup", cleanup_fds, 2);
    for (long long i = 1; i < master_workers(cfg, "cleanup_workers"); i++)
        master_slot_add("tern-cleanup", &socks->cleanup, 1);
    master_slot_add("tern-qmgr", qmgr_fds, 2);
    master_slot_add("tern-smtp", &socks->smtp, 1);
    master_slot_add("tern-lmtp", &socks->lmtp, 1); /* the same binary, LMTP by its name */
    master_slot_add("tern-local", &socks->local, 1);
    master_slot_add("tern-showq", &socks->showq, 1);
    master_slot_add("tern-auth", &socks->auth, 1);
    master_slot_add("tern-anvil", &socks->anvil, 1);
    master_slot_add("tern-proxymap", &socks->proxymap, 1);
    if (socks->metrics >= 0)
        master_slot_add("tern-metrics", &socks->metrics, 1);
    smtpd_worker_count = workers;
    for (long long i = 0; socks->smtpd_count > 0 && i < workers; i++) {
        struct slot *s = master_slot_add("tern-smtpd", socks->smtpd, socks->smtpd_count);
        if (s != NULL)
            s->worker = i;
    }
}

void master_services_start(const struct config *cfg)
{
    master_slots_build(cfg);
    for (size_t i = 0; i < slot_count; i++)
        master_slot_spawn(&slots[i]);
}

/* master_slots_free - forget every slot (their processes keep running) */
static void master_slots_free(void)
{
    for (size_t i = 0; i < slot_count; i++)
        event_free(slots[i].restart_ev);
    slot_count = 0;
}

void master_services_reload(const struct config *cfg)
{
    int qmgr_running = 0;

    for (size_t i = 0; i < slot_count; i++) {
        struct slot *s = &slots[i];
        if (s->pid <= 0 || drained_count >= sizeof(drained) / sizeof(drained[0]))
            continue;
        kill(s->pid, SIGHUP);
        drained[drained_count].pid = s->pid;
        drained[drained_count].is_qmgr = strcmp(s->program, "tern-qmgr") == 0;
        qmgr_running |= drained[drained_count].is_qmgr;
        drained_count++;
    }
    master_slots_free();
    master_slots_build(cfg);
    for (size_t i = 0; i < slot_count; i++) {
        if (qmgr_running && strcmp(slots[i].program, "tern-qmgr") == 0)
            slots[i].waiting_for_qmgr = 1;
        else
            master_slot_spawn(&slots[i]);
    }
}

/* master_describe_exit - "exit status 1" / "killed by signal 9" */
static void master_describe_exit(int status, buf_t *out)
{
    if (WIFSIGNALED(status))
        buf_printf(out, "killed by signal %d", WTERMSIG(status));
    else
        buf_printf(out, "exit status %d", WEXITSTATUS(status));
}

/* master_drained_exit - a drained child finished; 1 when pid was one */
static int master_drained_exit(pid_t pid)
{
    for (size_t i = 0; i < drained_count; i++) {
        if (drained[i].pid != pid)
            continue;
        int was_qmgr = drained[i].is_qmgr;
        drained[i] = drained[--drained_count];
        for (size_t j = 0; was_qmgr && j < slot_count; j++) {
            if (slots[j].waiting_for_qmgr) {
                slots[j].waiting_for_qmgr = 0;
                if (!stopping)
                    master_slot_spawn(&slots[j]);
            }
        }
        return 1;
    }
    return 0;
}

/* master_slot_exit - a live child died: schedule its restart */
static void master_slot_exit(pid_t pid, int status)
{
    for (size_t i = 0; i < slot_count; i++) {
        struct slot *s = &slots[i];
        if (s->pid != pid)
            continue;
        s->pid = 0;
        if (stopping)
            return;
        buf_t how = BUF_INIT;
        master_describe_exit(status, &how);
        if (time(NULL) - s->started >= MASTER_HEALTHY_AFTER)
            s->backoff = config_time(current_cfg, "service_restart_delay");
        log_warn("process %s pid %ld %s; restarting it in %llds", s->program, (long)pid,
                 buf_cstr(&how), s->backoff);
        struct timeval tv = {(time_t)s->backoff, 0};
        evtimer_add(s->restart_ev, &tv);
        s->backoff = s->backoff * 2 > MASTER_MAX_BACKOFF ? MASTER_MAX_BACKOFF : s->backoff * 2;
        if (s->backoff < 1)
            s->backoff = 1;
        buf_free(&how);
        return;
    }
}

/* master_children_left - processes still running */
static size_t master_children_left(void)
{
    size_t n = drained_count;
    for (size_t i = 0; i < slot_count; i++)
        n += slots[i].pid > 0;
    return n;
}

void master_services_reap(void)
{
    pid_t pid;
    int status;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        if (!master_drained_exit(pid))
            master_slot_exit(pid, status);
    if (stopping && master_children_left() == 0 && stop_done) {
        void (*cb)(void) = stop_done;
        stop_done = NULL;
        cb();
    }
}

void master_services_stop(void (*done_cb)(void))
{
    stopping = 1;
    stop_done = done_cb;
    for (size_t i = 0; i < slot_count; i++) {
        evtimer_del(slots[i].restart_ev);
        if (slots[i].pid > 0)
            kill(slots[i].pid, SIGTERM);
    }
    for (size_t i = 0; i < drained_count; i++)
        kill(drained[i].pid, SIGTERM);
    master_services_reap();
}

void master_services_kill(void)
{
    for (size_t i = 0; i < slot_count; i++)
        if (slots[i].pid > 0)
            kill(slots[i].pid, SIGKILL);
    for (size_t i = 0; i < drained_count; i++)
        kill(drained[i].pid, SIGKILL);
}
