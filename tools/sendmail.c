/*
 * sendmail - the sendmail-compatible command (also mailq, newaliases,
 * praliases, makemap and postmap, chosen by argv[0]).
 *
 *   sendmail [flags] [recipient ...]     submit a message from stdin (-bm)
 *   mailq = sendmail -bp                 newaliases = sendmail -bi
 *   praliases [name ...]: print the aliases as key:value
 *   makemap TYPE NAME < NAME: build a table (makemap.h)
 *   postmap [type:]FILE: `tern map` under Postfix's name (map.h)
 *
 * See docs/sendmail.1 for every flag.  This program runs with the caller's
 * privileges and never trusts its environment: the config directory comes
 * from sendmail_trust.c, terndrop is run by exec (no shell) with a fixed
 * environment, and every argument is data.  Exit codes are sysexits.h values.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "makemap.h"
#include "queue_list.h"
#include "service.h"
#include "map.h"
#include "qselect.h"
#include "sendmail.h"
#include "trace.h"

#define SENDMAIL_MAX_OVERRIDES 64

struct sendmail_opts {
    int mode; /* the letter after -b */
    int extract, ignore_dots, verbose, queue_run, version;
    const char *queue_arg;
    const char *config_file;
    const char *log_tag;
    const char *overrides[SENDMAIL_MAX_OVERRIDES];
    size_t override_count;
    char *assignments[SENDMAIL_MAX_OVERRIDES]; /* the -O options as "param=value" */
    size_t assignment_count;
    struct submission sub;
};

/* sendmail option names and the tern parameter each maps to ("" = accepted
 * and ignored: tern has no equivalent that applies to one submission) */
static const struct {
    const char *option;
    const char *param;
} sendmail_option_map[] = {
    {"QueueDirectory", "queue_directory"},
    {"MaxMessageSize", "message_size_limit"},
    {"Timeout.queuereturn", "maximal_queue_lifetime"},
    {"Timeout.queuewarn", "delay_warning_time"},
    {"SmtpGreetingMessage", "smtpd_banner"},
    {"MaxHopCount", "hopcount_limit"},
    {"DeliveryMode", ""},
    {"LogLevel", ""},
    {"ErrorMode", ""},
    {"MeToo", ""},
    {"IgnoreDots", ""},
    {NULL, NULL},
};

static void sendmail_usage(const char *why)
{
    fprintf(stderr, "sendmail: %s\n", why);
    fprintf(stderr, "usage: sendmail [-t] [-i] [-f sender] [-F name] [-v] [-N dsn] [-R ret] "
                    "[-V envid] [-C file] [-O option=value] [-L tag] [recipient ...]\n"
                    "       sendmail -bp | -bi | -bs | -bv address ... | -bd [-q<interval>] | -bD\n"
                    "       sendmail -q<interval> | -q[f][!][R|S|I]substr [-v]\n");
    exit(EX_USAGE);
}

/* sendmail_value - the value of an option: the rest of the argument, or
 * the next argument */
static const char *sendmail_value(int argc, char **argv, int *i, const char *rest)
{
    if (*rest)
        return rest;
    if (*i + 1 >= argc)
        sendmail_usage("option requires an argument");
    return argv[++*i];
}

/* sendmail_set_sender - -f addr, -f '<>', -f '' */
static void sendmail_set_sender(struct sendmail_opts *o, const char *v)
{
    buf_t addr = BUF_INIT;
    size_t n = strlen(v);

    if (n >= 2 && v[0] == '<' && v[n - 1] == '>')
        buf_append(&addr, v + 1, n - 2);
    else
        buf_set(&addr, v);
    if (addr.len && !sendmail_addr_valid(buf_cstr(&addr))) {
        fprintf(stderr, "sendmail: bad sender address: %.200s\n", v);
        exit(EX_DATAERR);
    }
    buf_set(&o->sub.sender, buf_cstr(&addr));
    o->sub.sender_set = 1;
    buf_free(&addr);
}

