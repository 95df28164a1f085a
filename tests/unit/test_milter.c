/*
 * test_milter - lib/milter.c (the non-blocking client, the chain, export
 * and import, descriptor passing), lib/milter_conf.c and
 * lib/milter_facts.c against fake milters inside the test: each is a
 * listening UNIX socket in a mkdtemp directory whose accepted end the test
 * drives by hand (read a packet, answer), running the client's event loop
 * while it waits, so every byte the client sends is checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "attr.h"
#include "buf.h"
#include "config.h"
#include "log.h"
#include "milter.h"

#define OFFER                                                                                      \
    (SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT | SMFIP_NOBODY | SMFIP_NOHDRS |  \
     SMFIP_NOEOH | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_NR_HDR | SMFIP_NR_CONN | SMFIP_NR_HELO | \
     SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_EOH |                \
     SMFIP_NR_BODY | SMFIP_SKIP | SMFIP_HDR_LEADSPC)

static struct event_base *base;
static char dir[40];
static char logpath[128];

/* ---- the fake milter ---- */

struct fake {
    char path[100];
    int lfd; /* listening */
    int fd;  /* the accepted conversation */
    struct milter_proto_reader in;
    char cmd; /* the last packet read */
    buf_t data;
};

static int fake_count;

/* fake_listen - a listening socket at a fresh path */
static void fake_listen(struct fake *f)
{
    struct sockaddr_un sun;

    memset(f, 0, sizeof(*f));
    snprintf(f->path, sizeof(f->path), "%s/m%d", dir, fake_count++);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->path);
    f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(listen(f->lfd, 8), 0);
    f->fd = -1;
    milter_proto_reader_init(&f->in);
    buf_init(&f->data);
}

static void fake_free(struct fake *f)
{
    if (f->fd >= 0)
        close(f->fd);
    if (f->lfd >= 0)
        close(f->lfd);
    unlink(f->path);
    milter_proto_reader_free(&f->in);
    buf_free(&f->data);
}

/* pump - run the client's loop once without blocking */
static void pump(void)
{
    event_base_loop(base, EVLOOP_NONBLOCK);
}

/* fake_accept - take the client's connection (connect on a UNIX socket
 * completes at once, so it is pending) */
static void fake_accept(struct fake *f)
{
    f->fd = accept(f->lfd, NULL, NULL);
    assert_true(f->fd >= 0);
}

/* fake_read - the next packet from the client (running its loop while
 * waiting); 0 when none came within ms milliseconds, -1 at end of file */
static int fake_read_within(struct fake *f, int ms)
{
    struct timespec start, now;
    struct milter_proto_packet p;
    const char *why;

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct pollfd pfd = {f->fd, POLLIN, 0};
        int rc = milter_proto_reader_next(&f->in, &p, &why);
        assert_true(rc >= 0);
        if (rc == 1) {
            f->cmd = p.cmd;
            buf_reset(&f->data);
            buf_append(&f->data, p.data, p.len);
            return 1;
        }
        pump();
        if (poll(&pfd, 1, 5) == 1) {
            char chunk[4096];
            ssize_t n = read(f->fd, chunk, sizeof(chunk));
            if (n <= 0)
                return -1;
            milter_proto_reader_feed(&f->in, chunk, (size_t)n);
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 > ms)
            return 0;
    }
}

/* fake_expect - the next packet must be cmd */
static void fake_expect(struct fake *f, char cmd)
{
    assert_int_equal(fake_read_within(f, 5000), 1);
    assert_int_equal(f->cmd, cmd);
}

/* fake_send - one packet to the client */
static void fake_send(struct fake *f, char cmd, const void *data, size_t len)
{
    buf_t out = BUF_INIT;

    milter_proto_encode(&out, cmd, data, len);
    assert_int_equal(write(f->fd, out.data, out.len), (ssize_t)out.len);
    buf_free(&out);
}

/* fake_send_str - a reply whose data is one NUL-terminated string */
static void fake_send_str(struct fake *f, char cmd, const char *s)
{
    fake_send(f, cmd, s, strlen(s) + 1);
}

static void put_u32(buf_t *b, uint32_t v)
{
    unsigned char p[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    buf_append(b, p, 4);
}

static uint32_t get_u32(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* fake_negotiate - read OPTNEG and answer version, actions, protocol and
 * an optional macro list for one stage (stage < 0: none) */
static void fake_negotiate(struct fake *f, uint32_t version, uint32_t actions, uint32_t protocol,
                           int stage, const char *macros)
{
    buf_t ans = BUF_INIT;

    fake_accept(f);
    fake_expect(f, SMFIC_OPTNEG);
    put_u32(&ans, version);
    put_u32(&ans, actions);
    put_u32(&ans, protocol);
    if (stage >= 0) {
        put_u32(&ans, (uint32_t)stage);
        buf_append(&ans, macros, strlen(macros) + 1);
    }
    fake_send(f, SMFIC_OPTNEG, ans.data, ans.len);
    buf_free(&ans);
}

/* ---- the client side ---- */

struct done {
    int called;
    enum milter_outcome outcome;
    char reply[512];
    size_t mod_count;
    char mod_cmds[32];
    char mod_text[1024]; /* "cmd:index:name:value|..." */
};

static void on_done(void *arg, struct milter *m, const struct milter_result *r)
{
    struct done *d = arg;
    size_t used = 0;

    (void)m;
    d->called++;
    d->outcome = r->outcome;
    snprintf(d->reply, sizeof(d->reply), "%s", buf_cstr(&r->reply));
    d->mod_count = r->mod_count;
    memset(d->mod_cmds, 0, sizeof(d->mod_cmds));
    d->mod_text[0] = 0;
    for (size_t i = 0; i < r->mod_count && i < sizeof(d->mod_cmds) - 1; i++) {
        const struct milter_mod *mod = &r->mods[i];
        int n;
        d->mod_cmds[i] = mod->cmd;
        n = snprintf(d->mod_text + used, sizeof(d->mod_text) - used, "%c:%u:%s:%s:%s|", mod->cmd,
                     mod->index, mod->name ? mod->name : "-", mod->value ? mod->value : "-",
                     buf_cstr(&mod->body));
        assert_true(n > 0 && (size_t)n < sizeof(d->mod_text) - used);
        used += (size_t)n;
    }
}

static void on_chain_done(void *arg, struct milter_chain *c, const struct milter_result *r)
{
    (void)c;
    on_done(arg, NULL, r);
}

/* wait_done - run the loop until d is called (at most ms) */
static void wait_done(struct done *d, int ms)
{
    struct timespec start, now;

    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!d->called) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(1000);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 > ms)
            fail_msg("no callback within %d ms", ms);
    }
}

/* settle - run the loop for about ms */
static void settle(int ms)
{
    for (int i = 0; i < ms; i++) {
        pump();
        usleep(1000);
    }
}

/* the log: read the file the test logs to */
static int log_has(const char *needle)
{
    FILE *fp = fopen(logpath, "r");
    char line[2048];
    int found = 0;

    if (fp == NULL)
        return 0;
    while (!found && fgets(line, sizeof(line), fp) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(fp);
    return found;
}

static void spec_init(struct milter_spec *s, const char *path)
{
    buf_t name = BUF_INIT;

    memset(s, 0, sizeof(*s));
    buf_printf(&name, "unix:%s", path);
    s->name = buf_steal(&name);
    s->family = AF_UNIX;
    s->path = xstrdup(path);
    s->default_action = MILTER_DEFAULT_TEMPFAIL;
    s->connect_timeout = 5;
    s->command_timeout = 5;
    s->content_timeout = 5;
    s->version = 6;
}

/* a conversation with one fake milter, negotiated */
struct conv {
    struct fake f;
    struct milter_spec spec;
    struct milter_facts facts;
    struct milter *m;
};

/* conv_init - the fake and the spec (the test may change it), no
 * conversation yet */
static void conv_init(struct conv *c)
{
    fake_listen(&c->f);
    spec_init(&c->spec, c->f.path);
    milter_facts_init(&c->facts);
    c->m = NULL;
}

/* conv_negotiate - open; the milter answers version, actions, protocol
 * and an optional macro list for one stage; the open ends with outcome */
static void conv_negotiate(struct conv *c, uint32_t version, uint32_t actions, uint32_t protocol,
                           int stage, const char *macros, enum milter_outcome outcome)
{
    struct done d = {0};

    c->m = milter_open(base, &c->spec, "test", milter_facts_macro, &c->facts, on_done, &d);
    assert_int_equal(d.called, 0);
    fake_negotiate(&c->f, version, actions, protocol, stage, macros);
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, outcome);
    assert_int_equal(milter_failed(c->m), outcome == MILTER_FAILED);
}

/* conv_start - open and negotiate with every action */
static void conv_start(struct conv *c, uint32_t protocol, int stage, const char *macros)
{
    conv_negotiate(c, 6, MILTER_PROTO_ACTIONS_ALL, protocol, stage, macros, MILTER_CONTINUE);
}

