/*
 * tls_sink - an SMTP sink with PIPELINING and STARTTLS, for bench/.
 *
 *   tls_sink -c CERT -k KEY [-v] ADDR:PORT [ADDR:PORT ...]
 *
 * Postfix's smtp-sink speaks no TLS; this does, on OpenSSL 3, fast enough not
 * to be what a drain benchmark measures: one thread, one epoll loop,
 * non-blocking sockets and SSL objects.  It listens on every ADDR:PORT given
 * (several loopback addresses stand for several next hops), answers EHLO with
 * PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES and (before TLS) STARTTLS,
 * accepts every MAIL, RCPT and message and throws them away.  Replies to
 * pipelined commands go out in one write per read.
 *
 * TLS: TLS 1.2 and 1.3, the given certificate, session resumption by TLS 1.3
 * tickets and TLS 1.2 session IDs and tickets (ticket keys are random per
 * process: a new sink invalidates every session a client kept).  One ticket
 * per handshake.
 *
 * On stdout: "mesg=N" whenever the message count changed (at most every
 * 10 ms, like smtp-sink -c), and on SIGUSR1 or at exit (SIGINT, SIGTERM) one
 * line of key=value: messages, tls_messages (delivered after STARTTLS),
 * connections, handshakes, resumed (SSL_session_reused), cpu_s (this
 * process's CPU time).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bench_util.h"

#define IN_SIZE 65536
#define MAX_LISTENERS 64
#define HOSTNAME "tls-sink.test"

struct conn {
    int is_listener; /* 0: the epoll data of a session */
    int fd;
    SSL *ssl;
    uint32_t events;
    int handshaking;  /* SSL_do_handshake until it completes */
    int tls_pending;  /* STARTTLS answered: the handshake starts once it is written */
    int closing;      /* QUIT answered: close once it is written */
    int in_data;      /* between 354 and the "." line */
    int data_midline; /* in_data, and the last byte consumed was not '\n' */
    char in[IN_SIZE];
    size_t inlen;
    char *out;
    size_t outlen, outcap;
};

struct listener {
    int is_listener; /* 1 */
    int fd;
};

static SSL_CTX *ctx;
static int ep;
static int opt_verbose;
static long messages, tls_messages, connections, handshakes, resumed;
static volatile sig_atomic_t got_stop, got_report;

static const char reply_greeting[] = "220 " HOSTNAME " ESMTP tls_sink\r\n";
static const char reply_ehlo_plain[] = "250-" HOSTNAME "\r\n250-PIPELINING\r\n"
                                       "250-SIZE 104857600\r\n250-8BITMIME\r\n"
                                       "250-STARTTLS\r\n250 ENHANCEDSTATUSCODES\r\n";
static const char reply_ehlo_tls[] = "250-" HOSTNAME "\r\n250-PIPELINING\r\n"
                                     "250-SIZE 104857600\r\n250-8BITMIME\r\n"
                                     "250 ENHANCEDSTATUSCODES\r\n";

static void usage(void)
{
    fprintf(stderr, "usage: tls_sink -c CERT -k KEY [-v] ADDR:PORT [ADDR:PORT ...]\n"
                    "  -c CERT    certificate chain (PEM)   -k KEY  its private key (PEM)\n"
                    "  -v         every handshake and session error on stderr\n");
    exit(2);
}

static void sink_report(void)
{
    printf("messages=%ld tls_messages=%ld connections=%ld handshakes=%ld resumed=%ld "
           "cpu_s=%.3f\n",
           messages, tls_messages, connections, handshakes, resumed, bench_cpu_seconds());
    fflush(stdout);
}

/* ------------------------------------------------------------------ TLS */

