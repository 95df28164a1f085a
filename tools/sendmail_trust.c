/*
 * sendmail_trust - which config directory a local submitter may use.
 *
 * sendmail and the set-gid terndrop never trust the environment: a config
 * directory other than the built-in default (from -C, -c or TERN_CONFIG_DIR)
 * is used only by root, or when the default config lists it in
 * alternate_config_directories (Postfix's rule for MAIL_CONFIG).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "sendmail.h"
#include "tern_build.h"

/* trust_same_dir - 1 when a and b name the same directory */
static int trust_same_dir(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];

    if (strcmp(a, b) == 0)
        return 1;
    if (realpath(a, ra) == NULL || realpath(b, rb) == NULL)
        return 0;
    return strcmp(ra, rb) == 0;
}

/* trust_listed - 1 when the default config lists dir as an alternate */
static int trust_listed(const char *dir)
{
    struct config *cfg;
    buf_t err = BUF_INIT;
    int found = 0;

    if (config_load(TERN_SYSCONFDIR, &cfg, &err) < 0) {
        buf_free(&err);
        return 0;
    }
    char *const *list = config_list(cfg, "alternate_config_directories", NULL);
    for (size_t i = 0; list[i] && !found; i++)
        found = trust_same_dir(list[i], dir);
    config_free(cfg);
    buf_free(&err);
    return found;
}

char *submit_config_dir(const char *requested, buf_t *err)
{
    const char *dir = requested;

    if (dir == NULL || *dir == 0)
        dir = getenv("TERN_CONFIG_DIR");
    if (dir == NULL || *dir == 0 || trust_same_dir(dir, TERN_SYSCONFDIR))
        return xstrdup(TERN_SYSCONFDIR);
    if (getuid() == 0 || trust_listed(dir))
        return xstrdup(dir);
    buf_printf(err,
               "config directory %s is not listed in alternate_config_directories of %s/tern.conf",
               dir, TERN_SYSCONFDIR);
    return NULL;
}
