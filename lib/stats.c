/*
 * stats - the shared counter file (see stats.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "stats.h"
#include "timeutil.h"

#define STATS_MAGIC "TERNSTAT"
#define STATS_VERSION 2 /* 2: sub-second delay buckets */
#define STATS_FREE 0
#define STATS_CLAIMING 1
#define STATS_READY 2
#define STATS_CLAIM_SPINS 16 /* a claim is a few stores: then it is stuck */

struct stats_header {
    char magic[8];
    uint32_t version;
    uint32_t slot_count;
    uint64_t file_size;
    int64_t reset_time;
    uint64_t dropped; /* adds lost: a full table or a slot stuck in CLAIMING */
    char pad[24];
};

struct stats_slot {
    uint32_t state; /* STATS_FREE -> STATS_CLAIMING -> STATS_READY, atomically */
    uint32_t metric;
    char label[STATS_LABEL_MAX];
    uint64_t values[STATS_VALUES];
};

#define STATS_FILE_SIZE (sizeof(struct stats_header) + STATS_SLOTS * sizeof(struct stats_slot))

struct stats_file {
    unsigned char *map;
    int writable;
};

const double stats_bucket_bounds[STATS_BUCKETS - 1] = {0.1, 0.25, 0.5, 1,    5,     10,   30,
                                                       60,  300,  900, 3600, 14400, 86400};

const struct stats_metric_def stats_metrics[STATS_METRIC_COUNT] = {
    [STATS_RECEIVED] = {"tern_messages_received", STATS_COUNTER, "origin",
                        "Messages queued by cleanup, by origin (smtp or local submission)."},
    [STATS_RECEIVED_BYTES] = {"tern_received_bytes", STATS_COUNTER, "origin",
                              "Bytes of the messages queued by cleanup, by origin."},
    [STATS_DELIVERED] = {"tern_recipients_delivered", STATS_COUNTER, "transport",
                         "Recipients delivered, by transport."},
    [STATS_DELIVERED_BYTES] = {"tern_delivered_bytes", STATS_COUNTER, "transport",
                               "Message bytes delivered (once per recipient), by transport."},
    [STATS_DEFERRED] = {"tern_recipients_deferred", STATS_COUNTER, "transport",
                        "Delivery attempts that ended in a deferral, by transport."},
    [STATS_BOUNCED] = {"tern_recipients_bounced", STATS_COUNTER, "transport",
                       "Recipients that failed permanently, by transport."},
    [STATS_DISCARDED] = {"tern_messages_discarded", STATS_COUNTER, "origin",
                         "Messages accepted and dropped (DISCARD, a milter's discard)."},
    [STATS_REJECTED] = {"tern_smtpd_rejects", STATS_COUNTER, "reason",
                        "SMTP commands or messages smtpd refused, by the check that refused."},
    [STATS_SESSIONS] = {"tern_smtpd_sessions", STATS_COUNTER, "", "SMTP sessions smtpd accepted."},
    [STATS_SESSIONS_OPEN] = {"tern_smtpd_sessions_open", STATS_GAUGE, "",
                             "SMTP sessions open now."},
    [STATS_TLS] = {"tern_tls_handshakes", STATS_COUNTER, "side,result",
                   "TLS handshakes, by side (smtpd server, smtp client) and result."},
    [STATS_AUTH] = {"tern_auth_attempts", STATS_COUNTER, "side,result",
                    "SMTP AUTH exchanges, by side (smtpd server, smtp client) and result."},
    [STATS_DELAY] = {"tern_delivery_delay_seconds", STATS_HISTOGRAM, "transport",
                     "Time from arrival to delivery of each delivered recipient."},
};

static struct stats_file stats_attached;

int stats_path(const char *data_dir, char *out, size_t n)
{
    int len = snprintf(out, n, "%s/%s", data_dir, STATS_FILE_NAME);
    return len < 0 || (size_t)len >= n ? -1 : 0;
}

static struct stats_header *stats_header_of(const struct stats_file *f)
{
    return (struct stats_header *)f->map;
}

static struct stats_slot *stats_slot_at(const struct stats_file *f, size_t i)
{
    return (struct stats_slot *)(f->map + sizeof(struct stats_header)) + i;
}

/* stats_header_valid - magic, version and sizes as this build writes them */
static int stats_header_valid(const struct stats_header *h)
{
    return memcmp(h->magic, STATS_MAGIC, 8) == 0 && h->version == STATS_VERSION &&
           h->slot_count == STATS_SLOTS && h->file_size == STATS_FILE_SIZE;
}

