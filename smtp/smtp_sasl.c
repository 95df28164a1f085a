/*
 * smtp_sasl - tern-smtp's SMTP AUTH client over Cyrus SASL 2 (see
 * smtp_sasl.h).
 */
#include <stdlib.h>
#include <string.h>

#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "auth_sasl.h"
#include "config.h"
#include "smtp_sasl.h"
#include "table.h"

/* the longest SASL mechanism name (RFC 4422 section 3.1) */
#define SMTP_SASL_MECH_MAX 20
/* how much of the server's AUTH line an error message quotes */
#define SMTP_SASL_QUOTE_MAX 200
/* a callback in sasl_callback_t's generic type (as in lib/auth_sasl.c) */
#define SMTP_SASL_CB(fn) ((int (*)(void))(void (*)(void))(fn))

struct smtp_sasl {
    struct table_list maps;
    int sender_dependent;
    unsigned plain_flags; /* SASL_SEC_* without TLS */
    unsigned tls_flags;   /* SASL_SEC_* with TLS */
    char *filter;         /* " MECH MECH " upper case; NULL: any */
};

struct smtp_sasl_client {
    sasl_conn_t *conn;
    char *user;
    char *pass;
    sasl_secret_t *secret;
    sasl_callback_t callbacks[5];
    char mech[SMTP_SASL_MECH_MAX + 1];
};

static int smtp_sasl_users;         /* smtp_sasl_open without close */
static char *smtp_sasl_config_path; /* cyrus_sasl_config_path, NULL: Cyrus' default */
static sasl_callback_t smtp_sasl_global_callbacks[3];

/* smtp_sasl_getconfpath - where Cyrus looks for its configuration */
static int smtp_sasl_getconfpath(void *context, const char **path)
{
    *path = context;
    return SASL_OK;
}

/* smtp_sasl_init - sasl_client_init once per process; -1 with err */
static int smtp_sasl_init(const struct config *cfg, buf_t *err)
{
    const char *path = config_str(cfg, "cyrus_sasl_config_path");
    size_t n = 0;
    int rc;

    if (smtp_sasl_users++ > 0)
        return 0;
    smtp_sasl_global_callbacks[n++] =
        (sasl_callback_t){SASL_CB_LOG, SMTP_SASL_CB(auth_sasl_log), NULL};
    if (path[0] != '\0') {
        smtp_sasl_config_path = xstrdup(path);
        smtp_sasl_global_callbacks[n++] = (sasl_callback_t){
            SASL_CB_GETCONFPATH, SMTP_SASL_CB(smtp_sasl_getconfpath), smtp_sasl_config_path};
    }
    smtp_sasl_global_callbacks[n] = (sasl_callback_t){SASL_CB_LIST_END, NULL, NULL};
    rc = sasl_client_init(smtp_sasl_global_callbacks);
    if (rc != SASL_OK) {
        buf_printf(err, "Cyrus SASL client initialisation failed: %s",
                   sasl_errstring(rc, NULL, NULL));
        smtp_sasl_users--;
        free(smtp_sasl_config_path);
        smtp_sasl_config_path = NULL;
        return -1;
    }
    return 0;
}

/* smtp_sasl_done - the last user ends Cyrus' client side */
static void smtp_sasl_done(void)
{
    if (--smtp_sasl_users > 0)
        return;
    sasl_client_done();
    free(smtp_sasl_config_path);
    smtp_sasl_config_path = NULL;
}

/* smtp_sasl_upper_char - ASCII upper case, whatever the locale */
static char smtp_sasl_upper_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
}

/* smtp_sasl_upper - append s (len bytes) upper case */
static void smtp_sasl_upper(const char *s, size_t len, buf_t *out)
{
    for (size_t i = 0; i < len; i++)
        buf_putc(out, smtp_sasl_upper_char(s[i]));
}

/* smtp_sasl_filter_load - smtp_sasl_mechanism_filter as " MECH MECH ",
 * NULL when empty (any mechanism) */
