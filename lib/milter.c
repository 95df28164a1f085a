/*
 * milter - one non-blocking milter conversation on libevent, a chain of
 * them, and handing one to another process (see milter.h).
 *
 * A conversation is in one state at a time: CONNECTING (the non-blocking
 * connect), NEGOTIATING (OPTNEG sent, its answer due), IDLE, BUSY (a
 * command being written and, unless the flags say it is not answered, its
 * reply due), EXPORTED (another process has the socket) or DEAD (failed:
 * logged once, socket closed).  Four events: the socket readable (armed
 * whenever the socket is ours and connected, so an idle milter that closes
 * or talks out of turn is noticed), the socket writable (while output is
 * left, or the connect is in progress), the timer of the wait in progress,
 * and "done": a completion is made active from the event loop, so a
 * callback never runs inside the call that started the command.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "attr.h"
#include "log.h"
#include "milter.h"

/* every step-skip and no-reply flag tern honours, and SKIP and leading
 * spaces in headers (not RCPT_REJ nor the larger macro sizes) */
#define MILTER_OFFER_PROTOCOL                                                                      \
    (SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT | SMFIP_NOBODY | SMFIP_NOHDRS |  \
     SMFIP_NOEOH | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_NR_HDR | SMFIP_NR_CONN | SMFIP_NR_HELO | \
     SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_EOH |                \
     SMFIP_NR_BODY | SMFIP_SKIP | SMFIP_HDR_LEADSPC)

#define MILTER_REPLY_REJECT "550 5.7.1 Command rejected"
#define MILTER_REPLY_TEMPFAIL "451 4.7.1 Service unavailable - try again later"
#define MILTER_REPLY_SHUTDOWN "421 4.7.0 Server closing connection"

/* the attribute of an exported conversation, and the protocol name of the
 * attribute message packed in its value */
#define MILTER_EXPORT_ATTR "milter"
#define MILTER_EXPORT_PROTO "milter.conversation"

enum milter_state {
    MILTER_CONNECTING,
    MILTER_NEGOTIATING,
    MILTER_IDLE,
    MILTER_BUSY,
    MILTER_EXPORTED,
    MILTER_DEAD,
};

struct milter {
    struct event_base *base;
    struct milter_spec spec; /* an owned copy */
    char *log_id;
    milter_macro_fn macro;
    void *macro_ctx;
    int fd;
    struct event *ev_read, *ev_write, *ev_timer, *ev_done;
    buf_t out; /* bytes not yet written */
    struct milter_proto_reader in;
    enum milter_state state;
    char cmd;         /* NEGOTIATING / BUSY: the command in progress */
    int awaits_reply; /* BUSY: its reply is due once written */
    struct milter_proto_agreed agreed;
    char *macros[MILTER_PROTO_STAGES + 1]; /* the lists in effect */
    int accepted_session, accepted_txn;
    milter_done_fn done;
    void *done_arg;
    struct milter_result result;
};

static void milter_on_read(evutil_socket_t fd, short what, void *arg);
static void milter_on_write(evutil_socket_t fd, short what, void *arg);
static void milter_on_timeout(evutil_socket_t fd, short what, void *arg);
static void milter_on_done(evutil_socket_t fd, short what, void *arg);

/* ---- results ---- */

void milter_result_init(struct milter_result *r)
{
    memset(r, 0, sizeof(*r));
    r->outcome = MILTER_CONTINUE;
    buf_init(&r->reply);
}

void milter_result_reset(struct milter_result *r)
{
    for (size_t i = 0; i < r->mod_count; i++) {
        free(r->mods[i].name);
        free(r->mods[i].value);
        buf_free(&r->mods[i].body);
    }
    free(r->mods);
    r->mods = NULL;
    r->mod_count = 0;
    r->outcome = MILTER_CONTINUE;
    buf_reset(&r->reply);
}

void milter_result_free(struct milter_result *r)
{
    milter_result_reset(r);
    buf_free(&r->reply);
}

/* milter_result_set - outcome with reply text (NULL: none) */
static void milter_result_set(struct milter_result *r, enum milter_outcome outcome,
                              const char *reply)
{
    r->outcome = outcome;
    buf_set(&r->reply, reply != NULL ? reply : "");
}

void milter_failure_verdict(const struct milter_spec *spec, struct milter_result *r,
                            int *quarantine)
{
    if (quarantine != NULL)
        *quarantine = 0;
    switch (spec->default_action) {
    case MILTER_DEFAULT_ACCEPT:
        milter_result_set(r, MILTER_ACCEPT, NULL);
        break;
    case MILTER_DEFAULT_REJECT:
        milter_result_set(r, MILTER_REJECT, MILTER_REPLY_REJECT);
        break;
    case MILTER_DEFAULT_QUARANTINE:
        milter_result_set(r, MILTER_CONTINUE, NULL);
        if (quarantine != NULL)
            *quarantine = 1;
        break;
    case MILTER_DEFAULT_TEMPFAIL:
    default:
        milter_result_set(r, MILTER_TEMPFAIL, MILTER_REPLY_TEMPFAIL);
        break;
    }
}

/* ---- the conversation's life ---- */

