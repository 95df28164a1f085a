/*
 * fuzz_cleanup_milter_model - libFuzzer target for cleanup/milter_model.c:
 * the header section of a queued message and the header changes a
 * (possibly malicious) milter asks for at the end of message.
 *
 * Input: a header section up to the first NUL (made into what cleanup
 * queues: CRLF line ends, no empty line, each line a "name:" header or a
 * continuation), then modification records: an op byte (low 2 bits: 0
 * addheader, 1 insheader, 2 chgheader, 3 chgheader with an empty value =
 * delete; bit 2: SMFIP_HDR_LEADSPC; bit 3: a huge index), an index byte,
 * the name up to a NUL and the value up to a NUL.  Each record is encoded
 * as the milter's reply packet and goes through milter_proto_reply_parse
 * first, as in cleanup (a reply the parser refuses fails the milter and
 * changes nothing); what it accepts is applied with
 * cleanup_milter_headers_add / _insert / _change.
 *
 * Besides the sanitizers it checks after every change: the written section
 * has only CRLF line ends (no bare CR or LF, no NUL), no empty line (which
 * would end the header section early), every line is a continuation after
 * a header or a header whose name is printable without white space or a
 * colon; parsing it again gives the same headers; and a value as a milter
 * sees it (cleanup_milter_value_out) comes back unchanged through
 * cleanup_milter_value_in.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cleanup.h"
#include "milter_proto.h"

/* fuzz_model_name_ok - a header name as the section may hold it */
static int fuzz_model_name_ok(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == ':')
            return 0;
    return 1;
}

/* fuzz_model_section - the input's header section as cleanup queues it */
static void fuzz_model_section(const char *data, size_t len, buf_t *out)
{
    const char *p = data, *end = data + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *colon;
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n == 0)
            return; /* the empty line ends the section */
        colon = memchr(p, ':', n);
        if (memchr(p, '\r', n) == NULL &&
            ((out->len > 0 && (p[0] == ' ' || p[0] == '\t')) ||
             (colon != NULL && fuzz_model_name_ok(p, (size_t)(colon - p))))) {
            buf_append(out, p, n);
            buf_puts(out, "\r\n");
        }
        p = nl ? nl + 1 : end;
    }
}

/* fuzz_model_check_text - CRLF only, no empty line, each line a header
 * or a continuation */
static void fuzz_model_check_text(const buf_t *s)
{
    size_t at = 0;

    if (s->len > 0 && (s->len < 2 || memcmp(s->data + s->len - 2, "\r\n", 2) != 0))
        abort();
    while (at < s->len) {
        const char *line = s->data + at;
        const char *crlf = memchr(line, '\r', s->len - at);
        size_t n;
        if (crlf == NULL || crlf + 1 >= s->data + s->len || crlf[1] != '\n')
            abort(); /* a bare CR, or a line without its CRLF */
        n = (size_t)(crlf - line);
        if (n == 0 || memchr(line, '\n', n) != NULL || memchr(line, 0, n) != NULL)
            abort(); /* an empty line, a bare LF, a NUL */
        if (line[0] == ' ' || line[0] == '\t') {
            if (at == 0)
                abort();
        } else {
            const char *colon = memchr(line, ':', n);
            if (colon == NULL || !fuzz_model_name_ok(line, (size_t)(colon - line)))
                abort();
        }
        at += n + 2;
    }
}

