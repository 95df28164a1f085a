/*
 * mime_downgrade - 8BITMIME to 7-bit conversion (the contract is in
 * mime_downgrade.h).
 *
 * One recursive walk: mime_downgrade_entity looks at an entity's span of the
 * input; a span without 8-bit bytes is copied as it is, a multipart is split
 * at its delimiter lines and each part walked, a message/rfc822 body is
 * walked as a message, a leaf is re-encoded.  Offsets are into the input;
 * nothing is copied out of it but into d->out.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime_downgrade.h"

enum mime_cte {
    MIME_CTE_NONE, /* no Content-Transfer-Encoding field */
    MIME_CTE_7BIT,
    MIME_CTE_8BIT,
    MIME_CTE_OTHER, /* binary, quoted-printable, base64, x-anything */
};

struct mime_ctx {
    struct mime_downgrade *d;
    const char *msg;
    size_t len;
    const char *eol; /* the message's line end: "\r\n" or "\n" */
    size_t eol_len;
};

/* what the header section of one entity says */
struct mime_entity {
    size_t start;      /* first header byte */
    size_t hdr_end;    /* start of the empty line, or of the first body line */
    size_t body_start; /* after the empty line */
    size_t end;        /* end of the entity's span */
    int has_blank;     /* an empty line ended the header section */
    int is_message;    /* a top-level or message/rfc822 header: MIME-Version applies */
    int has_ctype;
    int has_mime_version;
    enum mime_cte cte;
    buf_t ctype;    /* "type/subtype" in lower case, "" when absent or malformed */
    buf_t boundary; /* the boundary parameter, "" when absent */
};

static const char mime_tspecials[] = "()<>@,;:\\\"/[]?=";

static int mime_downgrade_entity(struct mime_ctx *c, size_t start, size_t end, int depth,
                                 int is_message, const char *default_type);

/* mime_downgrade_init - an empty result */
void mime_downgrade_init(struct mime_downgrade *d)
{
    memset(d, 0, sizeof(*d));
    buf_init(&d->out);
}

/* mime_downgrade_free - release the output and the spans */
void mime_downgrade_free(struct mime_downgrade *d)
{
    buf_free(&d->out);
    free(d->spans);
    mime_downgrade_init(d);
}

/* mime_byte_needs_encoding - an 8-bit byte or a NUL, which 7bit forbids */
static int mime_byte_needs_encoding(unsigned char ch)
{
    return ch >= 0x80 || ch == 0;
}

/* mime_downgrade_needed - 1 when msg holds an 8-bit byte or a NUL */
int mime_downgrade_needed(const char *msg, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (mime_byte_needs_encoding((unsigned char)msg[i]))
            return 1;
    return 0;
}

/* mime_refuse - record why the message cannot be made 7-bit; returns -1 */
static int mime_refuse(struct mime_ctx *c, const char *reason)
{
    if (c->d->reason == NULL)
        c->d->reason = reason;
    return -1;
}

/* mime_copy - copy msg[start..end) to the output */
static void mime_copy(struct mime_ctx *c, size_t start, size_t end)
{
    buf_append(&c->d->out, c->msg + start, end - start);
}

/* mime_put_line - append a header line and the message's line end */
static void mime_put_line(struct mime_ctx *c, const char *text)
{
    buf_puts(&c->d->out, text);
    buf_append(&c->d->out, c->eol, c->eol_len);
}

/* mime_line_next - the start of the line after the one at pos (lines end
 * at LF, a CR before it belongs to the line end); *text_end is where the
 * line's text stops */
static size_t mime_line_next(const struct mime_ctx *c, size_t pos, size_t end, size_t *text_end)
{
    const char *lf = memchr(c->msg + pos, '\n', end - pos);

    if (lf == NULL) {
        *text_end = end;
        return end;
    }
    size_t at = (size_t)(lf - c->msg);
    *text_end = (at > pos && c->msg[at - 1] == '\r') ? at - 1 : at;
    return at + 1;
}