/* milter_step_name - the command as log lines name it */
static const char *milter_step_name(char cmd)
{
    switch (cmd) {
    case SMFIC_OPTNEG:
        return "option negotiation";
    case SMFIC_CONNECT:
        return "CONNECT";
    case SMFIC_HELO:
        return "HELO";
    case SMFIC_MAIL:
        return "MAIL";
    case SMFIC_RCPT:
        return "RCPT";
    case SMFIC_DATA:
        return "DATA";
    case SMFIC_HEADER:
        return "header";
    case SMFIC_EOH:
        return "end of header";
    case SMFIC_BODY:
        return "body";
    case SMFIC_BODYEOB:
        return "end of message";
    case SMFIC_UNKNOWN:
        return "unknown command";
    case SMFIC_ABORT:
        return "abort";
    case SMFIC_QUIT:
        return "quit";
    default:
        return "command";
    }
}

/* milter_new - a conversation without a socket yet */
static struct milter *milter_new(struct event_base *base, const struct milter_spec *spec,
                                 const char *log_id, milter_macro_fn macro, void *macro_ctx)
{
    struct milter *m = xcalloc(1, sizeof(*m));

    m->base = base;
    milter_spec_copy(&m->spec, spec);
    m->log_id = xstrdup(log_id != NULL ? log_id : "");
    m->macro = macro;
    m->macro_ctx = macro_ctx;
    m->fd = -1;
    buf_init(&m->out);
    milter_proto_reader_init(&m->in);
    milter_result_init(&m->result);
    m->ev_timer = event_new(base, -1, 0, milter_on_timeout, m);
    m->ev_done = event_new(base, -1, 0, milter_on_done, m);
    if (m->ev_timer == NULL || m->ev_done == NULL)
        log_panic("milter: out of memory for events");
    return m;
}

/* milter_attach - take fd (non-blocking) and make its events */
static void milter_attach(struct milter *m, int fd)
{
    m->fd = fd;
    m->ev_read = event_new(m->base, fd, EV_READ | EV_PERSIST, milter_on_read, m);
    m->ev_write = event_new(m->base, fd, EV_WRITE, milter_on_write, m);
    if (m->ev_read == NULL || m->ev_write == NULL)
        log_panic("milter: out of memory for events");
}

/* milter_detach - drop the socket and its events */
static void milter_detach(struct milter *m)
{
    if (m->ev_read != NULL)
        event_free(m->ev_read);
    if (m->ev_write != NULL)
        event_free(m->ev_write);
    m->ev_read = m->ev_write = NULL;
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
    event_del(m->ev_timer);
    buf_reset(&m->out);
    milter_proto_reader_free(&m->in);
    milter_proto_reader_init(&m->in);
}

/* milter_timer_start - wait at most seconds */
static void milter_timer_start(struct milter *m, long long seconds)
{
    struct timeval tv = {(time_t)seconds, 0};

    event_add(m->ev_timer, &tv);
}

/* milter_complete - the command in progress ends with outcome; its
 * callback runs from the loop */
static void milter_complete(struct milter *m, enum milter_outcome outcome)
{
    m->result.outcome = outcome;
    if (m->state == MILTER_BUSY || m->state == MILTER_NEGOTIATING)
        m->state = MILTER_IDLE;
    event_del(m->ev_timer);
    if (m->done != NULL)
        event_active(m->ev_done, EV_TIMEOUT, 0);
}

/* milter_result_take - move r's contents out, leaving it empty: a
 * callback gets the moved copy, so it may start the next command */
static struct milter_result milter_result_take(struct milter_result *r)
{
    struct milter_result out = *r;

    milter_result_init(r);
    return out;
}

static void milter_on_done(evutil_socket_t fd, short what, void *arg)
{
    struct milter *m = arg;
    milter_done_fn done = m->done;
    struct milter_result r = milter_result_take(&m->result);

    (void)fd;
    (void)what;
    m->done = NULL;
    if (done != NULL)
        done(m->done_arg, m, &r);
    milter_result_free(&r);
}

/* milter_fail - log why once, close the socket; a command in progress
 * completes with FAILED */
static void milter_fail(struct milter *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void milter_fail(struct milter *m, const char *fmt, ...)
{
    int was_waiting =
        m->state == MILTER_CONNECTING || m->state == MILTER_NEGOTIATING || m->state == MILTER_BUSY;
    buf_t why = BUF_INIT;
    va_list ap;

    if (m->state == MILTER_DEAD)
        return;
    va_start(ap, fmt);
    buf_vprintf(&why, fmt, ap);
    va_end(ap);
    log_warn("milter %s: %s", m->spec.name, buf_cstr(&why));
    buf_free(&why);
    milter_detach(m);
    m->state = MILTER_DEAD;
    if (was_waiting) {
        milter_result_reset(&m->result);
        milter_complete(m, MILTER_FAILED);
    }
}

/* milter_waiting - what the conversation waits for, for log lines */
static const char *milter_waiting(const struct milter *m, buf_t *out)
{
    buf_reset(out);
    if (m->state == MILTER_CONNECTING)
        buf_printf(out, "connecting");
    else if (m->state == MILTER_NEGOTIATING || (m->state == MILTER_BUSY && m->awaits_reply))
        buf_printf(out, "waiting for the reply to %s", milter_step_name(m->cmd));
    else if (m->state == MILTER_BUSY)
        buf_printf(out, "sending the %s", milter_step_name(m->cmd));
    else
        buf_printf(out, "idle");
    return buf_cstr(out);
}

/* milter_flush - write what is pending; a command without a reply is
 * done once written */
static void milter_flush(struct milter *m)
{
    while (m->out.len > 0) {
        ssize_t n = send(m->fd, m->out.data, m->out.len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(m->ev_write, NULL);
            return;
        }
        if (n < 0) {
            buf_t where = BUF_INIT;
            milter_fail(m, "write error while %s: %s", milter_waiting(m, &where), strerror(errno));
            buf_free(&where);
            return;
        }
        buf_consume(&m->out, (size_t)n);
    }
    if (m->state == MILTER_BUSY && !m->awaits_reply)
        milter_complete(m, MILTER_CONTINUE);
}

static void milter_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct milter *m = arg;
    long long t = m->spec.command_timeout;
    buf_t where = BUF_INIT;

    (void)fd;
    (void)what;
    if (m->state == MILTER_CONNECTING || m->state == MILTER_NEGOTIATING)
        t = m->spec.connect_timeout;
    else if (m->cmd == SMFIC_BODY || m->cmd == SMFIC_BODYEOB)
        t = m->spec.content_timeout;
    milter_fail(m, "timeout after %llds %s", t, milter_waiting(m, &where));
    buf_free(&where);
}

