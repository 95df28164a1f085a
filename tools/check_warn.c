/*
 * check_warn - the warnings of `tern check` (see check_warn.h).
 *
 * Thresholds: a mynetworks entry shorter than /8 (IPv4) or /32 (IPv6) is
 * "open"; a table file or its directory writable by others, or by a group
 * other than root's and mail_owner's, can be changed by someone who then
 * decides routing, relaying or aliases; a private key must be root's; a
 * client password table must not be readable by every user.  A listener is
 * Internet-facing unless every address it binds is loopback.
 */
#include <arpa/inet.h>
#include <libgen.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "check_warn.h"
#include "config.h"
#include "netaddr.h"
#include "privs.h"
#include "table.h"

void check_warn(const char *origin, const char *fmt, ...)
{
    va_list ap;

    printf("tern: warning: %s: ", origin);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

/* check_warn_mynetworks - entries that cover much of the Internet */
static int check_warn_mynetworks(const struct config *cfg)
{
    size_t n;
    char *const *nets = config_list(cfg, "mynetworks", &n);
    int count = 0;

    for (size_t i = 0; i < n; i++) {
        struct netaddr_net net;
        int min = CHECK_WARN_MIN_PREFIX_V4;
        if (netaddr_parse_net(nets[i], &net) < 0)
            continue; /* an error, reported by tern check */
        if (net.family == AF_INET6)
            min = CHECK_WARN_MIN_PREFIX_V6;
        if (net.prefix >= min)
            continue;
        check_warn(config_origin(cfg, "mynetworks"),
                   "mynetworks = %s: /%d is wider than a /%d: every client in it may relay to "
                   "any domain (an open relay); list only your own networks",
                   nets[i], net.prefix, min);
        count++;
    }
    return count;
}

/* check_warn_writable - one file or directory others may change */
static int check_warn_writable(const char *origin, const char *param, const char *path,
                               gid_t owner_gid)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return 0; /* a missing table is tern check's problem, not a warning */
    if (st.st_mode & S_IWOTH) {
        check_warn(origin,
                   "%s: %s is world-writable (mode %04o): anyone can change the table; "
                   "chmod o-w %s",
                   param, path, (unsigned)(st.st_mode & 07777), path);
        return 1;
    }
    if ((st.st_mode & S_IWGRP) && st.st_gid != 0 && st.st_gid != owner_gid) {
        check_warn(origin,
                   "%s: %s is writable by group %ld: its members can change the table; "
                   "chmod g-w %s",
                   param, path, (long)st.st_gid, path);
        return 1;
    }
    return 0;
}

/* check_warn_secret - a client password table every user may read */
static int check_warn_secret(const char *origin, const char *param, const char *path)
{
    struct stat st;

    if (stat(path, &st) < 0 || !(st.st_mode & S_IROTH))
        return 0;
    check_warn(origin,
               "%s: %s is readable by every user: its passwords are in the clear; "
               "chmod o-r %s (and chown root:root, mode 600)",
               param, path, path);
    return 1;
}

/* check_warn_first - 1 the first time item is seen ("\nA\nB\n" in seen) */
static int check_warn_first(buf_t *seen, const char *item)
{
    buf_t key = BUF_INIT;
    int first;

    buf_printf(&key, "\n%s\n", item);
    first = strstr(buf_cstr(seen), buf_cstr(&key)) == NULL;
    if (first)
        buf_append(seen, key.data + 1, key.len - 1);
    buf_free(&key);
    return first;
}

/* check_warn_table_file - the file, and its directory, of one table once */
static int check_warn_table_file(const struct config *cfg, const char *param, const char *path,
                                 gid_t owner_gid, buf_t *seen)
{
    const char *origin = config_origin(cfg, param);
    char dir[4096];
    int count = 0;

    if (!check_warn_first(seen, path))
        return 0;
    count += check_warn_writable(origin, param, path, owner_gid);
    snprintf(dir, sizeof(dir), "%s", path);
    const char *parent = dirname(dir);
    if (check_warn_first(seen, parent))
        count += check_warn_writable(origin, param, parent, owner_gid);
    if (strcmp(param, "smtp_sasl_password_maps") == 0)
        count += check_warn_secret(origin, param, path);
    return count;
}

/* check_warn_tables - every table any list parameter names */
static int check_warn_tables(const struct config *cfg, gid_t owner_gid)
{
    buf_t seen = BUF_INIT, type = BUF_INIT, file = BUF_INIT;
    int count = 0;

    buf_puts(&seen, "\n");
    for (const struct param_def *p = param_table; p->name != NULL; p++) {
        if (p->type != PARAM_LIST)
            continue;
        for (char *const *item = config_list(cfg, p->name, NULL); *item != NULL; item++) {
            const char *name;
            int optional;
            buf_reset(&type);
            buf_reset(&file);
            if (table_spec_split(*item, &type, &name, &optional) < 0 || name[0] != '/')
                continue; /* not a table, or not a file (inline:, static:, unix:) */
            count += check_warn_table_file(cfg, p->name, name, owner_gid, &seen);
            if (table_file_path(buf_cstr(&type), name, &file) == 0)
                count += check_warn_table_file(cfg, p->name, buf_cstr(&file), owner_gid, &seen);
        }
    }
    buf_free(&seen);
    buf_free(&type);
    buf_free(&file);
    return count;
}

