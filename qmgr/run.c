/*
 * run - a queue run a client waits for (sendmail -q, docs/operations.md,
 * "Queue runs and the daemon flags").
 *
 * qmgr.flush with wait=yes (and optionally trace=yes) makes a run: once
 * maildrop/ is empty (pickup, triggered from here, has handed everything
 * to cleanup; at most RUN_SETTLE_LIMIT), qmgr takes incoming/, attaches
 * every matching message in memory, then reads deferred/ and incoming/
 * RUN_SLICE_FILES files per event-loop turn, taking each matching file
 * regardless of its back-off time; at QMGR_ACTIVE_LIMIT the scan waits for
 * room.  A message carries every run that counts it (m->runs): a run still
 * collecting (qm->settling) claims whatever matching message is loaded, by
 * itself or anyone else (qmgr_run_claim).  The client gets qmgr.reply
 * (status, count) when the scan is over, then one qmgr.run.message per
 * message as it leaves memory (delivered, deferred, bounced: its one
 * attempt is over) with its sequence number and a text (the delivery
 * transcripts when traced, and one line per recipient; neither, nor the
 * ID, for a peer restrict_queue_listing refuses), and finally
 * qmgr.run.done, with left=N for matching files qmgr could not take (it
 * drains for a reload, or queue_defer_load holds incoming/).  Nothing here
 * blocks: the settle wait and the slices are timers and every write is
 * buffered (at most QMGR_CLIENT_OUTPUT_MAX).  A client that goes away
 * detaches; the run is freed when its last message has gone.
 */
#include <dirent.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attr.h"
#include "buf.h"
#include "log.h"
#include "qselect.h"
#include "safefile.h"
#include "service.h"
#include "qmgr.h"

#define RUN_SETTLE_LIMIT 50 /* checks of maildrop/, 200 ms apart */
#define RUN_SETTLE_US 200000
#define RUN_TEXT_MAX (1024 * 1024)
/* queue files a selecting run reads per event-loop turn */
#define RUN_SLICE_FILES 200
/* how often a run that ran out of room (QMGR_ACTIVE_LIMIT) looks again */
#define RUN_ROOM_WAIT_US 200000
/* directories a run takes from: deferred/0 .. deferred/f, then incoming */
#define RUN_DIR_INCOMING 16

struct qmgr_run {
    struct qmgr *qm;
    struct bufferevent *bev; /* the waiting client; NULL once it went away */
    struct event *settle_ev; /* the settle wait, then the slices of the scan */
    int settle_checks;
    int scanning; /* the settle wait is over: reading the queue directories */
    int selected; /* the scan is over and the reply sent: total is final */
    int trace;
    int trace_denied; /* trace asked by a peer restrict_queue_listing refuses */
    int may_list;     /* restrict_queue_listing allows the peer IDs and texts */
    int dropped;      /* it stopped reading: nothing more is written */
    int dir_index;    /* the directory being scanned (RUN_DIR_INCOMING last) */
    DIR *dir;         /* open while scanning */
    char *selector;
    struct qselect sel; /* parsed from selector */
    size_t total, done;
    size_t left;           /* matched files it could not take (drain, load) */
    buf_t early;           /* qmgr.run.message of messages gone before the reply */
    struct qmgr_run *next; /* in qm->settling until its scan is over */
};

/* run_send - one message to the client, while it is there and reading */
static void run_send(struct qmgr_run *run, const buf_t *out)
{
    struct evbuffer *pending;

    if (run->bev == NULL || run->dropped)
        return;
    pending = bufferevent_get_output(run->bev);
    if (evbuffer_get_length(pending) + out->len > QMGR_CLIENT_OUTPUT_MAX) {
        log_warn("public/qmgr: queue run client stopped reading, dropped");
        run->dropped = 1; /* the read side sees EOF: main.c closes the client */
        shutdown(bufferevent_getfd(run->bev), SHUT_RDWR);
        return;
    }
    bufferevent_write(run->bev, out->data, out->len);
}

/* run_send_done - qmgr.run.done: every selected message had its attempt */
static void run_send_done(struct qmgr_run *run)
{
    buf_t out = BUF_INIT;

    attr_begin(&out, "qmgr.run.done");
    attr_add_str(&out, "status", "ok");
    attr_add_int(&out, "count", (long long)run->total);
    if (run->left > 0)
        attr_add_int(&out, "left", (long long)run->left);
    attr_end(&out);
    run_send(run, &out);
    buf_free(&out);
}

/* run_unlist - take run off qm->settling */
static void run_unlist(struct qmgr_run *run)
{
    for (struct qmgr_run **p = &run->qm->settling; *p != NULL; p = &(*p)->next)
        if (*p == run) {
            *p = run->next;
            break;
        }
    run->next = NULL;
}

