/*
 * auth_sasl - Cyrus SASL 2 as tern's SMTP AUTH server (see auth_sasl.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sasl/sasl.h>

#include "auth_sasl.h"
#include "config.h"
#include "log.h"

/* Cyrus' search path for the application config when cyrus_sasl_config_path
 * is empty (Debian's build) */
#define AUTH_SASL_DEFAULT_CONFIG_PATH                                                              \
    "/etc/sasl2:/etc/sasl:/usr/lib/x86_64-linux-gnu/sasl2:/usr/lib/sasl2"
/* Cyrus' default sasldb file */
#define AUTH_SASL_DEFAULT_SASLDB "/etc/sasldb2"
/* longest Cyrus log message or user name passed on */
#define AUTH_SASL_TEXT_MAX 400
/* a callback in sasl_callback_t's generic type (through void (*)(void), which
 * the compiler lets stand for any function type) */
#define AUTH_SASL_CB(fn) ((int (*)(void))(void (*)(void))(fn))

static char *auth_sasl_config_path; /* cyrus_sasl_config_path, NULL: Cyrus' default */
static char *auth_sasl_sasldb;      /* the sasldb file the config uses, NULL: none */
static char auth_sasl_log_client[80];
static sasl_callback_t auth_sasl_callbacks[4];
static int auth_sasl_active;

/* auth_sasl_printable - len bytes of s, non-printable bytes as '?', at most max */
static void auth_sasl_printable(const char *s, size_t len, size_t max, buf_t *out)
{
    for (size_t i = 0; i < len && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        buf_putc(out, (c >= 0x20 && c < 0x7f) ? c : '?');
    }
}

int auth_sasl_log(void *context, int level, const char *message)
{
    buf_t text = BUF_INIT;

    if (message == NULL || level > SASL_LOG_DEBUG)
        return SASL_OK;
    auth_sasl_printable(message, strlen(message), AUTH_SASL_TEXT_MAX, &text);
    if (level <= SASL_LOG_WARN)
        log_warn("%sSASL: %s", auth_sasl_log_client, buf_cstr(&text));
    else if (level == SASL_LOG_NOTE)
        log_info("%sSASL: %s", auth_sasl_log_client, buf_cstr(&text));
    else
        log_debug("%sSASL: %s", auth_sasl_log_client, buf_cstr(&text));
    buf_free(&text);
    return SASL_OK;
}

/* auth_sasl_getconfpath - where Cyrus looks for APPNAME.conf */
static int auth_sasl_getconfpath(void *context, const char **path)
{
    *path = context;
    return SASL_OK;
}

/* auth_sasl_proxy_policy - a client may act only as itself: an
 * authorization identity other than the authenticated one is refused */
static int auth_sasl_proxy_policy(sasl_conn_t *conn, void *context, const char *requested_user,
                                  unsigned rlen, const char *auth_identity, unsigned alen,
                                  const char *def_realm, unsigned urlen, struct propctx *propctx)
{
    if (requested_user == NULL || rlen == 0)
        return SASL_OK;
    if (auth_identity != NULL && rlen == alen && memcmp(requested_user, auth_identity, rlen) == 0)
        return SASL_OK;
    sasl_seterror(conn, SASL_NOLOG, "authorization identity differs from the login");
    return SASL_BADAUTH;
}

void auth_sasl_set_log_client(const char *ip)
{
    if (ip == NULL)
        auth_sasl_log_client[0] = '\0';
    else
        snprintf(auth_sasl_log_client, sizeof(auth_sasl_log_client), "unknown[%s]: ", ip);
}

/* auth_sasl_conf_file - the application config Cyrus reads: the first
 * APPNAME.conf in the search path; 0 found */
