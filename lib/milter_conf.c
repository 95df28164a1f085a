/*
 * milter_conf - smtpd_milters / non_smtpd_milters: the list of milter
 * sockets with per-milter settings in braces, and the milter_* defaults
 * (see milter.h for the syntax).
 *
 * A host name in inet:/inet6: is resolved here, once, when the list is
 * loaded (at service start, before any session is served), and kept as a
 * numeric address: milter_open never waits for DNS.  A name that does not
 * resolve is a configuration error.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "config.h"
#include "milter.h"

#define MILTER_CONF_SPACE " \t\r\n"
#define MILTER_CONF_SEPARATORS ", \t\r\n"

/* the parameter holding the default macro list of each stage, indexed by
 * enum milter_proto_stage, then the unknown-command stage */
static const char *const milter_conf_macro_params[MILTER_PROTO_STAGES + 1] = {
    "milter_connect_macros",       "milter_helo_macros",
    "milter_mail_macros",          "milter_rcpt_macros",
    "milter_data_macros",          "milter_end_of_data_macros",
    "milter_end_of_header_macros", "milter_unknown_command_macros",
};

void milter_spec_free(struct milter_spec *s)
{
    free(s->name);
    free(s->path);
    free(s->host);
    for (size_t i = 0; i <= MILTER_PROTO_STAGES; i++)
        free(s->macros[i]);
    memset(s, 0, sizeof(*s));
}

/* milter_conf_dup - xstrdup that keeps NULL */
static char *milter_conf_dup(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}

void milter_spec_copy(struct milter_spec *dst, const struct milter_spec *src)
{
    *dst = *src;
    dst->name = milter_conf_dup(src->name);
    dst->path = milter_conf_dup(src->path);
    dst->host = milter_conf_dup(src->host);
    for (size_t i = 0; i <= MILTER_PROTO_STAGES; i++)
        dst->macros[i] = milter_conf_dup(src->macros[i]);
}

void milter_list_free(struct milter_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        milter_spec_free(&l->v[i]);
    free(l->v);
    l->v = NULL;
    l->count = 0;
}

int milter_default_action_parse(const char *s, enum milter_default_action *out)
{
    static const char *const names[] = {"tempfail", "accept", "reject", "quarantine"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum milter_default_action)i;
            return 0;
        }
    }
    return -1;
}

/* milter_conf_defaults - the settings of cfg's milter_* parameters; -1 with
 * why for a bad milter_default_action or milter_protocol */
static int milter_conf_defaults(const struct config *cfg, struct milter_spec *d, buf_t *why)
{
    const char *action = config_str(cfg, "milter_default_action");
    long long version = config_int(cfg, "milter_protocol");

    memset(d, 0, sizeof(*d));
    if (milter_default_action_parse(action, &d->default_action) < 0) {
        buf_printf(why,
                   "milter_default_action = %s: expected tempfail, accept, reject or quarantine",
                   action);
        return -1;
    }
    if (version < MILTER_PROTO_VERSION_MIN || version > MILTER_PROTO_VERSION) {
        buf_printf(why, "milter_protocol = %lld: expected %d to %d", version,
                   MILTER_PROTO_VERSION_MIN, MILTER_PROTO_VERSION);
        return -1;
    }
    d->version = (unsigned)version;
    d->connect_timeout = config_time(cfg, "milter_connect_timeout");
    d->command_timeout = config_time(cfg, "milter_command_timeout");
    d->content_timeout = config_time(cfg, "milter_content_timeout");
    for (size_t i = 0; i <= MILTER_PROTO_STAGES; i++)
        d->macros[i] = (char *)config_str(cfg, milter_conf_macro_params[i]);
    return 0;
}

/* milter_conf_port - a decimal port 1..65535 of len bytes */
static int milter_conf_port(const char *s, size_t len, unsigned *port)
{
    unsigned v = 0;

    if (len == 0 || len > 5)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *port = v;
    return 0;
}

