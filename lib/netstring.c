/*
 * netstring - netstring encoding and an incremental, bounded decoder
 * (lib/netstring.h).
 */
#include "netstring.h"

/* netstring_encode - "LEN:DATA," */
void netstring_encode(buf_t *out, const void *data, size_t len)
{
    buf_printf(out, "%zu:", len);
    buf_append(out, data, len);
    buf_putc(out, ',');
}

/* netstring_length - parse the decimal length before ':'; returns the
 * status, with *digits the bytes up to and including ':' when DONE */
static enum netstring_status netstring_length(const char *data, size_t len, size_t max,
                                              size_t *value, size_t *digits, const char **reason)
{
    size_t n = 0;
    size_t i;

    for (i = 0; i < len && data[i] != ':'; i++) {
        unsigned d = (unsigned char)data[i] - '0';

        if (d > 9) {
            *reason = "netstring length is not a decimal number";
            return NETSTRING_ERROR;
        }
        if (d > max || n > (max - d) / 10) {
            *reason = "netstring longer than the limit";
            return NETSTRING_ERROR;
        }
        n = n * 10 + d;
    }
    if (i == len)
        return NETSTRING_MORE;
    if (i == 0) {
        *reason = "netstring without a length";
        return NETSTRING_ERROR;
    }
    *value = n;
    *digits = i + 1;
    return NETSTRING_DONE;
}

/* netstring_decode - see netstring.h */
enum netstring_status netstring_decode(const char *data, size_t len, size_t max,
                                       struct netstring *ns, const char **reason)
{
    size_t payload_len = 0;
    size_t head = 0;
    enum netstring_status st;

    *reason = NULL;
    st = netstring_length(data, len, max, &payload_len, &head, reason);
    if (st != NETSTRING_DONE)
        return st;
    /* by subtraction: head + payload_len could overflow when max is huge */
    if (len - head <= payload_len)
        return NETSTRING_MORE;
    if (data[head + payload_len] != ',') {
        *reason = "netstring does not end with ','";
        return NETSTRING_ERROR;
    }
    ns->payload = data + head;
    ns->len = payload_len;
    ns->used = head + payload_len + 1;
    return NETSTRING_DONE;
}
