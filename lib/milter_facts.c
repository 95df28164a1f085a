/*
 * milter_facts - the sendmail macros a milter is sent, made of the facts
 * smtpd and cleanup know (see milter.h).
 *
 * A macro name may be written with or without sendmail's braces ("i",
 * "{client_addr}" or "client_addr"), as Postfix accepts in its
 * milter_*_macros lists; lookups and imports compare the bare name.
 */
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "milter.h"

/* the bare macro name of each fact, in enum milter_fact order */
static const char *const milter_fact_names[MILTER_FACT_COUNT] = {
    "j",           "daemon_name", "daemon_addr", "v",           "_",
    "client_addr", "client_name", "client_port", "client_ptr",  "if_name",
    "if_addr",     "tls_version", "cipher",      "cipher_bits", "cert_subject",
    "cert_issuer", "auth_type",   "auth_authen", "auth_ssf",    "auth_author",
    "i",           "mail_mailer", "mail_host",   "mail_addr",   "rcpt_mailer",
    "rcpt_host",   "rcpt_addr",   "msg_id",
};

void milter_facts_init(struct milter_facts *f)
{
    memset(f, 0, sizeof(*f));
}

void milter_facts_free(struct milter_facts *f)
{
    for (size_t i = 0; i < MILTER_FACT_COUNT; i++) {
        free(f->v[i]);
        f->v[i] = NULL;
    }
}

void milter_facts_set(struct milter_facts *f, enum milter_fact fact, const char *value)
{
    if ((unsigned)fact >= MILTER_FACT_COUNT)
        return;
    free(f->v[fact]);
    f->v[fact] = value != NULL ? xstrdup(value) : NULL;
}

/* milter_fact_find - the fact of macro name (len bytes, braces or not),
 * or -1 */
static int milter_fact_find(const char *name, size_t len)
{
    if (len >= 2 && name[0] == '{' && name[len - 1] == '}') {
        name++;
        len -= 2;
    }
    for (int i = 0; i < MILTER_FACT_COUNT; i++)
        if (strlen(milter_fact_names[i]) == len && memcmp(milter_fact_names[i], name, len) == 0)
            return i;
    return -1;
}

const char *milter_facts_macro(void *ctx, const char *name)
{
    const struct milter_facts *f = ctx;
    int i = milter_fact_find(name, strlen(name));

    return i < 0 ? NULL : f->v[i];
}

void milter_facts_export(const struct milter_facts *f, buf_t *attrs)
{
    buf_t item = BUF_INIT;

    for (size_t i = 0; i < MILTER_FACT_COUNT; i++) {
        if (f->v[i] == NULL)
            continue;
        buf_reset(&item);
        buf_printf(&item, "%s=%s", milter_fact_names[i], f->v[i]);
        attr_add(attrs, "milter_fact", item.data, item.len);
    }
    buf_free(&item);
}

void milter_facts_import(struct milter_facts *f, const struct attr_msg *m)
{
    for (size_t k = 0; k < m->count; k++) {
        const struct attr *a = &m->v[k];
        const char *eq;
        int i;

        if (strcmp(a->name, "milter_fact") != 0 || strlen(a->value) != a->len)
            continue;
        eq = strchr(a->value, '=');
        if (eq == NULL || (i = milter_fact_find(a->value, (size_t)(eq - a->value))) < 0)
            continue; /* malformed or unknown: skipped */
        milter_facts_set(f, (enum milter_fact)i, eq + 1);
    }
}
