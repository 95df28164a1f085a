/*
 * data - decode DATA content, find <CRLF>.<CRLF> (see data.h).
 */
#include "data.h"

enum data_state {
    DATA_LINE_START, /* at the start of a line */
    DATA_DOT,        /* the line so far is "." */
    DATA_DOT_CR,     /* the line so far is ".\r" */
    DATA_IN_LINE,    /* inside a line */
    DATA_CR          /* inside a line, just after a CR */
};

/* data_decoder_init - the first line counts as preceded by CRLF */
void data_decoder_init(struct data_decoder *d)
{
    d->state = DATA_LINE_START;
    d->prev_crlf = 1;
    d->bare_seen = 0;
}

/* data_line_end - store a line end; real is 1 for CRLF, 0 for bare LF/CR */
static void data_line_end(struct data_decoder *d, int real, buf_t *out)
{
    buf_append(out, "\r\n", 2);
    d->prev_crlf = real;
    if (!real)
        d->bare_seen = 1;
    d->state = DATA_LINE_START;
}

/* data_byte_line - one byte at the start of a line or inside it */
static void data_byte_line(struct data_decoder *d, int c, buf_t *out)
{
    if (c == '\r') {
        d->state = DATA_CR;
    } else if (c == '\n') {
        data_line_end(d, 0, out);
    } else if (c == '.' && d->state == DATA_LINE_START) {
        d->state = DATA_DOT;
    } else {
        buf_putc(out, c);
        d->state = DATA_IN_LINE;
    }
}

/* data_byte - advance by one byte; returns 1 at the end of data */
static int data_byte(struct data_decoder *d, int c, buf_t *out)
{
    switch (d->state) {
    case DATA_DOT:
        if (c == '\r') {
            d->state = DATA_DOT_CR;
        } else if (c == '\n') {
            buf_putc(out, '.');
            data_line_end(d, 0, out);
        } else {
            /* a stuffed dot: drop it, keep the byte after it */
            buf_putc(out, c);
            d->state = DATA_IN_LINE;
        }
        return 0;
    case DATA_DOT_CR:
        if (c == '\n' && d->prev_crlf)
            return 1;
        buf_putc(out, '.');
        data_line_end(d, c == '\n', out);
        if (c != '\n')
            data_byte_line(d, c, out);
        return 0;
    case DATA_CR:
        data_line_end(d, c == '\n', out);
        if (c != '\n')
            data_byte_line(d, c, out);
        return 0;
    default:
        data_byte_line(d, c, out);
        return 0;
    }
}

/* data_decode - feed bytes until the end of data or the end of input */
size_t data_decode(struct data_decoder *d, const char *in, size_t len, buf_t *out, int *done)
{
    *done = 0;
    for (size_t i = 0; i < len; i++) {
        if (data_byte(d, (unsigned char)in[i], out)) {
            *done = 1;
            return i + 1;
        }
    }
    return len;
}
