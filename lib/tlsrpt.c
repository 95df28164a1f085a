/*
 * tlsrpt - TLS-RPT session counters in LMDB (see tlsrpt.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "log.h"
#include "tlsrpt.h"

#define TLSRPT_MAPSIZE (256UL * 1024 * 1024) /* sparse: only what is used takes room */
#define TLSRPT_DAY_LEN 10                    /* "YYYY-MM-DD" */
#define TLSRPT_DAY_SECONDS 86400

/* one counted key in memory */
struct tlsrpt_pending {
    buf_t key; /* the stored key, NULs included */
    uint64_t count;
};

struct tlsrpt {
    MDB_env *env;
    struct tlsrpt_pending *pending;
    size_t pending_count;
};

/* RFC 8460 section 4.3 (negotiation and policy failures) and "success" */
static const char *const tlsrpt_results[] = {"success",
                                             "starttls-not-supported",
                                             "certificate-host-mismatch",
                                             "certificate-expired",
                                             "certificate-not-trusted",
                                             "validation-failure",
                                             "tlsa-invalid",
                                             "dnssec-invalid",
                                             "dane-required",
                                             "sts-policy-fetch-error",
                                             "sts-policy-invalid",
                                             "sts-webpki-invalid",
                                             NULL};

static const char *const tlsrpt_policy_types[] = {"sts", "tlsa", "no-policy-found", NULL};

/* tlsrpt_word_in - s is one of the NULL-terminated words */
static int tlsrpt_word_in(const char *s, const char *const *words)
{
    for (size_t i = 0; s != NULL && words[i] != NULL; i++)
        if (strcmp(s, words[i]) == 0)
            return 1;
    return 0;
}

int tlsrpt_result_valid(const char *result)
{
    return tlsrpt_word_in(result, tlsrpt_results);
}

int tlsrpt_policy_type_valid(const char *policy_type)
{
    return tlsrpt_word_in(policy_type, tlsrpt_policy_types);
}

/* tlsrpt_put_name - a domain or MX host lower-cased without a trailing dot
 * into key; -1 when it is too long or holds a byte that is not printable
 * (a space included).  An empty name is allowed (the caller decides). */
static int tlsrpt_put_name(const char *name, buf_t *key)
{
    size_t n = strlen(name);

    if (n > 0 && name[n - 1] == '.')
        n--;
    if (n > TLSRPT_MAX_NAME)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= ' ' || c >= 127)
            return -1;
        buf_putc(key, (char)tolower(c));
    }
    return 0;
}

/* tlsrpt_day - "YYYY-MM-DD" of when, UTC */
static void tlsrpt_day(time_t when, char day[TLSRPT_DAY_LEN + 1])
{
    struct tm tm;

    gmtime_r(&when, &tm);
    if (strftime(day, TLSRPT_DAY_LEN + 1, "%Y-%m-%d", &tm) != TLSRPT_DAY_LEN)
        memcpy(day, "0000-00-00", TLSRPT_DAY_LEN + 1);
}

/* tlsrpt_make_key - the stored key; -1 when a part is not acceptable */
static int tlsrpt_make_key(time_t when, const char *domain, const char *type, const char *result,
                           const char *mx, buf_t *key)
{
    char day[TLSRPT_DAY_LEN + 1];

    if (domain == NULL || *domain == '\0' || !tlsrpt_policy_type_valid(type) ||
        !tlsrpt_result_valid(result))
        return -1;
    tlsrpt_day(when, day);
    buf_append(key, day, TLSRPT_DAY_LEN + 1);
    if (tlsrpt_put_name(domain, key) < 0)
        return -1;
    buf_append(key, "", 1);
    buf_append(key, type, strlen(type) + 1);
    buf_append(key, result, strlen(result) + 1);
    if (tlsrpt_put_name(mx != NULL ? mx : "", key) < 0)
        return -1;
    buf_append(key, "", 1);
    return 0;
}

/* tlsrpt_mkdir - the store's directory, given to data_directory's owner
 * when we run as root (tern-smtp drops to it afterwards) */
static int tlsrpt_mkdir(const char *data_directory, buf_t *path, const struct stat *owner,
                        buf_t *err)
{
    buf_printf(path, "%s/tlsrpt", data_directory);
    if (mkdir(buf_cstr(path), 0700) < 0 && errno != EEXIST) {
        buf_printf(err, "cannot create %s: %s", buf_cstr(path), strerror(errno));
        return -1;
    }
    if (geteuid() == 0 && chown(buf_cstr(path), owner->st_uid, owner->st_gid) < 0) {
        buf_printf(err, "cannot chown %s: %s", buf_cstr(path), strerror(errno));
        return -1;
    }
    return 0;
}

