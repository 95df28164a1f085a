/*
 * fuzz_qfile - libFuzzer target for lib/qfile: a queue file on disk is not
 * trusted (DESIGN §4).  The input is written to a memfd and read back with
 * qfile_read and qfile_read_envelope; an accepted file must describe
 * content inside the file, and the envelope reader accepts whatever the
 * whole-file reader does.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "buf.h"
#include "qfile.h"
#include "safefile.h"

/* fuzz_qfile_check - an accepted message must be consistent with the file */
static void fuzz_qfile_check(const struct qfile_msg *m, size_t size)
{
    if (m->sender == NULL || m->content_offset < 0 ||
        (size_t)m->content_offset + m->content_length > size)
        abort();
    for (size_t i = 0; i < m->rcpt_count; i++) {
        const struct qfile_rcpt *r = &m->rcpts[i];
        if (!r->address[0] || r->status_offset < 0 || (size_t)r->status_offset >= size)
            abort();
        (void)strlen(r->original);
        (void)strlen(r->notify);
        (void)strlen(r->orcpt);
    }
    (void)qfile_msg_attr(m, "queue_id");
}

/* fuzz_qfile_envelope - qfile_read_envelope accepts what qfile_read
 * accepted (rcpts: its recipient count; SIZE_MAX: it was rejected), with no
 * more recipients (qfile_read takes R records after M too; the envelope
 * reader stops at M), and what it accepts is consistent too */
static void fuzz_qfile_envelope(int fd, size_t rcpts, size_t size)
{
    struct qfile_msg m;
    buf_t err = BUF_INIT;

    qfile_msg_init(&m);
    if (qfile_read_envelope(fd, &m, &err) == 0) {
        fuzz_qfile_check(&m, size);
        if (rcpts != SIZE_MAX && m.rcpt_count > rcpts)
            abort();
    } else if (rcpts != SIZE_MAX || err.len == 0) {
        abort();
    }
    qfile_msg_free(&m);
    buf_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    struct qfile_msg m;
    buf_t err = BUF_INIT;

    if (fd < 0 && (fd = memfd_create("fuzz-qfile", 0)) < 0)
        abort();
    if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0 || write_all(fd, data, size) < 0)
        abort();
    qfile_msg_init(&m);
    if (qfile_read(fd, &m, &err) == 0)
        fuzz_qfile_check(&m, size);
    else if (err.len == 0)
        abort(); /* a rejection must say why */
    fuzz_qfile_envelope(fd, m.sender != NULL ? m.rcpt_count : SIZE_MAX, size);
    qfile_msg_free(&m);
    buf_free(&err);
    return 0;
}