static void sink_tls_init(const char *cert, const char *key)
{
    static const unsigned char sid_ctx[] = "tls_sink";
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        bench_die("SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        bench_die("cannot load the certificate %s", cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        bench_die("cannot load the key %s", key);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_num_tickets(ctx, 1);
}

/* ------------------------------------------------------------------ sessions */

static void conn_set_events(struct conn *c, uint32_t ev)
{
    bench_epoll_set(ep, c->fd, &c->events, ev, c);
}

static void conn_close(struct conn *c, const char *why)
{
    if (opt_verbose && why != NULL)
        fprintf(stderr, "tls_sink: session closed: %s\n", why);
    ERR_clear_error();
    if (c->ssl != NULL) {
        if (why == NULL)
            SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    close(c->fd);
    free(c->out);
    free(c);
}

static void conn_reply(struct conn *c, const char *text, size_t len)
{
    if (c->outlen + len > c->outcap) {
        size_t cap = c->outcap ? c->outcap * 2 : 1024;
        while (cap < c->outlen + len)
            cap *= 2;
        c->out = realloc(c->out, cap);
        if (c->out == NULL)
            bench_die("out of memory");
        c->outcap = cap;
    }
    memcpy(c->out + c->outlen, text, len);
    c->outlen += len;
}

#define REPLY(c, s) conn_reply((c), (s), sizeof(s) - 1)

static void conn_accept(int lfd)
{
    int one = 1;
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    struct conn *c;
    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            fprintf(stderr, "tls_sink: accept: %s\n", strerror(errno));
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        bench_die("out of memory");
    c->fd = fd;
    connections++;
    REPLY(c, reply_greeting);
    conn_set_events(c, EPOLLOUT);
}

/* conn_command - answer one command line (without its line end) */
static void conn_command(struct conn *c, const char *line, size_t len)
{
    if (len >= 4 && strncasecmp(line, "EHLO", 4) == 0) {
        if (c->ssl != NULL)
            REPLY(c, reply_ehlo_tls);
        else
            REPLY(c, reply_ehlo_plain);
    } else if (len >= 4 && strncasecmp(line, "HELO", 4) == 0) {
        REPLY(c, "250 " HOSTNAME "\r\n");
    } else if (len >= 4 && strncasecmp(line, "MAIL", 4) == 0) {
        REPLY(c, "250 2.1.0 Ok\r\n");
    } else if (len >= 4 && strncasecmp(line, "RCPT", 4) == 0) {
        REPLY(c, "250 2.1.5 Ok\r\n");
    } else if (len == 4 && strncasecmp(line, "DATA", 4) == 0) {
        REPLY(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
        c->in_data = 1;
        c->data_midline = 0;
    } else if (len == 4 && strncasecmp(line, "RSET", 4) == 0) {
        REPLY(c, "250 2.0.0 Ok\r\n");
    } else if (len >= 4 && strncasecmp(line, "NOOP", 4) == 0) {
        REPLY(c, "250 2.0.0 Ok\r\n");
    } else if (len == 4 && strncasecmp(line, "QUIT", 4) == 0) {
        REPLY(c, "221 2.0.0 Bye\r\n");
        c->closing = 1;
    } else if (len == 8 && strncasecmp(line, "STARTTLS", 8) == 0 && c->ssl == NULL) {
        REPLY(c, "220 2.0.0 Ready to start TLS\r\n");
        c->tls_pending = 1;
    } else {
        REPLY(c, "502 5.5.2 Error: command not recognized\r\n");
    }
}

/* conn_data_line - one line of message content; the "." line ends it */
static void conn_data_line(struct conn *c, const char *line, size_t len, int complete)
{
    int starts_line = !c->data_midline;
    c->data_midline = !complete;
    if (!complete || !starts_line || len != 1 || line[0] != '.')
        return;
    c->in_data = 0;
    messages++;
    if (c->ssl != NULL)
        tls_messages++;
    REPLY(c, "250 2.0.0 Ok: queued\r\n");
}

/* conn_process - consume the complete lines read so far */
static void conn_process(struct conn *c)
{
    char *p = c->in, *end = c->in + c->inlen, *nl;
    while (p < end && !c->closing && !c->tls_pending) {
        size_t len;
        nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            break;
        len = (size_t)(nl - p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (c->in_data)
            conn_data_line(c, p, len, 1);
        else
            conn_command(c, p, len);
        p = nl + 1;
    }
    if (c->tls_pending) {
        c->inlen = 0; /* RFC 3207: nothing pipelined after STARTTLS counts */
        return;
    }
    if (p == c->in && c->inlen == sizeof(c->in)) { /* a line longer than the buffer */
        if (c->in_data)
            conn_data_line(c, p, c->inlen, 0);
        else
            REPLY(c, "500 5.5.2 Error: line too long\r\n");
        p = end;
    }
    c->inlen = (size_t)(end - p);
    memmove(c->in, p, c->inlen);
}

/* conn_flush - write what is pending; 0 when all is written, else the epoll
 * interest to wait for, or -1 on error */
static int conn_flush(struct conn *c, uint32_t *want)
{
    size_t done = 0;
    while (done < c->outlen) {
        if (c->ssl != NULL) {
            int r = SSL_write(c->ssl, c->out + done, (int)(c->outlen - done));
            if (r <= 0) {
                if ((*want = bench_ssl_want(c->ssl, r)) == 0)
                    return -1;
                break;
            }
            done += (size_t)r;
        } else {
            ssize_t n = send(c->fd, c->out + done, c->outlen - done, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno != EAGAIN && errno != EINTR)
                    return -1;
                *want = EPOLLOUT;
                break;
            }
            done += (size_t)n;
        }
    }
    memmove(c->out, c->out + done, c->outlen - done);
    c->outlen -= done;
    return c->outlen > 0 ? 1 : 0;
}

/* conn_read - read once; bytes read, 0 when it would block (*want set), -1 at
 * the end */
static ssize_t conn_read(struct conn *c, uint32_t *want)
{
    size_t room = sizeof(c->in) - c->inlen;
    if (c->ssl != NULL) {
        int r = SSL_read(c->ssl, c->in + c->inlen, (int)room);
        if (r > 0)
            return r;
        return (*want = bench_ssl_want(c->ssl, r)) == 0 ? -1 : 0;
    } else {
        ssize_t n = recv(c->fd, c->in + c->inlen, room, 0);
        if (n > 0)
            return n;
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            *want = EPOLLIN;
            return 0;
        }
        return -1;
    }
}

/* conn_handshake - 1 when done, 0 to wait (*want set), -1 on failure */
static int conn_handshake(struct conn *c, uint32_t *want)
{
    int r = SSL_do_handshake(c->ssl);
    if (r != 1)
        return (*want = bench_ssl_want(c->ssl, r)) == 0 ? -1 : 0;
    c->handshaking = 0;
    handshakes++;
    if (SSL_session_reused(c->ssl))
        resumed++;
    if (opt_verbose)
        fprintf(stderr, "tls_sink: handshake %ld: %s, %s, %s\n", handshakes,
                SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl),
                SSL_session_reused(c->ssl) ? "resumed" : "full");
    return 1;
}

static void conn_start_tls(struct conn *c)
{
    c->tls_pending = 0;
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL || !SSL_set_fd(c->ssl, c->fd))
        bench_die("SSL_new failed");
    SSL_set_accept_state(c->ssl);
    c->handshaking = 1;
}