/* milter_conf_resolve - spec->host as a numeric address of its family */
static int milter_conf_resolve(struct milter_spec *spec, buf_t *why)
{
    struct addrinfo hints, *res = NULL;
    char numeric[INET6_ADDRSTRLEN];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = spec->family;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(spec->host, NULL, &hints, &res);
    if (rc != 0 || res == NULL ||
        getnameinfo(res->ai_addr, res->ai_addrlen, numeric, sizeof(numeric), NULL, 0,
                    NI_NUMERICHOST) != 0) {
        buf_printf(why, "cannot resolve %s: %s", spec->host,
                   rc != 0 ? gai_strerror(rc) : "no address");
        if (res != NULL)
            freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    free(spec->host);
    spec->host = xstrndup(numeric, strlen(numeric));
    return 0;
}

/* milter_conf_hostport - "host:port", "[host]:port" or "port@host" */
static int milter_conf_hostport(const char *s, struct milter_spec *spec, buf_t *why)
{
    const char *at = strchr(s, '@'), *colon = strrchr(s, ':');
    const char *host, *port;
    size_t hostlen, portlen;

    if (at != NULL) {
        port = s;
        portlen = (size_t)(at - s);
        host = at + 1;
        hostlen = strlen(host);
    } else if (colon != NULL) {
        host = s;
        hostlen = (size_t)(colon - s);
        port = colon + 1;
        portlen = strlen(port);
    } else {
        buf_printf(why, "no port (host:port or port@host)");
        return -1;
    }
    if (hostlen >= 2 && host[0] == '[' && host[hostlen - 1] == ']') {
        host++;
        hostlen -= 2;
    }
    if (hostlen == 0 || memchr(host, '[', hostlen) != NULL || memchr(host, ']', hostlen) != NULL ||
        memchr(host, '@', hostlen) != NULL ||
        (spec->family == AF_INET && memchr(host, ':', hostlen) != NULL)) {
        buf_printf(why, "bad host (host:port, port@host%s)",
                   spec->family == AF_INET6 ? " or [addr]:port" : "; IPv6 with inet6:");
        return -1;
    }
    if (milter_conf_port(port, portlen, &spec->port) < 0) {
        buf_printf(why, "bad port (1 to 65535)");
        return -1;
    }
    spec->host = xstrndup(host, hostlen);
    return milter_conf_resolve(spec, why);
}

/* milter_conf_socket - the socket part of an item into spec */
static int milter_conf_socket(const char *s, struct milter_spec *spec, buf_t *why)
{
    const char *rest;

    if (strncmp(s, "unix:", 5) == 0 || strncmp(s, "local:", 6) == 0) {
        rest = strchr(s, ':') + 1;
        if (*rest == 0 || strlen(rest) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            buf_printf(why, "socket path empty or too long");
            return -1;
        }
        spec->family = AF_UNIX;
        spec->path = xstrdup(rest);
        spec->name = xstrdup(s);
        return 0;
    }
    spec->name = xstrdup(s);
    if (strncmp(s, "inet:", 5) == 0) {
        spec->family = AF_INET;
        return milter_conf_hostport(s + 5, spec, why);
    }
    if (strncmp(s, "inet6:", 6) == 0) {
        spec->family = AF_INET6;
        return milter_conf_hostport(s + 6, spec, why);
    }
    buf_printf(why, "unknown socket type (unix:, local:, inet: or inet6:)");
    return -1;
}

/* milter_conf_trim - s without leading and trailing white space, in place */
static char *milter_conf_trim(char *s)
{
    size_t len;

    s += strspn(s, MILTER_CONF_SPACE);
    len = strlen(s);
    while (len > 0 && strchr(MILTER_CONF_SPACE, s[len - 1]) != NULL)
        s[--len] = 0;
    return s;
}

/* milter_conf_timeout - a positive time value */
static int milter_conf_timeout(const char *value, long long *out, buf_t *why)
{
    if (config_parse_time(value, out) < 0 || *out <= 0) {
        buf_printf(why, "bad time value \"%s\"", value);
        return -1;
    }
    return 0;
}

/* milter_conf_setting - one "name = value" of a braced item */
static int milter_conf_setting(char *setting, struct milter_spec *spec, buf_t *why)
{
    char *eq = strchr(setting, '='), *name, *value;
    long long version;

    if (eq == NULL) {
        buf_printf(why, "\"%s\": expected name = value", setting);
        return -1;
    }
    *eq = 0;
    name = milter_conf_trim(setting);
    value = milter_conf_trim(eq + 1);
    if (strcmp(name, "default_action") == 0) {
        if (milter_default_action_parse(value, &spec->default_action) == 0)
            return 0;
        buf_printf(why, "default_action = %s: expected tempfail, accept, reject or quarantine",
                   value);
        return -1;
    }
    if (strcmp(name, "connect_timeout") == 0)
        return milter_conf_timeout(value, &spec->connect_timeout, why);
    if (strcmp(name, "command_timeout") == 0)
        return milter_conf_timeout(value, &spec->command_timeout, why);
    if (strcmp(name, "content_timeout") == 0)
        return milter_conf_timeout(value, &spec->content_timeout, why);
    if (strcmp(name, "protocol") == 0) {
        if (config_parse_int(value, &version) == 0 && version >= MILTER_PROTO_VERSION_MIN &&
            version <= MILTER_PROTO_VERSION) {
            spec->version = (unsigned)version;
            return 0;
        }
        buf_printf(why, "protocol = %s: expected %d to %d", value, MILTER_PROTO_VERSION_MIN,
                   MILTER_PROTO_VERSION);
        return -1;
    }
    buf_printf(why,
               "unknown setting \"%s\" (default_action, connect_timeout, command_timeout, "
               "content_timeout, protocol)",
               name);
    return -1;
}

/* milter_conf_braced - "socket, name = value, ..." (the text inside braces) */
static int milter_conf_braced(char *text, struct milter_spec *spec, buf_t *why)
{
    char *next, *part;
    int first = 1;

    for (part = text; part != NULL; part = next) {
        next = strchr(part, ',');
        if (next != NULL)
            *next++ = 0;
        part = milter_conf_trim(part);
        if (first) {
            if (*part == 0) {
                buf_printf(why, "braces without a socket");
                return -1;
            }
            if (milter_conf_socket(part, spec, why) < 0)
                return -1;
            first = 0;
        } else if (*part != 0 && milter_conf_setting(part, spec, why) < 0) {
            return -1;
        }
    }
    return 0;
}

/* milter_conf_item - the next item at *p into spec (a copy of defaults
 * with the item's settings); *p moves past it.  -1 with why ("ITEM:
 * reason") when it is bad. */
static int milter_conf_item(const char **p, const struct milter_spec *defaults,
                            struct milter_spec *spec, buf_t *why)
{
    const char *s = *p;
    size_t len;
    char *text;
    buf_t reason = BUF_INIT;
    int rc;

    milter_spec_copy(spec, defaults);
    if (*s == '{') {
        const char *end = strchr(s, '}');
        len = end != NULL ? (size_t)(end - s) + 1 : strlen(s);
        text = xstrndup(s + 1, len - (end != NULL ? 2 : 1));
        if (end == NULL) {
            buf_set(&reason, "missing '}'");
            rc = -1;
        } else {
            rc = milter_conf_braced(text, spec, &reason);
        }
    } else {
        len = strcspn(s, MILTER_CONF_SEPARATORS "{}");
        text = xstrndup(s, len);
        if (len == 0) {
            buf_printf(&reason, "unexpected '%c'", *s);
            len = 1;
            rc = -1;
        } else {
            rc = milter_conf_socket(text, spec, &reason);
        }
    }
    if (rc < 0)
        buf_printf(why, "%.*s: %s", (int)len, s, buf_cstr(&reason));
    *p = s + len;
    buf_free(&reason);
    free(text);
    return rc;
}

int milter_list_load(const struct config *cfg, const char *param, struct milter_list *out,
                     buf_t *err)
{
    const char *p = config_str(cfg, param);
    struct milter_spec defaults;
    buf_t why = BUF_INIT;

    out->v = NULL;
    out->count = 0;
    if (milter_conf_defaults(cfg, &defaults, &why) < 0)
        goto bad;
    for (;;) {
        struct milter_spec spec;
        p += strspn(p, MILTER_CONF_SEPARATORS);
        if (*p == 0)
            break;
        if (milter_conf_item(&p, &defaults, &spec, &why) < 0) {
            milter_spec_free(&spec);
            goto bad;
        }
        out->v = xrealloc(out->v, (out->count + 1) * sizeof(*out->v));
        out->v[out->count++] = spec;
    }
    return 0;
bad:
    buf_printf(err, "%s: %s: %s", config_origin(cfg, param), param, buf_cstr(&why));
    buf_free(&why);
    milter_list_free(out);
    return -1;
}
