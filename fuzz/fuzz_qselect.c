/*
 * fuzz_qselect - libFuzzer target for lib/qselect: a queue-run selector
 * comes from any local user (sendmail -q..., qmgr.flush on public/qmgr).
 * An accepted selector has a known kind, a bounded needle without control
 * characters that points into the input, and matching never crashes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qselect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    const char *rcpts[] = {"a@b.test", s};
    const char *sel_text = NULL;
    struct qselect sel;
    long long seconds;

    memcpy(s, data, size);
    s[size] = 0;
    if (qselect_parse(s, &sel) == 0) {
        if ((sel.kind && !strchr("RSI", sel.kind)) || strlen(sel.needle) > QSELECT_MAX_NEEDLE ||
            (sel.kind && (sel.needle < s || sel.needle > s + size)))
            abort();
        (void)qselect_match(&sel, s, s, rcpts, 2);
    }
    if (qselect_q_arg(s, &seconds, &sel_text) == QSELECT_INTERVAL && seconds <= 0)
        abort();
    free(s);
    return 0;
}
