/*
 * fuzz_header_rewrite - libFuzzer target for the header rewriter cleanup
 * runs on every local submission and on mail from
 * local_header_rewrite_clients: lib/hdraddr's hdraddr_rewrite_section
 * driven by lib/route's route_rewrite_header (qualification, canonical
 * maps, masquerading), with a fixed configuration.  Input: a header
 * section.  Promises checked (abort when broken): the output has as many
 * header fields as the input, with the same names in the same order; a
 * field that is no sender or recipient header is copied byte for byte;
 * rewriting the output again changes nothing (the rewrite is idempotent
 * with these maps); every address the second pass sees is qualified.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "hdraddr.h"
#include "log.h"
#include "route.h"

static struct route *fuzz_route;
static struct config *fuzz_cfg; /* kept for the process: the route points into it */

/* fuzz_route_open - the fixed configuration, once */
static void fuzz_route_open(void)
{
    char dir[64] = "/tmp/fuzz_header_rewrite.XXXXXX";
    buf_t path = BUF_INIT, err = BUF_INIT;
    FILE *fp;

    log_init("fuzz", LOG_TARGET_FILE, "/dev/null");
    if (mkdtemp(dir) == NULL)
        abort();
    buf_printf(&path, "%s/tern.conf", dir);
    fp = fopen(path.data, "w");
    if (fp == NULL)
        abort();
    fprintf(fp, "myhostname = mx.example.com\nmyorigin = example.org\nmydestination = "
                "mx.example.com\nmasquerade_domains = !keep.example.com, example.com\n"
                "masquerade_exceptions = root\nappend_dot_mydomain = yes\nmydomain = example.com\n"
                "canonical_maps = inline:{@old.test=@new.test, joe@a.test=joseph@b.test}\n"
                "alias_maps =\nlocal_recipient_maps =\n");
    fclose(fp);
    if (config_load(dir, &fuzz_cfg, &err) < 0 || (fuzz_route = route_open(fuzz_cfg, &err)) == NULL)
        abort();
    unlink(path.data);
    rmdir(dir);
    buf_free(&path);
    buf_free(&err);
}

/* fuzz_rewrite_one - cleanup's callback (cleanup/message.c) */
static int fuzz_rewrite_one(enum hdraddr_class cls, const char *addr, buf_t *out, void *ctx)
{
    struct route_reply why;
    int rc;

    route_reply_init(&why);
    rc = route_rewrite_header(fuzz_route,
                              cls == HDRADDR_SENDER ? ROUTE_HEADER_SENDER : ROUTE_HEADER_RECIPIENT,
                              addr, out, &why);
    route_reply_free(&why);
    if (ctx && rc > 0)
        abort(); /* the second pass must find nothing to change */
    return rc > 0;
}

/* fuzz_field_end - same rule as hdraddr's: continuation lines belong */
static const char *fuzz_field_end(const char *p, const char *end)
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

/* fuzz_check_fields - same fields, names, and untouched non-address fields */
static void fuzz_check_fields(const char *a, size_t alen, const char *b, size_t blen)
{
    const char *pa = a, *ea = a + alen, *pb = b, *eb = b + blen;

    while (pa < ea) {
        const char *na = fuzz_field_end(pa, ea), *nb;
        const char *colon = memchr(pa, ':', (size_t)(na - pa));
        size_t name = colon ? (size_t)(colon + 1 - pa) : (size_t)(na - pa);

        if (pb >= eb)
            abort();
        nb = fuzz_field_end(pb, eb);
        if ((size_t)(nb - pb) < name || memcmp(pa, pb, name) != 0)
            abort();
        if ((colon == NULL || hdraddr_header_class(pa, (size_t)(colon - pa)) == HDRADDR_NONE) &&
            (na - pa != nb - pb || memcmp(pa, pb, (size_t)(na - pa)) != 0))
            abort();
        pa = na;
        pb = nb;
    }
    if (pb != eb)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    buf_t once = BUF_INIT, twice = BUF_INIT;
    int all = 1 << HDRADDR_SENDER | 1 << HDRADDR_RECIPIENT;
    static int dummy;

    if (fuzz_route == NULL)
        fuzz_route_open();
    hdraddr_rewrite_section((const char *)data, size, all, fuzz_rewrite_one, NULL, &once);
    fuzz_check_fields((const char *)data, size, once.data ? once.data : "", once.len);
    if (hdraddr_rewrite_section(once.data ? once.data : "", once.len, all, fuzz_rewrite_one, &dummy,
                                &twice) != 0)
        abort();
    if (twice.len != once.len || (once.len && memcmp(once.data, twice.data, once.len) != 0))
        abort();
    buf_free(&once);
    buf_free(&twice);
    return 0;
}
