/*
 * smtp_mtasts - MTA-STS policy discovery, fetch and cache for tern-smtp.
 * Contract in smtp_mtasts.h.
 *
 * One job per domain in flight: the TXT query, then (when the cache cannot
 * answer) the A/AAAA query of mta-sts.DOMAIN and the HTTPS fetch.  Every
 * lookup of the domain waits on the job and all are answered together.  A
 * job that answered its lookups from the cache and goes on to refresh the
 * policy is "refreshing": lookups arriving meanwhile are answered from the
 * cache too.  libcurl runs in its multi-socket mode on the event loop (as
 * curl's hiperfifo example): curl says which sockets to watch and when its
 * timer fires, libevent tells curl what happened.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "dns.h"
#include "log.h"
#include "smtp_mtasts.h"
#include "smtp_mtasts_cache.h"
#include "tern_build.h"
#include "tls.h"

#define MTASTS_REFRESH_AGE 86400 /* refresh a cached policy older than a day */
#define MTASTS_DOMAIN_MAX 240    /* room for "_mta-sts." in a 253-byte name */
#define MTASTS_USER_AGENT "tern/" TERN_VERSION

/* RFC 8460 result types for the TLS-RPT counters */
#define STS_FETCH_ERROR "sts-policy-fetch-error"
#define STS_INVALID "sts-policy-invalid"
#define STS_WEBPKI "sts-webpki-invalid"

struct mtasts_job {
    struct smtp_mtasts *m;
    char *domain;
    struct smtp_mtasts_pending *waiters;
    struct dns_pending *dns;
    enum dns_qtype addr_type; /* of the address query in flight */
    buf_t id;                 /* the TXT record's id (or the cached one) */
    int refreshing;           /* the waiters were answered from the cache */
    long long started_ms;     /* when the fetch began (the address query) */
    CURL *easy;
    struct curl_slist *resolve;
    buf_t body;
    int oversize;
    char curl_error[CURL_ERROR_SIZE];
    struct mtasts_job *next;
};

struct smtp_mtasts_pending {
    struct smtp_mtasts *m;
    struct mtasts_job *job; /* waiting for it; NULL: answered by ev */
    struct event *ev;       /* the answer from the cache, from the loop */
    char *domain;           /* whose cached policy ev answers; NULL: none */
    smtp_mtasts_cb cb;
    void *arg;
    struct smtp_mtasts_pending *prev, *next;
};

struct smtp_mtasts {
    struct event_base *base;
    struct dns_ctx *dns;
    struct smtp_mtasts_cache *cache;
    X509_STORE *trust;
    CURLM *multi;
    struct event *timer; /* curl's */
    long long fetch_timeout_ms;
    int port;
    struct mtasts_job *jobs;
    struct smtp_mtasts_pending *deferred; /* answered by their ev */
};

static void mtasts_job_resolve(struct mtasts_job *job);

/* mtasts_now_ms - the monotonic clock in milliseconds */
static long long mtasts_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- lists */

/* mtasts_pending_list - the list p is on */
static struct smtp_mtasts_pending **mtasts_pending_list(struct smtp_mtasts_pending *p)
{
    return p->job ? &p->job->waiters : &p->m->deferred;
}

/* mtasts_pending_link - put p at the head of its list */
static void mtasts_pending_link(struct smtp_mtasts_pending *p)
{
    struct smtp_mtasts_pending **head = mtasts_pending_list(p);

    p->prev = NULL;
    p->next = *head;
    if (*head)
        (*head)->prev = p;
    *head = p;
}

