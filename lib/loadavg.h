/*
 * loadavg - the 1-minute load average, for smtpd_refuse_load (smtpd) and
 * queue_defer_load (qmgr), sendmail's RefuseLA and QueueLA.
 *
 * The source is a file whose first number is the load: /proc/loadavg, or
 * load_average_file (a test hook: tests write "15" into it).  The file is
 * opened once at start, before chroot and the privilege drop, and read again
 * from offset 0 at each check; when the path can be opened again (it may have
 * been replaced by a rename) the fresh file is read instead.  Callers are
 * single-threaded; nothing here blocks except a local file read.
 *
 * Errors: loadavg_read returns -1 when no number can be read (the caller
 * then treats the load as unknown and does not refuse or defer anything).
 */
#ifndef TERN_LOADAVG_H
#define TERN_LOADAVG_H

#define LOADAVG_DEFAULT_FILE "/proc/loadavg"

struct loadavg_source {
    char *path; /* the file read; malloc */
    int fd;     /* kept open since loadavg_open, or -1 */
};

/* loadavg_open - remember path ("" or NULL: /proc/loadavg) and open it;
 * a file that cannot be opened now is tried again at each read */
void loadavg_open(struct loadavg_source *src, const char *path);
/* loadavg_close - release */
void loadavg_close(struct loadavg_source *src);
/* loadavg_read - the current load into *load; 0 ok, -1 unknown */
int loadavg_read(struct loadavg_source *src, double *load);
/* loadavg_parse - the first number of text (pure; "0.52 0.58 ..."); 0 ok,
 * -1 when text does not start with a non-negative number */
int loadavg_parse(const char *text, double *load);
/* loadavg_limit_parse - a limit such as "12" or "12.5" ("0" = off); 0 ok,
 * -1 when not a non-negative number */
int loadavg_limit_parse(const char *text, double *limit);

#endif