static char *smtp_sasl_filter_load(const struct config *cfg)
{
    size_t count = 0;
    char *const *list = config_list(cfg, "smtp_sasl_mechanism_filter", &count);
    buf_t filter = BUF_INIT;

    if (count == 0)
        return NULL;
    buf_putc(&filter, ' ');
    for (size_t i = 0; i < count; i++) {
        smtp_sasl_upper(list[i], strlen(list[i]), &filter);
        buf_putc(&filter, ' ');
    }
    return buf_steal(&filter);
}

/* smtp_sasl_settings_load - the options and the tables; -1 with err */
static int smtp_sasl_settings_load(struct smtp_sasl *sasl, const struct config *cfg, buf_t *err)
{
    size_t count = 0;
    char *const *maps = config_list(cfg, "smtp_sasl_password_maps", &count);

    if (auth_sasl_security_flags(cfg, "smtp_sasl_security_options", &sasl->plain_flags, err) < 0 ||
        auth_sasl_security_flags(cfg, "smtp_sasl_tls_security_options", &sasl->tls_flags, err) < 0)
        return -1;
    if (count == 0) {
        buf_printf(err,
                   "%s: smtp_sasl_auth_enable = yes needs smtp_sasl_password_maps "
                   "(the table of \"user:password\" per next hop)",
                   config_origin(cfg, "smtp_sasl_auth_enable"));
        return -1;
    }
    if (table_list_open(&sasl->maps, maps, count, 0, err) < 0)
        return -1;
    sasl->sender_dependent = config_bool(cfg, "smtp_sender_dependent_authentication");
    sasl->filter = smtp_sasl_filter_load(cfg);
    return 0;
}

int smtp_sasl_open(const struct config *cfg, struct smtp_sasl **out, buf_t *err)
{
    struct smtp_sasl *sasl;

    *out = NULL;
    if (!config_bool(cfg, "smtp_sasl_auth_enable"))
        return 0;
    sasl = xcalloc(1, sizeof(*sasl));
    if (smtp_sasl_settings_load(sasl, cfg, err) < 0 || smtp_sasl_init(cfg, err) < 0) {
        table_list_close(&sasl->maps);
        free(sasl->filter);
        free(sasl);
        return -1;
    }
    *out = sasl;
    return 0;
}

void smtp_sasl_close(struct smtp_sasl *sasl)
{
    if (sasl == NULL)
        return;
    table_list_close(&sasl->maps);
    free(sasl->filter);
    free(sasl);
    smtp_sasl_done();
}

/* smtp_sasl_lookup - key in every table in order: 1 found (value set), 0
 * not, -1 with err naming the table */
static int smtp_sasl_lookup(struct smtp_sasl *sasl, const char *key, buf_t *value, buf_t *err)
{
    for (size_t i = 0; i < sasl->maps.count; i++) {
        switch (table_lookup(sasl->maps.v[i], key, value)) {
        case TABLE_FOUND:
            return 1;
        case TABLE_TEMPFAIL:
            buf_printf(err, "smtp_sasl_password_maps: %s: lookup of \"%s\" failed",
                       table_name(sasl->maps.v[i]), key);
            return -1;
        case TABLE_NOTFOUND:
            break;
        }
    }
    return 0;
}

/* smtp_sasl_sender_lookup - the sender address, then its "@domain" */
static int smtp_sasl_sender_lookup(struct smtp_sasl *sasl, const char *sender, buf_t *value,
                                   buf_t *err)
{
    const char *at = strrchr(sender, '@');
    int found = smtp_sasl_lookup(sasl, sender, value, err);

    if (found == 0 && at != NULL && at[1] != '\0')
        found = smtp_sasl_lookup(sasl, at, value, err);
    return found;
}

/* smtp_sasl_split - "user:password" into user and pass */
static void smtp_sasl_split(const buf_t *value, buf_t *user, buf_t *pass)
{
    const char *colon = memchr(value->data, ':', value->len);
    size_t ulen = colon != NULL ? (size_t)(colon - value->data) : value->len;

    buf_append(user, value->data, ulen);
    if (colon != NULL)
        buf_append(pass, colon + 1, value->len - ulen - 1);
}