static void conv_close(struct conv *c);

/* conv_quit - close with QUIT, which must be the next packet the milter
 * sees, and free */
static void conv_quit(struct conv *c)
{
    milter_close(c->m);
    fake_expect(&c->f, SMFIC_QUIT);
    c->m = NULL;
    conv_close(c);
}

static void conv_open(struct conv *c, uint32_t protocol, int stage, const char *macros)
{
    conv_init(c);
    conv_start(c, protocol, stage, macros);
}

static void conv_close(struct conv *c)
{
    milter_close(c->m);
    fake_free(&c->f);
    milter_spec_free(&c->spec);
    milter_facts_free(&c->facts);
}

/* command - run cmd on c; the fake sees it (when expect), answers with
 * reply (cmd, text) unless reply_cmd is 0 */
static void command(struct conv *c, int stage, char cmd, const char *data, char reply_cmd,
                    const char *reply_text, struct done *d)
{
    memset(d, 0, sizeof(*d));
    milter_command(c->m, stage, cmd, data, data ? strlen(data) + 1 : 0, on_done, d);
    assert_int_equal(d->called, 0);
    fake_expect(&c->f, cmd);
    if (reply_cmd == SMFIR_REPLYCODE)
        fake_send_str(&c->f, reply_cmd, reply_text);
    else if (reply_cmd != 0)
        fake_send(&c->f, reply_cmd, NULL, 0);
    wait_done(d, 5000);
}

/* ---- negotiation ---- */

static void test_open_offers_everything_and_agrees(void **state)
{
    struct fake f;
    struct milter_spec spec;
    struct done d = {0};
    struct milter *m;

    (void)state;
    fake_listen(&f);
    spec_init(&spec, f.path);
    m = milter_open(base, &spec, "test", NULL, NULL, on_done, &d);
    fake_accept(&f);
    fake_expect(&f, SMFIC_OPTNEG);
    assert_int_equal(f.data.len, 12);
    assert_int_equal(get_u32(f.data.data), 6);
    assert_int_equal(get_u32(f.data.data + 4), MILTER_PROTO_ACTIONS_ALL);
    assert_int_equal(get_u32(f.data.data + 8), OFFER);
    {
        buf_t ans = BUF_INIT;
        put_u32(&ans, 6);
        put_u32(&ans, SMFIF_ADDHDRS | SMFIF_CHGFROM);
        put_u32(&ans, SMFIP_NOHELO | SMFIP_NR_RCPT);
        fake_send(&f, SMFIC_OPTNEG, ans.data, ans.len);
        buf_free(&ans);
    }
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    assert_int_equal(milter_agreed(m)->version, 6);
    assert_int_equal(milter_agreed(m)->actions, SMFIF_ADDHDRS | SMFIF_CHGFROM);
    assert_int_equal(milter_agreed(m)->protocol, SMFIP_NOHELO | SMFIP_NR_RCPT);
    assert_string_equal(milter_spec_of(m)->name, spec.name);
    milter_close(m);
    fake_expect(&f, SMFIC_QUIT);
    fake_free(&f);
    milter_spec_free(&spec);
}

static void test_open_masks_flags_beyond_the_offer(void **state)
{
    struct conv c;

    (void)state;
    conv_open(&c, SMFIP_NR_CONN | SMFIP_RCPT_REJ | SMFIP_MDS_1M, -1, NULL);
    assert_int_equal(milter_agreed(c.m)->protocol, SMFIP_NR_CONN);
    assert_true(log_has("ignoring protocol flags 0x20000800 that were not offered"));
    conv_close(&c);
}

static void test_open_version_2_milter_gets_no_data_nor_unknown(void **state)
{
    struct conv c;
    struct done d = {0};

    (void)state;
    conv_init(&c);
    conv_negotiate(&c, 2, SMFIF_ADDHDRS, 0, -1, NULL, MILTER_CONTINUE);
    assert_int_equal(milter_agreed(c.m)->version, 2);
    milter_command(c.m, SMFIM_DATA, SMFIC_DATA, NULL, 0, on_done, &d);
    assert_int_equal(d.called, 0);
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    memset(&d, 0, sizeof(d));
    milter_command(c.m, MILTER_STAGE_UNKNOWN, SMFIC_UNKNOWN, "XYZZY", 6, on_done, &d);
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    /* neither was sent: the next packet is the quit */
    conv_quit(&c);
}

static void test_open_refused_connect_fails_with_log(void **state)
{
    struct milter_spec spec;
    struct sockaddr_un sun;
    struct done d = {0};
    struct milter *m;
    char path[100], line[512];
    int fd;

    (void)state;
    /* a bound socket nobody listens on refuses */
    snprintf(path, sizeof(path), "%s/refuse", dir);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    spec_init(&spec, path);
    m = milter_open(base, &spec, "test", NULL, NULL, on_done, &d);
    assert_int_equal(d.called, 0);
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_FAILED);
    assert_true(milter_failed(m));
    snprintf(line, sizeof(line), "warning: milter unix:%s: connect to unix:%s: Connection refused",
             path, path);
    assert_true(log_has(line));
    /* a later command fails at once, from the loop */
    memset(&d, 0, sizeof(d));
    milter_command(m, SMFIM_HELO, SMFIC_HELO, "x", 2, on_done, &d);
    assert_int_equal(d.called, 0);
    wait_done(&d, 100);
    assert_int_equal(d.outcome, MILTER_FAILED);
    milter_close(m);
    close(fd);
    unlink(path);
    milter_spec_free(&spec);
}

static void test_open_bad_version_is_a_protocol_error(void **state)
{
    struct conv c;

    (void)state;
    conv_init(&c);
    c.spec.version = 4;
    conv_negotiate(&c, 6, 0, 0, -1, NULL, MILTER_FAILED);
    assert_true(log_has("protocol error: milter protocol version not in the range offered"));
    conv_close(&c);
}

static void test_open_times_out_without_an_answer(void **state)
{
    struct fake f;
    struct milter_spec spec;
    struct done d = {0};
    struct milter *m;

    (void)state;
    fake_listen(&f);
    spec_init(&spec, f.path);
    spec.connect_timeout = 1;
    m = milter_open(base, &spec, "test", NULL, NULL, on_done, &d);
    fake_accept(&f);
    fake_expect(&f, SMFIC_OPTNEG);
    wait_done(&d, 3000);
    assert_int_equal(d.outcome, MILTER_FAILED);
    assert_true(log_has("timeout after 1s waiting for the reply to option negotiation"));
    milter_close(m);
    fake_free(&f);
    milter_spec_free(&spec);
}

/* ---- macros ---- */

/* macro_pairs - "name=value " for each pair of the SMFIC_MACRO in f */
static void macro_pairs(const struct fake *f, char for_cmd, buf_t *out)
{
    const char *p = f->data.data, *end = f->data.data + f->data.len;

    assert_int_equal(f->cmd, SMFIC_MACRO);
    assert_int_equal(p[0], for_cmd);
    for (p++; p < end;) {
        const char *name = p, *value = p + strlen(p) + 1;
        buf_printf(out, "%s=%s ", name, value);
        p = value + strlen(value) + 1;
    }
}

static void test_macros_of_the_spec_list_with_values_only(void **state)
{
    struct conv c;
    struct done d = {0};
    buf_t pairs = BUF_INIT, pkt = BUF_INIT;

    (void)state;
    conv_init(&c);
    c.spec.macros[SMFIM_CONNECT] = xstrdup("j {client_addr} client_name _ {nosuch}");
    milter_facts_set(&c.facts, MILTER_FACT_J, "mx.example");
    milter_facts_set(&c.facts, MILTER_FACT_CLIENT_ADDR, "192.0.2.1");
    milter_facts_set(&c.facts, MILTER_FACT_CLIENT_NAME, "client.example");
    conv_start(&c, 0, -1, NULL);
    milter_proto_connect(&pkt, "client.example", SMFIA_INET, 25, "192.0.2.1");
    milter_command(c.m, SMFIM_CONNECT, SMFIC_CONNECT, pkt.data + 5, pkt.len - 5, on_done, &d);
    fake_expect(&c.f, SMFIC_MACRO);
    macro_pairs(&c.f, SMFIC_CONNECT, &pairs);
    assert_string_equal(buf_cstr(&pairs),
                        "j=mx.example {client_addr}=192.0.2.1 {client_name}=client.example ");
    fake_expect(&c.f, SMFIC_CONNECT);
    assert_memory_equal(c.f.data.data, pkt.data + 5, pkt.len - 5);
    fake_send(&c.f, SMFIR_CONTINUE, NULL, 0);
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    buf_free(&pairs);
    buf_free(&pkt);
    conv_close(&c);
}

