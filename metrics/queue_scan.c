/*
 * queue_scan - how many messages each queue directory holds, and how old
 * the oldest is (see metrics.h).
 *
 * The age comes from the queue ID (lib/qid.h: it carries the arrival
 * second), not from the file's times: qmgr sets a deferred file's mtime to
 * its next retry.  A maildrop file's name is not a queue ID: its mtime is
 * its arrival.  At most METRICS_SCAN_MAX entries are read per directory, so
 * a scrape of a very deep queue stays cheap (the count is then a floor).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "metrics.h"
#include "qid.h"

/* queue_scan_entry - one directory entry: its arrival second, or -1 */
static long long queue_scan_entry(int dirfd, const char *name)
{
    struct stat st;
    long long arrival = qid_arrival(name);

    if (arrival >= 0)
        return arrival;
    if (name[0] == '.' || fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        !S_ISREG(st.st_mode))
        return -1;
    return (long long)st.st_mtime;
}

/* queue_scan_dir - count path's messages into q; *budget entries at most */
static void queue_scan_dir(const char *path, struct metrics_queue *q, time_t now, long long *budget)
{
    DIR *d = opendir(path);
    struct dirent *e;

    if (d == NULL)
        return;
    while (*budget > 0 && (e = readdir(d)) != NULL) {
        long long arrival;
        if (e->d_name[0] == '.' || e->d_type == DT_DIR)
            continue;
        (*budget)--;
        if ((arrival = queue_scan_entry(dirfd(d), e->d_name)) < 0)
            continue;
        q->messages++;
        if (now - arrival > q->oldest_age)
            q->oldest_age = now - arrival;
    }
    closedir(d);
}

void metrics_queue_scan(struct metrics_queue *q, time_t now)
{
    char path[32];

    for (size_t i = 0; i < METRICS_QUEUE_COUNT; i++) {
        long long budget = METRICS_SCAN_MAX;
        const char *name = metrics_queue_names[i];
        int hashed = strcmp(name, "deferred") == 0; /* deferred/0 .. deferred/f */

        q[i].name = name;
        q[i].messages = q[i].oldest_age = 0;
        if (!hashed) {
            queue_scan_dir(name, &q[i], now, &budget);
            continue;
        }
        for (int h = 0; h < 16; h++) {
            snprintf(path, sizeof(path), "%s/%x", name, h);
            queue_scan_dir(path, &q[i], now, &budget);
        }
    }
}
