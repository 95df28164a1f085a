/*
 * config - tern.conf parsing, expansion and typed access (see config.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "tern_build.h"

#define CONFIG_MAX_EXPAND_DEPTH 20
#define CONFIG_MAX_LINE (64 * 1024)
#define CONFIG_MAX_VALUE (64 * 1024)

struct config_entry {
    char *raw;    /* from file or default */
    char *origin; /* "file:line" or NULL for defaults */
    int set;      /* given in the file */
    char *value;  /* expanded */
    char **list;  /* PARAM_LIST items, NULL-terminated */
    size_t list_count;
    long long number; /* INT, BOOL, TIME, SIZE */
};

/* "LISTENER.name = value" from the file */
struct config_override {
    char *listener;
    long index; /* into param_table */
    char *raw;
    char *origin;
};

struct config {
    char *dir;
    char *file;
    size_t count;
    struct config_entry *entries;
    struct config_override *overrides;
    size_t override_count;
    char *listener; /* the listener this is the view of, or NULL */
};

const char *config_default_dir(const char *arg)
{
    const char *env;

    if (arg && *arg)
        return arg;
    env = getenv("TERN_CONFIG_DIR");
    if (env && *env)
        return env;
    return TERN_SYSCONFDIR;
}

/* config_index - position of name in param_table, or -1 */
static long config_index(const char *name)
{
    for (long i = 0; param_table[i].name; i++)
        if (strcmp(param_table[i].name, name) == 0)
            return i;
    return -1;
}

const struct param_def *config_find_param(const char *name)
{
    long i = config_index(name);
    return i < 0 ? NULL : &param_table[i];
}

/* config_entry_of - the entry for name; unknown names are a programming error */
static struct config_entry *config_entry_of(const struct config *cfg, const char *name,
                                            enum param_type type)
{
    long i = config_index(name);
    if (i < 0)
        log_panic("config: no parameter named %s", name);
    if ((int)type >= 0 && param_table[i].type != type)
        log_panic("config: parameter %s read with the wrong type", name);
    return &cfg->entries[i];
}

struct config *config_new_defaults(const char *dir)
{
    struct config *cfg = xcalloc(1, sizeof(*cfg));
    buf_t path = BUF_INIT;

    while (param_table[cfg->count].name)
        cfg->count++;
    cfg->entries = xcalloc(cfg->count, sizeof(*cfg->entries));
    for (size_t i = 0; i < cfg->count; i++)
        cfg->entries[i].raw = xstrdup(param_table[i].default_value);
    cfg->dir = xstrdup(dir);
    buf_printf(&path, "%s/tern.conf", dir);
    cfg->file = buf_steal(&path);
    return cfg;
}

static void config_entry_clear_derived(struct config_entry *e)
{
    free(e->value);
    e->value = NULL;
    if (e->list) {
        for (size_t j = 0; e->list[j]; j++)
            free(e->list[j]);
        free(e->list);
    }
    e->list = NULL;
    e->list_count = 0;
}

void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->count; i++) {
        config_entry_clear_derived(&cfg->entries[i]);
        free(cfg->entries[i].raw);
        free(cfg->entries[i].origin);
    }
    free(cfg->entries);
    for (size_t i = 0; i < cfg->override_count; i++) {
        free(cfg->overrides[i].listener);
        free(cfg->overrides[i].raw);
        free(cfg->overrides[i].origin);
    }
    free(cfg->overrides);
    free(cfg->listener);
    free(cfg->dir);
    free(cfg->file);
    free(cfg);
}

int config_parse_int(const char *s, long long *out)
{
    char *end;
    if (!isdigit((unsigned char)s[0]) && !(s[0] == '-' && isdigit((unsigned char)s[1])))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno)
        return -1;
    *out = v;
    return 0;
}

int config_parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"yes", "true", "on", "1", NULL};
    static const char *no[] = {"no", "false", "off", "0", NULL};
    for (int i = 0; yes[i]; i++)
        if (strcasecmp(s, yes[i]) == 0)
            return *out = 1, 0;
    for (int i = 0; no[i]; i++)
        if (strcasecmp(s, no[i]) == 0)
            return *out = 0, 0;
    return -1;
}