/* sendmail_set_notify - -N never | success,failure,delay */
static void sendmail_set_notify(struct sendmail_opts *o, const char *v)
{
    char *copy = xstrdup(v), *save = NULL;
    buf_t out = BUF_INIT;

    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (strcasecmp(t, "never") && strcasecmp(t, "success") && strcasecmp(t, "failure") &&
            strcasecmp(t, "delay"))
            sendmail_usage("-N takes never or success,failure,delay");
        if (out.len)
            buf_putc(&out, ',');
        for (; *t; t++)
            buf_putc(&out, *t >= 'a' && *t <= 'z' ? *t - 32 : *t);
    }
    if (strstr(buf_cstr(&out), "NEVER") && strchr(buf_cstr(&out), ','))
        sendmail_usage("-N never cannot be combined");
    buf_set(&o->sub.notify, buf_cstr(&out));
    buf_free(&out);
    free(copy);
}

/* sendmail_legacy_o - -oX: sendmail's one-letter options */
static void sendmail_legacy_o(struct sendmail_opts *o, int argc, char **argv, int *i)
{
    const char *arg = argv[*i] + 2;

    switch (*arg) {
    case 'i':
        o->ignore_dots = 1;
        break;
    case 'Q':
        if (o->override_count < SENDMAIL_MAX_OVERRIDES) {
            buf_t b = BUF_INIT;
            buf_printf(&b, "QueueDirectory=%s", sendmail_value(argc, argv, i, arg + 1));
            o->overrides[o->override_count++] = buf_steal(&b);
        }
        break;
    case 'e': /* error mode */
    case 'm': /* me too */
    case 'd': /* delivery mode: the daemon decides */
    case 'L': /* log level */
    case 'o': /* old headers */
    case '7':
    case '8':
        break;
    default:
        fprintf(stderr, "sendmail: option -o%s is not supported\n", arg);
        exit(EX_USAGE);
    }
}

/* sendmail_flag_letters - "-ti", "-oi"-free clusters of simple flags */
static int sendmail_flag_letters(struct sendmail_opts *o, const char *letters)
{
    if (strspn(letters, "tivnmUG") != strlen(letters))
        return -1;
    for (; *letters; letters++) {
        if (*letters == 't')
            o->extract = 1;
        else if (*letters == 'i')
            o->ignore_dots = 1;
        else if (*letters == 'v')
            o->verbose = 1;
    }
    return 0;
}

/* sendmail_option - one option at argv[*i]; value options may consume the next */
static void sendmail_option(struct sendmail_opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *rest = a + 2;

    switch (a[1]) {
    case 'b':
        if (!strchr("mspivdDt", a[2]) || a[2] == 0 || a[3])
            sendmail_usage("unknown -b mode");
        o->mode = a[2];
        return;
    case 'f':
    case 'r':
        sendmail_set_sender(o, sendmail_value(argc, argv, i, rest));
        return;
    case 'F': {
        const char *v = sendmail_value(argc, argv, i, rest);
        if (strlen(v) > SENDMAIL_MAX_FULLNAME)
            sendmail_usage("-F name is too long");
        buf_set(&o->sub.full_name, v);
        return;
    }
    case 'N':
        sendmail_set_notify(o, sendmail_value(argc, argv, i, rest));
        return;
    case 'R': {
        const char *v = sendmail_value(argc, argv, i, rest);
        if (strcasecmp(v, "full") && strcasecmp(v, "hdrs"))
            sendmail_usage("-R takes full or hdrs");
        buf_set(&o->sub.ret, strcasecmp(v, "full") == 0 ? "FULL" : "HDRS");
        return;
    }
    case 'V': {
        const char *v = sendmail_value(argc, argv, i, rest);
        if (strlen(v) > SENDMAIL_MAX_ENVID || !sendmail_addr_valid(v))
            sendmail_usage("-V envid must be at most 100 printable characters");
        buf_set(&o->sub.envid, v);
        return;
    }
    case 'B': {
        const char *v = sendmail_value(argc, argv, i, rest);
        if (strcasecmp(v, "8BITMIME") && strcasecmp(v, "7BIT"))
            sendmail_usage("-B takes 7BIT or 8BITMIME");
        buf_set(&o->sub.body_type, strcasecmp(v, "7BIT") == 0 ? "7BIT" : "8BITMIME");
        return;
    }
    case 'C':
        o->config_file = sendmail_value(argc, argv, i, rest);
        return;
    case 'L': /* the syslog tag (CLI-15): syslog_name for this run */
        o->log_tag = sendmail_value(argc, argv, i, rest);
        if (o->override_count < SENDMAIL_MAX_OVERRIDES) {
            buf_t b = BUF_INIT;
            buf_printf(&b, "syslog_name=%s", o->log_tag);
            o->overrides[o->override_count++] = buf_steal(&b);
        }
        return;
    case 'O':
        if (o->override_count >= SENDMAIL_MAX_OVERRIDES)
            sendmail_usage("too many -O options");
        o->overrides[o->override_count++] = sendmail_value(argc, argv, i, rest);
        return;
    case 'o':
        sendmail_legacy_o(o, argc, argv, i);
        return;
    case 'q':
        o->queue_run = 1;
        o->queue_arg = rest;
        return;
    case 'd':
        if (strncmp(rest, "0", 1) == 0)
            o->version = 1;
        return;
    case 'A': /* -Ac / -Am: one queue serves both */
    case 'h': /* hop count: cleanup counts Received: headers */
        if (a[1] == 'h')
            sendmail_value(argc, argv, i, rest);
        return;
    }
    if (sendmail_flag_letters(o, a + 1) < 0) {
        fprintf(stderr, "sendmail: unknown option %.40s\n", a);
        exit(EX_USAGE);
    }
}

