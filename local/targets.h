/*
 * targets - splitting an alias value, a .forward or an :include: file into
 * its items and telling what each item is (docs/local.md).  Pure string
 * functions with no delivery state, so expand.c and the fuzz target share
 * them.
 *
 * Items are separated by commas, new lines and (outside quotes and
 * |commands) white space; "..." quotes an item (a backslash escapes the next
 * byte inside); '#' at the start of an item skips to the end of its line.
 * An item is a |command, a /file, an :include:/path (case-insensitive
 * prefix), a \user (mailbox only) or an address.
 */
#ifndef TERN_LOCAL_TARGETS_H
#define TERN_LOCAL_TARGETS_H

#include "buf.h"

enum local_item_kind { ITEM_COMMAND, ITEM_FILE, ITEM_INCLUDE, ITEM_USER, ITEM_ADDRESS };

/* local_item_next - the next item of the list at *pp into item (without its
 * quotes) and advance *pp; 0 at the end of the list */
int local_item_next(const char **pp, buf_t *item);
/* local_item_classify - the kind of item; *arg points into item at what it
 * names: the command (leading blanks skipped), the file (the whole item),
 * the include path (blanks skipped), the user (after '\'), the address */
enum local_item_kind local_item_classify(const char *item, const char **arg);

#endif
