/*
 * fuzz_makemap_line - libFuzzer target for tools/makemap.c: one line of
 * makemap's standard input (an admin's map text).  Byte 0 chooses the
 * syntax: bit 1 keeps the case of keys (-f), bit 2 allows empty values
 * (-e), bit 4 splits at ':' (-t :), bit 8 makes ';' the comment character
 * (-D ';').  An accepted entry has a key of 1 to TABLE_KEY_MAX bytes with
 * no separator and no upper case when folded, no NUL, and a value without
 * trailing white space; a rejected line says why.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "makemap.h"
#include "table.h"

/* fuzz_check_entry - the promises of an accepted line */
static void fuzz_check_entry(const struct makemap_syntax *syn, const buf_t *key, const buf_t *value)
{
    if (key->len == 0 || key->len > TABLE_KEY_MAX || strlen(key->data) != key->len)
        abort();
    for (size_t i = 0; i < key->len; i++) {
        int c = (unsigned char)key->data[i];
        if ((syn->sep ? c == syn->sep : c == ' ' || c == '\t') || (syn->fold && isupper(c)))
            abort();
    }
    if (!syn->allow_empty && value->len == 0)
        abort();
    if (value->len &&
        (strlen(value->data) != value->len || isspace((unsigned char)value->data[value->len - 1])))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct makemap_syntax syn = {0, '#', 1, 0};
    buf_t key = BUF_INIT, value = BUF_INIT, why = BUF_INIT;

    if (size < 1)
        return 0;
    syn.fold = !(data[0] & 1);
    syn.allow_empty = (data[0] & 2) != 0;
    syn.sep = data[0] & 4 ? ':' : 0;
    syn.comment = data[0] & 8 ? ';' : '#';
    switch (makemap_parse_line((const char *)data + 1, size - 1, &syn, &key, &value, &why)) {
    case MAKEMAP_ENTRY:
        fuzz_check_entry(&syn, &key, &value);
        break;
    case MAKEMAP_BAD:
        if (why.len == 0)
            abort();
        break;
    case MAKEMAP_SKIP:
        break;
    }
    buf_free(&key);
    buf_free(&value);
    buf_free(&why);
    return 0;
}
