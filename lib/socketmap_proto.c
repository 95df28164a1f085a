/*
 * socketmap_proto - sendmail's socketmap requests and replies over
 * netstrings (lib/socketmap_proto.h).
 */
#include <string.h>

#include "netstring.h"
#include "table.h"
#include "socketmap_proto.h"

static const struct {
    const char *word;
    enum socketmap_status status;
} socketmap_words[] = {
    {"OK", SOCKETMAP_OK},           {"NOTFOUND", SOCKETMAP_NOTFOUND}, {"TEMP", SOCKETMAP_TEMP},
    {"TIMEOUT", SOCKETMAP_TIMEOUT}, {"PERM", SOCKETMAP_PERM},
};

/* socketmap_proto_request - see socketmap_proto.h */
int socketmap_proto_request(buf_t *out, const char *map, const char *key)
{
    buf_t req = BUF_INIT;
    const char *p;

    if (*map == 0 || *key == 0)
        return -1;
    for (p = map; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return -1;
    buf_printf(&req, "%s %s", map, key);
    netstring_encode(out, req.data, req.len);
    buf_free(&req);
    return 0;
}

/* socketmap_protocol_error - fail r with why */
static enum socketmap_status socketmap_protocol_error(struct socketmap_reply *r, const char *why)
{
    r->status = SOCKETMAP_PROTOCOL;
    r->text = NULL;
    r->len = 0;
    r->why = why;
    return r->status;
}

/* socketmap_classify - the status word and text of one reply payload */
static enum socketmap_status socketmap_classify(const char *p, size_t len,
                                                struct socketmap_reply *r)
{
    size_t i;

    for (i = 0; i < sizeof socketmap_words / sizeof socketmap_words[0]; i++) {
        size_t wlen = strlen(socketmap_words[i].word);

        if (len < wlen || memcmp(p, socketmap_words[i].word, wlen) != 0)
            continue;
        if (len > wlen && p[wlen] != ' ')
            continue;
        r->status = socketmap_words[i].status;
        r->text = p + (len > wlen ? wlen + 1 : len);
        r->len = len > wlen ? len - wlen - 1 : 0;
        if (r->status == SOCKETMAP_OK && r->len == 0)
            return socketmap_protocol_error(r, "socketmap OK reply without a value");
        if (r->status == SOCKETMAP_NOTFOUND && r->len != 0)
            return socketmap_protocol_error(r, "socketmap NOTFOUND reply with text");
        if (!table_text_clean(r->text, r->len))
            return socketmap_protocol_error(r, "socketmap reply holds a control character");
        return r->status;
    }
    return socketmap_protocol_error(r, "socketmap reply with an unknown status");
}

/* socketmap_proto_reply_parse - see socketmap_proto.h */
enum socketmap_status socketmap_proto_reply_parse(const char *data, size_t len,
                                                  struct socketmap_reply *r)
{
    struct netstring ns;
    const char *reason = NULL;
    enum netstring_status st;

    memset(r, 0, sizeof *r);
    st = netstring_decode(data, len, SOCKETMAP_PROTO_MAX_REPLY, &ns, &reason);
    if (st == NETSTRING_MORE)
        return SOCKETMAP_MORE;
    if (st == NETSTRING_ERROR)
        return socketmap_protocol_error(r, reason);
    r->used = ns.used;
    return socketmap_classify(ns.payload, ns.len, r);
}

/* socketmap_proto_status_name - see socketmap_proto.h */
const char *socketmap_proto_status_name(enum socketmap_status status)
{
    size_t i;

    for (i = 0; i < sizeof socketmap_words / sizeof socketmap_words[0]; i++)
        if (socketmap_words[i].status == status)
            return socketmap_words[i].word;
    return status == SOCKETMAP_MORE ? "MORE" : "PROTOCOL";
}
