/*
 * proxymap_proto - the proxymap.lookup / proxymap.reply messages (see
 * proxymap_proto.h).
 */
#include <string.h>

#include "proxymap_proto.h"

#define PROXYMAP_ID_MAX 0x7fffffffffffffffLL

void proxymap_request_encode(buf_t *out, const struct proxymap_request *r)
{
    attr_begin(out, "proxymap.lookup");
    attr_add_int(out, "id", (long long)r->id);
    attr_add_str(out, "table", r->table);
    attr_add_int(out, "flags", r->flags);
    attr_add_str(out, "key", r->key);
    attr_end(out);
}

/* proxymap_get_text - name's value when present, NUL-free, 1..max bytes */
static const char *proxymap_get_text(const struct attr_msg *m, const char *name, size_t max)
{
    size_t len = 0;
    const char *v = attr_get(m, name, &len);

    if (v == NULL || len == 0 || len > max || strlen(v) != len)
        return NULL;
    return v;
}

int proxymap_request_parse(const struct attr_msg *m, struct proxymap_request *r)
{
    long long id, flags;

    if (strcmp(attr_proto(m), "proxymap.lookup") != 0 ||
        attr_get_int(m, "id", 0, PROXYMAP_ID_MAX, &id) < 0 ||
        attr_get_int(m, "flags", 0, PROXYMAP_FLAGS_ALL, &flags) < 0)
        return -1;
    r->id = (unsigned long long)id;
    r->flags = (int)flags;
    r->table = proxymap_get_text(m, "table", PROXYMAP_SPEC_MAX);
    r->key = proxymap_get_text(m, "key", TABLE_KEY_MAX);
    return r->table != NULL && r->key != NULL ? 0 : -1;
}

const char *proxymap_status_name(enum table_result status)
{
    if (status == TABLE_FOUND)
        return "found";
    return status == TABLE_NOTFOUND ? "notfound" : "tempfail";
}

void proxymap_reply_encode(buf_t *out, const struct proxymap_reply *r)
{
    attr_begin(out, "proxymap.reply");
    attr_add_int(out, "id", (long long)r->id);
    attr_add_str(out, "status", proxymap_status_name(r->status));
    if (r->status == TABLE_FOUND)
        attr_add(out, "value", r->value, r->value_len);
    attr_end(out);
}

int proxymap_reply_parse(const struct attr_msg *m, struct proxymap_reply *r)
{
    long long id;
    const char *status = attr_get(m, "status", NULL);

    if (strcmp(attr_proto(m), "proxymap.reply") != 0 ||
        attr_get_int(m, "id", 0, PROXYMAP_ID_MAX, &id) < 0 || status == NULL)
        return -1;
    r->id = (unsigned long long)id;
    r->value = NULL;
    r->value_len = 0;
    r->refused = 0;
    if (strcmp(status, "notfound") == 0)
        r->status = TABLE_NOTFOUND;
    else if (strcmp(status, "tempfail") == 0)
        r->status = TABLE_TEMPFAIL;
    else if (strcmp(status, "found") == 0)
        r->status = TABLE_FOUND;
    else
        return -1;
    if (r->status != TABLE_FOUND)
        return 0;
    r->value = attr_get(m, "value", &r->value_len);
    if (r->value == NULL)
        return -1;
    if (proxymap_value_check(r->value, r->value_len) < 0) {
        r->status = TABLE_TEMPFAIL;
        r->value = NULL;
        r->value_len = 0;
        r->refused = 1;
    }
    return 0;
}

int proxymap_value_check(const char *value, size_t len)
{
    return len <= PROXYMAP_VALUE_MAX && table_text_clean(value, len) ? 0 : -1;
}