static void test_macros_of_the_milter_list_win(void **state)
{
    struct conv c;
    struct done d;
    buf_t pairs = BUF_INIT;

    (void)state;
    conv_init(&c);
    c.spec.macros[SMFIM_HELO] = xstrdup("j");
    c.spec.macros[SMFIM_ENVFROM] = xstrdup("{mail_addr}");
    milter_facts_set(&c.facts, MILTER_FACT_J, "mx.example");
    milter_facts_set(&c.facts, MILTER_FACT_CLIENT_ADDR, "192.0.2.1");
    milter_facts_set(&c.facts, MILTER_FACT_MAIL_ADDR, "a@example.org");
    conv_start(&c, 0, SMFIM_HELO, "{client_addr}");
    memset(&d, 0, sizeof(d));
    milter_command(c.m, SMFIM_HELO, SMFIC_HELO, "client.example", 15, on_done, &d);
    fake_expect(&c.f, SMFIC_MACRO);
    macro_pairs(&c.f, SMFIC_HELO, &pairs);
    assert_string_equal(buf_cstr(&pairs), "{client_addr}=192.0.2.1 ");
    fake_expect(&c.f, SMFIC_HELO);
    fake_send(&c.f, SMFIR_CONTINUE, NULL, 0);
    wait_done(&d, 5000);
    /* a stage the milter did not name keeps the spec's list */
    buf_reset(&pairs);
    memset(&d, 0, sizeof(d));
    milter_command(c.m, SMFIM_ENVFROM, SMFIC_MAIL, "<a@example.org>", 16, on_done, &d);
    fake_expect(&c.f, SMFIC_MACRO);
    macro_pairs(&c.f, SMFIC_MAIL, &pairs);
    assert_string_equal(buf_cstr(&pairs), "{mail_addr}=a@example.org ");
    fake_expect(&c.f, SMFIC_MAIL);
    fake_send(&c.f, SMFIR_CONTINUE, NULL, 0);
    wait_done(&d, 5000);
    buf_free(&pairs);
    conv_close(&c);
}

static void test_macros_without_values_send_nothing(void **state)
{
    struct conv c;
    struct done d;

    (void)state;
    conv_open(&c, 0, SMFIM_HELO, "{nosuch} {auth_type}");
    command(&c, SMFIM_HELO, SMFIC_HELO, "client.example", SMFIR_CONTINUE, NULL, &d);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    /* stage -1: no macros at all */
    milter_facts_set(&c.facts, MILTER_FACT_AUTH_TYPE, "PLAIN");
    command(&c, -1, SMFIC_MAIL, "<a@b>", SMFIR_CONTINUE, NULL, &d);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    conv_close(&c);
}

/* ---- steps ---- */

static void test_skipped_step_is_not_sent(void **state)
{
    struct conv c;
    struct done d = {0};

    (void)state;
    conv_open(&c, SMFIP_NOHELO, -1, NULL);
    milter_command(c.m, SMFIM_HELO, SMFIC_HELO, "x", 2, on_done, &d);
    assert_int_equal(d.called, 0);
    wait_done(&d, 1000);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    command(&c, SMFIM_ENVFROM, SMFIC_MAIL, "<a@b>", SMFIR_CONTINUE, NULL, &d);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    conv_close(&c);
}

static void test_no_reply_step_completes_once_written(void **state)
{
    struct conv c;
    struct done d;

    (void)state;
    conv_open(&c, SMFIP_NR_RCPT, -1, NULL);
    command(&c, SMFIM_ENVRCPT, SMFIC_RCPT, "<r@b>", 0, NULL, &d);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    command(&c, SMFIM_ENVRCPT, SMFIC_RCPT, "<s@b>", 0, NULL, &d);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    assert_false(milter_failed(c.m));
    conv_close(&c);
}

/* ---- replies ---- */

struct reply_case {
    char cmd;
    const char *text;
    enum milter_outcome outcome;
    const char *reply;
};

static void test_each_reply_kind_maps_to_its_outcome(void **state)
{
    static const struct reply_case cases[] = {
        {SMFIR_CONTINUE, NULL, MILTER_CONTINUE, ""},
        {SMFIR_REJECT, NULL, MILTER_REJECT, "550 5.7.1 Command rejected"},
        {SMFIR_TEMPFAIL, NULL, MILTER_TEMPFAIL, "451 4.7.1 Service unavailable - try again later"},
        {SMFIR_DISCARD, NULL, MILTER_DISCARD, ""},
        {SMFIR_REPLYCODE, "550 5.7.0 nope", MILTER_REJECT, "550 5.7.0 nope"},
        {SMFIR_REPLYCODE, "452 4.2.2 full", MILTER_TEMPFAIL, "452 4.2.2 full"},
        {SMFIR_REPLYCODE, "550-5.7.1 one\r\n550-5.7.1 two\r\n550 5.7.1 three", MILTER_REJECT,
         "550-5.7.1 one\r\n550-5.7.1 two\r\n550 5.7.1 three"},
        {SMFIR_REPLYCODE, "421 4.7.0 going away", MILTER_SHUTDOWN, "421 4.7.0 going away"},
        {SMFIR_SHUTDOWN, NULL, MILTER_SHUTDOWN, "421 4.7.0 Server closing connection"},
        {SMFIR_CONN_FAIL, NULL, MILTER_SHUTDOWN, "421 4.7.0 Server closing connection"},
    };
    struct conv c;
    struct done d;

    (void)state;
    conv_open(&c, 0, -1, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        command(&c, SMFIM_ENVRCPT, SMFIC_RCPT, "<r@b>", cases[i].cmd, cases[i].text, &d);
        assert_int_equal(d.called, 1);
        assert_int_equal(d.outcome, cases[i].outcome);
        assert_string_equal(d.reply, cases[i].reply);
        assert_false(milter_failed(c.m));
    }
    conv_close(&c);
}

static void test_skip_ends_the_body(void **state)
{
    struct conv c;
    struct done d;

    (void)state;
    conv_open(&c, SMFIP_SKIP, -1, NULL);
    command(&c, -1, SMFIC_BODY, "body", SMFIR_SKIP, NULL, &d);
    assert_int_equal(d.outcome, MILTER_SKIP);
    conv_close(&c);
}

static void test_accept_at_connect_is_for_the_session(void **state)
{
    struct conv c;
    struct done d;

    (void)state;
    conv_open(&c, 0, -1, NULL);
    command(&c, SMFIM_CONNECT, SMFIC_CONNECT, "h", SMFIR_ACCEPT, NULL, &d);
    assert_int_equal(d.outcome, MILTER_ACCEPT);
    assert_true(milter_accepted(c.m));
    milter_abort(c.m);
    assert_true(milter_accepted(c.m));
    /* no abort was written: the next packet is the quit */
    conv_quit(&c);
}

static void test_accept_at_mail_lasts_for_the_transaction(void **state)
{
    struct conv c;
    struct done d;

    (void)state;
    conv_open(&c, 0, -1, NULL);
    command(&c, SMFIM_ENVFROM, SMFIC_MAIL, "<a@b>", SMFIR_ACCEPT, NULL, &d);
    assert_int_equal(d.outcome, MILTER_ACCEPT);
    assert_true(milter_accepted(c.m));
    milter_abort(c.m);
    assert_false(milter_accepted(c.m));
    fake_expect(&c.f, SMFIC_ABORT);
    command(&c, SMFIM_ENVFROM, SMFIC_MAIL, "<a@b>", SMFIR_ACCEPT, NULL, &d);
    assert_true(milter_accepted(c.m));
    /* the end-of-message reply ends the transaction too */
    command(&c, SMFIM_EOM, SMFIC_BODYEOB, NULL, SMFIR_CONTINUE, NULL, &d);
    assert_false(milter_accepted(c.m));
    conv_close(&c);
}

/* header_reply - name NUL value NUL, with a leading index when with_index */
static void header_reply(struct fake *f, char cmd, int with_index, uint32_t index, const char *name,
                         const char *value)
{
    buf_t b = BUF_INIT;

    if (with_index)
        put_u32(&b, index);
    buf_append(&b, name, strlen(name) + 1);
    buf_append(&b, value, strlen(value) + 1);
    fake_send(f, cmd, b.data, b.len);
    buf_free(&b);
}

