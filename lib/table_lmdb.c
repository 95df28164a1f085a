/*
 * table_lmdb - the LMDB tables: lmdb:/path reads path.lmdb, and hash:,
 * btree: and dbm: are the same tables under sendmail's file names
 * (table_file_path).  They are built by table_build_from (tern map,
 * newaliases, makemap) into a temp file that is renamed into place, so
 * readers never see a half-built table.  Readers open the file read-only
 * without a lock file (MDB_NOLOCK is safe: nobody writes a published file)
 * and stat() it before every lookup: a new inode or mtime means a rebuild,
 * and the table is reopened; for an optional table a missing file means an
 * empty table, until the file appears.
 */
#include <errno.h>
#include <fcntl.h>
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
#define LMDB_STREAM_MAPSIZE (1024UL * 1024 * 1024) /* input of unknown size */
#define LMDB_BUILD_FLAGS (TABLE_ALIASES | TABLE_CASE_SENSITIVE)

/* the file names of the LMDB types: sendmail's for hash, btree and dbm */
static const struct {
    const char *type;
    const char *suffix;
    const char *companion; /* an empty file made next to it, for Makefiles */
} lmdb_files[] = {
    {"lmdb", ".lmdb", NULL}, {"hash", ".db", NULL}, {"btree", ".db", NULL},
    {"dbm", ".dir", ".pag"}, {NULL, NULL, NULL},
};

/* lmdb_file_of - the row for type, or -1 */
static int lmdb_file_of(const char *type)
{
    for (int i = 0; lmdb_files[i].type; i++)
        if (strcmp(lmdb_files[i].type, type) == 0)
            return i;
    return -1;
}

/* lmdb_suffix_length - the length of name's ending when it is already
 * row's suffix (sendmail's "hash /etc/mail/mailertable.db"), else 0 */
static size_t lmdb_suffix_length(const char *name, int row)
{
    size_t n = strlen(name), k = strlen(lmdb_files[row].suffix);

    return n > k && strcmp(name + n - k, lmdb_files[row].suffix) == 0 ? k : 0;
}

int table_file_path(const char *type, const char *name, buf_t *path)
{
    int i = lmdb_file_of(type);

    if (i < 0)
        return -1;
    buf_reset(path);
    buf_puts(path, name);
    if (lmdb_suffix_length(name, i) == 0)
        buf_puts(path, lmdb_files[i].suffix);
    return 0;
}

/* lmdb_rebuild_hint - the command that builds type's file for name (the
 * text file is name without the table file's suffix) */
static void lmdb_rebuild_hint(const char *type, const char *name, buf_t *hint)
{
    int n = (int)(strlen(name) - lmdb_suffix_length(name, lmdb_file_of(type)));

    if (strcmp(type, "lmdb") == 0)
        buf_printf(hint, "tern map %.*s", n, name);
    else
        buf_printf(hint, "makemap %s %.*s < %.*s", type, n, name, n, name);
}

struct table_lmdb {
    const char *type; /* lmdb, hash, btree, dbm */
    char *name;       /* the base name */
    char *path;       /* its file (table_file_path) */
    MDB_env *env;
    MDB_txn *txn; /* a reset read transaction, renewed per lookup */
    MDB_dbi dbi;
    struct stat st;           /* of the file env has open */
    unsigned long generation; /* bumped at every reopen */
    unsigned long checked;    /* the refresh epoch of the last good check (table.h) */
};

/* lmdb_init - type's file for name; -1 for a type that is not LMDB */
static int lmdb_init(struct table_lmdb *l, const char *type, const char *name)
{
    buf_t path = BUF_INIT;

    memset(l, 0, sizeof(*l));
    if (table_file_path(type, name, &path) < 0)
        return -1;
    l->type = type;
    l->name = xstrdup(name);
    l->path = buf_steal(&path);
    return 0;
}

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