/* ---- connecting and negotiating ---- */

/* milter_address - the socket address of spec; -1 with why */
static int milter_address(const struct milter_spec *spec, struct sockaddr_storage *ss,
                          socklen_t *len, buf_t *why)
{
    struct addrinfo hints, *res = NULL;
    char port[8];
    int rc;

    memset(ss, 0, sizeof(*ss));
    if (spec->family == AF_UNIX) {
        struct sockaddr_un *sun = (struct sockaddr_un *)ss;
        if (spec->path == NULL || strlen(spec->path) >= sizeof(sun->sun_path)) {
            buf_printf(why, "socket path empty or too long");
            return -1;
        }
        sun->sun_family = AF_UNIX;
        memcpy(sun->sun_path, spec->path, strlen(spec->path) + 1);
        *len = sizeof(*sun);
        return 0;
    }
    /* numeric: milter_list_load resolved any name, so this never blocks */
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = spec->family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_NUMERICHOST;
    snprintf(port, sizeof(port), "%u", spec->port);
    rc = getaddrinfo(spec->host, port, &hints, &res);
    if (rc != 0 || res == NULL || res->ai_addrlen > sizeof(*ss)) {
        buf_printf(why, "cannot resolve %s: %s", spec->host,
                   rc != 0 ? gai_strerror(rc) : "no address");
        if (res != NULL)
            freeaddrinfo(res);
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* milter_negotiate_start - connected: offer the version, actions and flags */
static void milter_negotiate_start(struct milter *m)
{
    m->state = MILTER_NEGOTIATING;
    m->cmd = SMFIC_OPTNEG;
    event_add(m->ev_read, NULL);
    milter_proto_optneg(&m->out, m->spec.version, MILTER_PROTO_ACTIONS_ALL, MILTER_OFFER_PROTOCOL);
    milter_flush(m);
}

/* milter_connect - start the non-blocking connect */
static void milter_connect(struct milter *m)
{
    struct sockaddr_storage ss;
    socklen_t len;
    buf_t why = BUF_INIT;
    int fd;

    if (milter_address(&m->spec, &ss, &len, &why) < 0) {
        milter_fail(m, "connect to %s: %s", m->spec.name, buf_cstr(&why));
        buf_free(&why);
        return;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        milter_fail(m, "connect to %s: socket: %s", m->spec.name, strerror(errno));
        return;
    }
    milter_attach(m, fd);
    if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
        milter_negotiate_start(m);
    } else if (errno == EINPROGRESS) {
        event_add(m->ev_write, NULL);
    } else {
        milter_fail(m, "connect to %s: %s", m->spec.name, strerror(errno));
    }
}

/* milter_connected - the connect in progress finished */
static void milter_connected(struct milter *m)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(m->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        milter_fail(m, "connect to %s: %s", m->spec.name, strerror(err));
        return;
    }
    milter_negotiate_start(m);
}

/* milter_negotiated - the OPTNEG answer: mask off flags that were not
 * offered (logged, as Postfix does), agree, and take the milter's macro
 * lists where it sent them */
static void milter_negotiated(struct milter *m, const struct milter_proto_optneg *answer)
{
    struct milter_proto_optneg a = *answer;
    uint32_t extra = a.protocol & ~(uint32_t)MILTER_OFFER_PROTOCOL;
    const char *why;

    if (extra != 0) {
        log_warn("milter %s: ignoring protocol flags 0x%x that were not offered", m->spec.name,
                 extra);
        a.protocol &= ~extra;
    }
    if (milter_proto_negotiate(m->spec.version, MILTER_PROTO_ACTIONS_ALL, MILTER_OFFER_PROTOCOL, &a,
                               &m->agreed, &why) < 0) {
        milter_fail(m, "protocol error: %s", why);
        return;
    }
    for (size_t i = 0; i <= MILTER_PROTO_STAGES; i++) {
        const char *list =
            i < MILTER_PROTO_STAGES && a.macros[i] != NULL ? a.macros[i] : m->spec.macros[i];
        free(m->macros[i]);
        m->macros[i] = list != NULL ? xstrdup(list) : NULL;
    }
    log_debug("%s: milter %s: version %u actions 0x%x protocol 0x%x", m->log_id, m->spec.name,
              m->agreed.version, m->agreed.actions, m->agreed.protocol);
    milter_complete(m, MILTER_CONTINUE);
}

