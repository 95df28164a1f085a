/*
 * mcimport - `tern import-sendmail FILE.mc [-o DIR] [-m MAILDIR]` (mcimport.h).
 *
 * Reads the .mc, maps it, checks each value the way tern.conf's parser
 * would (a value tern refuses is written commented out and reported), and
 * writes DIR/tern.conf, DIR/import-report.txt and, when the .mc has DNS
 * list messages, DIR/rbl_reply.  Without -o the config goes to standard
 * output.  The report always goes to standard error too.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "mcimport.h"

static void mcimport_usage(void)
{
    fprintf(stderr, "usage: tern import-sendmail [-o DIR] [-m MAILDIR] FILE.mc\n"
                    "  -o DIR      write DIR/tern.conf, DIR/import-report.txt (and DIR/rbl_reply)\n"
                    "              instead of the config on standard output\n"
                    "  -m MAILDIR  the tables and certificates the .mc names under /etc/mail are\n"
                    "              in MAILDIR instead\n");
}

/* mcimport_read - the whole file into out; -1 with errno */
static int mcimport_read(const char *path, buf_t *out)
{
    FILE *fp = fopen(path, "re");
    char chunk[8192];
    size_t n;

    if (fp == NULL)
        return -1;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        buf_append(out, chunk, n);
    int rc = ferror(fp) ? -1 : 0;
    fclose(fp);
    return rc;
}

static int mcimport_write(const char *dir, const char *name, const buf_t *text)
{
    buf_t path = BUF_INIT;
    int rc = 0;

    buf_printf(&path, "%s/%s", dir, name);
    FILE *fp = fopen(buf_cstr(&path), "we");
    if (fp == NULL || fwrite(text->data ? text->data : "", 1, text->len, fp) != text->len) {
        fprintf(stderr, "tern import-sendmail: cannot write %s: %s\n", buf_cstr(&path),
                strerror(errno));
        rc = -1;
    }
    if (fp && fclose(fp) != 0 && rc == 0) {
        fprintf(stderr, "tern import-sendmail: cannot write %s: %s\n", buf_cstr(&path),
                strerror(errno));
        rc = -1;
    }
    buf_free(&path);
    return rc;
}

/* mcimport_validate - refuse (comment out, report) values tern's parser
 * would reject; LISTENER.name settings are checked by their name */
static void mcimport_validate(struct mcimport_result *res)
{
    struct config *cfg = config_new_defaults("/nonexistent");
    buf_t err = BUF_INIT;

    for (size_t i = 0; i < res->nsettings; i++) {
        struct mcimport_setting *s = &res->settings[i];
        const char *dot = strchr(s->name, '.');
        const char *name = dot ? dot + 1 : s->name;
        buf_reset(&err);
        if (config_find_param(name) != NULL &&
            config_set(cfg, name, buf_cstr(&s->value), "import", &err) == 0)
            continue;
        s->disabled = 1;
        res->report = xrealloc(res->report, (res->nreport + 1) * sizeof(*res->report));
        buf_t text = BUF_INIT;
        buf_printf(&text, "%s = %s: tern refuses this value (%s); written commented out", s->name,
                   buf_cstr(&s->value), err.len ? buf_cstr(&err) : "unknown parameter");
        res->report[res->nreport++] = (struct mcimport_report_line){
            atoi(buf_cstr(&s->origins)), MCIMPORT_NOT_MAPPED, xstrdup(s->name), buf_steal(&text)};
    }
    buf_free(&err);
    config_free(cfg);
}

int tern_import_sendmail_main(int argc, char **argv)
{
    const char *dir = NULL, *file = NULL;
    struct mcimport_options opt = {NULL, "texthash:/etc/tern/rbl_reply"};

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "-m") == 0 && i + 1 < argc)
            opt.mail_dir = argv[++i];
        else if (argv[i][0] != '-' && file == NULL)
            file = argv[i];
        else {
            mcimport_usage();
            return 2;
        }
    }
    if (file == NULL) {
        mcimport_usage();
        return 2;
    }
    buf_t text = BUF_INIT, rbl = BUF_INIT, conf = BUF_INIT, report = BUF_INIT;
    if (mcimport_read(file, &text) < 0) {
        fprintf(stderr, "tern import-sendmail: cannot read %s: %s\n", file, strerror(errno));
        buf_free(&text);
        return 1;
    }
    char real[PATH_MAX];
    if (dir && (mkdir(dir, 0755) < 0 && errno != EEXIST)) {
        fprintf(stderr, "tern import-sendmail: cannot create %s: %s\n", dir, strerror(errno));
        buf_free(&text);
        return 1;
    }
    if (dir && realpath(dir, real) != NULL) {
        buf_printf(&rbl, "texthash:%s/rbl_reply", real);
        opt.rbl_reply_path = buf_cstr(&rbl);
    }
    struct mcimport_doc doc;
    struct mcimport_result res;
    mcimport_parse(text.data ? text.data : "", text.len, &doc);
    mcimport_map(&doc, &opt, &res);
    mcimport_validate(&res);
    mcimport_write_conf(&res, file, &conf);
    mcimport_write_report(&res, file, &report);
    fputs(buf_cstr(&report), stderr);
    int rc = 0;
    if (dir == NULL) {
        fputs(buf_cstr(&conf), stdout);
    } else if (mcimport_write(dir, "tern.conf", &conf) < 0 ||
               mcimport_write(dir, "import-report.txt", &report) < 0 ||
               (res.rbl_reply.len && mcimport_write(dir, "rbl_reply", &res.rbl_reply) < 0)) {
        rc = 1;
    }
    mcimport_result_free(&res);
    mcimport_doc_free(&doc);
    buf_free(&text);
    buf_free(&rbl);
    buf_free(&conf);
    buf_free(&report);
    return rc;
}