static int auth_sasl_conf_file(const struct config *cfg, buf_t *path)
{
    const char *dirs =
        auth_sasl_config_path != NULL ? auth_sasl_config_path : AUTH_SASL_DEFAULT_CONFIG_PATH;
    const char *p = dirs;

    while (*p != '\0') {
        size_t len = strcspn(p, ":");
        buf_reset(path);
        buf_printf(path, "%.*s/%s.conf", (int)len, p, config_str(cfg, "smtpd_sasl_path"));
        if (access(buf_cstr(path), F_OK) == 0)
            return 0;
        p += len + (p[len] == ':');
    }
    return -1;
}

/* auth_sasl_conf_value - "key: value" of the application config; 0 found */
static int auth_sasl_conf_value(const char *file, const char *key, buf_t *value)
{
    FILE *fp = fopen(file, "re");
    char line[1024];
    size_t klen = strlen(key);
    int found = -1;

    if (fp == NULL)
        return -1;
    while (found < 0 && fgets(line, sizeof(line), fp) != NULL) {
        char *v = line + klen;
        if (strncmp(line, key, klen) != 0 || *v != ':')
            continue;
        size_t vlen;
        v += 1 + strspn(v + 1, " \t");
        vlen = strcspn(v, "\r\n");
        while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        buf_reset(value);
        buf_append(value, v, vlen);
        found = 0;
    }
    fclose(fp);
    return found;
}

/* auth_sasl_uses_sasldb - the config names sasldb (or leaves the auxprop
 * plugins at Cyrus' default: all of them) */
static int auth_sasl_uses_sasldb(const char *file)
{
    buf_t value = BUF_INIT;
    int uses = auth_sasl_conf_value(file, "auxprop_plugin", &value) < 0 ||
               strstr(buf_cstr(&value), "sasldb") != NULL;

    buf_free(&value);
    return uses;
}

/* auth_sasl_find_sasldb - as root, like Cyrus: the sasldb file of the
 * application config, when it uses sasldb */
static void auth_sasl_find_sasldb(const struct config *cfg)
{
    buf_t file = BUF_INIT;
    buf_t db = BUF_INIT;
    int found = auth_sasl_conf_file(cfg, &file) == 0;

    if (!found || auth_sasl_uses_sasldb(buf_cstr(&file))) {
        if (!found || auth_sasl_conf_value(buf_cstr(&file), "sasldb_path", &db) < 0)
            buf_set(&db, AUTH_SASL_DEFAULT_SASLDB);
        auth_sasl_sasldb = buf_steal(&db);
    }
    buf_free(&file);
    buf_free(&db);
}

int auth_sasl_init(const struct config *cfg, buf_t *err)
{
    const char *path = config_str(cfg, "cyrus_sasl_config_path");
    size_t n = 0;
    int rc;

    if (auth_sasl_active)
        return 0;
    auth_sasl_callbacks[n++] = (sasl_callback_t){SASL_CB_LOG, AUTH_SASL_CB(auth_sasl_log), NULL};
    auth_sasl_callbacks[n++] =
        (sasl_callback_t){SASL_CB_PROXY_POLICY, AUTH_SASL_CB(auth_sasl_proxy_policy), NULL};
    if (path[0] != '\0') {
        auth_sasl_config_path = xstrdup(path);
        auth_sasl_callbacks[n++] = (sasl_callback_t){
            SASL_CB_GETCONFPATH, AUTH_SASL_CB(auth_sasl_getconfpath), auth_sasl_config_path};
    }
    auth_sasl_callbacks[n] = (sasl_callback_t){SASL_CB_LIST_END, NULL, NULL};
    rc = sasl_server_init(auth_sasl_callbacks, config_str(cfg, "smtpd_sasl_path"));
    if (rc != SASL_OK) {
        buf_printf(err, "Cyrus SASL initialisation for \"%s\" failed: %s",
                   config_str(cfg, "smtpd_sasl_path"), sasl_errstring(rc, NULL, NULL));
        return -1;
    }
    auth_sasl_active = 1;
    auth_sasl_find_sasldb(cfg);
    return 0;
}