/* mtasts_pending_unlink - take p off its list */
static void mtasts_pending_unlink(struct smtp_mtasts_pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        *mtasts_pending_list(p) = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

/* mtasts_pending_free - release p (off its list) */
static void mtasts_pending_free(struct smtp_mtasts_pending *p)
{
    if (p->ev)
        event_free(p->ev);
    free(p->domain);
    free(p);
}

/* mtasts_job_unlink - take job off the jobs in flight (once) */
static void mtasts_job_unlink(struct mtasts_job *job)
{
    for (struct mtasts_job **j = &job->m->jobs; *j; j = &(*j)->next)
        if (*j == job) {
            *j = job->next;
            break;
        }
    job->next = NULL;
}

/* mtasts_job_find - the job in flight for domain, or NULL */
static struct mtasts_job *mtasts_job_find(struct smtp_mtasts *m, const char *domain)
{
    for (struct mtasts_job *j = m->jobs; j; j = j->next)
        if (strcmp(j->domain, domain) == 0)
            return j;
    return NULL;
}

/* mtasts_job_free - stop and release job and its waiters (no callbacks) */
static void mtasts_job_free(struct mtasts_job *job)
{
    mtasts_job_unlink(job);
    while (job->waiters) {
        struct smtp_mtasts_pending *p = job->waiters;
        mtasts_pending_unlink(p);
        mtasts_pending_free(p);
    }
    dns_cancel(job->dns);
    if (job->easy) {
        curl_multi_remove_handle(job->m->multi, job->easy);
        curl_easy_cleanup(job->easy);
    }
    curl_slist_free_all(job->resolve);
    buf_free(&job->id);
    buf_free(&job->body);
    free(job->domain);
    free(job);
}

/* -------------------------------------------------------------- answers */

/* mtasts_answer_text - call cb with policy text parsed (NULL when it does
 * not parse: the cache held junk) */
static void mtasts_answer_text(const buf_t *text, smtp_mtasts_cb cb, void *arg)
{
    struct mtasts_policy policy;
    buf_t err = BUF_INIT;
    int ok = mtasts_policy_parse(buf_cstr(text), text->len, &policy, &err) == 0;

    cb(ok ? &policy : NULL, "", arg);
    mtasts_policy_free(&policy);
    buf_free(&err);
}

/* mtasts_answer_waiters - answer every lookup waiting on job.  The caller
 * has made sure no new lookup can join job meanwhile (it is unlinked or
 * refreshing).  text: a policy to parse, else policy and error as given */
static void mtasts_answer_waiters(struct mtasts_job *job, const buf_t *text,
                                  const struct mtasts_policy *policy, const char *error)
{
    while (job->waiters) {
        struct smtp_mtasts_pending *p = job->waiters;
        mtasts_pending_unlink(p);
        if (text)
            mtasts_answer_text(text, p->cb, p->arg);
        else
            p->cb(policy, error, p->arg);
        mtasts_pending_free(p);
    }
}

/* mtasts_on_deferred - a lookup that the cache (or nothing) answers */
static void mtasts_on_deferred(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_mtasts_pending *p = arg;
    struct smtp_mtasts_cache_entry e = {BUF_INIT, BUF_INIT, 0, 0};

    mtasts_pending_unlink(p);
    if (p->domain && smtp_mtasts_cache_get(p->m->cache, p->domain, time(NULL), &e) == 0)
        mtasts_answer_text(&e.text, p->cb, p->arg);
    else
        p->cb(NULL, "", p->arg);
    smtp_mtasts_cache_entry_free(&e);
    mtasts_pending_free(p);
}

/* mtasts_defer - answer p from the loop: domain's cached policy, or none
 * when domain is NULL */
static void mtasts_defer(struct smtp_mtasts_pending *p, const char *domain)
{
    p->domain = domain ? xstrdup(domain) : NULL;
    p->ev = event_new(p->m->base, -1, 0, mtasts_on_deferred, p);
    if (p->ev == NULL)
        log_panic("mta-sts: event_new failed");
    mtasts_pending_link(p);
    event_active(p->ev, 0, 0);
}

/* mtasts_refresh_due - is a cached policy old enough to refresh? */
static int mtasts_refresh_due(const struct smtp_mtasts_cache_entry *e, long long now)
{
    long long age = now - e->fetched;

    return age * 4 >= e->max_age * 3 || age > MTASTS_REFRESH_AGE;
}

/* mtasts_job_answer_cached - answer job's waiters with e, then refresh the
 * policy in the background when it is due, else end the job */
static void mtasts_job_answer_cached(struct mtasts_job *job,
                                     const struct smtp_mtasts_cache_entry *e)
{
    job->refreshing = mtasts_refresh_due(e, time(NULL));
    if (!job->refreshing)
        mtasts_job_unlink(job);
    mtasts_answer_waiters(job, &e->text, NULL, "");
    if (job->refreshing)
        mtasts_job_resolve(job);
    else
        mtasts_job_free(job);
}

/* mtasts_job_failed - the fetch failed: log it; the waiters get the cached
 * policy if there is one, else no policy and why */
static void mtasts_job_failed(struct mtasts_job *job, const char *type, const char *reason)
{
    struct smtp_mtasts_cache_entry e = {BUF_INIT, BUF_INIT, 0, 0};
    buf_t error = BUF_INIT;

    log_warn("mta-sts: %s: policy fetch failed: %s", job->domain, reason);
    mtasts_job_unlink(job);
    if (smtp_mtasts_cache_get(job->m->cache, job->domain, time(NULL), &e) == 0) {
        mtasts_answer_waiters(job, &e.text, NULL, "");
    } else {
        buf_printf(&error, "%s: %s", type, reason);
        mtasts_answer_waiters(job, NULL, NULL, buf_cstr(&error));
    }
    smtp_mtasts_cache_entry_free(&e);
    buf_free(&error);
    mtasts_job_free(job);
}

/* mtasts_job_fetched - a policy that parsed: cache it, log it, answer */
static void mtasts_job_fetched(struct mtasts_job *job, const struct mtasts_policy *policy)
{
    static const char *const modes[] = {"none", "testing", "enforce"};
    struct smtp_mtasts_cache_entry e = {BUF_INIT, BUF_INIT, 0, 0};

    e.fetched = time(NULL);
    e.max_age = policy->max_age;
    buf_set(&e.id, buf_cstr(&job->id));
    e.text = job->body;
    smtp_mtasts_cache_put(job->m->cache, job->domain, &e);
    buf_free(&e.id);
    log_info("mta-sts: %s: policy id %s mode %s max_age %lld fetched", job->domain,
             buf_cstr(&job->id), modes[policy->mode], policy->max_age);
    mtasts_job_unlink(job);
    mtasts_answer_waiters(job, NULL, policy, "");
    mtasts_job_free(job);
}

/* ------------------------------------------------------------ the fetch */

/* mtasts_content_type_ok - "text/plain", parameters allowed (RFC 8461 3.3) */
static int mtasts_content_type_ok(const char *type)
{
    size_t n;

    if (type == NULL)
        return 0;
    n = strcspn(type, ";");
    while (n > 0 && (type[n - 1] == ' ' || type[n - 1] == '\t'))
        n--;
    return n == 10 && strncasecmp(type, "text/plain", 10) == 0;
}

/* mtasts_curl_failed - why curl gave up, with its RFC 8460 result type */
static void mtasts_curl_failed(struct mtasts_job *job, CURLcode rc)
{
    const char *why = job->curl_error[0] ? job->curl_error : curl_easy_strerror(rc);

    if (job->oversize || rc == CURLE_FILESIZE_EXCEEDED)
        mtasts_job_failed(job, STS_INVALID, "policy larger than 65536 bytes");
    else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
             rc == CURLE_SSL_ISSUER_ERROR || rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH)
        mtasts_job_failed(job, STS_WEBPKI, why);
    else
        mtasts_job_failed(job, STS_FETCH_ERROR, why);
}