/* stats_header_init - a fresh header on zeroed slots */
static void stats_header_init(struct stats_header *h)
{
    memcpy(h->magic, STATS_MAGIC, 8);
    h->version = STATS_VERSION;
    h->slot_count = STATS_SLOTS;
    h->file_size = STATS_FILE_SIZE;
    h->reset_time = (int64_t)time(NULL);
}

/* stats_map_fd - map fd when it is a regular file of the right size */
static unsigned char *stats_map_fd(int fd, int writable)
{
    struct stat st;
    void *map;

    if (fstat(fd, &st) < 0)
        return NULL;
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size != STATS_FILE_SIZE) {
        errno = EINVAL;
        return NULL;
    }
    map = mmap(NULL, STATS_FILE_SIZE, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd,
               0);
    return map == MAP_FAILED ? NULL : map;
}

/* stats_rebuild - an empty, valid file in place of whatever fd holds */
static int stats_rebuild(int fd)
{
    unsigned char *map;

    if (ftruncate(fd, 0) < 0 || ftruncate(fd, STATS_FILE_SIZE) < 0)
        return -1;
    if ((map = stats_map_fd(fd, 1)) == NULL)
        return -1;
    stats_header_init((struct stats_header *)map);
    msync(map, STATS_FILE_SIZE, MS_SYNC);
    munmap(map, STATS_FILE_SIZE);
    return 0;
}

/* stats_gauges_zero - no process counts anything open at start */
static void stats_gauges_zero(struct stats_file *f)
{
    struct stats_sample s;

    for (size_t i = 0; i < STATS_SLOTS; i++)
        if (stats_slot_read(f, i, &s) && stats_metrics[s.metric].kind == STATS_GAUGE)
            for (size_t v = 0; v < STATS_VALUES; v++)
                __atomic_store_n(&stats_slot_at(f, i)->values[v], 0, __ATOMIC_RELAXED);
}

/* stats_claims_clear - a slot left in CLAIMING (its process died mid-claim,
 * or wrote it so) is freed: no service runs yet, so none is claiming.  Safe
 * for the probe chains: an add never probes past a CLAIMING slot (it drops),
 * so no ready slot lies behind one. */
static void stats_claims_clear(struct stats_file *f)
{
    for (size_t i = 0; i < STATS_SLOTS; i++) {
        struct stats_slot *s = stats_slot_at(f, i);
        if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != STATS_CLAIMING)
            continue;
        s->metric = 0;
        memset(s->label, 0, STATS_LABEL_MAX);
        memset(s->values, 0, sizeof(s->values));
        __atomic_store_n(&s->state, STATS_FREE, __ATOMIC_RELEASE);
    }
}

/* stats_file_create - open path for master, which then chowns it: a
 * regular file with one link, else it is replaced (mail_owner can write the
 * directory: a hard link to another file must not be given away) */
static int stats_file_create(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    struct stat st;

    if (fd < 0 && errno != ELOOP)
        return -1;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1)
        return fd;
    log_warn("%s is not a regular file with one link: replacing it", path);
    if (fd >= 0)
        close(fd);
    if (unlink(path) < 0)
        return -1;
    return open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
}

int stats_file_prepare(const char *path, uid_t uid, gid_t gid)
{
    int fd = stats_file_create(path);
    struct stats_file *f;

    if (fd < 0)
        return -1;
    if ((geteuid() == 0 && fchown(fd, uid, gid) < 0) || fchmod(fd, 0600) < 0) {
        close(fd);
        return -1;
    }
    f = stats_file_open(path, 1);
    if (f == NULL && errno == EINVAL) {
        if (lseek(fd, 0, SEEK_END) > 0) /* not the empty file just created */
            log_warn("%s is not a tern statistics file of this version: starting it anew", path);
        if (stats_rebuild(fd) < 0) {
            close(fd);
            return -1;
        }
        f = stats_file_open(path, 1);
    }
    close(fd);
    if (f == NULL)
        return -1;
    stats_claims_clear(f);
    stats_gauges_zero(f);
    stats_file_close(f);
    return 0;
}

struct stats_file *stats_file_open(const char *path, int writable)
{
    int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC);
    unsigned char *map;
    struct stats_file *f;

    if (fd < 0)
        return NULL;
    map = stats_map_fd(fd, writable);
    close(fd);
    if (map == NULL)
        return NULL;
    if (!stats_header_valid((const struct stats_header *)map)) {
        munmap(map, STATS_FILE_SIZE);
        errno = EINVAL;
        return NULL;
    }
    f = xcalloc(1, sizeof(*f));
    f->map = map;
    f->writable = writable;
    return f;
}

void stats_file_close(struct stats_file *f)
{
    if (f == NULL)
        return;
    munmap(f->map, STATS_FILE_SIZE);
    free(f);
}

