/*
 * policy_cache - the answers of one session's outside lookups (DNS lists,
 * domains, policy services, sleeps) and the requests still to be made.
 * A session asks few questions: a small array searched linearly.
 */
#include <stdlib.h>
#include <string.h>

#include "policy_impl.h"

#define POLICY_CACHE_NEVER 3
/* more entries than this: the oldest answers are forgotten */
#define POLICY_CACHE_MAX 256

struct policy_cache_entry {
    char *key;
    int status;
    char *value;
};

struct policy_cache {
    struct policy_cache_entry *v;
    size_t count;
    size_t cap;
    struct policy_need *pending;
};

struct policy_cache *policy_cache_new(void)
{
    return xcalloc(1, sizeof(struct policy_cache));
}

void policy_need_free(struct policy_need *n)
{
    if (n == NULL)
        return;
    free(n->key);
    free(n->target);
    buf_free(&n->request);
    free(n);
}

/* policy_cache_free_pending - drop a list of requests */
static void policy_cache_free_pending(struct policy_need *n)
{
    while (n != NULL) {
        struct policy_need *next = n->next;
        policy_need_free(n);
        n = next;
    }
}

void policy_cache_free(struct policy_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->count; i++) {
        free(c->v[i].key);
        free(c->v[i].value);
    }
    free(c->v);
    policy_cache_free_pending(c->pending);
    free(c);
}

/* policy_cache_find - the entry of key, or NULL */
static struct policy_cache_entry *policy_cache_find(struct policy_cache *c, const char *key)
{
    for (size_t i = 0; i < c->count; i++)
        if (strcmp(c->v[i].key, key) == 0)
            return &c->v[i];
    return NULL;
}

/* policy_cache_add - a new entry (the oldest goes when the cache is full) */
static struct policy_cache_entry *policy_cache_add(struct policy_cache *c, const char *key)
{
    struct policy_cache_entry *e;

    if (c->count >= POLICY_CACHE_MAX) { /* forget the oldest answer (never a question out) */
        size_t i = 0;
        while (i < c->count && c->v[i].status == POLICY_CACHE_INFLIGHT)
            i++;
        if (i < c->count) {
            free(c->v[i].key);
            free(c->v[i].value);
            memmove(c->v + i, c->v + i + 1, (c->count - i - 1) * sizeof(*c->v));
            c->count--;
        }
    }
    if (c->count == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
    }
    e = &c->v[c->count++];
    e->key = xstrdup(key);
    e->status = POLICY_CACHE_NEVER;
    e->value = NULL;
    return e;
}

int policy_cache_get(struct policy_cache *c, const char *key, const char **value)
{
    struct policy_cache_entry *e = policy_cache_find(c, key);

    *value = e != NULL && e->value != NULL ? e->value : "";
    return e != NULL ? e->status : POLICY_CACHE_NEVER;
}

void policy_cache_put(struct policy_cache *c, const char *key, int status, const char *value)
{
    struct policy_cache_entry *e = policy_cache_find(c, key);
    struct policy_need **pp = &c->pending;

    if (e == NULL)
        e = policy_cache_add(c, key);
    free(e->value);
    e->status = status;
    e->value = xstrdup(value ? value : "");
    while (*pp != NULL) {
        if (strcmp((*pp)->key, key) == 0) {
            struct policy_need *gone = *pp;
            *pp = gone->next;
            policy_need_free(gone);
        } else {
            pp = &(*pp)->next;
        }
    }
}

void policy_cache_need(struct policy_cache *c, enum policy_need_kind kind, const char *key,
                       const char *target, const buf_t *request, long long seconds)
{
    struct policy_cache_entry *e = policy_cache_find(c, key);
    struct policy_need *n, **tail = &c->pending;

    if (e != NULL && e->status != POLICY_CACHE_NEVER)
        return;
    if (e == NULL)
        e = policy_cache_add(c, key);
    e->status = POLICY_CACHE_INFLIGHT;
    n = xcalloc(1, sizeof(*n));
    n->kind = kind;
    n->key = xstrdup(key);
    n->target = xstrdup(target ? target : "");
    if (request != NULL)
        buf_append(&n->request, request->data, request->len);
    n->seconds = seconds;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = n;
}

struct policy_need *policy_cache_pending(struct policy_cache *c)
{
    return c->pending;
}

struct policy_need *policy_cache_take(struct policy_cache *c)
{
    struct policy_need *n = c->pending;

    c->pending = NULL;
    return n;
}
