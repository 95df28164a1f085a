/*
 * sendmail_info - sendmail -bv (what tern would do with an address) and
 * -d0.1 (version, compiled-in features, system identity).
 *
 * -bv explains each address with tools/trace.c, which follows the
 * services' own code (lib/route: virtual aliases and transport_maps; local
 * expansion: aliases, .forward).  Output lines are sendmail's:
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
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "privacy.h"
#include "sendmail.h"
#include "trace.h"
#include "tern_build.h"

/* verify_special - a program, file or :include: named directly; 1 printed */
static int verify_special(const char *addr)
{
    if (addr[0] == '|' || (addr[0] == '"' && addr[1] == '|'))
        printf("%s... deliverable: mailer prog, user %s\n", addr, addr);
    else if (addr[0] == '/')
        printf("%s... deliverable: mailer *file*, user %s\n", addr, addr);
    else if (strncasecmp(addr, ":include:", 9) == 0)
        printf("%s... deliverable: mailer *include*, user %s\n", addr, addr + 9);
    else
        return 0;
    return 1;
}

/* verify_permitted - restrictexpand: -bv for root and mail_owner only */
static int verify_permitted(const struct config *cfg)
{
    unsigned flags = 0;
    buf_t err = BUF_INIT;
    struct passwd *owner;

    if (privacy_flags_get(cfg, &flags, &err) < 0) {
        fprintf(stderr, "sendmail: %s\n", buf_cstr(&err));
        buf_free(&err);
        return 0;
    }
    buf_free(&err);
    if (!(flags & PRIVACY_RESTRICTEXPAND) || getuid() == 0)
        return 1;
    owner = getpwnam(config_str(cfg, "mail_owner"));
    if (owner != NULL && owner->pw_uid == getuid())
        return 1;
    fprintf(stderr, "sendmail: Permission denied (real uid not trusted)\n");
    return 0;
}

int sendmail_verify(const struct config *cfg, char *const *addrs, size_t count)
{
    int rc = 0;

    if (!verify_permitted(cfg))
        return EX_NOPERM;

    for (size_t i = 0; i < count; i++) {
        int one;
        if (verify_special(addrs[i]))
            continue;
        if (!sendmail_addr_valid(addrs[i])) {
            printf("%s... Syntax error in mailbox address\n", addrs[i]);
            rc = EX_NOUSER;
            continue;
        }
        fflush(stdout);
        if ((one = trace_verify(cfg, &addrs[i], 1)) != 0 && rc == 0)
            rc = one;
    }
    fflush(stdout);
    return rc;
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