/* mime_is_field_line - a "name:" header line (name printable, no space) */
static int mime_is_field_line(const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && p[i] > 32 && p[i] < 127 && p[i] != ':')
        i++;
    return i > 0 && i < n && p[i] == ':';
}

/* mime_name_is - 1 when the field at p (up to its ':') is called name */
static int mime_name_is(const char *p, size_t n, const char *name)
{
    size_t len = strlen(name);

    return n > len && p[len] == ':' && strncasecmp(p, name, len) == 0;
}

/* mime_skip_cfws - skip white space, line ends and (nested) comments */
static size_t mime_skip_cfws(const char *p, size_t i, size_t n)
{
    int depth = 0;

    for (; i < n; i++) {
        if (depth > 0 && p[i] == '\\' && i + 1 < n)
            i++;
        else if (p[i] == '(')
            depth++;
        else if (depth > 0 && p[i] == ')')
            depth--;
        else if (depth == 0 && p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            break;
    }
    return i;
}

/* mime_token - the length of the RFC 2045 token at p[i..n) */
static size_t mime_token(const char *p, size_t i, size_t n)
{
    size_t start = i;

    while (i < n && p[i] > 32 && p[i] < 127 && strchr(mime_tspecials, p[i]) == NULL)
        i++;
    return i - start;
}

/* mime_append_lower - append n bytes in lower case */
static void mime_append_lower(buf_t *b, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf_putc(b, (p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
}

/* mime_quoted - copy the quoted-string at p[i] (the opening quote) into
 * out, without quotes and escapes; returns the index after it */
static size_t mime_quoted(const char *p, size_t i, size_t n, buf_t *out)
{
    for (i++; i < n && p[i] != '"'; i++) {
        if (p[i] == '\\' && i + 1 < n)
            i++;
        if (p[i] != '\r' && p[i] != '\n')
            buf_putc(out, p[i]);
    }
    return i < n ? i + 1 : n;
}

/* mime_parse_params - "; name=value" pairs of a Content-Type: keep boundary */
static void mime_parse_params(const char *p, size_t i, size_t n, buf_t *boundary)
{
    for (;;) {
        i = mime_skip_cfws(p, i, n);
        if (i >= n || p[i] != ';')
            return;
        i = mime_skip_cfws(p, i + 1, n);
        size_t name = i, name_len = mime_token(p, i, n);
        i = mime_skip_cfws(p, i + name_len, n);
        if (name_len == 0 || i >= n || p[i] != '=')
            return;
        i = mime_skip_cfws(p, i + 1, n);
        int is_boundary = name_len == 8 && strncasecmp(p + name, "boundary", 8) == 0;
        buf_t value = BUF_INIT;
        if (i < n && p[i] == '"') {
            i = mime_quoted(p, i, n, &value);
        } else {
            size_t len = mime_token(p, i, n);
            buf_append(&value, p + i, len);
            i += len;
        }
        if (is_boundary && boundary->len == 0)
            buf_append(boundary, value.data, value.len);
        buf_free(&value);
    }
}

/* mime_parse_ctype - "type/subtype; params" (value without the name) */
static void mime_parse_ctype(struct mime_entity *e, const char *p, size_t n)
{
    size_t i = mime_skip_cfws(p, 0, n);
    size_t type_len = mime_token(p, i, n);
    size_t slash = mime_skip_cfws(p, i + type_len, n);

    if (type_len == 0 || slash >= n || p[slash] != '/')
        return;
    size_t sub = mime_skip_cfws(p, slash + 1, n);
    size_t sub_len = mime_token(p, sub, n);
    if (sub_len == 0)
        return;
    mime_append_lower(&e->ctype, p + i, type_len);
    buf_putc(&e->ctype, '/');
    mime_append_lower(&e->ctype, p + sub, sub_len);
    mime_parse_params(p, sub + sub_len, n, &e->boundary);
}

/* mime_parse_cte - the Content-Transfer-Encoding value */
static enum mime_cte mime_parse_cte(const char *p, size_t n)
{
    size_t i = mime_skip_cfws(p, 0, n);
    size_t len = mime_token(p, i, n);

    if (len == 4 && strncasecmp(p + i, "7bit", 4) == 0)
        return MIME_CTE_7BIT;
    if (len == 4 && strncasecmp(p + i, "8bit", 4) == 0)
        return MIME_CTE_8BIT;
    return MIME_CTE_OTHER;
}

/* mime_field_end - the end of the field whose first line starts at pos:
 * its continuation lines (starting with space or tab) included */
static size_t mime_field_end(const struct mime_ctx *c, size_t pos, size_t end)
{
    size_t text_end;

    pos = mime_line_next(c, pos, end, &text_end);
    while (pos < end && (c->msg[pos] == ' ' || c->msg[pos] == '\t'))
        pos = mime_line_next(c, pos, end, &text_end);
    return pos;
}

/* mime_note_field - learn what one header field says (first one wins) */
static void mime_note_field(struct mime_entity *e, const char *p, size_t n)
{
    const char *colon = memchr(p, ':', n);

    if (colon == NULL)
        return;
    size_t value = (size_t)(colon - p) + 1;
    if (mime_name_is(p, n, "Content-Type") && !e->has_ctype) {
        e->has_ctype = 1;
        mime_parse_ctype(e, p + value, n - value);
    } else if (mime_name_is(p, n, "Content-Transfer-Encoding") && e->cte == MIME_CTE_NONE) {
        e->cte = mime_parse_cte(p + value, n - value);
    } else if (mime_name_is(p, n, "MIME-Version")) {
        e->has_mime_version = 1;
    }
}

/* mime_parse_header - find the header section of the entity at
 * [start, end) and read its MIME fields */
static void mime_parse_header(const struct mime_ctx *c, struct mime_entity *e, size_t start,
                              size_t end)
{
    size_t pos = start, text_end;

    e->start = start;
    e->end = end;
    while (pos < end) {
        size_t next = mime_line_next(c, pos, end, &text_end);
        if (text_end == pos && next > pos) {
            e->has_blank = 1;
            e->hdr_end = pos;
            e->body_start = next;
            return;
        }
        if (c->msg[pos] == ' ' || c->msg[pos] == '\t') {
            pos = next; /* a continuation without a field: kept as it is */
            continue;
        }
        if (!mime_is_field_line(c->msg + pos, text_end - pos))
            break; /* the body starts without an empty line */
        size_t field_end = mime_field_end(c, pos, end);
        mime_note_field(e, c->msg + pos, field_end - pos);
        pos = field_end;
    }
    e->hdr_end = pos;
    e->body_start = pos;
}

/* mime_emit_header - copy the header section, dropping every Content-
 * Transfer-Encoding field when cte is set and adding the fields the
 * converted entity needs */
static void mime_emit_header(struct mime_ctx *c, const struct mime_entity *e, const char *cte,
                             int add_ctype)
{
    size_t pos = e->start;

    while (pos < e->hdr_end) {
        size_t field_end = mime_field_end(c, pos, e->hdr_end);
        if (cte == NULL ||
            !mime_name_is(c->msg + pos, field_end - pos, "Content-Transfer-Encoding"))
            mime_copy(c, pos, field_end);
        pos = field_end;
    }
    if (e->hdr_end > e->start && c->msg[e->hdr_end - 1] != '\n')
        buf_append(&c->d->out, c->eol, c->eol_len); /* a last field without a line end */
    if (e->is_message && !e->has_mime_version)
        mime_put_line(c, "MIME-Version: 1.0");
    if (add_ctype)
        mime_put_line(c, "Content-Type: text/plain; charset=unknown-8bit");
    if (cte != NULL) {
        buf_puts(&c->d->out, "Content-Transfer-Encoding: ");
        mime_put_line(c, cte);
    }
    if (e->has_blank)
        mime_copy(c, e->hdr_end, e->body_start);
    else
        buf_append(&c->d->out, c->eol, c->eol_len);
}

/* mime_qp_put - append one quoted-printable token (a byte, encoded or
 * not), with a soft line break first when the line would grow too long */
static void mime_qp_put(struct mime_ctx *c, size_t *col, unsigned char ch, int encode)
{
    static const char hex[] = "0123456789ABCDEF";
    buf_t *out = &c->d->out;

    if (*col + (encode ? 3 : 1) > MIME_DOWNGRADE_LINE_MAX - 1) {
        buf_putc(out, '=');
        buf_append(out, c->eol, c->eol_len);
        *col = 0;
    }
    if (*col == 0 && ch == '-')
        encode = 1; /* no line may start like a boundary delimiter */
    if (!encode) {
        buf_putc(out, ch);
        *col += 1;
        return;
    }
    buf_putc(out, '=');
    buf_putc(out, hex[ch >> 4]);
    buf_putc(out, hex[ch & 15]);
    *col += 3;
}

/* mime_is_eol - the message's line end starts at msg[i], inside [.., end) */
static int mime_is_eol(const struct mime_ctx *c, size_t i, size_t end)
{
    return end - i >= c->eol_len && memcmp(c->msg + i, c->eol, c->eol_len) == 0;
}

/* mime_encode_qp - msg[start..end) as quoted-printable: the message's line
 * ends are hard line breaks, everything else that is not plain printable
 * text is encoded (white space too where a line or the body ends) */
static void mime_encode_qp(struct mime_ctx *c, size_t start, size_t end)
{
    size_t col = 0;

    for (size_t i = start; i < end; i++) {
        unsigned char ch = (unsigned char)c->msg[i];
        if (mime_is_eol(c, i, end)) {
            buf_append(&c->d->out, c->eol, c->eol_len);
            col = 0;
            i += c->eol_len - 1;
            continue;
        }
        int encode = ch == '=' || ch > 126 || (ch < 32 && ch != '\t');
        if ((ch == ' ' || ch == '\t') && (i + 1 == end || mime_is_eol(c, i + 1, end)))
            encode = 1;
        mime_qp_put(c, &col, ch, encode);
    }
}

/* mime_encode_base64 - msg[start..end) as base64 in lines of 76; a line
 * end after the last line only when nothing follows in the message (else
 * the line end before the next delimiter line ends it) */
static void mime_encode_base64(struct mime_ctx *c, size_t start, size_t end)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)c->msg;
    size_t col = 0;

    for (size_t i = start; i < end; i += 3) {
        size_t n = end - i < 3 ? end - i : 3;
        unsigned long v = (unsigned long)p[i] << 16;
        if (n > 1)
            v |= (unsigned long)p[i + 1] << 8;
        if (n > 2)
            v |= p[i + 2];
        if (col == MIME_DOWNGRADE_LINE_MAX) {
            buf_append(&c->d->out, c->eol, c->eol_len);
            col = 0;
        }
        buf_putc(&c->d->out, alphabet[(v >> 18) & 63]);
        buf_putc(&c->d->out, alphabet[(v >> 12) & 63]);
        buf_putc(&c->d->out, n > 1 ? alphabet[(v >> 6) & 63] : '=');
        buf_putc(&c->d->out, n > 2 ? alphabet[v & 63] : '=');
        col += 4;
    }
    if (end == c->len)
        buf_append(&c->d->out, c->eol, c->eol_len);
}

/* mime_note_span - remember one re-encoded body for the caller */
static void mime_note_span(struct mime_ctx *c, size_t in_start, size_t in_end, size_t out_start,
                           enum mime_downgrade_encoding encoding)
{
    struct mime_downgrade *d = c->d;

    if (d->span_count == d->span_cap) {
        d->span_cap = d->span_cap ? 2 * d->span_cap : 8;
        d->spans = xrealloc(d->spans, d->span_cap * sizeof(*d->spans));
    }
    d->spans[d->span_count++] = (struct mime_downgrade_span){
        .in_start = in_start,
        .in_end = in_end,
        .out_start = out_start,
        .out_end = d->out.len,
        .encoding = encoding,
    };
}

/* mime_downgrade_leaf - re-encode a leaf body: quoted-printable for text */
static int mime_downgrade_leaf(struct mime_ctx *c, const struct mime_entity *e)
{
    if (e->cte == MIME_CTE_OTHER)
        return mime_refuse(c, "8-bit data in a part whose encoding is not 7bit or 8bit");
    int is_text = e->ctype.len == 0 || strncmp(buf_cstr(&e->ctype), "text/", 5) == 0;
    mime_emit_header(c, e, is_text ? "quoted-printable" : "base64", !e->has_ctype);
    size_t out_start = c->d->out.len;
    if (is_text)
        mime_encode_qp(c, e->body_start, e->end);
    else
        mime_encode_base64(c, e->body_start, e->end);
    mime_note_span(c, e->body_start, e->end, out_start,
                   is_text ? MIME_DOWNGRADE_QP : MIME_DOWNGRADE_BASE64);
    return 0;
}

/* mime_delimiter - 1 when the line at msg[pos..text_end) is "--boundary"
 * (a prefix match); *is_close when "--" follows the boundary */
static int mime_delimiter(const struct mime_ctx *c, const buf_t *boundary, size_t pos,
                          size_t text_end, int *is_close)
{
    size_t n = text_end - pos;
    const char *p = c->msg + pos;

    if (n < boundary->len + 2 || p[0] != '-' || p[1] != '-' ||
        memcmp(p + 2, boundary->data, boundary->len) != 0)
        return 0;
    *is_close =
        n >= boundary->len + 4 && p[boundary->len + 2] == '-' && p[boundary->len + 3] == '-';
    return 1;
}

/* mime_eol_before - where the line end before the line at pos starts (it
 * belongs to the delimiter line), not before floor */
static size_t mime_eol_before(const struct mime_ctx *c, size_t pos, size_t floor)
{
    if (pos <= floor || c->msg[pos - 1] != '\n')
        return pos;
    if (pos - 1 > floor && c->msg[pos - 2] == '\r')
        return pos - 2;
    return pos - 1;
}

/* mime_copy_7bit - copy text outside any part (preamble, epilogue, a
 * delimiter line): nothing there can be re-encoded */
static int mime_copy_7bit(struct mime_ctx *c, size_t start, size_t end)
{
    if (mime_downgrade_needed(c->msg + start, end - start))
        return mime_refuse(
            c, "8-bit data outside any MIME part (preamble, epilogue or delimiter line)");
    mime_copy(c, start, end);
    return 0;
}

/* mime_downgrade_parts - walk a multipart body, part by part */
static int mime_downgrade_parts(struct mime_ctx *c, const struct mime_entity *e, int depth)
{
    const char *part_type =
        strcmp(buf_cstr(&e->ctype), "multipart/digest") == 0 ? "message/rfc822" : "text/plain";
    size_t pos = e->body_start, part = 0, text_end;
    int in_part = 0, is_close = 0;

    while (pos < e->end) {
        size_t next = mime_line_next(c, pos, e->end, &text_end);
        if (!mime_delimiter(c, &e->boundary, pos, text_end, &is_close)) {
            pos = next;
            continue;
        }
        size_t part_end = mime_eol_before(c, pos, in_part ? part : e->body_start);
        if (in_part ? mime_downgrade_entity(c, part, part_end, depth + 1, 0, part_type) < 0
                    : mime_copy_7bit(c, e->body_start, part_end) < 0)
            return -1;
        if (mime_copy_7bit(c, part_end, next) < 0)
            return -1;
        in_part = 1;
        part = pos = next;
        if (is_close)
            return mime_copy_7bit(c, next, e->end);
    }
    if (!in_part)
        return mime_copy_7bit(c, e->body_start, e->end);
    return mime_downgrade_entity(c, part, e->end, depth + 1, 0, part_type);
}

/* mime_downgrade_composite - a multipart or message/rfc822 with 8-bit
 * content: its own label, if 8bit, becomes 7bit */
static int mime_downgrade_composite(struct mime_ctx *c, const struct mime_entity *e, int depth)
{
    int is_multipart = strncmp(buf_cstr(&e->ctype), "multipart/", 10) == 0;

    if (e->cte == MIME_CTE_OTHER)
        return mime_refuse(c, "8-bit data in a multipart or message whose encoding is not "
                              "7bit or 8bit");
    if (is_multipart && e->boundary.len == 0)
        return mime_refuse(c, "8-bit data in a multipart without a boundary");
    mime_emit_header(c, e, e->cte == MIME_CTE_8BIT ? "7bit" : NULL, 0);
    if (is_multipart)
        return mime_downgrade_parts(c, e, depth);
    return mime_downgrade_entity(c, e->body_start, e->end, depth + 1, 1, "text/plain");
}

/* mime_downgrade_body - after a 7-bit header: choose by content type */
static int mime_downgrade_body(struct mime_ctx *c, struct mime_entity *e, int depth,
                               const char *default_type)
{
    if (!e->has_ctype)
        buf_set(&e->ctype, default_type);
    const char *type = buf_cstr(&e->ctype);
    if (strncmp(type, "multipart/", 10) == 0 || strcmp(type, "message/rfc822") == 0)
        return mime_downgrade_composite(c, e, depth);
    if (strncmp(type, "message/", 8) == 0)
        return mime_refuse(c, "8-bit data in a message/* part other than message/rfc822");
    return mime_downgrade_leaf(c, e);
}

/* mime_downgrade_entity - convert the entity at [start, end) */
static int mime_downgrade_entity(struct mime_ctx *c, size_t start, size_t end, int depth,
                                 int is_message, const char *default_type)
{
    struct mime_entity e = {.is_message = is_message};
    int ret;

    if (!mime_downgrade_needed(c->msg + start, end - start)) {
        mime_copy(c, start, end);
        return 0;
    }
    if (depth > MIME_DOWNGRADE_MAX_DEPTH)
        return mime_refuse(c, "8-bit data in MIME parts nested too deep");
    buf_init(&e.ctype);
    buf_init(&e.boundary);
    mime_parse_header(c, &e, start, end);
    if (mime_downgrade_needed(c->msg + start, e.hdr_end - start))
        ret = mime_refuse(c, "8-bit data in a header field");
    else
        ret = mime_downgrade_body(c, &e, depth, default_type);
    buf_free(&e.ctype);
    buf_free(&e.boundary);
    return ret;
}

/* mime_downgrade_run - convert msg[0..len) into d->out */
enum mime_downgrade_status mime_downgrade_run(struct mime_downgrade *d, const char *msg, size_t len)
{
    const char *lf = memchr(msg, '\n', len);
    int crlf = lf == NULL || (lf > msg && lf[-1] == '\r');
    struct mime_ctx c = {
        .d = d, .msg = msg, .len = len, .eol = crlf ? "\r\n" : "\n", .eol_len = crlf ? 2 : 1};

    buf_reset(&d->out);
    d->reason = NULL;
    d->span_count = 0;
    if (!mime_downgrade_needed(msg, len)) {
        buf_append(&d->out, msg, len);
        return MIME_DOWNGRADE_UNCHANGED;
    }
    if (mime_downgrade_entity(&c, 0, len, 0, 1, "text/plain") < 0)
        return MIME_DOWNGRADE_REFUSED;
    return MIME_DOWNGRADE_DONE;
}