static void test_modifications_collected_at_end_of_message(void **state)
{
    struct conv c;
    struct done d = {0};

    (void)state;
    conv_open(&c, 0, -1, NULL);
    milter_command(c.m, SMFIM_EOM, SMFIC_BODYEOB, NULL, 0, on_done, &d);
    fake_expect(&c.f, SMFIC_BODYEOB);
    header_reply(&c.f, SMFIR_ADDHEADER, 0, 0, "X-A", "1");
    header_reply(&c.f, SMFIR_INSHEADER, 1, 0, "X-B", "2");
    header_reply(&c.f, SMFIR_CHGHEADER, 1, 2, "X-C", "");
    fake_send_str(&c.f, SMFIR_ADDRCPT, "<n@b>");
    fake_send(&c.f, SMFIR_ADDRCPT_PAR, "<p@b>\0NOTIFY=NEVER", 19);
    fake_send_str(&c.f, SMFIR_DELRCPT, "<r@b>");
    fake_send(&c.f, SMFIR_CHGFROM, "<f@b>\0SIZE=1", 13);
    fake_send(&c.f, SMFIR_REPLBODY, "new body", 8);
    fake_send(&c.f, SMFIR_PROGRESS, NULL, 0);
    fake_send_str(&c.f, SMFIR_QUARANTINE, "looks bad");
    fake_send(&c.f, SMFIR_CONTINUE, NULL, 0);
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    assert_int_equal(d.mod_count, 9);
    assert_string_equal(d.mod_cmds, "him+2-ebq");
    assert_string_equal(d.mod_text, "h:0:X-A:1:|i:0:X-B:2:|m:2:X-C::|+:0:<n@b>:-:|"
                                    "2:0:<p@b>:NOTIFY=NEVER:|-:0:<r@b>:-:|e:0:<f@b>:SIZE=1:|"
                                    "b:0:-:-:new body|q:0:looks bad:-:|");
    conv_close(&c);
}

static void test_modification_before_end_of_message_fails(void **state)
{
    struct conv c;
    struct done d = {0};

    (void)state;
    conv_open(&c, 0, -1, NULL);
    milter_command(c.m, SMFIM_ENVRCPT, SMFIC_RCPT, "<r@b>", 6, on_done, &d);
    fake_expect(&c.f, SMFIC_RCPT);
    header_reply(&c.f, SMFIR_ADDHEADER, 0, 0, "X-A", "1");
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_FAILED);
    assert_int_equal(d.mod_count, 0);
    assert_true(milter_failed(c.m));
    assert_true(log_has("protocol error: milter modification outside end of message"));
    conv_close(&c);
}

static void test_modification_not_negotiated_fails(void **state)
{
    struct conv c;
    struct done d = {0};

    (void)state;
    conv_init(&c);
    conv_negotiate(&c, 6, SMFIF_ADDHDRS, 0, -1, NULL, MILTER_CONTINUE);
    milter_command(c.m, SMFIM_EOM, SMFIC_BODYEOB, NULL, 0, on_done, &d);
    fake_expect(&c.f, SMFIC_BODYEOB);
    fake_send_str(&c.f, SMFIR_DELRCPT, "<r@b>");
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_FAILED);
    assert_true(log_has("protocol error: milter modification that was not negotiated"));
    conv_close(&c);
}

static void test_progress_restarts_the_content_timer(void **state)
{
    struct conv c;
    struct done d = {0};

    (void)state;
    conv_init(&c);
    /* 3 x 1.2 s is past the 2 s timeout; each progress restarts it (0.8 s of
     * slack per gap for a loaded machine) */
    c.spec.content_timeout = 2;
    conv_start(&c, 0, -1, NULL);
    milter_command(c.m, SMFIM_EOM, SMFIC_BODYEOB, NULL, 0, on_done, &d);
    fake_expect(&c.f, SMFIC_BODYEOB);
    settle(1200);
    fake_send(&c.f, SMFIR_PROGRESS, NULL, 0);
    settle(1200);
    fake_send(&c.f, SMFIR_PROGRESS, NULL, 0);
    settle(1200);
    assert_int_equal(d.called, 0);
    fake_send(&c.f, SMFIR_ACCEPT, NULL, 0);
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_ACCEPT);
    conv_close(&c);
}

/* ---- failures ---- */

static void test_timeout_fails_the_milter_once(void **state)
{
    struct conv c;
    struct done d = {0};
    struct timespec t0, t1;
    char line[256];

    (void)state;
    conv_init(&c);
    c.spec.command_timeout = 1;
    conv_start(&c, 0, -1, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    milter_command(c.m, SMFIM_ENVRCPT, SMFIC_RCPT, "<r@b>", 6, on_done, &d);
    fake_expect(&c.f, SMFIC_RCPT);
    wait_done(&d, 3000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(d.outcome, MILTER_FAILED);
    assert_true(t1.tv_sec - t0.tv_sec >= 1 ||
                (t1.tv_sec - t0.tv_sec == 0 && t1.tv_nsec - t0.tv_nsec > 900000000));
    snprintf(line, sizeof(line),
             "warning: milter %s: timeout after 1s waiting for the reply to RCPT", c.spec.name);
    assert_true(log_has(line));
    /* the socket was closed */
    assert_int_equal(fake_read_within(&c.f, 1000), -1);
    memset(&d, 0, sizeof(d));
    milter_command(c.m, SMFIM_ENVRCPT, SMFIC_RCPT, "<r@b>", 6, on_done, &d);
    assert_int_equal(d.called, 0);
    wait_done(&d, 100);
    assert_int_equal(d.outcome, MILTER_FAILED);
    conv_close(&c);
}

static void test_eof_mid_command_fails(void **state)
{
    struct conv c;
    struct done d = {0};
    char line[256];

    (void)state;
    conv_open(&c, 0, -1, NULL);
    milter_command(c.m, SMFIM_ENVRCPT, SMFIC_RCPT, "<r@b>", 6, on_done, &d);
    fake_expect(&c.f, SMFIC_RCPT);
    close(c.f.fd);
    c.f.fd = -1;
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_FAILED);
    snprintf(line, sizeof(line),
             "warning: milter %s: connection closed while waiting for the reply to RCPT",
             c.spec.name);
    assert_true(log_has(line));
    conv_close(&c);
}

static void test_idle_eof_and_idle_data_fail(void **state)
{
    struct conv c;
    char line[256];

    (void)state;
    conv_open(&c, 0, -1, NULL);
    close(c.f.fd);
    c.f.fd = -1;
    settle(50);
    assert_true(milter_failed(c.m));
    snprintf(line, sizeof(line), "warning: milter %s: connection closed while idle", c.spec.name);
    assert_true(log_has(line));
    conv_close(&c);

    conv_open(&c, 0, -1, NULL);
    fake_send(&c.f, SMFIR_CONTINUE, NULL, 0);
    settle(50);
    assert_true(milter_failed(c.m));
    assert_true(log_has("protocol error: unexpected data from the milter while idle"));
    conv_close(&c);
}

static void test_garbage_reply_is_a_protocol_error(void **state)
{
    struct conv c;
    struct done d = {0};

    (void)state;
    conv_open(&c, 0, -1, NULL);
    milter_command(c.m, SMFIM_HELO, SMFIC_HELO, "h", 2, on_done, &d);
    fake_expect(&c.f, SMFIC_HELO);
    fake_send_str(&c.f, SMFIR_REPLYCODE, "250 ok");
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_FAILED);
    assert_true(log_has("protocol error: milter reply code not 4xx or 5xx"));
    conv_close(&c);
}

static void test_failure_verdicts(void **state)
{
    struct milter_spec spec;
    struct milter_result r;
    int q;

    (void)state;
    memset(&spec, 0, sizeof(spec));
    milter_result_init(&r);
    spec.default_action = MILTER_DEFAULT_TEMPFAIL;
    milter_failure_verdict(&spec, &r, &q);
    assert_int_equal(r.outcome, MILTER_TEMPFAIL);
    assert_string_equal(buf_cstr(&r.reply), "451 4.7.1 Service unavailable - try again later");
    assert_int_equal(q, 0);
    spec.default_action = MILTER_DEFAULT_REJECT;
    milter_failure_verdict(&spec, &r, &q);
    assert_int_equal(r.outcome, MILTER_REJECT);
    assert_string_equal(buf_cstr(&r.reply), "550 5.7.1 Command rejected");
    spec.default_action = MILTER_DEFAULT_ACCEPT;
    milter_failure_verdict(&spec, &r, &q);
    assert_int_equal(r.outcome, MILTER_ACCEPT);
    assert_int_equal(q, 0);
    spec.default_action = MILTER_DEFAULT_QUARANTINE;
    milter_failure_verdict(&spec, &r, &q);
    assert_int_equal(r.outcome, MILTER_CONTINUE);
    assert_int_equal(q, 1);
    milter_result_free(&r);
}

/* ---- the chain ---- */

#define CHAIN_N 3

struct chain_fixture {
    struct fake f[CHAIN_N];
    struct milter_list list;
    struct milter_chain *c;
};

/* chain_open - CHAIN_N fakes (down[i]: nothing listens there, with
 * action[i]), every live one negotiated with protocol */