void auth_sasl_done(void)
{
    if (!auth_sasl_active)
        return;
    sasl_server_done();
    auth_sasl_active = 0;
    free(auth_sasl_config_path);
    free(auth_sasl_sasldb);
    auth_sasl_config_path = auth_sasl_sasldb = NULL;
}

int auth_sasl_security_flags(const struct config *view, const char *param, unsigned *out,
                             buf_t *err)
{
    static const struct {
        const char *name;
        unsigned flag;
    } names[] = {
        {"noanonymous", SASL_SEC_NOANONYMOUS}, {"noplaintext", SASL_SEC_NOPLAINTEXT},
        {"noactive", SASL_SEC_NOACTIVE},       {"nodictionary", SASL_SEC_NODICTIONARY},
        {"mutual_auth", SASL_SEC_MUTUAL_AUTH}, {"forward_secrecy", SASL_SEC_FORWARD_SECRECY},
    };
    size_t count = 0;
    char *const *list = config_list(view, param, &count);

    *out = 0;
    for (size_t i = 0; i < count; i++) {
        size_t k = 0;
        while (k < sizeof(names) / sizeof(names[0]) && strcmp(names[k].name, list[i]) != 0)
            k++;
        if (k == sizeof(names) / sizeof(names[0])) {
            buf_printf(err,
                       "%s: %s: unknown option '%s' (known: noanonymous, noplaintext, noactive, "
                       "nodictionary, mutual_auth, forward_secrecy)",
                       config_origin(view, param), param, list[i]);
            return -1;
        }
        *out |= names[k].flag;
    }
    return 0;
}

int auth_sasl_settings_load(struct auth_sasl_settings *st, const struct config *view, buf_t *err)
{
    const char *host = config_str(view, "myhostname");
    const char *realm = config_str(view, "smtpd_sasl_local_domain");

    memset(st, 0, sizeof(*st));
    if (auth_sasl_security_flags(view, "smtpd_sasl_security_options", &st->plain_flags, err) < 0 ||
        auth_sasl_security_flags(view, "smtpd_sasl_tls_security_options", &st->tls_flags, err) < 0)
        return -1;
    if (config_bool(view, "smtpd_tls_auth_only"))
        st->plain_flags |= SASL_SEC_NOPLAINTEXT;
    st->hostname = xstrdup(host[0] != '\0' ? host : "localhost");
    st->realm = realm[0] != '\0' ? xstrdup(realm) : NULL;
    return 0;
}

void auth_sasl_settings_free(struct auth_sasl_settings *st)
{
    free(st->hostname);
    free(st->realm);
    memset(st, 0, sizeof(*st));
}

/* auth_sasl_conn_props - security properties and the TLS layer */
static int auth_sasl_conn_props(sasl_conn_t *conn, const struct auth_sasl_settings *st,
                                unsigned tls_ssf)
{
    sasl_security_properties_t props;
    sasl_ssf_t ssf = tls_ssf;
    int rc;

    memset(&props, 0, sizeof(props));
    props.min_ssf = 0;
    props.max_ssf = 0; /* no SASL security layer: TLS is the one */
    props.maxbufsize = 0;
    props.security_flags = tls_ssf > 0 ? st->tls_flags : st->plain_flags;
    rc = sasl_setprop(conn, SASL_SEC_PROPS, &props);
    if (rc == SASL_OK && tls_ssf > 0)
        rc = sasl_setprop(conn, SASL_SSF_EXTERNAL, &ssf);
    return rc;
}

sasl_conn_t *auth_sasl_conn_new(const struct auth_sasl_settings *st, unsigned tls_ssf,
                                const char *client, buf_t *err)
{
    sasl_conn_t *conn = NULL;
    int rc =
        sasl_server_new(AUTH_SASL_SERVICE, st->hostname, st->realm, NULL, client, NULL, 0, &conn);

    if (rc == SASL_OK)
        rc = auth_sasl_conn_props(conn, st, tls_ssf);
    if (rc != SASL_OK) {
        buf_printf(err, "cannot set up a SASL connection: %s",
                   conn != NULL ? sasl_errdetail(conn) : sasl_errstring(rc, NULL, NULL));
        if (conn != NULL)
            sasl_dispose(&conn);
        return NULL;
    }
    return conn;
}

