/*
 * tern - the administrator's front-end (DESIGN §10).
 *
 *   tern [-c DIR] start [-f | -D] [-o name=value]... | stop | reload | status | check
 *   tern [-c DIR] conf [-n | -d | -x] [name ...]
 *   tern [-c DIR] tlsrpt [-d DAYS] [DOMAIN]
 *   tern import-sendmail [-o DIR] [-m MAILDIR] FILE.mc
 *
 * start execs tern-master (in the foreground with -f, logging to stderr; in
 * the foreground logging as configured with -D, for systemd); stop, reload and
 * status signal the master named in queue_directory/pid/master.pid.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth_test.h"
#include "check_policy.h"
#include "check_remote.h"
#include "milter.h"
#include "check_sasl.h"
#include "check_tls.h"
#include "check_warn.h"
#include "config.h"
#include "privacy.h"
#include "log.h"
#include "map.h"
#include "mcimport.h"
#include "netaddr.h"
#include "privs.h"
#include "queue.h"
#include "route.h"
#include "trace.h"
#include "service.h"
#include "table.h"
#include "tern_build.h"
#include "stats_report.h"
#include "tlsrpt_report.h"

#define TERN_STOP_WAIT 30

static const char *conf_dir_arg;

static void tern_usage(FILE *fp)
{
    fprintf(fp,
            "usage: tern [-c CONFIG_DIR] COMMAND [options]\n"
            "commands:\n"
            "  start [-f | -D] [-o name=value]...\n"
            "                     start the mail system (-f: stay in the foreground,\n"
            "                     log to stderr; -D: stay in the foreground, log as\n"
            "                     configured, tell systemd when ready; -o: a\n"
            "                     parameter for this run, over tern.conf)\n"
            "  stop               stop it gracefully\n"
            "  reload             re-read tern.conf (live sessions finish)\n"
            "  status             say whether it runs\n"
            "  check              validate the configuration and the queue; warn about\n"
            "                     dangerous settings (docs/operations.md)\n"
            "  conf [-n|-d|-x] [name ...]\n"
            "                     print parameters: effective (raw), -n set in the file,\n"
            "                     -d defaults, -x expanded\n"
            "  queue [list [-j] | show ID | flush | delete|hold|release|requeue ID...|ALL]\n"
            "                     list and steer the queue (docs/queue-tools.md)\n"
            "  map [options] [type:]FILE\n"
            "                     build, query and dump lookup tables (docs/tables.md)\n"
            "  trace [--from A] [--client IP] [--helo H] [--no-dns] [-j] ADDR...\n"
            "                     explain every decision for each address (docs/routing.md)\n"
            "  auth-test [-l LISTENER] USER\n"
            "                     check USER's password (standard input) as tern-auth would\n"
            "  tlsrpt [-d DAYS] [DOMAIN]\n"
            "                     TLS-RPT session counts per day and policy domain\n"
            "                     (docs/tlsrpt.md)\n"
            "  import-sendmail [-o DIR] [-m MAILDIR] FILE.mc\n"
            "                     convert a sendmail .mc to tern.conf and a report of what\n"
            "                     could not be mapped (docs/migrating.md)\n"
            "  stats [-r]         messages and bytes per transport since the last reset,\n"
            "                     like sendmail's mailstats; -r resets (docs/metrics.md)\n"
            "  version            print the version\n"
            "every command takes -c CONFIG_DIR (default $TERN_CONFIG_DIR, else %s)\n",
            TERN_SYSCONFDIR);
}

/* tern_load - the config, or exit 1 naming file:line */
static struct config *tern_cfg; /* the one config of this command; freed by main */

static struct config *tern_load(void)
{
    buf_t err = BUF_INIT;

    if (tern_cfg == NULL && config_load(config_default_dir(conf_dir_arg), &tern_cfg, &err) < 0) {
        fprintf(stderr, "tern: %s\n", buf_cstr(&err));
        exit(1);
    }
    return tern_cfg;
}