static void chain_open(struct chain_fixture *cf, const int *down,
                       const enum milter_default_action *action, struct done *d)
{
    cf->list.count = CHAIN_N;
    cf->list.v = xcalloc(CHAIN_N, sizeof(*cf->list.v));
    for (int i = 0; i < CHAIN_N; i++) {
        fake_listen(&cf->f[i]);
        spec_init(&cf->list.v[i], cf->f[i].path);
        cf->list.v[i].default_action = action ? action[i] : MILTER_DEFAULT_TEMPFAIL;
        if (down && down[i]) {
            close(cf->f[i].lfd);
            cf->f[i].lfd = -1;
            unlink(cf->f[i].path);
        }
    }
    memset(d, 0, sizeof(*d));
    cf->c = milter_chain_open(base, &cf->list, "test", NULL, NULL, on_chain_done, d);
    assert_int_equal(d->called, 0);
    for (int i = 0; i < CHAIN_N; i++)
        if (!(down && down[i]))
            fake_negotiate(&cf->f[i], 6, MILTER_PROTO_ACTIONS_ALL, 0, -1, NULL);
    wait_done(d, 5000);
}

static void chain_close(struct chain_fixture *cf)
{
    milter_chain_close(cf->c);
    for (int i = 0; i < CHAIN_N; i++)
        fake_free(&cf->f[i]);
    milter_list_free(&cf->list);
}

/* chain_step - start a RCPT step */
static void chain_step(struct chain_fixture *cf, struct done *d)
{
    memset(d, 0, sizeof(*d));
    milter_chain_step(cf->c, SMFIM_ENVRCPT, SMFIC_RCPT, "<r@b>", 6, on_chain_done, d);
    assert_int_equal(d->called, 0);
}

static void test_chain_in_order_stops_at_the_first_refusal(void **state)
{
    struct chain_fixture cf;
    struct done d;

    (void)state;
    chain_open(&cf, NULL, NULL, &d);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    assert_int_equal(milter_chain_count(cf.c), CHAIN_N);
    chain_step(&cf, &d);
    fake_expect(&cf.f[0], SMFIC_RCPT);
    /* the second has seen nothing before the first answered */
    assert_int_equal(fake_read_within(&cf.f[1], 50), 0);
    fake_send(&cf.f[0], SMFIR_CONTINUE, NULL, 0);
    fake_expect(&cf.f[1], SMFIC_RCPT);
    fake_send_str(&cf.f[1], SMFIR_REPLYCODE, "554 5.7.1 no thanks");
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_REJECT);
    assert_string_equal(d.reply, "554 5.7.1 no thanks");
    assert_int_equal(fake_read_within(&cf.f[2], 50), 0);
    /* every one continues: CONTINUE */
    chain_step(&cf, &d);
    for (int i = 0; i < CHAIN_N; i++) {
        fake_expect(&cf.f[i], SMFIC_RCPT);
        fake_send(&cf.f[i], SMFIR_CONTINUE, NULL, 0);
    }
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    chain_close(&cf);
}

static void test_chain_skips_an_accepting_milter(void **state)
{
    struct chain_fixture cf;
    struct done d;

    (void)state;
    chain_open(&cf, NULL, NULL, &d);
    chain_step(&cf, &d);
    fake_expect(&cf.f[0], SMFIC_RCPT);
    fake_send(&cf.f[0], SMFIR_ACCEPT, NULL, 0);
    fake_expect(&cf.f[1], SMFIC_RCPT);
    fake_send(&cf.f[1], SMFIR_CONTINUE, NULL, 0);
    fake_expect(&cf.f[2], SMFIC_RCPT);
    fake_send(&cf.f[2], SMFIR_DISCARD, NULL, 0);
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_DISCARD);
    assert_true(milter_accepted(milter_chain_get(cf.c, 0)));
    chain_step(&cf, &d);
    fake_expect(&cf.f[1], SMFIC_RCPT);
    fake_send(&cf.f[1], SMFIR_CONTINUE, NULL, 0);
    fake_expect(&cf.f[2], SMFIC_RCPT);
    fake_send(&cf.f[2], SMFIR_CONTINUE, NULL, 0);
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    assert_int_equal(fake_read_within(&cf.f[0], 50), 0);
    /* a new transaction: the abort reaches every one, the accept ends */
    milter_chain_abort(cf.c);
    for (int i = 0; i < CHAIN_N; i++)
        fake_expect(&cf.f[i], SMFIC_ABORT);
    assert_false(milter_accepted(milter_chain_get(cf.c, 0)));
    chain_close(&cf);
}

static void test_chain_failed_milter_under_each_default_action(void **state)
{
    static const int down[CHAIN_N] = {0, 1, 0};
    struct chain_fixture cf;
    struct done d;
    enum milter_default_action action[CHAIN_N] = {0};

    (void)state;
    /* accept: as if it were not there */
    action[1] = MILTER_DEFAULT_ACCEPT;
    chain_open(&cf, down, action, &d);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    assert_null(milter_chain_quarantine(cf.c));
    chain_step(&cf, &d);
    fake_expect(&cf.f[0], SMFIC_RCPT);
    fake_send(&cf.f[0], SMFIR_CONTINUE, NULL, 0);
    fake_expect(&cf.f[2], SMFIC_RCPT);
    fake_send(&cf.f[2], SMFIR_CONTINUE, NULL, 0);
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    chain_close(&cf);

    /* quarantine: go on, remember it; again after an abort */
    action[1] = MILTER_DEFAULT_QUARANTINE;
    chain_open(&cf, down, action, &d);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    assert_non_null(milter_chain_quarantine(cf.c));
    {
        char want[256];
        snprintf(want, sizeof(want), "milter unix:%s unavailable", cf.f[1].path);
        assert_string_equal(milter_chain_quarantine(cf.c), want);
    }
    milter_chain_abort(cf.c);
    fake_expect(&cf.f[0], SMFIC_ABORT);
    fake_expect(&cf.f[2], SMFIC_ABORT);
    assert_null(milter_chain_quarantine(cf.c));
    chain_step(&cf, &d);
    fake_expect(&cf.f[0], SMFIC_RCPT);
    fake_send(&cf.f[0], SMFIR_CONTINUE, NULL, 0);
    fake_expect(&cf.f[2], SMFIC_RCPT);
    fake_send(&cf.f[2], SMFIR_CONTINUE, NULL, 0);
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    assert_non_null(milter_chain_quarantine(cf.c));
    chain_close(&cf);

    /* tempfail and reject: the chain stops there */
    action[1] = MILTER_DEFAULT_TEMPFAIL;
    chain_open(&cf, down, action, &d);
    assert_int_equal(d.outcome, MILTER_TEMPFAIL);
    assert_string_equal(d.reply, "451 4.7.1 Service unavailable - try again later");
    chain_step(&cf, &d);
    fake_expect(&cf.f[0], SMFIC_RCPT);
    fake_send(&cf.f[0], SMFIR_CONTINUE, NULL, 0);
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_TEMPFAIL);
    assert_int_equal(fake_read_within(&cf.f[2], 50), 0);
    chain_close(&cf);

    action[1] = MILTER_DEFAULT_REJECT;
    chain_open(&cf, down, action, &d);
    assert_int_equal(d.outcome, MILTER_REJECT);
    assert_string_equal(d.reply, "550 5.7.1 Command rejected");
    chain_close(&cf);
}

static void test_chain_milter_failing_mid_step(void **state)
{
    struct chain_fixture cf;
    struct done d;
    enum milter_default_action action[CHAIN_N] = {MILTER_DEFAULT_ACCEPT, MILTER_DEFAULT_REJECT,
                                                  MILTER_DEFAULT_TEMPFAIL};

    (void)state;
    chain_open(&cf, NULL, action, &d);
    chain_step(&cf, &d);
    fake_expect(&cf.f[0], SMFIC_RCPT);
    close(cf.f[0].fd);
    cf.f[0].fd = -1;
    fake_expect(&cf.f[1], SMFIC_RCPT);
    close(cf.f[1].fd);
    cf.f[1].fd = -1;
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_REJECT);
    assert_string_equal(d.reply, "550 5.7.1 Command rejected");
    chain_close(&cf);
}

static void test_chain_without_milters_completes_from_the_loop(void **state)
{
    struct milter_list list = {NULL, 0};
    struct milter_chain *c;
    struct done d = {0};

    (void)state;
    c = milter_chain_open(base, &list, "test", NULL, NULL, on_chain_done, &d);
    assert_int_equal(d.called, 0);
    wait_done(&d, 1000);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    memset(&d, 0, sizeof(d));
    milter_chain_step(c, SMFIM_HELO, SMFIC_HELO, "h", 2, on_chain_done, &d);
    assert_int_equal(d.called, 0);
    wait_done(&d, 1000);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    milter_chain_close(c);
}

/* ---- handing over ---- */

/* handover - export c's conversation into a cleanup.submit message, pass
 * the socket over a socket pair, import it on the other side */
