/*
 * etrn_index - the per-domain index of the deferred queue (etrn_index.h).
 *
 * Two hash tables, of domains and of queue IDs, and one entry per (domain,
 * message) pair linked into both: into its domain's doubly linked list (so
 * forgetting a message unlinks each of its entries at once) and into its
 * message's list (so forgetting finds them without searching the domains).
 * A domain or message with no entry left is removed from its table.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "etrn_index.h"

#define ETRN_INDEX_BUCKETS_MIN 64

struct etrn_node {
    char *key;
    struct etrn_node *hash_next;
};

struct etrn_table {
    struct etrn_node **buckets;
    size_t bucket_count;
    size_t count;
};

struct etrn_entry;

struct etrn_domain {
    struct etrn_node node; /* first: a node is its domain */
    struct etrn_entry *head;
};

struct etrn_message {
    struct etrn_node node; /* first: a node is its message */
    struct etrn_entry *head;
    unsigned long mark; /* the find that listed it last */
};

struct etrn_entry {
    struct etrn_domain *domain;
    struct etrn_message *message;
    struct etrn_entry *domain_prev, *domain_next;
    struct etrn_entry *message_next;
};

struct etrn_index {
    struct etrn_table domains;
    struct etrn_table messages;
    unsigned long mark;
};

/* etrn_hash - FNV-1a */
static size_t etrn_hash(const char *key)
{
    size_t h = 2166136261u;

    for (; *key != '\0'; key++)
        h = (h ^ (unsigned char)*key) * 16777619u;
    return h;
}

static void etrn_table_init(struct etrn_table *t)
{
    t->bucket_count = ETRN_INDEX_BUCKETS_MIN;
    t->buckets = xcalloc(t->bucket_count, sizeof(*t->buckets));
    t->count = 0;
}

/* etrn_table_slot - the link that points (or would point) at key's node */
static struct etrn_node **etrn_table_slot(const struct etrn_table *t, const char *key)
{
    struct etrn_node **slot = &t->buckets[etrn_hash(key) % t->bucket_count];

    while (*slot != NULL && strcmp((*slot)->key, key) != 0)
        slot = &(*slot)->hash_next;
    return slot;
}

/* etrn_table_grow - twice the buckets once there are two nodes a bucket */
static void etrn_table_grow(struct etrn_table *t)
{
    struct etrn_table bigger = {NULL, 2 * t->bucket_count, t->count};

    bigger.buckets = xcalloc(bigger.bucket_count, sizeof(*bigger.buckets));
    for (size_t b = 0; b < t->bucket_count; b++) {
        while (t->buckets[b] != NULL) {
            struct etrn_node *n = t->buckets[b];
            struct etrn_node **to = &bigger.buckets[etrn_hash(n->key) % bigger.bucket_count];

            t->buckets[b] = n->hash_next;
            n->hash_next = *to;
            *to = n;
        }
    }
    free(t->buckets);
    *t = bigger;
}

/* etrn_table_insert - key is not in t yet */
static void etrn_table_insert(struct etrn_table *t, struct etrn_node *n)
{
    struct etrn_node **slot;

    if (t->count >= 2 * t->bucket_count)
        etrn_table_grow(t);
    slot = &t->buckets[etrn_hash(n->key) % t->bucket_count];
    n->hash_next = *slot;
    *slot = n;
    t->count++;
}

/* etrn_table_remove - unlink n and free it (and its key) */
static void etrn_table_remove(struct etrn_table *t, struct etrn_node *n)
{
    struct etrn_node **slot = etrn_table_slot(t, n->key);

    *slot = n->hash_next;
    t->count--;
    free(n->key);
    free(n);
}