/* tern_master_pid - the running master's pid, or 0 */
static pid_t tern_master_pid(const struct config *cfg)
{
    return service_master_pid(config_str(cfg, "queue_directory"));
}

/* tern_start_args - "tern-master -c DIR [-f | -D] [-o name=value]..." from
 * start's own arguments [-f | -D] [-o name=value]...; -1 on a bad argument */
static int tern_start_args(int argc, char **argv, const char *dir, char **out)
{
    size_t n = 0;

    out[n++] = "tern-master";
    out[n++] = "-c";
    out[n++] = (char *)dir;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "-D") == 0) {
            out[n++] = argv[i];
        } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc && strchr(argv[i + 1], '=') &&
                   n + 2 < 4 + 2 * SERVICE_MAX_OVERRIDES) {
            out[n++] = "-o";
            out[n++] = argv[++i];
        } else {
            return -1;
        }
    }
    out[n] = NULL;
    return 0;
}

static int tern_start(int argc, char **argv)
{
    struct config *cfg = tern_load();
    buf_t path = BUF_INIT;
    char *args[4 + 2 * SERVICE_MAX_OVERRIDES + 1];
    pid_t pid = tern_master_pid(cfg);
    const char *dir = config_default_dir(conf_dir_arg);

    if (tern_start_args(argc, argv, dir, args) < 0) {
        fprintf(stderr, "usage: tern [-c DIR] start [-f | -D] [-o name=value]...\n");
        return 2;
    }
    if (pid > 0) {
        fprintf(stderr, "tern: the mail system is already running (pid %ld)\n", (long)pid);
        return 1;
    }
    service_program_path(cfg, "tern-master", &path);
    execv(path.data, args);
    fprintf(stderr, "tern: cannot run %s: %s\n", path.data, strerror(errno));
    return 1;
}

static int tern_signal(int sig, const char *what)
{
    struct config *cfg = tern_load();
    pid_t pid = tern_master_pid(cfg);

    if (pid == 0) {
        fprintf(stderr, "tern: the mail system is not running\n");
        return 1;
    }
    if (kill(pid, sig) < 0) {
        fprintf(stderr, "tern: cannot signal pid %ld: %s\n", (long)pid, strerror(errno));
        return 1;
    }
    if (sig == SIGTERM) {
        for (int i = 0; i < TERN_STOP_WAIT * 10 &&
                        (service_master_pid(config_str(cfg, "queue_directory")) == pid);
             i++)
            usleep(100000);
        if ((service_master_pid(config_str(cfg, "queue_directory")) == pid)) {
            fprintf(stderr, "tern: pid %ld did not stop within %ds\n", (long)pid, TERN_STOP_WAIT);
            return 1;
        }
    }
    printf("tern: %s\n", what);
    return 0;
}

static int tern_status(void)
{
    struct config *cfg = tern_load();
    pid_t pid = tern_master_pid(cfg);

    if (pid == 0) {
        printf("tern: the mail system is not running\n");
        return 1;
    }
    printf("tern: the mail system is running: pid %ld\n", (long)pid);
    for (const struct listener_def *l = listener_table; l->name != NULL; l++) {
        char *const *addrs = config_list(cfg, l->param, NULL);
        if (*addrs == NULL)
            continue;
        printf("listener %s:", l->name);
        for (; *addrs != NULL; addrs++)
            printf(" %s", *addrs);
        printf("\n");
    }
    return 0;
}

/* tern_conf_listeners - the listeners' built-in defaults (-d) or the
 * file's "LISTENER.name = value" lines */
static void tern_conf_listeners(const struct config *cfg, int mode)
{
    for (const struct listener_def *l = listener_table; mode == 'd' && l->name != NULL; l++)
        for (size_t k = 0; l->defaults[k] != NULL; k++) {
            const char *eq = strchr(l->defaults[k], '=');
            printf("%s.%.*s = %s\n", l->name, (int)(eq - l->defaults[k]), l->defaults[k], eq + 1);
        }
    for (size_t i = 0; mode != 'd' && i < config_override_count(cfg); i++) {
        const char *listener, *name, *raw;
        config_override_get(cfg, i, &listener, &name, &raw);
        printf("%s.%s = %s\n", listener, name, raw);
    }
}