static struct milter *handover(struct conv *c, struct milter_facts *facts)
{
    buf_t msg = BUF_INIT;
    struct attr_msg am;
    int sp[2], fds[MILTER_MAX], fd;
    size_t n = 0;
    struct milter *m2;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    attr_begin(&msg, "cleanup.submit");
    fd = milter_export(c->m, &msg);
    assert_true(fd >= 0);
    milter_facts_export(&c->facts, &msg);
    attr_end(&msg);
    assert_int_equal(milter_fd_send(sp[0], &fd, 1), 0);
    assert_int_equal(write(sp[0], msg.data, msg.len), (ssize_t)msg.len);
    assert_int_equal(milter_fd_recv(sp[1], fds, &n), MILTER_FD_MARK);
    assert_int_equal(n, 1);
    assert_true(fcntl(fds[0], F_GETFD) & FD_CLOEXEC);
    attr_msg_init(&am);
    assert_int_equal(attr_read_fd(sp[1], &am, 5), 0);
    assert_int_equal(milter_import_count(&am), 1);
    milter_facts_init(facts);
    milter_facts_import(facts, &am);
    m2 = milter_import(base, &am, 0, fds[0], "QID", milter_facts_macro, facts);
    assert_non_null(m2);
    attr_msg_free(&am);
    buf_free(&msg);
    close(sp[0]);
    close(sp[1]);
    return m2;
}

static void test_export_fd_pass_import_and_resume(void **state)
{
    struct conv c;
    struct milter_facts facts2;
    struct done d = {0};
    struct milter *m2;
    buf_t pairs = BUF_INIT;

    (void)state;
    conv_open(&c, SMFIP_NOHDRS | SMFIP_NR_EOH, SMFIM_EOM, "i {msg_id}");
    milter_facts_set(&c.facts, MILTER_FACT_QUEUE_ID, "4XyZ");
    m2 = handover(&c, &facts2);
    /* the exporting side does not watch the socket meanwhile */
    assert_string_equal(milter_spec_of(m2)->name, c.spec.name);
    assert_int_equal(milter_spec_of(m2)->default_action, c.spec.default_action);
    assert_int_equal(milter_spec_of(m2)->content_timeout, c.spec.content_timeout);
    assert_memory_equal(milter_agreed(m2), milter_agreed(c.m), sizeof(struct milter_proto_agreed));
    /* a command on the imported side: its macros (the milter's list) and
     * flags (headers skipped, no reply to eoh) */
    milter_command(m2, -1, SMFIC_HEADER, "X\0y", 4, on_done, &d);
    wait_done(&d, 1000);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    memset(&d, 0, sizeof(d));
    milter_command(m2, SMFIM_EOM, SMFIC_BODYEOB, NULL, 0, on_done, &d);
    fake_expect(&c.f, SMFIC_MACRO);
    macro_pairs(&c.f, SMFIC_BODYEOB, &pairs);
    assert_string_equal(buf_cstr(&pairs), "i=4XyZ ");
    fake_expect(&c.f, SMFIC_BODYEOB);
    header_reply(&c.f, SMFIR_ADDHEADER, 0, 0, "X-Checked", "yes");
    fake_send(&c.f, SMFIR_CONTINUE, NULL, 0);
    wait_done(&d, 5000);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    assert_int_equal(d.mod_count, 1);
    milter_close_silent(m2);
    milter_facts_free(&facts2);
    /* back on the first side: the next transaction works */
    milter_resume(c.m, 0);
    assert_false(milter_failed(c.m));
    command(&c, SMFIM_ENVFROM, SMFIC_MAIL, "<a@b>", SMFIR_CONTINUE, NULL, &d);
    assert_int_equal(d.outcome, MILTER_CONTINUE);
    /* and an idle EOF is seen again */
    close(c.f.fd);
    c.f.fd = -1;
    settle(50);
    assert_true(milter_failed(c.m));
    buf_free(&pairs);
    conv_close(&c);
}

static void test_resume_after_a_failure_in_cleanup(void **state)
{
    struct conv c;
    struct milter_facts facts2;
    struct done d;
    struct milter *m2;

    (void)state;
    conv_open(&c, 0, -1, NULL);
    m2 = handover(&c, &facts2);
    milter_close_silent(m2);
    milter_facts_free(&facts2);
    milter_resume(c.m, 1);
    assert_true(milter_failed(c.m));
    memset(&d, 0, sizeof(d));
    milter_command(c.m, SMFIM_ENVFROM, SMFIC_MAIL, "<a@b>", 6, on_done, &d);
    wait_done(&d, 100);
    assert_int_equal(d.outcome, MILTER_FAILED);
    conv_close(&c);
}

static void test_export_refused_when_failed_or_accepted(void **state)
{
    struct conv c;
    struct done d;
    buf_t msg = BUF_INIT;

    (void)state;
    conv_open(&c, 0, -1, NULL);
    command(&c, SMFIM_ENVFROM, SMFIC_MAIL, "<a@b>", SMFIR_ACCEPT, NULL, &d);
    attr_begin(&msg, "cleanup.submit");
    assert_int_equal(milter_export(c.m, &msg), -1);
    milter_abort(c.m);
    fake_expect(&c.f, SMFIC_ABORT);
    close(c.f.fd);
    c.f.fd = -1;
    settle(50);
    assert_int_equal(milter_export(c.m, &msg), -1);
    attr_end(&msg);
    {
        struct attr_msg am;
        size_t used;
        attr_msg_init(&am);
        assert_int_equal(attr_decode(msg.data, msg.len, &used, &am), 1);
        assert_int_equal(milter_import_count(&am), 0);
        attr_msg_free(&am);
    }
    buf_free(&msg);
    conv_close(&c);
}

/* import_one - milter_import of a message whose one "milter" attribute is
 * rec (len bytes); the descriptor given is closed either way */
static struct milter *import_one(const char *rec, size_t len, int *fd_out)
{
    buf_t msg = BUF_INIT;
    struct attr_msg am;
    struct milter *m;
    size_t used;
    int sp[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    close(sp[1]);
    attr_begin(&msg, "cleanup.submit");
    attr_add(&msg, "milter", rec, len);
    attr_end(&msg);
    attr_msg_init(&am);
    assert_int_equal(attr_decode(msg.data, msg.len, &used, &am), 1);
    m = milter_import(base, &am, 0, sp[0], "QID", NULL, NULL);
    *fd_out = sp[0];
    attr_msg_free(&am);
    buf_free(&msg);
    return m;
}

/* record - a conversation record with one attribute changed (value NULL:
 * left out) */
static void record(buf_t *rec, const char *change, const char *value)
{
    static const char *const fields[][2] = {
        {"name", "unix:/x"},
        {"family", "1"},
        {"path", "/x"},
        {"port", "0"},
        {"default_action", "0"},
        {"connect_timeout", "30"},
        {"command_timeout", "30"},
        {"content_timeout", "300"},
        {"version", "6"},
        {"agreed_version", "6"},
        {"agreed_actions", "1"},
        {"agreed_protocol", "0"},
        {"macros_eom", "i"},
    };

    buf_reset(rec);
    attr_begin(rec, "milter.conversation");
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *v = fields[i][1];
        if (change != NULL && strcmp(change, fields[i][0]) == 0)
            v = value;
        if (v != NULL)
            attr_add_str(rec, fields[i][0], v);
    }
    attr_end(rec);
}

static void test_import_refuses_malformed_records(void **state)
{
    static const char *const bad[][2] = {
        {"name", NULL},
        {"name", ""},
        {"family", "99"},
        {"path", NULL},
        {"port", "70000"},
        {"default_action", "7"},
        {"connect_timeout", "0"},
        {"content_timeout", "-1"},
        {"version", "7"},
        {"agreed_version", "1"},
        {"agreed_actions", "4096"},
        {"agreed_protocol", "2048"},
        {"macros_eom", "i\n{x}"},
        {"command_timeout", "abc"},
    };
    buf_t rec = BUF_INIT;
    struct milter *m;
    int fd;

    (void)state;
    record(&rec, NULL, NULL);
    m = import_one(rec.data, rec.len, &fd);
    assert_non_null(m);
    assert_int_equal(milter_spec_of(m)->family, AF_UNIX);
    assert_string_equal(milter_spec_of(m)->path, "/x");
    assert_string_equal(milter_spec_of(m)->macros[SMFIM_EOM], "i");
    milter_close_silent(m);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        record(&rec, bad[i][0], bad[i][1]);
        m = import_one(rec.data, rec.len, &fd);
        if (m != NULL)
            fail_msg("accepted a bad %s", bad[i][0]);
        assert_int_equal(fcntl(fd, F_GETFD), -1);
    }
    /* not an attribute message, another protocol, trailing bytes */
    m = import_one("garbage", 7, &fd);
    assert_null(m);
    buf_reset(&rec);
    attr_begin(&rec, "other");
    attr_add_str(&rec, "name", "x");
    attr_end(&rec);
    assert_null(import_one(rec.data, rec.len, &fd));
    record(&rec, NULL, NULL);
    buf_putc(&rec, 0);
    assert_null(import_one(rec.data, rec.len, &fd));
    buf_free(&rec);
}

