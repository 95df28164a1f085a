/*
 * tls_source - an SMTP load generator with STARTTLS (and SMTPS), for bench/.
 *
 *   tls_source [options] HOST:PORT
 *
 * Postfix's smtp-source speaks no TLS; this does, on OpenSSL 3.  One thread,
 * one epoll loop, non-blocking sockets and non-blocking SSL objects: S
 * sessions at a time, each one message on its own connection (smtp-source's
 * default): connect, 220, EHLO, STARTTLS, 220, TLS handshake (SNI, no
 * certificate verification), EHLO, MAIL FROM, RCPT TO, DATA, the message,
 * ".", QUIT.
 *
 * -r (resumed handshakes): a first "priming" session (EHLO, STARTTLS, EHLO,
 * QUIT; no mail, not timed) gets the server's session ticket(s); every timed
 * session then offers the newest session the client has received (each
 * resumed handshake brings a new ticket, kept like a client cache would).
 * Whether the server resumed is SSL_session_reused(); a server made of
 * several processes resumes only if they share ticket keys.
 *
 * -I K (idle): open K sessions (S at a time), STARTTLS and EHLO each, print
 * "idle K" on stdout, then keep them open and idle until SIGINT or SIGTERM.
 *
 * On stdout: "start" when the timed part begins (not in idle mode), and last
 * a line of key=value: messages, failed, seconds, msg_per_s, handshakes,
 * resumed, cpu_s (this process's CPU time in the timed part), tls (the
 * version/cipher of the first handshake).  The exit status is 0 only if every
 * session succeeded.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bench_util.h"

enum tls_mode { TLS_STARTTLS, TLS_IMPLICIT, TLS_NONE };
enum phase { PH_CONNECT, PH_HANDSHAKE, PH_WRITE, PH_READ, PH_IDLE };
enum step { ST_GREET, ST_EHLO1, ST_STARTTLS, ST_EHLO2, ST_MAIL, ST_RCPT, ST_DATA, ST_DOT, ST_QUIT };
enum kind { RUN_MAIL, RUN_PRIME, RUN_IDLE };

#define IN_SIZE 2048
#define MAX_ERRORS_SHOWN 5

struct sess {
    int fd;
    SSL *ssl;
    enum phase phase;
    enum step step;
    const char *out; /* what is left to write (a shared, prebuilt string) */
    size_t outlen;
    char in[IN_SIZE]; /* the reply read so far (complete lines are dropped) */
    size_t inlen;
    uint32_t events; /* current epoll interest, 0 when not registered */
    int offers_starttls;
    int in_use;
};

/* options */
static struct sockaddr_storage opt_addr;
static socklen_t opt_addrlen;
static const char *opt_sni = "bench.test";
static const char *opt_helo = "tls-source.test";
static const char *opt_from = "bench@bench.test";
static const char *opt_to = "rcpt@sink.test";
static long opt_rcpts; /* -n: 0, or how many numbered recipients to cycle through */
static enum tls_mode opt_tls = TLS_STARTTLS;
static int opt_resume;
static int opt_sessions = 1;
static long opt_messages = 1;
static long opt_idle;
static size_t opt_len = 4096;
static int opt_timeout = 60; /* seconds without any progress */
static int opt_tls_version;  /* 0: default (1.2-1.3), else TLS1_2_VERSION... */
static int opt_quiet;
static int opt_verbose;
static int opt_quickack;

/* prebuilt protocol text */
static char *cmd_ehlo, *cmd_mail, *cmd_rcpt, *msg_body;
static char **cmd_rcpts; /* -n N: RCPT TO:<LOCALk@DOMAIN> for k = 0 .. N-1 */
static long next_rcpt;
static size_t msg_body_len;
static const char cmd_starttls[] = "STARTTLS\r\n";
static const char cmd_data[] = "DATA\r\n";
static const char cmd_quit[] = "QUIT\r\n";

/* state of one run */
static SSL_CTX *ctx;
static SSL_SESSION *latest_session; /* the newest one the server gave us */
static int ep;
static struct sess *slots;
static int nslots;
static enum kind run_kind;
static long started, finished, inflight, idle_open, failed, delivered, handshakes, resumed;
static int errors_shown;
static char tls_name[128]; /* version/cipher of the first handshake */
static volatile sig_atomic_t got_signal;

