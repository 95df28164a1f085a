/*
 * fuzz_milter_proto - libFuzzer target for lib/milter_proto: the bytes a
 * (possibly malicious) milter sends.  Byte 0 sets the chunk size the bytes
 * are fed to the reader in (1..256); each packet the reader yields goes
 * through the reply parser, then negotiation and the placement rules.
 * Besides the sanitizers it checks the parser's promises: a parsed reply's
 * strings end inside the packet, a reply code is 4xx/5xx, a header name is
 * not empty, a rejection always has a reason.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "milter_proto.h"

static volatile unsigned fuzz_milter_proto_sink;

/* fuzz_milter_proto_inside - s is NULL or a string ending inside p */
static void fuzz_milter_proto_inside(const struct milter_proto_packet *p, const char *s)
{
    if (s == NULL)
        return;
    if (s < p->data || s >= p->data + p->len)
        abort();
    if (memchr(s, 0, (size_t)(p->data + p->len - s)) == NULL)
        abort();
    fuzz_milter_proto_sink += (unsigned)strlen(s);
}

/* fuzz_milter_proto_check - the promises of one parsed reply */
static void fuzz_milter_proto_check(const struct milter_proto_packet *p,
                                    const struct milter_proto_reply *r)
{
    fuzz_milter_proto_inside(p, r->text);
    fuzz_milter_proto_inside(p, r->value);
    for (int i = 0; i < MILTER_PROTO_STAGES; i++)
        fuzz_milter_proto_inside(p, r->optneg.macros[i]);
    if (r->cmd == SMFIR_REPLYCODE && (r->code < 400 || r->code > 599))
        abort();
    if ((r->cmd == SMFIR_ADDHEADER || r->cmd == SMFIR_CHGHEADER) && r->text[0] == 0)
        abort();
    if (r->body_len > 0 && (r->body < p->data || r->body + r->body_len > p->data + p->len))
        abort();
    for (size_t i = 0; i < r->body_len; i++)
        fuzz_milter_proto_sink += (unsigned char)r->body[i];
}

/* fuzz_milter_proto_rules - negotiation and placement of a parsed reply */
static void fuzz_milter_proto_rules(const struct milter_proto_reply *r)
{
    static const char cmds[] = "ABCDEHKLMNOQRTU";
    struct milter_proto_agreed a = {6, MILTER_PROTO_ACTIONS_ALL, 0x1fffff};
    const char *why = NULL;

    if (r->cmd == SMFIC_OPTNEG) {
        if (milter_proto_negotiate(6, MILTER_PROTO_ACTIONS_ALL, 0x1fffff, &r->optneg, &a, &why) <
                0 &&
            why == NULL)
            abort();
    }
    for (size_t i = 0; i < sizeof(cmds) - 1; i++) {
        why = NULL;
        fuzz_milter_proto_sink += (unsigned)milter_proto_step_sent(&a, cmds[i]);
        fuzz_milter_proto_sink += (unsigned)milter_proto_step_replies(&a, cmds[i]);
        if (milter_proto_reply_allowed(&a, cmds[i], r, &why) < 0 && why == NULL)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct milter_proto_reader rd;
    struct milter_proto_packet p;
    struct milter_proto_reply r;
    const char *why;
    size_t chunk, off = 1;
    int rc = 0;

    if (size < 1)
        return 0;
    chunk = (size_t)data[0] + 1;
    milter_proto_reader_init(&rd);
    while (rc >= 0 && off < size) {
        size_t n = size - off < chunk ? size - off : chunk;
        milter_proto_reader_feed(&rd, data + off, n);
        off += n;
        while ((rc = milter_proto_reader_next(&rd, &p, &why)) == 1) {
            if (p.len + 1 > MILTER_PROTO_MAX_PACKET)
                abort();
            why = NULL;
            if (milter_proto_reply_parse(&p, &r, &why) < 0) {
                if (why == NULL)
                    abort();
                continue;
            }
            fuzz_milter_proto_check(&p, &r);
            fuzz_milter_proto_rules(&r);
        }
    }
    milter_proto_reader_free(&rd);
    return 0;
}