/* mtasts_fetch_done - curl finished job's transfer with rc */
static void mtasts_fetch_done(struct mtasts_job *job, CURLcode rc)
{
    struct mtasts_policy policy;
    long status = 0;
    char *type = NULL;
    buf_t why = BUF_INIT;

    if (rc != CURLE_OK) {
        mtasts_curl_failed(job, rc);
        return;
    }
    curl_easy_getinfo(job->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(job->easy, CURLINFO_CONTENT_TYPE, &type);
    if (status != 200) {
        buf_printf(&why, "HTTP status %ld", status);
        mtasts_job_failed(job, STS_FETCH_ERROR, buf_cstr(&why));
    } else if (!mtasts_content_type_ok(type)) {
        buf_printf(&why, "Content-Type %s, not text/plain", type ? type : "missing");
        mtasts_job_failed(job, STS_INVALID, buf_cstr(&why));
    } else if (mtasts_policy_parse(buf_cstr(&job->body), job->body.len, &policy, &why) < 0) {
        mtasts_job_failed(job, STS_INVALID, buf_cstr(&why));
    } else {
        mtasts_job_fetched(job, &policy);
        mtasts_policy_free(&policy);
    }
    buf_free(&why);
}

/* mtasts_curl_check - hand every finished transfer to its job */
static void mtasts_curl_check(struct smtp_mtasts *m)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
        struct mtasts_job *job = NULL;
        CURLcode rc = msg->data.result;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&job);
        mtasts_fetch_done(job, rc);
    }
}

