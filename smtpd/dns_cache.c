/*
 * dns_cache - one worker's shared DNS answers (dns_cache.h).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns.h"
#include "dns_cache.h"
#include "log.h"

#define SMTPD_DNS_CACHE_BUCKETS 4096

struct smtpd_dns_waiter {
    struct smtpd_dns_entry *entry;
    smtpd_dns_cache_fn fn;
    void *ctx;
    struct smtpd_dns_waiter *prev, *next;
};

struct smtpd_dns_entry {
    struct smtpd_dns_cache *cache;
    char *key;
    int status;  /* 0, 1; meaningless while the query is out */
    char *value; /* the answer, NULL while the query is out */
    time_t expires;
    struct dns_pending *query;        /* out, or NULL */
    struct smtpd_dns_waiter *waiters; /* the askers of a query that is out */
    struct smtpd_dns_entry *next;     /* in the bucket */
};

struct smtpd_dns_cache {
    struct dns_ctx *dns;
    struct smtpd_dns_entry *buckets[SMTPD_DNS_CACHE_BUCKETS];
    size_t count;
};

/* smtpd_dns_cache_hash - FNV-1a of the key */
static size_t smtpd_dns_cache_hash(const char *key)
{
    unsigned long h = 2166136261u;

    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % SMTPD_DNS_CACHE_BUCKETS;
}

struct smtpd_dns_cache *smtpd_dns_cache_new(struct dns_ctx *dns)
{
    struct smtpd_dns_cache *c = xcalloc(1, sizeof(*c));

    c->dns = dns;
    return c;
}

/* smtpd_dns_entry_free - an entry without waiters and without a query */
static void smtpd_dns_entry_free(struct smtpd_dns_entry *e)
{
    free(e->key);
    free(e->value);
    free(e);
}

/* smtpd_dns_cache_unlink - take e out of its bucket */
static void smtpd_dns_cache_unlink(struct smtpd_dns_cache *c, struct smtpd_dns_entry *e)
{
    struct smtpd_dns_entry **pp = &c->buckets[smtpd_dns_cache_hash(e->key)];

    while (*pp != NULL && *pp != e)
        pp = &(*pp)->next;
    if (*pp == e) {
        *pp = e->next;
        c->count--;
    }
}

/* smtpd_dns_cache_purge - drop expired answers (never a query that is out) */
static void smtpd_dns_cache_purge(struct smtpd_dns_cache *c, time_t now)
{
    for (size_t i = 0; i < SMTPD_DNS_CACHE_BUCKETS; i++) {
        struct smtpd_dns_entry **pp = &c->buckets[i];
        while (*pp != NULL) {
            struct smtpd_dns_entry *e = *pp;
            if (e->query == NULL && e->expires <= now) {
                *pp = e->next;
                c->count--;
                smtpd_dns_entry_free(e);
            } else {
                pp = &e->next;
            }
        }
    }
}

void smtpd_dns_cache_free(struct smtpd_dns_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < SMTPD_DNS_CACHE_BUCKETS; i++) {
        while (c->buckets[i] != NULL) {
            struct smtpd_dns_entry *e = c->buckets[i];
            c->buckets[i] = e->next;
            dns_cancel(e->query);
            while (e->waiters != NULL) {
                struct smtpd_dns_waiter *w = e->waiters;
                e->waiters = w->next;
                free(w);
            }
            smtpd_dns_entry_free(e);
        }
    }
    free(c);
}

/* smtpd_dns_cache_on_answer - the query is back: keep the answer (not a
 * failure), then tell every waiter */
