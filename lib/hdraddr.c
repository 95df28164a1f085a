/*
 * hdraddr - RFC 5322 header address lists: find and replace only the
 * addresses (see hdraddr.h).
 *
 * A tokenizer skips white space, folds and comments and returns atoms,
 * quoted strings, domain literals and the specials < > @ , ; : . with their
 * byte positions.  An element is read as a run of words up to '<', ':' or a
 * separator; a bare run is then parsed again as an addr-spec.  The whole list
 * is walked twice: once to check it, once to call fn.
 */
#include <string.h>
#include <strings.h>

#include "hdraddr.h"

enum hdraddr_tok_type {
    HDRADDR_TOK_END,     /* end of the value */
    HDRADDR_TOK_ATOM,    /* atext run (bytes over 127 included) */
    HDRADDR_TOK_QUOTED,  /* "quoted string" */
    HDRADDR_TOK_LITERAL, /* [domain literal] */
    HDRADDR_TOK_SPECIAL, /* one of < > @ , ; : . */
    HDRADDR_TOK_BAD,     /* anything the value may not hold */
};

struct hdraddr_tok {
    enum hdraddr_tok_type type;
    char ch;           /* HDRADDR_TOK_SPECIAL: which one */
    size_t start, end; /* the token's bytes in the value */
};

struct hdraddr_scan {
    const char *v;
    size_t len;
    size_t pos;
};

struct hdraddr_walk {
    struct hdraddr_scan sc;
    hdraddr_map_fn fn;      /* NULL: only check the syntax */
    hdraddr_other_fn other; /* may be NULL */
    void *ctx;
    buf_t *out;    /* hdraddr_rewrite: the new body; NULL otherwise */
    size_t copied; /* value bytes before this offset are in out */
    buf_t addr;    /* the address for fn */
    buf_t repl;    /* fn's replacement */
    int found;     /* addresses seen */
    int replaced;  /* addresses replaced */
};

/* hdraddr_is_ctl - a control character that may not appear (tab may) */
static int hdraddr_is_ctl(unsigned char c)
{
    return (c < 32 && c != '\t') || c == 127;
}