static void lmdb_free(struct table_lmdb *l)
{
    lmdb_close_env(l);
    free(l->name);
    free(l->path);
}

/* lmdb_read_flags - the flags recorded by the build (0 when absent) */
static int lmdb_read_flags(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_val k = {LMDB_META_KEY_LEN, (void *)lmdb_meta_key}, v;
    char text[16];

    if (mdb_get(txn, dbi, &k, &v) != 0 || v.mv_size == 0 || v.mv_size >= sizeof(text))
        return 0;
    memcpy(text, v.mv_data, v.mv_size);
    text[v.mv_size] = 0;
    return atoi(text) & LMDB_BUILD_FLAGS;
}

/* lmdb_is_foreign - the open failed because the file is not an LMDB file
 * (a Berkeley DB or ndbm file left behind by sendmail, or an empty one) */
static int lmdb_is_foreign(const char *path, int rc)
{
    struct stat st;

    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
        return 1;
    return rc != ENOENT && rc != EACCES && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
           st.st_size == 0;
}

/* lmdb_open_error - why l->path cannot be opened, and what rebuilds it */
static void lmdb_open_error(const struct table_lmdb *l, int rc, buf_t *err)
{
    buf_t hint = BUF_INIT;

    lmdb_rebuild_hint(l->type, l->name, &hint);
    if (lmdb_is_foreign(l->path, rc))
        buf_printf(err, "%s: not a tern (LMDB) table -- rebuild it with: %s", l->path, hint.data);
    else if (rc == ENOENT)
        buf_printf(err, "cannot open %s: %s (build it with: %s)", l->path, mdb_strerror(rc),
                   hint.data);
    else
        buf_printf(err, "cannot open %s: %s", l->path, mdb_strerror(rc));
    buf_free(&hint);
}

/* lmdb_open_env - open l->path; *flags gets the build flags; 0, or the
 * LMDB/errno code with err set */
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
    lmdb_open_error(l, rc, err);
    lmdb_close_env(l);
    return rc;
}

/* lmdb_same_file - st is the file env has open */
static int lmdb_same_file(const struct table_lmdb *l, const struct stat *st)
{
    return l->env && st->st_dev == l->st.st_dev && st->st_ino == l->st.st_ino &&
           st->st_mtim.tv_sec == l->st.st_mtim.tv_sec &&
           st->st_mtim.tv_nsec == l->st.st_mtim.tv_nsec && st->st_size == l->st.st_size;
}

/* lmdb_absent - an optional table's file is missing: empty from now on */
static int lmdb_absent(struct table *t, struct table_lmdb *l)
{
    if (l->env)
        l->generation++; /* it was there: its contents are gone */
    lmdb_close_env(l);
    table_warn_missing(t, l->path);
    return 1;
}

/* lmdb_refresh - reopen when the file was replaced: 0 open, 1 absent (an
 * optional table: empty), -1 unreadable */
static int lmdb_refresh(struct table *t, struct table_lmdb *l)
{
    struct stat st;
    buf_t err = BUF_INIT;
    int flags, rc;
    unsigned long epoch = table_refresh_epoch();

    if (epoch != 0 && l->checked == epoch && l->env != NULL)
        return 0; /* checked in this epoch already */
    l->checked = 0;
    if (stat(l->path, &st) < 0) {
        if (errno == ENOENT && (t->flags & TABLE_OPTIONAL))
            return lmdb_absent(t, l);
        log_warn("%s: cannot stat %s: %s", t->spec, l->path, strerror(errno));
        return -1;
    }
    if (lmdb_same_file(l, &st)) {
        l->checked = epoch;
        return 0;
    }
    lmdb_close_env(l);
    if ((rc = lmdb_open_env(l, &flags, &err)) != 0) {
        if (rc == ENOENT && (t->flags & TABLE_OPTIONAL)) {
            buf_free(&err);
            return lmdb_absent(t, l);
        }
        log_warn("%s: %s", t->spec, err.data);
        buf_free(&err);
        return -1;
    }
    t->flags = flags | (t->flags & ~LMDB_BUILD_FLAGS);
    l->generation++;
    l->checked = epoch;
    log_debug("%s: reopened %s after a rebuild", t->spec, l->path);
    return 0;
}

