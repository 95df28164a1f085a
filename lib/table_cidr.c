/*
 * table_cidr - cidr:/path tables: "network/prefix  value" lines (an address
 * without /prefix is a host), searched in file order, first match wins.
 * The lookup key is an IP address in text form (brackets allowed).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"
#include "table_impl.h"

struct cidr_entry {
    struct netaddr_net net;
    char *value;
};

struct table_cidr {
    struct cidr_entry *v;
    size_t count, cap;
};

/* cidr_sockaddr - the key as a socket address; -1 when not an address */
static int cidr_sockaddr(const char *key, struct sockaddr_storage *ss)
{
    char text[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(key);
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

    if (n >= 2 && key[0] == '[' && key[n - 1] == ']') {
        key++;
        n -= 2;
    }
    if (n >= sizeof(text))
        return -1;
    memcpy(text, key, n);
    text[n] = 0;
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        return 0;
    }
    return -1;
}

static enum table_result cidr_lookup(struct table *t, const char *key, buf_t *value)
{
    struct table_cidr *c = t->impl;
    struct sockaddr_storage ss;

    if (cidr_sockaddr(key, &ss) < 0)
        return TABLE_NOTFOUND;
    for (size_t i = 0; i < c->count; i++) {
        if (netaddr_match((struct sockaddr *)&ss, &c->v[i].net, 1)) {
            buf_set(value, c->v[i].value);
            return TABLE_FOUND;
        }
    }
    return TABLE_NOTFOUND;
}

static void cidr_free(struct table_cidr *c)
{
    for (size_t i = 0; i < c->count; i++)
        free(c->v[i].value);
    free(c->v);
    free(c);
}

static void cidr_close(struct table *t)
{
    cidr_free(t->impl);
}

static const struct table_ops cidr_ops = {"cidr", 1, cidr_lookup, NULL, cidr_close, NULL};

/* cidr_add - one "network value" line */
static int cidr_add(struct table_cidr *c, const char *line, const char *where, buf_t *err)
{
    buf_t key = BUF_INIT, value = BUF_INIT;
    struct netaddr_net net;
    int rc = -1;

    if (table_text_split(line, TABLE_CASE_SENSITIVE, &key, &value, where, err) < 0)
        goto done;
    if (netaddr_parse_net(key.data, &net) < 0) {
        buf_printf(err, "%s: bad network \"%s\"", where, key.data);
        goto done;
    }
    if (c->count == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
    }
    c->v[c->count].net = net;
    c->v[c->count++].value = buf_steal(&value);
    rc = 0;
done:
    buf_free(&key);
    buf_free(&value);
    return rc;
}

int table_open_cidr(struct table *t, const char *name, buf_t *err)
{
    struct table_cidr *c = xcalloc(1, sizeof(*c));
    struct table_text r;
    buf_t line = BUF_INIT, where = BUF_INIT;
    size_t lineno = 0;
    int rc;

    if (table_text_open(&r, name, err) < 0) {
        free(c);
        return -1;
    }
    while ((rc = table_text_next(&r, &line, &lineno, err)) > 0) {
        table_where(&where, name, lineno);
        if ((rc = cidr_add(c, line.data, where.data, err)) < 0)
            break;
    }
    table_text_close(&r);
    buf_free(&line);
    buf_free(&where);
    if (rc < 0) {
        cidr_free(c);
        return -1;
    }
    t->ops = &cidr_ops;
    t->impl = c;
    return 0;
}
