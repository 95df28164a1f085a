/*
 * fuzz_cleanup_headers - libFuzzer target for cleanup/message.c: the header
 * scanner and queue-file writer that every byte of network content goes
 * through.  Input: byte 0 picks the submit request (SMTP client or local
 * user), bytes 1-3 give the sizes of the data chunks (cycled), the rest is
 * the content.  A message cleanup accepts must give a queue file qfile_read
 * accepts, whose content starts with our Received: header, holds the
 * input's header section unchanged and ends with the input's body bytes
 * unchanged.  The files are removed after each run.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attr.h"
#include "buf.h"
#include "cleanup.h"
#include "log.h"
#include "qfile.h"

#define FUZZ_HEADER_LIMIT 8192

/* fuzz_cleanup_enter - make a private queue directory with incoming/ (once)
 * the cwd; returns an fd of the previous cwd (libFuzzer's paths are
 * relative to it) */
static int fuzz_cleanup_enter(void)
{
    static char dir[64];
    int prev = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (prev < 0)
        abort();
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/fuzz_cleanup.XXXXXX");
        if (mkdtemp(dir) == NULL || chdir(dir) < 0 || mkdir("incoming", 0700) < 0)
            abort();
        log_init("fuzz", LOG_TARGET_FILE, "/dev/null");
    }
    if (chdir(dir) < 0)
        abort();
    return prev;
}

/* fuzz_cleanup_leave - back to the previous cwd */
static void fuzz_cleanup_leave(int prev)
{
    if (fchdir(prev) < 0)
        abort();
    close(prev);
}

/* fuzz_cleanup_request - a fixed cleanup.submit, from SMTP or a local user */
static void fuzz_cleanup_request(int local, struct attr_msg *req)
{
    buf_t out = BUF_INIT;
    size_t used = 0;

    attr_begin(&out, "cleanup.submit");
    attr_add_str(&out, "sender", "alice@example.org");
    if (local) {
        attr_add_str(&out, "local_user", "alice");
        attr_add_str(&out, "full_name", "Alice \"A.\" Liddell");
        attr_add_str(&out, "protocol", "local");
    } else {
        attr_add_str(&out, "client_name", "mx.example.org");
        attr_add_str(&out, "client_addr", "192.0.2.1");
        attr_add_str(&out, "helo", "mx.example.org");
        attr_add_str(&out, "protocol", "ESMTP");
    }
    attr_add_str(&out, "rcpt", "bob@example.net");
    attr_add_str(&out, "orig_rcpt", "bob@example.net");
    attr_add_str(&out, "notify", "");
    attr_add_str(&out, "orcpt", "");
    attr_end(&out);
    if (attr_decode(out.data, out.len, &used, req) != 1)
        abort();
    buf_free(&out);
}

/* fuzz_header_end - where the header section of in ends (the rules of
 * cleanup/message.c, written again: "name:" lines with printable names and
 * their white-space continuations, up to an empty or other line) */
static size_t fuzz_header_end(const char *in, size_t n)
{
    size_t pos = 0;

    while (pos < n) {
        const char *line = in + pos, *nl = memchr(line, '\n', n - pos);
        size_t len = nl ? (size_t)(nl - line) + 1 : n - pos, text = len, i;
        if (nl)
            text -= len >= 2 && nl[-1] == '\r' ? 2 : 1;
        if (text == 0)
            break;
        if (pos == 0 || (line[0] != ' ' && line[0] != '\t')) {
            for (i = 0; i < text && line[i] != ':'; i++)
                if ((unsigned char)line[i] <= 32 || (unsigned char)line[i] >= 127)
                    break;
            if (i == 0 || i >= text || line[i] != ':')
                break;
        }
        pos += len;
    }
    return pos;
}

/* fuzz_cleanup_check - the queue file cleanup wrote for in[0..n) */
static void fuzz_cleanup_check(int fd, const char *in, size_t n)
{
    struct qfile_msg q;
    buf_t err = BUF_INIT;
    size_t hdr = fuzz_header_end(in, n);
    char *c;

    qfile_msg_init(&q);
    if (qfile_read(fd, &q, &err) < 0 || q.rcpt_count != 1)
        abort();
    if (q.content_length < n + 10 || (c = malloc(q.content_length)) == NULL ||
        pread(fd, c, q.content_length, q.content_offset) != (ssize_t)q.content_length)
        abort();
    if (memcmp(c, "Received: ", 10) != 0)
        abort();
    if (memcmp(c + q.content_length - (n - hdr), in + hdr, n - hdr) != 0)
        abort(); /* the body is copied byte for byte */
    if (hdr > 0 && memmem(c, q.content_length - (n - hdr), in, hdr) == NULL)
        abort(); /* the client's headers are kept unchanged */
    free(c);
    qfile_msg_free(&q);
    buf_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* no resolver: no rewriting, so the header section must stay as it is
     * (fuzz_header_rewrite covers the rewriting) */
    static const struct cleanup_settings set = {.myhostname = "mail.example.com",
                                                .myorigin = "example.com",
                                                .hopcount_limit = 50,
                                                .header_size_limit = FUZZ_HEADER_LIMIT,
                                                .message_size_limit = 1024 * 1024};
    struct attr_msg req;
    struct cleanup_msg m;
    const char *in = (const char *)data + 4;
    size_t n, off = 0, k = 0;
    int prev;

    if (size < 4)
        return 0;
    n = size - 4;
    prev = fuzz_cleanup_enter();
    attr_msg_init(&req);
    fuzz_cleanup_request(data[0] & 1, &req);
    if (cleanup_msg_begin(&m, &set, &req) < 0)
        abort(); /* the request is valid */
    while (off < n) {
        size_t chunk = (size_t)data[1 + k++ % 3] + 1;
        if (chunk > n - off)
            chunk = n - off;
        cleanup_msg_data(&m, in + off, chunk);
        off += chunk;
    }
    if (cleanup_msg_finish(&m) == 0)
        fuzz_cleanup_check(m.fd, in, n);
    else if (m.status == CLEANUP_OK || m.code.len == 0 || m.fd >= 0)
        abort(); /* a failure is reported and its file is gone */
    cleanup_msg_discard(&m);
    cleanup_msg_free(&m);
    attr_msg_free(&req);
    fuzz_cleanup_leave(prev);
    return 0;
}