/* sendmail_parse - options, then recipients from the first non-option */
static int sendmail_parse(struct sendmail_opts *o, int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (argv[i][0] != '-' || argv[i][1] == 0)
            break;
        sendmail_option(o, argc, argv, &i);
    }
    return i;
}

/* sendmail_config_dir - from -C FILE (its directory; the file must be
 * tern.conf) or the environment, subject to sendmail_trust.c */
static char *sendmail_config_dir(const struct sendmail_opts *o)
{
    buf_t dir = BUF_INIT, err = BUF_INIT;
    char *out;

    if (o->config_file) {
        const char *slash = strrchr(o->config_file, '/');
        const char *base = slash ? slash + 1 : o->config_file;
        if (strcmp(base, "tern.conf") != 0) {
            fprintf(stderr, "sendmail: -C %s: the configuration file must be named tern.conf\n",
                    o->config_file);
            exit(EX_CONFIG);
        }
        if (slash)
            buf_append(&dir, o->config_file, (size_t)(slash - o->config_file));
        else
            buf_set(&dir, ".");
    }
    out = submit_config_dir(o->config_file ? buf_cstr(&dir) : NULL, &err);
    if (out == NULL) {
        fprintf(stderr, "sendmail: %s\n", buf_cstr(&err));
        exit(EX_NOPERM);
    }
    buf_free(&dir);
    buf_free(&err);
    return out;
}

/* sendmail_override - -O Name=value: a sendmail option name (or an
 * unambiguous prefix) or a tern parameter name */
static void sendmail_override(struct sendmail_opts *o, struct config *cfg, const char *spec,
                              int verbose)
{
    const char *eq = strchr(spec, '=');
    buf_t name = BUF_INIT, err = BUF_INIT;
    const char *param = NULL, *full = NULL;
    int matches = 0;

    if (eq == NULL)
        sendmail_usage("-O takes Name=value");
    buf_append(&name, spec, (size_t)(eq - spec));
    for (int i = 0; sendmail_option_map[i].option; i++)
        if (strncasecmp(sendmail_option_map[i].option, buf_cstr(&name), name.len) == 0) {
            matches++;
            full = sendmail_option_map[i].option;
            param = sendmail_option_map[i].param;
            if (strlen(full) == name.len)
                matches = 1;
            if (strlen(full) == name.len)
                break;
        }
    if (matches == 1 && strcasecmp(full, buf_cstr(&name)) != 0)
        fprintf(stderr, "sendmail: Option %s used as abbreviation for %s\n", buf_cstr(&name), full);
    if (matches != 1 && config_find_param(buf_cstr(&name)))
        param = buf_cstr(&name), matches = 1;
    if (matches != 1 || (param && *param && !config_find_param(param))) {
        fprintf(stderr, "sendmail: option %s is not supported\n", buf_cstr(&name));
        exit(EX_USAGE);
    }
    if (*param == 0) {
        if (verbose)
            fprintf(stderr, "sendmail: option %s ignored: the daemon decides\n", full);
    } else if (config_set(cfg, param, eq + 1, "command line", &err) < 0) {
        fprintf(stderr, "sendmail: %s\n", buf_cstr(&err));
        exit(EX_USAGE);
    } else {
        buf_t assignment = BUF_INIT;
        buf_printf(&assignment, "%s=%s", param, eq + 1);
        o->assignments[o->assignment_count++] = buf_steal(&assignment);
    }
    buf_free(&name);
    buf_free(&err);
}

