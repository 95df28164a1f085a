/*
 * sendmail_qrun - sendmail's daemon and queue-run flags (docs/operations.md,
 * "Queue runs and the daemon flags").
 *
 *   -bd [-q<interval>], -q<interval>   `tern start -o queue_run_delay=...`
 *   -bD                                the same in the foreground
 *   -q[f][!][R|S|I]substr [-v]         a queue run in the foreground
 *   -v (submission)                    a run of the new message (-qI<ID> -v)
 *
 * A queue run asks the running qmgr (`terndrop -q -w`) and returns when
 * every selected message had its attempt.  When tern is stopped, root gets
 * a temporary instance without SMTP listeners for the run, stopped after
 * it; anyone else is told that the mail system is not running.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "sendmail.h"
#include "service.h"

/* the listeners a temporary queue-run instance leaves closed */
static const char *const qrun_no_listeners[] = {
    "smtpd_listen=", "submission_listen=", "smtps_listen=", NULL};

/* the -O assignments a run passes on: master takes SERVICE_MAX_OVERRIDES
 * "-o", of which a run uses up to 4 itself (the listeners, the interval) */
#define QRUN_MAX_ASSIGNMENTS (SERVICE_MAX_OVERRIDES - 4)

/* qrun_overrides_fit - 1 when count -O options can be passed on; else the
 * usage error is printed (none is silently left out) */
static int qrun_overrides_fit(size_t count)
{
    if (count <= QRUN_MAX_ASSIGNMENTS)
        return 1;
    fprintf(stderr, "sendmail: at most %d -O options with -bd, -bD or -q (%zu given)\n",
            QRUN_MAX_ASSIGNMENTS, count);
    return 0;
}

/* qrun_add_overrides - "-o name=value" for each assignment into argv (the
 * caller checked qrun_overrides_fit) */
static size_t qrun_add_overrides(char **argv, size_t n, char *const *assignments, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        argv[n++] = "-o";
        argv[n++] = assignments[i];
    }
    return n;
}

/* qrun_running - the pid of the running master, or 0 */
static pid_t qrun_running(const struct config *cfg)
{
    return service_master_pid(config_str(cfg, "queue_directory"));
}

int sendmail_daemon(const char *config_dir, const struct config *cfg, int foreground,
                    long long interval, char *const *assignments, size_t count)
{
    char *argv[8 + 2 * SERVICE_MAX_OVERRIDES];
    char delay[64];
    size_t n = 0;
    pid_t pid = qrun_running(cfg);

    if (!qrun_overrides_fit(count))
        return EX_USAGE;
    if (pid > 0) {
        /* sendmail cannot bind its port and gives up with EX_OSERR */
        fprintf(stderr,
                "sendmail: the mail system is already running (pid %ld); not starting "
                "another daemon\n",
                (long)pid);
        return EX_OSERR;
    }
    argv[n++] = "start";
    if (foreground)
        argv[n++] = "-f";
    if (interval > 0) {
        snprintf(delay, sizeof(delay), "queue_run_delay=%llds", interval);
        argv[n++] = "-o";
        argv[n++] = delay;
    }
    n = qrun_add_overrides(argv, n, assignments, count);
    argv[n] = NULL;
    return sendmail_run_tern(config_dir, argv) == 0 ? 0 : EX_OSERR;
}

/* qrun_ask - terndrop -q -w [-v] SELECTOR */
static int qrun_ask(const char *config_dir, const char *selector, int verbose)
{
    char *args[5];
    size_t n = 0;

    args[n++] = "-q";
    args[n++] = "-w";
    if (verbose)
        args[n++] = "-v";
    args[n++] = (char *)selector;
    args[n] = NULL;
    return sendmail_run_terndrop(config_dir, args, -1);
}

/* qrun_stopped - root, tern stopped: a temporary instance for one run */
static int qrun_stopped(const char *config_dir, const char *selector, int verbose,
                        char *const *assignments, size_t count)
{
    char *start[8 + 2 * SERVICE_MAX_OVERRIDES], *stop[] = {"stop", NULL};
    size_t n = 0;
    int rc;

    start[n++] = "start";
    for (size_t i = 0; qrun_no_listeners[i]; i++) {
        start[n++] = "-o";
        start[n++] = (char *)qrun_no_listeners[i];
    }
    n = qrun_add_overrides(start, n, assignments, count);
    start[n] = NULL;
    if (verbose)
        printf("tern is not running: starting it without SMTP listeners for this queue run\n");
    if (sendmail_run_tern(config_dir, start) != 0) {
        fprintf(stderr, "sendmail: cannot start tern for the queue run\n");
        return EX_OSERR;
    }
    rc = qrun_ask(config_dir, selector, verbose);
    for (int i = 0; rc == EX_UNAVAILABLE && i < 50; i++) { /* the master is still binding */
        usleep(100000);
        rc = qrun_ask(config_dir, selector, verbose);
    }
    if (sendmail_run_tern(config_dir, stop) != 0)
        fprintf(stderr, "sendmail: the temporary instance did not stop cleanly\n");
    return rc;
}

int sendmail_queue_run(const char *config_dir, const char *selector, int verbose,
                       char *const *assignments, size_t count)
{
    int rc;

    if (!qrun_overrides_fit(count))
        return EX_USAGE;
    rc = qrun_ask(config_dir, selector, verbose);
    if (rc != EX_UNAVAILABLE)
        return rc;
    if (getuid() != 0) {
        fprintf(stderr, "sendmail: the mail system is not running; only root can run the queue "
                        "while it is stopped\n");
        return EX_UNAVAILABLE;
    }
    return qrun_stopped(config_dir, selector, verbose, assignments, count);
}

void sendmail_verbose_delivery(const char *config_dir, const char *queue_id)
{
    char *kick[] = {"-k", NULL};
    buf_t selector = BUF_INIT;
    int rc;

    buf_printf(&selector, "I%s", queue_id);
    rc = qrun_ask(config_dir, buf_cstr(&selector), 1);
    buf_free(&selector);
    if (rc == 0)
        return;
    sendmail_run_terndrop(config_dir, kick, -1); /* the run did not trigger pickup */
    if (rc == EX_UNAVAILABLE)
        printf("%s: tern is not running; the message waits in maildrop\n", queue_id);
    else /* e.g. restrict_queue_run: follow it through the queue listing */
        sendmail_follow(config_dir, queue_id);
}
