/*
 * smtp_mtasts_cache - the LMDB file of fetched MTA-STS policies.  Contract
 * in smtp_mtasts_cache.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "log.h"
#include "mtasts.h"
#include "privs.h"
#include "smtp_mtasts_cache.h"

#define CACHE_MIN_MAPSIZE (16ULL * 1024 * 1024)
#define CACHE_MAX_MAPSIZE (8ULL * 1024 * 1024 * 1024)
#define CACHE_RECORD_MAX (MTASTS_MAX_POLICY + 128) /* a policy and its header */

struct smtp_mtasts_cache {
    char *path;
    MDB_env *env;
    MDB_dbi dbi;
    long long size_limit;
};

/* cache_fail - append "path: what: LMDB's text" to err, return -1 */
static int cache_fail(const char *path, const char *what, int rc, buf_t *err)
{
    buf_printf(err, "%s: %s: %s", path, what, mdb_strerror(rc));
    return -1;
}

/* cache_chown - root made path and its lock file: give them to owner */
static int cache_chown(const char *path, const char *owner, buf_t *err)
{
    buf_t lock = BUF_INIT;
    uid_t uid;
    gid_t gid;
    int rc = 0;

    if (geteuid() != 0 || owner == NULL)
        return 0;
    if (privs_lookup(owner, &uid, &gid) < 0) {
        buf_printf(err, "mail_owner %s: no such user", owner);
        return -1;
    }
    buf_printf(&lock, "%s-lock", path);
    if (chown(path, uid, gid) < 0 || chown(buf_cstr(&lock), uid, gid) < 0) {
        buf_printf(err, "%s: chown: %s", path, strerror(errno));
        rc = -1;
    }
    buf_free(&lock);
    return rc;
}