/* sendmail_identity - the caller's login name and full name (GECOS) */
static void sendmail_identity(struct submission *s)
{
    struct passwd *pw = getpwuid(getuid());
    buf_t user = BUF_INIT;

    if (pw)
        buf_set(&user, pw->pw_name);
    else
        buf_printf(&user, "uid%lu", (unsigned long)getuid());
    if (!s->sender_set)
        buf_set(&s->sender, buf_cstr(&user));
    if (s->full_name.len == 0 && pw && pw->pw_gecos && *pw->pw_gecos) {
        size_t n = strcspn(pw->pw_gecos, ",");
        if (n <= SENDMAIL_MAX_FULLNAME)
            buf_append(&s->full_name, pw->pw_gecos, n);
    }
    buf_free(&user);
}

/* sendmail_q_flag - -q with or without -bd/-bD: a daemon with an
 * interval, or a queue run in the foreground */
static int sendmail_q_flag(const struct sendmail_opts *o, const struct config *cfg, const char *dir)
{
    long long interval = 0;
    const char *selector = "";

    switch (qselect_q_arg(o->queue_arg, &interval, &selector)) {
    case QSELECT_BAD:
        sendmail_usage("-q takes an interval (30m, 1h) or [f][!]R<substr>, S<substr>, I<substr>");
        break;
    case QSELECT_INTERVAL:
        return sendmail_daemon(dir, cfg, o->mode == 'D', interval, o->assignments,
                               o->assignment_count);
    case QSELECT_RUN:
        if (o->mode == 'd' || o->mode == 'D') /* -bd -q: the configured interval */
            break;
        return sendmail_queue_run(dir, selector, o->verbose, o->assignments, o->assignment_count);
    }
    return sendmail_daemon(dir, cfg, o->mode == 'D', 0, o->assignments, o->assignment_count);
}

/* sendmail_list - -bp / mailq: the listing through terndrop -p (showq);
 * while tern is stopped, read from the queue files by whoever may read them
 * (root): submissions waiting in maildrop/ included (MSP-01) */
static int sendmail_list(const struct config *cfg, const char *dir)
{
    char *args[] = {"-p", NULL};
    const char *top = config_str(cfg, "queue_directory");
    buf_t maildrop = BUF_INIT, out = BUF_INIT, err = BUF_INIT;
    int rc;

    buf_printf(&maildrop, "%s/maildrop", top);
    if (service_master_pid(top) > 0 || access(maildrop.data, R_OK | X_OK) < 0) {
        buf_free(&maildrop);
        return sendmail_run_terndrop(dir, args, -1);
    }
    if ((rc = queue_list_print(top, 0, &out, &err)) < 0)
        fprintf(stderr, "sendmail: %s\n", buf_cstr(&err));
    fwrite(out.data ? out.data : "", 1, out.len, stdout);
    buf_free(&maildrop);
    buf_free(&out);
    buf_free(&err);
    return rc < 0 ? EX_OSERR : 0;
}

