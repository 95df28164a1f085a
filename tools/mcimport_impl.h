/*
 * mcimport_impl - what the parts of the .mc mapper share (not a public API).
 *
 * mcimport_map.c: the state, report and settings helpers, the dispatch and
 * the finishing of collected settings; mcimport_feature.c: FEATURE(...);
 * mcimport_define.c: define(`conf...') and the other macros.  A handler
 * maps m->it and reports it exactly once (mcimport_set and mcimport_add
 * report for it).
 */
#ifndef TERN_TOOLS_MCIMPORT_IMPL_H
#define TERN_TOOLS_MCIMPORT_IMPL_H

#include "mcimport.h"

struct mcimport_macro {
    char *name;
    char *value;
};

/* the state of one mapping */
struct mcimport_map {
    const struct mcimport_options *opt;
    struct mcimport_result *res;
    const struct mcimport_item *it; /* the item being mapped */
    struct mcimport_macro *macros;  /* the site's own define()s */
    size_t nmacros;
    /* collected, finished after the last item */
    int masquerade; /* the MASQUERADE_AS line */
    int masquerade_envelope, allmasquerade;
    int daemon_options_line, no_default_msa, milters_line;
    int relay_file_seen;   /* RELAY_DOMAIN_FILE or confCR_FILE replaced the default file */
    size_t nreport_before; /* report lines before the current item */
};

/* a macro (or FEATURE) that sets nothing: its verdict and why */
struct mcimport_fixed {
    const char *name;
    enum mcimport_verdict verdict;
    const char *why;
};

/* mcimport_report_fixed - report name's entry of table; -1 if none */
int mcimport_report_fixed(struct mcimport_map *m, const struct mcimport_fixed *table,
                          const char *name);
/* mcimport_report - one report line for the current item */
void mcimport_report(struct mcimport_map *m, enum mcimport_verdict verdict, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* mcimport_find - the setting name, or NULL */
struct mcimport_setting *mcimport_find(struct mcimport_result *res, const char *name);
/* mcimport_put_at - name = value from .mc line, not reported */
void mcimport_put_at(struct mcimport_map *m, const char *name, const char *value, int line);
/* mcimport_put - name = value from the current item, not reported */
void mcimport_put(struct mcimport_map *m, const char *name, const char *value);
/* mcimport_set - name = value, reported as mapped */
void mcimport_set(struct mcimport_map *m, const char *name, const char *value);
/* mcimport_add - item appended to the list name (from tern's default when
 * from_default and not set yet), reported as mapped */
void mcimport_add(struct mcimport_map *m, const char *name, const char *item, int from_default);
/* mcimport_one_line - line breaks and tabs (from a .mc argument) as spaces:
 * a value, a table line and a report line are one line each */
void mcimport_one_line(buf_t *text);
/* mcimport_arg - argument i of it, or "" */
const char *mcimport_arg(const struct mcimport_item *it, size_t i);
/* mcimport_expand - value with the site's define()d words replaced */
void mcimport_expand(const struct mcimport_map *m, const char *value, buf_t *out, int depth);
/* mcimport_path - a path: macros expanded, // collapsed, /etc/mail -> mail_dir */
void mcimport_path(const struct mcimport_map *m, const char *value, buf_t *out);
/* mcimport_words - split on commas and white space; free with mcimport_words_free */
size_t mcimport_words(const char *s, char ***out);
void mcimport_words_free(char **w, size_t n);
/* mcimport_table - a sendmail map spec as [optional:]TYPE:PATH in spec, and
 * its `tern map` command; -1 (reported) for a type tern cannot read */
int mcimport_table(struct mcimport_map *m, const char *arg, const char *deflt, int aliases,
                   buf_t *spec);
/* mcimport_map_table - argument i's map spec to param (reported) */
void mcimport_map_table(struct mcimport_map *m, size_t i, const char *deflt, const char *param);
/* mcimport_is_number - only digits, at least one */
int mcimport_is_number(const char *s);
/* mcimport_time - a sendmail time value, OCR "lm" read as "1m" */
void mcimport_time(const char *s, buf_t *out);

/* mcimport_feature - FEATURE(name, ...) */
void mcimport_feature(struct mcimport_map *m);
/* mcimport_define - define(`name', `value') */
void mcimport_define(struct mcimport_map *m);
/* mcimport_macro_call - every other macro; 0 when it knew the name */
int mcimport_macro_call(struct mcimport_map *m);
/* mcimport_cf_line - a raw .cf line after LOCAL_CONFIG */
void mcimport_cf_line(struct mcimport_map *m);

#endif