/* conn_drive - advance c as far as it goes without blocking */
static void conn_drive(struct conn *c)
{
    for (;;) {
        uint32_t want = EPOLLIN;
        ssize_t n;
        if (c->handshaking) {
            int r = conn_handshake(c, &want);
            if (r < 0) {
                conn_close(c, "TLS handshake failed");
                return;
            }
            if (r == 0) {
                conn_set_events(c, want);
                return;
            }
        }
        if (c->outlen > 0) {
            int r = conn_flush(c, &want);
            if (r < 0) {
                conn_close(c, "write failed");
                return;
            }
            if (r > 0) {
                conn_set_events(c, want);
                return;
            }
        }
        if (c->closing) {
            conn_close(c, NULL);
            return;
        }
        if (c->tls_pending) {
            conn_start_tls(c);
            continue;
        }
        n = conn_read(c, &want);
        if (n < 0) {
            conn_close(c, c->in_data ? "connection lost in DATA" : NULL);
            return;
        }
        if (n == 0) {
            conn_set_events(c, want);
            return;
        }
        c->inlen += (size_t)n;
        conn_process(c);
    }
}

/* ------------------------------------------------------------------ main */

static void sink_listen(const char *arg, struct listener *l)
{
    char host[256];
    const char *colon = strrchr(arg, ':');
    struct addrinfo hints, *res;
    struct epoll_event e;
    int rc, one = 1;

    if (colon == NULL || colon == arg || (size_t)(colon - arg) >= sizeof(host))
        bench_die("address must be ADDR:PORT: %s", arg);
    memcpy(host, arg, (size_t)(colon - arg));
    host[colon - arg] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0)
        bench_die("%s: %s", arg, gai_strerror(rc));
    l->is_listener = 1;
    l->fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0)
        bench_die("socket: %s", strerror(errno));
    setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(l->fd, res->ai_addr, res->ai_addrlen) < 0 || listen(l->fd, 4096) < 0)
        bench_die("%s: %s", arg, strerror(errno));
    freeaddrinfo(res);
    e.events = EPOLLIN;
    e.data.ptr = l;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, l->fd, &e) < 0)
        bench_die("epoll_ctl: %s", strerror(errno));
}

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        got_report = 1;
    else
        got_stop = 1;
}

static void sink_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void sink_loop(void)
{
    struct epoll_event evs[256];
    long shown = -1;
    double last_shown = 0;

    while (!got_stop) {
        int n = epoll_wait(ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), 10);
        if (n < 0 && errno != EINTR)
            bench_die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->is_listener)
                conn_accept(c->fd);
            else
                conn_drive(c);
        }
        if (messages != shown && bench_now() - last_shown >= 0.01) {
            printf("mesg=%ld\n", messages);
            fflush(stdout);
            shown = messages;
            last_shown = bench_now();
        }
        if (got_report) {
            got_report = 0;
            sink_report();
        }
    }
}

int main(int argc, char **argv)
{
    static struct listener listeners[MAX_LISTENERS];
    const char *cert = NULL, *key = NULL;
    struct rlimit rl;
    int c;

    bench_progname = "tls_sink";
    while ((c = getopt(argc, argv, "c:k:v")) != -1) {
        switch (c) {
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'v':
            opt_verbose = 1;
            break;
        default:
            usage();
        }
    }
    if (cert == NULL || key == NULL || optind >= argc || argc - optind > MAX_LISTENERS)
        usage();
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    sink_signals();
    sink_tls_init(cert, key);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        bench_die("epoll_create1: %s", strerror(errno));
    for (int i = optind; i < argc; i++)
        sink_listen(argv[i], &listeners[i - optind]);
    sink_loop();
    sink_report();
    SSL_CTX_free(ctx);
    return 0;
}
