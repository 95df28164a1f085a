/*
 * fuzz_hdraddr - libFuzzer target for lib/hdraddr: header address lists
 * (From:, To:, Cc: ... bodies) come from the network and get rewritten by
 * cleanup and the smtp client.  Checks the module's promises:
 *
 *  - an address passed to fn is non-empty, has no control character but a
 *    tab inside quotes, and outside quotes and literals no white space and
 *    none of < > ( ) , ;
 *  - with a callback that keeps everything the output is the input byte for
 *    byte, whatever the return value; on -1 fn was never called;
 *  - hdraddr_each counts the calls, and agrees with hdraddr_rewrite;
 *  - replacing every address by X@Y replaces as many as were found, and the
 *    output parses to exactly that many addresses, all X@Y;
 *  - replacing every address by itself gives an output with the same
 *    addresses in the same order, no longer than the input, that the same
 *    rewrite leaves alone (only comments and white space inside an addr-spec
 *    may go, and then they are gone);
 *  - in a value without white space, line breaks and comments an address is
 *    exactly the bytes it replaces: replacing each by itself changes nothing,
 *    and X@Y changes the length by the addresses' lengths;
 *  - an element reported as no address lies inside the value.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "hdraddr.h"

struct fuzz_seen {
    int calls;
    buf_t addrs; /* every address, each followed by a NUL */
};

/* fuzz_addr_check - abort unless addr keeps the promises of hdraddr.h */
static void fuzz_addr_check(const char *addr)
{
    char close = 0;

    if (addr[0] == 0)
        abort();
    for (const char *p = addr; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c < 32 && !(c == '\t' && close == '"')) || c == 127)
            abort();
        if (close && c == '\\' && p[1]) {
            p++;
        } else if (close && c == (unsigned char)close) {
            close = 0;
        } else if (!close && (c == '"' || c == '[')) {
            close = c == '"' ? '"' : ']';
        } else if (!close && c != 0 && strchr(" \t<>(),;", c)) {
            abort();
        }
    }
}

/* fuzz_keep - check and remember the address, keep it */
static int fuzz_keep(const char *addr, buf_t *out, void *ctx)
{
    struct fuzz_seen *seen = ctx;

    fuzz_addr_check(addr);
    seen->calls++;
    buf_append(&seen->addrs, addr, strlen(addr) + 1);
    return 0;
}

/* fuzz_xy - replace every address by X@Y */
static int fuzz_xy(const char *addr, buf_t *out, void *ctx)
{
    ((struct fuzz_seen *)ctx)->calls++;
    buf_puts(out, "X@Y");
    return 1;
}

/* fuzz_self - replace every address by itself as fn got it */
static int fuzz_self(const char *addr, buf_t *out, void *ctx)
{
    buf_puts(out, addr);
    return 1;
}

/* fuzz_same - a and b hold the same bytes */
static int fuzz_same(const buf_t *a, const char *b, size_t len)
{
    return a->len == len && (len == 0 || memcmp(a->data, b, len) == 0);
}

struct fuzz_bounds {
    const char *value;
    size_t len;
};

/* fuzz_other - an element that is no address lies inside the value */
static void fuzz_other(const char *text, size_t len, void *ctx)
{
    struct fuzz_bounds *b = ctx;

    if (len == 0 || text < b->value || text + len > b->value + b->len)
        abort();
}

/* fuzz_scan_count - hdraddr_scan with fuzz_other; its return value */
static int fuzz_scan_count(const char *value, size_t len)
{
    struct fuzz_bounds b = {value, len};
    return hdraddr_scan(value, len, NULL, fuzz_other, &b);
}

/* fuzz_plain - no white space, line break or comment: nothing an address's
 * bytes may hold that its text drops */
static int fuzz_plain(const char *value, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (value[i] == ' ' || value[i] == '\t' || value[i] == '\r' || value[i] == '\n' ||
            value[i] == '(')
            return 0;
    return 1;
}

/* fuzz_rewrite_all - X@Y everywhere: count and re-parse agree */
static void fuzz_rewrite_all(const char *value, size_t len, const struct fuzz_seen *first,
                             int found)
{
    struct fuzz_seen seen = {0, BUF_INIT}, again = {0, BUF_INIT};
    buf_t out = BUF_INIT;
    int rc = hdraddr_rewrite(value, len, fuzz_xy, &seen, &out);
    size_t addr_bytes = first->addrs.len - (size_t)first->calls; /* without the NULs */

    if (rc != found || (rc >= 0 && seen.calls != rc) || (rc < 0 && seen.calls != 0))
        abort();
    if (rc < 0 && !fuzz_same(&out, value, len))
        abort();
    if (rc >= 0 && fuzz_plain(value, len) && out.len != len - addr_bytes + 3 * (size_t)rc)
        abort();
    if (rc >= 0) {
        if (hdraddr_each(out.data, out.len, fuzz_keep, &again) != rc || again.calls != rc)
            abort();
        for (size_t i = 0; i < again.addrs.len; i += 4)
            if (memcmp(again.addrs.data + i, "X@Y", 4) != 0)
                abort();
    }
    buf_free(&out);
    buf_free(&again.addrs);
}

/* fuzz_rewrite_self - each address by itself: the same addresses again */
static void fuzz_rewrite_self(const char *value, size_t len, const struct fuzz_seen *first)
{
    struct fuzz_seen again = {0, BUF_INIT};
    buf_t out = BUF_INIT, twice = BUF_INIT;
    int rc = hdraddr_rewrite(value, len, fuzz_self, NULL, &out);

    if (rc != first->calls || out.len > len ||
        (fuzz_plain(value, len) && !fuzz_same(&out, value, len)))
        abort();
    if (hdraddr_each(out.data, out.len, fuzz_keep, &again) != rc ||
        !fuzz_same(&again.addrs, first->addrs.data, first->addrs.len))
        abort();
    if (hdraddr_rewrite(out.data, out.len, fuzz_self, NULL, &twice) != rc ||
        !fuzz_same(&twice, out.data, out.len))
        abort();
    buf_free(&out);
    buf_free(&twice);
    buf_free(&again.addrs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *value = (const char *)data;
    struct fuzz_seen seen = {0, BUF_INIT}, counted = {0, BUF_INIT};
    buf_t out = BUF_INIT;
    int rc = hdraddr_rewrite(value, size, fuzz_keep, &seen, &out);

    if (rc > 0 || (rc < 0 && seen.calls != 0) || !fuzz_same(&out, value, size))
        abort();
    int found = hdraddr_each(value, size, fuzz_keep, &counted);
    if ((rc < 0) != (found < 0) || (found >= 0 && found != seen.calls) ||
        counted.calls != seen.calls || fuzz_scan_count(value, size) != found)
        abort();
    fuzz_rewrite_all(value, size, &seen, found);
    if (found >= 0)
        fuzz_rewrite_self(value, size, &seen);
    (void)hdraddr_header_class(value, size < 64 ? size : 64);
    buf_free(&out);
    buf_free(&seen.addrs);
    buf_free(&counted.addrs);
    return 0;
}