long long stats_file_reset_time(const struct stats_file *f)
{
    return (long long)__atomic_load_n(&stats_header_of(f)->reset_time, __ATOMIC_RELAXED);
}

unsigned long long stats_file_dropped(const struct stats_file *f)
{
    return (unsigned long long)__atomic_load_n(&stats_header_of(f)->dropped, __ATOMIC_RELAXED);
}

void stats_file_reset(struct stats_file *f)
{
    struct stats_sample s;

    for (size_t i = 0; i < STATS_SLOTS; i++) {
        if (!stats_slot_read(f, i, &s) || stats_metrics[s.metric].kind == STATS_GAUGE)
            continue; /* a gauge is "now", not "since" */
        for (size_t v = 0; v < STATS_VALUES; v++)
            __atomic_store_n(&stats_slot_at(f, i)->values[v], 0, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&stats_header_of(f)->dropped, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&stats_header_of(f)->reset_time, (int64_t)time(NULL), __ATOMIC_RELAXED);
}

/* stats_label_char_ok - a byte a label value may hold as it is */
static int stats_label_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-' || c == ',';
}

void stats_label_clean(const char *label, char *out, size_t n)
{
    size_t i;

    if (n == 0)
        return;
    if (n > STATS_LABEL_MAX)
        n = STATS_LABEL_MAX;
    if (label == NULL || *label == 0)
        label = "none";
    for (i = 0; label[i] && i + 1 < n; i++)
        out[i] = stats_label_char_ok((unsigned char)label[i]) ? label[i] : '_';
    out[i] = 0;
}

int stats_slot_read(const struct stats_file *f, size_t i, struct stats_sample *out)
{
    const struct stats_slot *s;
    uint32_t metric;
    size_t len;

    /* another process may rewrite the slot meanwhile: each field is read
     * once into out or a local, and only that copy is checked and used */
    if (i >= STATS_SLOTS)
        return 0;
    s = stats_slot_at(f, i);
    if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != STATS_READY)
        return 0;
    metric = __atomic_load_n(&s->metric, __ATOMIC_RELAXED);
    if (metric >= STATS_METRIC_COUNT)
        return 0;
    memcpy(out->label, s->label, STATS_LABEL_MAX);
    len = strnlen(out->label, STATS_LABEL_MAX);
    if (len == 0 || len == STATS_LABEL_MAX)
        return 0;
    for (size_t k = 0; k < len; k++)
        if (!stats_label_char_ok((unsigned char)out->label[k]))
            return 0;
    out->metric = (enum stats_metric)metric;
    for (size_t v = 0; v < STATS_VALUES; v++)
        out->values[v] = __atomic_load_n(&s->values[v], __ATOMIC_RELAXED);
    return 1;
}

