/*
 * sendmail_info - sendmail -bv (what tern would do with an address) and
 * -d0.1 (version, compiled-in features, system identity).
 *
 * -bv follows qmgr's routing: a domain in mydestination (or no domain)
 * goes to the local transport after alias_maps expansion (recursive,
 * duplicates removed); anything else goes to smtp, to relayhost when set,
 * else to the domain.  Output lines are sendmail's:
 *   root... deliverable: mailer local, user root
 *   x@a.test... deliverable: mailer smtp, host [127.0.0.1]:2525, user x@a.test
 *   nosuch... User unknown
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#include "addr.h"
#include "config.h"
#include "sendmail.h"
#include "table.h"
#include "tern_build.h"

#define VERIFY_MAX_DEPTH 10
#define VERIFY_MAX_SEEN 1000

struct verify {
    const struct config *cfg;
    struct table_list aliases;
    int have_aliases;
    char *seen[VERIFY_MAX_SEEN];
    size_t seen_count;
    int unknown;
};

/* verify_seen - 1 when addr was printed already (duplicates removed) */
static int verify_seen(struct verify *v, const char *addr)
{
    for (size_t i = 0; i < v->seen_count; i++)
        if (strcasecmp(v->seen[i], addr) == 0)
            return 1;
    if (v->seen_count < VERIFY_MAX_SEEN)
        v->seen[v->seen_count++] = xstrdup(addr);
    return 0;
}

/* verify_is_local - no domain, or a domain in mydestination */
static int verify_is_local(const struct verify *v, const char *addr)
{
    const char *domain = addr_domain(addr);
    return domain == NULL ||
           addr_domain_in_list(domain, config_list(v->cfg, "mydestination", NULL));
}

static void verify_one(struct verify *v, const char *addr, int depth);

/* verify_expand - an alias value: each element verified in turn */
static void verify_expand(struct verify *v, const char *value, int depth)
{
    char *copy = xstrdup(value), *save = NULL;

    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ' || *item == '\t')
            item++;
        size_t n = strlen(item);
        while (n > 0 && (item[n - 1] == ' ' || item[n - 1] == '\t'))
            item[--n] = 0;
        if (n > 0)
            verify_one(v, item, depth + 1);
    }
    free(copy);
}

/* verify_local - a local address: alias, program, file, or a user */
static void verify_local(struct verify *v, const char *addr, int depth)
{
    buf_t user = BUF_INIT, value = BUF_INIT;

    addr_local_part(addr, &user);
    if (v->have_aliases && depth < VERIFY_MAX_DEPTH &&
        table_list_lookup(&v->aliases, buf_cstr(&user), &value) == TABLE_FOUND &&
        strcasecmp(buf_cstr(&value), buf_cstr(&user)) != 0) {
        verify_expand(v, buf_cstr(&value), depth);
    } else if (getpwnam(buf_cstr(&user)) != NULL) {
        printf("%s... deliverable: mailer local, user %s\n", addr, buf_cstr(&user));
    } else {
        printf("%s... User unknown\n", addr);
        v->unknown = 1;
    }
    buf_free(&user);
    buf_free(&value);
}

static void verify_one(struct verify *v, const char *addr, int depth)
{
    const char *relayhost = config_str(v->cfg, "relayhost");

    if (verify_seen(v, addr))
        return;
    if (addr[0] == '|' || (addr[0] == '"' && addr[1] == '|'))
        printf("%s... deliverable: mailer prog, user %s\n", addr, addr);
    else if (addr[0] == '/')
        printf("%s... deliverable: mailer *file*, user %s\n", addr, addr);
    else if (strncasecmp(addr, ":include:", 9) == 0)
        printf("%s... deliverable: mailer *include*, user %s\n", addr, addr + 9);
    else if (!sendmail_addr_valid(addr)) {
        printf("%s... Syntax error in mailbox address\n", addr);
        v->unknown = 1;
    } else if (verify_is_local(v, addr))
        verify_local(v, addr, depth);
    else
        printf("%s... deliverable: mailer smtp, host %s, user %s\n", addr,
               *relayhost ? relayhost : addr_domain(addr), addr);
}

int sendmail_verify(const struct config *cfg, char *const *addrs, size_t count)
{
    struct verify v;
    size_t n;
    char *const *maps = config_list(cfg, "alias_maps", &n);
    buf_t err = BUF_INIT;

    memset(&v, 0, sizeof(v));
    v.cfg = cfg;
    v.have_aliases = n > 0 && table_list_open(&v.aliases, maps, n, TABLE_ALIASES, &err) == 0;
    for (size_t i = 0; i < count; i++)
        verify_one(&v, addrs[i], 0);
    if (v.have_aliases)
        table_list_close(&v.aliases);
    for (size_t i = 0; i < v.seen_count; i++)
        free(v.seen[i]);
    buf_free(&err);
    fflush(stdout);
    return v.unknown ? EX_NOUSER : 0;
}

void sendmail_print_identity(const struct config *cfg)
{
    const char *j = config_str(cfg, "myhostname");
    const char *dot = strchr(j, '.');
    struct utsname un;

    if (uname(&un) < 0)
        snprintf(un.nodename, sizeof(un.nodename), "%s", "localhost");
    printf("Version %s\n", TERN_VERSION);
    printf(" Compiled with: %s\n", TERN_COMPILED_WITH);
    printf("\n============ SYSTEM IDENTITY (after readcf) ============\n");
    printf("      (short domain name) $w = %.*s\n", dot ? (int)(dot - j) : (int)strlen(j), j);
    printf("  (canonical domain name) $j = %s\n", j);
    printf("         (subdomain name) $m = %s\n", config_str(cfg, "mydomain"));
    printf("              (node name) $k = %s\n", un.nodename);
    printf("========================================================\n\n");
    fflush(stdout);
}
