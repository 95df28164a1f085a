/*
 * fuzz_policy_access - libFuzzer target for lib/policy's pure parsers: an
 * access table value (Postfix access(5), sendmail's access file; the value
 * comes from a table an administrator wrote, or from a policy service's
 * "action=" line over the network) and a reply template (rbl_reply_maps,
 * default_rbl_reply).  The input up to its first NUL is the value and the
 * template; what follows the NUL is a variable's value.  Promises checked
 * (abort when broken): an accepted value has a known action; a code is
 * three digits starting with 4 or 5, a DSN has the code's class, REJECT
 * carries a 5xx code and DEFER a 4xx; PREPEND text holds a ':', REDIRECT
 * and PREPEND text is non-empty; a refusal comes with a message; a
 * template without '$' expands to itself.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "policy.h"

/* fuzz_check_value - the promises of an accepted value */
static void fuzz_check_value(const struct policy_access_value *v)
{
    if (v->action > POLICY_ACT_DEFER_IF_PERMIT)
        abort();
    if (v->code[0] && ((v->code[0] != '4' && v->code[0] != '5') || strlen(v->code) != 3 ||
                       !isdigit((unsigned char)v->code[1]) || !isdigit((unsigned char)v->code[2])))
        abort();
    if (v->code[0] && v->dsn[0] && v->dsn[0] != v->code[0])
        abort();
    if (v->code[0] && v->action == POLICY_ACT_REJECT && v->code[0] != '5')
        abort();
    if (v->code[0] && v->action == POLICY_ACT_DEFER && v->code[0] != '4')
        abort();
    if (v->action == POLICY_ACT_PREPEND && strchr(buf_cstr(&v->text), ':') == NULL)
        abort();
    if ((v->action == POLICY_ACT_PREPEND || v->action == POLICY_ACT_REDIRECT) && v->text.len == 0)
        abort();
}

/* fuzz_value - one access table value */
static void fuzz_value(const char *text)
{
    struct policy_access_value v;
    buf_t err = BUF_INIT;

    policy_access_value_init(&v);
    if (policy_access_parse(text, &v, &err) == 0)
        fuzz_check_value(&v);
    else if (err.len == 0)
        abort();
    policy_access_value_free(&v);
    buf_free(&err);
}

/* fuzz_template - text as a reply template, value as every variable */
static void fuzz_template(const char *text, const char *value)
{
    const char *vars[] = {"client_address", value, "rbl_reason", value, "x", "", NULL};
    buf_t out = BUF_INIT;

    policy_expand_reply(text, vars, &out);
    if (strchr(text, '$') == NULL && strcmp(buf_cstr(&out), text) != 0)
        abort();
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    size_t first;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    first = strlen(text);
    fuzz_value(text);
    fuzz_template(text, first < size ? text + first + 1 : "");
    free(text);
    return 0;
}
