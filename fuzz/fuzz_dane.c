/*
 * fuzz_dane - libFuzzer target for lib/dane.c (RFC 7672 TLSA records): the
 * input is a list of TLSA texts separated by NUL bytes.  An accepted text
 * has 1 to DANE_TLSA_MAX_DATA bytes of data (exactly 32 for SHA2-256, 64 for
 * SHA2-512), is usable exactly for usage 2-3, selector 0-1, matching type
 * 0-2, and printed as lib/dns prints it parses back to the same record
 * whose hex is the input's but for case; a refused one leaves the record
 * empty.  A set keeps
 * exactly the usable records, in order, and counts the others.  The TLSA
 * name of a text is "_PORT._tcp." and the text without one trailing dot.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "dane.h"

#define FUZZ_DANE_MAX_TEXTS 64

/* fuzz_dane_print - r as lib/dns prints a TLSA record */
static void fuzz_dane_print(const struct dane_tlsa *r, buf_t *out)
{
    buf_printf(out, "%u %u %u ", r->usage, r->selector, r->mtype);
    for (size_t i = 0; i < r->len; i++)
        buf_printf(out, "%02x", r->data[i]);
}

/* fuzz_dane_round_trip - r printed parses back to r, and its hex is the
 * end of text but for case */
static void fuzz_dane_round_trip(const char *text, const struct dane_tlsa *r)
{
    struct dane_tlsa again;
    buf_t printed = BUF_INIT;
    size_t hex = 2 * r->len;

    fuzz_dane_print(r, &printed);
    if (dane_tlsa_parse(buf_cstr(&printed), &again) != 0 || again.usage != r->usage ||
        again.selector != r->selector || again.mtype != r->mtype || again.len != r->len ||
        memcmp(again.data, r->data, r->len) != 0)
        abort();
    if (strlen(text) < hex ||
        strcasecmp(text + strlen(text) - hex, buf_cstr(&printed) + printed.len - hex) != 0)
        abort();
    buf_free(&printed);
    free(again.data);
}

static void fuzz_dane_check_one(const char *text)
{
    struct dane_tlsa r;

    if (dane_tlsa_parse(text, &r) != 0) {
        if (r.data != NULL || r.len != 0)
            abort();
        return;
    }
    if (r.data == NULL || r.len == 0 || r.len > DANE_TLSA_MAX_DATA)
        abort();
    if ((r.mtype == 1 && r.len != 32) || (r.mtype == 2 && r.len != 64))
        abort();
    if (dane_tlsa_usable(&r) != (r.usage >= 2 && r.usage <= 3 && r.selector <= 1 && r.mtype <= 2))
        abort();
    fuzz_dane_round_trip(text, &r);
    free(r.data);
}

static void fuzz_dane_check_name(const char *text, int port)
{
    buf_t name = BUF_INIT, want = BUF_INIT;
    size_t n = strlen(text);

    dane_tlsa_name(text, port, &name);
    buf_printf(&want, "_%d._tcp.%.*s", port, (int)(n > 0 && text[n - 1] == '.' ? n - 1 : n), text);
    if (strcmp(buf_cstr(&name), buf_cstr(&want)) != 0)
        abort();
    buf_free(&name);
    buf_free(&want);
}

/* fuzz_dane_check_set - the set of texts keeps exactly the usable ones */
static void fuzz_dane_check_set(char **texts, size_t n)
{
    struct dane_tlsa *set;
    size_t count, dropped = dane_tlsa_set(texts, &set, &count), k = 0;

    if (count + dropped != n || (count == 0) != (set == NULL))
        abort();
    for (size_t i = 0; i < n; i++) {
        struct dane_tlsa r;
        if (dane_tlsa_parse(texts[i], &r) == 0 && dane_tlsa_usable(&r)) {
            if (k >= count || set[k].len != r.len || memcmp(set[k].data, r.data, r.len) != 0)
                abort();
            k++;
        }
        free(r.data);
    }
    if (k != count)
        abort();
    dane_tlsa_free(set, count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    char *texts[FUZZ_DANE_MAX_TEXTS + 1];
    size_t n = 0;

    memcpy(copy, data, size);
    copy[size] = 0;
    for (char *p = copy; p <= copy + size && n < FUZZ_DANE_MAX_TEXTS; p += strlen(p) + 1)
        texts[n++] = p;
    texts[n] = NULL;
    for (size_t i = 0; i < n; i++)
        fuzz_dane_check_one(texts[i]);
    fuzz_dane_check_name(texts[0], (int)(size % 65536));
    fuzz_dane_check_set(texts, n);
    free(copy);
    return 0;
}
