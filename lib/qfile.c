/*
 * qfile - queue file writer and reader (see qfile.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qfile.h"
#include "safefile.h"

#define QFILE_REC_HEADER 5

static void qfile_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

void qfile_writer_init(struct qfile_writer *w, int fd)
{
    w->fd = fd;
    buf_init(&w->out);
    w->offset = 0;
    w->content_len_at = -1;
    w->content_length = 0;
    w->failed_errno = 0;
}

void qfile_writer_free(struct qfile_writer *w)
{
    buf_free(&w->out);
}

/* qfile_header - append the 5-byte record header */
static void qfile_header(struct qfile_writer *w, int type, size_t len)
{
    unsigned char h[QFILE_REC_HEADER];
    h[0] = (unsigned char)type;
    qfile_u32(h + 1, (uint32_t)len);
    buf_append(&w->out, h, sizeof(h));
}

void qfile_put(struct qfile_writer *w, int type, const void *data, size_t len)
{
    qfile_header(w, type, len);
    buf_append(&w->out, data, len);
}

void qfile_put_str(struct qfile_writer *w, int type, const char *s)
{
    qfile_put(w, type, s, strlen(s));
}

void qfile_put_attr(struct qfile_writer *w, const char *name, const char *value)
{
    buf_t b = BUF_INIT;
    buf_printf(&b, "%s=%s", name, value);
    qfile_put(w, QFILE_REC_ATTR, b.data, b.len);
    buf_free(&b);
}

void qfile_put_rcpt(struct qfile_writer *w, const char *address, const char *original,
                    const char *notify, const char *orcpt)
{
    qfile_put_rcpt_failed(w, address, original, notify, orcpt, NULL);
}

void qfile_put_rcpt_failed(struct qfile_writer *w, const char *address, const char *original,
                           const char *notify, const char *orcpt, const char *reason)
{
    buf_t b = BUF_INIT;
    buf_putc(&b, reason ? QFILE_RCPT_FAILED : QFILE_RCPT_PENDING);
    buf_puts(&b, address);
    buf_putc(&b, 0);
    buf_puts(&b, original ? original : address);
    buf_putc(&b, 0);
    buf_puts(&b, notify ? notify : "");
    buf_putc(&b, 0);
    buf_puts(&b, orcpt ? orcpt : "");
    if (reason) {
        buf_putc(&b, 0);
        buf_puts(&b, reason);
    }
    qfile_put(w, QFILE_REC_RCPT, b.data, b.len);
    buf_free(&b);
}

int qfile_writer_flush(struct qfile_writer *w, size_t threshold)
{
    if (w->failed_errno)
        return -1;
    if (w->out.len == 0 || w->out.len < threshold)
        return 0;
    if (write_all(w->fd, w->out.data, w->out.len) < 0) {
        w->failed_errno = errno ? errno : EIO;
        return -1;
    }
    w->offset += (off_t)w->out.len;
    buf_reset(&w->out);
    return 0;
}

void qfile_content_begin(struct qfile_writer *w)
{
    w->content_len_at = w->offset + (off_t)w->out.len + 1;
    w->content_length = 0;
    qfile_header(w, QFILE_REC_CONTENT, 0);
}

void qfile_content_append(struct qfile_writer *w, const void *data, size_t len)
{
    if (w->failed_errno)
        return;
    buf_append(&w->out, data, len);
    w->content_length += len;
    qfile_writer_flush(w, 64 * 1024);
}

