/*
 * dnsmasq_fixture - dnsmasq for the lib/dns unit tests.  Contract in
 * dnsmasq_fixture.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dnsmasq_fixture.h"

#define DNSMASQ_PATH "/usr/sbin/dnsmasq"
#define DNSMASQ_MAX_ARGS 64

/* dnsmasq_fixture_bind - a socket of type bound to 127.0.0.1, any port */
static int dnsmasq_fixture_bind(int type, int *port)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, type, 0);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(sin.sin_port);
    return fd;
}

/* dnsmasq_fixture_free_port - see dnsmasq_fixture.h */
int dnsmasq_fixture_free_port(void)
{
    int port;
    int fd = dnsmasq_fixture_bind(SOCK_STREAM, &port);

    if (fd < 0)
        return -1;
    close(fd);
    return port;
}

/* dnsmasq_fixture_exec - in the child: run dnsmasq, never return */
static void dnsmasq_fixture_exec(int port, const char *const *records)
{
    static char portarg[32];
    const char *argv[DNSMASQ_MAX_ARGS] = {"dnsmasq",
                                          "--no-daemon",
                                          "--keep-in-foreground",
                                          portarg,
                                          "--listen-address=127.0.0.1",
                                          "--bind-interfaces",
                                          "--no-resolv",
                                          "--no-hosts",
                                          "--user=root",
                                          "--conf-file=/dev/null",
                                          "--pid-file="};
    size_t n = 11;

    snprintf(portarg, sizeof(portarg), "--port=%d", port);
    for (size_t i = 0; records[i] != NULL && n < DNSMASQ_MAX_ARGS - 1; i++)
        argv[n++] = records[i];
    argv[n] = NULL;
    if (freopen("/dev/null", "w", stdout) == NULL || freopen("/dev/null", "w", stderr) == NULL)
        _exit(126);
    execv(DNSMASQ_PATH, (char *const *)argv);
    _exit(127);
}

/* dnsmasq_fixture_wait - wait until dnsmasq accepts TCP; 0, or -1 when it
 * exited or never listened */
static int dnsmasq_fixture_wait(struct dnsmasq_fixture *fx)
{
    struct sockaddr_in sin;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)fx->port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 200; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return 0;
        if (waitpid(fx->pid, NULL, WNOHANG) == fx->pid) {
            fx->pid = 0; /* reaped: nothing to stop */
            return -1;
        }
        usleep(50000);
    }
    return -1;
}

/* dnsmasq_fixture_start - see dnsmasq_fixture.h */
int dnsmasq_fixture_start(struct dnsmasq_fixture *fx, const char *const *records)
{
    memset(fx, 0, sizeof(*fx));
    fx->silent_fd = dnsmasq_fixture_bind(SOCK_DGRAM, &fx->silent_port);
    fx->port = dnsmasq_fixture_free_port();
    if (fx->silent_fd < 0 || fx->port < 0) {
        fprintf(stderr, "dnsmasq_fixture: no free loopback port\n");
        return -1;
    }
    fx->pid = fork();
    if (fx->pid == 0)
        dnsmasq_fixture_exec(fx->port, records);
    if (fx->pid < 0 || dnsmasq_fixture_wait(fx) < 0) {
        fprintf(stderr, "dnsmasq_fixture: %s did not start on port %d\n", DNSMASQ_PATH, fx->port);
        return -1;
    }
    return 0;
}

/* dnsmasq_fixture_stop - see dnsmasq_fixture.h */
void dnsmasq_fixture_stop(struct dnsmasq_fixture *fx)
{
    if (fx->pid > 0) {
        kill(fx->pid, SIGTERM);
        waitpid(fx->pid, NULL, 0);
    }
    if (fx->silent_fd >= 0)
        close(fx->silent_fd);
    fx->pid = 0;
    fx->silent_fd = -1;
}