static void run_free(struct qmgr_run *run)
{
    run_unlist(run);
    buf_free(&run->early);
    if (run->dir != NULL)
        closedir(run->dir);
    if (run->settle_ev != NULL)
        event_free(run->settle_ev);
    free(run->selector);
    free(run);
}

/* run_maildrop_busy - 1 while maildrop/ holds a submission */
static int run_maildrop_busy(void)
{
    DIR *d = opendir("maildrop");
    struct dirent *e;
    int busy = 0;

    if (d == NULL)
        return 0;
    while (!busy && (e = readdir(d)) != NULL)
        busy = qid_valid(e->d_name);
    closedir(d);
    return busy;
}

/* run_poke_pickup - ask pickup to scan maildrop/ now (sendmail -v submits
 * without the trigger so that its message cannot go before its run) */
static void run_poke_pickup(void)
{
    buf_t out = BUF_INIT;
    int fd = unix_connect("public/pickup", 1);

    if (fd < 0)
        return; /* pickup scans every minute anyway */
    attr_begin(&out, "pickup.trigger");
    attr_end(&out);
    if (send(fd, out.data, out.len, MSG_NOSIGNAL) < 0)
        log_debug("cannot trigger pickup: %m");
    close(fd);
    buf_free(&out);
}

/* run_file_matches - does the queue file at path match sel? */
static int run_file_matches(const char *path, const char *id, const struct qselect *sel)
{
    struct qfile_msg qf;
    buf_t err = BUF_INIT;
    int fd, hit = 0;

    if (sel->kind == 0 || sel->kind == 'I')
        return qselect_match(sel, id, NULL, NULL, 0);
    if ((fd = safe_open_regular(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
        return 0;
    qfile_msg_init(&qf);
    if (qfile_read(fd, &qf, &err) == 0)
        hit = qmgr_run_qf_matches(&qf, id, sel);
    qfile_msg_free(&qf);
    buf_free(&err);
    close(fd);
    return hit;
}

/* what run_take_one counts */
struct run_take {
    const struct qselect *sel;
    size_t count;
};

/* run_take_one - take one deferred file if it matches; 0 once out of room */
static int run_take_one(struct qmgr *qm, const char *path, const char *id, void *ctx)
{
    struct run_take *t = ctx;

    if (!qmgr_has_room(qm))
        return 0;
    if (run_file_matches(path, id, t->sel) && qmgr_scan_take(path, id) == 0 &&
        qmgr_message_load(qm, id) == 0)
        t->count++;
    return 1;
}

size_t qmgr_run_take_deferred(struct qmgr *qm, const struct qselect *sel)
{
    struct run_take t = {sel, 0};

    if (qm->draining) /* reload or stop: take nothing new */
        return 0;
    qmgr_scan_deferred_walk(qm, run_take_one, &t);
    return t.count;
}

/* run_attach - m counts for run (once), whichever run loaded it */
static void run_attach(struct qmgr_run *run, struct qmgr_message *m)
{
    for (size_t i = 0; i < m->run_count; i++)
        if (m->runs[i] == run)
            return;
    m->runs = xrealloc(m->runs, (m->run_count + 1) * sizeof(*m->runs));
    m->runs[m->run_count++] = run;
    run->total++;
}

/* run_select_done - the scan is over: the count, what already went, and
 * done when nothing is left to wait for */
static void run_select_done(struct qmgr_run *run)
{
    buf_t out = BUF_INIT;

    run_unlist(run);
    run->selected = 1;
    if (run->dir != NULL)
        closedir(run->dir);
    run->dir = NULL;
    log_info("queue run%s%s: %zu message%s, %zu left on disk", *run->selector ? " " : "",
             run->selector, run->total, run->total == 1 ? "" : "s", run->left);
    attr_begin(&out, "qmgr.reply");
    attr_add_str(&out, "status", "ok");
    attr_add_int(&out, "count", (long long)run->total);
    if (run->trace_denied)
        attr_add_str(&out, "trace", "denied");
    attr_end(&out);
    run_send(run, &out);
    run_send(run, &run->early);
    buf_free(&out);
    if (run->done == run->total)
        run_send_done(run);
}

/* run_next_file - the next queue file of the scan (deferred/0 .. deferred/f,
 * then incoming/) into path and *id; 0 when the scan is over */
static int run_next_file(struct qmgr_run *run, buf_t *path, const char **id)
{
    buf_t dir = BUF_INIT;
    struct dirent *e;

    while (run->dir_index <= RUN_DIR_INCOMING) {
        buf_reset(&dir);
        if (run->dir_index < RUN_DIR_INCOMING)
            buf_printf(&dir, "deferred/%x", run->dir_index);
        else
            buf_puts(&dir, "incoming");
        if (run->dir == NULL && (run->dir = opendir(dir.data)) == NULL) {
            run->dir_index++;
            continue;
        }
        while ((e = readdir(run->dir)) != NULL)
            if (qid_valid(e->d_name)) {
                buf_reset(path);
                buf_printf(path, "%s/%s", dir.data, e->d_name);
                *id = e->d_name;
                buf_free(&dir);
                return 1;
            }
        closedir(run->dir);
        run->dir = NULL;
        run->dir_index++;
    }
    buf_free(&dir);
    return 0;
}

/* run_may_take - 1: the run may take a file now; 0: it never will (qmgr
 * drains, or queue_defer_load holds incoming/): counted as left; -1: not
 * yet, QMGR_ACTIVE_LIMIT is reached */
static int run_may_take(const struct qmgr_run *run)
{
    const struct qmgr *qm = run->qm;

    if (qm->draining || (run->dir_index == RUN_DIR_INCOMING && qm->load_deferring))
        return 0;
    return qmgr_has_room(qm) ? 1 : -1;
}

/* run_scan_slice - read up to RUN_SLICE_FILES queue files, take the ones
 * the selector matches (qmgr_message_load attaches them: the run is still
 * in qm->settling), then yield to the loop */
static void run_scan_slice(struct qmgr_run *run)
{
    struct timeval next = {0, 0}, room = {0, RUN_ROOM_WAIT_US};
    buf_t path = BUF_INIT;
    const char *id;

    for (int n = 0; n < RUN_SLICE_FILES; n++) {
        if (run_may_take(run) < 0) {
            evtimer_add(run->settle_ev, &room);
            buf_free(&path);
            return;
        }
        if (!run_next_file(run, &path, &id)) {
            buf_free(&path);
            run_select_done(run);
            return;
        }
        if (!run_file_matches(path.data, id, &run->sel))
            continue;
        if (run_may_take(run) == 0)
            run->left++;
        else if (qmgr_scan_take(path.data, id) == 0)
            qmgr_message_load(run->qm, id);
    }
    buf_free(&path);
    evtimer_add(run->settle_ev, &next); /* a timer: pending I/O goes first */
}

/* run_scan_begin - maildrop/ is empty: take incoming/, attach what is in
 * memory, then scan the queue directories slice by slice */
static void run_scan_begin(struct qmgr_run *run)
{
    struct qmgr *qm = run->qm;

    qmgr_scan_incoming(qm); /* claims what matches (qmgr_run_claim) */
    run->scanning = 1;
    for (struct qmgr_message *m = qm->messages; m != NULL; m = m->next)
        if (qmgr_run_qf_matches(&m->qf, m->id, &run->sel))
            run_attach(run, m);
    run_scan_slice(run);
}

/* run_settle_cb - wait for pickup to empty maildrop/, then scan in slices */
static void run_settle_cb(evutil_socket_t fd, short what, void *arg)
{
    struct qmgr_run *run = arg;
    struct timeval again = {0, RUN_SETTLE_US};

    if (run->bev == NULL) { /* the client left before the run was counted */
        run_unlist(run);
        if (run->dir != NULL)
            closedir(run->dir);
        run->dir = NULL;
        run->selected = 1; /* claimed messages still out free it when they go */
        if (run->done == run->total)
            run_free(run);
        return;
    }
    if (run->scanning) {
        run_scan_slice(run);
        return;
    }
    if (run_maildrop_busy() && ++run->settle_checks < RUN_SETTLE_LIMIT) {
        if (run->settle_checks % 5 == 1) /* at once, then every second */
            run_poke_pickup();
        evtimer_add(run->settle_ev, &again);
        return;
    }
    run_scan_begin(run);
}

int qmgr_run_qf_matches(const struct qfile_msg *qf, const char *id, const struct qselect *sel)
{
    const char **rcpts = xcalloc(qf->rcpt_count ? qf->rcpt_count : 1, sizeof(char *));
    size_t n = 0;
    int hit;

    for (size_t i = 0; i < qf->rcpt_count; i++)
        if (qfile_rcpt_is_pending(qf->rcpts[i].status))
            rcpts[n++] = qf->rcpts[i].address;
    hit = qselect_match(sel, id, qf->sender, rcpts, n);
    free(rcpts);
    return hit;
}

struct qmgr_run *qmgr_run_start(struct qmgr *qm, const struct attr_msg *am, struct bufferevent *bev,
                                int may_list, buf_t *err)
{
    const char *selector = attr_get(am, "selector", NULL);
    const char *trace = attr_get(am, "trace", NULL);
    struct qmgr_run *run;

    if (selector != NULL && strlen(selector) > QSELECT_MAX_NEEDLE + 2)
        selector = "?"; /* refused below */
    run = xcalloc(1, sizeof(*run));
    run->selector = xstrdup(selector ? selector : "");
    if (qselect_parse(run->selector, &run->sel) < 0) {
        buf_puts(err, QSELECT_SYNTAX);
        free(run->selector);
        free(run);
        return NULL;
    }
    run->qm = qm;
    run->bev = bev;
    run->may_list = may_list;
    run->trace = trace != NULL && strcmp(trace, "yes") == 0;
    if (run->trace && !may_list) {
        log_info("queue run transcript refused (restrict_queue_listing = yes)");
        run->trace = 0;
        run->trace_denied = 1;
    }
    run->next = qm->settling;
    qm->settling = run;
    run->settle_ev = evtimer_new(qm->base, run_settle_cb, run);
    event_active(run->settle_ev, EV_TIMEOUT, 0);
    return run;
}

void qmgr_run_detach(struct qmgr_run *run)
{
    run->bev = NULL;
    /* before the count the settle callback frees it; after, the last
     * message to go does */
    if (run->selected && run->done == run->total)
        run_free(run);
}

int qmgr_run_finished(const struct qmgr_run *run)
{
    return run->selected && run->done == run->total;
}

void qmgr_run_claim(struct qmgr *qm, struct qmgr_message *m)
{
    for (struct qmgr_run *run = qm->settling; run != NULL; run = run->next)
        if (run->bev != NULL && qmgr_run_qf_matches(&m->qf, m->id, &run->sel))
            run_attach(run, m);
}

int qmgr_run_traced(const struct qmgr_message *m)
{
    for (size_t i = 0; i < m->run_count; i++)
        if (m->runs[i]->trace)
            return 1;
    return 0;
}

/* run_note_rcpt - "<rcpt>... Sent (reply)" and the like */
static void run_note_rcpt(struct qmgr_message *m, long long index, const char *status,
                          const char *reason)
{
    const char *addr;

    if (index < 0 || (size_t)index >= m->qf.rcpt_count || m->run_text.len > RUN_TEXT_MAX)
        return;
    addr = m->qf.rcpts[index].address;
    reason = reason ? reason : "";
    if (strcmp(status, "sent") == 0)
        buf_printf(&m->run_text, "<%s>... Sent (%s)\n", addr, reason);
    else if (strcmp(status, "defer") == 0)
        buf_printf(&m->run_text, "<%s>... Deferred: %s\n", addr, reason);
    else
        buf_printf(&m->run_text, "<%s>... Failed: %s\n", addr, reason);
}

void qmgr_run_note_result(struct qmgr_message *m, const struct attr_msg *am)
{
    long long index = -1;
    const char *status = NULL, *reason = NULL;

    if (m->run_count == 0)
        return;
    for (size_t k = 1; k < am->count; k++) {
        const struct attr *a = &am->v[k];

        if (strcmp(a->name, "transcript") == 0 && m->run_text.len < RUN_TEXT_MAX) {
            buf_puts(&m->run_text, a->value);
        } else if (strcmp(a->name, "index") == 0) {
            if (status != NULL)
                run_note_rcpt(m, index, status, reason);
            index = strtoll(a->value, NULL, 10);
            status = reason = NULL;
        } else if (strcmp(a->name, "status") == 0) {
            status = a->value;
        } else if (strcmp(a->name, "reason") == 0) {
            reason = a->value;
        }
    }
    if (status != NULL)
        run_note_rcpt(m, index, status, reason);
}

/* run_message_done - m's attempt is over: tell run, and end it after its
 * last message */
static void run_message_done(struct qmgr_run *run, struct qmgr_message *m)
{
    buf_t out = BUF_INIT;

    run->done++;
    attr_begin(&out, "qmgr.run.message");
    if (run->may_list) /* restrict_queue_listing: counts only */
        attr_add_str(&out, "id", m->id);
    attr_add_int(&out, "sequence", (long long)run->done);
    if (run->selected) /* else the total is not known yet: the reply's count */
        attr_add_int(&out, "of", (long long)run->total);
    if (run->may_list)
        attr_add_str(&out, "text", buf_cstr(&m->run_text));
    attr_end(&out);
    if (run->selected)
        run_send(run, &out);
    else if (run->bev != NULL && run->early.len < QMGR_CLIENT_OUTPUT_MAX)
        buf_append(&run->early, out.data, out.len);
    buf_free(&out);
    if (!run->selected || run->done < run->total)
        return;
    if (run->bev != NULL)
        run_send_done(run); /* main.c closes the client once it is written */
    else
        run_free(run);
}

void qmgr_run_message_gone(struct qmgr_message *m)
{
    struct qmgr_run **runs = m->runs;
    size_t count = m->run_count;

    m->runs = NULL;
    m->run_count = 0;
    for (size_t i = 0; i < count; i++)
        run_message_done(runs[i], m);
    free(runs);
    buf_free(&m->run_text);
}
