/*
 * smtp_utf8 - the SMTPUTF8 forms of the envelope for one next hop (see
 * smtp_utf8.h).
 */
#include <netinet/in.h>
#include <string.h>

#include "netaddr.h"
#include "smtp_utf8.h"
#include "smtputf8.h"

/* smtp_utf8_is_ascii - a NUL-terminated address without UTF-8 */
static int smtp_utf8_is_ascii(const char *addr)
{
    return smtputf8_is_ascii(addr, strlen(addr));
}

/* smtp_utf8_use - see smtp_utf8.h */
int smtp_utf8_use(const struct delivery_request *req, int offered)
{
    if (!offered)
        return 0;
    if (req->smtputf8 || !smtp_utf8_is_ascii(req->sender))
        return 1;
    for (size_t i = 0; i < req->rcpt_count; i++) {
        if (!smtp_utf8_is_ascii(req->rcpts[i].address))
            return 1;
    }
    return 0;
}

/* smtp_utf8_address - see smtp_utf8.h */
int smtp_utf8_address(const char *addr, int use, buf_t *out)
{
    if (use || smtp_utf8_is_ascii(addr)) {
        buf_puts(out, addr);
        return 0;
    }
    return smtputf8_address_to_ascii(addr, out);
}

/* smtp_utf8_convertible - addr has a form for this transaction */
static int smtp_utf8_convertible(const char *addr, int use)
{
    buf_t form = BUF_INIT;
    int rc = smtp_utf8_address(addr, use, &form);

    buf_free(&form);
    return rc == 0;
}

/* smtp_utf8_rcpt_ok - r can go in this transaction (sender_ok: the
 * sender can) */
static int smtp_utf8_rcpt_ok(const struct delivery_rcpt *r, int sender_ok, int use)
{
    return sender_ok && smtp_utf8_convertible(r->address, use);
}

/* smtp_utf8_unsendable - see smtp_utf8.h */
size_t smtp_utf8_unsendable(const struct delivery_request *req, int use)
{
    int sender_ok = smtp_utf8_convertible(req->sender, use);
    size_t n = 0;

    for (size_t i = 0; i < req->rcpt_count; i++) {
        const struct delivery_rcpt *r = &req->rcpts[i];

        if (r->result.status == DELIVERY_PENDING && !smtp_utf8_rcpt_ok(r, sender_ok, use))
            n++;
    }
    return n;
}

/* smtp_utf8_reason - see smtp_utf8.h */
void smtp_utf8_reason(const char *peer, buf_t *out)
{
    buf_printf(out, "SMTPUTF8 is required, but was not offered by host %s", peer);
}

/* smtp_utf8_refuse - see smtp_utf8.h */
size_t smtp_utf8_refuse(struct delivery_request *req, int use, const char *peer)
{
    int sender_ok = smtp_utf8_convertible(req->sender, use);
    buf_t reason = BUF_INIT;
    size_t pending = 0;

    smtp_utf8_reason(peer, &reason);
    for (size_t i = 0; i < req->rcpt_count; i++) {
        struct delivery_rcpt *r = &req->rcpts[i];

        if (!smtp_utf8_rcpt_ok(r, sender_ok, use))
            delivery_rcpt_set(r, DELIVERY_BOUNCE, "5.6.7", buf_cstr(&reason));
        if (r->result.status == DELIVERY_PENDING)
            pending++;
    }
    buf_free(&reason);
    return pending;
}

/* smtp_utf8_lacking_word - " addr port " of sa: one word of the list */
static void smtp_utf8_lacking_word(const struct sockaddr *sa, buf_t *out)
{
    char addr[64];
    int port = 0;

    netaddr_format(sa, addr, sizeof(addr));
    if (sa->sa_family == AF_INET6)
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    else if (sa->sa_family == AF_INET)
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    buf_printf(out, " %s %d ", addr, port);
}

/* smtp_utf8_lacking_add - see smtp_utf8.h */
void smtp_utf8_lacking_add(buf_t *list, const struct sockaddr *sa)
{
    if (!smtp_utf8_lacking_has(list, sa))
        smtp_utf8_lacking_word(sa, list);
}

/* smtp_utf8_lacking_has - see smtp_utf8.h; a word starts and ends with a
 * space, and neither an address nor a port holds one: a match is a word */
int smtp_utf8_lacking_has(const buf_t *list, const struct sockaddr *sa)
{
    buf_t word = BUF_INIT;
    int found;

    smtp_utf8_lacking_word(sa, &word);
    found = list->len > 0 && strstr(buf_cstr(list), buf_cstr(&word)) != NULL;
    buf_free(&word);
    return found;
}