/* hdraddr_is_atext - RFC 5322 atext, plus any byte over 127 (RFC 6532) */
static int hdraddr_is_atext(unsigned char c)
{
    if (c >= 128 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* hdraddr_is_special - a special the tokenizer returns as a token */
static int hdraddr_is_special(unsigned char c)
{
    return c != 0 && strchr("<>@,;:.", c) != NULL;
}

/* hdraddr_fold_len - the line break at i (CRLF or LF): its length when it is
 * a fold (SP or HTAB follows) or ends the value, 0 when it may not be here */
static size_t hdraddr_fold_len(const struct hdraddr_scan *sc, size_t i)
{
    size_t n = (sc->v[i] == '\r' && i + 1 < sc->len && sc->v[i + 1] == '\n') ? 2 : 1;

    if (sc->v[i + n - 1] != '\n')
        return 0; /* a lone CR */
    if (i + n == sc->len || sc->v[i + n] == ' ' || sc->v[i + n] == '\t')
        return n;
    return 0;
}

/* hdraddr_skip_enclosed - sc->pos at the '(' of a comment, the '"' of a
 * quoted string or the '[' of a domain literal: move past its end.  Comments
 * nest (a counter, no recursion); backslash quotes the next byte.  -1 when it
 * never ends or holds a byte it may not (control character, a line break
 * that is not a fold, '[' in a literal). */
static int hdraddr_skip_enclosed(struct hdraddr_scan *sc, char open, char close)
{
    size_t depth = 1, i = sc->pos + 1, fold;

    while (i < sc->len) {
        unsigned char c = (unsigned char)sc->v[i];
        if (c == '\\') {
            if (i + 1 >= sc->len || hdraddr_is_ctl((unsigned char)sc->v[i + 1]))
                return -1;
            i += 2;
        } else if (c == '\r' || c == '\n') {
            if ((fold = hdraddr_fold_len(sc, i)) == 0)
                return -1;
            i += fold;
        } else if (hdraddr_is_ctl(c)) {
            return -1;
        } else if (c == close && --depth == 0) {
            sc->pos = i + 1;
            return 0;
        } else if (c == open && open != close) {
            if (open == '[')
                return -1;
            depth++;
            i++;
        } else {
            i++;
        }
    }
    return -1;
}

/* hdraddr_skip_cfws - move past white space, folds and comments; -1 when
 * they are malformed */
static int hdraddr_skip_cfws(struct hdraddr_scan *sc)
{
    size_t fold;

    while (sc->pos < sc->len) {
        char c = sc->v[sc->pos];
        if (c == ' ' || c == '\t') {
            sc->pos++;
        } else if (c == '\r' || c == '\n') {
            if ((fold = hdraddr_fold_len(sc, sc->pos)) == 0)
                return -1;
            sc->pos += fold;
        } else if (c == '(') {
            if (hdraddr_skip_enclosed(sc, '(', ')') < 0)
                return -1;
        } else {
            break;
        }
    }
    return 0;
}

/* hdraddr_token - read the next token; sc->pos ends up after it */
static void hdraddr_token(struct hdraddr_scan *sc, struct hdraddr_tok *t)
{
    unsigned char c;

    t->ch = 0;
    t->type = HDRADDR_TOK_BAD;
    if (hdraddr_skip_cfws(sc) < 0) {
        t->start = t->end = sc->pos;
        return;
    }
    t->start = t->end = sc->pos;
    if (sc->pos == sc->len) {
        t->type = HDRADDR_TOK_END;
        return;
    }
    c = (unsigned char)sc->v[sc->pos];
    if (c == '"' || c == '[') {
        if (hdraddr_skip_enclosed(sc, (char)c, c == '"' ? '"' : ']') == 0)
            t->type = c == '"' ? HDRADDR_TOK_QUOTED : HDRADDR_TOK_LITERAL;
    } else if (hdraddr_is_special(c)) {
        t->type = HDRADDR_TOK_SPECIAL;
        t->ch = (char)c;
        sc->pos++;
    } else if (hdraddr_is_atext(c)) {
        t->type = HDRADDR_TOK_ATOM;
        while (sc->pos < sc->len && hdraddr_is_atext((unsigned char)sc->v[sc->pos]))
            sc->pos++;
    }
    t->end = sc->pos;
}

/* hdraddr_peek - the next token, without moving on */
static void hdraddr_peek(const struct hdraddr_scan *sc, struct hdraddr_tok *t)
{
    struct hdraddr_scan copy = *sc;

    hdraddr_token(&copy, t);
}

/* hdraddr_is - t is the special ch */
static int hdraddr_is(const struct hdraddr_tok *t, char ch)
{
    return t->type == HDRADDR_TOK_SPECIAL && t->ch == ch;
}

/* hdraddr_is_separator - t ends an element: ',', ';' or the end */
static int hdraddr_is_separator(const struct hdraddr_tok *t)
{
    return t->type == HDRADDR_TOK_END || hdraddr_is(t, ',') || hdraddr_is(t, ';');
}

/* hdraddr_add_token - append t's text to the address: a quoted string
 * without the line breaks of its folds, a domain literal without its white
 * space, an atom or special as it is */
static void hdraddr_add_token(buf_t *addr, const char *v, const struct hdraddr_tok *t)
{
    int literal = t->type == HDRADDR_TOK_LITERAL;

    if (t->type == HDRADDR_TOK_ATOM || t->type == HDRADDR_TOK_SPECIAL) {
        buf_append(addr, v + t->start, t->end - t->start);
        return;
    }
    for (size_t i = t->start; i < t->end; i++) {
        char c = v[i];
        if (c == '\\') {
            buf_append(addr, v + i, 2);
            i++;
        } else if (c != '\r' && c != '\n' && !(literal && (c == ' ' || c == '\t'))) {
            buf_putc(addr, c);
        }
    }
}

/* hdraddr_dotted - words joined by dots (atoms; quoted strings too when
 * quoted_ok) into w->addr; *end after the last.  -1 when there is none or a
 * dot has no word after it. */
static int hdraddr_dotted(struct hdraddr_walk *w, struct hdraddr_scan *sc, int quoted_ok,
                          size_t *end)
{
    struct hdraddr_tok t;

    for (;;) {
        hdraddr_token(sc, &t);
        if (t.type != HDRADDR_TOK_ATOM && !(quoted_ok && t.type == HDRADDR_TOK_QUOTED))
            return -1;
        hdraddr_add_token(&w->addr, sc->v, &t);
        *end = t.end;
        hdraddr_peek(sc, &t);
        if (!hdraddr_is(&t, '.'))
            return 0;
        sc->pos = t.end;
        buf_putc(&w->addr, '.');
    }
}

/* hdraddr_domain - a domain (dotted atoms or a literal) into w->addr */
static int hdraddr_domain(struct hdraddr_walk *w, struct hdraddr_scan *sc, size_t *end)
{
    struct hdraddr_tok t;

    hdraddr_peek(sc, &t);
    if (t.type != HDRADDR_TOK_LITERAL)
        return hdraddr_dotted(w, sc, 0, end);
    hdraddr_add_token(&w->addr, sc->v, &t);
    sc->pos = *end = t.end;
    return 0;
}

/* hdraddr_spec - an addr-spec local-part[@domain] at sc into w->addr (reset
 * first); *start and *end bound its tokens.  -1 when there is none. */
static int hdraddr_spec(struct hdraddr_walk *w, struct hdraddr_scan *sc, size_t *start, size_t *end)
{
    struct hdraddr_tok t;

    buf_reset(&w->addr);
    hdraddr_peek(sc, &t);
    *start = t.start;
    if (hdraddr_dotted(w, sc, 1, end) < 0)
        return -1;
    hdraddr_peek(sc, &t);
    if (!hdraddr_is(&t, '@'))
        return 0;
    sc->pos = t.end;
    buf_putc(&w->addr, '@');
    return hdraddr_domain(w, sc, end);
}

/* hdraddr_route - a source route "@a,@b:" (obs-route) after '<'; the
 * domains are checked, not kept */
static int hdraddr_route(struct hdraddr_walk *w, struct hdraddr_scan *sc)
{
    struct hdraddr_tok t;
    size_t end;

    for (;;) {
        hdraddr_token(sc, &t);
        if (hdraddr_is(&t, ':'))
            return 0;
        if (hdraddr_is(&t, ','))
            continue;
        if (!hdraddr_is(&t, '@') || hdraddr_domain(w, sc, &end) < 0)
            return -1;
    }
}

/* hdraddr_found - an address at value[start, end), its text in w->addr: ask
 * fn, and splice a replacement into out */
static void hdraddr_found(struct hdraddr_walk *w, size_t start, size_t end)
{
    w->found++;
    if (w->fn == NULL)
        return;
    buf_reset(&w->repl);
    if (w->fn(buf_cstr(&w->addr), &w->repl, w->ctx) != 1 || w->repl.len == 0 || w->out == NULL)
        return;
    buf_append(w->out, w->sc.v + w->copied, start - w->copied);
    buf_append(w->out, w->repl.data, w->repl.len);
    w->copied = end;
    w->replaced++;
}

/* hdraddr_not_address - an element at value[start, end) that is no address */
static void hdraddr_not_address(struct hdraddr_walk *w, size_t start, size_t end)
{
    if (w->other != NULL)
        w->other(w->sc.v + start, end - start, w->ctx);
}

/* hdraddr_angle - the rest of an element after its '<' (the element began
 * at start); *sep gets the separator after the '>' */
static int hdraddr_angle(struct hdraddr_walk *w, size_t start, struct hdraddr_tok *sep)
{
    struct hdraddr_scan *sc = &w->sc;
    struct hdraddr_tok t;
    size_t spec_start, spec_end;

    hdraddr_peek(sc, &t);
    if (hdraddr_is(&t, '>')) {
        sc->pos = t.end;
        hdraddr_not_address(w, start, t.end);
    } else {
        if (hdraddr_is(&t, '@') && hdraddr_route(w, sc) < 0)
            return -1;
        if (hdraddr_spec(w, sc, &spec_start, &spec_end) < 0)
            return -1;
        hdraddr_token(sc, &t);
        if (!hdraddr_is(&t, '>'))
            return -1;
        hdraddr_found(w, spec_start, spec_end);
    }
    hdraddr_token(sc, sep);
    return hdraddr_is_separator(sep) ? 0 : -1;
}

/* hdraddr_bare - an element without '<' whose words span value[start, end):
 * an address when the words are exactly one addr-spec */
static void hdraddr_bare(struct hdraddr_walk *w, size_t start, size_t end)
{
    struct hdraddr_scan sc = {w->sc.v, w->sc.len, start};
    size_t spec_start, spec_end;

    if (hdraddr_spec(w, &sc, &spec_start, &spec_end) == 0 && spec_end == end)
        hdraddr_found(w, spec_start, spec_end);
    else
        hdraddr_not_address(w, start, end);
}

/* hdraddr_is_word - a token that may stand in a display name or addr-spec */
static int hdraddr_is_word(const struct hdraddr_tok *t)
{
    return t->type == HDRADDR_TOK_ATOM || t->type == HDRADDR_TOK_QUOTED ||
           t->type == HDRADDR_TOK_LITERAL || hdraddr_is(t, '.') || hdraddr_is(t, '@');
}

/* hdraddr_element - one element of the list; *sep gets the token that ended
 * it: ',', ';', the end, or ':' after a group name */
static int hdraddr_element(struct hdraddr_walk *w, int in_group, struct hdraddr_tok *sep)
{
    struct hdraddr_tok t;
    size_t start = 0, end = 0;
    int words = 0, phrase = 1;

    for (hdraddr_token(&w->sc, &t); hdraddr_is_word(&t); hdraddr_token(&w->sc, &t)) {
        if (words++ == 0)
            start = t.start;
        end = t.end;
        if (t.type == HDRADDR_TOK_LITERAL || hdraddr_is(&t, '@'))
            phrase = 0;
    }
    if (hdraddr_is(&t, '<'))
        return hdraddr_angle(w, words ? start : t.start, sep);
    *sep = t;
    if (hdraddr_is(&t, ':'))
        return (words && phrase && !in_group) ? 0 : -1;
    if (!hdraddr_is_separator(&t))
        return -1;
    if (words)
        hdraddr_bare(w, start, end);
    return 0;
}

/* hdraddr_list - walk the whole value */
static int hdraddr_list(struct hdraddr_walk *w)
{
    struct hdraddr_tok sep;
    int in_group = 0;

    for (;;) {
        if (hdraddr_element(w, in_group, &sep) < 0)
            return -1;
        if (sep.type == HDRADDR_TOK_END)
            return 0;
        if (hdraddr_is(&sep, ':'))
            in_group = 1;
        else if (hdraddr_is(&sep, ';') && !in_group)
            return -1;
        else if (hdraddr_is(&sep, ';'))
            in_group = 0;
    }
}

/* hdraddr_walk_run - check the value, then walk it with w's callbacks */
static int hdraddr_walk_run(struct hdraddr_walk *w)
{
    struct hdraddr_walk check = {w->sc, NULL, NULL, NULL, NULL, 0, BUF_INIT, BUF_INIT, 0, 0};
    int rc = hdraddr_list(&check);

    buf_free(&check.addr);
    if (rc == 0)
        rc = hdraddr_list(w);
    buf_free(&w->addr);
    buf_free(&w->repl);
    return rc;
}

int hdraddr_rewrite(const char *value, size_t len, hdraddr_map_fn fn, void *ctx, buf_t *out)
{
    struct hdraddr_walk w = {{value, len, 0}, fn, NULL, ctx, out, 0, BUF_INIT, BUF_INIT, 0, 0};

    buf_reset(out);
    if (hdraddr_walk_run(&w) < 0) {
        buf_reset(out);
        buf_append(out, value, len);
        return -1;
    }
    buf_append(out, value + w.copied, len - w.copied);
    return w.replaced;
}

int hdraddr_scan(const char *value, size_t len, hdraddr_map_fn fn, hdraddr_other_fn other,
                 void *ctx)
{
    struct hdraddr_walk w = {{value, len, 0}, fn, other, ctx, NULL, 0, BUF_INIT, BUF_INIT, 0, 0};

    return hdraddr_walk_run(&w) < 0 ? -1 : w.found;
}

int hdraddr_each(const char *value, size_t len, hdraddr_map_fn fn, void *ctx)
{
    return hdraddr_scan(value, len, fn, NULL, ctx);
}

static const struct hdraddr_header {
    const char *name;
    enum hdraddr_class class;
} hdraddr_headers[] = {
    {"From", HDRADDR_SENDER},
    {"Sender", HDRADDR_SENDER},
    {"Reply-To", HDRADDR_SENDER},
    {"Errors-To", HDRADDR_SENDER},
    {"Return-Path", HDRADDR_SENDER},
    {"Return-Receipt-To", HDRADDR_SENDER},
    {"Disposition-Notification-To", HDRADDR_SENDER},
    {"Mail-Followup-To", HDRADDR_SENDER},
    {"Resent-From", HDRADDR_SENDER},
    {"Resent-Sender", HDRADDR_SENDER},
    {"To", HDRADDR_RECIPIENT},
    {"Cc", HDRADDR_RECIPIENT},
    {"Bcc", HDRADDR_RECIPIENT},
    {"Apparently-To", HDRADDR_RECIPIENT},
    {"Resent-To", HDRADDR_RECIPIENT},
    {"Resent-Cc", HDRADDR_RECIPIENT},
    {"Resent-Bcc", HDRADDR_RECIPIENT},
    {"Resent-Reply-To", HDRADDR_RECIPIENT},
};

enum hdraddr_class hdraddr_header_class(const char *name, size_t len)
{
    while (len > 0 && (name[len - 1] == ' ' || name[len - 1] == '\t'))
        len--;
    for (size_t i = 0; i < sizeof(hdraddr_headers) / sizeof(hdraddr_headers[0]); i++) {
        const struct hdraddr_header *h = &hdraddr_headers[i];
        if (strlen(h->name) == len && strncasecmp(h->name, name, len) == 0)
            return h->class;
    }
    return HDRADDR_NONE;
}

/* ---- whole header sections */

/* hdraddr_field_end - the end of the header field starting at p (its
 * continuation lines included) */
static const char *hdraddr_field_end(const char *p, const char *end)
{
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            return end;
        p = nl + 1;
        if (p >= end || (*p != ' ' && *p != '\t'))
            return p;
    }
}

/* the class of the field being rewritten, for hdraddr_section_one */
struct hdraddr_section {
    enum hdraddr_class cls;
    hdraddr_section_fn fn;
    void *ctx;
};

static int hdraddr_section_one(const char *addr, buf_t *out, void *ctx)
{
    struct hdraddr_section *sec = ctx;
    return sec->fn(sec->cls, addr, out, sec->ctx);
}

int hdraddr_rewrite_section(const char *hdrs, size_t len, int classes, hdraddr_section_fn fn,
                            void *ctx, buf_t *out)
{
    const char *p = hdrs, *end = hdrs + len;
    buf_t value = BUF_INIT;
    int total = 0;

    while (p < end) {
        const char *next = hdraddr_field_end(p, end);
        const char *colon = memchr(p, ':', (size_t)(next - p));
        struct hdraddr_section sec = {HDRADDR_NONE, fn, ctx};
        int n = 0;

        if (colon)
            sec.cls = hdraddr_header_class(p, (size_t)(colon - p));
        if (sec.cls != HDRADDR_NONE && (classes & (1 << sec.cls)))
            n = hdraddr_rewrite(colon + 1, (size_t)(next - colon - 1), hdraddr_section_one, &sec,
                                &value);
        if (n > 0) {
            buf_append(out, p, (size_t)(colon + 1 - p));
            buf_append(out, value.data, value.len);
            total += n;
        } else {
            buf_append(out, p, (size_t)(next - p));
        }
        p = next;
    }
    buf_free(&value);
    return total;
}