/* tern_conf_print - one "name = value" line */
static void tern_conf_print(const struct config *cfg, const struct param_def *p, int mode)
{
    if (mode == 'd')
        printf("%s = %s\n", p->name, p->default_value);
    else if (mode == 'x')
        printf("%s = %s\n", p->name, config_str(cfg, p->name));
    else if (mode != 'n' || config_is_set(cfg, p->name))
        printf("%s = %s\n", p->name, config_raw(cfg, p->name));
}

/* tern_conf_man - tern.conf(5), generated from the parameter table */
static void tern_conf_man(void)
{
    static const char *types[] = {"string",
                                  "integer",
                                  "boolean (yes/no)",
                                  "time (s, m, h, d, w; default s)",
                                  "size (k, m, g; default bytes)",
                                  "list"};
    printf(".\\\" Generated by `tern conf --man` from lib/params.c; do not edit.\n"
           ".TH TERN.CONF 5 \"\" \"tern %s\" \"File Formats\"\n"
           ".SH NAME\ntern.conf \\- tern mail system configuration\n"
           ".SH DESCRIPTION\n"
           "One \\fIname\\fR = \\fIvalue\\fR per line. A line starting with # is a "
           "comment; a line starting with white space continues the previous value. "
           "$name and ${name} expand to another parameter. Lists are separated by commas "
           "or white space. An unknown name or a bad value is an error that names "
           "file:line, and tern refuses to start.\n"
           ".SH PARAMETERS\n",
           TERN_VERSION);
    /* a line starting with . or ' is a request to roff: \& keeps it text */
    for (const struct param_def *p = param_table; p->name; p++)
        printf(".TP\n.B %s\n%s%s.\n.br\nType: %s. Default: \\fB%s\\fR\n", p->name,
               (p->help[0] == '.' || p->help[0] == '\'') ? "\\&" : "", p->help, types[p->type],
               *p->default_value ? p->default_value : "(empty)");
    printf(".SH LISTENERS\n"
           "Any smtpd_* parameter (and message_size_limit, disable_vrfy_command, "
           "relay_clientcerts) can be set for one listener as \\fILISTENER.name\\fR = "
           "\\fIvalue\\fR, e.g. submission.smtpd_tls_security_level = encrypt. A listener "
           "sees the global value, then its built-in defaults below (they win over global "
           "values, like Postfix's master.cf -o), then its own LISTENER.name lines.\n");
    for (const struct listener_def *l = listener_table; l->name; l++) {
        printf(".TP\n.B %s\nAddresses: %s.", l->name, l->param);
        for (size_t k = 0; l->defaults[k] != NULL; k++)
            printf("%s%s", k ? ", " : " Built-in defaults: ", l->defaults[k]);
        printf("\n");
    }
    printf(".SH SEE ALSO\ntern(1)\n");
}

static int tern_conf(int argc, char **argv)
{
    int mode = 0, rc = 0;
    int i = 1;
    struct config *cfg;

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-n") == 0 || strcmp(argv[i], "-d") == 0 ||
            strcmp(argv[i], "-x") == 0) {
            mode = argv[i][1];
        } else if (strcmp(argv[i], "--man") == 0) {
            tern_conf_man();
            return 0;
        } else {
            tern_usage(stderr);
            return 2;
        }
    }
    if (mode == 'd')
        tern_cfg = config_new_defaults(config_default_dir(conf_dir_arg));
    cfg = tern_load();
    if (i == argc) {
        for (const struct param_def *p = param_table; p->name; p++)
            tern_conf_print(cfg, p, mode);
        tern_conf_listeners(cfg, mode);
        return 0;
    }
    for (; i < argc; i++) {
        const struct param_def *p = config_find_param(argv[i]);
        if (p == NULL) {
            fprintf(stderr, "tern: unknown parameter: %s\n", argv[i]);
            rc = 1;
            continue;
        }
        tern_conf_print(cfg, p, mode);
    }
    return rc;
}

