/*
 * dnssec_fixture - nsd and a validating unbound for the lib/dns unit tests.
 * Contract in dnssec_fixture.h.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dnsmasq_fixture.h"
#include "dnssec_fixture.h"

#ifndef DNSSEC_MAKE_ZONE
#error "DNSSEC_MAKE_ZONE: the path of tests/dnssec/make_zone.sh"
#endif

/* dnssec_fixture_spawn - run argv in a child with output to log; its pid or
 * -1.  The child gets SIGTERM when the test dies without stopping it. */
static pid_t dnssec_fixture_spawn(const char *const *argv, const char *log)
{
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (freopen("/dev/null", "r", stdin) == NULL || freopen(log, "a", stdout) == NULL ||
        dup2(fileno(stdout), 2) < 0)
        _exit(126);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

/* dnssec_fixture_run - run argv to its end; 0 when it exited 0 */
static int dnssec_fixture_run(const char *const *argv, const char *log)
{
    int status;
    pid_t pid = dnssec_fixture_spawn(argv, log);

    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* dnssec_fixture_ports - two different free loopback ports; -1 when none */
static int dnssec_fixture_ports(struct dnssec_fixture *fx)
{
    for (int i = 0; i < 10; i++) {
        fx->auth_port = dnsmasq_fixture_free_port();
        fx->resolver_port = dnsmasq_fixture_free_port();
        if (fx->auth_port > 0 && fx->resolver_port > 0 && fx->auth_port != fx->resolver_port)
            return 0;
    }
    return -1;
}

/* dnssec_fixture_servers - make the zones, start nsd and unbound, wait */
static int dnssec_fixture_servers(struct dnssec_fixture *fx, const char *log)
{
    char auth[16], resolver[16], nsd_conf[96], unbound_conf[96];
    const char *make[] = {DNSSEC_MAKE_ZONE, fx->dir, auth, resolver, NULL};
    const char *wait[] = {DNSSEC_MAKE_ZONE, "--wait", auth, resolver, NULL};
    const char *nsd[] = {"nsd", "-d", "-c", nsd_conf, NULL};
    const char *unbound[] = {"unbound", "-d", "-c", unbound_conf, NULL};

    snprintf(auth, sizeof(auth), "%d", fx->auth_port);
    snprintf(resolver, sizeof(resolver), "%d", fx->resolver_port);
    snprintf(nsd_conf, sizeof(nsd_conf), "%s/nsd.conf", fx->dir);
    snprintf(unbound_conf, sizeof(unbound_conf), "%s/unbound.conf", fx->dir);
    if (dnssec_fixture_run(make, log) < 0)
        return -1;
    fx->auth_pid = dnssec_fixture_spawn(nsd, log);
    fx->resolver_pid = dnssec_fixture_spawn(unbound, log);
    return dnssec_fixture_run(wait, log);
}

/* dnssec_fixture_start - see dnssec_fixture.h */
int dnssec_fixture_start(struct dnssec_fixture *fx)
{
    char log[96];

    memset(fx, 0, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/tern-dnssec.XXXXXX");
    if (mkdtemp(fx->dir) == NULL || dnssec_fixture_ports(fx) < 0) {
        fprintf(stderr, "dnssec_fixture: no directory or no free port\n");
        return -1;
    }
    snprintf(log, sizeof(log), "%s/fixture.log", fx->dir);
    if (dnssec_fixture_servers(fx, log) < 0) {
        fprintf(stderr, "dnssec_fixture: nsd/unbound did not start (see %s)\n", log);
        return -1;
    }
    return 0;
}

/* dnssec_fixture_stop_child - end one server */
static void dnssec_fixture_stop_child(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGTERM);
        waitpid(*pid, NULL, 0);
    }
    *pid = 0;
}

/* dnssec_fixture_stop - see dnssec_fixture.h; the directory stays when
 * TERN_KEEP_DNSSEC is set (to read the logs) */
void dnssec_fixture_stop(struct dnssec_fixture *fx)
{
    const char *rm[] = {"rm", "-rf", fx->dir, NULL};

    dnssec_fixture_stop_child(&fx->auth_pid);
    dnssec_fixture_stop_child(&fx->resolver_pid);
    if (fx->dir[0] != '\0' && getenv("TERN_KEEP_DNSSEC") == NULL)
        dnssec_fixture_run(rm, "/dev/null");
    fx->dir[0] = '\0';
}