int auth_sasl_mechanisms(const struct auth_sasl_settings *st, unsigned tls_ssf, buf_t *out,
                         buf_t *err)
{
    sasl_conn_t *conn = auth_sasl_conn_new(st, tls_ssf, NULL, err);
    const char *list = NULL;
    unsigned len = 0;
    int count = 0;
    int rc;

    if (conn == NULL)
        return -1;
    rc = sasl_listmech(conn, NULL, "", " ", "", &list, &len, &count);
    buf_reset(out);
    if (rc == SASL_OK && list != NULL) {
        for (unsigned i = 0; i < len; i++)
            buf_putc(out, (list[i] >= 'a' && list[i] <= 'z') ? list[i] - 'a' + 'A' : list[i]);
    } else if (rc != SASL_NOMECH) {
        buf_printf(err, "cannot list the SASL mechanisms: %s", sasl_errdetail(conn));
        sasl_dispose(&conn);
        return -1;
    }
    sasl_dispose(&conn);
    return 0;
}

enum auth_sasl_status auth_sasl_outcome(int result, buf_t *reason)
{
    buf_reset(reason);
    switch (result) {
    case SASL_OK:
        return AUTH_SASL_OK;
    case SASL_CONTINUE:
        return AUTH_SASL_CONTINUE;
    case SASL_NOMECH:
        buf_puts(reason, "mechanism not available");
        return AUTH_SASL_NOMECH;
    case SASL_ENCRYPT:
    case SASL_TOOWEAK:
        buf_puts(reason, "encryption required");
        return AUTH_SASL_ENCRYPT;
    case SASL_FAIL:
    case SASL_NOMEM:
    case SASL_TRYAGAIN:
    case SASL_UNAVAIL:
    case SASL_NOTINIT:
        buf_puts(reason, sasl_errstring(result, NULL, NULL));
        return AUTH_SASL_TEMPFAIL;
    case SASL_NOUSER: /* never say whether the user exists */
    case SASL_BADAUTH:
        buf_puts(reason, "authentication failure");
        return AUTH_SASL_FAIL;
    default:
        buf_puts(reason, sasl_errstring(result, NULL, NULL));
        return AUTH_SASL_FAIL;
    }
}

int auth_sasl_username(sasl_conn_t *conn, buf_t *out)
{
    const void *name = NULL;

    buf_reset(out);
    if (sasl_getprop(conn, SASL_USERNAME, &name) != SASL_OK || name == NULL ||
        *(const char *)name == '\0')
        return -1;
    auth_sasl_printable(name, strlen(name), AUTH_SASL_TEXT_MAX, out);
    return 0;
}

int auth_sasl_sasldb_check(const struct config *cfg, buf_t *warnings)
{
    const char *db = auth_sasl_sasldb;
    const char *owner = config_str(cfg, "mail_owner");
    struct stat st;

    buf_reset(warnings);
    if (db == NULL || stat(db, &st) < 0)
        return 0;
    if (st.st_mode & S_IROTH)
        buf_printf(warnings,
                   "%s is readable by every user: its passwords are in the clear "
                   "(chown root:%s %s; chmod 640 %s)\n",
                   db, owner, db, db);
    if (access(db, R_OK) < 0)
        buf_printf(warnings,
                   "%s: %s: tern-auth (user %s) cannot check passwords with it "
                   "(chown root:%s %s; chmod 640 %s; every directory above it searchable)\n",
                   db, strerror(errno), owner, owner, db, db);
    return warnings->len > 0 ? -1 : 0;
}
