/*
 * config - tern.conf and the one parameter table.
 *
 * Every parameter is declared once in params.c (name, type, default, help).
 * That table drives parsing, validation, `tern conf -d` and tern.conf(5).
 *
 * File syntax (DESIGN §5): "name = value" lines; '#' starts a comment line;
 * a line that starts with white space continues the previous value; $name and
 * ${name} expand to another parameter's value (expanded at lookup, so order in
 * the file does not matter; loops are an error).  Units: time values take
 * s/m/h/d/w (default s), size values take k/m/g (default bytes, powers of 1024).
 * Lists are separated by commas and/or white space.
 *
 * An unknown name or a bad value is an error "file:line: message"; config_load
 * then returns -1 and the daemon refuses to start.
 *
 * Getters take the parameter name; asking for a name that is not in the table,
 * or with the wrong type, is a programming error (log_panic).  Values are valid
 * after a successful config_load: typed getters never fail.
 */
#ifndef TERN_CONFIG_H
#define TERN_CONFIG_H

#include <stddef.h>
#include "buf.h"

enum param_type { PARAM_STR, PARAM_INT, PARAM_BOOL, PARAM_TIME, PARAM_SIZE, PARAM_LIST };

struct param_def {
    const char *name;
    enum param_type type;
    const char *default_value; /* may contain $name; "" for empty */
    const char *help;          /* one line */
};

/* the table, terminated by a NULL name */
extern const struct param_def param_table[];

/*
 * Listeners (DESIGN §10): smtpd_listen, submission_listen, smtps_listen.
 * Any smtpd_* parameter can be set for one listener as "LISTENER.name =
 * value".  A listener's view of the config is: the file's global values,
 * then the listener's built-in defaults (like Postfix's master.cf -o lines:
 * they win over global values), then the file's LISTENER.name lines.
 */
struct listener_def {
    const char *name;        /* "submission" */
    const char *param;       /* "submission_listen" */
    const char *defaults[6]; /* "name=value", NULL-terminated */
};

/* the listeners, terminated by a NULL name (params.c) */
extern const struct listener_def listener_table[];
/* config_listener_find - the listener named name, or NULL */
const struct listener_def *config_listener_find(const char *name);
/* config_listener - a new config: cfg as listener sees it (see above);
 * NULL with "file:line: ..." in err on a bad value */
struct config *config_listener(const struct config *cfg, const char *listener, buf_t *err);
/* config_listener_name - the listener of a view, or NULL for the global config */
const char *config_listener_name(const struct config *cfg);
/* the file's "LISTENER.name = value" lines */
size_t config_override_count(const struct config *cfg);
void config_override_get(const struct config *cfg, size_t i, const char **listener,
                         const char **name, const char **raw);

struct config;

/* config_default_dir - -c DIR, else $TERN_CONFIG_DIR, else /etc/tern */
const char *config_default_dir(const char *arg);
/* config_load - read DIR/tern.conf; on error fill err with "file:line: ..." */
int config_load(const char *dir, struct config **out, buf_t *err);
/* config_load_overrides - config_load, then count "name=value" assignments
 * (tern start -o, the master's -o to its services) win over the file */
int config_load_overrides(const char *dir, char *const *assignments, size_t count,
                          struct config **out, buf_t *err);
/* config_new_defaults - a config with every parameter at its default */
struct config *config_new_defaults(const char *dir);
/* config_set - set name=value as if read from file (origin for messages) */
int config_set(struct config *cfg, const char *name, const char *value, const char *origin,
               buf_t *err);
/* config_free - release */
void config_free(struct config *cfg);
/* config_dir - the directory the config was read from */
const char *config_dir(const struct config *cfg);
/* config_file - the path of tern.conf */
const char *config_file(const struct config *cfg);
/* config_find_param - the table entry for name, or NULL */
const struct param_def *config_find_param(const char *name);
/* config_is_set - 1 when the file set this parameter explicitly */
int config_is_set(const struct config *cfg, const char *name);
/* config_origin - "file:line" where the parameter was set, or the file
 * name for a default (for messages about a value) */
const char *config_origin(const struct config *cfg, const char *name);
/* config_raw - the unexpanded value (file or default) */
const char *config_raw(const struct config *cfg, const char *name);

/* typed getters; the returned string is owned by cfg, valid until config_free */
const char *config_str(const struct config *cfg, const char *name);
long long config_int(const struct config *cfg, const char *name);
int config_bool(const struct config *cfg, const char *name);
long long config_time(const struct config *cfg, const char *name); /* seconds */
long long config_size(const struct config *cfg, const char *name); /* bytes */
/* config_list - NULL-terminated array of items, owned by cfg; *count if non-NULL */
char *const *config_list(const struct config *cfg, const char *name, size_t *count);

/* parse helpers, shared with command-line flags: 0 ok, -1 bad */
int config_parse_time(const char *s, long long *out);
int config_parse_size(const char *s, long long *out);
int config_parse_bool(const char *s, int *out);
int config_parse_int(const char *s, long long *out);

#endif