/* tlsrpt_chown_files - data.mdb and lock.mdb to the owner (when root) */
static int tlsrpt_chown_files(const buf_t *dir, const struct stat *owner, buf_t *err)
{
    static const char *const files[] = {"data.mdb", "lock.mdb", NULL};
    buf_t path = BUF_INIT;
    int rc = 0;

    for (size_t i = 0; geteuid() == 0 && files[i] != NULL && rc == 0; i++) {
        buf_reset(&path);
        buf_printf(&path, "%s/%s", buf_cstr(dir), files[i]);
        if (chown(buf_cstr(&path), owner->st_uid, owner->st_gid) < 0) {
            buf_printf(err, "cannot chown %s: %s", buf_cstr(&path), strerror(errno));
            rc = -1;
        }
    }
    buf_free(&path);
    return rc;
}

/* tlsrpt_env_open - an environment on dir; NULL with err */
static MDB_env *tlsrpt_env_open(const char *dir, unsigned flags, buf_t *err)
{
    MDB_env *env = NULL;
    int rc;

    if ((rc = mdb_env_create(&env)) == 0 && (rc = mdb_env_set_mapsize(env, TLSRPT_MAPSIZE)) == 0 &&
        (rc = mdb_env_open(env, dir, flags, 0600)) == 0)
        return env;
    buf_printf(err, "cannot open %s: %s", dir, mdb_strerror(rc));
    if (env != NULL)
        mdb_env_close(env);
    return NULL;
}

struct tlsrpt *tlsrpt_open(const char *data_directory, buf_t *err)
{
    struct stat owner;
    buf_t dir = BUF_INIT;
    struct tlsrpt *t = NULL;
    MDB_env *env = NULL;

    if ((mkdir(data_directory, 0700) < 0 && errno != EEXIST) || stat(data_directory, &owner) < 0) {
        buf_printf(err, "cannot open %s: %s", data_directory, strerror(errno));
        return NULL;
    }
    if (tlsrpt_mkdir(data_directory, &dir, &owner, err) == 0 &&
        (env = tlsrpt_env_open(buf_cstr(&dir), MDB_NOSYNC, err)) != NULL &&
        tlsrpt_chown_files(&dir, &owner, err) == 0) {
        t = xcalloc(1, sizeof(*t));
        t->env = env;
    } else if (env != NULL) {
        mdb_env_close(env);
    }
    buf_free(&dir);
    return t;
}

/* tlsrpt_pending_forget - drop the pending counts */
static void tlsrpt_pending_forget(struct tlsrpt *t)
{
    for (size_t i = 0; i < t->pending_count; i++)
        buf_free(&t->pending[i].key);
    free(t->pending);
    t->pending = NULL;
    t->pending_count = 0;
}

/* tlsrpt_pending_find - the pending entry of key, or a new one */
static struct tlsrpt_pending *tlsrpt_pending_find(struct tlsrpt *t, const buf_t *key)
{
    struct tlsrpt_pending *p;

    for (size_t i = 0; i < t->pending_count; i++) {
        p = &t->pending[i];
        if (p->key.len == key->len && memcmp(p->key.data, key->data, key->len) == 0)
            return p;
    }
    if (t->pending_count >= TLSRPT_MAX_PENDING) {
        buf_t err = BUF_INIT;
        if (tlsrpt_flush(t, &err) < 0) {
            log_warn("tlsrpt: %s; %zu pending counts dropped", buf_cstr(&err), t->pending_count);
            tlsrpt_pending_forget(t);
        }
        buf_free(&err);
    }
    t->pending = xrealloc(t->pending, (t->pending_count + 1) * sizeof(*t->pending));
    p = &t->pending[t->pending_count++];
    buf_init(&p->key);
    buf_append(&p->key, key->data, key->len);
    p->count = 0;
    return p;
}

void tlsrpt_count_at(struct tlsrpt *t, time_t when, const char *policy_domain,
                     const char *policy_type, const char *result, const char *mx_host)
{
    buf_t key = BUF_INIT;

    if (t != NULL && tlsrpt_make_key(when, policy_domain, policy_type, result, mx_host, &key) == 0)
        tlsrpt_pending_find(t, &key)->count++;
    buf_free(&key);
}

void tlsrpt_count(struct tlsrpt *t, const char *policy_domain, const char *policy_type,
                  const char *result, const char *mx_host)
{
    tlsrpt_count_at(t, time(NULL), policy_domain, policy_type, result, mx_host);
}

/* tlsrpt_add - add one pending count to the stored one */
static int tlsrpt_add(MDB_txn *txn, MDB_dbi dbi, const struct tlsrpt_pending *p)
{
    MDB_val k = {p->key.len, p->key.data}, v;
    uint64_t count = p->count;
    int rc = mdb_get(txn, dbi, &k, &v);

    if (rc == 0 && v.mv_size == sizeof(count)) {
        uint64_t stored;
        memcpy(&stored, v.mv_data, sizeof(stored));
        count += stored;
    } else if (rc != 0 && rc != MDB_NOTFOUND) {
        return rc;
    }
    v.mv_size = sizeof(count);
    v.mv_data = &count;
    return mdb_put(txn, dbi, &k, &v, 0);
}

