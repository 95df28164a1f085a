/*
 * mcimport - `tern import-sendmail`: a sendmail .mc file to tern.conf.
 *
 * Two pure stages, bytes in and structures out, so the fuzz target
 * (fuzz/fuzz_mcimport.c) and the unit tests call them directly:
 *
 *   mcimport_parse   (mcimport_m4.c)  a small m4 tokenizer: `quotes' with
 *                    nesting, the OCR form 'x' (a straight quote that opens
 *                    an argument, closed by the next one on the line), dnl
 *                    and dn1, # comments, divert(-1)/divert(0), define() of
 *                    the site's own macros, LOCAL_CONFIG's raw .cf lines.
 *                    Never fails: what it cannot read becomes a text item
 *                    that the mapper reports.
 *   mcimport_map     (mcimport_map.c) each item to tern settings and one
 *                    report line; every item is either mapped, noted (no
 *                    setting needed) or not mapped with the reason.
 *
 * tools/mcimport.c is the command line: it reads the file, runs both stages
 * and writes tern.conf, import-report.txt and the rbl_reply table.  Nothing
 * here trusts the input: every string is copied, every length bounded by
 * the input's.  Memory: mcimport_doc_free / mcimport_result_free.
 */
#ifndef TERN_TOOLS_MCIMPORT_H
#define TERN_TOOLS_MCIMPORT_H

#include <stddef.h>
#include "buf.h"

enum mcimport_item_kind {
    MCIMPORT_CALL,    /* NAME(args) or a bare known macro */
    MCIMPORT_TEXT,    /* text outside any macro on one line */
    MCIMPORT_CF_LINE, /* a raw .cf line after LOCAL_CONFIG */
};

struct mcimport_item {
    enum mcimport_item_kind kind;
    int line;     /* 1-based line where the item starts */
    char *name;   /* the macro name (OCR spaces joined by _), or the text */
    size_t nargs; /* arguments, quotes removed, outer white space trimmed */
    char **args;
};

struct mcimport_doc {
    struct mcimport_item *items;
    size_t count;
    int unterminated_quote_line; /* line of a quote left open at the end, or 0 */
};

/* mcimport_parse - tokenize len bytes of a .mc file into doc (never fails) */
void mcimport_parse(const char *text, size_t len, struct mcimport_doc *doc);
/* mcimport_doc_free - release the items */
void mcimport_doc_free(struct mcimport_doc *doc);

/* what the importer knows about the machine (the command line fills it) */
struct mcimport_options {
    const char *mail_dir;       /* replaces /etc/mail/ in every path ("" or NULL: keep) */
    const char *rbl_reply_path; /* where the rbl_reply table will be written */
};

enum mcimport_verdict { MCIMPORT_MAPPED, MCIMPORT_NOTED, MCIMPORT_NOT_MAPPED };

struct mcimport_report_line {
    int line;
    enum mcimport_verdict verdict;
    char *source; /* the macro as written, shortened */
    char *text;   /* "access_maps = hash:/etc/mail/access", or why not */
};

struct mcimport_setting {
    char *name;    /* a parameter, or LISTENER.parameter */
    buf_t value;   /* the value as written to tern.conf */
    buf_t origins; /* "12, 14": the .mc lines it came from */
    int disabled;  /* written commented out (a value tern would refuse) */
};

struct mcimport_result {
    struct mcimport_setting *settings; /* in the order first set */
    size_t nsettings;
    struct mcimport_report_line *report;
    size_t nreport;
    buf_t rbl_reply; /* the rbl_reply table's text ("" when not needed) */
    buf_t tables;    /* the commands the admin runs, one per line */
};

/* mcimport_map - map doc's items to settings and report lines */
void mcimport_map(const struct mcimport_doc *doc, const struct mcimport_options *opt,
                  struct mcimport_result *out);
/* mcimport_result_free - release */
void mcimport_result_free(struct mcimport_result *res);
/* mcimport_setting_value - the value of name in res, or NULL */
const char *mcimport_setting_value(const struct mcimport_result *res, const char *name);
/* mcimport_write_conf - the tern.conf text for res; source names the .mc */
void mcimport_write_conf(const struct mcimport_result *res, const char *source, buf_t *out);
/* mcimport_write_report - the report text: every line mapped, noted or not */
void mcimport_write_report(const struct mcimport_result *res, const char *source, buf_t *out);

/* tern_import_sendmail_main - `tern import-sendmail FILE.mc [-o DIR] [-m MAILDIR]`;
 * argv[0] is "import-sendmail"; exit code 0, 1 (cannot read/write), 2 (usage) */
int tern_import_sendmail_main(int argc, char **argv);

#endif
