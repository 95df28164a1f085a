/*
 * milter_proto - the sendmail milter protocol codec (see milter_proto.h).
 *
 * The encoders trust their caller (tern's own data); the reader and the
 * reply parser trust nothing: every length is checked before it is used,
 * every string must end with its NUL inside the packet, and text that can
 * reach an SMTP reply or a header must be free of control characters.
 */
#include "milter_proto.h"

#include <stdint.h>
#include <string.h>

/* put_u32 - append a 4-byte big-endian number */
static void put_u32(buf_t *out, uint32_t v)
{
    unsigned char p[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    buf_append(out, p, 4);
}

/* get_u32 - read a 4-byte big-endian number */
static uint32_t get_u32(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void milter_proto_encode(buf_t *out, char cmd, const void *data, size_t len)
{
    put_u32(out, (uint32_t)(len + 1));
    buf_putc(out, cmd);
    if (len > 0)
        buf_append(out, data, len);
}

/* ---- the reader ---- */

void milter_proto_reader_init(struct milter_proto_reader *r)
{
    buf_init(&r->in);
    r->off = 0;
}

void milter_proto_reader_free(struct milter_proto_reader *r)
{
    buf_free(&r->in);
    r->off = 0;
}

void milter_proto_reader_feed(struct milter_proto_reader *r, const void *data, size_t len)
{
    /* packets handed out are dropped only now, so they stay valid until
     * this call; the buffer holds at most one partial packet plus len */
    buf_consume(&r->in, r->off);
    r->off = 0;
    buf_append(&r->in, data, len);
}

int milter_proto_reader_next(struct milter_proto_reader *r, struct milter_proto_packet *p,
                             const char **why)
{
    size_t have = r->in.len - r->off;
    const char *start;
    uint32_t len;

    if (have < 4)
        return 0;
    start = r->in.data + r->off;
    len = get_u32(start);
    if (len == 0) {
        *why = "milter packet of length 0";
        return -1;
    }
    if (len > MILTER_PROTO_MAX_PACKET) {
        *why = "milter packet longer than the limit";
        return -1;
    }
    if (have - 4 < len)
        return 0;
    p->cmd = start[4];
    p->data = start + 5;
    p->len = len - 1;
    r->off += 4 + (size_t)len;
    return 1;
}

/* ---- MTA -> milter ---- */

/* put_str - append a string with its NUL */
static void put_str(buf_t *out, const char *s)
{
    buf_append(out, s, strlen(s) + 1);
}

/* encode_strings - one packet: cmd then each of strs NUL-terminated */
static void encode_strings(buf_t *out, char cmd, const char *first, const char *const *rest,
                           size_t nrest)
{
    buf_t data = BUF_INIT;

    if (first != NULL)
        put_str(&data, first);
    for (size_t i = 0; i < nrest; i++)
        put_str(&data, rest[i]);
    milter_proto_encode(out, cmd, data.data, data.len);
    buf_free(&data);
}

void milter_proto_optneg(buf_t *out, uint32_t version, uint32_t actions, uint32_t protocol)
{
    buf_t data = BUF_INIT;

    put_u32(&data, version);
    put_u32(&data, actions);
    put_u32(&data, protocol);
    milter_proto_encode(out, SMFIC_OPTNEG, data.data, data.len);
    buf_free(&data);
}

void milter_proto_macros(buf_t *out, char cmd, const char *const *names, const char *const *values,
                         size_t count)
{
    buf_t data = BUF_INIT;

    buf_putc(&data, cmd);
    for (size_t i = 0; i < count; i++) {
        put_str(&data, names[i]);
        put_str(&data, values[i]);
    }
    milter_proto_encode(out, SMFIC_MACRO, data.data, data.len);
    buf_free(&data);
}

void milter_proto_connect(buf_t *out, const char *hostname, char family, uint16_t port,
                          const char *address)
{
    buf_t data = BUF_INIT;

    put_str(&data, hostname);
    buf_putc(&data, family);
    if (family != SMFIA_UNKNOWN) {
        unsigned char p[2] = {(unsigned char)(port >> 8), (unsigned char)port};
        buf_append(&data, p, 2);
        put_str(&data, address);
    }
    milter_proto_encode(out, SMFIC_CONNECT, data.data, data.len);
    buf_free(&data);
}

void milter_proto_helo(buf_t *out, const char *helo)
{
    encode_strings(out, SMFIC_HELO, helo, NULL, 0);
}

void milter_proto_mail(buf_t *out, const char *sender, const char *const *args, size_t nargs)
{
    encode_strings(out, SMFIC_MAIL, sender, args, nargs);
}

void milter_proto_rcpt(buf_t *out, const char *rcpt, const char *const *args, size_t nargs)
{
    encode_strings(out, SMFIC_RCPT, rcpt, args, nargs);
}

void milter_proto_data(buf_t *out)
{
    milter_proto_encode(out, SMFIC_DATA, NULL, 0);
}

void milter_proto_header(buf_t *out, const char *name, const char *value)
{
    const char *v[1] = {value};
    encode_strings(out, SMFIC_HEADER, name, v, 1);
}

void milter_proto_eoh(buf_t *out)
{
    milter_proto_encode(out, SMFIC_EOH, NULL, 0);
}

void milter_proto_body(buf_t *out, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        size_t n = len < MILTER_PROTO_BODY_CHUNK ? len : MILTER_PROTO_BODY_CHUNK;
        milter_proto_encode(out, SMFIC_BODY, p, n);
        p += n;
        len -= n;
    }
}

void milter_proto_body_end(buf_t *out)
{
    milter_proto_encode(out, SMFIC_BODYEOB, NULL, 0);
}

void milter_proto_abort(buf_t *out)
{
    milter_proto_encode(out, SMFIC_ABORT, NULL, 0);
}

void milter_proto_quit(buf_t *out)
{
    milter_proto_encode(out, SMFIC_QUIT, NULL, 0);
}

void milter_proto_quit_new_connection(buf_t *out)
{
    milter_proto_encode(out, SMFIC_QUIT_NC, NULL, 0);
}

void milter_proto_unknown(buf_t *out, const char *command)
{
    encode_strings(out, SMFIC_UNKNOWN, command, NULL, 0);
}

/* ---- milter -> MTA ---- */

/* a cursor over a packet's data */
struct cursor {
    const char *p;
    size_t left;
    const char **why;
};

/* fail - record the reason, return -1 */
static int fail(struct cursor *c, const char *why)
{
    *c->why = why;
    return -1;
}

/* take_u32 - the next 4-byte number */
static int take_u32(struct cursor *c, uint32_t *v)
{
    if (c->left < 4)
        return fail(c, "milter reply too short for a number");
    *v = get_u32(c->p);
    c->p += 4;
    c->left -= 4;
    return 0;
}

/* take_str - the next NUL-terminated string */
static int take_str(struct cursor *c, const char **s)
{
    const char *nul = memchr(c->p, 0, c->left);

    if (nul == NULL)
        return fail(c, "milter reply string without its NUL");
    *s = c->p;
    c->left -= (size_t)(nul - c->p) + 1;
    c->p = nul + 1;
    return 0;
}

/* take_end - no bytes may follow */
static int take_end(struct cursor *c)
{
    return c->left == 0 ? 0 : fail(c, "milter reply with trailing bytes");
}

/* text_clean - no control characters (or DEL) in s */
static int text_clean(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* header_name_ok - RFC 5322 field name: printable, no space, no colon */
static int header_name_ok(const char *s)
{
    if (*s == 0)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || *s == ':')
            return 0;
    return 1;
}

/* header_value_ok - line breaks ("\n" or "\r\n") only as folding, before a
 * space or tab; no other control character but tab */
static int header_value_ok(const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\r' && s[1] == '\n')
            ch = (unsigned char)*++s;
        if (ch == '\n') {
            if (s[1] != ' ' && s[1] != '\t')
                return 0;
        } else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* parse_optneg - version, actions, protocol, then (stage, macro list)* */
static int parse_optneg(struct cursor *c, struct milter_proto_optneg *o)
{
    memset(o, 0, sizeof(*o));
    if (take_u32(c, &o->version) < 0 || take_u32(c, &o->actions) < 0 ||
        take_u32(c, &o->protocol) < 0)
        return -1;
    while (c->left > 0) {
        uint32_t stage;
        const char *list;
        if (take_u32(c, &stage) < 0 || take_str(c, &list) < 0)
            return -1;
        if (stage >= MILTER_PROTO_STAGES)
            return fail(c, "milter asked for macros at an unknown stage");
        if (o->macros[stage] != NULL)
            return fail(c, "milter asked twice for the macros of one stage");
        if (!text_clean(list))
            return fail(c, "milter macro list with control characters");
        o->macros[stage] = list;
    }
    return 0;
}

/* parse_header - [index] name value, for add/ins/chgheader */
static int parse_header(struct cursor *c, struct milter_proto_reply *r, int with_index)
{
    if (with_index) {
        if (take_u32(c, &r->index) < 0)
            return -1;
        if (r->index > INT32_MAX)
            return fail(c, "milter header index out of range");
    }
    if (take_str(c, &r->text) < 0 || take_str(c, &r->value) < 0 || take_end(c) < 0)
        return -1;
    if (!header_name_ok(r->text))
        return fail(c, "milter header name empty or not printable");
    if (!header_value_ok(r->value))
        return fail(c, "milter header value with a bad line break or control character");
    return 0;
}

/* parse_address - an address, then ESMTP arguments when with_args */
static int parse_address(struct cursor *c, struct milter_proto_reply *r, int with_args)
{
    if (take_str(c, &r->text) < 0)
        return -1;
    if (*r->text == 0 || !text_clean(r->text))
        return fail(c, "milter address empty or with control characters");
    if (with_args && c->left > 0) {
        if (take_str(c, &r->value) < 0)
            return -1;
        if (!text_clean(r->value))
            return fail(c, "milter ESMTP arguments with control characters");
        if (*r->value == 0)
            r->value = NULL;
    }
    return take_end(c);
}

/* reply_code - "DDD" with D[0] 4 or 5; -1 otherwise */
static int reply_code(const char *s)
{
    if ((s[0] != '4' && s[0] != '5') || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9')
        return -1;
    return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
}

/* digits - count of 1..max leading digits, 0 when none or too many */
static size_t digits(const char *s, size_t max)
{
    size_t n = 0;

    while (s[n] >= '0' && s[n] <= '9')
        n++;
    return n > max ? 0 : n;
}

/* enhanced_len - length of an enhanced status code "c.sss.ddd" at s whose
 * class is cls, followed by a space or the end of the line; 0 when none */
static size_t enhanced_len(const char *s, size_t n, char cls)
{
    size_t a, b;

    if (n < 5 || s[0] != cls || s[1] != '.')
        return 0;
    a = digits(s + 2, 3);
    if (a == 0 || 2 + a >= n || s[2 + a] != '.')
        return 0;
    b = digits(s + 3 + a, 3);
    if (b == 0 || 3 + a + b > n)
        return 0;
    if (3 + a + b < n && s[3 + a + b] != ' ')
        return 0;
    return 3 + a + b;
}

/* reply_line - check one line of n bytes: the same code as the first
 * line, '-' when more lines follow, ' ' or the end on the last line; a
 * leading enhanced code must have the code's class */
static int reply_line(struct cursor *c, const char *line, size_t n, int last,
                      struct milter_proto_reply *r, int first)
{
    size_t elen;

    if (n < 3 || reply_code(line) < 0)
        return fail(c, "milter reply code not 4xx or 5xx");
    if (first)
        r->code = reply_code(line);
    else if (reply_code(line) != r->code)
        return fail(c, "milter multi-line reply with different codes");
    if (n == 3 ? !last : line[3] != (last ? ' ' : '-'))
        return fail(c, "milter reply line without its separator");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            return fail(c, "milter reply text with control characters");
    if (n <= 4)
        return 0;
    elen = enhanced_len(line + 4, n - 4, line[0]);
    if (elen == 0 && line[4] >= '0' && line[4] <= '9' && line[5] == '.')
        return fail(c, "milter enhanced status code malformed or of another class");
    if (first && elen > 0 && elen < sizeof(r->enhanced)) {
        memcpy(r->enhanced, line + 4, elen);
        r->enhanced[elen] = 0;
    }
    return 0;
}

/* parse_replycode - "550 5.7.1 text", lines joined by "\r\n" */
static int parse_replycode(struct cursor *c, struct milter_proto_reply *r)
{
    const char *line, *end;

    if (take_str(c, &r->text) < 0 || take_end(c) < 0)
        return -1;
    line = r->text;
    for (int first = 1;; first = 0) {
        const char *crlf = strstr(line, "\r\n");
        end = crlf != NULL ? crlf : line + strlen(line);
        if (reply_line(c, line, (size_t)(end - line), crlf == NULL, r, first) < 0)
            return -1;
        if (crlf == NULL)
            return 0;
        line = crlf + 2;
    }
}

/* parse_data - the part of the parse that depends on the command */
static int parse_data(struct cursor *c, char cmd, struct milter_proto_reply *r)
{
    switch (cmd) {
    case SMFIC_OPTNEG:
        return parse_optneg(c, &r->optneg);
    case SMFIR_ACCEPT:
    case SMFIR_CONTINUE:
    case SMFIR_DISCARD:
    case SMFIR_REJECT:
    case SMFIR_TEMPFAIL:
    case SMFIR_PROGRESS:
    case SMFIR_SKIP:
    case SMFIR_CONN_FAIL:
    case SMFIR_SHUTDOWN:
        return take_end(c);
    case SMFIR_REPLYCODE:
        return parse_replycode(c, r);
    case SMFIR_ADDHEADER:
        return parse_header(c, r, 0);
    case SMFIR_INSHEADER:
    case SMFIR_CHGHEADER:
        return parse_header(c, r, 1);
    case SMFIR_DELRCPT:
    case SMFIR_ADDRCPT:
        return parse_address(c, r, 0);
    case SMFIR_ADDRCPT_PAR:
    case SMFIR_CHGFROM:
        return parse_address(c, r, 1);
    case SMFIR_QUARANTINE:
        if (take_str(c, &r->text) < 0 || take_end(c) < 0)
            return -1;
        if (*r->text == 0 || !text_clean(r->text))
            return fail(c, "milter quarantine reason empty or with control characters");
        return 0;
    case SMFIR_REPLBODY:
        r->body = c->p;
        r->body_len = c->left;
        return 0;
    default:
        return fail(c, "milter reply with an unknown command");
    }
}

int milter_proto_reply_parse(const struct milter_proto_packet *p, struct milter_proto_reply *r,
                             const char **why)
{
    struct cursor c = {p->data, p->len, why};

    memset(r, 0, sizeof(*r));
    r->cmd = p->cmd;
    return parse_data(&c, p->cmd, r);
}

/* ---- negotiation ---- */

int milter_proto_negotiate(uint32_t version, uint32_t actions, uint32_t protocol,
                           const struct milter_proto_optneg *answer,
                           struct milter_proto_agreed *agreed, const char **why)
{
    if (answer->version < MILTER_PROTO_VERSION_MIN || answer->version > version) {
        *why = "milter protocol version not in the range offered";
        return -1;
    }
    if ((answer->actions & ~actions) != 0) {
        *why = "milter asked for actions that were not offered";
        return -1;
    }
    if ((answer->protocol & ~protocol) != 0) {
        *why = "milter asked for protocol flags that were not offered";
        return -1;
    }
    agreed->version = answer->version;
    agreed->actions = answer->actions;
    agreed->protocol = answer->protocol;
    if (agreed->version < 4)
        agreed->protocol |= SMFIP_NODATA;
    if (agreed->version < 3)
        agreed->protocol |= SMFIP_NOUNKNOWN;
    return 0;
}

/* a step the milter may leave out or leave unanswered */
struct milter_proto_step {
    char cmd;
    uint32_t not_sent;
    uint32_t no_reply;
};

static const struct milter_proto_step milter_proto_steps[] = {
    {SMFIC_CONNECT, SMFIP_NOCONNECT, SMFIP_NR_CONN}, {SMFIC_HELO, SMFIP_NOHELO, SMFIP_NR_HELO},
    {SMFIC_MAIL, SMFIP_NOMAIL, SMFIP_NR_MAIL},       {SMFIC_RCPT, SMFIP_NORCPT, SMFIP_NR_RCPT},
    {SMFIC_DATA, SMFIP_NODATA, SMFIP_NR_DATA},       {SMFIC_HEADER, SMFIP_NOHDRS, SMFIP_NR_HDR},
    {SMFIC_EOH, SMFIP_NOEOH, SMFIP_NR_EOH},          {SMFIC_BODY, SMFIP_NOBODY, SMFIP_NR_BODY},
    {SMFIC_UNKNOWN, SMFIP_NOUNKNOWN, SMFIP_NR_UNKN},
};

/* step_find - the table entry of cmd, or NULL */
static const struct milter_proto_step *step_find(char cmd)
{
    for (size_t i = 0; i < sizeof(milter_proto_steps) / sizeof(milter_proto_steps[0]); i++)
        if (milter_proto_steps[i].cmd == cmd)
            return &milter_proto_steps[i];
    return NULL;
}

int milter_proto_step_sent(const struct milter_proto_agreed *a, char cmd)
{
    const struct milter_proto_step *s = step_find(cmd);

    return s == NULL || (a->protocol & s->not_sent) == 0;
}

int milter_proto_step_replies(const struct milter_proto_agreed *a, char cmd)
{
    const struct milter_proto_step *s = step_find(cmd);

    if (s != NULL)
        return (a->protocol & s->no_reply) == 0;
    return cmd == SMFIC_OPTNEG || cmd == SMFIC_BODYEOB;
}

/* modification_action - the action a modification reply needs, 0 when r
 * is not a modification */
static uint32_t modification_action(char cmd)
{
    switch (cmd) {
    case SMFIR_ADDHEADER:
        return SMFIF_ADDHDRS;
    case SMFIR_INSHEADER:
    case SMFIR_CHGHEADER:
        return SMFIF_CHGHDRS;
    case SMFIR_ADDRCPT:
        return SMFIF_ADDRCPT;
    case SMFIR_ADDRCPT_PAR:
        return SMFIF_ADDRCPT_PAR;
    case SMFIR_DELRCPT:
        return SMFIF_DELRCPT;
    case SMFIR_CHGFROM:
        return SMFIF_CHGFROM;
    case SMFIR_REPLBODY:
        return SMFIF_CHGBODY;
    case SMFIR_QUARANTINE:
        return SMFIF_QUARANTINE;
    default:
        return 0;
    }
}

int milter_proto_reply_allowed(const struct milter_proto_agreed *a, char cmd,
                               const struct milter_proto_reply *r, const char **why)
{
    uint32_t need = modification_action(r->cmd);

    if ((cmd == SMFIC_OPTNEG) != (r->cmd == SMFIC_OPTNEG)) {
        *why = "milter negotiation answer out of place";
        return -1;
    }
    if (need != 0 || r->cmd == SMFIR_PROGRESS) {
        if (cmd != SMFIC_BODYEOB) {
            *why = "milter modification outside end of message";
            return -1;
        }
        if ((a->actions & need) != need) {
            *why = "milter modification that was not negotiated";
            return -1;
        }
    }
    if (r->cmd == SMFIR_SKIP && (cmd != SMFIC_BODY || (a->protocol & SMFIP_SKIP) == 0)) {
        *why = "milter skip outside the body or not negotiated";
        return -1;
    }
    return 0;
}