static void smtpd_dns_cache_on_answer(struct dns_answer *ans, void *arg)
{
    struct smtpd_dns_entry *e = arg;
    struct smtpd_dns_cache *c = e->cache;
    struct smtpd_dns_waiter *w = e->waiters;
    buf_t value = BUF_INIT;
    int status = ans->status == DNS_OK ? 0 : ans->status == DNS_NOTFOUND ? 1 : -1;

    e->query = NULL;
    e->waiters = NULL;
    for (struct smtpd_dns_waiter *d = w; d != NULL; d = d->next)
        d->entry = NULL; /* being told: smtpd_dns_cache_forget only silences it */
    for (size_t i = 0; i < ans->count; i++) {
        if (i)
            buf_putc(&value, ' ');
        buf_puts(&value, ans->v[i]);
    }
    if (status < 0)
        buf_set(&value, ans->reason ? ans->reason : "DNS failure");
    dns_answer_free(ans);
    e->status = status;
    e->value = xstrdup(buf_cstr(&value));
    e->expires = time(NULL) + SMTPD_DNS_CACHE_TTL;
    if (status < 0) { /* a failure is not kept: the next asker asks again */
        smtpd_dns_cache_unlink(c, e);
        smtpd_dns_entry_free(e);
    }
    while (w != NULL) { /* detached: a callback may ask again or forget others */
        struct smtpd_dns_waiter *next = w->next;
        if (w->fn != NULL)
            w->fn(w->ctx, status, buf_cstr(&value));
        free(w);
        w = next;
    }
    buf_free(&value);
}

/* smtpd_dns_cache_query - start the query of a new entry */
static struct dns_pending *smtpd_dns_cache_query(struct smtpd_dns_cache *c,
                                                 enum policy_need_kind kind, const char *target,
                                                 struct smtpd_dns_entry *e)
{
    switch (kind) {
    case POLICY_NEED_A:
        return dns_query(c->dns, target, DNS_QA, smtpd_dns_cache_on_answer, e);
    case POLICY_NEED_TXT:
        return dns_query(c->dns, target, DNS_QTXT, smtpd_dns_cache_on_answer, e);
    case POLICY_NEED_MX:
        return dns_query(c->dns, target, DNS_QMX, smtpd_dns_cache_on_answer, e);
    default:
        return dns_domain_check(c->dns, target, smtpd_dns_cache_on_answer, e);
    }
}

int smtpd_dns_cache_ask(struct smtpd_dns_cache *c, enum policy_need_kind kind, const char *key,
                        const char *target, smtpd_dns_cache_fn fn, void *ctx, int *status,
                        const char **value, struct smtpd_dns_waiter **waiter)
{
    size_t h = smtpd_dns_cache_hash(key);
    struct smtpd_dns_entry *e = c->buckets[h];
    struct smtpd_dns_waiter *w;
    time_t now = time(NULL);

    while (e != NULL && strcmp(e->key, key) != 0)
        e = e->next;
    if (e != NULL && e->query == NULL && e->expires > now) {
        *status = e->status;
        *value = e->value;
        return 1;
    }
    if (e != NULL && e->query == NULL) { /* expired */
        smtpd_dns_cache_unlink(c, e);
        smtpd_dns_entry_free(e);
        e = NULL;
    }
    if (e == NULL) {
        if (c->count >= SMTPD_DNS_CACHE_MAX)
            smtpd_dns_cache_purge(c, now);
        e = xcalloc(1, sizeof(*e));
        e->cache = c;
        e->key = xstrdup(key);
        e->next = c->buckets[h];
        c->buckets[h] = e;
        c->count++;
        e->query = smtpd_dns_cache_query(c, kind, target, e);
    }
    w = xcalloc(1, sizeof(*w));
    w->entry = e;
    w->fn = fn;
    w->ctx = ctx;
    w->next = e->waiters;
    if (e->waiters != NULL)
        e->waiters->prev = w;
    e->waiters = w;
    *waiter = w;
    return 0;
}

void smtpd_dns_cache_forget(struct smtpd_dns_waiter *w)
{
    if (w == NULL)
        return;
    if (w->entry == NULL) { /* its answer is being delivered: freed there */
        w->fn = NULL;
        return;
    }
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        w->entry->waiters = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    free(w);
}