int smtp_sasl_credentials(struct smtp_sasl *sasl, const char *sender, const char *const *keys,
                          buf_t *user, buf_t *pass, buf_t *err)
{
    buf_t value = BUF_INIT;
    int found = 0;

    buf_reset(user);
    buf_wipe(pass);
    if (sasl->sender_dependent && sender != NULL && sender[0] != '\0')
        found = smtp_sasl_sender_lookup(sasl, sender, &value, err);
    for (size_t i = 0; found == 0 && keys != NULL && keys[i] != NULL; i++) {
        if (keys[i][0] != '\0')
            found = smtp_sasl_lookup(sasl, keys[i], &value, err);
    }
    if (found == 1)
        smtp_sasl_split(&value, user, pass);
    buf_wipe(&value);
    buf_free(&value);
    return found;
}

/* ---- one exchange */

/* smtp_sasl_get_user - SASL_CB_USER and SASL_CB_AUTHNAME: the login */
static int smtp_sasl_get_user(void *context, int id, const char **result, unsigned *len)
{
    struct smtp_sasl_client *c = context;

    *result = c->user;
    if (len != NULL)
        *len = (unsigned)strlen(c->user);
    return SASL_OK;
}

/* smtp_sasl_get_pass - SASL_CB_PASS: the password */
static int smtp_sasl_get_pass(sasl_conn_t *conn, void *context, int id, sasl_secret_t **psecret)
{
    struct smtp_sasl_client *c = context;

    *psecret = c->secret;
    return SASL_OK;
}

/* smtp_sasl_get_realm - SASL_CB_GETREALM: the first realm the server
 * proposes (none: the empty realm) */
static int smtp_sasl_get_realm(void *context, int id, const char **availrealms, const char **result)
{
    *result = availrealms != NULL && availrealms[0] != NULL ? availrealms[0] : "";
    return SASL_OK;
}

/* smtp_sasl_client_new - the client with its copies and callbacks */
static struct smtp_sasl_client *smtp_sasl_client_new(const char *user, const char *pass)
{
    struct smtp_sasl_client *c = xcalloc(1, sizeof(*c));
    size_t plen = strlen(pass);

    c->user = xstrdup(user);
    c->pass = xstrdup(pass);
    c->secret = xcalloc(1, sizeof(sasl_secret_t) + plen);
    c->secret->len = plen;
    memcpy(c->secret->data, pass, plen);
    c->callbacks[0] = (sasl_callback_t){SASL_CB_USER, SMTP_SASL_CB(smtp_sasl_get_user), c};
    c->callbacks[1] = (sasl_callback_t){SASL_CB_AUTHNAME, SMTP_SASL_CB(smtp_sasl_get_user), c};
    c->callbacks[2] = (sasl_callback_t){SASL_CB_PASS, SMTP_SASL_CB(smtp_sasl_get_pass), c};
    c->callbacks[3] = (sasl_callback_t){SASL_CB_GETREALM, SMTP_SASL_CB(smtp_sasl_get_realm), c};
    c->callbacks[4] = (sasl_callback_t){SASL_CB_LIST_END, NULL, NULL};
    return c;
}

void smtp_sasl_client_free(struct smtp_sasl_client *c)
{
    if (c == NULL)
        return;
    if (c->conn != NULL)
        sasl_dispose(&c->conn);
    explicit_bzero(c->pass, strlen(c->pass));
    explicit_bzero(c->secret, sizeof(sasl_secret_t) + c->secret->len);
    free(c->pass);
    free(c->secret);
    free(c->user);
    free(c);
}

const char *smtp_sasl_client_mech(const struct smtp_sasl_client *c)
{
    return c->mech;
}

/* smtp_sasl_quote - at most SMTP_SASL_QUOTE_MAX bytes of text from the
 * network, non-printable bytes as '?' */
static void smtp_sasl_quote(const char *s, buf_t *out)
{
    for (size_t i = 0; s[i] != '\0' && i < SMTP_SASL_QUOTE_MAX; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf_putc(out, (ch >= 0x20 && ch < 0x7f) ? ch : '?');
    }
}

/* smtp_sasl_err - Cyrus' reason for rc, or only its generic text when the
 * detail would quote the password */