/* mtasts_on_socket - libevent: a socket curl watches is ready */
static void mtasts_on_socket(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_mtasts *m = arg;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;

    curl_multi_socket_action(m->multi, fd, flags, &running);
    mtasts_curl_check(m);
}

/* mtasts_on_timer - libevent: curl's timer expired */
static void mtasts_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_mtasts *m = arg;
    int running;

    curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    mtasts_curl_check(m);
}

/* mtasts_curl_socket - curl: watch s for what (CURLMOPT_SOCKETFUNCTION) */
static int mtasts_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct smtp_mtasts *m = userp;
    struct event *ev = socketp;
    short kind =
        EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);

    if (ev)
        event_free(ev);
    if (what == CURL_POLL_REMOVE) {
        curl_multi_assign(m->multi, s, NULL);
        return 0;
    }
    ev = event_new(m->base, s, kind, mtasts_on_socket, m);
    if (ev == NULL || event_add(ev, NULL) < 0)
        log_panic("mta-sts: cannot watch a socket");
    curl_multi_assign(m->multi, s, ev);
    return 0;
}

/* mtasts_curl_timer - curl: call me back in ms (CURLMOPT_TIMERFUNCTION) */
static int mtasts_curl_timer(CURLM *multi, long ms, void *userp)
{
    struct smtp_mtasts *m = userp;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    if (ms < 0)
        return evtimer_del(m->timer);
    return evtimer_add(m->timer, &tv);
}

/* mtasts_curl_write - the body, at most MTASTS_MAX_POLICY bytes */
static size_t mtasts_curl_write(char *data, size_t size, size_t n, void *arg)
{
    struct mtasts_job *job = arg;

    if (job->body.len + n > MTASTS_MAX_POLICY) {
        job->oversize = 1;
        return 0; /* CURLE_WRITE_ERROR */
    }
    buf_append(&job->body, data, n);
    return n;
}

/* mtasts_curl_ssl_ctx - verify the server against the trust read at start */
static CURLcode mtasts_curl_ssl_ctx(CURL *easy, void *ssl_ctx, void *arg)
{
    struct smtp_mtasts *m = arg;

    SSL_CTX_set1_cert_store(ssl_ctx, m->trust);
    return CURLE_OK;
}

/* mtasts_resolve_entry - "mta-sts.DOMAIN:PORT:ADDR[,ADDR...]" for
 * CURLOPT_RESOLVE, IPv6 addresses in brackets */
static void mtasts_resolve_entry(const struct mtasts_job *job, const struct dns_answer *ans,
                                 buf_t *out)
{
    buf_printf(out, "mta-sts.%s:%d:", job->domain, job->m->port);
    for (size_t i = 0; i < ans->count; i++)
        buf_printf(out, strchr(ans->v[i], ':') ? "%s[%s]" : "%s%s", i ? "," : "", ans->v[i]);
}

