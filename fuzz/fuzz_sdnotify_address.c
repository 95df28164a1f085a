/*
 * fuzz_sdnotify_address - libFuzzer target for lib/sdnotify's parser of
 * NOTIFY_SOCKET.  Checks: on success the length stays inside sockaddr_un,
 * a path is NUL-terminated inside sun_path, an abstract name starts with
 * NUL and holds the rest of the input; on -1 nothing is claimed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sdnotify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    struct sockaddr_un sa;
    socklen_t len = 0;
    size_t n;

    memcpy(text, data, size);
    text[size] = 0;
    n = strlen(text);
    if (sdnotify_address(text, &sa, &len) == 0) {
        if (len > sizeof(sa) || len <= offsetof(struct sockaddr_un, sun_path) + 1)
            abort();
        if (text[0] == '/' && strnlen(sa.sun_path, sizeof(sa.sun_path)) != n)
            abort();
        if (text[0] == '@' && (sa.sun_path[0] != 0 || memcmp(sa.sun_path + 1, text + 1, n - 1)))
            abort();
    }
    free(text);
    return 0;
}