/* sendmail_deliver - -bm: read, submit, and with -v follow the message */
static int sendmail_deliver(struct sendmail_opts *o, const struct config *cfg, const char *dir)
{
    buf_t qid = BUF_INIT;
    int rc;

    if (o->sub.rcpt_count == 0 && !o->extract) {
        fprintf(stderr, "sendmail: Recipient names must be specified\n");
        return EX_USAGE;
    }
    if ((rc = sendmail_read_message(&o->sub, cfg, o->ignore_dots, o->extract)) != 0)
        return rc;
    if (o->sub.rcpt_count == 0) {
        fprintf(stderr, "sendmail: No recipient addresses found in header\n");
        return EX_USAGE;
    }
    if (o->verbose)
        printf("sendmail: submitting %zu byte(s) for %zu recipient(s) from <%s> via terndrop\n",
               o->sub.content.len, o->sub.rcpt_count, buf_cstr(&o->sub.sender));
    o->sub.leave_pickup = o->verbose;
    rc = sendmail_submit(&o->sub, dir, &qid);
    if (rc != 0) {
        fprintf(stderr, "sendmail: the message was not queued (terndrop exit %d)\n", rc);
        log_warn("submission by uid %lu failed: terndrop exit %d", (unsigned long)getuid(), rc);
    } else if (o->verbose) {
        printf("%s: queued in maildrop\n", buf_cstr(&qid));
        sendmail_verbose_delivery(dir, buf_cstr(&qid));
    }
    buf_free(&qid);
    return rc;
}

/* sendmail_run - the chosen mode */
static int sendmail_run(struct sendmail_opts *o, struct config *cfg, const char *dir, int argc,
                        char **argv)
{
    if (o->version)
        sendmail_print_identity(cfg);
    if (o->queue_run)
        return sendmail_q_flag(o, cfg, dir);
    switch (o->mode) {
    case 'p':
        return sendmail_list(cfg, dir);
    case 'i':
        return tern_map_newaliases(cfg) == 0 ? 0 : EX_SOFTWARE;
    case 'a':
        return tern_map_praliases(cfg, argc, argv);
    case 'v':
        if (argc == 0) {
            fprintf(stderr, "sendmail: Recipient names must be specified\n");
            return EX_USAGE;
        }
        return sendmail_verify(cfg, argv, (size_t)argc);
    case 'd':
    case 'D':
        return sendmail_daemon(dir, cfg, o->mode == 'D', 0, o->assignments, o->assignment_count);
    case 't':
        return trace_address_test(cfg);
    case 's':
        return sendmail_smtp_session(cfg, dir, &o->sub);
    }
    for (int i = 0; i < argc; i++) {
        buf_t err = BUF_INIT;
        if (sendmail_addr_list(argv[i], &o->sub, &err) < 0) {
            fprintf(stderr, "sendmail: %s\n", buf_cstr(&err));
            return EX_DATAERR;
        }
        buf_free(&err);
    }
    return sendmail_deliver(o, cfg, dir);
}

int main(int argc, char **argv)
{
    struct sendmail_opts o;
    const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    struct config *cfg;
    buf_t err = BUF_INIT;
    char *dir;
    int first, rc;

    if (strcmp(prog, "makemap") == 0 || strcmp(prog, "postmap") == 0) {
        log_init(prog, LOG_TARGET_STDERR, NULL); /* table warnings go to the caller */
        return strcmp(prog, "makemap") == 0 ? tern_makemap_main(argc, argv)
                                            : tern_map_postmap(argc, argv);
    }
    memset(&o, 0, sizeof(o));
    submission_init(&o.sub);
    o.mode = strcmp(prog, "mailq") == 0        ? 'p'
             : strcmp(prog, "newaliases") == 0 ? 'i'
             : strcmp(prog, "praliases") == 0  ? 'a'
                                               : 'm';
    first = sendmail_parse(&o, argc, argv);
    log_init(o.log_tag ? o.log_tag : "sendmail", LOG_TARGET_SYSLOG, NULL);
    dir = sendmail_config_dir(&o);
    if (config_load(dir, &cfg, &err) < 0) {
        fprintf(stderr, "sendmail: %s\n", buf_cstr(&err));
        return EX_CONFIG;
    }
    for (size_t i = 0; i < o.override_count; i++)
        sendmail_override(&o, cfg, o.overrides[i], o.verbose);
    sendmail_identity(&o.sub);
    rc = sendmail_run(&o, cfg, dir, argc - first, argv + first);
    submission_free(&o.sub);
    for (size_t i = 0; i < o.assignment_count; i++)
        free(o.assignments[i]);
    config_free(cfg);
    free(dir);
    buf_free(&err);
    return rc;
}
