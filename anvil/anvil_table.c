/*
 * anvil_table - tern-anvil's per-client counters (see anvil_table.h): a
 * hash table of entries with chaining, doubled when it fills.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anvil_table.h"
#include "buf.h"

/* connections one owner holds for one client */
struct anvil_hold {
    unsigned long owner;
    long long count;
};

struct anvil_entry {
    struct anvil_entry *next; /* in its bucket */
    char *ident;
    long long count; /* concurrent connections: the sum of the holds */
    struct anvil_hold *holds;
    size_t hold_count;
    time_t start; /* the current window opened */
    long long rate[ANVIL_RATE_COUNT];
};

struct anvil_table {
    struct anvil_entry **buckets;
    size_t bucket_count;
    size_t size;
    long long time_unit;
    struct anvil_stats stats;
};

#define ANVIL_TABLE_FIRST_BUCKETS 64

struct anvil_table *anvil_table_new(long long time_unit)
{
    struct anvil_table *t = xcalloc(1, sizeof(*t));

    t->bucket_count = ANVIL_TABLE_FIRST_BUCKETS;
    t->buckets = xcalloc(t->bucket_count, sizeof(*t->buckets));
    t->time_unit = time_unit < 1 ? 1 : time_unit;
    return t;
}

/* anvil_entry_free - one entry */
static void anvil_entry_free(struct anvil_entry *e)
{
    free(e->ident);
    free(e->holds);
    free(e);
}

void anvil_table_free(struct anvil_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->bucket_count; i++) {
        struct anvil_entry *e = t->buckets[i];
        while (e != NULL) {
            struct anvil_entry *next = e->next;
            anvil_entry_free(e);
            e = next;
        }
    }
    free(t->buckets);
    free(t);
}

/* anvil_hash - FNV-1a */
static size_t anvil_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