__attribute__((format(printf, 1, 2))) static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;
    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        bench_die("out of memory");
    return s;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: tls_source [options] HOST:PORT\n"
            "  -s S       concurrent sessions (default 1)\n"
            "  -m M       messages in total, one per connection (default 1)\n"
            "  -l LEN     message size in bytes (default 4096)\n"
            "  -f FROM    envelope sender       -t TO   envelope recipient\n"
            "  -n N       each message to the next of N recipients: TO's local part\n"
            "             numbered 0 .. N-1 (user@d.test: user0@d.test, user1@d.test, ...)\n"
            "  -S NAME    SNI server name (default bench.test)\n"
            "  -H NAME    EHLO name\n"
            "  -r         resumed handshakes (a priming session gets a ticket first)\n"
            "  -i         implicit TLS (SMTPS: TLS first, then the 220)\n"
            "  -p         plain SMTP, no TLS at all\n"
            "  -V 1.2|1.3 only this TLS version (default: 1.2 to 1.3)\n"
            "  -I K       idle mode: K sessions after STARTTLS+EHLO, held until a signal\n"
            "  -w SEC     give up after SEC seconds without progress (default 60)\n"
            "  -A         acknowledge every segment at once (TCP_QUICKACK): shows what a\n"
            "             server's Nagle + the client's delayed ACKs cost (not a real client)\n"
            "  -q         no progress on stderr\n"
            "  -v         every handshake and session ticket on stderr\n");
    exit(2);
}

static void parse_target(const char *arg)
{
    char host[256];
    const char *colon = strrchr(arg, ':');
    struct addrinfo hints, *res;
    int rc;

    if (colon == NULL || colon == arg || (size_t)(colon - arg) >= sizeof(host))
        bench_die("target must be HOST:PORT: %s", arg);
    memcpy(host, arg, (size_t)(colon - arg));
    host[colon - arg] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0)
        bench_die("%s: %s", arg, gai_strerror(rc));
    memcpy(&opt_addr, res->ai_addr, res->ai_addrlen);
    opt_addrlen = res->ai_addrlen;
    freeaddrinfo(res);
}

/* build_message - headers and lines of x up to exactly len bytes, then "." */
static void build_message(void)
{
    char *hdr =
        xasprintf("From: <%s>\r\nTo: <%s>\r\nSubject: tls_source\r\n\r\n", opt_from, opt_to);
    size_t hlen = strlen(hdr), pos;

    msg_body = malloc(hlen + opt_len + 8);
    if (msg_body == NULL)
        bench_die("out of memory");
    memcpy(msg_body, hdr, hlen);
    pos = hlen;
    while (pos < opt_len || pos == hlen) {
        size_t n = 78;
        if (opt_len > pos && opt_len - pos < n + 2)
            n = opt_len - pos > 2 ? opt_len - pos - 2 : 1;
        memset(msg_body + pos, 'x', n);
        pos += n;
        msg_body[pos++] = '\r';
        msg_body[pos++] = '\n';
    }
    memcpy(msg_body + pos, ".\r\n", 3);
    msg_body_len = pos + 3;
    free(hdr);
}

/* ------------------------------------------------------------------ TLS */

/* new_session - keep the newest session the server issued (a ticket in 1.3) */
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl;
    if (!SSL_SESSION_is_resumable(sess))
        return 0;
    if (opt_verbose)
        fprintf(stderr, "tls_source: the server issued a session (ticket)\n");
    if (latest_session != NULL)
        SSL_SESSION_free(latest_session);
    latest_session = sess;
    return 1; /* we own the reference now */
}

static void tls_init(void)
{
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        bench_die("SSL_CTX_new failed");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_min_proto_version(ctx, opt_tls_version ? opt_tls_version : TLS1_2_VERSION);
    if (opt_tls_version)
        SSL_CTX_set_max_proto_version(ctx, opt_tls_version);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_read_ahead(ctx, 1); /* a record in one read(), not header then body */
    if (opt_resume) {
        SSL_CTX_set_session_cache_mode(ctx,
                                       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, new_session);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
}

static void ssl_errors_to_stderr(void)
{
    unsigned long e;
    char buf[256];
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        fprintf(stderr, "tls_source:   %s\n", buf);
    }
}

/* ------------------------------------------------------------------ sessions */

