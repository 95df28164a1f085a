/*
 * table_lmdb - lmdb:/path tables: path.lmdb, built from the text file path
 * by table_build (tern map, newaliases) into a temp file that is renamed
 * into place, so readers never see a half-built table.  Readers open the
 * file read-only without a lock file (MDB_NOLOCK is safe: nobody writes a
 * published file) and stat() it before every lookup: a new inode or mtime
 * means a rebuild, and the table is reopened.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "log.h"
#include "safefile.h"
#include "table_impl.h"

/* the build record: a key no lookup can ask for (it starts with NUL) */
static const char lmdb_meta_key[] = "\0tern-table-flags";
#define LMDB_META_KEY_LEN (sizeof(lmdb_meta_key) - 1)
#define LMDB_MIN_MAPSIZE (16UL * 1024 * 1024)

struct table_lmdb {
    char *path; /* path.lmdb */
    MDB_env *env;
    MDB_txn *txn; /* a reset read transaction, renewed per lookup */
    MDB_dbi dbi;
    struct stat st;           /* of the file env has open */
    unsigned long generation; /* bumped at every reopen */
};

/* lmdb_close_env - drop the open environment, if any */
static void lmdb_close_env(struct table_lmdb *l)
{
    if (l->txn)
        mdb_txn_abort(l->txn);
    if (l->env)
        mdb_env_close(l->env);
    l->txn = NULL;
    l->env = NULL;
}

/* lmdb_read_flags - the flags recorded by table_build (0 when absent) */
static int lmdb_read_flags(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_val k = {LMDB_META_KEY_LEN, (void *)lmdb_meta_key}, v;
    char text[16];

    if (mdb_get(txn, dbi, &k, &v) != 0 || v.mv_size == 0 || v.mv_size >= sizeof(text))
        return 0;
    memcpy(text, v.mv_data, v.mv_size);
    text[v.mv_size] = 0;
    return atoi(text) & (TABLE_ALIASES | TABLE_CASE_SENSITIVE);
}

/* lmdb_open_env - open l->path; *flags gets the build flags; -1 with err */
static int lmdb_open_env(struct table_lmdb *l, int *flags, buf_t *err)
{
    int rc, fd;

    if ((rc = mdb_env_create(&l->env)) == 0 &&
        (rc = mdb_env_open(l->env, l->path, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0)) == 0 &&
        (rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &l->txn)) == 0 &&
        (rc = mdb_dbi_open(l->txn, NULL, 0, &l->dbi)) == 0 &&
        (rc = mdb_env_get_fd(l->env, &fd)) == 0 && (rc = fstat(fd, &l->st) < 0 ? errno : 0) == 0) {
        *flags = lmdb_read_flags(l->txn, l->dbi);
        mdb_txn_reset(l->txn);
        return 0;
    }
    buf_printf(err, "cannot open %s: %s", l->path, mdb_strerror(rc));
    if (rc == ENOENT)
        buf_puts(err, " (build it with: tern map)");
    lmdb_close_env(l);
    return -1;
}

/* lmdb_refresh - reopen when path.lmdb was replaced; -1 when unreadable */
static int lmdb_refresh(struct table *t, struct table_lmdb *l)
{
    struct stat st;
    buf_t err = BUF_INIT;
    int flags;

    if (stat(l->path, &st) < 0) {
        log_warn("%s: cannot stat %s: %s", t->spec, l->path, strerror(errno));
        return -1;
    }
    if (l->env && st.st_dev == l->st.st_dev && st.st_ino == l->st.st_ino &&
        st.st_mtim.tv_sec == l->st.st_mtim.tv_sec && st.st_mtim.tv_nsec == l->st.st_mtim.tv_nsec &&
        st.st_size == l->st.st_size)
        return 0;
    lmdb_close_env(l);
    if (lmdb_open_env(l, &flags, &err) < 0) {
        log_warn("%s: %s", t->spec, err.data);
        buf_free(&err);
        return -1;
    }
    t->flags = flags;
    l->generation++;
    log_debug("%s: reopened %s after a rebuild", t->spec, l->path);
    return 0;
}

static enum table_result lmdb_lookup(struct table *t, const char *key, buf_t *value)
{
    struct table_lmdb *l = t->impl;
    buf_t tmp = BUF_INIT;
    MDB_val k, v;
    int rc;