/* anvil_table_grow - twice the buckets, every entry rehashed */
static void anvil_table_grow(struct anvil_table *t)
{
    size_t count = t->bucket_count * 2;
    struct anvil_entry **buckets = xcalloc(count, sizeof(*buckets));

    for (size_t i = 0; i < t->bucket_count; i++) {
        struct anvil_entry *e = t->buckets[i];
        while (e != NULL) {
            struct anvil_entry *next = e->next;
            size_t b = anvil_hash(e->ident) % count;
            e->next = buckets[b];
            buckets[b] = e;
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = buckets;
    t->bucket_count = count;
}

/* anvil_max_note - remember value when it is a new maximum */
static void anvil_max_note(struct anvil_max *m, long long value, const char *ident, time_t now)
{
    if (value <= m->value)
        return;
    m->value = value;
    m->when = now;
    snprintf(m->ident, sizeof(m->ident), "%s", ident != NULL ? ident : "");
}

/* anvil_table_find - the entry of ident; made (with a fresh window) when
 * make is set, else NULL when there is none */
static struct anvil_entry *anvil_table_find(struct anvil_table *t, const char *ident, time_t now,
                                            int make)
{
    size_t b = anvil_hash(ident) % t->bucket_count;
    struct anvil_entry *e;

    for (e = t->buckets[b]; e != NULL; e = e->next)
        if (strcmp(e->ident, ident) == 0)
            return e;
    if (!make)
        return NULL;
    if (t->size >= t->bucket_count) {
        anvil_table_grow(t);
        b = anvil_hash(ident) % t->bucket_count;
    }
    e = xcalloc(1, sizeof(*e));
    e->ident = xstrndup(ident, strnlen(ident, ANVIL_IDENT_MAX));
    e->start = now;
    e->next = t->buckets[b];
    t->buckets[b] = e;
    t->size++;
    anvil_max_note(&t->stats.cache, (long long)t->size, NULL, now);
    return e;
}

/* anvil_window_expired - the entry's window is over at now */
static int anvil_window_expired(const struct anvil_table *t, const struct anvil_entry *e,
                                time_t now)
{
    return (long long)(now - e->start) >= t->time_unit;
}

/* anvil_rate_incr - one event of kind what: a new window first if due */
static long long anvil_rate_incr(struct anvil_table *t, struct anvil_entry *e, enum anvil_rate what,
                                 time_t now)
{
    if (anvil_window_expired(t, e, now)) {
        memset(e->rate, 0, sizeof(e->rate));
        e->start = now;
    }
    if (e->rate[what] < LLONG_MAX)
        e->rate[what]++;
    anvil_max_note(&t->stats.rate[what], e->rate[what], e->ident, now);
    return e->rate[what];
}

/* anvil_hold_of - owner's hold on e, made when make is set */
static struct anvil_hold *anvil_hold_of(struct anvil_entry *e, unsigned long owner, int make)
{
    for (size_t i = 0; i < e->hold_count; i++)
        if (e->holds[i].owner == owner)
            return &e->holds[i];
    if (!make)
        return NULL;
    e->holds = xrealloc(e->holds, (e->hold_count + 1) * sizeof(*e->holds));
    e->holds[e->hold_count] = (struct anvil_hold){owner, 0};
    return &e->holds[e->hold_count++];
}

/* anvil_hold_release - n connections of hold h (on e) end */
static void anvil_hold_release(struct anvil_entry *e, struct anvil_hold *h, long long n)
{
    if (n > h->count)
        n = h->count;
    h->count -= n;
    e->count -= n;
    if (h->count == 0)
        *h = e->holds[--e->hold_count];
}

void anvil_table_connect(struct anvil_table *t, const char *ident, unsigned long owner, time_t now,
                         long long *count, long long *rate)
{
    struct anvil_entry *e = anvil_table_find(t, ident, now, 1);
    struct anvil_hold *h = anvil_hold_of(e, owner, 1);

    if (e->count < LLONG_MAX) {
        e->count++;
        h->count++;
    }
    anvil_max_note(&t->stats.count, e->count, e->ident, now);
    *rate = anvil_rate_incr(t, e, ANVIL_RATE_CONNECT, now);
    *count = e->count;
}

int anvil_table_disconnect(struct anvil_table *t, const char *ident, unsigned long owner,
                           time_t now)
{
    struct anvil_entry *e = anvil_table_find(t, ident, now, 0);
    struct anvil_hold *h = e != NULL ? anvil_hold_of(e, owner, 0) : NULL;

    if (h == NULL)
        return 0;
    anvil_hold_release(e, h, 1);
    return 1;
}

long long anvil_table_event(struct anvil_table *t, const char *ident, enum anvil_rate what,
                            time_t now)
{
    if (what <= ANVIL_RATE_CONNECT || what >= ANVIL_RATE_COUNT)
        return 0;
    return anvil_rate_incr(t, anvil_table_find(t, ident, now, 1), what, now);
}

void anvil_table_owner_gone(struct anvil_table *t, unsigned long owner, time_t now)
{
    for (size_t i = 0; i < t->bucket_count; i++) {
        for (struct anvil_entry *e = t->buckets[i]; e != NULL; e = e->next) {
            struct anvil_hold *h = anvil_hold_of(e, owner, 0);
            if (h != NULL)
                anvil_hold_release(e, h, h->count);
        }
    }
    anvil_table_expire(t, now);
}

void anvil_table_expire(struct anvil_table *t, time_t now)
{
    for (size_t i = 0; i < t->bucket_count; i++) {
        struct anvil_entry **link = &t->buckets[i];
        while (*link != NULL) {
            struct anvil_entry *e = *link;
            if (e->count == 0 && anvil_window_expired(t, e, now)) {
                *link = e->next;
                anvil_entry_free(e);
                t->size--;
            } else {
                link = &e->next;
            }
        }
    }
}

size_t anvil_table_size(const struct anvil_table *t)
{
    return t->size;
}

const struct anvil_stats *anvil_table_stats(const struct anvil_table *t)
{
    return &t->stats;
}

void anvil_table_stats_reset(struct anvil_table *t)
{
    memset(&t->stats, 0, sizeof(t->stats));
}

const char *anvil_rate_name(enum anvil_rate what)
{
    static const char *names[ANVIL_RATE_COUNT] = {"connection", "message", "recipient", "auth"};

    return what < ANVIL_RATE_COUNT ? names[what] : "unknown";
}