static void set_events(struct sess *s, uint32_t ev)
{
    bench_epoll_set(ep, s->fd, &s->events, ev, s);
}

static void sess_close(struct sess *s, int ok)
{
    if (s->ssl != NULL) {
        if (ok)
            SSL_shutdown(s->ssl); /* close_notify, not waiting for the peer's */
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    if (s->fd >= 0)
        close(s->fd); /* also removes it from the epoll set */
    s->fd = -1;
    s->events = 0;
    s->in_use = 0;
    if (s->phase == PH_IDLE)
        idle_open--;
    else
        inflight--;
    finished++;
    if (!ok)
        failed++;
}

__attribute__((format(printf, 2, 3))) static void sess_fail(struct sess *s, const char *fmt, ...)
{
    static const char *step_names[] = {"greeting",       "EHLO",        "STARTTLS",
                                       "EHLO after TLS", "MAIL",        "RCPT",
                                       "DATA",           "end of data", "QUIT"};
    if (errors_shown < MAX_ERRORS_SHOWN) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "tls_source: session failed at %s: ", step_names[s->step]);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        ssl_errors_to_stderr();
        if (++errors_shown == MAX_ERRORS_SHOWN)
            fprintf(stderr, "tls_source: (further failures not shown)\n");
    }
    ERR_clear_error();
    sess_close(s, 0);
}