/* fuzz_model_check - the promises about h (see the top) */
static void fuzz_model_check(const struct cleanup_milter_headers *h)
{
    struct cleanup_milter_headers again;
    buf_t text = BUF_INIT, seen = BUF_INIT, back = BUF_INIT;

    cleanup_milter_headers_write(h, &text);
    fuzz_model_check_text(&text);
    cleanup_milter_headers_init(&again);
    cleanup_milter_headers_parse(&again, text.data, text.len);
    if (again.count != h->count)
        abort();
    for (size_t i = 0; i < h->count; i++) {
        const char *raw = h->v[i].value;
        if (strcmp(again.v[i].name, h->v[i].name) != 0 || raw == NULL || again.v[i].value == NULL ||
            strcmp(again.v[i].value, raw) != 0)
            abort();
        for (int leadspc = 0; leadspc < 2; leadspc++) {
            if (!leadspc && raw[0] != ' ')
                continue; /* "Name:x" has no space to drop and put back */
            cleanup_milter_value_out(raw, leadspc, &seen);
            cleanup_milter_value_in(buf_cstr(&seen), leadspc, &back);
            if (strcmp(buf_cstr(&back), raw) != 0)
                abort();
        }
    }
    cleanup_milter_headers_free(&again);
    buf_free(&text);
    buf_free(&seen);
    buf_free(&back);
}

/* fuzz_model_string - a NUL-terminated string at *p, or NULL at the end */
static const char *fuzz_model_string(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nul = memchr(*p, 0, (size_t)(end - *p));
    const char *s = (const char *)*p;

    if (nul == NULL)
        return NULL;
    *p = nul + 1;
    return s;
}

/* fuzz_model_apply - one record as the milter's reply, parsed, applied */
static void fuzz_model_apply(struct cleanup_milter_headers *h, uint8_t op, uint32_t index,
                             const char *name, const char *value)
{
    static const char cmds[] = {SMFIR_ADDHEADER, SMFIR_INSHEADER, SMFIR_CHGHEADER, SMFIR_CHGHEADER};
    struct milter_proto_packet p;
    struct milter_proto_reply r;
    const char *why = NULL;
    int leadspc = (op & 4) != 0;
    buf_t pkt = BUF_INIT;
    uint8_t be[4] = {(uint8_t)(index >> 24), (uint8_t)(index >> 16), (uint8_t)(index >> 8),
                     (uint8_t)index};

    if (cmds[op & 3] != SMFIR_ADDHEADER)
        buf_append(&pkt, be, 4);
    buf_append(&pkt, name, strlen(name) + 1);
    if ((op & 3) == 3)
        value = "";
    buf_append(&pkt, value, strlen(value) + 1);
    p.cmd = cmds[op & 3];
    p.data = pkt.data;
    p.len = pkt.len;
    if (milter_proto_reply_parse(&p, &r, &why) < 0) {
        if (why == NULL)
            abort();
        buf_free(&pkt);
        return;
    }
    if (r.cmd == SMFIR_ADDHEADER)
        cleanup_milter_headers_add(h, r.text, r.value, leadspc);
    else if (r.cmd == SMFIR_INSHEADER)
        cleanup_milter_headers_insert(h, r.index, r.text, r.value, leadspc);
    else
        cleanup_milter_headers_change(h, r.index, r.text, r.value, leadspc);
    buf_free(&pkt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *end = data + size;
    const uint8_t *nul = memchr(data, 0, size);
    const uint8_t *p = nul != NULL ? nul + 1 : end;
    struct cleanup_milter_headers h;
    buf_t section = BUF_INIT;

    fuzz_model_section((const char *)data, nul != NULL ? (size_t)(nul - data) : size, &section);
    cleanup_milter_headers_init(&h);
    cleanup_milter_headers_parse(&h, section.data, section.len);
    fuzz_model_check(&h);
    while (end - p >= 2) {
        uint8_t op = p[0];
        uint32_t index = (op & 8) ? 0x7fffff00u + p[1] : p[1];
        const char *name, *value;
        p += 2;
        if ((name = fuzz_model_string(&p, end)) == NULL ||
            (value = fuzz_model_string(&p, end)) == NULL)
            break;
        fuzz_model_apply(&h, op, index, name, value);
        fuzz_model_check(&h);
    }
    cleanup_milter_headers_free(&h);
    buf_free(&section);
    return 0;
}