/* mtasts_easy_setup - the transfer: RFC 8461 3.3's rules, see the header */
static int mtasts_easy_setup(struct mtasts_job *job, long long timeout_ms, const char *url)
{
    CURL *e = job->easy;

    return curl_easy_setopt(e, CURLOPT_URL, url) || curl_easy_setopt(e, CURLOPT_PRIVATE, job) ||
           curl_easy_setopt(e, CURLOPT_RESOLVE, job->resolve) ||
           curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https") ||
           curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) ||
           curl_easy_setopt(e, CURLOPT_PROXY, "") || curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) ||
           curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms) ||
           curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) ||
           curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) ||
           curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) ||
           curl_easy_setopt(e, CURLOPT_CAINFO, NULL) || curl_easy_setopt(e, CURLOPT_CAPATH, NULL) ||
           curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, mtasts_curl_ssl_ctx) ||
           curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, job->m) ||
           curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MTASTS_MAX_POLICY) ||
           curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, mtasts_curl_write) ||
           curl_easy_setopt(e, CURLOPT_WRITEDATA, job) ||
           curl_easy_setopt(e, CURLOPT_ERRORBUFFER, job->curl_error) ||
           curl_easy_setopt(e, CURLOPT_USERAGENT, MTASTS_USER_AGENT);
}

/* mtasts_job_fetch - start the HTTPS transfer to the addresses in ans */
static void mtasts_job_fetch(struct mtasts_job *job, const struct dns_answer *ans)
{
    long long left = job->m->fetch_timeout_ms - (mtasts_now_ms() - job->started_ms);
    buf_t entry = BUF_INIT, url = BUF_INIT;
    int rc;

    mtasts_resolve_entry(job, ans, &entry);
    job->resolve = curl_slist_append(NULL, buf_cstr(&entry));
    buf_printf(&url, "https://mta-sts.%s:%d/.well-known/mta-sts.txt", job->domain, job->m->port);
    job->easy = curl_easy_init();
    if (left <= 0) {
        mtasts_job_failed(job, STS_FETCH_ERROR, "timed out resolving the policy host");
    } else if (job->resolve == NULL || job->easy == NULL ||
               mtasts_easy_setup(job, left, buf_cstr(&url)) != 0) {
        mtasts_job_failed(job, STS_FETCH_ERROR, "cannot set up the transfer");
    } else if ((rc = curl_multi_add_handle(job->m->multi, job->easy)) != CURLM_OK) {
        mtasts_job_failed(job, STS_FETCH_ERROR, curl_multi_strerror(rc));
    }
    buf_free(&entry);
    buf_free(&url);
}

/* mtasts_on_addr - the addresses of mta-sts.DOMAIN: A, else AAAA */
static void mtasts_on_addr(struct dns_answer *ans, void *arg)
{
    struct mtasts_job *job = arg;
    buf_t why = BUF_INIT;

    job->dns = NULL;
    if (ans->status == DNS_OK) {
        mtasts_job_fetch(job, ans);
    } else if (job->addr_type == DNS_QA) {
        job->addr_type = DNS_QAAAA;
        mtasts_job_resolve(job);
    } else {
        buf_printf(&why, "mta-sts.%s: %s", job->domain, ans->reason);
        mtasts_job_failed(job, STS_FETCH_ERROR, buf_cstr(&why));
    }
    buf_free(&why);
    dns_answer_free(ans);
}

/* mtasts_job_resolve - look up the policy host's addresses (addr_type) */
static void mtasts_job_resolve(struct mtasts_job *job)
{
    buf_t host = BUF_INIT;

    if (job->addr_type == DNS_QA)
        job->started_ms = mtasts_now_ms();
    buf_printf(&host, "mta-sts.%s", job->domain);
    job->dns = dns_query(job->m->dns, buf_cstr(&host), job->addr_type, mtasts_on_addr, job);
    buf_free(&host);
}

/* ------------------------------------------------------- the TXT record */

/* mtasts_txt_pick - the id of the one "v=STSv1" record in ans (RFC 8461
 * 3.1: the others are discarded; none, several or an invalid one: none) */
static int mtasts_txt_pick(struct mtasts_job *job, const struct dns_answer *ans)
{
    const char *record = NULL;
    size_t found = 0;
    buf_t err = BUF_INIT;
    int rc = -1;

    for (size_t i = 0; i < ans->count; i++) {
        const char *v = ans->v[i];
        if (strncmp(v, "v=STSv1", 7) == 0 && strchr("; \t", v[7]) != NULL) {
            record = v;
            found++;
        }
    }
    if (found == 1 && (rc = mtasts_txt_parse(record, &job->id, &err)) < 0)
        log_info("mta-sts: %s: TXT record ignored: %s", job->domain, buf_cstr(&err));
    else if (found > 1)
        log_info("mta-sts: %s: %zu TXT records ignored", job->domain, found);
    buf_free(&err);
    return rc;
}

