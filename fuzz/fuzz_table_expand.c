/*
 * fuzz_table_expand - libFuzzer target for lib/table_expand: a lookup key
 * comes from any SMTP client, a template from the table's .cf file.  Input:
 * byte 0 picks the escape (0 none, 1 LDAP filter, 2 LDAP DN, 3 SQL), then
 * template NUL value NUL key (no second NUL: a query, key NULL).
 * Promises: a template table_expand_check refuses never expands; nothing
 * but OK changes the output; a template without '%' expands to itself; the
 * value alone ("%s") escaped holds no character its backend would read as
 * syntax and unescapes to the value byte for byte; the domain check never
 * allows a key without '@' or with an empty local part.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "table_expand.h"

static const table_expand_escape_fn fuzz_escapes[] = {NULL, table_expand_escape_ldap_filter,
                                                      table_expand_escape_ldap_dn,
                                                      table_expand_escape_sql_literal};

/* unhex - value of one hex digit */
static int unhex(char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

/* check_round_trip - "%s" of value escaped by kind, read back */
static void check_round_trip(int kind, const char *value)
{
    buf_t out = BUF_INIT;
    buf_t back = BUF_INIT;
    const char *reason = NULL;
    size_t i;

    if (table_expand("%s", value, NULL, fuzz_escapes[kind], &out, &reason) != TABLE_EXPAND_OK) {
        if (*value != 0 || out.len != 0)
            abort();
        return;
    }
    for (i = 0; i < out.len; i++) {
        char c = out.data[i];

        if ((kind == 1 || kind == 2) && ((unsigned char)c < ' ' || (unsigned char)c >= 0x7f))
            abort();
        if (kind == 1 && strchr("*()", c))
            abort();
        if (kind == 2 && strchr("\"+,;<>=", c))
            abort();
        if (kind == 3 && c == '\'' && out.data[++i] != '\'')
            abort();
        if ((kind == 1 || kind == 2) && c == '\\') {
            c = (char)(unhex(out.data[i + 1]) << 4 | unhex(out.data[i + 2]));
            i += 2;
        }
        buf_putc(&back, c);
    }
    if (kind && strcmp(buf_cstr(&back), value) != 0)
        abort();
    buf_free(&out);
    buf_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s;
    const char *format, *value, *key = NULL, *reason = NULL;
    const char *domains[] = {"example.com", "!x.test"};
    buf_t out = BUF_INIT;
    enum table_expand_status st;
    int kind;

    if (size < 1)
        return 0;
    kind = data[0] & 3;
    s = calloc(size + 2, 1);
    memcpy(s, data + 1, size - 1);
    format = s;
    value = s + strlen(s) + 1;
    if ((size_t)(value - s) < size && value + strlen(value) + 1 < s + size)
        key = value + strlen(value) + 1;
    buf_puts(&out, "=");
    st = table_expand(format, value, key, fuzz_escapes[kind], &out, &reason);
    if ((table_expand_check(format, &reason) < 0 && st != TABLE_EXPAND_ERROR) ||
        (st != TABLE_EXPAND_OK && (out.len != 1 || reason == NULL)))
        abort();
    if (st == TABLE_EXPAND_OK && !strchr(format, '%') && strcmp(out.data + 1, format) != 0)
        abort();
    if (table_expand_domain_allowed(domains, 2, value) &&
        (strrchr(value, '@') == NULL || strrchr(value, '@') == value))
        abort();
    check_round_trip(kind, value);
    buf_free(&out);
    free(s);
    return 0;
}