static void smtp_sasl_err(struct smtp_sasl_client *c, const char *what, int rc, buf_t *err)
{
    const char *detail = c->conn != NULL ? sasl_errdetail(c->conn) : NULL;

    if (detail == NULL || (c->pass[0] != '\0' && strstr(detail, c->pass) != NULL))
        detail = sasl_errstring(rc, NULL, NULL);
    buf_printf(err, "SASL %s%s%s failed: ", what, c->mech[0] != '\0' ? " " : "", c->mech);
    smtp_sasl_quote(detail, err);
}

/* smtp_sasl_is_mech - a word of the AUTH line that can be a mechanism name */
static int smtp_sasl_is_mech(const char *s, size_t len)
{
    if (len == 0 || len > SMTP_SASL_MECH_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!(ch >= 'A' && ch <= 'Z') && !(ch >= 'a' && ch <= 'z') && !(ch >= '0' && ch <= '9') &&
            ch != '-' && ch != '_')
            return 0;
    }
    return 1;
}

/* smtp_sasl_filtered - the server's mechanisms that pass the filter, upper
 * case, separated by spaces */
static void smtp_sasl_filtered(const struct smtp_sasl *sasl, const char *server_mechs, buf_t *out)
{
    buf_t word = BUF_INIT;
    const char *p = server_mechs;

    while (*p != '\0') {
        size_t len = strcspn(p, " \t");
        buf_reset(&word);
        buf_putc(&word, ' ');
        smtp_sasl_upper(p, len, &word);
        buf_putc(&word, ' ');
        if (smtp_sasl_is_mech(p, len) &&
            (sasl->filter == NULL || strstr(sasl->filter, buf_cstr(&word)) != NULL))
            buf_append(out, word.data + (out->len == 0), word.len - 1 - (out->len == 0));
        p += len;
        p += strspn(p, " \t");
    }
    buf_free(&word);
}

/* smtp_sasl_none_fit - err for a server whose mechanisms all fail */
static void smtp_sasl_none_fit(const struct smtp_sasl *sasl, const char *server_mechs, int tls,
                               buf_t *err)
{
    buf_puts(err, "the server offers AUTH ");
    smtp_sasl_quote(server_mechs, err);
    buf_printf(err, "; %s and smtp_sasl_mechanism_filter (",
               tls ? "smtp_sasl_tls_security_options" : "smtp_sasl_security_options");
    if (sasl->filter != NULL)
        buf_append(err, sasl->filter + 1, strlen(sasl->filter) - 2);
    else
        buf_puts(err, "any");
    buf_puts(err, ") leave no mechanism that this host can use");
}

/* smtp_sasl_encode - append the base64 form of len bytes at data, then
 * CRLF; reserved at once so the secret is never left in a freed copy */
static void smtp_sasl_encode(const char *data, unsigned len, buf_t *out)
{
    unsigned enclen = 0;
    size_t need = 4 * (((size_t)len + 2) / 3) + 2;

    buf_reserve(out, need);
    if (len > 0)
        sasl_encode64(data, len, out->data + out->len, (unsigned)(out->cap - out->len), &enclen);
    out->len += enclen;
    out->data[out->len] = '\0';
    buf_puts(out, "\r\n");
}

/* smtp_sasl_conn_new - the SASL client connection with the security
 * options for tls; -1 with err */
static int smtp_sasl_conn_new(struct smtp_sasl *sasl, struct smtp_sasl_client *c,
                              const char *server_host, int tls, unsigned tls_ssf, buf_t *err)
{
    sasl_security_properties_t props;
    /* Cyrus waives noplaintext when the external SSF is above 1; the
     * _tls_ options would then not mean what they say */
    sasl_ssf_t ssf = (sasl->tls_flags & SASL_SEC_NOPLAINTEXT) && tls_ssf > 1 ? 1 : tls_ssf;
    int rc = sasl_client_new("smtp", server_host, NULL, NULL, c->callbacks, 0, &c->conn);

    memset(&props, 0, sizeof(props));
    props.max_ssf = 0; /* no SASL security layer: TLS is the one */
    props.security_flags = tls ? sasl->tls_flags : sasl->plain_flags;
    if (rc == SASL_OK)
        rc = sasl_setprop(c->conn, SASL_SEC_PROPS, &props);
    if (rc == SASL_OK && tls)
        rc = sasl_setprop(c->conn, SASL_SSF_EXTERNAL, &ssf);
    if (rc != SASL_OK) {
        smtp_sasl_err(c, "client set-up", rc, err);
        return -1;
    }
    return 0;
}