static void test_fd_recv_plain_byte_and_end_of_file(void **state)
{
    int sp[2], fds[MILTER_MAX];
    size_t n = 99;

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    assert_int_equal(write(sp[0], "\0", 1), 1);
    assert_int_equal(milter_fd_recv(sp[1], fds, &n), 0);
    assert_int_equal(n, 0);
    /* the mark without descriptors (a session whose milters all failed) */
    assert_int_equal(milter_fd_send(sp[0], NULL, 0), 0);
    assert_int_equal(milter_fd_recv(sp[1], fds, &n), MILTER_FD_MARK);
    assert_int_equal(n, 0);
    fcntl(sp[1], F_SETFL, O_NONBLOCK);
    assert_int_equal(milter_fd_recv(sp[1], fds, &n), -1);
    assert_int_equal(errno, EAGAIN);
    close(sp[0]);
    assert_int_equal(milter_fd_recv(sp[1], fds, &n), -1);
    assert_int_equal(errno, ECONNRESET);
    close(sp[1]);
}

static void test_fd_send_passes_several(void **state)
{
    int sp[2], pipes[3][2], fds[MILTER_MAX], send_fds[3];
    size_t n;

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pipe(pipes[i]), 0);
        send_fds[i] = pipes[i][1];
    }
    assert_int_equal(milter_fd_send(sp[0], send_fds, 3), 0);
    assert_int_equal(milter_fd_recv(sp[1], fds, &n), MILTER_FD_MARK);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) {
        char ch = 0;
        assert_int_equal(write(fds[i], &"abc"[i], 1), 1);
        assert_int_equal(read(pipes[i][0], &ch, 1), 1);
        assert_int_equal(ch, "abc"[i]);
        close(fds[i]);
        close(pipes[i][0]);
        close(pipes[i][1]);
    }
    assert_int_equal(milter_fd_send(sp[0], send_fds, MILTER_MAX + 1), -1);
    close(sp[0]);
    close(sp[1]);
}

/* ---- facts ---- */

static void test_facts_lookup_with_and_without_braces(void **state)
{
    struct milter_facts f;

    (void)state;
    milter_facts_init(&f);
    milter_facts_set(&f, MILTER_FACT_CLIENT_ADDR, "192.0.2.1");
    milter_facts_set(&f, MILTER_FACT_QUEUE_ID, "ABC");
    milter_facts_set(&f, MILTER_FACT_UNDERSCORE, "c [192.0.2.1]");
    milter_facts_set(&f, MILTER_FACT_MSG_ID, "<1@x>");
    assert_string_equal(milter_facts_macro(&f, "{client_addr}"), "192.0.2.1");
    assert_string_equal(milter_facts_macro(&f, "client_addr"), "192.0.2.1");
    assert_string_equal(milter_facts_macro(&f, "i"), "ABC");
    assert_string_equal(milter_facts_macro(&f, "{i}"), "ABC");
    assert_string_equal(milter_facts_macro(&f, "_"), "c [192.0.2.1]");
    assert_string_equal(milter_facts_macro(&f, "{msg_id}"), "<1@x>");
    assert_null(milter_facts_macro(&f, "{client_name}"));
    assert_null(milter_facts_macro(&f, "{nosuch}"));
    assert_null(milter_facts_macro(&f, "{client_addr"));
    milter_facts_set(&f, MILTER_FACT_CLIENT_ADDR, NULL);
    assert_null(milter_facts_macro(&f, "client_addr"));
    milter_facts_free(&f);
}

static void test_facts_export_import(void **state)
{
    static const char *const names[MILTER_FACT_COUNT] = {
        "j",           "{daemon_name}", "{daemon_addr}", "v",           "_",
        "client_addr", "client_name",   "client_port",   "client_ptr",  "if_name",
        "if_addr",     "tls_version",   "cipher",        "cipher_bits", "cert_subject",
        "cert_issuer", "auth_type",     "auth_authen",   "auth_ssf",    "auth_author",
        "i",           "mail_mailer",   "mail_host",     "mail_addr",   "rcpt_mailer",
        "rcpt_host",   "rcpt_addr",     "msg_id",
    };
    struct milter_facts f, g;
    buf_t msg = BUF_INIT;
    struct attr_msg am;
    size_t used;

    (void)state;
    milter_facts_init(&f);
    milter_facts_init(&g);
    for (int i = 0; i < MILTER_FACT_COUNT; i++) {
        char v[32];
        snprintf(v, sizeof(v), "v=%d", i);
        milter_facts_set(&f, (enum milter_fact)i, v);
    }
    attr_begin(&msg, "cleanup.submit");
    milter_facts_export(&f, &msg);
    attr_add_str(&msg, "milter_fact", "nosuch=1");
    attr_add_str(&msg, "milter_fact", "noequals");
    attr_end(&msg);
    attr_msg_init(&am);
    assert_int_equal(attr_decode(msg.data, msg.len, &used, &am), 1);
    milter_facts_import(&g, &am);
    for (int i = 0; i < MILTER_FACT_COUNT; i++) {
        char v[32];
        snprintf(v, sizeof(v), "v=%d", i);
        assert_string_equal(milter_facts_macro(&g, names[i]), v);
    }
    attr_msg_free(&am);
    buf_free(&msg);
    milter_facts_free(&f);
    milter_facts_free(&g);
}

/* ---- the lists ---- */

static struct config *list_config(const char *value)
{
    struct config *cfg = config_new_defaults("/nonexistent");
    buf_t err = BUF_INIT;

    assert_int_equal(config_set(cfg, "smtpd_milters", value, "tern.conf:7", &err), 0);
    buf_free(&err);
    return cfg;
}

static void test_list_every_spelling(void **state)
{
    struct config *cfg = list_config("unix:/run/a.sock local:/run/b.sock, inet:127.0.0.1:8891,"
                                     "inet:8892@localhost inet6:[::1]:8893 inet6:8894@::1 "
                                     "inet:[192.0.2.1]:25");
    struct milter_list l;
    buf_t err = BUF_INIT;

    (void)state;
    assert_int_equal(milter_list_load(cfg, "smtpd_milters", &l, &err), 0);
    assert_int_equal(l.count, 7);
    assert_string_equal(l.v[0].name, "unix:/run/a.sock");
    assert_int_equal(l.v[0].family, AF_UNIX);
    assert_string_equal(l.v[0].path, "/run/a.sock");
    assert_string_equal(l.v[1].name, "local:/run/b.sock");
    assert_int_equal(l.v[1].family, AF_UNIX);
    assert_string_equal(l.v[1].path, "/run/b.sock");
    assert_int_equal(l.v[2].family, AF_INET);
    assert_string_equal(l.v[2].host, "127.0.0.1");
    assert_int_equal(l.v[2].port, 8891);
    assert_int_equal(l.v[3].family, AF_INET);
    assert_string_equal(l.v[3].host, "127.0.0.1"); /* "localhost", resolved at load */
    assert_int_equal(l.v[3].port, 8892);
    assert_int_equal(l.v[4].family, AF_INET6);
    assert_string_equal(l.v[4].host, "::1");
    assert_int_equal(l.v[4].port, 8893);
    assert_string_equal(l.v[4].name, "inet6:[::1]:8893");
    assert_int_equal(l.v[5].family, AF_INET6);
    assert_string_equal(l.v[5].host, "::1");
    assert_int_equal(l.v[5].port, 8894);
    assert_string_equal(l.v[6].host, "192.0.2.1");
    assert_int_equal(l.v[6].port, 25);
    milter_list_free(&l);
    config_free(cfg);
    buf_free(&err);
}