/* etrn_lower - a lower-case copy */
static char *etrn_lower(const char *s)
{
    char *copy = xstrdup(s);

    for (char *p = copy; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    return copy;
}

struct etrn_index *qmgr_etrn_index_new(void)
{
    struct etrn_index *x = xcalloc(1, sizeof(*x));

    etrn_table_init(&x->domains);
    etrn_table_init(&x->messages);
    return x;
}

void qmgr_etrn_index_free(struct etrn_index *x)
{
    if (x == NULL)
        return;
    while (x->messages.count > 0) {
        for (size_t b = 0; b < x->messages.bucket_count; b++)
            if (x->messages.buckets[b] != NULL)
                qmgr_etrn_index_forget(x, x->messages.buckets[b]->key);
    }
    free(x->domains.buckets);
    free(x->messages.buckets);
    free(x);
}

/* etrn_domain_get - the domain's node, made when missing */
static struct etrn_domain *etrn_domain_get(struct etrn_index *x, char *key)
{
    struct etrn_node **slot = etrn_table_slot(&x->domains, key);
    struct etrn_domain *d;

    if (*slot != NULL) {
        free(key);
        return (struct etrn_domain *)*slot;
    }
    d = xcalloc(1, sizeof(*d));
    d->node.key = key;
    etrn_table_insert(&x->domains, &d->node);
    return d;
}

/* etrn_message_get - the message's node, made when missing */
static struct etrn_message *etrn_message_get(struct etrn_index *x, const char *id)
{
    struct etrn_node **slot = etrn_table_slot(&x->messages, id);
    struct etrn_message *m;

    if (*slot != NULL)
        return (struct etrn_message *)*slot;
    m = xcalloc(1, sizeof(*m));
    m->node.key = xstrdup(id);
    etrn_table_insert(&x->messages, &m->node);
    return m;
}

void qmgr_etrn_index_add(struct etrn_index *x, const char *domain, const char *id)
{
    struct etrn_domain *d = etrn_domain_get(x, etrn_lower(domain));
    struct etrn_message *m = etrn_message_get(x, id);
    struct etrn_entry *e;

    for (e = m->head; e != NULL; e = e->message_next)
        if (e->domain == d)
            return;
    e = xcalloc(1, sizeof(*e));
    e->domain = d;
    e->message = m;
    e->domain_next = d->head;
    if (d->head != NULL)
        d->head->domain_prev = e;
    d->head = e;
    e->message_next = m->head;
    m->head = e;
}

void qmgr_etrn_index_forget(struct etrn_index *x, const char *id)
{
    struct etrn_node *n = *etrn_table_slot(&x->messages, id);
    struct etrn_message *m = (struct etrn_message *)n;

    if (m == NULL)
        return;
    while (m->head != NULL) {
        struct etrn_entry *e = m->head;
        struct etrn_domain *d = e->domain;

        m->head = e->message_next;
        if (e->domain_prev != NULL)
            e->domain_prev->domain_next = e->domain_next;
        else
            d->head = e->domain_next;
        if (e->domain_next != NULL)
            e->domain_next->domain_prev = e->domain_prev;
        free(e);
        if (d->head == NULL)
            etrn_table_remove(&x->domains, &d->node);
    }
    etrn_table_remove(&x->messages, n);
}

/* etrn_domain_list - append d's messages not listed by this find yet */
static size_t etrn_domain_list(struct etrn_index *x, const struct etrn_domain *d, buf_t *ids)
{
    size_t count = 0;

    for (const struct etrn_entry *e = d->head; e != NULL; e = e->domain_next) {
        if (e->message->mark == x->mark)
            continue;
        e->message->mark = x->mark;
        buf_append(ids, e->message->node.key, strlen(e->message->node.key) + 1);
        count++;
    }
    return count;
}

/* etrn_below - name is parent or a subdomain of it */
static int etrn_below(const char *name, const char *parent)
{
    size_t n = strlen(name), p = strlen(parent);

    if (n == p)
        return strcmp(name, parent) == 0;
    return n > p && name[n - p - 1] == '.' && strcmp(name + n - p, parent) == 0;
}

size_t qmgr_etrn_index_find(struct etrn_index *x, const char *domain, int subdomains, buf_t *ids)
{
    char *key = etrn_lower(domain);
    size_t count = 0;

    x->mark++;
    if (!subdomains) {
        struct etrn_node *n = *etrn_table_slot(&x->domains, key);
        if (n != NULL)
            count = etrn_domain_list(x, (struct etrn_domain *)n, ids);
    } else {
        for (size_t b = 0; b < x->domains.bucket_count; b++)
            for (struct etrn_node *n = x->domains.buckets[b]; n != NULL; n = n->hash_next)
                if (etrn_below(n->key, key))
                    count += etrn_domain_list(x, (struct etrn_domain *)n, ids);
    }
    free(key);
    return count;
}

void qmgr_etrn_index_counts(const struct etrn_index *x, size_t *domains, size_t *messages)
{
    *domains = x->domains.count;
    *messages = x->messages.count;
}
