/*
 * stats - counters every service adds to, read by tern-metrics and `tern stats`.
 *
 * The counters live in one file, DATA_DIR/stats (data_directory, owned by
 * mail_owner, mode 0600), that each service maps MAP_SHARED at start-up
 * (service_init, before chroot and the privilege drop) and updates with
 * relaxed atomic adds: no lock, no system call on any hot path.  The file
 * survives restarts, so its totals count "since the last reset"
 * (`tern stats -r`).
 *
 * Layout (host byte order: the file never leaves the machine):
 *   header  "TERNSTAT", version, slot count, file size, reset time, adds
 *           dropped (64 bytes)
 *   slots   STATS_SLOTS of { state, metric, label[STATS_LABEL_MAX], values[16] }
 * A slot is one (metric, label values) pair, e.g. (delivered, "smtp").  It is
 * claimed once, with a compare-and-swap on its state (free -> claiming), then
 * its name is written and the state set to ready; from then on only its
 * values change.  A slot is found by hashing (metric, label) and probing
 * linearly.  A probe that meets a slot still claiming after a few yields
 * (its process was killed mid-claim) drops the add and counts it in the
 * header's "dropped", as a full table does: an add never waits long inside
 * a service's event loop, and never probes past such a slot, so master can
 * free it at the next start (stats_file_prepare) without a key getting two
 * slots.  Label values are cut to [A-Za-z0-9_.-] ("," separates the
 * values of a metric with two labels), so a reader can print them as they are.
 *
 * Readers trust nothing: a file of the wrong size, magic or version is
 * rebuilt by master (stats_file_prepare) and never mapped by a service
 * (stats_attach then counts into private memory, lost at exit); a slot
 * whose metric is out of range or whose label is not a clean NUL-terminated
 * string is skipped by stats_slot_read.
 *
 * Gauges (sessions open) are zeroed by master at start; a process that dies
 * with sessions open leaves the gauge high until the next start.
 */
#ifndef TERN_STATS_H
#define TERN_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define STATS_SLOTS 1024
#define STATS_LABEL_MAX 56
#define STATS_VALUES 16
#define STATS_FILE_NAME "stats"

/* the delay histogram's upper bounds in seconds; the last bucket is +Inf */
#define STATS_BUCKETS 14
extern const double stats_bucket_bounds[STATS_BUCKETS - 1];
/* a histogram slot: values[0..STATS_BUCKETS-1] per bucket (not cumulative),
 * then the count, then the sum in milliseconds */
#define STATS_HIST_COUNT STATS_BUCKETS
#define STATS_HIST_SUM_MS (STATS_BUCKETS + 1)
_Static_assert(STATS_HIST_SUM_MS < STATS_VALUES, "a histogram fits in one slot");

enum stats_kind { STATS_COUNTER, STATS_GAUGE, STATS_HISTOGRAM };

enum stats_metric {
    STATS_RECEIVED,       /* origin: messages cleanup accepted */
    STATS_RECEIVED_BYTES, /* origin */
    STATS_DELIVERED,      /* transport: recipients */
    STATS_DELIVERED_BYTES,
    STATS_DEFERRED, /* transport: delivery attempts that deferred */
    STATS_BOUNCED,  /* transport */
    STATS_DISCARDED,
    STATS_REJECTED,      /* reason: smtpd refusals */
    STATS_SESSIONS,      /* smtpd sessions since the reset */
    STATS_SESSIONS_OPEN, /* gauge */
    STATS_TLS,           /* side, result */
    STATS_AUTH,          /* side, result */
    STATS_DELAY,         /* transport: histogram of arrival to delivery */
    STATS_METRIC_COUNT
};

struct stats_metric_def {
    const char *name; /* "tern_messages_received" (no _total) */
    enum stats_kind kind;
    const char *labels; /* "transport" or "side,result" or "" */
    const char *help;
};

/* the table of metrics, indexed by enum stats_metric */
extern const struct stats_metric_def stats_metrics[STATS_METRIC_COUNT];

/* a copy of one ready slot */
struct stats_sample {
    enum stats_metric metric;
    char label[STATS_LABEL_MAX];
    uint64_t values[STATS_VALUES];
};

struct stats_file; /* a mapped file */

/* stats_path - DATA_DIR/stats into out (size n); -1 when too long */
int stats_path(const char *data_dir, char *out, size_t n);
/* stats_file_prepare - master: create the file owned by uid:gid, mode 0600,
 * or check it; a file that is not a valid stats file is rebuilt.  Slots left
 * claiming are freed, gauges zeroed.  0 or -1 (errno set). */
int stats_file_prepare(const char *path, uid_t uid, gid_t gid);
/* stats_file_open - map an existing valid file (writable: for a reset);
 * NULL when missing or invalid (errno set; EINVAL for a foreign file) */
struct stats_file *stats_file_open(const char *path, int writable);
void stats_file_close(struct stats_file *f);
/* stats_file_reset_time - when the counters were last zeroed */
long long stats_file_reset_time(const struct stats_file *f);
/* stats_file_dropped - adds lost since the reset (full table, stuck slot) */
unsigned long long stats_file_dropped(const struct stats_file *f);
/* stats_file_reset - zero every value and set the reset time to now */
void stats_file_reset(struct stats_file *f);
/* stats_slot_read - slot i (0 .. STATS_SLOTS-1) into out: 1 when it is a
 * ready, well-formed slot, else 0 */
int stats_slot_read(const struct stats_file *f, size_t i, struct stats_sample *out);

/* stats_attach - the counting calls below go to this file (service_init);
 * without a valid file they count into private memory.  0 or -1. */
int stats_attach(const char *data_dir);
/* stats_add - add n to (metric, label) of the attached file */
void stats_add(enum stats_metric metric, const char *label, long long n);
/* stats_observe - one value of a histogram metric, in seconds */
void stats_observe(enum stats_metric metric, const char *label, double seconds);

/* the hooks the services call, one line each */
void stats_count_received(const char *origin, size_t bytes);
/* stats_count_delivery - a recipient's outcome: status "sent", "bounce",
 * "defer" (qmgr's words); transport may be "smtp:[host]" (cut at ':');
 * arrival is the message's arrival time (seconds since the epoch) */
void stats_count_delivery(const char *transport, const char *status, size_t bytes, double arrival);
void stats_count_reject(const char *reason);
/* stats_count_session - an smtpd session opened (1) or ended (0) */
void stats_count_session(int opened);
/* stats_count_result - TLS handshakes and AUTH: side "smtpd" / "smtp" */
void stats_count_result(enum stats_metric metric, const char *side, int ok);

/* stats_label_clean - label cut to [A-Za-z0-9_.,-] in out (size n, at most
 * STATS_LABEL_MAX); other bytes become '_'; "" becomes "none" */
void stats_label_clean(const char *label, char *out, size_t n);

#endif