/* tlsrpt_prune - delete every key of a day before cutoff ("YYYY-MM-DD") */
static int tlsrpt_prune(MDB_txn *txn, MDB_dbi dbi, const char *cutoff)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, dbi, &cur);

    if (rc != 0)
        return rc;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
        if (k.mv_size > TLSRPT_DAY_LEN && memcmp(k.mv_data, cutoff, TLSRPT_DAY_LEN) >= 0)
            break; /* keys sort by day: the rest is recent enough */
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* tlsrpt_write - the flush's transaction; 0 or an LMDB error */
static int tlsrpt_write(struct tlsrpt *t, const char *cutoff)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = mdb_txn_begin(t->env, NULL, 0, &txn);

    if (rc != 0)
        return rc;
    rc = mdb_dbi_open(txn, NULL, 0, &dbi);
    for (size_t i = 0; rc == 0 && i < t->pending_count; i++)
        rc = tlsrpt_add(txn, dbi, &t->pending[i]);
    if (rc == 0)
        rc = tlsrpt_prune(txn, dbi, cutoff);
    if (rc == 0)
        return mdb_txn_commit(txn);
    mdb_txn_abort(txn);
    return rc;
}

int tlsrpt_flush_at(struct tlsrpt *t, time_t now, buf_t *err)
{
    char cutoff[TLSRPT_DAY_LEN + 1];
    int rc;

    tlsrpt_day(now - (time_t)(TLSRPT_KEEP_DAYS - 1) * TLSRPT_DAY_SECONDS, cutoff);
    if ((rc = tlsrpt_write(t, cutoff)) != 0) {
        buf_printf(err, "cannot write the TLS-RPT counts: %s", mdb_strerror(rc));
        return -1;
    }
    tlsrpt_pending_forget(t);
    return 0;
}

int tlsrpt_flush(struct tlsrpt *t, buf_t *err)
{
    return tlsrpt_flush_at(t, time(NULL), err);
}

void tlsrpt_close(struct tlsrpt *t)
{
    buf_t err = BUF_INIT;

    if (t == NULL)
        return;
    if (t->pending_count > 0 && tlsrpt_flush(t, &err) < 0)
        log_warn("tlsrpt: %s", buf_cstr(&err));
    buf_free(&err);
    tlsrpt_pending_forget(t);
    mdb_env_close(t->env);
    free(t);
}

/* tlsrpt_entry_split - the five NUL-separated parts of a stored key and its
 * count; -1 for an entry that is not ours */
static int tlsrpt_entry_split(const MDB_val *k, const MDB_val *v, struct tlsrpt_entry *e)
{
    const char *parts[5];
    const char *p = k->mv_data;
    const char *end = p + k->mv_size;
    size_t n = 0;

    if (v->mv_size != sizeof(e->count) || k->mv_size == 0 || end[-1] != '\0')
        return -1;
    while (p < end && n < 5) {
        parts[n++] = p;
        p += strlen(p) + 1;
    }
    if (n != 5 || p != end || strlen(parts[0]) != TLSRPT_DAY_LEN)
        return -1;
    e->day = parts[0];
    e->domain = parts[1];
    e->policy_type = parts[2];
    e->result = parts[3];
    e->mx_host = parts[4];
    memcpy(&e->count, v->mv_data, sizeof(e->count));
    return 0;
}

/* tlsrpt_walk_env - every entry of an open environment */
static int tlsrpt_walk_env(MDB_env *env, tlsrpt_walk_fn fn, void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    MDB_dbi dbi;
    MDB_val k, v;
    struct tlsrpt_entry e;
    int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);

    if (rc != 0)
        return rc;
    if ((rc = mdb_dbi_open(txn, NULL, 0, &dbi)) == 0 &&
        (rc = mdb_cursor_open(txn, dbi, &cur)) == 0) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (tlsrpt_entry_split(&k, &v, &e) == 0 && fn(&e, ctx) != 0)
                break; /* e points into the map: valid during the transaction */
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int tlsrpt_walk(const char *data_directory, tlsrpt_walk_fn fn, void *ctx, buf_t *err)
{
    buf_t dir = BUF_INIT;
    MDB_env *env;
    struct stat st;
    int rc = 0;

    buf_printf(&dir, "%s/tlsrpt", data_directory);
    if (stat(buf_cstr(&dir), &st) < 0 && errno == ENOENT) {
        buf_free(&dir);
        return 0; /* nothing was ever counted */
    }
    env = tlsrpt_env_open(buf_cstr(&dir), MDB_RDONLY, err);
    if (env == NULL) {
        buf_free(&dir);
        return -1;
    }
    if ((rc = tlsrpt_walk_env(env, fn, ctx)) != 0)
        buf_printf(err, "cannot read %s: %s", buf_cstr(&dir), mdb_strerror(rc));
    mdb_env_close(env);
    buf_free(&dir);
    return rc == 0 ? 0 : -1;
}