/* stats_hash - FNV-1a of metric and label: where probing starts */
static uint32_t stats_hash(enum stats_metric metric, const char *label)
{
    uint32_t h = 2166136261u ^ (uint32_t)metric;

    h *= 16777619u;
    for (const unsigned char *p = (const unsigned char *)label; *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return h;
}

/* stats_slot_settle - the state of a slot another process is claiming,
 * once it is ready; STATS_CLAIMING still after a few yields (that process
 * died mid-claim, or is slow: the caller drops its add either way) */
static uint32_t stats_slot_settle(struct stats_slot *s)
{
    uint32_t st = STATS_CLAIMING;

    for (int spin = 0; spin < STATS_CLAIM_SPINS && st == STATS_CLAIMING; spin++) {
        sched_yield();
        st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
    }
    return st;
}

/* stats_slot_claim - take a free slot for (metric, label); 1 when done */
static int stats_slot_claim(struct stats_slot *s, enum stats_metric metric, const char *label,
                            uint32_t *state)
{
    uint32_t expected = STATS_FREE;

    if (!__atomic_compare_exchange_n(&s->state, &expected, STATS_CLAIMING, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        *state = expected;
        return 0;
    }
    s->metric = (uint32_t)metric;
    memset(s->label, 0, STATS_LABEL_MAX);
    memcpy(s->label, label, strlen(label));
    __atomic_store_n(&s->state, STATS_READY, __ATOMIC_RELEASE);
    return 1;
}

/* stats_slot_find - the slot of (metric, clean label), claimed if new; NULL
 * when the table is full or the probe meets a slot stuck in CLAIMING (never
 * probing past it: see stats_claims_clear) */
static struct stats_slot *stats_slot_find(struct stats_file *f, enum stats_metric metric,
                                          const char *label)
{
    uint32_t start = stats_hash(metric, label);

    for (size_t k = 0; k < STATS_SLOTS; k++) {
        struct stats_slot *s = stats_slot_at(f, (start + k) % STATS_SLOTS);
        uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);

        if (st == STATS_FREE && stats_slot_claim(s, metric, label, &st))
            return s;
        if (st == STATS_CLAIMING && (st = stats_slot_settle(s)) == STATS_CLAIMING)
            return NULL;
        if (st == STATS_READY &&
            __atomic_load_n(&s->metric, __ATOMIC_RELAXED) == (uint32_t)metric &&
            strncmp(s->label, label, STATS_LABEL_MAX) == 0)
            return s;
    }
    return NULL;
}

/* stats_private - a counter table in private memory when no file is attached */
static int stats_private(void)
{
    void *map =
        mmap(NULL, STATS_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        return -1;
    stats_attached.map = map;
    stats_attached.writable = 1;
    stats_header_init((struct stats_header *)map);
    return 0;
}

int stats_attach(const char *data_dir)
{
    char path[4096];
    struct stats_file *f;

    if (stats_attached.map != NULL)
        munmap(stats_attached.map, STATS_FILE_SIZE);
    stats_attached.map = NULL;
    if (stats_path(data_dir, path, sizeof(path)) < 0) {
        log_warn("data_directory %s is too long: not counting into a statistics file", data_dir);
        stats_private();
        return -1;
    }
    if ((f = stats_file_open(path, 1)) == NULL) {
        if (errno == EINVAL)
            log_warn("%s is not a valid statistics file: not counting into it", path);
        else
            log_debug("no statistics file %s: %m", path);
        stats_private();
        return -1;
    }
    stats_attached = *f;
    free(f);
    return 0;
}

/* stats_values - the values of (metric, label) in the attached table */
static uint64_t *stats_values(enum stats_metric metric, const char *label)
{
    char clean[STATS_LABEL_MAX];
    struct stats_slot *s;

    if (stats_attached.map == NULL && stats_private() < 0)
        return NULL;
    stats_label_clean(label, clean, sizeof(clean));
    s = stats_slot_find(&stats_attached, metric, clean);
    if (s == NULL)
        __atomic_fetch_add(&stats_header_of(&stats_attached)->dropped, 1, __ATOMIC_RELAXED);
    return s ? s->values : NULL;
}

void stats_add(enum stats_metric metric, const char *label, long long n)
{
    uint64_t *v = stats_values(metric, label);

    if (v != NULL)
        __atomic_fetch_add(&v[0], (uint64_t)n, __ATOMIC_RELAXED);
}

void stats_observe(enum stats_metric metric, const char *label, double seconds)
{
    uint64_t *v = stats_values(metric, label);
    size_t b = 0;

    if (v == NULL)
        return;
    if (seconds < 0)
        seconds = 0;
    while (b < STATS_BUCKETS - 1 && seconds > stats_bucket_bounds[b])
        b++;
    __atomic_fetch_add(&v[b], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&v[STATS_HIST_COUNT], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&v[STATS_HIST_SUM_MS], (uint64_t)(seconds * 1000.0), __ATOMIC_RELAXED);
}

void stats_count_received(const char *origin, size_t bytes)
{
    stats_add(STATS_RECEIVED, origin, 1);
    stats_add(STATS_RECEIVED_BYTES, origin, (long long)bytes);
}

void stats_count_delivery(const char *transport, const char *status, size_t bytes, double arrival)
{
    char name[STATS_LABEL_MAX];
    int n = (int)strcspn(transport, ":");

    snprintf(name, sizeof(name), "%.*s", n, transport);
    if (strcmp(status, "sent") == 0) {
        stats_add(STATS_DELIVERED, name, 1);
        stats_add(STATS_DELIVERED_BYTES, name, (long long)bytes);
        stats_observe(STATS_DELAY, name, time_now_double() - arrival);
    } else if (strncmp(status, "bounce", 6) == 0) {
        stats_add(STATS_BOUNCED, name, 1);
    } else if (strncmp(status, "defer", 5) == 0) {
        stats_add(STATS_DEFERRED, name, 1);
    }
}

void stats_count_reject(const char *reason)
{
    stats_add(STATS_REJECTED, reason, 1);
}

void stats_count_session(int opened)
{
    if (opened)
        stats_add(STATS_SESSIONS, NULL, 1);
    stats_add(STATS_SESSIONS_OPEN, NULL, opened ? 1 : -1);
}

void stats_count_result(enum stats_metric metric, const char *side, int ok)
{
    char label[STATS_LABEL_MAX];

    snprintf(label, sizeof(label), "%s,%s", side, ok ? "ok" : "failed");
    stats_add(metric, label, 1);
}
