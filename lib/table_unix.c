/*
 * table_unix - unix:passwd.byname: key = login name (getpwnam_r, never
 * case-folded), value = the home directory.  Lets local_recipient_maps =
 * unix:passwd.byname, $alias_maps work the Postfix way.
 */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "table_impl.h"

#define UNIX_PW_BUF_MAX (1024 * 1024)

static enum table_result unix_passwd_lookup(struct table *t, const char *key, buf_t *value)
{
    struct passwd pw, *found = NULL;
    size_t size = 1024;
    char *mem = NULL;
    int rc;

    do {
        size *= 2;
        mem = xrealloc(mem, size);
        rc = getpwnam_r(key, &pw, mem, size, &found);
    } while (rc == ERANGE && size < UNIX_PW_BUF_MAX);
    if (rc == 0 && found)
        buf_set(value, pw.pw_dir);
    free(mem);
    if (rc == 0)
        return found ? TABLE_FOUND : TABLE_NOTFOUND;
    if (rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)
        return TABLE_NOTFOUND; /* glibc's ways to say "no such user" */
    log_warn("%s: getpwnam(%s): %s", t->spec, key, strerror(rc));
    return TABLE_TEMPFAIL;
}

static void unix_close(struct table *t)
{
}

static const struct table_ops unix_passwd_ops = {"unix", 0,          unix_passwd_lookup,
                                                 NULL,   unix_close, NULL};

int table_open_unix(struct table *t, const char *name, buf_t *err)
{
    if (strcmp(name, "passwd.byname") != 0) {
        buf_printf(err, "unknown unix: table (known: passwd.byname)");
        return -1;
    }
    t->flags |= TABLE_CASE_SENSITIVE;
    t->ops = &unix_passwd_ops;
    return 0;
}
