/*
 * tlsrpt_report - `tern tlsrpt`: the stored TLS-RPT counts, grouped (see
 * tlsrpt_report.h).  A line reads
 *
 *   2026-12-06  example.com  sts  success=12 failure=3 (certificate-host-mismatch=3
 * mx=mx1.example.com)
 *
 * with one "result=N [mx=HOST]" item per failure kind and MX host in the
 * parentheses (none without failures).  The hidden option --record DOMAIN
 * TYPE RESULT [MX] counts one session and flushes: a testing aid.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "tlsrpt.h"
#include "tlsrpt_report.h"

/* the group (day, domain, type) being summed while the walk goes on */
struct tlsrpt_report {
    char since[16];     /* first day shown ("YYYY-MM-DD"), "" for all */
    const char *domain; /* only this policy domain, or NULL */
    buf_t day, policy_domain, policy_type;
    unsigned long long success, failure;
    buf_t failures; /* " (result=N mx=HOST, ...)" items */
    size_t lines;
};

/* tlsrpt_report_print - the line of the group summed so far, if any */
static void tlsrpt_report_print(struct tlsrpt_report *r)
{
    if (r->day.len == 0)
        return;
    printf("%s  %s  %s  success=%llu failure=%llu", buf_cstr(&r->day), buf_cstr(&r->policy_domain),
           buf_cstr(&r->policy_type), r->success, r->failure);
    if (r->failures.len > 0)
        printf(" (%s)", buf_cstr(&r->failures));
    printf("\n");
    r->lines++;
    buf_reset(&r->day);
}

/* tlsrpt_report_same_group - e belongs to the group being summed */
static int tlsrpt_report_same_group(const struct tlsrpt_report *r, const struct tlsrpt_entry *e)
{
    return r->day.len > 0 && strcmp(buf_cstr(&r->day), e->day) == 0 &&
           strcmp(buf_cstr(&r->policy_domain), e->domain) == 0 &&
           strcmp(buf_cstr(&r->policy_type), e->policy_type) == 0;
}

/* tlsrpt_report_entry - the walk's callback: entries come in key order, so
 * a group's entries are next to each other */
static int tlsrpt_report_entry(const struct tlsrpt_entry *e, void *ctx)
{
    struct tlsrpt_report *r = ctx;

    if (strcmp(e->day, r->since) < 0 || (r->domain && strcasecmp(e->domain, r->domain) != 0))
        return 0;
    if (!tlsrpt_report_same_group(r, e)) {
        tlsrpt_report_print(r);
        buf_set(&r->day, e->day);
        buf_set(&r->policy_domain, e->domain);
        buf_set(&r->policy_type, e->policy_type);
        r->success = r->failure = 0;
        buf_reset(&r->failures);
    }
    if (strcmp(e->result, "success") == 0) {
        r->success += e->count;
        return 0;
    }
    r->failure += e->count;
    buf_printf(&r->failures, "%s%s=%llu", r->failures.len ? ", " : "", e->result,
               (unsigned long long)e->count);
    if (e->mx_host[0])
        buf_printf(&r->failures, " mx=%s", e->mx_host);
    return 0;
}

/* tlsrpt_report_record - --record DOMAIN TYPE RESULT [MX] */
static int tlsrpt_report_record(const char *data_directory, int argc, char **argv)
{
    buf_t err = BUF_INIT;
    struct tlsrpt *t;
    int rc = 0;

    if (argc < 3 || argc > 4 || !tlsrpt_policy_type_valid(argv[1]) ||
        !tlsrpt_result_valid(argv[2])) {
        fprintf(stderr,
                "usage: tern tlsrpt --record DOMAIN sts|tlsa|no-policy-found RESULT [MX]\n");
        return 2;
    }
    if ((t = tlsrpt_open(data_directory, &err)) != NULL) {
        tlsrpt_count(t, argv[0], argv[1], argv[2], argc == 4 ? argv[3] : "");
        rc = tlsrpt_flush(t, &err);
        tlsrpt_close(t);
    }
    if (t == NULL || rc < 0) {
        fprintf(stderr, "tern tlsrpt: %s\n", buf_cstr(&err));
        rc = 1;
    }
    buf_free(&err);
    return rc;
}

/* tlsrpt_report_since - the first day of the last days days (UTC) */
static void tlsrpt_report_since(long days, char *out, size_t size)
{
    time_t when = time(NULL) - (time_t)(days - 1) * 86400;
    struct tm tm;

    gmtime_r(&when, &tm);
    strftime(out, size, "%Y-%m-%d", &tm);
}

/* tlsrpt_report_show - walk and print; 0 ok, 1 error */
static int tlsrpt_report_show(const char *data_directory, struct tlsrpt_report *r)
{
    buf_t err = BUF_INIT;
    int rc = 0;

    if (tlsrpt_walk(data_directory, tlsrpt_report_entry, r, &err) < 0) {
        fprintf(stderr, "tern tlsrpt: %s\n", buf_cstr(&err));
        rc = 1;
    } else {
        tlsrpt_report_print(r);
        if (r->lines == 0)
            printf("tern tlsrpt: no TLS-RPT results recorded%s%s\n", r->domain ? " for " : "",
                   r->domain ? r->domain : "");
    }
    buf_free(&err);
    return rc;
}

static int tlsrpt_report_usage(void)
{
    fprintf(stderr, "usage: tern tlsrpt [-d DAYS] [DOMAIN]\n");
    return 2;
}

int tern_tlsrpt_main(int argc, char **argv, const struct config *cfg)
{
    const char *data_directory = config_str(cfg, "data_directory");
    struct tlsrpt_report r = {.domain = NULL};
    int i = 1;
    int rc;

    if (argc > 1 && strcmp(argv[1], "--record") == 0)
        return tlsrpt_report_record(data_directory, argc - 2, argv + 2);
    if (argc > 2 && strcmp(argv[1], "-d") == 0) {
        char *end;
        long days = strtol(argv[2], &end, 10);
        if (*end != '\0' || days < 1 || days > TLSRPT_KEEP_DAYS)
            return tlsrpt_report_usage();
        tlsrpt_report_since(days, r.since, sizeof(r.since));
        i = 3;
    }
    if (argc - i > 1 || (argc - i == 1 && argv[i][0] == '-'))
        return tlsrpt_report_usage();
    if (argc - i == 1)
        r.domain = argv[i];
    rc = tlsrpt_report_show(data_directory, &r);
    buf_free(&r.day);
    buf_free(&r.policy_domain);
    buf_free(&r.policy_type);
    buf_free(&r.failures);
    return rc;
}