/* tern_check_dir - the directory exists and is owned as expected */
static int tern_check_dir(const char *path, uid_t uid, int quiet_missing)
{
    struct stat st;

    if (lstat(path, &st) < 0) {
        if (quiet_missing && errno == ENOENT)
            return 0;
        printf("%s: %s\n", path, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        printf("%s: not a directory\n", path);
        return 1;
    }
    if (st.st_uid != uid) {
        printf("%s: owned by uid %ld, expected %ld\n", path, (long)st.st_uid, (long)uid);
        return 1;
    }
    return 0;
}

/* tern_check_tables - every table named by these list parameters opens */
static int tern_check_tables(const struct config *cfg)
{
    static const char *params[] = {"alias_maps",
                                   "local_recipient_maps",
                                   "transport_maps",
                                   "virtual_alias_maps",
                                   "canonical_maps",
                                   "sender_canonical_maps",
                                   "recipient_canonical_maps",
                                   "smtp_generic_maps",
                                   "smtp_tls_policy_maps",
                                   "smtp_sasl_password_maps",
                                   NULL};
    int problems = 0;
    buf_t why = BUF_INIT;
    struct route *r = route_open(cfg, &why);

    if (r == NULL) {
        printf("%s\n", buf_cstr(&why));
        problems++;
    }
    route_close(r);
    buf_free(&why);

    for (int i = 0; params[i]; i++) {
        size_t n;
        char *const *specs = config_list(cfg, params[i], &n);
        for (size_t k = 0; k < n; k++) {
            buf_t err = BUF_INIT;
            int flags = 0;
            for (char *const *a = config_list(cfg, "alias_maps", NULL); *a; a++)
                if (strcmp(*a, specs[k]) == 0)
                    flags = TABLE_ALIASES;
            struct table *t = table_open(specs[k], flags, &err);
            if (t == NULL) {
                printf("%s: %s\n", params[i], buf_cstr(&err));
                problems++;
            } else {
                table_close(t);
            }
            buf_free(&err);
        }
    }
    return problems;
}

/* tern_check_milters - smtpd_milters and non_smtpd_milters parse */
static int tern_check_milters(const struct config *cfg)
{
    buf_t err = BUF_INIT;
    int bad = milter_check_config(cfg, &err) < 0;

    if (bad)
        printf("%s\n", buf_cstr(&err));
    buf_free(&err);
    return bad;
}

/* tern_check_privacy - every smtpd_privacy_flags word is known */
static int tern_check_privacy(const struct config *cfg)
{
    unsigned flags = 0;
    buf_t err = BUF_INIT;
    int bad = privacy_flags_get(cfg, &flags, &err) < 0;

    if (bad)
        printf("%s\n", buf_cstr(&err));
    buf_free(&err);
    return bad;
}

/* tern_check - every problem we can find, one per line */
static int tern_check(void)
{
    struct config *cfg = tern_load();
    int problems = 0;
    uid_t uid = geteuid();
    gid_t gid;
    size_t n;
    char *const *nets = config_list(cfg, "mynetworks", &n);
    buf_t path = BUF_INIT;
    static const char *programs[] = {"tern-master", "tern-smtpd", "tern-cleanup", "tern-qmgr",
                                     "tern-smtp",   "tern-lmtp",  "tern-auth",    NULL};

    if (geteuid() == 0 && privs_lookup(config_str(cfg, "mail_owner"), &uid, &gid) < 0) {
        printf("mail_owner = %s: no such user\n", config_str(cfg, "mail_owner"));
        problems++;
    }
    for (size_t i = 0; i < n; i++) {
        struct netaddr_net net;
        if (netaddr_parse_net(nets[i], &net) < 0) {
            printf("mynetworks: bad network '%s'\n", nets[i]);
            problems++;
        }
    }
    for (int i = 0; programs[i]; i++) {
        service_program_path(cfg, programs[i], &path);
        if (access(path.data, X_OK) < 0) {
            printf("%s: %s\n", path.data, strerror(errno));
            problems++;
        }
    }
    const char *subdirs[] = {"incoming", "active", "deferred", "corrupt", "private", NULL};
    for (int i = 0; subdirs[i]; i++) {
        buf_reset(&path);
        buf_printf(&path, "%s/%s", config_str(cfg, "queue_directory"), subdirs[i]);
        problems += tern_check_dir(path.data, uid, 1);
    }
    buf_free(&path);
    problems += tern_check_tables(cfg);
    problems += check_remote(cfg);
    problems += tern_check_privacy(cfg);
    problems += check_tls(cfg);
    problems += check_sasl(cfg);
    problems += check_policy(cfg);
    problems += tern_check_milters(cfg);
    check_warnings(cfg); /* warnings leave the exit status alone */
    if (problems) {
        printf("tern check: %d problem%s\n", problems, problems == 1 ? "" : "s");
        return 1;
    }
    printf("tern check: configuration %s is valid\n", config_file(cfg));
    return 0;
}

static int tern_dispatch(int argc, char **argv);

int main(int argc, char **argv)
{
    int rc;

    table_remote_link(); /* ldap: and pgsql: open directly here (map -q, check, trace) */
    rc = tern_dispatch(argc, argv);
    config_free(tern_cfg);
    return rc;
}

/* tern_dispatch - global options, then the command */
static int tern_dispatch(int argc, char **argv)
{
    int i = 1;

    log_init("tern", LOG_TARGET_STDERR, NULL);
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            conf_dir_arg = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            tern_usage(stdout);
            return 0;
        } else {
            tern_usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        tern_usage(stderr);
        return 2;
    }
    /* allow "tern COMMAND -c DIR ..." too */
    for (int j = i + 1; j + 1 < argc; j++) {
        if (strcmp(argv[j], "-c") == 0) {
            conf_dir_arg = argv[j + 1];
            memmove(&argv[j], &argv[j + 2], (size_t)(argc - j - 2) * sizeof(char *));
            argc -= 2;
            break;
        }
    }
    const char *cmd = argv[i];
    argc -= i;
    argv += i;
    if (strcmp(cmd, "start") == 0)
        return tern_start(argc, argv);
    if (strcmp(cmd, "stop") == 0)
        return tern_signal(SIGTERM, "the mail system is stopped");
    if (strcmp(cmd, "reload") == 0)
        return tern_signal(SIGHUP, "reloading the configuration");
    if (strcmp(cmd, "status") == 0)
        return tern_status();
    if (strcmp(cmd, "conf") == 0)
        return tern_conf(argc, argv);
    if (strcmp(cmd, "queue") == 0)
        return tern_queue_main(argc, argv, conf_dir_arg);
    if (strcmp(cmd, "check") == 0)
        return tern_check();
    if (strcmp(cmd, "map") == 0)
        return tern_map_main(argc, argv, conf_dir_arg);
    if (strcmp(cmd, "trace") == 0)
        return tern_trace_main(argc, argv, tern_load());
    if (strcmp(cmd, "auth-test") == 0)
        return tern_auth_test_main(argc, argv, tern_load());
    if (strcmp(cmd, "tlsrpt") == 0)
        return tern_tlsrpt_main(argc, argv, tern_load());
    if (strcmp(cmd, "import-sendmail") == 0)
        return tern_import_sendmail_main(argc, argv);
    if (strcmp(cmd, "stats") == 0)
        return tern_stats_main(argc, argv, tern_load());
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("tern %s\n", TERN_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0) {
        tern_usage(stdout);
        return 0;
    }
    fprintf(stderr, "tern: unknown command '%s'\n", cmd);
    tern_usage(stderr);
    return 2;
}
