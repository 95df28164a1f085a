/*
 * proxymap_pool - tern-proxymap's lookup workers.
 *
 * Per (table, flags) a FIFO of jobs and up to `size` worker threads (one
 * for the local file types, whose lookups do not wait on a network; one
 * queue per file for the built LMDB types, whatever the flags), each
 * owning its own struct table, opened in that thread at its first job: a
 * table that hangs stalls only its own lookups.  A finished job comes back
 * to the event loop's thread through a pipe and is handed to done().
 *
 * Ownership: a submitted job belongs to the pool until done() gets it; a
 * job the main thread gave up on (proxymap_pool_abandon) is freed by the
 * pool when its worker finishes, and done() never sees it.
 */
#ifndef TERN_PROXYMAP_POOL_H
#define TERN_PROXYMAP_POOL_H

#include "buf.h"
#include "table.h"

struct event_base;
struct proxymap_pool;
struct proxymap_pool_table;

struct proxymap_job {
    struct proxymap_job *next; /* the pool's queues */
    struct proxymap_pool_table *table;
    char *key;
    int flags;                /* the request's TABLE_* flags */
    enum table_result status; /* set by the worker */
    buf_t value;              /* set by the worker when found */
    int abandoned;
    void *ctx; /* the caller's */
};

/* proxymap_pool_new - done(job, ctx) runs in base's thread; the job is then
 * the caller's (proxymap_job_free) */
struct proxymap_pool *proxymap_pool_new(struct event_base *base, size_t size,
                                        void (*done)(struct proxymap_job *job, void *ctx),
                                        void *ctx);
/* proxymap_job_new - a job for key (copied) */
struct proxymap_job *proxymap_job_new(const char *key, void *ctx);
void proxymap_job_free(struct proxymap_job *job);
/* proxymap_pool_submit - queue job on table spec opened with flags */
void proxymap_pool_submit(struct proxymap_pool *p, const char *spec, int flags,
                          struct proxymap_job *job);
/* proxymap_pool_abandon - done() will not be called for job */
void proxymap_pool_abandon(struct proxymap_pool *p, struct proxymap_job *job);
/* proxymap_pool_busy - jobs submitted and not handed back yet */
size_t proxymap_pool_busy(const struct proxymap_pool *p);

#endif
