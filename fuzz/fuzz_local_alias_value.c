/*
 * fuzz_local_alias_value - libFuzzer target for local/targets.c: the split
 * of an alias value, a .forward or an :include: file into items (|command,
 * /file, :include:/path, \user, address), the text users write and local
 * then runs commands and writes files from.  Every item must come from the
 * input without crossing a line unless quoted, the splitter must always move
 * forward, and the classification must point inside the item.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "targets.h"

/* fuzz_item_check - one item and its kind */
static void fuzz_item_check(const char *item, size_t len, int quoted)
{
    const char *arg = NULL;
    enum local_item_kind kind = local_item_classify(item, &arg);

    if (strlen(item) != len || arg < item || arg > item + len)
        abort();
    if (!quoted && (len == 0 || strpbrk(item, ",\n")))
        abort(); /* an unquoted item never holds a separator */
    if (!quoted && kind != ITEM_COMMAND && strpbrk(item, " \t\r"))
        abort(); /* white space ends an unquoted item except a |command */
    switch (kind) {
    case ITEM_COMMAND:
        if (item[0] != '|' || *arg == ' ' || *arg == '\t')
            abort();
        break;
    case ITEM_FILE:
        if (item[0] != '/' || arg != item)
            abort();
        break;
    case ITEM_INCLUDE:
        if (len < 9 || *arg == ' ' || *arg == '\t')
            abort();
        break;
    case ITEM_USER:
        if (item[0] != '\\' || arg != item + 1)
            abort();
        break;
    case ITEM_ADDRESS:
        if (arg != item)
            abort();
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    buf_t text = BUF_INIT, item = BUF_INIT;
    const char *p, *end;
    size_t count = 0;

    buf_append(&text, data, size);
    p = buf_cstr(&text);
    end = p + strlen(p);
    for (;;) {
        const char *before = p;
        /* quoted: the first byte that is not a separator opens a quote */
        const char *first = p + strspn(p, ", \t\n\v\f\r");
        if (!local_item_next(&p, &item))
            break;
        if (p <= before || p > end || ++count > size)
            abort(); /* every item consumes input */
        fuzz_item_check(buf_cstr(&item), item.len, *first == '"' || *first == '#');
    }
    if (count == 0 && p != buf_cstr(&text))
        abort(); /* nothing found: *pp is left alone */
    buf_free(&text);
    buf_free(&item);
    return 0;
}