/* mtasts_on_txt - the _mta-sts TXT record: the cache answers, or fetch */
static void mtasts_on_txt(struct dns_answer *ans, void *arg)
{
    struct mtasts_job *job = arg;
    struct smtp_mtasts_cache_entry e = {BUF_INIT, BUF_INIT, 0, 0};
    int have_id = ans->status == DNS_OK && mtasts_txt_pick(job, ans) == 0;
    int cached = smtp_mtasts_cache_get(job->m->cache, job->domain, time(NULL), &e) == 0;

    job->dns = NULL;
    dns_answer_free(ans);
    if (cached && (!have_id || strcmp(buf_cstr(&e.id), buf_cstr(&job->id)) == 0)) {
        buf_set(&job->id, buf_cstr(&e.id));
        mtasts_job_answer_cached(job, &e);
    } else if (have_id) {
        mtasts_job_resolve(job);
    } else {
        mtasts_job_unlink(job);
        mtasts_answer_waiters(job, NULL, NULL, "");
        mtasts_job_free(job);
    }
    smtp_mtasts_cache_entry_free(&e);
}

/* ------------------------------------------------------------- lookups */

/* mtasts_domain_normalize - domain lower-cased without a trailing dot into
 * out; -1 when it cannot be a host name (it goes into a URL) */
static int mtasts_domain_normalize(const char *domain, buf_t *out)
{
    size_t n = strlen(domain);

    if (n > 0 && domain[n - 1] == '.')
        n--;
    if (n == 0 || n > MTASTS_DOMAIN_MAX || domain[0] == '.' || domain[0] == '-')
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)domain[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != '_')
            return -1;
        if (c == '.' && domain[i + 1] == '.')
            return -1;
        buf_putc(out, tolower(c));
    }
    return 0;
}

/* mtasts_job_start - a new job for domain: the TXT query */
static struct mtasts_job *mtasts_job_start(struct smtp_mtasts *m, const char *domain)
{
    struct mtasts_job *job = xcalloc(1, sizeof(*job));
    buf_t name = BUF_INIT;

    job->m = m;
    job->domain = xstrdup(domain);
    job->addr_type = DNS_QA;
    job->next = m->jobs;
    m->jobs = job;
    buf_printf(&name, "_mta-sts.%s", domain);
    job->dns = dns_query(m->dns, buf_cstr(&name), DNS_QTXT, mtasts_on_txt, job);
    buf_free(&name);
    return job;
}

struct smtp_mtasts_pending *smtp_mtasts_lookup(struct smtp_mtasts *m, const char *domain,
                                               smtp_mtasts_cb cb, void *arg)
{
    struct smtp_mtasts_pending *p = xcalloc(1, sizeof(*p));
    buf_t name = BUF_INIT;
    struct mtasts_job *job;

    p->m = m;
    p->cb = cb;
    p->arg = arg;
    if (mtasts_domain_normalize(domain, &name) < 0) {
        mtasts_defer(p, NULL);
    } else if ((job = mtasts_job_find(m, buf_cstr(&name))) != NULL && job->refreshing) {
        mtasts_defer(p, buf_cstr(&name));
    } else {
        p->job = job ? job : mtasts_job_start(m, buf_cstr(&name));
        mtasts_pending_link(p);
    }
    buf_free(&name);
    return p;
}

void smtp_mtasts_cancel(struct smtp_mtasts_pending *p)
{
    if (p == NULL)
        return;
    mtasts_pending_unlink(p);
    mtasts_pending_free(p);
}

/* ------------------------------------------------------ set up, tear down */

