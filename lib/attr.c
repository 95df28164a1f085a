/*
 * attr - length-prefixed attribute lists for IPC (see attr.h).
 */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "log.h"

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* the start of the message being built is remembered in the 4 length bytes
 * themselves until attr_end: we keep it in a small static stack instead */
#define ATTR_NEST_MAX 8
static __thread size_t attr_starts[ATTR_NEST_MAX];
static __thread int attr_depth;

void attr_begin(buf_t *out, const char *proto)
{
    unsigned char len[4] = {0, 0, 0, 0};
    if (attr_depth >= ATTR_NEST_MAX)
        log_panic("attr_begin: nested too deep");
    attr_starts[attr_depth++] = out->len;
    buf_append(out, len, 4);
    attr_add_str(out, "proto", proto);
}

void attr_add(buf_t *out, const char *name, const void *value, size_t len)
{
    size_t nlen = strlen(name);
    unsigned char hdr[4];

    if (nlen == 0 || nlen > ATTR_MAX_NAME || len > ATTR_MAX_MESSAGE)
        log_panic("attr_add: bad attribute %s (%zu bytes)", name, len);
    hdr[0] = (unsigned char)(nlen >> 8);
    hdr[1] = (unsigned char)nlen;
    buf_append(out, hdr, 2);
    buf_append(out, name, nlen);
    put_u32(hdr, (uint32_t)len);
    buf_append(out, hdr, 4);
    buf_append(out, value, len);
}

void attr_add_str(buf_t *out, const char *name, const char *value)
{
    attr_add(out, name, value ? value : "", value ? strlen(value) : 0);
}

void attr_add_int(buf_t *out, const char *name, long long value)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%lld", value);
    attr_add(out, name, tmp, (size_t)n);
}

void attr_end(buf_t *out)
{
    if (attr_depth <= 0)
        log_panic("attr_end without attr_begin");
    size_t start = attr_starts[--attr_depth];
    size_t payload = out->len - start - 4;
    if (payload > ATTR_MAX_MESSAGE)
        log_panic("attr_end: message of %zu bytes is over the limit", payload);
    put_u32((unsigned char *)out->data + start, (uint32_t)payload);
}

void attr_msg_init(struct attr_msg *m)
{
    memset(m, 0, sizeof(*m));
    buf_init(&m->store);
}

void attr_msg_free(struct attr_msg *m)
{
    free(m->v);
    buf_free(&m->store);
    attr_msg_init(m);
}

void attr_msg_wipe(struct attr_msg *m)
{
    buf_wipe(&m->store);
    m->count = 0;
}

/* attr_msg_push - record one attribute as offsets into store */
static void attr_msg_push(struct attr_msg *m, size_t name_off, size_t val_off, size_t len)
{
    if (m->count == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->v = xrealloc(m->v, m->cap * sizeof(*m->v));
    }
    /* store offsets now, turn them into pointers once store stops moving */
    m->v[m->count].name = (const char *)(uintptr_t)name_off;
    m->v[m->count].value = (const char *)(uintptr_t)val_off;
    m->v[m->count].len = len;
    m->count++;
}

static int attr_decode_payload(const char *data, size_t len, size_t *used, struct attr_msg *m);

int attr_decode(const char *data, size_t len, size_t *used, struct attr_msg *m)
{
    int r = attr_decode_payload(data, len, used, m);
    if (r < 0)
        m->count = 0; /* never leave offsets where pointers are expected */
    return r;
}

