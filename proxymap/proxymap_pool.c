/*
 * proxymap_pool - worker threads per table (see proxymap_pool.h).  One
 * mutex guards every queue; each table has its own condition variable.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "proxymap_cache.h"
#include "proxymap_pool.h"
#include "service.h"

struct proxymap_pool_table {
    struct proxymap_pool *pool;
    char *spec;
    int flags;
    char *file; /* a built (LMDB) table's file: one table for every flag set */
    size_t max_threads, threads, idle, queued;
    struct proxymap_job *head, *tail;
    pthread_cond_t wake;
};

struct proxymap_pool {
    pthread_mutex_t lock;
    struct proxymap_map *tables; /* "flags spec" or "file PATH" -> struct proxymap_pool_table */
    size_t size;
    struct proxymap_job *finished; /* back to the event loop */
    int pipe[2];
    struct event *ev;
    size_t busy;
    void (*done)(struct proxymap_job *job, void *ctx);
    void *ctx;
};

struct proxymap_job *proxymap_job_new(const char *key, void *ctx)
{
    struct proxymap_job *job = xcalloc(1, sizeof(*job));

    job->key = xstrdup(key);
    job->ctx = ctx;
    job->status = TABLE_TEMPFAIL;
    return job;
}

void proxymap_job_free(struct proxymap_job *job)
{
    buf_wipe(&job->value);
    buf_free(&job->value);
    free(job->key);
    free(job);
}

/* table_open touches process-wide state (the warned-about optional files):
 * one worker opens at a time; lookups run in parallel */
static pthread_mutex_t proxymap_open_lock = PTHREAD_MUTEX_INITIALIZER;

/* proxymap_job_file_missing - 1 when a job that is not optional asks a
 * shared built table (opened optional) whose file is gone: as for a table
 * opened without TABLE_OPTIONAL, a temporary failure, never "not found" */
static int proxymap_job_file_missing(const struct proxymap_pool_table *pt,
                                     const struct proxymap_job *job)
{
    struct stat st;

    if (pt->file == NULL || (job->flags & TABLE_OPTIONAL) || stat(pt->file, &st) == 0)
        return 0;
    log_warn("%s: cannot stat %s: %s", pt->spec, pt->file, strerror(errno));
    return 1;
}

/* proxymap_job_run - one lookup in the worker's table (opened on first use) */
static void proxymap_job_run(struct proxymap_pool_table *pt, struct table **t,
                             struct proxymap_job *job)
{
    buf_t err = BUF_INIT;

    if (proxymap_job_file_missing(pt, job)) {
        job->status = TABLE_TEMPFAIL;
        return;
    }

    if (*t == NULL) {
        pthread_mutex_lock(&proxymap_open_lock);
        *t = table_open(pt->spec, pt->flags, &err);
        pthread_mutex_unlock(&proxymap_open_lock);
    }
    if (*t == NULL) {
        log_warn("cannot open the table: %s", buf_cstr(&err));
        job->status = TABLE_TEMPFAIL;
    } else {
        job->status = table_lookup(*t, job->key, &job->value);
    }
    buf_free(&err);
}

static void *proxymap_worker(void *arg)
{
    struct proxymap_pool_table *pt = arg;
    struct proxymap_pool *p = pt->pool;
    struct table *t = NULL;
    char byte = 0;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (pt->head == NULL) {
            pt->idle++;
            pthread_cond_wait(&pt->wake, &p->lock);
            pt->idle--;
        }
        struct proxymap_job *job = pt->head;
        pt->head = job->next;
        pt->queued--;
        if (pt->head == NULL)
            pt->tail = NULL;
        if (!job->abandoned) {
            pthread_mutex_unlock(&p->lock);
            proxymap_job_run(pt, &t, job);
            pthread_mutex_lock(&p->lock);
        }
        job->next = p->finished;
        p->finished = job;
        if (write(p->pipe[1], &byte, 1) < 0 && errno != EAGAIN)
            log_warn("proxymap: cannot wake the event loop: %s", strerror(errno));
    }
    return NULL;
}

/* proxymap_pool_on_finished - hand the finished jobs to done() */
static void proxymap_pool_on_finished(evutil_socket_t fd, short what, void *arg)
{
    struct proxymap_pool *p = arg;
    char drain[256];
    struct proxymap_job *list;

    while (read(fd, drain, sizeof(drain)) > 0)
        ;
    pthread_mutex_lock(&p->lock);
    list = p->finished;
    p->finished = NULL;
    pthread_mutex_unlock(&p->lock);
    while (list != NULL) {
        struct proxymap_job *job = list;
        list = job->next;
        p->busy--;
        if (job->abandoned)
            proxymap_job_free(job);
        else
            p->done(job, p->ctx);
    }
}

