/*
 * fuzz_addr - libFuzzer target for lib/addr: MAIL FROM:/RCPT TO: arguments
 * and xtext (ENVID, ORCPT) come straight from SMTP clients.  Runs the path
 * parser and the address helpers, and checks that xtext_encode output always
 * decodes back to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "buf.h"

/* fuzz_addr_path - parse as a path; an accepted address is bounded and clean */
static void fuzz_addr_path(const char *s)
{
    buf_t a = BUF_INIT, lp = BUF_INIT;
    const char *params = NULL, *err = NULL;
    char *domains[] = {"example.org", "localhost", NULL};

    if (addr_parse_path(s, &a, &params, &err) == 0) {
        if (a.len > ADDR_MAX_LENGTH || params == NULL || params < s || params > s + strlen(s) ||
            memchr(buf_cstr(&a), '\n', a.len))
            abort();
        addr_local_part(buf_cstr(&a), &lp);
        (void)addr_domain_in_list(addr_domain(buf_cstr(&a)), domains);
        addr_qualify(&a, "example.org");
    } else if (err == NULL) {
        abort();
    }
    buf_free(&a);
    buf_free(&lp);
}

/* fuzz_addr_xtext - decode; re-encode what decoded and expect a round trip */
static void fuzz_addr_xtext(const char *s)
{
    buf_t dec = BUF_INIT, enc = BUF_INIT, again = BUF_INIT;

    if (xtext_decode(s, &dec) == 0 && strlen(buf_cstr(&dec)) == dec.len) {
        xtext_encode(buf_cstr(&dec), &enc);
        if (xtext_decode(buf_cstr(&enc), &again) != 0 || again.len != dec.len ||
            memcmp(buf_cstr(&again), buf_cstr(&dec), dec.len) != 0)
            abort();
    }
    buf_free(&dec);
    buf_free(&enc);
    buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    fuzz_addr_path(s);
    fuzz_addr_xtext(s);
    free(s);
    return 0;
}
