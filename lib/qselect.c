/*
 * qselect - sendmail's queue-run selectors (see qselect.h).
 */
#include <string.h>

#include "config.h"
#include "qselect.h"

int qselect_parse(const char *text, struct qselect *sel)
{
    sel->kind = 0;
    sel->negate = 0;
    sel->needle = "";
    if (text == NULL || *text == 0)
        return 0;
    if (*text == '!') {
        sel->negate = 1;
        text++;
    }
    if (*text != 'R' && *text != 'S' && *text != 'I')
        return -1;
    sel->kind = *text++;
    if (*text == 0 || strlen(text) > QSELECT_MAX_NEEDLE)
        return -1;
    for (const char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return -1;
    sel->needle = text;
    return 0;
}

enum qselect_arg qselect_q_arg(const char *arg, long long *seconds, const char **selector)
{
    struct qselect sel;

    if (*arg >= '0' && *arg <= '9')
        return config_parse_time(arg, seconds) == 0 && *seconds > 0 ? QSELECT_INTERVAL
                                                                    : QSELECT_BAD;
    if (*arg == 'f')
        arg++;
    if (qselect_parse(arg, &sel) < 0)
        return QSELECT_BAD;
    *selector = arg;
    return QSELECT_RUN;
}

/* qselect_hit - the unnegated match */
static int qselect_hit(const struct qselect *sel, const char *id, const char *sender,
                       const char *const *rcpts, size_t count)
{
    switch (sel->kind) {
    case 'I':
        return strcasestr(id, sel->needle) != NULL;
    case 'S':
        return strcasestr(sender ? sender : "", sel->needle) != NULL;
    case 'R':
        for (size_t i = 0; i < count; i++)
            if (rcpts[i] && strcasestr(rcpts[i], sel->needle) != NULL)
                return 1;
        return 0;
    }
    return 1;
}

int qselect_match(const struct qselect *sel, const char *id, const char *sender,
                  const char *const *rcpts, size_t count)
{
    if (sel->kind == 0)
        return 1;
    return qselect_hit(sel, id, sender, rcpts, count) != sel->negate;
}
