/*
 * layout - create or check the queue directory tree (DESIGN §4).
 *
 * The queue top is owned by root (by the invoking user when not root) and
 * is not writable by mail_owner, so a compromised service cannot replace a
 * directory with a symlink.  Every directory below is owned by mail_owner.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "master.h"
#include "safefile.h"
#include "stats.h"

struct layout_dir {
    const char *name;
    mode_t mode;
    int hashed;     /* has 0..f subdirectories */
    int group_drop; /* group terndrop when that group exists */
};

static const struct layout_dir layout_dirs[] = {
    {"incoming", 0700, 0, 0}, {"active", 0700, 0, 0},  {"deferred", 0700, 1, 0},
    {"defer", 0700, 1, 0},    {"corrupt", 0700, 0, 0}, {"hold", 0700, 0, 0},
    {"private", 0700, 0, 0},  {"public", 0710, 0, 1},  {"maildrop", 01730, 0, 1},
    {NULL, 0, 0, 0},
};

/* layout_stats - the counter file (lib/stats.h) in data_directory; tern
 * runs without it (the counts are then lost), so only a warning */
static void layout_stats(const char *data_dir, uid_t uid, gid_t gid)
{
    char path[4096];

    if (stats_path(data_dir, path, sizeof(path)) < 0 || stats_file_prepare(path, uid, gid) < 0)
        log_warn("%s/%s: %m; statistics are not kept", data_dir, STATS_FILE_NAME);
}

/* layout_mkdir - create one directory with exact owner and mode */
static int layout_mkdir(const char *path, mode_t mode, uid_t uid, gid_t gid, buf_t *err)
{
    if (mkdir_owned(path, mode, uid, gid) < 0) {
        buf_printf(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int master_layout_create(const struct config *cfg, uid_t uid, gid_t gid, buf_t *err)
{
    const char *top = config_str(cfg, "queue_directory");
    const char *data = config_str(cfg, "data_directory");
    uid_t me = geteuid();
    buf_t path = BUF_INIT;
    struct group *gr = getgrnam("terndrop");
    int rc = 0;

    if (layout_mkdir(top, 0755, me, getegid(), err) < 0 ||
        layout_mkdir(data, 0700, uid, gid, err) < 0)
        return -1;
    buf_printf(&path, "%s/pid", top);
    rc = layout_mkdir(buf_cstr(&path), 0755, me, getegid(), err);
    for (const struct layout_dir *d = layout_dirs; rc == 0 && d->name; d++) {
        gid_t g = d->group_drop && gr && me == 0 ? gr->gr_gid : gid;
        buf_reset(&path);
        buf_printf(&path, "%s/%s", top, d->name);
        rc = layout_mkdir(buf_cstr(&path), d->mode, uid, g, err);
        for (int h = 0; rc == 0 && d->hashed && h < 16; h++) {
            buf_reset(&path);
            buf_printf(&path, "%s/%s/%x", top, d->name, h);
            rc = layout_mkdir(buf_cstr(&path), d->mode, uid, g, err);
        }
    }
    buf_free(&path);
    if (rc == 0)
        layout_stats(data, uid, gid);
    return rc;
}