static void test_list_defaults_from_the_config(void **state)
{
    struct config *cfg = list_config("unix:/a");
    struct milter_list l;
    buf_t err = BUF_INIT;

    (void)state;
    assert_int_equal(milter_list_load(cfg, "smtpd_milters", &l, &err), 0);
    assert_int_equal(l.v[0].default_action, MILTER_DEFAULT_TEMPFAIL);
    assert_int_equal(l.v[0].version, 6);
    assert_int_equal(l.v[0].connect_timeout, 30);
    assert_int_equal(l.v[0].command_timeout, 30);
    assert_int_equal(l.v[0].content_timeout, 300);
    assert_string_equal(l.v[0].macros[SMFIM_ENVRCPT], "i {rcpt_mailer} {rcpt_host} {rcpt_addr}");
    assert_string_equal(l.v[0].macros[SMFIM_EOM], "i {msg_id}");
    assert_string_equal(l.v[0].macros[SMFIM_EOH], "i");
    assert_string_equal(l.v[0].macros[MILTER_STAGE_UNKNOWN], "");
    milter_list_free(&l);
    config_free(cfg);
    cfg = list_config("unix:/a");
    assert_int_equal(config_set(cfg, "milter_default_action", "quarantine", "x", &err), 0);
    assert_int_equal(config_set(cfg, "milter_protocol", "4", "x", &err), 0);
    assert_int_equal(config_set(cfg, "milter_connect_timeout", "2m", "x", &err), 0);
    assert_int_equal(config_set(cfg, "milter_command_timeout", "7", "x", &err), 0);
    assert_int_equal(config_set(cfg, "milter_content_timeout", "1h", "x", &err), 0);
    assert_int_equal(config_set(cfg, "milter_helo_macros", "{tls_version} _", "x", &err), 0);
    assert_int_equal(milter_list_load(cfg, "smtpd_milters", &l, &err), 0);
    assert_int_equal(l.v[0].default_action, MILTER_DEFAULT_QUARANTINE);
    assert_int_equal(l.v[0].version, 4);
    assert_int_equal(l.v[0].connect_timeout, 120);
    assert_int_equal(l.v[0].command_timeout, 7);
    assert_int_equal(l.v[0].content_timeout, 3600);
    assert_string_equal(l.v[0].macros[SMFIM_HELO], "{tls_version} _");
    milter_list_free(&l);
    config_free(cfg);
    /* an empty list */
    cfg = list_config("");
    assert_int_equal(milter_list_load(cfg, "smtpd_milters", &l, &err), 0);
    assert_int_equal(l.count, 0);
    milter_list_free(&l);
    config_free(cfg);
    buf_free(&err);
}

static void test_list_braces(void **state)
{
    struct config *cfg =
        list_config("{ unix:/a, default_action = accept, command_timeout = 2m, "
                    "connect_timeout=5s, content_timeout = 1h, protocol = 4 }, inet:1.2.3.4:5 "
                    "{inet6:[::1]:99,default_action=reject}{ local:/q }");
    struct milter_list l;
    buf_t err = BUF_INIT;

    (void)state;
    assert_int_equal(milter_list_load(cfg, "smtpd_milters", &l, &err), 0);
    assert_int_equal(l.count, 4);
    assert_string_equal(l.v[0].name, "unix:/a");
    assert_int_equal(l.v[0].default_action, MILTER_DEFAULT_ACCEPT);
    assert_int_equal(l.v[0].command_timeout, 120);
    assert_int_equal(l.v[0].connect_timeout, 5);
    assert_int_equal(l.v[0].content_timeout, 3600);
    assert_int_equal(l.v[0].version, 4);
    assert_string_equal(l.v[1].name, "inet:1.2.3.4:5");
    assert_int_equal(l.v[1].default_action, MILTER_DEFAULT_TEMPFAIL);
    assert_int_equal(l.v[1].version, 6);
    assert_string_equal(l.v[2].name, "inet6:[::1]:99");
    assert_int_equal(l.v[2].default_action, MILTER_DEFAULT_REJECT);
    assert_string_equal(l.v[3].name, "local:/q");
    assert_string_equal(l.v[3].path, "/q");
    milter_list_free(&l);
    config_free(cfg);
    buf_free(&err);
}

static void test_list_errors_name_the_origin_and_item(void **state)
{
    static const char *const cases[][2] = {
        {"bogus:/x", "bogus:/x: unknown socket type"},
        {"unix:", "unix:: socket path empty or too long"},
        {"/run/x.sock", "/run/x.sock: unknown socket type"},
        {"inet:host", "inet:host: no port"},
        {"inet:h:0", "inet:h:0: bad port"},
        {"inet:h:99999", "inet:h:99999: bad port"},
        {"inet:h:x", "inet:h:x: bad port"},
        {"inet:no-such-host.invalid:25", "inet:no-such-host.invalid:25: cannot resolve"},
        {"inet::25", "inet::25: bad host"},
        {"inet:::1:25", "inet:::1:25: bad host"},
        {"inet:25@", "inet:25@: bad host"},
        {"{ unix:/a, nosuch = 1 }", "{ unix:/a, nosuch = 1 }: unknown setting \"nosuch\""},
        {"{ unix:/a, default_action = maybe }", "default_action = maybe: expected tempfail"},
        {"{ unix:/a, command_timeout = 0 }", "bad time value \"0\""},
        {"{ unix:/a, content_timeout = 5x }", "bad time value \"5x\""},
        {"{ unix:/a, protocol = 7 }", "protocol = 7: expected 2 to 6"},
        {"{ unix:/a, protocol }", "\"protocol\": expected name = value"},
        {"{ , default_action = accept }", "braces without a socket"},
        {"{ unix:/a", "{ unix:/a: missing '}'"},
        {"unix:/a }", "}: unexpected '}'"},
    };
    buf_t err = BUF_INIT;
    struct milter_list l;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config *cfg = list_config(cases[i][0]);
        buf_reset(&err);
        assert_int_equal(milter_list_load(cfg, "smtpd_milters", &l, &err), -1);
        assert_int_equal(l.count, 0);
        if (strncmp(buf_cstr(&err), "tern.conf:7: smtpd_milters: ", 28) != 0 ||
            strstr(buf_cstr(&err), cases[i][1]) == NULL)
            fail_msg("%s: got \"%s\"", cases[i][0], buf_cstr(&err));
        config_free(cfg);
    }
    /* a bad default names its own parameter */
    {
        struct config *cfg = list_config("unix:/a");
        assert_int_equal(config_set(cfg, "milter_default_action", "maybe", "x", &err), 0);
        buf_reset(&err);
        assert_int_equal(milter_list_load(cfg, "smtpd_milters", &l, &err), -1);
        assert_non_null(strstr(buf_cstr(&err), "milter_default_action = maybe"));
        config_free(cfg);
    }
    buf_free(&err);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_milter.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(logpath, sizeof(logpath), "%s/log", dir);
    log_init("test_milter", LOG_TARGET_FILE, logpath);
    base = event_base_new();
    return base != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    event_base_free(base);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_offers_everything_and_agrees),
        cmocka_unit_test(test_open_masks_flags_beyond_the_offer),
        cmocka_unit_test(test_open_version_2_milter_gets_no_data_nor_unknown),
        cmocka_unit_test(test_open_refused_connect_fails_with_log),
        cmocka_unit_test(test_open_bad_version_is_a_protocol_error),
        cmocka_unit_test(test_open_times_out_without_an_answer),
        cmocka_unit_test(test_macros_of_the_spec_list_with_values_only),
        cmocka_unit_test(test_macros_of_the_milter_list_win),
        cmocka_unit_test(test_macros_without_values_send_nothing),
        cmocka_unit_test(test_skipped_step_is_not_sent),
        cmocka_unit_test(test_no_reply_step_completes_once_written),
        cmocka_unit_test(test_each_reply_kind_maps_to_its_outcome),
        cmocka_unit_test(test_skip_ends_the_body),
        cmocka_unit_test(test_accept_at_connect_is_for_the_session),
        cmocka_unit_test(test_accept_at_mail_lasts_for_the_transaction),
        cmocka_unit_test(test_modifications_collected_at_end_of_message),
        cmocka_unit_test(test_modification_before_end_of_message_fails),
        cmocka_unit_test(test_modification_not_negotiated_fails),
        cmocka_unit_test(test_progress_restarts_the_content_timer),
        cmocka_unit_test(test_timeout_fails_the_milter_once),
        cmocka_unit_test(test_eof_mid_command_fails),
        cmocka_unit_test(test_idle_eof_and_idle_data_fail),
        cmocka_unit_test(test_garbage_reply_is_a_protocol_error),
        cmocka_unit_test(test_failure_verdicts),
        cmocka_unit_test(test_chain_in_order_stops_at_the_first_refusal),
        cmocka_unit_test(test_chain_skips_an_accepting_milter),
        cmocka_unit_test(test_chain_failed_milter_under_each_default_action),
        cmocka_unit_test(test_chain_milter_failing_mid_step),
        cmocka_unit_test(test_chain_without_milters_completes_from_the_loop),
        cmocka_unit_test(test_export_fd_pass_import_and_resume),
        cmocka_unit_test(test_resume_after_a_failure_in_cleanup),
        cmocka_unit_test(test_export_refused_when_failed_or_accepted),
        cmocka_unit_test(test_import_refuses_malformed_records),
        cmocka_unit_test(test_fd_recv_plain_byte_and_end_of_file),
        cmocka_unit_test(test_fd_send_passes_several),
        cmocka_unit_test(test_facts_lookup_with_and_without_braces),
        cmocka_unit_test(test_facts_export_import),
        cmocka_unit_test(test_list_every_spelling),
        cmocka_unit_test(test_list_defaults_from_the_config),
        cmocka_unit_test(test_list_braces),
        cmocka_unit_test(test_list_errors_name_the_origin_and_item),
    };
    signal(SIGPIPE, SIG_IGN); /* a fake that writes after tern hung up fails its assert */
    return cmocka_run_group_tests_name("milter", tests, setup, teardown);
}