struct milter *milter_open(struct event_base *base, const struct milter_spec *spec,
                           const char *log_id, milter_macro_fn macro, void *macro_ctx,
                           milter_done_fn done, void *arg)
{
    struct milter *m = milter_new(base, spec, log_id, macro, macro_ctx);

    m->done = done;
    m->done_arg = arg;
    m->state = MILTER_CONNECTING;
    m->cmd = SMFIC_OPTNEG;
    milter_timer_start(m, spec->connect_timeout);
    milter_connect(m);
    return m;
}

/* ---- replies ---- */

/* milter_is_mod - a modification (or quarantine) of the end of message */
static int milter_is_mod(char cmd)
{
    return strchr("+-2ehimbq", cmd) != NULL && cmd != 0;
}

/* milter_mod_add - keep a modification in the result */
static void milter_mod_add(struct milter *m, const struct milter_proto_reply *r)
{
    struct milter_result *res = &m->result;
    struct milter_mod *mod;

    res->mods = xrealloc(res->mods, (res->mod_count + 1) * sizeof(*res->mods));
    mod = &res->mods[res->mod_count++];
    memset(mod, 0, sizeof(*mod));
    mod->cmd = r->cmd;
    mod->index = r->index;
    mod->name = r->text != NULL ? xstrdup(r->text) : NULL;
    mod->value = r->value != NULL ? xstrdup(r->value) : NULL;
    buf_init(&mod->body);
    if (r->cmd == SMFIR_REPLBODY)
        buf_append(&mod->body, r->body, r->body_len);
}

/* milter_final - the reply that ends the command */
static void milter_final(struct milter *m, const struct milter_proto_reply *r)
{
    struct milter_result *res = &m->result;
    enum milter_outcome outcome = MILTER_CONTINUE;

    switch (r->cmd) {
    case SMFIR_ACCEPT:
        outcome = MILTER_ACCEPT;
        if (m->cmd == SMFIC_CONNECT || m->cmd == SMFIC_HELO)
            m->accepted_session = 1;
        else
            m->accepted_txn = 1;
        break;
    case SMFIR_REJECT:
        milter_result_set(res, outcome = MILTER_REJECT, MILTER_REPLY_REJECT);
        break;
    case SMFIR_TEMPFAIL:
        milter_result_set(res, outcome = MILTER_TEMPFAIL, MILTER_REPLY_TEMPFAIL);
        break;
    case SMFIR_REPLYCODE:
        outcome = r->code == 421  ? MILTER_SHUTDOWN
                  : r->code < 500 ? MILTER_TEMPFAIL
                                  : MILTER_REJECT;
        milter_result_set(res, outcome, r->text);
        break;
    case SMFIR_SHUTDOWN:
    case SMFIR_CONN_FAIL:
        milter_result_set(res, outcome = MILTER_SHUTDOWN, MILTER_REPLY_SHUTDOWN);
        break;
    case SMFIR_DISCARD:
        outcome = MILTER_DISCARD;
        break;
    case SMFIR_SKIP:
        outcome = MILTER_SKIP;
        break;
    default:
        break;
    }
    if (m->cmd == SMFIC_BODYEOB)
        m->accepted_txn = 0;
    milter_complete(m, outcome);
}

/* milter_packet - one packet from the milter while a reply is due */
static void milter_packet(struct milter *m, const struct milter_proto_packet *p)
{
    struct milter_proto_reply r;
    const char *why = NULL;

    if (milter_proto_reply_parse(p, &r, &why) < 0 ||
        milter_proto_reply_allowed(&m->agreed, m->cmd, &r, &why) < 0) {
        milter_fail(m, "protocol error: %s", why);
        return;
    }
    if (m->cmd == SMFIC_OPTNEG)
        milter_negotiated(m, &r.optneg);
    else if (r.cmd == SMFIR_PROGRESS)
        milter_timer_start(m, m->spec.content_timeout);
    else if (milter_is_mod(r.cmd))
        milter_mod_add(m, &r);
    else
        milter_final(m, &r);
}

/* milter_reply_due - a packet from the milter is expected now */
static int milter_reply_due(const struct milter *m)
{
    return m->state == MILTER_NEGOTIATING || (m->state == MILTER_BUSY && m->awaits_reply);
}

static void milter_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct milter *m = arg;
    char chunk[16384];
    struct milter_proto_packet p;
    const char *why = NULL;
    buf_t where = BUF_INIT;
    ssize_t n;
    int rc;

    (void)what;
    n = recv(fd, chunk, sizeof(chunk), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        if (n < 0)
            milter_fail(m, "read error while %s: %s", milter_waiting(m, &where), strerror(errno));
        else
            milter_fail(m, "connection closed while %s", milter_waiting(m, &where));
        buf_free(&where);
        return;
    }
    milter_proto_reader_feed(&m->in, chunk, (size_t)n);
    while (m->state != MILTER_DEAD && (rc = milter_proto_reader_next(&m->in, &p, &why)) != 0) {
        if (rc < 0)
            milter_fail(m, "protocol error: %s", why);
        else if (!milter_reply_due(m))
            milter_fail(m, "protocol error: unexpected data from the milter while %s",
                        milter_waiting(m, &where));
        else
            milter_packet(m, &p);
    }
    buf_free(&where);
}