struct proxymap_pool *proxymap_pool_new(struct event_base *base, size_t size,
                                        void (*done)(struct proxymap_job *job, void *ctx),
                                        void *ctx)
{
    struct proxymap_pool *p = xcalloc(1, sizeof(*p));

    pthread_mutex_init(&p->lock, NULL);
    p->tables = proxymap_map_new();
    p->size = size > 0 ? size : 1;
    p->done = done;
    p->ctx = ctx;
    if (pipe(p->pipe) < 0 || set_nonblock(p->pipe[0]) < 0 || set_nonblock(p->pipe[1]) < 0 ||
        set_cloexec(p->pipe[0]) < 0 || set_cloexec(p->pipe[1]) < 0)
        log_fatal("proxymap: cannot make the workers' pipe: %s", strerror(errno));
    p->ev = event_new(base, p->pipe[0], EV_READ | EV_PERSIST, proxymap_pool_on_finished, p);
    if (p->ev == NULL || event_add(p->ev, NULL) < 0)
        log_fatal("proxymap: cannot watch the workers' pipe");
    return p;
}

/* proxymap_type_is_local - a type whose lookups read a local file or memory */
static int proxymap_type_is_local(const char *spec)
{
    static const char *const remote[] = {"ldap:", "pgsql:", "socketmap:"};

    for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++)
        if (strncmp(spec, remote[i], strlen(remote[i])) == 0)
            return 0;
    return 1;
}

/* proxymap_built_file - the file of a built (LMDB) table into file: 0, or -1
 * for another type */
static int proxymap_built_file(const char *spec, buf_t *file)
{
    buf_t type = BUF_INIT;
    const char *name;
    int optional, rc = -1;

    if (table_spec_split(spec, &type, &name, &optional) == 0)
        rc = table_file_path(buf_cstr(&type), name, file);
    buf_free(&type);
    return rc;
}

/* proxymap_pool_table - the queue for (spec, flags), made on first use.  A
 * built table's file is opened once in the process whatever the flags (LMDB
 * forbids opening an environment twice; its flags are in the file): one
 * queue and one table per file, opened optional (proxymap_job_file_missing) */
static struct proxymap_pool_table *proxymap_pool_table(struct proxymap_pool *p, const char *spec,
                                                       int flags)
{
    buf_t name = BUF_INIT, file = BUF_INIT;
    struct proxymap_pool_table *pt;
    int built = proxymap_built_file(spec, &file) == 0;

    if (built)
        buf_printf(&name, "file %s", buf_cstr(&file));
    else
        buf_printf(&name, "%d %s", flags, spec);
    pt = proxymap_map_get(p->tables, buf_cstr(&name));
    if (pt == NULL) {
        pt = xcalloc(1, sizeof(*pt));
        pt->pool = p;
        pt->spec = xstrdup(spec);
        pt->flags = built ? flags | TABLE_OPTIONAL : flags;
        pt->file = built ? buf_steal(&file) : NULL;
        pt->max_threads = proxymap_type_is_local(spec) ? 1 : p->size;
        pthread_cond_init(&pt->wake, NULL);
        proxymap_map_put(p->tables, buf_cstr(&name), pt);
    }
    buf_free(&name);
    buf_free(&file);
    return pt;
}

/* proxymap_pool_spawn - one more worker for pt (lock held) */
static void proxymap_pool_spawn(struct proxymap_pool_table *pt)
{
    pthread_t tid;
    pthread_attr_t attr;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&tid, &attr, proxymap_worker, pt) == 0)
        pt->threads++;
    else if (pt->threads == 0)
        log_fatal("proxymap: cannot start a worker thread for %s", pt->spec);
    pthread_attr_destroy(&attr);
}

void proxymap_pool_submit(struct proxymap_pool *p, const char *spec, int flags,
                          struct proxymap_job *job)
{
    struct proxymap_pool_table *pt = proxymap_pool_table(p, spec, flags);

    job->table = pt;
    job->flags = flags;
    job->next = NULL;
    p->busy++;
    pthread_mutex_lock(&p->lock);
    if (pt->tail)
        pt->tail->next = job;
    else
        pt->head = job;
    pt->tail = job;
    pt->queued++;
    if (pt->queued > pt->idle && pt->threads < pt->max_threads)
        proxymap_pool_spawn(pt);
    pthread_cond_signal(&pt->wake);
    pthread_mutex_unlock(&p->lock);
}

void proxymap_pool_abandon(struct proxymap_pool *p, struct proxymap_job *job)
{
    pthread_mutex_lock(&p->lock);
    job->abandoned = 1;
    pthread_mutex_unlock(&p->lock);
}

size_t proxymap_pool_busy(const struct proxymap_pool *p)
{
    return p->busy;
}