/* check_warn_key - a private key that is not root's (group or other
 * access to smtpd's keys is an error of check_tls already) */
static int check_warn_key(const struct config *view, const char *param, int check_mode)
{
    const char *path = config_str(view, param);
    struct stat st;

    if (*path == '\0' || stat(path, &st) < 0)
        return 0;
    if (st.st_uid != 0) {
        check_warn(config_origin(view, param),
                   "%s %s is owned by uid %ld, not root: that user can read and replace the "
                   "key; chown root:root %s",
                   param, path, (long)st.st_uid, path);
        return 1;
    }
    if (check_mode && (st.st_mode & 077)) {
        check_warn(config_origin(view, param),
                   "%s %s: mode %04o: a private key must not be readable by group or others; "
                   "chmod 600 %s",
                   param, path, (unsigned)(st.st_mode & 07777), path);
        return 1;
    }
    return 0;
}

/* check_warn_internet_facing - 1 unless every address of the listener is
 * loopback */
static int check_warn_internet_facing(const struct config *cfg, const struct listener_def *l)
{
    for (char *const *a = config_list(cfg, l->param, NULL); *a != NULL; a++) {
        char host[256];
        int port, bracketed;
        struct sockaddr_storage ss;
        if (netaddr_parse_hostport(*a, host, sizeof(host), &port, 25, &bracketed) < 0)
            continue;
        if (strcmp(host, "localhost") == 0)
            continue;
        if (*host == '\0' || netaddr_parse_addr(host, &ss) < 0)
            return 1; /* every address, or a name */
        if (ss.ss_family == AF_INET &&
            (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127)
            continue;
        if (ss.ss_family == AF_INET6 &&
            IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr))
            continue;
        return 1;
    }
    return 0;
}

/* check_warn_greet_pause - a pause no access entry can lift */
static int check_warn_greet_pause(const struct config *view, const char *listener)
{
    const char *pause = config_str(view, "smtpd_greet_pause");

    if (strpbrk(pause, "123456789") == NULL || *config_list(view, "access_maps", NULL) != NULL)
        return 0;
    check_warn(config_origin(view, "smtpd_greet_pause"),
               "listener %s: smtpd_greet_pause = %s with access_maps empty: no GreetPause: "
               "entry can exempt a known client outside mynetworks (sendmail's greet_pause "
               "without access_db); set access_maps",
               listener, pause);
    return 1;
}

/* check_warn_auth_cleartext - AUTH before STARTTLS on the Internet */
static int check_warn_auth_cleartext(const struct config *cfg, const struct config *view,
                                     const struct listener_def *l)
{
    if (!config_bool(view, "smtpd_sasl_auth_enable") || config_bool(view, "smtpd_tls_auth_only") ||
        config_bool(view, "smtpd_tls_wrappermode") ||
        strcmp(config_str(view, "smtpd_tls_security_level"), "encrypt") == 0 ||
        !check_warn_internet_facing(cfg, l))
        return 0; /* at "encrypt" smtpd refuses AUTH before STARTTLS */
    check_warn(config_origin(view, "smtpd_tls_auth_only"),
               "listener %s: smtpd_tls_auth_only = no on an Internet-facing listener: "
               "passwords may cross the network in the clear; set smtpd_tls_auth_only = yes",
               l->name);
    return 1;
}

/* check_warn_listeners - per listener in use: keys, greet pause, AUTH */
static int check_warn_listeners(const struct config *cfg)
{
    int count = 0;
    buf_t seen = BUF_INIT;

    buf_puts(&seen, "\n");
    for (const struct listener_def *l = listener_table; l->name != NULL; l++) {
        buf_t err = BUF_INIT;
        struct config *view;
        if (*config_list(cfg, l->param, NULL) == NULL ||
            (view = config_listener(cfg, l->name, &err)) == NULL) {
            buf_free(&err);
            continue; /* off, or an error reported elsewhere */
        }
        if (check_warn_first(&seen, config_str(view, "smtpd_tls_key_file")))
            count += check_warn_key(view, "smtpd_tls_key_file", 0);
        count += check_warn_greet_pause(view, l->name);
        count += check_warn_auth_cleartext(cfg, view, l);
        config_free(view);
        buf_free(&err);
    }
    buf_free(&seen);
    return count;
}

int check_warnings(const struct config *cfg)
{
    uid_t uid;
    gid_t gid = 0;

    if (privs_lookup(config_str(cfg, "mail_owner"), &uid, &gid) < 0)
        gid = 0;
    return check_warn_mynetworks(cfg) + check_warn_tables(cfg, gid) + check_warn_listeners(cfg) +
           check_warn_key(cfg, "smtp_tls_key_file", 1);
}
