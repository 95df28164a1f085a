/*
 * bench_milter - a pass-through milter on libmilter, for bench/.
 *
 *   bench_milter [-b BACKLOG] SOCKET
 *
 * SOCKET is libmilter's spelling: unix:/path (local:/path), inet:PORT@HOST.
 * It registers the callbacks a typical content filter (a spam or virus
 * scanner, a DKIM verifier) needs to see the whole message — connect, helo,
 * envfrom, envrcpt, header, eoh, body, eom, abort, close — so the MTA sends
 * every step but DATA and unknown commands (libmilter asks the MTA to skip
 * the steps whose callback is NULL).  Every callback answers CONTINUE; it
 * asks for no modification.  libmilter runs one thread per MTA connection;
 * the listen backlog is BACKLOG (default 256).  A unix socket is made 0666
 * (umask), so an MTA that dropped privileges can connect.
 *
 * On stdout, on SIGUSR1 and when libmilter stops (SIGINT, SIGTERM), one line:
 * "connections=N messages=N aborts=N rcpts=N body_bytes=N cpu_s=S";
 * messages counts end-of-message callbacks.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

static atomic_ulong connections, messages, aborts, rcpts, body_bytes;

static sfsistat bench_milter_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr)
{
    (void)ctx, (void)host, (void)addr;
    atomic_fetch_add(&connections, 1);
    return SMFIS_CONTINUE;
}

static sfsistat bench_milter_helo(SMFICTX *ctx, char *name)
{
    (void)ctx, (void)name;
    return SMFIS_CONTINUE;
}

static sfsistat bench_milter_envfrom(SMFICTX *ctx, char **argv)
{
    (void)ctx, (void)argv;
    return SMFIS_CONTINUE;
}

static sfsistat bench_milter_envrcpt(SMFICTX *ctx, char **argv)
{
    (void)ctx, (void)argv;
    atomic_fetch_add(&rcpts, 1);
    return SMFIS_CONTINUE;
}

static sfsistat bench_milter_header(SMFICTX *ctx, char *name, char *value)
{
    (void)ctx, (void)name, (void)value;
    return SMFIS_CONTINUE;
}

static sfsistat bench_milter_eoh(SMFICTX *ctx)
{
    (void)ctx;
    return SMFIS_CONTINUE;
}

static sfsistat bench_milter_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
    (void)ctx, (void)chunk;
    atomic_fetch_add(&body_bytes, len);
    return SMFIS_CONTINUE;
}

static sfsistat bench_milter_eom(SMFICTX *ctx)
{
    (void)ctx;
    atomic_fetch_add(&messages, 1);
    return SMFIS_CONTINUE;
}

static sfsistat bench_milter_abort(SMFICTX *ctx)
{
    (void)ctx;
    atomic_fetch_add(&aborts, 1);
    return SMFIS_CONTINUE;
}

static sfsistat bench_milter_close(SMFICTX *ctx)
{
    (void)ctx;
    return SMFIS_CONTINUE;
}

static struct smfiDesc bench_milter_desc = {
    .xxfi_name = "bench_milter",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = 0,
    .xxfi_connect = bench_milter_connect,
    .xxfi_helo = bench_milter_helo,
    .xxfi_envfrom = bench_milter_envfrom,
    .xxfi_envrcpt = bench_milter_envrcpt,
    .xxfi_header = bench_milter_header,
    .xxfi_eoh = bench_milter_eoh,
    .xxfi_body = bench_milter_body,
    .xxfi_eom = bench_milter_eom,
    .xxfi_abort = bench_milter_abort,
    .xxfi_close = bench_milter_close,
};

/* bench_milter_report - the counters and this process's CPU time, one line */
static void bench_milter_report(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    double cpu =
        ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    printf("connections=%lu messages=%lu aborts=%lu rcpts=%lu body_bytes=%lu cpu_s=%.3f\n",
           atomic_load(&connections), atomic_load(&messages), atomic_load(&aborts),
           atomic_load(&rcpts), atomic_load(&body_bytes), cpu);
    fflush(stdout);
}

/* bench_milter_reporter - a thread: one report per SIGUSR1 (blocked everywhere) */
static void *bench_milter_reporter(void *arg)
{
    sigset_t *set = arg;
    int sig;

    for (;;) {
        if (sigwait(set, &sig) == 0)
            bench_milter_report();
    }
    return NULL;
}

static void bench_milter_usage(void)
{
    fprintf(stderr, "usage: bench_milter [-b BACKLOG] unix:/path|inet:PORT@HOST\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static sigset_t usr1;
    pthread_t reporter;
    int backlog = 256, c;

    while ((c = getopt(argc, argv, "b:")) != -1) {
        if (c != 'b')
            bench_milter_usage();
        backlog = atoi(optarg);
    }
    if (optind != argc - 1 || backlog <= 0)
        bench_milter_usage();
    /* before any thread: every thread libmilter starts inherits the mask */
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    if (pthread_create(&reporter, NULL, bench_milter_reporter, &usr1) != 0) {
        fprintf(stderr, "bench_milter: pthread_create failed\n");
        return 2;
    }
    umask(0111);
    if (smfi_setconn(argv[optind]) != MI_SUCCESS || smfi_setbacklog(backlog) != MI_SUCCESS ||
        smfi_register(bench_milter_desc) != MI_SUCCESS) {
        fprintf(stderr, "bench_milter: bad socket %s or libmilter set-up failed\n", argv[optind]);
        return 2;
    }
    if (smfi_opensocket(1) != MI_SUCCESS) {
        fprintf(stderr, "bench_milter: cannot listen on %s\n", argv[optind]);
        return 2;
    }
    printf("listening %s\n", argv[optind]);
    fflush(stdout);
    int r = smfi_main();
    bench_milter_report();
    return r == MI_SUCCESS ? 0 : 1;
}
