/*
 * fuzz_smtpd_auth - libFuzzer target for the AUTH parts of smtpd/proto:
 * the AUTH command's argument and the client's base64 responses come
 * straight from clients (passwords inside them).  The input is tried as an
 * AUTH argument (then its initial response), as a line after 334, and as
 * bytes to encode.  Promises checked (abort when broken): an accepted
 * mechanism is 1 to 20 of A-Z 0-9 - _ and the initial response is one word
 * of the argument; every refusal is one printable reply line; what decodes
 * encodes back to exactly the same text (one base64 form per byte string)
 * and a refused response leaves nothing decoded; any bytes encode to text
 * that decodes back to them.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../smtpd/proto.h"
#include "buf.h"

/* fuzz_check_reply - "NNN " then printable text */
static void fuzz_check_reply(const buf_t *reply)
{
    if (reply->len < 4 || reply->data[0] < '2' || reply->data[0] > '5' || reply->data[3] != ' ')
        abort();
    for (size_t i = 0; i < reply->len; i++)
        if ((unsigned char)reply->data[i] < 0x20 || (unsigned char)reply->data[i] > 0x7e)
            abort();
}

/* fuzz_response - one response as the client sent it */
static void fuzz_response(const char *text, size_t len, int initial)
{
    buf_t out = BUF_INIT, reply = BUF_INIT, again = BUF_INIT;
    int rc = proto_auth_response(text, len, initial, &out, &reply);

    if (rc == 1 && (initial || len != 1 || text[0] != '*'))
        abort();
    if (rc < 0) {
        fuzz_check_reply(&reply);
        if (out.len != 0)
            abort();
    }
    if (rc == 0 && !(initial && len == 1 && text[0] == '=')) {
        proto_base64_encode(out.data, out.len, &again);
        if (again.len != len || (len > 0 && memcmp(again.data, text, len) != 0))
            abort();
    }
    buf_free(&out);
    buf_free(&reply);
    buf_free(&again);
}

/* fuzz_command - the argument of AUTH */
static void fuzz_command(const char *arg)
{
    buf_t mech = BUF_INIT, reply = BUF_INIT;
    const char *response = NULL;

    if (proto_auth_parse(arg, &mech, &response, &reply) < 0) {
        fuzz_check_reply(&reply);
    } else {
        if (mech.len == 0 || mech.len > PROTO_AUTH_MECH_MAX ||
            strspn(mech.data, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != mech.len)
            abort();
        if (response != NULL) {
            size_t n = strlen(response);
            if (response <= arg || response > arg + strlen(arg) || n == 0 ||
                strcspn(response, " \t") != n)
                abort();
            fuzz_response(response, n, 1);
        }
    }
    buf_free(&mech);
    buf_free(&reply);
}

/* fuzz_round_trip - any bytes encode and decode back */
static void fuzz_round_trip(const uint8_t *data, size_t size)
{
    buf_t text = BUF_INIT, back = BUF_INIT;

    proto_base64_encode(data, size, &text);
    if (text.len != (size + 2) / 3 * 4 || proto_base64_decode(text.data, text.len, &back) != 0 ||
        back.len != size || (size > 0 && memcmp(back.data, data, size) != 0))
        abort();
    buf_free(&text);
    buf_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    fuzz_command(text);
    fuzz_response(text, size, 0);
    fuzz_round_trip(data, size);
    free(text);
    return 0;
}