/* config_parse_unit - number with an optional one-letter unit from units */
static int config_parse_unit(const char *s, const char *units, const long long *mult,
                             long long *out)
{
    char *end;
    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    long long m = mult[0];

    if (end == s || errno || v < 0)
        return -1;
    if (*end) {
        const char *u = strchr(units, tolower((unsigned char)*end));
        if (u == NULL || end[1])
            return -1;
        m = mult[u - units];
    }
    if (v > (1LL << 62) / m)
        return -1;
    *out = v * m;
    return 0;
}

int config_parse_time(const char *s, long long *out)
{
    static const long long mult[] = {1, 1, 60, 3600, 86400, 604800};
    return config_parse_unit(s, " smhdw", mult, out) == 0 && strchr(s, ' ') == NULL ? 0 : -1;
}

int config_parse_size(const char *s, long long *out)
{
    static const long long mult[] = {1, 1, 1024, 1024 * 1024, 1024 * 1024 * 1024};
    return config_parse_unit(s, " bkmg", mult, out) == 0 && strchr(s, ' ') == NULL ? 0 : -1;
}

/* config_expand - expand $name / ${name} / $$ in raw into out */
static int config_expand(const struct config *cfg, const char *raw, buf_t *out, int depth,
                         buf_t *err)
{
    if (depth > CONFIG_MAX_EXPAND_DEPTH) {
        buf_printf(err, "parameter expansion loops (more than %d levels)", CONFIG_MAX_EXPAND_DEPTH);
        return -1;
    }
    for (const char *p = raw; *p; p++) {
        if (out->len > CONFIG_MAX_VALUE) {
            buf_printf(err, "expanded value is longer than %d bytes", CONFIG_MAX_VALUE);
            return -1;
        }
        if (*p != '$') {
            buf_putc(out, *p);
            continue;
        }
        if (p[1] == '$') {
            buf_putc(out, '$');
            p++;
            continue;
        }
        int brace = p[1] == '{';
        const char *s = p + 1 + brace;
        size_t n = 0;
        while (isalnum((unsigned char)s[n]) || s[n] == '_')
            n++;
        if (n == 0 || (brace && s[n] != '}') || n >= 128) {
            buf_putc(out, '$');
            continue;
        }
        char name[128];
        memcpy(name, s, n);
        name[n] = 0;
        long i = config_index(name);
        if (i < 0) { /* not ours: keep literally ($b in a banner) */
            buf_append(out, p, n + 1 + 2 * (size_t)brace);
        } else if (config_expand(cfg, cfg->entries[i].raw, out, depth + 1, err) < 0) {
            return -1;
        }
        p += n + 2 * (size_t)brace;
    }
    return 0;
}

/* config_item_length - one list item: up to a comma or white space, but
 * text inside {braces} stays together (inline:{a=b, c=d}) */
static size_t config_item_length(const char *p)
{
    size_t n = 0;
    int depth = 0;

    for (; p[n]; n++) {
        if (p[n] == '{')
            depth++;
        else if (p[n] == '}' && depth > 0)
            depth--;
        else if (depth == 0 && strchr(", \t\r\n", p[n]))
            break;
    }
    return n;
}

/* config_split_list - split on commas and white space */
static void config_split_list(struct config_entry *e)
{
    size_t cap = 4;
    const char *p = e->value;

    e->list = xcalloc(cap + 1, sizeof(char *));
    e->list_count = 0;
    while (*p) {
        p += strspn(p, ", \t\r\n");
        size_t n = config_item_length(p);
        if (n == 0)
            break;
        if (e->list_count == cap) {
            cap *= 2;
            e->list = xrealloc(e->list, (cap + 1) * sizeof(char *));
        }
        e->list[e->list_count++] = xstrndup(p, n);
        e->list[e->list_count] = NULL;
        p += n;
    }
}

/* list parameters whose "/path" items stand for the names in that file
 * (sendmail's local-host-names, Postfix's mydestination = /file); an
 * "optional:/path" item is such a file that may be missing (sendmail's
 * F{w} -o /path): then it names nothing */
static const char *const config_file_lists[] = {"mydestination", "mynetworks", "relay_domains",
                                                "virtual_alias_domains", NULL};
#define CONFIG_OPTIONAL_FILE "optional:/"

/* config_read_names - the words of a names file: '#' comments, any white
 * space or commas between names; 0 ok, -1 with a message */
