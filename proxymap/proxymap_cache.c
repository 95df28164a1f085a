/*
 * proxymap_cache - the TTL cache and the hash table under it (see
 * proxymap_cache.h).
 */
#include <stdlib.h>
#include <string.h>

#include "proxymap_cache.h"

struct proxymap_map_node {
    struct proxymap_map_node *next;
    char *key;
    void *value;
};

struct proxymap_map {
    struct proxymap_map_node **slots;
    size_t nslots, count;
};

static size_t proxymap_hash(const char *s)
{
    size_t h = 5381;

    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h;
}

struct proxymap_map *proxymap_map_new(void)
{
    struct proxymap_map *m = xcalloc(1, sizeof(*m));

    m->nslots = 64;
    m->slots = xcalloc(m->nslots, sizeof(*m->slots));
    return m;
}

void proxymap_map_free(struct proxymap_map *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nslots; i++)
        for (struct proxymap_map_node *n = m->slots[i], *next; n != NULL; n = next) {
            next = n->next;
            free(n->key);
            free(n);
        }
    free(m->slots);
    free(m);
}

void *proxymap_map_get(const struct proxymap_map *m, const char *key)
{
    for (struct proxymap_map_node *n = m->slots[proxymap_hash(key) % m->nslots]; n; n = n->next)
        if (strcmp(n->key, key) == 0)
            return n->value;
    return NULL;
}

/* proxymap_map_grow - double the slots when the chains get long */
static void proxymap_map_grow(struct proxymap_map *m)
{
    size_t nslots = m->nslots * 2;
    struct proxymap_map_node **slots = xcalloc(nslots, sizeof(*slots));

    for (size_t i = 0; i < m->nslots; i++)
        for (struct proxymap_map_node *n = m->slots[i], *next; n != NULL; n = next) {
            size_t h = proxymap_hash(n->key) % nslots;
            next = n->next;
            n->next = slots[h];
            slots[h] = n;
        }
    free(m->slots);
    m->slots = slots;
    m->nslots = nslots;
}

void proxymap_map_put(struct proxymap_map *m, const char *key, void *value)
{
    struct proxymap_map_node *n = xcalloc(1, sizeof(*n));
    size_t h;

    if (m->count >= m->nslots)
        proxymap_map_grow(m);
    h = proxymap_hash(key) % m->nslots;
    n->key = xstrdup(key);
    n->value = value;
    n->next = m->slots[h];
    m->slots[h] = n;
    m->count++;
}

void *proxymap_map_del(struct proxymap_map *m, const char *key)
{
    for (struct proxymap_map_node **p = &m->slots[proxymap_hash(key) % m->nslots]; *p;
         p = &(*p)->next) {
        struct proxymap_map_node *n = *p;
        if (strcmp(n->key, key) == 0) {
            void *value = n->value;
            *p = n->next;
            free(n->key);
            free(n);
            m->count--;
            return value;
        }
    }
    return NULL;
}

/* ---- the cache: entries in insertion order, oldest first */

struct proxymap_cache_entry {
    struct proxymap_cache_entry *prev, *next;
    char *ckey;
    enum table_result status;
    char *value;
    size_t len;
    time_t expires;
};

struct proxymap_cache {
    long long ttl;
    size_t max;
    struct proxymap_map *index;
    struct proxymap_cache_entry *oldest, *newest;
};

struct proxymap_cache *proxymap_cache_new(long long ttl, size_t max)
{
    struct proxymap_cache *c = xcalloc(1, sizeof(*c));

    c->ttl = ttl;
    c->max = max;
    c->index = proxymap_map_new();
    return c;
}

static void proxymap_cache_drop(struct proxymap_cache *c, struct proxymap_cache_entry *e)
{
    proxymap_map_del(c->index, e->ckey);
    if (e->prev)
        e->prev->next = e->next;
    else
        c->oldest = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->newest = e->prev;
    free(e->ckey);
    if (e->value != NULL)
        explicit_bzero(e->value, e->len);
    free(e->value);
    free(e);
}

void proxymap_cache_free(struct proxymap_cache *c)
{
    if (c == NULL)
        return;
    while (c->oldest)
        proxymap_cache_drop(c, c->oldest);
    proxymap_map_free(c->index);
    free(c);
}

void proxymap_cache_key(buf_t *out, const char *table, int flags, const char *key)
{
    buf_reset(out);
    buf_printf(out, "%d %s %s", flags, table, key);
}

int proxymap_cache_get(struct proxymap_cache *c, const char *ckey, time_t now,
                       enum table_result *status, buf_t *value)
{
    struct proxymap_cache_entry *e = proxymap_map_get(c->index, ckey);

    if (e == NULL)
        return 0;
    if (e->expires <= now) {
        proxymap_cache_drop(c, e);
        return 0;
    }
    *status = e->status;
    if (e->status == TABLE_FOUND) {
        buf_reset(value);
        buf_append(value, e->value, e->len);
    }
    return 1;
}

void proxymap_cache_put(struct proxymap_cache *c, const char *ckey, enum table_result status,
                        const char *value, size_t len, time_t now)
{
    struct proxymap_cache_entry *e = proxymap_map_get(c->index, ckey);

    if (c->ttl <= 0 || c->max == 0 || status == TABLE_TEMPFAIL)
        return;
    if (e != NULL)
        proxymap_cache_drop(c, e);
    while (c->index->count >= c->max)
        proxymap_cache_drop(c, c->oldest);
    e = xcalloc(1, sizeof(*e));
    e->ckey = xstrdup(ckey);
    e->status = status;
    e->value = status == TABLE_FOUND ? xstrndup(value, len) : NULL;
    e->len = status == TABLE_FOUND ? len : 0;
    e->expires = now + (time_t)c->ttl;
    e->prev = c->newest;
    if (c->newest)
        c->newest->next = e;
    else
        c->oldest = e;
    c->newest = e;
    proxymap_map_put(c->index, ckey, e);
}

size_t proxymap_cache_count(const struct proxymap_cache *c)
{
    return c->index->count;
}