/* cache_env_open - the environment and its one unnamed database */
static int cache_env_open(struct smtp_mtasts_cache *c, buf_t *err)
{
    unsigned long long mapsize = (unsigned long long)c->size_limit * CACHE_RECORD_MAX;
    MDB_txn *txn;
    int rc;

    if (mapsize < CACHE_MIN_MAPSIZE)
        mapsize = CACHE_MIN_MAPSIZE;
    if (mapsize > CACHE_MAX_MAPSIZE)
        mapsize = CACHE_MAX_MAPSIZE;
    if ((rc = mdb_env_create(&c->env)) != 0)
        return cache_fail(c->path, "mdb_env_create", rc, err);
    if ((rc = mdb_env_set_mapsize(c->env, (size_t)mapsize)) != 0)
        return cache_fail(c->path, "mdb_env_set_mapsize", rc, err);
    if ((rc = mdb_env_open(c->env, c->path, MDB_NOSUBDIR, 0600)) != 0)
        return cache_fail(c->path, "open", rc, err);
    if ((rc = mdb_txn_begin(c->env, NULL, 0, &txn)) != 0)
        return cache_fail(c->path, "mdb_txn_begin", rc, err);
    if ((rc = mdb_dbi_open(txn, NULL, 0, &c->dbi)) != 0) {
        mdb_txn_abort(txn);
        return cache_fail(c->path, "mdb_dbi_open", rc, err);
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return cache_fail(c->path, "mdb_txn_commit", rc, err);
    return 0;
}

struct smtp_mtasts_cache *smtp_mtasts_cache_open(const char *path, long long size_limit,
                                                 const char *owner, buf_t *err)
{
    struct smtp_mtasts_cache *c = xcalloc(1, sizeof(*c));

    c->path = xstrdup(path);
    c->size_limit = size_limit;
    if (cache_env_open(c, err) < 0 || cache_chown(path, owner, err) < 0) {
        smtp_mtasts_cache_close(c);
        return NULL;
    }
    return c;
}

void smtp_mtasts_cache_close(struct smtp_mtasts_cache *c)
{
    if (c == NULL)
        return;
    if (c->env)
        mdb_env_close(c->env);
    free(c->path);
    free(c);
}

/* cache_key - domain as an LMDB key */
static MDB_val cache_key(const char *domain)
{
    MDB_val k = {strlen(domain), (void *)domain};

    return k;
}

/* cache_decode - a stored value into e; 0, or -1 when it is not one of ours */
static int cache_decode(const MDB_val *v, struct smtp_mtasts_cache_entry *e)
{
    const char *p = v->mv_data, *nl = memchr(p, '\n', v->mv_size);
    char head[128], id[MTASTS_MAX_ID + 1];
    size_t n = nl ? (size_t)(nl - p) : 0;

    if (nl == NULL || n >= sizeof(head))
        return -1;
    memcpy(head, p, n);
    head[n] = 0;
    if (sscanf(head, "%lld %lld %32s", &e->fetched, &e->max_age, id) != 3 || e->max_age < 0)
        return -1;
    buf_set(&e->id, id);
    buf_reset(&e->text);
    buf_append(&e->text, nl + 1, v->mv_size - n - 1);
    return 0;
}

/* cache_delete - remove domain's record (in its own transaction) */
static void cache_delete(struct smtp_mtasts_cache *c, const char *domain)
{
    MDB_val k = cache_key(domain);
    MDB_txn *txn;

    if (mdb_txn_begin(c->env, NULL, 0, &txn) != 0)
        return;
    mdb_del(txn, c->dbi, &k, NULL);
    if (mdb_txn_commit(txn) != 0)
        log_warn("mta-sts: %s: cannot remove the expired policy of %s", c->path, domain);
}

int smtp_mtasts_cache_get(struct smtp_mtasts_cache *c, const char *domain, long long now,
                          struct smtp_mtasts_cache_entry *e)
{
    MDB_val k = cache_key(domain), v;
    MDB_txn *txn;
    int rc, usable;

    if (mdb_txn_begin(c->env, NULL, MDB_RDONLY, &txn) != 0)
        return -1;
    rc = mdb_get(txn, c->dbi, &k, &v);
    usable = rc == 0 && cache_decode(&v, e) == 0 && e->fetched + e->max_age > now;
    mdb_txn_abort(txn);
    if (rc == 0 && !usable)
        cache_delete(c, domain);
    return usable ? 0 : -1;
}

/* cache_evict_oldest - delete the record fetched longest ago */
static int cache_evict_oldest(struct smtp_mtasts_cache *c, MDB_txn *txn)
{
    struct smtp_mtasts_cache_entry e = {BUF_INIT, BUF_INIT, 0, 0};
    MDB_cursor *cur;
    MDB_val k, v, oldest = {0, NULL};
    long long oldest_fetched = 0;
    int rc;

    if ((rc = mdb_cursor_open(txn, c->dbi, &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        long long fetched = cache_decode(&v, &e) == 0 ? e.fetched : 0; /* junk goes first */
        if (oldest.mv_data == NULL || fetched < oldest_fetched) {
            oldest = k;
            oldest_fetched = fetched;
        }
    }
    mdb_cursor_close(cur);
    smtp_mtasts_cache_entry_free(&e);
    return oldest.mv_data ? mdb_del(txn, c->dbi, &oldest, NULL) : MDB_NOTFOUND;
}

/* cache_make_room - while the cache is full and domain is new, evict */
static int cache_make_room(struct smtp_mtasts_cache *c, MDB_txn *txn, const char *domain)
{
    MDB_val k = cache_key(domain), v;
    MDB_stat st;
    int rc;

    if (mdb_get(txn, c->dbi, &k, &v) == 0)
        return 0;
    while ((rc = mdb_stat(txn, c->dbi, &st)) == 0 && (long long)st.ms_entries >= c->size_limit)
        if ((rc = cache_evict_oldest(c, txn)) != 0)
            return rc;
    return rc;
}

int smtp_mtasts_cache_put(struct smtp_mtasts_cache *c, const char *domain,
                          const struct smtp_mtasts_cache_entry *e)
{
    buf_t rec = BUF_INIT;
    MDB_val k = cache_key(domain), v;
    MDB_txn *txn = NULL;
    int rc;

    buf_printf(&rec, "%lld %lld %s\n", e->fetched, e->max_age, buf_cstr(&e->id));
    buf_append(&rec, buf_cstr(&e->text), e->text.len);
    v.mv_size = rec.len;
    v.mv_data = rec.data;
    if ((rc = mdb_txn_begin(c->env, NULL, 0, &txn)) == 0 &&
        (rc = cache_make_room(c, txn, domain)) == 0 && (rc = mdb_put(txn, c->dbi, &k, &v, 0)) == 0)
        rc = mdb_txn_commit(txn);
    else if (txn)
        mdb_txn_abort(txn);
    buf_free(&rec);
    if (rc != 0)
        log_warn("mta-sts: %s: cannot store the policy of %s: %s", c->path, domain,
                 mdb_strerror(rc));
    return rc == 0 ? 0 : -1;
}

void smtp_mtasts_cache_entry_free(struct smtp_mtasts_cache_entry *e)
{
    buf_free(&e->id);
    buf_free(&e->text);
}
