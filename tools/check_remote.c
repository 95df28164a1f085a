/*
 * check_remote - `tern check` asks each remote table one question.
 *
 * Every word of every parameter that names a table of a remote type (in a
 * map list or inside a restriction list: check_recipient_access ldap:...)
 * is opened directly, as the tools open tables, and looked up with a key
 * no directory holds.  "Not found" and "found" both prove the server
 * answers; a temporary failure is a problem: the server is down, the bind
 * is refused, the query is wrong.  The table code has logged the reason
 * (to stderr for the tools) just before the problem line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_remote.h"
#include "config.h"
#include "table.h"

#define CHECK_REMOTE_PROBE "tern-check-probe@invalid"

/* check_remote_is_remote - spec names a remote type ("optional:" allowed) */
static int check_remote_is_remote(const char *spec)
{
    static const char *types[] = {"ldap:", "pgsql:", "socketmap:", "proxy:", NULL};

    if (strncmp(spec, TABLE_OPTIONAL_PREFIX, strlen(TABLE_OPTIONAL_PREFIX)) == 0)
        spec += strlen(TABLE_OPTIONAL_PREFIX);
    for (int i = 0; types[i]; i++)
        if (strncmp(spec, types[i], strlen(types[i])) == 0)
            return 1;
    return 0;
}

/* check_remote_one - open spec and look the probe up; 1 on a problem */
static int check_remote_one(const char *param, const char *spec)
{
    buf_t err = BUF_INIT, value = BUF_INIT;
    struct table *t = table_open(spec, 0, &err);
    int problem = 1;

    if (t == NULL)
        printf("%s: %s\n", param, buf_cstr(&err));
    else if (table_lookup(t, CHECK_REMOTE_PROBE, &value) == TABLE_TEMPFAIL)
        printf("%s: cannot be queried: the lookup of %s failed (the reason is logged above)\n",
               spec, CHECK_REMOTE_PROBE);
    else
        problem = 0;
    table_close(t);
    buf_free(&err);
    buf_free(&value);
    return problem;
}

/* check_remote_seen - spec was checked already; else remember it */
static int check_remote_seen(char ***seen, size_t *count, const char *spec)
{
    for (size_t i = 0; i < *count; i++)
        if (strcmp((*seen)[i], spec) == 0)
            return 1;
    *seen = xrealloc(*seen, (*count + 1) * sizeof(char *));
    (*seen)[(*count)++] = xstrdup(spec);
    return 0;
}

int check_remote(const struct config *cfg)
{
    char **seen = NULL;
    size_t nseen = 0;
    int problems = 0;

    for (const struct param_def *p = param_table; p->name != NULL; p++) {
        size_t n;
        char *const *words;
        if (p->type != PARAM_LIST)
            continue;
        words = config_list(cfg, p->name, &n);
        for (size_t i = 0; i < n; i++)
            if (check_remote_is_remote(words[i]) && !check_remote_seen(&seen, &nseen, words[i]))
                problems += check_remote_one(p->name, words[i]);
    }
    for (size_t i = 0; i < nseen; i++)
        free(seen[i]);
    free(seen);
    return problems;
}