static void milter_on_write(evutil_socket_t fd, short what, void *arg)
{
    struct milter *m = arg;

    (void)fd;
    (void)what;
    if (m->state == MILTER_CONNECTING)
        milter_connected(m);
    else
        milter_flush(m);
}

/* ---- commands ---- */

/* milter_macro_name - a list's name as sendmail sends it: a long name in
 * braces */
static char *milter_macro_name(const char *word, size_t len)
{
    buf_t b = BUF_INIT;

    if (len > 1 && word[0] != '{')
        buf_printf(&b, "{%.*s}", (int)len, word);
    else
        buf_append(&b, word, len);
    return buf_steal(&b);
}

/* milter_send_macros - SMFIC_MACRO for cmd with the names of stage's list
 * that have a value; nothing when none has */
static void milter_send_macros(struct milter *m, int stage, char cmd)
{
    const char *list, *p;
    char **names;
    const char **values;
    size_t count = 0, cap;

    if (stage < 0 || stage > MILTER_STAGE_UNKNOWN || m->macro == NULL ||
        (list = m->macros[stage]) == NULL)
        return;
    cap = strlen(list) / 2 + 1;
    names = xcalloc(cap, sizeof(*names));
    values = xcalloc(cap, sizeof(*values));
    for (p = list; *(p += strspn(p, " \t,")) != 0 && count < cap;) {
        size_t len = strcspn(p, " \t,");
        names[count] = milter_macro_name(p, len);
        values[count] = m->macro(m->macro_ctx, names[count]);
        if (values[count] != NULL)
            count++;
        else
            free(names[count]);
        p += len;
    }
    if (count > 0)
        milter_proto_macros(&m->out, cmd, (const char *const *)names, values, count);
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    free(values);
}

void milter_command(struct milter *m, int stage, char cmd, const void *data, size_t len,
                    milter_done_fn done, void *arg)
{
    if (m->state != MILTER_IDLE && m->state != MILTER_DEAD)
        log_panic("milter %s: command while another is in progress or the socket is away",
                  m->spec.name);
    m->done = done;
    m->done_arg = arg;
    milter_result_reset(&m->result);
    if (m->state == MILTER_DEAD) {
        milter_complete(m, MILTER_FAILED);
        return;
    }
    if (!milter_proto_step_sent(&m->agreed, cmd)) {
        milter_complete(m, MILTER_CONTINUE);
        return;
    }
    milter_send_macros(m, stage, cmd);
    milter_proto_encode(&m->out, cmd, data, len);
    m->state = MILTER_BUSY;
    m->cmd = cmd;
    m->awaits_reply = milter_proto_step_replies(&m->agreed, cmd);
    milter_timer_start(m, cmd == SMFIC_BODY || cmd == SMFIC_BODYEOB ? m->spec.content_timeout
                                                                    : m->spec.command_timeout);
    milter_flush(m);
}

void milter_abort(struct milter *m)
{
    m->accepted_txn = 0;
    if (m->state != MILTER_IDLE || m->accepted_session)
        return;
    milter_proto_abort(&m->out);
    milter_flush(m);
}

/* milter_free - release everything (the socket too) */
static void milter_free(struct milter *m)
{
    milter_detach(m);
    event_free(m->ev_timer);
    event_free(m->ev_done);
    milter_proto_reader_free(&m->in);
    buf_free(&m->out);
    milter_result_free(&m->result);
    milter_spec_free(&m->spec);
    for (size_t i = 0; i <= MILTER_PROTO_STAGES; i++)
        free(m->macros[i]);
    free(m->log_id);
    free(m);
}

