/*
 * upstream_proxy - the HAProxy PROXY protocol (v1 and v2) on a listener
 * with smtpd_upstream_proxy_protocol = haproxy (Postfix's names;
 * docs/smtpd.md "Behind HAProxy").
 *
 * main.c hands every accepted socket of such a listener to
 * smtpd_upstream_proxy_start instead of session_start.  The peer must be
 * in smtpd_upstream_proxy_hosts (an empty list refuses everyone), else the
 * connection is closed unread and logged.  The header is then read within
 * smtpd_upstream_proxy_timeout without blocking: each piece is peeked,
 * parsed (lib/haproxy_proto.h) and only the header's own bytes are taken
 * from the socket, so what the client sent after it (an EHLO, a TLS
 * ClientHello for SMTPS) stays there for the session.  A malformed header,
 * the timeout or EOF close the connection with a log line and no banner.
 * A PROXIED header starts the session with its source as the client and
 * its destination as the local address; LOCAL and UNKNOWN keep the real
 * peer.  Until then the connection counts as a session of the worker
 * (smtpd_client_limit), so smtpd_session_ended is called when it is
 * dropped here.
 */
#ifndef TERN_SMTPD_UPSTREAM_PROXY_H
#define TERN_SMTPD_UPSTREAM_PROXY_H

#include <sys/socket.h>

struct smtpd_listener;

/* smtpd_upstream_proxy_start - read the PROXY header of an accepted,
 * non-blocking socket, then session_start; fd is closed on failure */
void smtpd_upstream_proxy_start(struct smtpd_listener *listener, int fd, const struct sockaddr *sa,
                                int salen);

#endif