    if (lmdb_refresh(t, l) < 0)
        return TABLE_TEMPFAIL;
    if ((rc = mdb_txn_renew(l->txn)) != 0) {
        log_warn("%s: %s: %s", t->spec, l->path, mdb_strerror(rc));
        return TABLE_TEMPFAIL;
    }
    k.mv_data = (void *)table_key_fold(key, t->flags, &tmp);
    k.mv_size = strlen(k.mv_data);
    rc = mdb_get(l->txn, l->dbi, &k, &v);
    if (rc == 0) {
        buf_reset(value);
        buf_append(value, v.mv_data, v.mv_size);
    }
    mdb_txn_reset(l->txn);
    buf_free(&tmp);
    if (rc == 0)
        return TABLE_FOUND;
    if (rc == MDB_NOTFOUND)
        return TABLE_NOTFOUND;
    log_warn("%s: %s: %s", t->spec, l->path, mdb_strerror(rc));
    return TABLE_TEMPFAIL;
}

/* lmdb_walk_cursor - every record but the build record, in key order */
static int lmdb_walk_cursor(MDB_cursor *c, table_walk_fn fn, void *ctx)
{
    MDB_val k, v;
    buf_t key = BUF_INIT, value = BUF_INIT;
    int rc;

    while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
        if (k.mv_size > 0 && ((char *)k.mv_data)[0] == 0)
            continue;
        buf_reset(&key);
        buf_append(&key, k.mv_data, k.mv_size);
        buf_reset(&value);
        buf_append(&value, v.mv_data, v.mv_size);
        if (fn(key.data, value.data, ctx))
            break;
    }
    buf_free(&key);
    buf_free(&value);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : rc;
}

static int lmdb_walk(struct table *t, table_walk_fn fn, void *ctx, buf_t *err)
{
    struct table_lmdb *l = t->impl;
    MDB_cursor *c = NULL;
    int rc;

    if (lmdb_refresh(t, l) < 0) {
        buf_printf(err, "cannot read %s", l->path);
        return -1;
    }
    if ((rc = mdb_txn_renew(l->txn)) == 0 && (rc = mdb_cursor_open(l->txn, l->dbi, &c)) == 0)
        rc = lmdb_walk_cursor(c, fn, ctx);
    if (c)
        mdb_cursor_close(c);
    mdb_txn_reset(l->txn);
    if (rc != 0) {
        buf_printf(err, "cannot read %s: %s", l->path, mdb_strerror(rc));
        return -1;
    }
    return 0;
}

static void lmdb_close(struct table *t)
{
    struct table_lmdb *l = t->impl;

    lmdb_close_env(l);
    free(l->path);
    free(l);
}

/* lmdb_generation - the reopen count, after a check for a rebuild */
static unsigned long lmdb_generation(struct table *t)
{
    struct table_lmdb *l = t->impl;

    (void)lmdb_refresh(t, l);
    return l->generation;
}

static const struct table_ops lmdb_ops = {"lmdb",    0,          lmdb_lookup,
                                          lmdb_walk, lmdb_close, lmdb_generation};

/* lmdb_path - "name.lmdb" */
static char *lmdb_path(const char *name)
{
    buf_t b = BUF_INIT;

    buf_printf(&b, "%s.lmdb", name);
    return buf_steal(&b);
}

int table_open_lmdb(struct table *t, const char *name, buf_t *err)
{
    struct table_lmdb *l = xcalloc(1, sizeof(*l));
    int flags;

    l->path = lmdb_path(name);
    if (lmdb_open_env(l, &flags, err) < 0) {
        free(l->path);
        free(l);
        return -1;
    }
    t->flags = flags | (t->flags & ~(TABLE_ALIASES | TABLE_CASE_SENSITIVE));
    t->ops = &lmdb_ops;
    t->impl = l;
    return 0;
}

int table_build_flags(const char *path)
{
    struct table_lmdb l = {lmdb_path(path), NULL, NULL, 0, {0}, 0};
    buf_t err = BUF_INIT;
    int flags;

    if (lmdb_open_env(&l, &flags, &err) < 0)
        flags = -1;
    lmdb_close_env(&l);
    free(l.path);
    buf_free(&err);
    return flags;
}

/* ---- table_build */

struct lmdb_build {
    const char *path; /* the text file */
    int flags;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    struct table_build_stats stats;
};

/* build_put - one entry; a duplicate is warned about and skipped */
static int build_put(struct lmdb_build *b, const buf_t *key, const buf_t *value, const char *where,
                     buf_t *err)
{
    MDB_val k = {key->len, key->data}, v = {value->len, value->data};
    int rc = mdb_put(b->txn, b->dbi, &k, &v, MDB_NOOVERWRITE);

    if (rc == MDB_KEYEXIST) {
        log_warn("%s: duplicate key \"%s\" ignored (the first one wins)", where, key->data);
        return 0;
    }
    if (rc != 0) {
        buf_printf(err, "%s: cannot store: %s", where, mdb_strerror(rc));
        return -1;
    }
    b->stats.entries++;
    b->stats.total += key->len + value->len;
    if (value->len > b->stats.longest)
        b->stats.longest = value->len;
    return 0;
}