void milter_close(struct milter *m)
{
    if (m == NULL)
        return;
    if (m->state == MILTER_IDLE || m->state == MILTER_BUSY) {
        /* best effort: whatever the socket takes now */
        milter_proto_quit(&m->out);
        (void)!send(m->fd, m->out.data, m->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    milter_free(m);
}

void milter_close_silent(struct milter *m)
{
    if (m != NULL)
        milter_free(m);
}

int milter_failed(const struct milter *m)
{
    return m->state == MILTER_DEAD;
}

int milter_accepted(const struct milter *m)
{
    return m->accepted_session || m->accepted_txn;
}

const struct milter_spec *milter_spec_of(const struct milter *m)
{
    return &m->spec;
}

const struct milter_proto_agreed *milter_agreed(const struct milter *m)
{
    return &m->agreed;
}

/* ---- export and import ---- */

static const char *const milter_macro_attrs[MILTER_PROTO_STAGES + 1] = {
    "macros_connect", "macros_helo", "macros_mail", "macros_rcpt",
    "macros_data",    "macros_eom",  "macros_eoh",  "macros_unknown",
};

/* milter_export_record - the state as one attribute message */
static void milter_export_record(const struct milter *m, buf_t *rec)
{
    const struct milter_spec *s = &m->spec;

    attr_begin(rec, MILTER_EXPORT_PROTO);
    attr_add_str(rec, "name", s->name);
    attr_add_int(rec, "family", s->family);
    if (s->family == AF_UNIX)
        attr_add_str(rec, "path", s->path);
    else
        attr_add_str(rec, "host", s->host);
    attr_add_int(rec, "port", s->port);
    attr_add_int(rec, "default_action", s->default_action);
    attr_add_int(rec, "connect_timeout", s->connect_timeout);
    attr_add_int(rec, "command_timeout", s->command_timeout);
    attr_add_int(rec, "content_timeout", s->content_timeout);
    attr_add_int(rec, "version", s->version);
    attr_add_int(rec, "agreed_version", m->agreed.version);
    attr_add_int(rec, "agreed_actions", m->agreed.actions);
    attr_add_int(rec, "agreed_protocol", m->agreed.protocol);
    for (size_t i = 0; i <= MILTER_PROTO_STAGES; i++)
        if (m->macros[i] != NULL)
            attr_add_str(rec, milter_macro_attrs[i], m->macros[i]);
    attr_end(rec);
}

int milter_export(struct milter *m, buf_t *attrs)
{
    buf_t rec = BUF_INIT;

    if (m->state != MILTER_IDLE || milter_accepted(m))
        return -1;
    if (m->out.len > 0) {
        ssize_t n = send(m->fd, m->out.data, m->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            buf_consume(&m->out, (size_t)n);
        if (m->out.len > 0) {
            milter_fail(m, "cannot hand over the socket: output still pending");
            return -1;
        }
    }
    event_del(m->ev_read);
    event_del(m->ev_write);
    event_del(m->ev_timer);
    m->state = MILTER_EXPORTED;
    milter_export_record(m, &rec);
    attr_add(attrs, MILTER_EXPORT_ATTR, rec.data, rec.len);
    buf_free(&rec);
    return m->fd;
}

void milter_resume(struct milter *m, int failed)
{
    if (m->state != MILTER_EXPORTED)
        return;
    m->accepted_txn = 0;
    if (failed) {
        /* cleanup logged the failure */
        milter_detach(m);
        m->state = MILTER_DEAD;
        return;
    }
    m->state = MILTER_IDLE;
    event_add(m->ev_read, NULL);
}

size_t milter_import_count(const struct attr_msg *msg)
{
    size_t n = 0;

    for (size_t i = 0; i < msg->count; i++)
        if (strcmp(msg->v[i].name, MILTER_EXPORT_ATTR) == 0)
            n++;
    return n;
}

/* milter_import_str - a string attribute without NULs or control
 * characters, or NULL */
static const char *milter_import_str(const struct attr_msg *rec, const char *name)
{
    size_t len;
    const char *v = attr_get(rec, name, &len);

    if (v == NULL || strlen(v) != len)
        return NULL;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return NULL;
    return v;
}

/* milter_import_int - a number attribute in [min, max] */
static int milter_import_int(const struct attr_msg *rec, const char *name, long long min,
                             long long max, long long *out)
{
    return attr_get_int(rec, name, min, max, out);
}

/* milter_import_spec - the spec part of a record; -1 when malformed */
static int milter_import_spec(const struct attr_msg *rec, struct milter_spec *s)
{
    const long long day = 86400LL * 365;
    long long family, port, action, version;
    const char *name = milter_import_str(rec, "name");
    const char *where = milter_import_str(rec, "path");

    if (name == NULL || *name == 0 || milter_import_int(rec, "family", 0, 65535, &family) < 0 ||
        (family != AF_UNIX && family != AF_INET && family != AF_INET6) ||
        milter_import_int(rec, "port", 0, 65535, &port) < 0 ||
        milter_import_int(rec, "default_action", MILTER_DEFAULT_TEMPFAIL, MILTER_DEFAULT_QUARANTINE,
                          &action) < 0 ||
        milter_import_int(rec, "connect_timeout", 1, day, &s->connect_timeout) < 0 ||
        milter_import_int(rec, "command_timeout", 1, day, &s->command_timeout) < 0 ||
        milter_import_int(rec, "content_timeout", 1, day, &s->content_timeout) < 0 ||
        milter_import_int(rec, "version", MILTER_PROTO_VERSION_MIN, MILTER_PROTO_VERSION,
                          &version) < 0)
        return -1;
    if (family != AF_UNIX)
        where = milter_import_str(rec, "host");
    if (where == NULL || *where == 0)
        return -1;
    s->name = xstrdup(name);
    s->family = (int)family;
    if (family == AF_UNIX)
        s->path = xstrdup(where);
    else
        s->host = xstrdup(where);
    s->port = (unsigned)port;
    s->default_action = (enum milter_default_action)action;
    s->version = (unsigned)version;
    return 0;
}

/* milter_import_agreed - the negotiated part; -1 when malformed */
static int milter_import_agreed(const struct attr_msg *rec, const struct milter_spec *s,
                                struct milter_proto_agreed *a)
{
    long long version, actions, protocol;

    if (milter_import_int(rec, "agreed_version", MILTER_PROTO_VERSION_MIN, s->version, &version) <
            0 ||
        milter_import_int(rec, "agreed_actions", 0, MILTER_PROTO_ACTIONS_ALL, &actions) < 0 ||
        milter_import_int(rec, "agreed_protocol", 0, UINT32_MAX, &protocol) < 0 ||
        ((uint32_t)protocol & ~(uint32_t)MILTER_OFFER_PROTOCOL) != 0 ||
        ((uint32_t)actions & ~(uint32_t)MILTER_PROTO_ACTIONS_ALL) != 0)
        return -1;
    a->version = (uint32_t)version;
    a->actions = (uint32_t)actions;
    a->protocol = (uint32_t)protocol;
    return 0;
}

/* milter_import_record - the k-th "milter" attribute of msg, decoded */
static int milter_import_record(const struct attr_msg *msg, size_t k, struct attr_msg *rec)
{
    size_t used;

    for (size_t i = 0; i < msg->count; i++) {
        const struct attr *a = &msg->v[i];
        if (strcmp(a->name, MILTER_EXPORT_ATTR) != 0 || k-- > 0)
            continue;
        if (attr_decode(a->value, a->len, &used, rec) != 1 || used != a->len)
            return -1;
        return strcmp(attr_proto(rec), MILTER_EXPORT_PROTO) == 0 ? 0 : -1;
    }
    return -1;
}

struct milter *milter_import(struct event_base *base, const struct attr_msg *msg, size_t k, int fd,
                             const char *log_id, milter_macro_fn macro, void *macro_ctx)
{
    struct attr_msg rec;
    struct milter_spec spec;
    struct milter_proto_agreed agreed;
    struct milter *m = NULL;
    int flags;

    attr_msg_init(&rec);
    memset(&spec, 0, sizeof(spec));
    if (milter_import_record(msg, k, &rec) < 0 || milter_import_spec(&rec, &spec) < 0 ||
        milter_import_agreed(&rec, &spec, &agreed) < 0)
        goto bad;
    for (size_t i = 0; i <= MILTER_PROTO_STAGES; i++) {
        const char *list = milter_import_str(&rec, milter_macro_attrs[i]);
        if (list == NULL && attr_get(&rec, milter_macro_attrs[i], NULL) != NULL)
            goto bad;
        spec.macros[i] = list != NULL ? xstrdup(list) : NULL;
    }
    if (fd < 0 || (flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        goto bad;
    m = milter_new(base, &spec, log_id, macro, macro_ctx);
    m->agreed = agreed;
    for (size_t i = 0; i <= MILTER_PROTO_STAGES; i++)
        m->macros[i] = spec.macros[i] != NULL ? xstrdup(spec.macros[i]) : NULL;
    milter_attach(m, fd);
    m->state = MILTER_IDLE;
    event_add(m->ev_read, NULL);
    fd = -1;
bad:
    if (fd >= 0)
        close(fd);
    milter_spec_free(&spec);
    attr_msg_free(&rec);
    return m;
}

/* ---- passing sockets ---- */

int milter_fd_send(int sock, const int *fds, size_t n)
{
    char mark = MILTER_FD_MARK;
    struct iovec iov = {&mark, 1};
    union {
        char buf[CMSG_SPACE(sizeof(int) * MILTER_MAX)];
        struct cmsghdr align;
    } control;
    struct msghdr msg;
    ssize_t rc;

    if (n > MILTER_MAX) {
        errno = EINVAL;
        return -1;
    }
    memset(&msg, 0, sizeof(msg));
    memset(&control, 0, sizeof(control));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (n > 0) {
        struct cmsghdr *c;
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
        c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
    }
    do
        rc = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (rc < 0 && errno == EINTR);
    return rc == 1 ? 0 : -1;
}

/* milter_fd_take - the descriptors of one SCM_RIGHTS message; -1 (all
 * closed) when there are more than fit */
static int milter_fd_take(struct msghdr *msg, int *fds, size_t *n)
{
    int truncated = (msg->msg_flags & MSG_CTRUNC) != 0;

    *n = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
        size_t count;
        const unsigned char *data = CMSG_DATA(c);
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, data + i * sizeof(int), sizeof(int));
            if (*n < MILTER_MAX)
                fds[(*n)++] = fd;
            else {
                close(fd);
                truncated = 1;
            }
        }
    }
    if (!truncated)
        return 0;
    while (*n > 0)
        close(fds[--*n]);
    errno = EMSGSIZE;
    return -1;
}

int milter_fd_recv(int sock, int *fds, size_t *n)
{
    unsigned char byte;
    struct iovec iov = {&byte, 1};
    union {
        char buf[CMSG_SPACE(sizeof(int) * MILTER_MAX)];
        struct cmsghdr align;
    } control;
    struct msghdr msg;
    ssize_t rc;

    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);
    *n = 0;
    do
        rc = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (rc < 0 && errno == EINTR);
    if (rc == 0)
        errno = ECONNRESET;
    if (rc != 1)
        return -1;
    if (milter_fd_take(&msg, fds, n) < 0)
        return -1;
    if (byte != MILTER_FD_MARK) {
        /* descriptors only ever come with the mark */
        while (*n > 0)
            close(fds[--*n]);
    }
    return byte;
}

/* ---- the chain ---- */

struct milter_chain {
    struct event_base *base;
    struct milter **v;
    size_t count;
    size_t opening; /* conversations whose open has not finished */
    size_t next;    /* the step: the conversation in turn */
    int stage;
    char cmd;
    buf_t data;
    milter_chain_done_fn done;
    void *done_arg;
    struct milter_result result;
    char *quarantine;
    struct event *ev_done;
};

static void milter_chain_on_done(evutil_socket_t fd, short what, void *arg)
{
    struct milter_chain *c = arg;
    milter_chain_done_fn done = c->done;
    struct milter_result r = milter_result_take(&c->result);

    (void)fd;
    (void)what;
    c->done = NULL;
    if (done != NULL)
        done(c->done_arg, c, &r);
    milter_result_free(&r);
}

/* milter_chain_finish - the chain's answer is in c->result: deliver it
 * from the loop */
static void milter_chain_finish(struct milter_chain *c)
{
    if (c->done != NULL)
        event_active(c->ev_done, EV_TIMEOUT, 0);
}

/* milter_chain_failed - apply failed m's default_action: 1 when the chain
 * stops with it (c->result set), 0 when it goes on */
static int milter_chain_failed(struct milter_chain *c, const struct milter *m)
{
    int quarantine;

    milter_failure_verdict(&m->spec, &c->result, &quarantine);
    if (quarantine && c->quarantine == NULL) {
        buf_t why = BUF_INIT;
        buf_printf(&why, "milter %s unavailable", m->spec.name);
        c->quarantine = buf_steal(&why);
    }
    if (c->result.outcome == MILTER_TEMPFAIL || c->result.outcome == MILTER_REJECT)
        return 1;
    milter_result_reset(&c->result);
    return 0;
}

/* milter_chain_opened - every open finished: the failed ones' verdicts */
static void milter_chain_opened(struct milter_chain *c)
{
    milter_result_reset(&c->result);
    for (size_t i = 0; i < c->count; i++)
        if (milter_failed(c->v[i]) && milter_chain_failed(c, c->v[i]))
            break;
    milter_chain_finish(c);
}

static void milter_chain_on_open(void *arg, struct milter *m, const struct milter_result *r)
{
    struct milter_chain *c = arg;

    (void)m;
    (void)r;
    if (--c->opening == 0)
        milter_chain_opened(c);
}

struct milter_chain *milter_chain_open(struct event_base *base, const struct milter_list *specs,
                                       const char *log_id, milter_macro_fn macro, void *macro_ctx,
                                       milter_chain_done_fn done, void *arg)
{
    struct milter_chain *c = xcalloc(1, sizeof(*c));

    c->base = base;
    c->count = specs->count;
    c->v = xcalloc(c->count + 1, sizeof(*c->v));
    c->done = done;
    c->done_arg = arg;
    buf_init(&c->data);
    milter_result_init(&c->result);
    c->ev_done = event_new(base, -1, 0, milter_chain_on_done, c);
    if (c->ev_done == NULL)
        log_panic("milter: out of memory for events");
    c->opening = c->count;
    for (size_t i = 0; i < c->count; i++)
        c->v[i] =
            milter_open(base, &specs->v[i], log_id, macro, macro_ctx, milter_chain_on_open, c);
    if (c->count == 0)
        milter_chain_opened(c);
    return c;
}

static void milter_chain_on_step(void *arg, struct milter *m, const struct milter_result *r);

/* milter_chain_next - the command to the next conversation that takes
 * part; a failed one stands for its default_action; the end: CONTINUE */
static void milter_chain_next(struct milter_chain *c)
{
    for (; c->next < c->count; c->next++) {
        struct milter *m = c->v[c->next];
        if (milter_failed(m)) {
            if (milter_chain_failed(c, m)) {
                milter_chain_finish(c);
                return;
            }
            continue;
        }
        if (milter_accepted(m))
            continue;
        milter_command(m, c->stage, c->cmd, c->data.data, c->data.len, milter_chain_on_step, c);
        return;
    }
    milter_result_reset(&c->result);
    milter_chain_finish(c);
}

static void milter_chain_on_step(void *arg, struct milter *m, const struct milter_result *r)
{
    struct milter_chain *c = arg;

    switch (r->outcome) {
    case MILTER_CONTINUE:
    case MILTER_ACCEPT:
    case MILTER_SKIP:
        break;
    case MILTER_FAILED:
        if (milter_chain_failed(c, m)) {
            milter_chain_finish(c);
            return;
        }
        break;
    default:
        milter_result_set(&c->result, r->outcome, buf_cstr(&r->reply));
        milter_chain_finish(c);
        return;
    }
    c->next++;
    milter_chain_next(c);
}

void milter_chain_step(struct milter_chain *c, int stage, char cmd, const void *data, size_t len,
                       milter_chain_done_fn done, void *arg)
{
    c->done = done;
    c->done_arg = arg;
    c->stage = stage;
    c->cmd = cmd;
    buf_reset(&c->data);
    if (len > 0)
        buf_append(&c->data, data, len);
    c->next = 0;
    milter_result_reset(&c->result);
    milter_chain_next(c);
}

void milter_chain_abort(struct milter_chain *c)
{
    for (size_t i = 0; i < c->count; i++)
        milter_abort(c->v[i]);
    free(c->quarantine);
    c->quarantine = NULL;
}

/* milter_chain_free - release c, closing each conversation with close */
static void milter_chain_free(struct milter_chain *c, void (*close_fn)(struct milter *))
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->count; i++)
        close_fn(c->v[i]);
    free(c->v);
    event_free(c->ev_done);
    buf_free(&c->data);
    milter_result_free(&c->result);
    free(c->quarantine);
    free(c);
}

void milter_chain_close(struct milter_chain *c)
{
    milter_chain_free(c, milter_close);
}

void milter_chain_close_silent(struct milter_chain *c)
{
    milter_chain_free(c, milter_close_silent);
}

size_t milter_chain_count(const struct milter_chain *c)
{
    return c->count;
}

struct milter *milter_chain_get(struct milter_chain *c, size_t i)
{
    return i < c->count ? c->v[i] : NULL;
}

const char *milter_chain_quarantine(const struct milter_chain *c)
{
    return c->quarantine;
}