static void sess_start(struct sess *s)
{
    int one = 1;
    memset(s, 0, sizeof(*s));
    s->in_use = 1;
    started++;
    inflight++;
    s->fd = socket(opt_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        bench_die("socket: %s", strerror(errno));
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    s->phase = PH_CONNECT;
    s->step = ST_GREET;
    if (connect(s->fd, (struct sockaddr *)&opt_addr, opt_addrlen) < 0 && errno != EINPROGRESS) {
        sess_fail(s, "connect: %s", strerror(errno));
        return;
    }
    set_events(s, EPOLLOUT);
}

static void send_cmd(struct sess *s, const char *text, size_t len, enum step next)
{
    s->out = text;
    s->outlen = len;
    s->step = next;
    s->phase = PH_WRITE;
}

#define SEND(s, str, next) send_cmd((s), (str), strlen(str), (next))

static void tls_begin(struct sess *s)
{
    s->ssl = SSL_new(ctx);
    if (s->ssl == NULL || !SSL_set_fd(s->ssl, s->fd))
        bench_die("SSL_new failed");
    SSL_set_tlsext_host_name(s->ssl, opt_sni);
    if (opt_resume && latest_session != NULL) {
        /* a copy, as if loaded from a cache: a connection that used a
         * session may mark it non-resumable when it ends */
        SSL_SESSION *copy = SSL_SESSION_dup(latest_session);
        if (copy == NULL || !SSL_set_session(s->ssl, copy))
            bench_die("SSL_set_session failed");
        SSL_SESSION_free(copy);
    }
    SSL_set_connect_state(s->ssl);
    s->phase = PH_HANDSHAKE;
}

/* after_ehlo - the session is ready for mail */
static void after_ehlo(struct sess *s)
{
    if (run_kind == RUN_PRIME) {
        SEND(s, cmd_quit, ST_QUIT);
    } else if (run_kind == RUN_IDLE) {
        s->phase = PH_IDLE;
        inflight--;
        idle_open++;
    } else {
        SEND(s, cmd_mail, ST_MAIL);
    }
}

/* rcpt_cmd - the RCPT command of the next message */
static const char *rcpt_cmd(void)
{
    if (cmd_rcpts == NULL)
        return cmd_rcpt;
    return cmd_rcpts[next_rcpt++ % opt_rcpts];
}

/* on_reply - a complete reply: check it, go on; 0 to go on, -1 if s is closed */
static int on_reply(struct sess *s, int code, const char *last_line)
{
    static const int expect[] = {2, 2, 2, 2, 2, 2, 3, 2, 2};
    if (code / 100 != expect[s->step]) {
        sess_fail(s, "%s", last_line);
        return -1;
    }
    switch (s->step) {
    case ST_GREET:
        SEND(s, cmd_ehlo, ST_EHLO1);
        break;
    case ST_EHLO1:
        if (opt_tls == TLS_STARTTLS) {
            if (!s->offers_starttls) {
                sess_fail(s, "the server does not offer STARTTLS");
                return -1;
            }
            SEND(s, cmd_starttls, ST_STARTTLS);
        } else {
            after_ehlo(s);
        }
        break;
    case ST_STARTTLS:
        tls_begin(s);
        break;
    case ST_EHLO2:
        after_ehlo(s);
        break;
    case ST_MAIL:
        SEND(s, rcpt_cmd(), ST_RCPT);
        break;
    case ST_RCPT:
        SEND(s, cmd_data, ST_DATA);
        break;
    case ST_DATA:
        send_cmd(s, msg_body, msg_body_len, ST_DOT);
        break;
    case ST_DOT:
        delivered++;
        SEND(s, cmd_quit, ST_QUIT);
        break;
    case ST_QUIT:
        sess_close(s, 1);
        return -1;
    }
    return 0;
}

/* parse_reply - drop complete lines; 1 and *code when the last line of a
 * reply came, 0 for more, -1 on garbage or data after the reply */
static int parse_reply(struct sess *s, int *code, char *last, size_t lastsz)
{
    char *p = s->in, *end = s->in + s->inlen, *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        size_t len = (size_t)(nl - p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (len < 3 || p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '9' || p[2] < '0' ||
            p[2] > '9' || (len > 3 && p[3] != ' ' && p[3] != '-'))
            return -1;
        if (s->step == ST_EHLO1 && len >= 12 && strncasecmp(p + 4, "STARTTLS", 8) == 0)
            s->offers_starttls = 1;
        if (len == 3 || p[3] == ' ') {
            *code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
            snprintf(last, lastsz, "%.*s", (int)len, p);
            if (nl + 1 != end)
                return -1; /* nothing may follow: no pipelining here */
            s->inlen = 0;
            return 1;
        }
        p = nl + 1;
    }
    s->inlen = (size_t)(end - p);
    memmove(s->in, p, s->inlen);
    return 0;
}

/* drive - advance s as far as it goes without blocking */
static void drive(struct sess *s)
{
    for (;;) {
        switch (s->phase) {
        case PH_CONNECT: {
            int err = 0;
            socklen_t elen = sizeof(err);
            getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
            if (err == EINPROGRESS || err == EALREADY)
                return;
            if (err != 0) {
                sess_fail(s, "connect: %s", strerror(err));
                return;
            }
            if (opt_tls == TLS_IMPLICIT) {
                tls_begin(s);
                break;
            }
            s->phase = PH_READ; /* the greeting: no read before it is there */
            set_events(s, EPOLLIN);
            return;
        }
        case PH_HANDSHAKE: {
            int r = SSL_do_handshake(s->ssl);
            if (r != 1) {
                uint32_t w = bench_ssl_want(s->ssl, r);
                if (w == 0) {
                    sess_fail(s, "TLS handshake failed");
                    return;
                }
                set_events(s, w);
                return;
            }
            handshakes++;
            if (tls_name[0] == '\0')
                snprintf(tls_name, sizeof(tls_name), "%s/%s", SSL_get_version(s->ssl),
                         SSL_get_cipher_name(s->ssl));
            if (SSL_session_reused(s->ssl))
                resumed++;
            if (opt_verbose)
                fprintf(stderr, "tls_source: handshake %ld: %s, %s, %s\n", handshakes,
                        SSL_get_version(s->ssl), SSL_get_cipher_name(s->ssl),
                        SSL_session_reused(s->ssl) ? "resumed" : "full");
            if (opt_tls == TLS_IMPLICIT) {
                s->phase = PH_READ; /* the greeting */
            } else {
                SEND(s, cmd_ehlo, ST_EHLO2);
            }
            break;
        }
        case PH_WRITE:
            while (s->outlen > 0) {
                ssize_t n;
                if (s->ssl != NULL) {
                    int r = SSL_write(s->ssl, s->out, (int)s->outlen);
                    if (r <= 0) {
                        uint32_t w = bench_ssl_want(s->ssl, r);
                        if (w == 0) {
                            sess_fail(s, "TLS write failed");
                            return;
                        }
                        set_events(s, w);
                        return;
                    }
                    n = r;
                } else {
                    n = send(s->fd, s->out, s->outlen, MSG_NOSIGNAL);
                    if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR) {
                            set_events(s, EPOLLOUT);
                            return;
                        }
                        sess_fail(s, "write: %s", strerror(errno));
                        return;
                    }
                }
                s->out += n;
                s->outlen -= (size_t)n;
            }
            /* the reply cannot be there yet: wait for it rather than try a
             * read that fails (a syscall per command saved) */
            s->phase = PH_READ;
            set_events(s, EPOLLIN);
            return;
        case PH_READ:
        case PH_IDLE: {
            ssize_t n;
            size_t room = sizeof(s->in) - s->inlen;
            int code, rc;
            char last[512];
            if (opt_quickack) { /* Linux clears it again by itself: set it before each read */
                int one = 1;
                setsockopt(s->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
            }
            if (room == 0) {
                sess_fail(s, "reply line too long");
                return;
            }
            if (s->ssl != NULL) {
                int r = SSL_read(s->ssl, s->in + s->inlen, (int)room);
                if (r <= 0) {
                    uint32_t w = bench_ssl_want(s->ssl, r);
                    if (w == 0) {
                        sess_fail(s, "connection closed (TLS)");
                        return;
                    }
                    set_events(s, w);
                    return;
                }
                n = r;
            } else {
                n = recv(s->fd, s->in + s->inlen, room, 0);
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                    set_events(s, EPOLLIN);
                    return;
                }
                if (n <= 0) {
                    sess_fail(s, "connection closed: %s", n ? strerror(errno) : "EOF");
                    return;
                }
            }
            if (s->phase == PH_IDLE) {
                sess_fail(s, "unexpected data from an idle session");
                return;
            }
            s->inlen += (size_t)n;
            rc = parse_reply(s, &code, last, sizeof(last));
            if (rc < 0) {
                sess_fail(s, "bad reply or data after the reply");
                return;
            }
            if (rc > 0 && on_reply(s, code, last) < 0)
                return;
            break;
        }
        }
    }
}

