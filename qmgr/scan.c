/*
 * scan - qmgr's directory work: taking files from incoming/ and deferred/H/
 * into active/ (rename), the recovery of active/ after a crash, and the
 * memory bound (at most QMGR_ACTIVE_LIMIT messages in memory; the rest stay
 * where they are until room frees).
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "buf.h"
#include "log.h"
#include "qid.h"
#include "qmgr.h"

/* a list of queue IDs found in a directory */
struct id_list {
    char **v;
    size_t count;
    size_t cap;
};

/* qmgr_has_room - 1 when another message may be taken on */
int qmgr_has_room(const struct qmgr *qm)
{
    return !qm->draining && qm->active_count < QMGR_ACTIVE_LIMIT;
}

/* qmgr_room_freed - restart scans that stopped for lack of room */
void qmgr_room_freed(struct qmgr *qm)
{
    /* wait for a tenth of the room so a deep backlog is not rescanned per message */
    if (qm->draining || qm->active_count > QMGR_ACTIVE_LIMIT - QMGR_ACTIVE_LIMIT / 10)
        return;
    if (qm->incoming_again) {
        qm->incoming_again = 0;
        event_active(qm->incoming_ev, EV_TIMEOUT, 0);
    }
    if (qm->deferred_again) {
        qm->deferred_again = 0;
        event_active(qm->deferred_ev, EV_TIMEOUT, 0);
    }
}

/* qmgr_mkdir_hash - create TOP/H if missing; 0 ok, -1 error */
int qmgr_mkdir_hash(const char *top, char hash)
{
    char path[64];

    if (snprintf(path, sizeof(path), "%s/%c", top, hash) >= (int)sizeof(path))
        return -1;
    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
        log_error("cannot create %s: %m", path);
        return -1;
    }
    return 0;
}

/* id_list_add - keep a copy of name */
static void id_list_add(struct id_list *l, const char *name)
{
    if (l->count == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->count++] = xstrdup(name);
}

/* id_list_free - release every name */
static void id_list_free(struct id_list *l)
{
    size_t i;

    for (i = 0; i < l->count; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->count = l->cap = 0;
}

/* id_compare - qsort order: by ID, which is arrival order */
static int id_compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* scan_list_ids - the queue IDs in dir, sorted; hidden temp files skipped */
static int scan_list_ids(const char *dir, struct id_list *out)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (d == NULL) {
        log_error("cannot open %s/: %m", dir);
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (!qid_valid(e->d_name)) {
            log_debug("%s/%s: not a queue ID, ignored", dir, e->d_name);
            continue;
        }
        id_list_add(out, e->d_name);
    }
    closedir(d);
    if (out->count > 1)
        qsort(out->v, out->count, sizeof(*out->v), id_compare);
    return 0;
}

/* qmgr_scan_take - rename DIR/ID to active/ID without replacing; 0 ok */
int qmgr_scan_take(const char *from, const char *id)
{
    buf_t to = BUF_INIT;
    int rc;

    buf_printf(&to, "active/%s", id);
    rc = renameat2(AT_FDCWD, from, AT_FDCWD, to.data, RENAME_NOREPLACE);
    if (rc < 0 && errno == EINVAL)
        rc = rename(from, to.data);
    if (rc < 0 && errno == EEXIST)
        log_warn("%s: active/%s already exists; %s left in place", id, id, from);
    else if (rc < 0 && errno != ENOENT)
        log_error("%s: cannot move %s to active/: %m", id, from);
    buf_free(&to);
    return rc;
}

/* qmgr_recover_list - remember every file left in active/ by a crash */
void qmgr_recover_list(struct qmgr *qm)
{
    struct id_list ids = {NULL, 0, 0};

    if (scan_list_ids("active", &ids) < 0)
        return;
    if (ids.count > 0)
        log_info("recovering %zu message%s from active/", ids.count, ids.count == 1 ? "" : "s");
    qm->recover_ids = ids.v;
    qm->recover_count = ids.count;
    qm->recover_pos = 0;
}

/* qmgr_recover_free - forget the recovery backlog (exit) */
void qmgr_recover_free(struct qmgr *qm)
{
    while (qm->recover_pos < qm->recover_count)
        free(qm->recover_ids[qm->recover_pos++]);
    free(qm->recover_ids);
    qm->recover_ids = NULL;
    qm->recover_count = qm->recover_pos = 0;
}

/* scan_recover - load files from the recovery backlog while there is room */
static int scan_recover(struct qmgr *qm)
{
    while (qm->recover_pos < qm->recover_count) {
        if (!qmgr_has_room(qm))
            return -1;
        qmgr_message_load(qm, qm->recover_ids[qm->recover_pos]);
        free(qm->recover_ids[qm->recover_pos]);
        qm->recover_ids[qm->recover_pos++] = NULL;
    }
    qmgr_recover_free(qm);
    return 0;
}

