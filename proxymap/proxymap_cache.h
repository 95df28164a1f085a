/*
 * proxymap_cache - tern-proxymap's answers cache: (table, flags, key) ->
 * (status, value) for proxymap_cache_ttl seconds, at most a fixed number of
 * entries (the oldest is evicted first).  Found and not-found answers are
 * cached; temporary failures never are.  Main thread only.
 */
#ifndef TERN_PROXYMAP_CACHE_H
#define TERN_PROXYMAP_CACHE_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "table.h"

struct proxymap_cache;

/* proxymap_cache_new - ttl seconds (0: caches nothing), max entries */
struct proxymap_cache *proxymap_cache_new(long long ttl, size_t max);
void proxymap_cache_free(struct proxymap_cache *c);
/* proxymap_cache_key - the one string that names (table, flags, key) */
void proxymap_cache_key(buf_t *out, const char *table, int flags, const char *key);
/* proxymap_cache_get - 1 with *status and value (when found) for a live
 * entry, else 0 (an expired entry is dropped) */
int proxymap_cache_get(struct proxymap_cache *c, const char *ckey, time_t now,
                       enum table_result *status, buf_t *value);
/* proxymap_cache_put - remember an answer (tempfail is ignored) */
void proxymap_cache_put(struct proxymap_cache *c, const char *ckey, enum table_result status,
                        const char *value, size_t len, time_t now);
/* proxymap_cache_count - entries held */
size_t proxymap_cache_count(const struct proxymap_cache *c);

/* proxymap_map - a string -> pointer hash table (the cache, the lookups in
 * flight, the open tables) */
struct proxymap_map;
struct proxymap_map *proxymap_map_new(void);
void proxymap_map_free(struct proxymap_map *m);
void *proxymap_map_get(const struct proxymap_map *m, const char *key);
/* proxymap_map_put - key must not be present; the key is copied */
void proxymap_map_put(struct proxymap_map *m, const char *key, void *value);
/* proxymap_map_del - the value removed, or NULL */
void *proxymap_map_del(struct proxymap_map *m, const char *key);

#endif