static void on_signal(int sig)
{
    got_signal = sig;
}

/* run - start sessions up to `concurrency` at a time until `total` started,
 * loop until every one ended (idle: until all are idle, then until a signal) */
static int run(enum kind kind, int concurrency, long total)
{
    struct epoll_event evs[256];
    double last_progress = bench_now();
    long last_finished = -1, last_idle = -1;
    int announced = 0;

    run_kind = kind;
    started = finished = inflight = idle_open = 0;
    nslots = kind == RUN_IDLE ? (int)total : concurrency;
    slots = calloc((size_t)nslots, sizeof(*slots));
    if (slots == NULL)
        bench_die("out of memory");
    for (int i = 0; i < nslots; i++)
        slots[i].fd = -1;

    for (;;) {
        int n;
        /* keep `concurrency` sessions in progress */
        for (int i = 0; i < nslots && inflight < concurrency && started < total; i++)
            if (!slots[i].in_use)
                sess_start(&slots[i]); /* driven when the connect completes */
        if (kind != RUN_IDLE && finished >= total)
            break;
        if (kind == RUN_IDLE && !announced && started >= total && inflight == 0) {
            printf("idle %ld\n", idle_open);
            fflush(stdout);
            if (!opt_quiet)
                fprintf(stderr, "tls_source: %ld idle sessions open (%ld failed)\n", idle_open,
                        failed);
            announced = 1;
        }
        if (got_signal)
            break;
        if (finished != last_finished || idle_open != last_idle) {
            last_finished = finished;
            last_idle = idle_open;
            last_progress = bench_now();
        } else if (!announced && bench_now() - last_progress > opt_timeout) {
            fprintf(stderr,
                    "tls_source: no progress for %d s (started %ld, finished %ld, idle %ld)\n",
                    opt_timeout, started, finished, idle_open);
            return -1;
        }
        n = epoll_wait(ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), 1000);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            bench_die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            struct sess *s = evs[i].data.ptr;
            if (s->in_use)
                drive(s);
        }
    }
    /* only idle mode ends with open sessions: held as asked, no failure */
    for (int i = 0; i < nslots; i++)
        if (slots[i].in_use)
            sess_close(&slots[i], 1);
    free(slots);
    return 0;
}

