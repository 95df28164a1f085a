/*
 * smtp_body_job - smtp_body_convert on a thread of its own, so that the
 * event loop of tern-smtp never waits for a whole message to be read and
 * converted (about 25 ms per MB): the loop hears of the end through a
 * pipe, joins the thread and hands the result over (smtp_body.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "service.h"
#include "smtp_body.h"

struct smtp_body_job {
    /* the worker's input and output: untouched by the loop until joined */
    struct smtp_body body;
    struct smtp_body_policy policy;
    struct delivery_request req; /* the fields smtp_body_convert reads; path is ours */
    int qfd;                     /* a dup: the session may close its own */
    buf_t headers;
    int has_headers;
    size_t replaced;
    struct smtp_body_error err;
    int rc;
    /* the loop's side */
    pthread_t thread;
    int pipe[2];
    struct event *ev;
    int cancelled; /* nobody waits: free it at the end */
    struct smtp_body *dest;
    smtp_body_done_fn done;
    void *arg;
};

/* smtp_body_job_free - release everything (the thread is joined) */
static void smtp_body_job_free(struct smtp_body_job *job)
{
    smtp_body_free(&job->body);
    buf_free(&job->headers);
    free(job->req.path);
    close(job->qfd);
    close(job->pipe[0]);
    close(job->pipe[1]);
    if (job->ev)
        event_free(job->ev);
    free(job);
}

/* smtp_body_worker - the thread: convert, then say so */
static void *smtp_body_worker(void *arg)
{
    struct smtp_body_job *job = arg;
    ssize_t n;

    job->rc = smtp_body_convert(&job->body, &job->policy, &job->req, job->qfd,
                                job->has_headers ? &job->headers : NULL, job->replaced, &job->err);
    do
        n = write(job->pipe[1], "", 1);
    while (n < 0 && errno == EINTR);
    return NULL;
}

/* smtp_body_job_finished - on the loop: take the result, tell the caller */
static void smtp_body_job_finished(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_body_job *job = arg;

    (void)fd;
    (void)what;
    pthread_join(job->thread, NULL);
    if (!job->cancelled) {
        smtp_body_free(job->dest);
        *job->dest = job->body; /* the copy moves over */
        smtp_body_init(&job->body);
        job->done(job->arg, job->rc, &job->err);
    }
    smtp_body_job_free(job);
}

/* smtp_body_job_start - see smtp_body.h */
struct smtp_body_job *smtp_body_job_start(struct event_base *base, struct smtp_body *dest,
                                          const struct smtp_body_policy *p,
                                          const struct delivery_request *req, int qfd,
                                          buf_t *headers, size_t replaced, smtp_body_done_fn done,
                                          void *arg)
{
    struct smtp_body_job *job = xcalloc(1, sizeof(*job));

    smtp_body_init(&job->body);
    job->policy = *p;
    job->req.path = xstrdup(req->path);
    job->req.content_offset = req->content_offset;
    job->req.content_length = req->content_length;
    job->req.body_8bit = req->body_8bit;
    job->req.body_binary = req->body_binary;
    job->req.size = req->size;
    job->has_headers = headers != NULL;
    if (headers != NULL) { /* taken over */
        job->headers = *headers;
        buf_init(headers);
    }
    job->replaced = replaced;
    job->dest = dest;
    job->done = done;
    job->arg = arg;
    job->qfd = dup(qfd);
    if (job->qfd < 0 || pipe(job->pipe) < 0 || set_cloexec(job->pipe[0]) < 0 ||
        set_cloexec(job->pipe[1]) < 0)
        log_fatal("smtp: cannot prepare a conversion: %s", strerror(errno));
    job->ev = event_new(base, job->pipe[0], EV_READ, smtp_body_job_finished, job);
    if (job->ev == NULL || event_add(job->ev, NULL) < 0)
        log_panic("smtp: cannot watch a conversion");
    if (pthread_create(&job->thread, NULL, smtp_body_worker, job) != 0)
        log_fatal("smtp: cannot start a conversion thread: %s", strerror(errno));
    return job;
}

/* smtp_body_job_cancel - see smtp_body.h */
void smtp_body_job_cancel(struct smtp_body_job *job)
{
    if (job != NULL)
        job->cancelled = 1;
}
