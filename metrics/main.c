/*
 * tern-metrics - the OpenMetrics endpoint (metrics_listen; docs/metrics.md).
 *
 * master binds metrics_listen as root and execs `tern-metrics -c DIR` with
 * that TCP socket as fd 3, only when metrics_listen is set.  The counter
 * file (lib/stats.h) is mapped read-only before the privilege drop; the
 * HTTP side is libmicrohttpd's (one internal thread polls every
 * connection, so the request handler never runs twice at once), never a
 * parser of ours.  GET (or HEAD) /metrics answers the exposition
 * (render.c): OpenMetrics 1.0 unless the client accepts only the older
 * Prometheus text format; any other path is 404, any other method 405.
 * The queue directories are scanned at most once a second (queue_scan.c).
 * SIGHUP and SIGTERM stop the server and exit, leaving the listening socket
 * open for the replacement a reload starts.
 */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "stats.h"

#define METRICS_CONNECTION_LIMIT 16
#define METRICS_TIMEOUT 10
#define METRICS_OPENMETRICS_TYPE "application/openmetrics-text; version=1.0.0; charset=utf-8"
#define METRICS_TEXT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics_server {
    struct service svc;
    struct stats_file *stats;
    struct MHD_Daemon *httpd;
    struct metrics_queue queues[METRICS_QUEUE_COUNT];
    time_t scanned; /* when queues were last counted */
};

/* metrics_wants_text - the client accepts the Prometheus text format but
 * not OpenMetrics (an Accept header without "openmetrics" naming text/plain) */
static int metrics_wants_text(struct MHD_Connection *conn)
{
    const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept");

    return accept != NULL && strstr(accept, "application/openmetrics-text") == NULL &&
           strstr(accept, "text/plain") != NULL;
}

/* metrics_answer - queue a response with this status, type and body */
static enum MHD_Result metrics_answer(struct MHD_Connection *conn, unsigned status,
                                      const char *type, const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc;

    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

/* metrics_exposition - the body of GET /metrics */
static void metrics_exposition(struct metrics_server *srv, enum metrics_format format, buf_t *out)
{
    time_t now = time(NULL);

    if (now != srv->scanned) {
        metrics_queue_scan(srv->queues, now);
        srv->scanned = now;
    }
    metrics_render(srv->stats, srv->queues, format, out);
}

/* metrics_request - libmicrohttpd's handler of every request */
static enum MHD_Result metrics_request(void *cls, struct MHD_Connection *conn, const char *url,
                                       const char *method, const char *version,
                                       const char *upload_data, size_t *upload_data_size,
                                       void **con_cls)
{
    static const char not_found[] = "not found: the metrics are at /metrics\n";
    static const char bad_method[] = "only GET and HEAD\n";
    struct metrics_server *srv = cls;
    enum metrics_format format;
    enum MHD_Result rc;
    buf_t body = BUF_INIT;

    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return metrics_answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", bad_method,
                              sizeof(bad_method) - 1);
    if (strcmp(url, "/metrics") != 0)
        return metrics_answer(conn, MHD_HTTP_NOT_FOUND, "text/plain", not_found,
                              sizeof(not_found) - 1);
    format = metrics_wants_text(conn) ? METRICS_PROMETHEUS_TEXT : METRICS_OPENMETRICS;
    metrics_exposition(srv, format, &body);
    rc =
        metrics_answer(conn, MHD_HTTP_OK,
                       format == METRICS_OPENMETRICS ? METRICS_OPENMETRICS_TYPE : METRICS_TEXT_TYPE,
                       buf_cstr(&body), body.len);
    buf_free(&body);
    return rc;
}

/* metrics_httpd_stop - stop serving.  The listening socket is shared with
 * the tern-metrics that a reload starts: it is taken back from
 * libmicrohttpd first (MHD_quiesce_daemon), because MHD_stop_daemon would
 * shut it down for every process, and then only closed here. */
static void metrics_httpd_stop(struct metrics_server *srv)
{
    MHD_socket fd;

    if (srv->httpd == NULL)
        return;
    fd = MHD_quiesce_daemon(srv->httpd);
    MHD_stop_daemon(srv->httpd);
    srv->httpd = NULL;
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

/* metrics_on_stop - SIGHUP or SIGTERM: nothing to drain, stop at once */
static void metrics_on_stop(void *ctx)
{
    struct metrics_server *srv = ctx;

    metrics_httpd_stop(srv);
    service_stop(&srv->svc);
}

/* metrics_open_stats - the counter file, read-only; NULL: no counters */
static struct stats_file *metrics_open_stats(const struct config *cfg)
{
    const char *dir = config_str(cfg, "data_directory");
    char path[4096];
    struct stats_file *f;

    if (stats_path(dir, path, sizeof(path)) < 0) {
        log_warn("data_directory %s is too long: serving the queue figures only", dir);
        return NULL;
    }
    if ((f = stats_file_open(path, 0)) == NULL)
        log_warn("no statistics file %s: %m; serving the queue figures only", path);
    return f;
}

/* metrics_start - libmicrohttpd on the inherited socket */
static void metrics_start(struct metrics_server *srv)
{
    if (srv->svc.listen_count != 1)
        log_fatal("expected the metrics_listen socket as fd 3");
    srv->httpd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC, 0,
                                  NULL, NULL, metrics_request, srv, MHD_OPTION_LISTEN_SOCKET,
                                  (MHD_socket)srv->svc.listen_fds[0], MHD_OPTION_CONNECTION_LIMIT,
                                  (unsigned)METRICS_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
                                  (unsigned)METRICS_TIMEOUT, MHD_OPTION_END);
    if (srv->httpd == NULL)
        log_fatal("cannot start the HTTP server on metrics_listen");
}

int main(int argc, char **argv)
{
    static struct metrics_server srv;
    int status;

    service_init(&srv.svc, "metrics", argc, argv);
    srv.svc.ctx = &srv;
    srv.svc.on_drain = metrics_on_stop;
    srv.svc.on_stop = metrics_on_stop;
    srv.stats = metrics_open_stats(srv.svc.cfg);
    service_drop_privileges(&srv.svc);
    metrics_start(&srv);
    status = service_run(&srv.svc);
    metrics_httpd_stop(&srv);
    stats_file_close(srv.stats);
    config_free(srv.svc.cfg);
    return status;
}
