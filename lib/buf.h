/*
 * buf - dynamic byte strings.
 *
 * Everything that comes from outside (network, files, IPC) is held in a buf_t,
 * never in a fixed array.  The data is always NUL-terminated (the NUL is not
 * counted in len) so it can be handed to C string functions when it holds
 * text.  Allocation failure aborts (log_panic): callers never see NULL.
 */
#ifndef TERN_BUF_H
#define TERN_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
    char *data;
    size_t len;
    size_t cap;
} buf_t;

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* buf_init - make an empty buffer (no allocation yet) */
void buf_init(buf_t *b);
/* buf_free - release the memory and make the buffer empty again */
void buf_free(buf_t *b);
/* buf_reset - empty the buffer, keep its memory */
void buf_reset(buf_t *b);
/* buf_wipe - overwrite the whole allocation (capacity, not just len) with
 * zeros and empty the buffer, keeping its memory: for secrets */
void buf_wipe(buf_t *b);
/* buf_reserve - make room for at least n more bytes */
void buf_reserve(buf_t *b, size_t n);
/* buf_append - append n bytes */
void buf_append(buf_t *b, const void *p, size_t n);
/* buf_puts - append a C string */
void buf_puts(buf_t *b, const char *s);
/* buf_putc - append one byte */
void buf_putc(buf_t *b, int c);
/* buf_printf - append formatted text */
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(buf_t *b, const char *fmt, va_list ap);
/* buf_set - replace the contents with a C string */
void buf_set(buf_t *b, const char *s);
/* buf_consume - drop the first n bytes (n > len drops all) */
void buf_consume(buf_t *b, size_t n);
/* buf_truncate - shorten to n bytes (no-op when already shorter) */
void buf_truncate(buf_t *b, size_t n);
/* buf_cstr - the contents as a C string; "" for an unallocated buffer */
const char *buf_cstr(const buf_t *b);
/* buf_steal - hand the malloc'ed string to the caller, leave b empty */
char *buf_steal(buf_t *b);

/* xmalloc family - abort on failure */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
