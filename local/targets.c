/*
 * targets - the item splitter and classifier for alias values, .forward
 * and :include: files (see targets.h).
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "targets.h"

/* local_item_next - see targets.h */
int local_item_next(const char **pp, buf_t *item)
{
    const char *p = *pp;

    buf_reset(item);
    for (;;) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        if (*p != '#')
            break;
        p += strcspn(p, "\n");
    }
    if (*p == 0)
        return 0;
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            buf_putc(item, *p);
        }
        if (*p == '"')
            p++;
    } else {
        const char *stop = *p == '|' ? ",\n" : ", \t\r\n";
        size_t n = strcspn(p, stop);
        buf_append(item, p, n);
        p += n;
    }
    *pp = p;
    return 1;
}

/* local_item_classify - see targets.h */
enum local_item_kind local_item_classify(const char *item, const char **arg)
{
    if (item[0] == '|') {
        *arg = item + 1 + strspn(item + 1, " \t");
        return ITEM_COMMAND;
    }
    if (item[0] == '/') {
        *arg = item;
        return ITEM_FILE;
    }
    if (strncasecmp(item, ":include:", 9) == 0) {
        *arg = item + 9 + strspn(item + 9, " \t");
        return ITEM_INCLUDE;
    }
    if (item[0] == '\\') {
        *arg = item + 1;
        return ITEM_USER;
    }
    *arg = item;
    return ITEM_ADDRESS;
}
