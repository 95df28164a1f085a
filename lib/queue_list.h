/*
 * queue_list - read the queue's envelopes and print them as mailq does.
 *
 * Shared by tern-showq (the public/showq listing service) and `tern queue`
 * (which reads the queue directly when tern is stopped), so both print the
 * same bytes.  queue_list_scan walks incoming/, active/, deferred/H/,
 * hold/ and maildrop/ (local submissions not yet picked up: listed while
 * tern is stopped too, SPEC MSP-01) below a queue directory, reads only the envelope of each file
 * (qfile_read skips the content with lseek) and the deferral reasons in
 * defer/H/ID.  A file that vanishes, is incomplete or malformed, or is a
 * ".tmp." file is skipped: qmgr moves files while we look, and a listing must
 * never fail because of that.  A message seen twice (moved between two
 * directory reads) is listed once.
 *
 * Formats: queue_list_format_sendmail prints sendmail's mailq layout (SPEC
 * CLI-08); queue_list_format_json prints one JSON object per message and
 * line (Postfix postqueue -j style).  Memory: the list owns every string;
 * queue_list_free releases it.  Not thread-safe (nothing in tern is).
 */
#ifndef TERN_QUEUE_LIST_H
#define TERN_QUEUE_LIST_H

#include <stddef.h>

#include "buf.h"
#include "qid.h"

/* the one line a client gets when restrict_queue_listing refuses it */
#define QUEUE_LIST_DENIED "You are not permitted to see the queue\n"

/* the queue directories a message can be listed in */
enum queue_name { QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_MAILDROP };

struct queue_list_rcpt {
    char *address;
    char status;  /* QFILE_RCPT_* */
    char *reason; /* last deferral reason from defer/H/ID, or NULL */
};

struct queue_list_entry {
    char id[QID_LEN + 1];
    enum queue_name queue;
    long long arrival_sec;
    long arrival_usec;
    long long size; /* content bytes (headers and body) */
    char *sender;   /* "" = null sender */
    struct queue_list_rcpt *rcpts;
    size_t rcpt_count;
};

struct queue_list {
    struct queue_list_entry *v;
    size_t count;
    size_t cap;
};

void queue_list_init(struct queue_list *ql);
void queue_list_free(struct queue_list *ql);

/* queue_list_scan - read every message below top ("." when cwd is the queue
 * directory), sorted by arrival then ID; 0 ok, -1 when no queue directory
 * could be read at all (err says why) */
int queue_list_scan(const char *top, struct queue_list *ql, buf_t *err);

/* queue_list_add_file - append the message in path (queue q, below top) with
 * its deferral reasons; 0 ok, -1 when it vanished or is not a complete queue
 * file (nothing appended) */
int queue_list_add_file(struct queue_list *ql, const char *top, const char *path, const char *id,
                        enum queue_name q);

/* queue_list_format_sendmail - append the mailq listing; queue_dir is the
 * name printed in the header line.  Submissions in maildrop/ follow in a
 * section of their own, as sendmail lists clientmqueue apart */
void queue_list_format_sendmail(const struct queue_list *ql, const char *queue_dir, buf_t *out);
/* queue_list_format_json - append one JSON object per message, one per line */
void queue_list_format_json(const struct queue_list *ql, buf_t *out);
/* queue_list_print - scan top and append the listing (json: one object per
 * line, else mailq's layout) to out, read straight from the files (for
 * when showq is not running); 0 ok, -1 as queue_list_scan */
int queue_list_print(const char *top, int json, buf_t *out, buf_t *err);

/* queue_name_str - "incoming", "active", "deferred", "hold" or "maildrop" */
const char *queue_name_str(enum queue_name q);

/* queue_list_find - the path of message id below top (incoming/ID,
 * active/ID, deferred/H/ID or hold/ID) in out, and its queue in *q;
 * 0 found, -1 not found (or id is not a queue ID) */
int queue_list_find(const char *top, const char *id, buf_t *out, enum queue_name *q);

/* queue_list_defer_path - top/defer/H/ID in out */
void queue_list_defer_path(const char *top, const char *id, buf_t *out);

#endif
