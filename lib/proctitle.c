/*
 * proctitle - argv/environ overwrite for `ps` titles (see proctitle.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proctitle.h"

extern char **environ;

static char *proctitle_area;  /* argv[0]: the first byte ps reads */
static size_t proctitle_size; /* contiguous bytes from argv[0] on */
static char proctitle_program[32];

/* proctitle_area_end - the end of the argv strings and of the environment
 * strings that follow them without a gap */
static char *proctitle_area_end(int argc, char **argv)
{
    char *end = argv[0];

    for (int i = 0; i < argc && argv[i] != NULL; i++)
        if (argv[i] == end)
            end = argv[i] + strlen(argv[i]) + 1;
    for (int i = 0; environ != NULL && environ[i] != NULL; i++)
        if (environ[i] == end)
            end = environ[i] + strlen(environ[i]) + 1;
    return end;
}

/* proctitle_move_environ - copy the environment to the heap; 0 or -1 */
static int proctitle_move_environ(void)
{
    size_t n = 0;
    char **copy;

    while (environ != NULL && environ[n] != NULL)
        n++;
    if ((copy = calloc(n + 1, sizeof(*copy))) == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((copy[i] = strdup(environ[i])) == NULL)
            return -1; /* leaks the partial copy: once, at start-up */
    environ = copy;
    return 0;
}

void proctitle_init(int argc, char **argv, const char *program)
{
    char *start, *end;

    if (argc < 1 || argv[0] == NULL || proctitle_area != NULL)
        return;
    start = argv[0];
    end = proctitle_area_end(argc, argv);
    if (proctitle_move_environ() < 0)
        return;
    for (int i = 0; i < argc && argv[i] != NULL; i++)
        if ((argv[i] = strdup(argv[i])) == NULL)
            return;
    snprintf(proctitle_program, sizeof(proctitle_program), "%s", program);
    proctitle_area = start;
    proctitle_size = (size_t)(end - start);
}

void proctitle_set(const char *fmt, ...)
{
    va_list ap;
    int n;

    if (proctitle_area == NULL || proctitle_size < 2)
        return;
    memset(proctitle_area, 0, proctitle_size);
    n = snprintf(proctitle_area, proctitle_size - 1, "%s: ", proctitle_program);
    if (n < 0 || (size_t)n >= proctitle_size - 1)
        return;
    va_start(ap, fmt);
    vsnprintf(proctitle_area + n, proctitle_size - 1 - (size_t)n, fmt, ap);
    va_end(ap);
}