static enum table_result lmdb_lookup(struct table *t, const char *key, buf_t *value)
{
    struct table_lmdb *l = t->impl;
    buf_t tmp = BUF_INIT;
    MDB_val k, v;
    int rc = lmdb_refresh(t, l);

    if (rc != 0)
        return rc > 0 ? TABLE_NOTFOUND : TABLE_TEMPFAIL;
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

/* lmdb_env_walk - fn for every entry of the open environment; -1 with err */
static int lmdb_env_walk(struct table_lmdb *l, table_walk_fn fn, void *ctx, buf_t *err)
{
    MDB_cursor *c = NULL;
    int rc;

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

static int lmdb_walk(struct table *t, table_walk_fn fn, void *ctx, buf_t *err)
{
    struct table_lmdb *l = t->impl;
    int rc = lmdb_refresh(t, l);

    if (rc < 0) {
        buf_printf(err, "cannot read %s", l->path);
        return -1;
    }
    return rc > 0 ? 0 : lmdb_env_walk(l, fn, ctx, err);
}

static void lmdb_close(struct table *t)
{
    lmdb_free(t->impl);
    free(t->impl);
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

int table_open_lmdb(struct table *t, const char *name, buf_t *err)
{
    struct table_lmdb *l = xcalloc(1, sizeof(*l));
    buf_t why = BUF_INIT;
    int flags = t->flags & LMDB_BUILD_FLAGS, rc;

    if (lmdb_init(l, t->type, name) < 0)
        log_panic("table_open_lmdb: %s is not an LMDB type", t->type);
    rc = lmdb_open_env(l, &flags, &why);
    if (rc == ENOENT && (t->flags & TABLE_OPTIONAL)) {
        table_warn_missing(t, l->path);
    } else if (rc != 0) {
        buf_puts(err, why.data);
        buf_free(&why);
        lmdb_free(l);
        free(l);
        return -1;
    }
    buf_free(&why);
    t->flags = flags | (t->flags & ~LMDB_BUILD_FLAGS);
    t->ops = &lmdb_ops;
    t->impl = l;
    return 0;
}

int table_build_flags(const char *type, const char *path)
{
    struct table_lmdb l;
    buf_t err = BUF_INIT;
    int flags;

    if (lmdb_init(&l, type, path) < 0)
        return -1;
    if (lmdb_open_env(&l, &flags, &err) != 0)
        flags = -1;
    lmdb_free(&l);
    buf_free(&err);
    return flags;
}

/* ---- building */

struct lmdb_build {
    const struct table_build_request *req;
    const struct table_build_source *src;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    struct table_build_stats stats;
    enum table_build_status status; /* of a failure */
};

/* the new file's permissions and owner (table.h: Building) */
struct build_mode {
    mode_t mode;
    uid_t uid; /* (uid_t)-1: leave it */
    gid_t gid; /* (gid_t)-1: leave it (a set-gid directory's group) */
};

/* build_dir_setgid - the directory holding path has the set-gid bit */
static int build_dir_setgid(const char *path)
{
    buf_t dir = BUF_INIT;
    struct stat st;
    int setgid;

    table_dir_of(path, &dir);
    setgid = stat(dir.data, &st) == 0 && (st.st_mode & S_ISGID);
    buf_free(&dir);
    return setgid;
}

/* build_mode_of - the text file's mode, else the old file's, else 0640
 * in a set-gid directory and 0644 elsewhere; never group/world-writable */
static void build_mode_of(const char *name, const char *final, struct build_mode *m)
{
    int setgid = build_dir_setgid(final), root = geteuid() == 0;
    struct stat st;

    m->uid = (uid_t)-1;
    m->gid = (gid_t)-1;
    if ((stat(name, &st) == 0 && S_ISREG(st.st_mode)) || stat(final, &st) == 0) {
        m->mode = st.st_mode & 0644;
        if (root)
            m->uid = st.st_uid;
        if (root && !setgid)
            m->gid = st.st_gid;
        return;
    }
    m->mode = setgid ? 0640 : 0644;
}

/* build_apply_mode - give the open file fd m's mode and owner */
static int build_apply_mode(int fd, const struct build_mode *m)
{
    if ((m->uid != (uid_t)-1 || m->gid != (gid_t)-1) && fchown(fd, m->uid, m->gid) < 0)
        return -1;
    return fchmod(fd, m->mode);
}

/* build_temp - an empty temp file next to final, with m's permissions */
static int build_temp(const char *final, const struct build_mode *m, buf_t *tmp, buf_t *err)
{
    int fd;

    buf_printf(tmp, "%s.XXXXXX", final);
    if ((fd = mkstemp(tmp->data)) < 0) {
        buf_printf(err, "cannot create a temporary file next to %s: %s", final, strerror(errno));
        buf_reset(tmp);
        return -1;
    }
    if (build_apply_mode(fd, m) < 0) {
        buf_printf(err, "cannot set the mode of %s: %s", tmp->data, strerror(errno));
        close(fd);
        unlink(tmp->data);
        buf_reset(tmp);
        return -1;
    }
    close(fd);
    return 0;
}

/* build_duplicate - tell the source, or warn in the log */
static void build_duplicate(struct lmdb_build *b, const char *key, const char *where)
{
    if (b->src->duplicate)
        b->src->duplicate(b->src->ctx, key, where);
    else
        log_warn("%s: duplicate key \"%s\" ignored (the first one wins)", where, key);
}

/* build_put - one entry; a duplicate is reported and skipped, or with
 * req->replace it replaces the earlier value */
static int build_put(struct lmdb_build *b, const char *key, const char *value, const char *where,
                     buf_t *err)
{
    size_t klen = strlen(key), vlen = strlen(value);
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)value};
    int rc = mdb_put(b->txn, b->dbi, &k, &v, MDB_NOOVERWRITE);

    if (rc == MDB_KEYEXIST && !b->req->replace) {
        build_duplicate(b, key, where);
        return 0;
    }
    if (rc == MDB_KEYEXIST) { /* v holds the old value */
        b->stats.entries--;
        b->stats.total -= klen + v.mv_size;
        v = (MDB_val){vlen, (void *)value};
        rc = mdb_put(b->txn, b->dbi, &k, &v, 0);
    }
    if (rc != 0) {
        buf_printf(err, "%s: cannot store: %s", where, mdb_strerror(rc));
        b->status = TABLE_BUILD_WRITE;
        return -1;
    }
    b->stats.entries++;
    b->stats.total += klen + vlen;
    if (vlen > b->stats.longest)
        b->stats.longest = vlen;
    return 0;
}

/* build_entries - every entry of the source into the open transaction */
static int build_entries(struct lmdb_build *b, buf_t *err)
{
    buf_t key = BUF_INIT, value = BUF_INIT, where = BUF_INIT;
    int rc;

    while ((rc = b->src->next(b->src->ctx, &key, &value, &where, err)) > 0)
        if ((rc = build_put(b, buf_cstr(&key), buf_cstr(&value), buf_cstr(&where), err)) < 0)
            break;
    if (rc < 0 && b->status == TABLE_BUILD_OK)
        b->status = TABLE_BUILD_INPUT;
    buf_free(&key);
    buf_free(&value);
    buf_free(&where);
    return rc < 0 ? -1 : 0;
}

struct build_copy {
    struct lmdb_build *b;
    const char *where;
    buf_t *err;
    int failed;
};

/* build_copy_entry - one entry of the old file into the new one */
static int build_copy_entry(const char *key, const char *value, void *ctx)
{
    struct build_copy *c = ctx;

    c->failed = build_put(c->b, key, value, c->where, c->err) < 0;
    return c->failed;
}

/* build_append - start from the entries of the existing file (makemap -o);
 * it must exist and be an LMDB file */
static int build_append(struct lmdb_build *b, buf_t *err)
{
    struct table_lmdb old;
    struct build_copy c = {b, NULL, err, 0};
    int flags, rc = -1;

    if (lmdb_init(&old, b->req->type, b->req->name) < 0)
        return -1;
    c.where = old.path;
    if (lmdb_open_env(&old, &flags, err) != 0)
        b->status = TABLE_BUILD_CREATE;
    else if ((rc = lmdb_env_walk(&old, build_copy_entry, &c, err)) < 0 || c.failed)
        rc = -1;
    if (rc < 0 && b->status == TABLE_BUILD_OK)
        b->status = TABLE_BUILD_WRITE;
    lmdb_free(&old);
    return rc;
}

/* build_meta - record the flags the table was built with */
static int build_meta(struct lmdb_build *b)
{
    char text[16];
    int n = snprintf(text, sizeof(text), "%d", b->req->flags & LMDB_BUILD_FLAGS);
    MDB_val k = {LMDB_META_KEY_LEN, (void *)lmdb_meta_key}, v = {(size_t)n, text};

    return mdb_put(b->txn, b->dbi, &k, &v, 0);
}

/* build_mapsize - room for the input (and the old file) several times
 * over; LMDB_STREAM_MAPSIZE when the input's size is unknown */
static size_t build_mapsize(const struct lmdb_build *b, const char *final)
{
    struct stat st;
    size_t size =
        b->src->size_hint ? LMDB_MIN_MAPSIZE + b->src->size_hint * 16 : LMDB_STREAM_MAPSIZE;

    if (b->req->append && stat(final, &st) == 0)
        size += (size_t)st.st_size * 2;
    return size;
}

/* build_open - the LMDB environment and write transaction on tmp */
static int build_open(struct lmdb_build *b, const char *tmp, const char *final, buf_t *err)
{
    int rc;

    if ((rc = mdb_env_create(&b->env)) != 0 ||
        (rc = mdb_env_set_mapsize(b->env, build_mapsize(b, final))) != 0 ||
        (rc = mdb_env_open(b->env, tmp, MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC, 0600)) != 0 ||
        (rc = mdb_txn_begin(b->env, NULL, 0, &b->txn)) != 0 ||
        (rc = mdb_dbi_open(b->txn, NULL, 0, &b->dbi)) != 0) {
        buf_printf(err, "cannot create %s: %s", tmp, mdb_strerror(rc));
        b->status = TABLE_BUILD_CREATE;
        return -1;
    }
    return 0;
}

/* build_write - fill the temp file and make it durable */
static int build_write(struct lmdb_build *b, const char *tmp, const char *final, buf_t *err)
{
    int rc;

    if (build_open(b, tmp, final, err) < 0)
        return -1;
    if (b->req->append && build_append(b, err) < 0)
        return -1;
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
        b->status = TABLE_BUILD_WRITE;
        return -1;
    }
    return 0;
}