/* smtp_sasl_choose - sasl_client_start among the server's mechanisms that
 * pass the filter; the SASL result, with err set on a failure */
static int smtp_sasl_choose(struct smtp_sasl *sasl, struct smtp_sasl_client *c,
                            const char *server_mechs, int tls, const char **clientout,
                            unsigned *clientlen, buf_t *err)
{
    buf_t mechs = BUF_INIT;
    const char *mech = NULL;
    int rc = SASL_NOMECH;

    smtp_sasl_filtered(sasl, server_mechs, &mechs);
    if (mechs.len > 0)
        rc = sasl_client_start(c->conn, buf_cstr(&mechs), NULL, clientout, clientlen, &mech);
    if (rc == SASL_NOMECH)
        smtp_sasl_none_fit(sasl, server_mechs, tls, err);
    else if (rc != SASL_OK && rc != SASL_CONTINUE)
        smtp_sasl_err(c, "start", rc, err);
    else
        for (size_t i = 0; mech[i] != '\0' && i < SMTP_SASL_MECH_MAX; i++)
            c->mech[i] = smtp_sasl_upper_char(mech[i]);
    buf_free(&mechs);
    return rc;
}

struct smtp_sasl_client *smtp_sasl_client_start(struct smtp_sasl *sasl, const char *server_host,
                                                const char *server_mechs, int tls, unsigned tls_ssf,
                                                const char *user, const char *pass, buf_t *out,
                                                buf_t *err)
{
    struct smtp_sasl_client *c = smtp_sasl_client_new(user, pass);
    const char *clientout = NULL;
    unsigned clientlen = 0;
    int rc;

    buf_wipe(out);
    if (smtp_sasl_conn_new(sasl, c, server_host, tls, tls_ssf, err) < 0 ||
        ((rc = smtp_sasl_choose(sasl, c, server_mechs, tls, &clientout, &clientlen, err)) !=
             SASL_OK &&
         rc != SASL_CONTINUE)) {
        smtp_sasl_client_free(c);
        return NULL;
    }
    buf_printf(out, "AUTH %s", c->mech);
    if (clientout == NULL) {
        buf_puts(out, "\r\n");
    } else if (clientlen == 0) {
        buf_puts(out, " =\r\n");
    } else {
        buf_putc(out, ' ');
        smtp_sasl_encode(clientout, clientlen, out);
    }
    return c;
}

int smtp_sasl_client_step(struct smtp_sasl_client *c, const char *challenge, buf_t *out, buf_t *err)
{
    size_t inlen = strlen(challenge);
    buf_t decoded = BUF_INIT;
    unsigned declen = 0;
    const char *clientout = NULL;
    unsigned clientlen = 0;
    int rc = SASL_OK;

    buf_wipe(out);
    if (strcmp(challenge, "=") == 0)
        inlen = 0;
    buf_reserve(&decoded, inlen);
    if (inlen > 0)
        rc = sasl_decode64(challenge, (unsigned)inlen, decoded.data, (unsigned)inlen + 1, &declen);
    if (rc != SASL_OK) {
        buf_printf(err, "SASL %s: the server's challenge is not base64: \"", c->mech);
        smtp_sasl_quote(challenge, err);
        buf_putc(err, '"');
        buf_free(&decoded);
        return -1;
    }
    rc = sasl_client_step(c->conn, decoded.data, declen, NULL, &clientout, &clientlen);
    buf_wipe(&decoded);
    buf_free(&decoded);
    if (rc != SASL_OK && rc != SASL_CONTINUE) {
        smtp_sasl_err(c, "step of", rc, err);
        return -1;
    }
    smtp_sasl_encode(clientout, clientout != NULL ? clientlen : 0, out);
    return 0;
}