/* build_rcpts - -n N: the N numbered recipients' RCPT commands */
static void build_rcpts(void)
{
    const char *at = strrchr(opt_to, '@');
    int local = at ? (int)(at - opt_to) : (int)strlen(opt_to);

    cmd_rcpts = calloc((size_t)opt_rcpts, sizeof(*cmd_rcpts));
    if (cmd_rcpts == NULL)
        bench_die("out of memory");
    for (long k = 0; k < opt_rcpts; k++)
        cmd_rcpts[k] = xasprintf("RCPT TO:<%.*s%ld%s>\r\n", local, opt_to, k, at ? at : "");
}

int main(int argc, char **argv)
{
    int c;
    double t0, t1, cpu0;
    struct rlimit rl;
    struct sigaction sa;

    bench_progname = "tls_source";
    while ((c = getopt(argc, argv, "s:m:l:f:t:n:S:H:ripV:I:w:qvA")) != -1) {
        switch (c) {
        case 's':
            opt_sessions = atoi(optarg);
            break;
        case 'm':
            opt_messages = atol(optarg);
            break;
        case 'l':
            opt_len = (size_t)atol(optarg);
            break;
        case 'f':
            opt_from = optarg;
            break;
        case 't':
            opt_to = optarg;
            break;
        case 'n':
            opt_rcpts = atol(optarg);
            break;
        case 'S':
            opt_sni = optarg;
            break;
        case 'H':
            opt_helo = optarg;
            break;
        case 'r':
            opt_resume = 1;
            break;
        case 'i':
            opt_tls = TLS_IMPLICIT;
            break;
        case 'p':
            opt_tls = TLS_NONE;
            break;
        case 'V':
            if (strcmp(optarg, "1.2") == 0)
                opt_tls_version = TLS1_2_VERSION;
            else if (strcmp(optarg, "1.3") == 0)
                opt_tls_version = TLS1_3_VERSION;
            else
                usage();
            break;
        case 'I':
            opt_idle = atol(optarg);
            break;
        case 'w':
            opt_timeout = atoi(optarg);
            break;
        case 'q':
            opt_quiet = 1;
            break;
        case 'v':
            opt_verbose = 1;
            break;
        case 'A':
            opt_quickack = 1;
            break;
        default:
            usage();
        }
    }
    if (optind != argc - 1 || opt_sessions < 1 || opt_messages < 1 || opt_idle < 0 ||
        opt_rcpts < 0 || opt_rcpts > 1000000 || opt_len > 100 * 1024 * 1024 || opt_timeout < 1)
        usage();
    if (opt_tls == TLS_NONE && (opt_resume || opt_tls_version))
        bench_die("-r and -V need TLS");
    parse_target(argv[optind]);

    /* one descriptor per session, plus slack */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    cmd_ehlo = xasprintf("EHLO %s\r\n", opt_helo);
    cmd_mail = xasprintf("MAIL FROM:<%s>\r\n", opt_from);
    cmd_rcpt = xasprintf("RCPT TO:<%s>\r\n", opt_to);
    if (opt_rcpts > 0)
        build_rcpts();
    build_message();
    tls_init();
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        bench_die("epoll_create1: %s", strerror(errno));

    if (opt_resume) {
        if (run(RUN_PRIME, 1, 1) < 0 || failed)
            bench_die("the priming session failed");
        if (latest_session == NULL)
            fprintf(stderr, "tls_source: warning: the server issued no resumable session\n");
        handshakes = resumed = 0;
    }
    if (opt_idle == 0) { /* the time starts now, for a caller timing its own end */
        printf("start\n");
        fflush(stdout);
    }
    cpu0 = bench_cpu_seconds();
    t0 = bench_now();
    if (opt_idle > 0) {
        if (run(RUN_IDLE, opt_sessions, opt_idle) < 0)
            return 1;
    } else if (run(RUN_MAIL, opt_sessions, opt_messages) < 0) {
        return 1;
    }
    t1 = bench_now();
    printf("messages=%ld failed=%ld seconds=%.3f msg_per_s=%.1f handshakes=%ld resumed=%ld "
           "cpu_s=%.3f tls=%s\n",
           delivered, failed, t1 - t0, t1 > t0 ? (double)delivered / (t1 - t0) : 0.0, handshakes,
           resumed, bench_cpu_seconds() - cpu0, tls_name[0] ? tls_name : "none");
    if (latest_session != NULL)
        SSL_SESSION_free(latest_session);
    SSL_CTX_free(ctx);
    if (opt_idle == 0 && delivered < opt_messages)
        return 1; /* interrupted */
    return failed ? 1 : 0;
}