/* build_entries - read the text file into the open transaction */
static int build_entries(struct lmdb_build *b, buf_t *err)
{
    struct table_text r;
    buf_t line = BUF_INIT, key = BUF_INIT, value = BUF_INIT, where = BUF_INIT;
    size_t lineno = 0;
    int rc;

    if (table_text_open(&r, b->path, err) < 0)
        return -1;
    while ((rc = table_text_next(&r, &line, &lineno, err)) > 0) {
        table_where(&where, b->path, lineno);
        rc = table_text_split(buf_cstr(&line), b->flags, &key, &value, where.data, err);
        if (rc < 0 || (rc = build_put(b, &key, &value, where.data, err)) < 0)
            break;
    }
    table_text_close(&r);
    buf_free(&line);
    buf_free(&key);
    buf_free(&value);
    buf_free(&where);
    return rc < 0 ? -1 : 0;
}

/* build_meta - record the flags the table was built with */
static int build_meta(struct lmdb_build *b)
{
    char text[16];
    int n = snprintf(text, sizeof(text), "%d", b->flags & (TABLE_ALIASES | TABLE_CASE_SENSITIVE));
    MDB_val k = {LMDB_META_KEY_LEN, (void *)lmdb_meta_key}, v = {(size_t)n, text};

    return mdb_put(b->txn, b->dbi, &k, &v, 0);
}

/* build_temp - an empty temp file next to path.lmdb, with the text
 * file's permissions (and owner, as root) */
static int build_temp(const char *path, buf_t *tmp, buf_t *err)
{
    struct stat st;
    int fd;

    if (stat(path, &st) < 0) {
        buf_printf(err, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    buf_printf(tmp, "%s.lmdb.XXXXXX", path);
    if ((fd = mkstemp(tmp->data)) < 0) {
        buf_printf(err, "cannot create %s: %s", tmp->data, strerror(errno));
        return -1;
    }
    if (fchmod(fd, st.st_mode & 0666) < 0 ||
        (geteuid() == 0 && fchown(fd, st.st_uid, st.st_gid) < 0)) {
        buf_printf(err, "cannot set the mode of %s: %s", tmp->data, strerror(errno));
        close(fd);
        unlink(tmp->data);
        return -1;
    }
    close(fd);
    return 0;
}

/* build_mapsize - room for the text file's entries several times over */
static size_t build_mapsize(const char *path)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return LMDB_MIN_MAPSIZE;
    return LMDB_MIN_MAPSIZE + (size_t)st.st_size * 16;
}

/* build_write - fill the temp file and make it durable */
static int build_write(struct lmdb_build *b, const char *tmp, buf_t *err)
{
    int rc;

    if ((rc = mdb_env_create(&b->env)) != 0 ||
        (rc = mdb_env_set_mapsize(b->env, build_mapsize(b->path))) != 0 ||
        (rc = mdb_env_open(b->env, tmp, MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC, 0600)) != 0 ||
        (rc = mdb_txn_begin(b->env, NULL, 0, &b->txn)) != 0 ||
        (rc = mdb_dbi_open(b->txn, NULL, 0, &b->dbi)) != 0) {
        buf_printf(err, "cannot create %s: %s", tmp, mdb_strerror(rc));
        return -1;
    }
    if (build_entries(b, err) < 0)
        return -1;
    if ((rc = build_meta(b)) == 0) {
        rc = mdb_txn_commit(b->txn); /* frees the transaction, even on failure */
        b->txn = NULL;
    }
    if (rc == 0)
        rc = mdb_env_sync(b->env, 1);
    if (rc != 0) {
        buf_printf(err, "cannot write %s: %s", tmp, mdb_strerror(rc));
        return -1;
    }
    return 0;
}

int table_build(const char *path, int flags, struct table_build_stats *stats, buf_t *err)
{
    struct lmdb_build b = {.path = path, .flags = flags};
    buf_t tmp = BUF_INIT;
    char *final = lmdb_path(path);
    int rc = -1;

    if (build_temp(path, &tmp, err) < 0)
        goto done;
    rc = build_write(&b, tmp.data, err);
    if (b.txn)
        mdb_txn_abort(b.txn);
    if (b.env)
        mdb_env_close(b.env);
    if (rc == 0 && rename(tmp.data, final) < 0) {
        buf_printf(err, "cannot rename %s to %s: %s", tmp.data, final, strerror(errno));
        rc = -1;
    }
    if (rc < 0)
        unlink(tmp.data);
    else
        fsync_dir(final);
done:
    if (rc == 0 && stats)
        *stats = b.stats;
    buf_free(&tmp);
    free(final);
    return rc;
}