/* attr_decode_payload - the parser behind attr_decode */
static int attr_decode_payload(const char *data, size_t len, size_t *used, struct attr_msg *m)
{
    const unsigned char *p = (const unsigned char *)data;
    uint32_t total;
    size_t pos = 4;

    if (len < 4)
        return 0;
    total = get_u32(p);
    if (total > ATTR_MAX_MESSAGE)
        return -1;
    if (len - 4 < total)
        return 0;
    m->count = 0;
    buf_reset(&m->store);
    buf_reserve(&m->store, total + total / 2 + 16);
    while (pos < 4 + (size_t)total) {
        size_t end = 4 + (size_t)total;
        if (end - pos < 2)
            return -1;
        size_t nlen = ((size_t)p[pos] << 8) | p[pos + 1];
        pos += 2;
        if (nlen == 0 || nlen > ATTR_MAX_NAME || end - pos < nlen + 4)
            return -1;
        const char *name = data + pos;
        if (memchr(name, 0, nlen))
            return -1;
        pos += nlen;
        size_t vlen = get_u32(p + pos);
        pos += 4;
        if (end - pos < vlen || m->count >= ATTR_MAX_COUNT)
            return -1;
        size_t name_off = m->store.len;
        buf_append(&m->store, name, nlen);
        buf_putc(&m->store, 0);
        size_t val_off = m->store.len;
        buf_append(&m->store, data + pos, vlen);
        buf_putc(&m->store, 0);
        attr_msg_push(m, name_off, val_off, vlen);
        pos += vlen;
    }
    for (size_t i = 0; i < m->count; i++) {
        m->v[i].name = m->store.data + (uintptr_t)m->v[i].name;
        m->v[i].value = m->store.data + (uintptr_t)m->v[i].value;
    }
    if (m->count == 0 || strcmp(m->v[0].name, "proto") != 0)
        return -1;
    *used = 4 + (size_t)total;
    return 1;
}

const char *attr_proto(const struct attr_msg *m)
{
    return m->count ? m->v[0].value : "";
}

const char *attr_get(const struct attr_msg *m, const char *name, size_t *len)
{
    for (size_t i = 0; i < m->count; i++) {
        if (strcmp(m->v[i].name, name) == 0) {
            if (len)
                *len = m->v[i].len;
            return m->v[i].value;
        }
    }
    return NULL;
}

int attr_get_int(const struct attr_msg *m, const char *name, long long min, long long max,
                 long long *out)
{
    size_t len;
    const char *v = attr_get(m, name, &len);
    char *end;
    long long n;

    if (v == NULL || len == 0 || len > 20 || strlen(v) != len ||
        !(isdigit((unsigned char)v[0]) || (v[0] == '-' && isdigit((unsigned char)v[1]))))
        return -1;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (*end || errno || n < min || n > max)
        return -1;
    *out = n;
    return 0;
}

int attr_write_fd(int fd, const buf_t *msg)
{
    size_t off = 0;
    while (off < msg->len) {
        ssize_t n = write(fd, msg->data + off, msg->len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        off += (size_t)n;
    }
    return 0;
}

/* attr_read_reserve - room for n more bytes; a move wipes the old copy */
static void attr_read_reserve(buf_t *in, size_t n)
{
    buf_t bigger = BUF_INIT;

    if (in->len + n + 1 <= in->cap)
        return;
    buf_reserve(&bigger, in->len + n);
    buf_append(&bigger, in->data, in->len);
    buf_wipe(in);
    buf_free(in);
    *in = bigger;
}

int attr_read_fd(int fd, struct attr_msg *m, int timeout)
{
    buf_t in = BUF_INIT;
    time_t deadline = timeout > 0 ? time(NULL) + timeout : 0;
    int rc = -1;

    for (;;) {
        size_t used;
        int r = attr_decode(in.data ? in.data : "", in.len, &used, m);
        if (r != 0) {
            rc = r > 0 ? 0 : -1;
            break;
        }
        if (deadline) {
            struct pollfd pfd = {fd, POLLIN, 0};
            int left = (int)(deadline - time(NULL));
            if (left <= 0 || poll(&pfd, 1, left * 1000) <= 0)
                break;
        }
        attr_read_reserve(&in, 65536);
        ssize_t n = read(fd, in.data + in.len, 65536);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        in.len += (size_t)n;
    }
    buf_wipe(&in);
    buf_free(&in);
    return rc;
}