/* scan_load_defers - queue_defer_load (sendmail's QueueLA): while the load
 * is above it, newly arrived mail stays in incoming/ (queued, not
 * delivered); every incoming scan (a trigger, or every
 * QMGR_INCOMING_SCAN_SECONDS) looks again.  The deferred queue's retries
 * go on.  Logged when it starts, then at most once a minute, and when it
 * ends. */
static int scan_load_defers(struct qmgr *qm)
{
    double load = 0;
    time_t now = time(NULL);

    if (qm->defer_load <= 0 || loadavg_read(&qm->load, &load) < 0 || load <= qm->defer_load) {
        if (qm->load_deferring)
            log_info("load average %g <= queue_defer_load %g: delivering new mail again", load,
                     qm->defer_load);
        qm->load_deferring = 0;
        return 0;
    }
    if (!qm->load_deferring || now - qm->load_logged >= 60) {
        log_info("deferring delivery: load average %g > queue_defer_load %g", load, qm->defer_load);
        qm->load_logged = now;
    }
    qm->load_deferring = 1;
    return 1;
}

/* qmgr_scan_incoming - load the recovery backlog, then incoming/, while room */
void qmgr_scan_incoming(struct qmgr *qm)
{
    struct id_list ids = {NULL, 0, 0};
    buf_t from = BUF_INIT;
    size_t i;

    if (qm->draining || scan_load_defers(qm))
        return;
    if (scan_recover(qm) < 0 || scan_list_ids("incoming", &ids) < 0) {
        qm->incoming_again = 1;
        return;
    }
    for (i = 0; i < ids.count; i++) {
        if (!qmgr_has_room(qm)) {
            qm->incoming_again = 1;
            break;
        }
        buf_reset(&from);
        buf_printf(&from, "incoming/%s", ids.v[i]);
        if (qmgr_scan_take(from.data, ids.v[i]) == 0)
            qmgr_message_load(qm, ids.v[i]);
    }
    id_list_free(&ids);
    buf_free(&from);
}

/* scan_deferred_dir - take due files of one deferred/H (counted in *taken);
 * -1 when out of room */
static int scan_deferred_dir(struct qmgr *qm, const char *dir, time_t now, int force, size_t *taken)
{
    struct id_list ids = {NULL, 0, 0};
    buf_t from = BUF_INIT;
    struct stat st;
    size_t i;
    int rc = 0;

    if (scan_list_ids(dir, &ids) < 0)
        return 0;
    for (i = 0; i < ids.count; i++) {
        if (!qmgr_has_room(qm)) {
            rc = -1;
            break;
        }
        buf_reset(&from);
        buf_printf(&from, "%s/%s", dir, ids.v[i]);
        if (lstat(from.data, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (!force && st.st_mtime > now)
            continue;
        if (qmgr_scan_take(from.data, ids.v[i]) == 0) {
            qmgr_message_load(qm, ids.v[i]);
            (*taken)++;
        }
    }
    id_list_free(&ids);
    buf_free(&from);
    return rc;
}

/* qmgr_scan_deferred_walk - fn(qm, path, id, ctx) for every queue file of
 * deferred/0..f/, until fn returns 0 */
void qmgr_scan_deferred_walk(struct qmgr *qm, qmgr_deferred_fn fn, void *ctx)
{
    buf_t path = BUF_INIT, dir = BUF_INIT;
    int go_on = 1;

    for (int h = 0; h < 16 && go_on; h++) {
        DIR *d;
        struct dirent *e;

        buf_reset(&dir);
        buf_printf(&dir, "deferred/%x", h);
        if ((d = opendir(dir.data)) == NULL)
            continue;
        while (go_on && (e = readdir(d)) != NULL) {
            if (!qid_valid(e->d_name))
                continue;
            buf_reset(&path);
            buf_printf(&path, "%s/%s", dir.data, e->d_name);
            go_on = fn(qm, path.data, e->d_name, ctx);
        }
        closedir(d);
    }
    buf_free(&path);
    buf_free(&dir);
}

/* qmgr_scan_deferred - take due deferred files (all of them when force);
 * returns how many were taken */
size_t qmgr_scan_deferred(struct qmgr *qm, int force)
{
    DIR *d;
    struct dirent *e;
    buf_t dir = BUF_INIT;
    time_t now = time(NULL);
    size_t taken = 0;

    if (qm->draining)
        return 0;
    if ((d = opendir("deferred")) == NULL) {
        log_error("cannot open deferred/: %m");
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        buf_reset(&dir);
        buf_printf(&dir, "deferred/%s", e->d_name);
        if (scan_deferred_dir(qm, dir.data, now, force, &taken) < 0) {
            qm->deferred_again = 1;
            qm->flush_again |= force;
            break;
        }
    }
    closedir(d);
    buf_free(&dir);
    return taken;
}