int qfile_content_end(struct qfile_writer *w)
{
    unsigned char len[4];

    if (w->content_len_at < 0)
        return -1;
    if (w->content_length > QFILE_MAX_RECORD) {
        w->failed_errno = EFBIG;
        return -1;
    }
    qfile_u32(len, (uint32_t)w->content_length);
    if (w->content_len_at >= w->offset) { /* still in the buffer */
        memcpy(w->out.data + (w->content_len_at - w->offset), len, 4);
        return 0;
    }
    if (qfile_writer_flush(w, 0) < 0)
        return -1;
    if (pwrite(w->fd, len, 4, w->content_len_at) != 4) {
        w->failed_errno = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

int qfile_finish(struct qfile_writer *w)
{
    qfile_put(w, QFILE_REC_END, "", 0);
    return qfile_writer_flush(w, 0);
}

void qfile_msg_init(struct qfile_msg *m)
{
    memset(m, 0, sizeof(*m));
}

void qfile_msg_free(struct qfile_msg *m)
{
    for (size_t i = 0; i < m->attr_count; i++) {
        free(m->attrs[i].name);
        free(m->attrs[i].value);
    }
    for (size_t i = 0; i < m->rcpt_count; i++) {
        free(m->rcpts[i].address);
        free(m->rcpts[i].original);
        free(m->rcpts[i].notify);
        free(m->rcpts[i].orcpt);
        free(m->rcpts[i].reason);
    }
    free(m->attrs);
    free(m->rcpts);
    free(m->sender);
    qfile_msg_init(m);
}

/* a small reader over pread: the envelope records of a queue file come in
 * one or two system calls instead of two per record, and the content is
 * skipped without being read */
#define QFILE_READ_CHUNK 16384

struct qfile_reader {
    int fd;
    buf_t b;    /* bytes at file offsets [base, base + b.len) */
    off_t base; /* file offset of b.data[0] */
    size_t pos; /* next unread byte in b */
};

/* qfile_reader_need - make n bytes available at pos; 0 ok, -1 short */
static int qfile_reader_need(struct qfile_reader *r, size_t n)
{
    if (r->pos > 0 && r->pos + n > r->b.len) { /* keep only what is unread */
        r->base += (off_t)r->pos;
        buf_consume(&r->b, r->pos);
        r->pos = 0;
    }
    while (r->b.len < r->pos + n) {
        size_t want = n - (r->b.len - r->pos);
        if (want < QFILE_READ_CHUNK)
            want = QFILE_READ_CHUNK;
        buf_reserve(&r->b, want);
        ssize_t got = pread(r->fd, r->b.data + r->b.len, want, r->base + (off_t)r->b.len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        r->b.len += (size_t)got;
        r->b.data[r->b.len] = 0;
    }
    return 0;
}

/* qfile_reader_skip - pass over n bytes (the content) without reading them */
static void qfile_reader_skip(struct qfile_reader *r, size_t n)
{
    if (r->pos + n <= r->b.len) {
        r->pos += n;
        return;
    }
    r->base += (off_t)(r->pos + n);
    buf_reset(&r->b);
    r->pos = 0;
}

int qfile_rcpt_status_valid(int status)
{
    return status != 0 && strchr(".WSNFB", status) != NULL;
}

int qfile_rcpt_is_pending(int status)
{
    return status == QFILE_RCPT_PENDING || status == QFILE_RCPT_WARNED;
}

/* qfile_parse_rcpt - status byte then four NUL-separated fields, and a
 * fifth (the reason of a failure known when the file was written) */
static int qfile_parse_rcpt(struct qfile_msg *m, const char *d, size_t len, off_t at)
{
    const char *f[5];
    const char *p = d + 1, *end = d + len;
    struct qfile_rcpt *r;
    int nf;

    if (len < 2 || !qfile_rcpt_status_valid(d[0]))
        return -1;
    for (nf = 0; nf < 5 && p <= end; nf++) {
        f[nf] = p;
        const char *nul = memchr(p, 0, (size_t)(end - p));
        p = nul ? nul + 1 : end + 1;
    }
    if (nf < 4 || p <= end || !*f[0] || m->rcpt_count >= QFILE_MAX_RCPTS)
        return -1;
    m->rcpts = xrealloc(m->rcpts, (m->rcpt_count + 1) * sizeof(*m->rcpts));
    r = &m->rcpts[m->rcpt_count++];
    r->address = xstrdup(f[0]);
    r->original = xstrdup(f[1]);
    r->notify = xstrdup(f[2]);
    r->orcpt = nf == 4 ? xstrndup(f[3], (size_t)(end - f[3])) : xstrdup(f[3]);
    r->reason = nf == 5 ? xstrndup(f[4], (size_t)(end - f[4])) : NULL;
    r->status = d[0];
    r->status_offset = at;
    return 0;
}

/* qfile_parse_time - "sec" or "sec.usec" (at most 6 digits), digits only */
static int qfile_parse_time(const char *d, long long *sec, long *usec)
{
    char *end;
    if (!isdigit((unsigned char)d[0]))
        return -1;
    errno = 0;
    *sec = strtoll(d, &end, 10);
    *usec = 0;
    if (errno)
        return -1;
    if (*end == 0)
        return 0;
    if (*end != '.' || !isdigit((unsigned char)end[1]))
        return -1;
    const char *u = end + 1;
    long v = strtol(u, &end, 10);
    if (*end || end - u > 6)
        return -1;
    *usec = v;
    return 0;
}

/* qfile_parse_small - one non-content record */
static int qfile_parse_small(struct qfile_msg *m, int type, const char *d, size_t len, off_t at,
                             buf_t *err)
{
    char *eq;

    if (type != QFILE_REC_RCPT && memchr(d, 0, len)) {
        buf_printf(err, "NUL byte in record '%c'", type);
        return -1;
    }
    switch (type) {
    case QFILE_REC_TIME:
        if (qfile_parse_time(d, &m->arrival_sec, &m->arrival_usec) < 0) {
            buf_puts(err, "bad arrival time record");
            return -1;
        }
        return 0;
    case QFILE_REC_SENDER:
        if (m->sender) {
            buf_puts(err, "two sender records");
            return -1;
        }
        m->sender = xstrdup(d);
        return 0;
    case QFILE_REC_ATTR:
        eq = strchr(d, '=');
        if (eq == NULL || eq == d) {
            buf_puts(err, "bad attribute record");
            return -1;
        }
        m->attrs = xrealloc(m->attrs, (m->attr_count + 1) * sizeof(*m->attrs));
        m->attrs[m->attr_count].name = xstrndup(d, (size_t)(eq - d));
        m->attrs[m->attr_count].value = xstrdup(eq + 1);
        m->attr_count++;
        return 0;
    case QFILE_REC_RCPT:
        if (qfile_parse_rcpt(m, d, len, at) < 0) {
            buf_puts(err, "bad recipient record");
            return -1;
        }
        return 0;
    default:
        buf_printf(err, "unknown record type 0x%02x", (unsigned)type & 0xff);
        return -1;
    }
}

/* qfile_read_records - qfile_read; with envelope_only, stop at the content
 * record (nothing after it is read or checked) */
static int qfile_read_records(int fd, struct qfile_msg *m, buf_t *err, int envelope_only)
{
    const unsigned char *h;
    off_t pos = 0;
    struct stat st;
    int seen_version = 0, seen_time = 0, seen_content = 0;
    struct qfile_reader r = {fd, BUF_INIT, 0, 0};
    buf_t d = BUF_INIT;
    int rc = -1;

    qfile_msg_free(m);
    if (fstat(fd, &st) < 0) {
        buf_printf(err, "cannot read: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        if (qfile_reader_need(&r, QFILE_REC_HEADER) < 0) {
            buf_puts(err, "truncated file: no end record");
            break;
        }
        h = (const unsigned char *)r.b.data + r.pos;
        size_t len = ((size_t)h[1] << 24) | ((size_t)h[2] << 16) | ((size_t)h[3] << 8) | h[4];
        int type = h[0];
        off_t data_at = pos + QFILE_REC_HEADER;
        r.pos += QFILE_REC_HEADER;
        if (len > QFILE_MAX_RECORD || data_at + (off_t)len > st.st_size) {
            buf_puts(err, "record runs past the end of the file");
            break;
        }
        if (!seen_version && type != QFILE_REC_VERSION) {
            buf_puts(err, "no version record");
            break;
        }
        if (type == QFILE_REC_END) {
            if (len != 0 || data_at != st.st_size) {
                buf_puts(err, "bytes after the end record");
                break;
            }
            if (!seen_time || m->sender == NULL || !seen_content) {
                buf_puts(err, "missing time, sender or content record");
                break;
            }
            rc = 0;
            break;
        }
        if (type == QFILE_REC_CONTENT) {
            if (seen_content) {
                buf_puts(err, "two content records");
                break;
            }
            seen_content = 1;
            m->content_offset = data_at;
            m->content_length = len;
            if (envelope_only) {
                rc = seen_time && m->sender != NULL ? 0 : -1;
                if (rc < 0)
                    buf_puts(err, "missing time or sender record");
                break;
            }
            qfile_reader_skip(&r, len);
        } else {
            if (qfile_reader_need(&r, len) < 0) {
                buf_puts(err, "truncated record");
                break;
            }
            buf_reset(&d);
            buf_append(&d, r.b.data + r.pos, len);
            r.pos += len;
            if (type == QFILE_REC_VERSION) {
                if (seen_version || strcmp(d.data, "1") != 0) {
                    buf_puts(err, "unsupported version record");
                    break;
                }
                seen_version = 1;
            } else if (type == QFILE_REC_TIME && seen_time++) {
                buf_puts(err, "two time records");
                break;
            } else if (qfile_parse_small(m, type, d.data, len, data_at, err) < 0) {
                break;
            }
        }
        pos = data_at + (off_t)len;
    }
    buf_free(&d);
    buf_free(&r.b);
    if (rc < 0)
        qfile_msg_free(m);
    return rc;
}

int qfile_read(int fd, struct qfile_msg *m, buf_t *err)
{
    return qfile_read_records(fd, m, err, 0);
}

int qfile_read_envelope(int fd, struct qfile_msg *m, buf_t *err)
{
    return qfile_read_records(fd, m, err, 1);
}

const char *qfile_msg_attr(const struct qfile_msg *m, const char *name)
{
    for (size_t i = 0; i < m->attr_count; i++)
        if (strcmp(m->attrs[i].name, name) == 0)
            return m->attrs[i].value;
    return NULL;
}

int qfile_set_rcpt_status(int fd, const struct qfile_rcpt *r, char status)
{
    return pwrite(fd, &status, 1, r->status_offset) == 1 ? 0 : -1;
}