/* mtasts_trust_load - the CAs that vouch for policy servers */
static X509_STORE *mtasts_trust_load(const struct config *cfg, buf_t *err)
{
    const char *file = config_str(cfg, "smtp_tls_CAfile");
    const char *path = config_str(cfg, "smtp_tls_CApath");
    X509_STORE *store = X509_STORE_new();
    int ok;

    if (store == NULL)
        log_panic("mta-sts: X509_STORE_new failed");
    if (file[0] == 0 && path[0] == 0)
        ok = X509_STORE_set_default_paths(store);
    else
        ok = (file[0] == 0 || X509_STORE_load_file(store, file)) &&
             (path[0] == 0 || X509_STORE_load_path(store, path));
    if (!ok) {
        buf_printf(err, "smtp_tls_CAfile/smtp_tls_CApath for MTA-STS: ");
        tls_errors(err);
        X509_STORE_free(store);
        return NULL;
    }
    return store;
}

/* mtasts_settings - the numeric parameters; -1 with err set */
static int mtasts_settings(struct smtp_mtasts *m, const struct config *cfg, buf_t *err)
{
    long long timeout = config_time(cfg, "smtp_mta_sts_fetch_timeout");
    long long port = config_int(cfg, "smtp_mta_sts_https_port");

    if (timeout < 1 || port < 1 || port > 65535 || config_int(cfg, "smtp_mta_sts_cache_size") < 1) {
        buf_puts(err, "smtp_mta_sts_fetch_timeout and smtp_mta_sts_cache_size must be positive, "
                      "smtp_mta_sts_https_port a TCP port");
        return -1;
    }
    m->fetch_timeout_ms = timeout * 1000;
    m->port = (int)port;
    return 0;
}

/* mtasts_curl_start - the multi handle driven by base */
static int mtasts_curl_start(struct smtp_mtasts *m, buf_t *err)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

    /* the trust store goes in through CURLOPT_SSL_CTX_FUNCTION, which only
     * an OpenSSL libcurl has: any other would fail every fetch, quietly
     * "no policy" for every domain */
    if (v == NULL || v->ssl_version == NULL || strncmp(v->ssl_version, "OpenSSL", 7) != 0) {
        buf_printf(err, "smtp_mta_sts = yes needs libcurl built with OpenSSL (this one: %s)",
                   v && v->ssl_version ? v->ssl_version : "no TLS");
        return -1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        (m->multi = curl_multi_init()) == NULL) {
        buf_puts(err, "mta-sts: cannot initialize libcurl");
        return -1;
    }
    m->timer = evtimer_new(m->base, mtasts_on_timer, m);
    if (m->timer == NULL)
        log_panic("mta-sts: evtimer_new failed");
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, mtasts_curl_socket);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, mtasts_curl_timer);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    return 0;
}

struct smtp_mtasts *smtp_mtasts_create(struct event_base *base, struct dns_ctx *dns,
                                       const struct config *cfg, buf_t *err)
{
    struct smtp_mtasts *m;
    buf_t path = BUF_INIT;

    if (!config_bool(cfg, "smtp_mta_sts"))
        return NULL;
    m = xcalloc(1, sizeof(*m));
    m->base = base;
    m->dns = dns;
    buf_printf(&path, "%s/mta-sts.lmdb", config_str(cfg, "data_directory"));
    if (mtasts_settings(m, cfg, err) < 0 || (m->trust = mtasts_trust_load(cfg, err)) == NULL ||
        (m->cache =
             smtp_mtasts_cache_open(buf_cstr(&path), config_int(cfg, "smtp_mta_sts_cache_size"),
                                    config_str(cfg, "mail_owner"), err)) == NULL ||
        mtasts_curl_start(m, err) < 0) {
        smtp_mtasts_free(m);
        m = NULL;
    }
    buf_free(&path);
    return m;
}

void smtp_mtasts_free(struct smtp_mtasts *m)
{
    if (m == NULL)
        return;
    while (m->jobs)
        mtasts_job_free(m->jobs);
    while (m->deferred) {
        struct smtp_mtasts_pending *p = m->deferred;
        mtasts_pending_unlink(p);
        mtasts_pending_free(p);
    }
    if (m->multi) {
        curl_multi_cleanup(m->multi);
        curl_global_cleanup();
    }
    if (m->timer)
        event_free(m->timer);
    X509_STORE_free(m->trust);
    smtp_mtasts_cache_close(m->cache);
    free(m);
}
