/*
 * policy_client_probe - a test driver of smtpd/policy_client.c against a real
 * policy server (tests/integration/test_policy_client_postgrey.py):
 *
 *   policy_client_probe [-t TIMEOUT] [-w WAIT] ENDPOINT < requests
 *
 * reads requests ("name=value" lines, each request ended by an empty line)
 * from stdin, asks them one after the other through one pool (so one
 * connection serves them all while the server keeps it), waits WAIT seconds
 * on the event loop between two requests, and prints "STATUS ACTION" per
 * request.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "policy_client.h"

struct probe {
    struct event_base *base;
    struct smtpd_policy_clients *clients;
    const char *endpoint;
    buf_t input;
    size_t pos; /* the next request in input */
    double wait;
    struct event *pause;
};

static void probe_next(struct probe *p);

static void probe_on_answer(void *ctx, int status, const char *action)
{
    struct probe *p = ctx;
    struct timeval tv = {(time_t)p->wait, (suseconds_t)((p->wait - (long)p->wait) * 1e6)};

    printf("%d %s\n", status, action);
    fflush(stdout);
    if (p->pos < p->input.len)
        evtimer_add(p->pause, &tv);
    else
        event_base_loopexit(p->base, NULL); /* the pool's idle connection would keep it */
}

static void probe_on_pause(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    probe_next(arg);
}

/* probe_next - ask the next request of the input */
static void probe_next(struct probe *p)
{
    const char *start = p->input.data + p->pos;
    const char *end = strstr(start, "\n\n");
    buf_t request = BUF_INIT;

    if (end == NULL) {
        p->pos = p->input.len;
        return;
    }
    buf_append(&request, start, (size_t)(end - start) + 2);
    p->pos += (size_t)(end - start) + 2;
    while (p->pos < p->input.len && p->input.data[p->pos] == '\n')
        p->pos++;
    smtpd_policy_client_ask(p->clients, p->endpoint, &request, probe_on_answer, p);
    buf_free(&request);
}

int main(int argc, char **argv)
{
    struct probe p;
    long long timeout = 10;
    char chunk[4096];
    ssize_t n;
    int opt;

    memset(&p, 0, sizeof(p));
    while ((opt = getopt(argc, argv, "t:w:")) != -1) {
        if (opt == 't')
            timeout = atoll(optarg);
        else if (opt == 'w')
            p.wait = atof(optarg);
        else
            return 2;
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "usage: policy_client_probe [-t TIMEOUT] [-w WAIT] ENDPOINT < requests\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    p.endpoint = argv[optind];
    while ((n = read(0, chunk, sizeof(chunk))) > 0)
        buf_append(&p.input, chunk, (size_t)n);
    p.base = event_base_new();
    p.clients = smtpd_policy_clients_new(p.base, timeout, 300, 1000);
    p.pause = evtimer_new(p.base, probe_on_pause, &p);
    probe_next(&p);
    event_base_dispatch(p.base);
    event_free(p.pause);
    smtpd_policy_clients_free(p.clients);
    event_base_free(p.base);
    buf_free(&p.input);
    return 0;
}