static int config_read_names(const char *path, int optional, buf_t *out, buf_t *why)
{
    FILE *fp = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    if (fp == NULL && optional && errno == ENOENT)
        return 0;
    if (fp == NULL) {
        buf_printf(why, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    while ((n = getline(&line, &cap, fp)) >= 0 && out->len <= CONFIG_MAX_VALUE) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        buf_putc(out, ' ');
        buf_puts(out, line);
    }
    free(line);
    fclose(fp);
    if (out->len > CONFIG_MAX_VALUE) {
        buf_printf(why, "%s is longer than %d bytes", path, CONFIG_MAX_VALUE);
        return -1;
    }
    return 0;
}

/* config_expand_files - replace "/path" items by the file's names */
static int config_expand_files(struct config_entry *e, const char *name, buf_t *why)
{
    int wanted = 0;
    buf_t v = BUF_INIT;

    for (int i = 0; config_file_lists[i]; i++)
        wanted |= strcmp(config_file_lists[i], name) == 0;
    if (!wanted)
        return 0;
    for (size_t i = 0; i < e->list_count; i++) {
        const char *item = e->list[i];
        int optional = strncmp(item, CONFIG_OPTIONAL_FILE, strlen(CONFIG_OPTIONAL_FILE)) == 0;
        if (optional)
            item += strlen(CONFIG_OPTIONAL_FILE) - 1;
        buf_putc(&v, ' ');
        if (item[0] == '/') {
            if (config_read_names(item, optional, &v, why) < 0) {
                buf_free(&v);
                return -1;
            }
        } else {
            buf_puts(&v, item);
        }
    }
    config_entry_clear_derived(e);
    e->value = buf_steal(&v);
    config_split_list(e);
    return 0;
}

static const char *config_type_hint(enum param_type t)
{
    switch (t) {
    case PARAM_INT:
        return "expected an integer";
    case PARAM_BOOL:
        return "expected yes or no";
    case PARAM_TIME:
        return "expected a time like 30s, 5m, 1h, 2d, 1w";
    case PARAM_SIZE:
        return "expected a size like 1024, 10k, 10m, 1g";
    default:
        return "bad value";
    }
}

/* config_derive - expand and type-check one entry */
static int config_derive(struct config *cfg, size_t i, buf_t *err)
{
    struct config_entry *e = &cfg->entries[i];
    const struct param_def *d = &param_table[i];
    buf_t v = BUF_INIT;
    buf_t why = BUF_INIT;
    int ok = 0, b;

    config_entry_clear_derived(e);
    if (config_expand(cfg, e->raw, &v, 0, &why) < 0) {
        buf_printf(err, "%s: %s: %s", e->origin ? e->origin : cfg->file, d->name, buf_cstr(&why));
        buf_free(&v);
        buf_free(&why);
        return -1;
    }
    e->value = buf_steal(&v);
    switch (d->type) {
    case PARAM_INT:
        ok = config_parse_int(e->value, &e->number);
        break;
    case PARAM_BOOL:
        ok = config_parse_bool(e->value, &b);
        e->number = b;
        break;
    case PARAM_TIME:
        ok = config_parse_time(e->value, &e->number);
        break;
    case PARAM_SIZE:
        ok = config_parse_size(e->value, &e->number);
        break;
    case PARAM_LIST:
        config_split_list(e);
        if (config_expand_files(e, d->name, &why) < 0) {
            buf_printf(err, "%s: %s: %s", e->origin ? e->origin : cfg->file, d->name,
                       buf_cstr(&why));
            buf_free(&why);
            return -1;
        }
        break;
    case PARAM_STR:
        break;
    }
    buf_free(&why);
    if (ok < 0) {
        buf_printf(err, "%s: bad value '%s' for parameter %s: %s",
                   e->origin ? e->origin : cfg->file, e->value, d->name, config_type_hint(d->type));
        return -1;
    }
    return 0;
}

/* config_system_identity - defaults that come from the host, not the table */
static void config_system_identity(struct config *cfg)
{
    struct config_entry *host = config_entry_of(cfg, "myhostname", PARAM_STR);
    struct config_entry *dom = config_entry_of(cfg, "mydomain", PARAM_STR);
    char name[256];

    if (!host->set) {
        if (gethostname(name, sizeof(name)) != 0 || !*name)
            snprintf(name, sizeof(name), "localhost");
        name[sizeof(name) - 1] = 0;
        buf_t full = BUF_INIT;
        buf_puts(&full, name);
        if (strchr(name, '.') == NULL)
            buf_puts(&full, ".localdomain");
        free(host->raw);
        host->raw = buf_steal(&full);
    }
    if (!dom->set) {
        buf_t v = BUF_INIT, err = BUF_INIT;
        config_expand(cfg, host->raw, &v, 0, &err);
        const char *dot = strchr(buf_cstr(&v), '.');
        free(dom->raw);
        dom->raw = xstrdup(dot && dot[1] ? dot + 1 : "localdomain");
        buf_free(&v);
        buf_free(&err);
    }
}

/* config_finish - compute derived values for every entry */
static int config_finish(struct config *cfg, buf_t *err)
{
    config_system_identity(cfg);
    for (size_t i = 0; i < cfg->count; i++)
        if (config_derive(cfg, i, err) < 0)
            return -1;
    return 0;
}

/* config_listener_find - the listener table entry named name, or NULL */
const struct listener_def *config_listener_find(const char *name)
{
    for (const struct listener_def *l = listener_table; l->name != NULL; l++)
        if (strcmp(l->name, name) == 0)
            return l;
    return NULL;
}

/* config_listener_param - may name be set per listener? */
static int config_listener_param(const char *name)
{
    return strncmp(name, "smtpd_", 6) == 0 || strcmp(name, "message_size_limit") == 0 ||
           strcmp(name, "disable_vrfy_command") == 0 || strcmp(name, "relay_clientcerts") == 0;
}

/* config_listener_shared - smtpd_* parameters that are one setting for
 * every listener: the SASL application (Cyrus is set up once per process),
 * the sender login tables (lib/route opens them once), and what belongs to
 * the worker, not a listener (its address, count, session limit, the
 * ticket key period shared by all its listeners) */
static int config_listener_shared(const char *name)
{
    static const char *shared[] = {"smtpd_sasl_path",
                                   "smtpd_sender_login_maps",
                                   "smtpd_listen",
                                   "smtpd_workers",
                                   "smtpd_client_limit",
                                   "smtpd_tls_session_cache_timeout",
                                   NULL};

    for (size_t i = 0; shared[i] != NULL; i++)
        if (strcmp(name, shared[i]) == 0)
            return 1;
    return 0;
}

/* config_set_override - "LISTENER.name = value" */
static int config_set_override(struct config *cfg, const char *dotted, const char *value,
                               const char *origin, buf_t *err)
{
    const char *dot = strchr(dotted, '.');
    char *listener = xstrndup(dotted, (size_t)(dot - dotted));
    long i = config_index(dot + 1);
    int rc = -1;

    if (config_listener_find(listener) == NULL)
        buf_printf(err, "%s: '%s': no listener named '%s' (listeners: smtpd, submission, smtps)",
                   origin, dotted, listener);
    else if (i < 0)
        buf_printf(err, "%s: unknown parameter '%s'", origin, dot + 1);
    else if (!config_listener_param(dot + 1))
        buf_printf(err, "%s: '%s': only smtpd_* parameters can be set for one listener", origin,
                   dotted);
    else if (config_listener_shared(dot + 1))
        buf_printf(err, "%s: '%s': %s is one setting for every listener (set it without '%s.')",
                   origin, dotted, dot + 1, listener);
    else
        rc = 0;
    if (rc < 0) {
        free(listener);
        return -1;
    }
    for (size_t k = 0; k < cfg->override_count; k++) {
        struct config_override *o = &cfg->overrides[k];
        if (o->index == i && strcmp(o->listener, listener) == 0) {
            free(listener);
            free(o->raw);
            free(o->origin);
            o->raw = xstrdup(value);
            o->origin = xstrdup(origin);
            return 0;
        }
    }
    cfg->overrides = xrealloc(cfg->overrides, (cfg->override_count + 1) * sizeof(*cfg->overrides));
    cfg->overrides[cfg->override_count++] =
        (struct config_override){listener, i, xstrdup(value), xstrdup(origin)};
    return 0;
}

int config_set(struct config *cfg, const char *name, const char *value, const char *origin,
               buf_t *err)
{
    long i;
    struct config_entry *e;

    if (strchr(name, '.') != NULL)
        return config_set_override(cfg, name, value, origin, err);
    i = config_index(name);
    if (i < 0) {
        buf_printf(err, "%s: unknown parameter '%s'", origin, name);
        return -1;
    }
    e = &cfg->entries[i];
    free(e->raw);
    free(e->origin);
    e->raw = xstrdup(value);
    e->origin = xstrdup(origin);
    e->set = 1;
    return 0;
}

/* config_trim - strip leading and trailing white space in place */
static char *config_trim(char *s)
{
    size_t n;
    while (isspace((unsigned char)*s))
        s++;
    n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

/* config_parse_line - one logical "name = value" line */
static int config_parse_line(struct config *cfg, char *line, const char *origin, buf_t *err)
{
    char *eq = strchr(line, '=');
    char *name, *value;

    if (eq == NULL) {
        buf_printf(err, "%s: missing '=' after parameter name", origin);
        return -1;
    }
    *eq = 0;
    name = config_trim(line);
    value = config_trim(eq + 1);
    if (!*name) {
        buf_printf(err, "%s: missing parameter name before '='", origin);
        return -1;
    }
    for (char *p = name; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_' && (*p != '.' || p == name || p[1] == '\0')) {
            buf_printf(err, "%s: bad parameter name '%s'", origin, name);
            return -1;
        }
    }
    return config_set(cfg, name, value, origin, err);
}

/* config_read_file - read lines, joining continuations */
static int config_read_file(struct config *cfg, FILE *fp, buf_t *err)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0, start_line = 0;
    buf_t logical = BUF_INIT, origin = BUF_INIT;
    int have = 0, rc = 0;

    while (rc == 0 && (n = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        if (n > CONFIG_MAX_LINE) {
            buf_printf(err, "%s:%ld: line too long", cfg->file, lineno);
            rc = -1;
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        char *t = line + strspn(line, " \t");
        if (*t == 0 || *t == '#')
            continue;
        if (t != line) { /* continuation */
            if (!have) {
                buf_printf(err, "%s:%ld: continuation line without a parameter before it",
                           cfg->file, lineno);
                rc = -1;
                break;
            }
            buf_putc(&logical, ' ');
            buf_puts(&logical, t);
            continue;
        }
        if (have) {
            buf_reset(&origin);
            buf_printf(&origin, "%s:%ld", cfg->file, start_line);
            rc = config_parse_line(cfg, logical.data, buf_cstr(&origin), err);
        }
        buf_set(&logical, line);
        start_line = lineno;
        have = 1;
    }
    if (rc == 0 && have) {
        buf_reset(&origin);
        buf_printf(&origin, "%s:%ld", cfg->file, start_line);
        rc = config_parse_line(cfg, logical.data, buf_cstr(&origin), err);
    }
    free(line);
    buf_free(&logical);
    buf_free(&origin);
    return rc;
}

int config_load(const char *dir, struct config **out, buf_t *err)
{
    return config_load_overrides(dir, NULL, 0, out, err);
}

/* config_apply_assignments - "name=value" strings from a command line */
static int config_apply_assignments(struct config *cfg, char *const *assignments, size_t count,
                                    buf_t *err)
{
    for (size_t i = 0; i < count; i++) {
        char *copy = xstrdup(assignments[i]);
        int rc = config_parse_line(cfg, copy, "command line -o", err);

        free(copy);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int config_load_overrides(const char *dir, char *const *assignments, size_t count,
                          struct config **out, buf_t *err)
{
    struct config *cfg = config_new_defaults(dir);
    FILE *fp = fopen(cfg->file, "re");

    if (fp == NULL) {
        buf_printf(err, "%s: cannot open: %s", cfg->file, strerror(errno));
        config_free(cfg);
        return -1;
    }
    int rc = config_read_file(cfg, fp, err);
    fclose(fp);
    if (rc == 0)
        rc = config_apply_assignments(cfg, assignments, count, err);
    if (rc == 0)
        rc = config_finish(cfg, err);
    for (const struct listener_def *l = listener_table; rc == 0 && l->name != NULL; l++) {
        struct config *view = config_listener(cfg, l->name, err); /* check the overrides */
        rc = view == NULL ? -1 : 0;
        config_free(view);
    }
    if (rc < 0) {
        config_free(cfg);
        return -1;
    }
    *out = cfg;
    return 0;
}

const char *config_dir(const struct config *cfg)
{
    return cfg->dir;
}

const char *config_file(const struct config *cfg)
{
    return cfg->file;
}

int config_is_set(const struct config *cfg, const char *name)
{
    return config_entry_of(cfg, name, (enum param_type) - 1)->set;
}

const char *config_origin(const struct config *cfg, const char *name)
{
    const struct config_entry *e = config_entry_of(cfg, name, (enum param_type) - 1);
    return e->origin ? e->origin : cfg->file;
}

const char *config_raw(const struct config *cfg, const char *name)
{
    return config_entry_of(cfg, name, (enum param_type) - 1)->raw;
}

/* config_ready - the derived value; computed on demand for default configs */
static struct config_entry *config_ready(const struct config *cfg, const char *name,
                                         enum param_type type)
{
    struct config_entry *e = config_entry_of(cfg, name, type);
    if (e->value == NULL) {
        buf_t err = BUF_INIT;
        if (config_finish((struct config *)cfg, &err) < 0)
            log_panic("config: %s", buf_cstr(&err));
        buf_free(&err);
    }
    return e;
}

const char *config_str(const struct config *cfg, const char *name)
{
    return config_ready(cfg, name, (enum param_type) - 1)->value;
}

long long config_int(const struct config *cfg, const char *name)
{
    return config_ready(cfg, name, PARAM_INT)->number;
}

int config_bool(const struct config *cfg, const char *name)
{
    return (int)config_ready(cfg, name, PARAM_BOOL)->number;
}

long long config_time(const struct config *cfg, const char *name)
{
    return config_ready(cfg, name, PARAM_TIME)->number;
}

long long config_size(const struct config *cfg, const char *name)
{
    return config_ready(cfg, name, PARAM_SIZE)->number;
}

char *const *config_list(const struct config *cfg, const char *name, size_t *count)
{
    struct config_entry *e = config_ready(cfg, name, PARAM_LIST);
    if (count)
        *count = e->list_count;
    return e->list;
}

/* config_listener_apply - one "name=value" of a listener's defaults */
static void config_listener_apply(struct config *view, const char *setting, const char *origin)
{
    const char *eq = strchr(setting, '=');
    char *name = xstrndup(setting, (size_t)(eq - setting));
    struct config_entry *e = config_entry_of(view, name, (enum param_type) - 1);

    free(e->raw);
    free(e->origin);
    e->raw = xstrdup(eq + 1);
    e->origin = xstrdup(origin);
    e->set = 1;
    free(name);
}

struct config *config_listener(const struct config *cfg, const char *listener, buf_t *err)
{
    const struct listener_def *l = config_listener_find(listener);
    struct config *view = xcalloc(1, sizeof(*view));
    buf_t origin = BUF_INIT;

    if (l == NULL)
        log_panic("config_listener: no listener %s", listener);
    view->dir = xstrdup(cfg->dir);
    view->file = xstrdup(cfg->file);
    view->listener = xstrdup(listener);
    view->count = cfg->count;
    view->entries = xcalloc(cfg->count, sizeof(*view->entries));
    for (size_t i = 0; i < cfg->count; i++) {
        view->entries[i].raw = xstrdup(cfg->entries[i].raw);
        view->entries[i].origin = cfg->entries[i].origin ? xstrdup(cfg->entries[i].origin) : NULL;
        view->entries[i].set = cfg->entries[i].set;
    }
    buf_printf(&origin, "the defaults of listener %s", listener);
    for (size_t k = 0; l->defaults[k] != NULL; k++)
        config_listener_apply(view, l->defaults[k], buf_cstr(&origin));
    for (size_t k = 0; k < cfg->override_count; k++) {
        const struct config_override *o = &cfg->overrides[k];
        struct config_entry *e = &view->entries[o->index];
        if (strcmp(o->listener, listener) != 0)
            continue;
        free(e->raw);
        free(e->origin);
        e->raw = xstrdup(o->raw);
        e->origin = xstrdup(o->origin);
        e->set = 1;
    }
    buf_free(&origin);
    if (config_finish(view, err) < 0) {
        config_free(view);
        return NULL;
    }
    return view;
}

const char *config_listener_name(const struct config *cfg)
{
    return cfg->listener;
}

size_t config_override_count(const struct config *cfg)
{
    return cfg->override_count;
}

void config_override_get(const struct config *cfg, size_t i, const char **listener,
                         const char **name, const char **raw)
{
    *listener = cfg->overrides[i].listener;
    *name = param_table[cfg->overrides[i].index].name;
    *raw = cfg->overrides[i].raw;
}