/* build_companion - the empty file that goes with final (dbm: name.pag),
 * made anew so its mtime is the build's; same mode and owner */
static int build_companion(const char *name, int row, const struct build_mode *m, buf_t *err)
{
    buf_t path = BUF_INIT;
    int fd, rc = 0;

    if (lmdb_files[row].companion == NULL)
        return 0;
    buf_printf(&path, "%s%s", name, lmdb_files[row].companion);
    if ((unlink(path.data) < 0 && errno != ENOENT) ||
        (fd = safe_create(path.data, O_WRONLY, 0600)) < 0) {
        buf_printf(err, "cannot create %s: %s", path.data, strerror(errno));
        rc = -1;
    } else {
        if (build_apply_mode(fd, m) < 0) {
            buf_printf(err, "cannot set the mode of %s: %s", path.data, strerror(errno));
            rc = -1;
        }
        close(fd);
    }
    buf_free(&path);
    return rc;
}

/* build_publish - rename tmp over final durably, then the companion */
static int build_publish(const struct lmdb_build *b, const char *tmp, const char *final,
                         const struct build_mode *m, buf_t *err)
{
    if (rename(tmp, final) < 0) {
        buf_printf(err, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
        return -1;
    }
    table_sync_dir_of(final);
    return build_companion(b->req->name, lmdb_file_of(b->req->type), m, err);
}

enum table_build_status table_build_from(const struct table_build_request *req,
                                         const struct table_build_source *src,
                                         struct table_build_stats *stats, buf_t *err)
{
    struct lmdb_build b = {.req = req, .src = src, .status = TABLE_BUILD_OK};
    struct build_mode m;
    buf_t tmp = BUF_INIT, final = BUF_INIT;
    int rc;

    if (table_file_path(req->type, req->name, &final) < 0) {
        buf_printf(err, "%s: tables of type %s are not built", req->name, req->type);
        return TABLE_BUILD_CREATE;
    }
    build_mode_of(req->name, final.data, &m);
    if ((rc = build_temp(final.data, &m, &tmp, err)) < 0)
        b.status = TABLE_BUILD_CREATE;
    else
        rc = build_write(&b, tmp.data, final.data, err);
    if (b.txn)
        mdb_txn_abort(b.txn);
    if (b.env)
        mdb_env_close(b.env);
    if (rc == 0 && build_publish(&b, tmp.data, final.data, &m, err) < 0)
        b.status = TABLE_BUILD_WRITE;
    if (b.status != TABLE_BUILD_OK && tmp.len)
        unlink(tmp.data);
    if (b.status == TABLE_BUILD_OK && stats)
        *stats = b.stats;
    buf_free(&tmp);
    buf_free(&final);
    return b.status;
}

/* ---- table_build: the text format from a file */

struct build_text {
    struct table_text reader;
    const char *path;
    int flags;
    buf_t line;
};

/* build_text_next - the next entry of the text file (table_build_source) */
static int build_text_next(void *ctx, buf_t *key, buf_t *value, buf_t *where, buf_t *err)
{
    struct build_text *s = ctx;
    size_t lineno = 0;
    int rc = table_text_next(&s->reader, &s->line, &lineno, err);

    if (rc <= 0)
        return rc;
    table_where(where, s->path, lineno);
    return table_text_split(buf_cstr(&s->line), s->flags, key, value, where->data, err) < 0 ? -1
                                                                                            : 1;
}

int table_build(const char *type, const char *path, int flags, struct table_build_stats *stats,
                buf_t *err)
{
    struct build_text s = {.path = path, .flags = flags, .line = BUF_INIT};
    struct table_build_request req = {type, path, flags, 0, 0};
    struct table_build_source src = {build_text_next, NULL, &s, 0};
    struct stat st;
    enum table_build_status rc;
    buf_t final = BUF_INIT;
    int same = table_file_path(type, path, &final) == 0 && strcmp(final.data, path) == 0;

    buf_free(&final);
    if (same) {
        buf_printf(err, "%s is the %s table file itself; name the text file", path, type);
        return -1;
    }
    if (table_text_open(&s.reader, path, err) < 0)
        return -1;
    if (fstat(fileno(s.reader.fp), &st) == 0)
        src.size_hint = (size_t)st.st_size + 1;
    rc = table_build_from(&req, &src, stats, err);
    table_text_close(&s.reader);
    buf_free(&s.line);
    return rc == TABLE_BUILD_OK ? 0 : -1;
}
