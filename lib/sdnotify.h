/*
 * sdnotify - tell systemd (Type=notify) how tern-master is doing.
 *
 * systemd passes the address of a datagram socket in the environment
 * variable NOTIFY_SOCKET: a file path ("/run/systemd/notify") or, with a
 * leading '@', a name in Linux's abstract namespace ("@/org/..." is the
 * name with its first byte NUL).  A notification is one datagram of
 * newline-separated KEY=VALUE lines: "READY=1", "RELOADING=1",
 * "STOPPING=1", "STATUS=text", "MAINPID=n" (sd_notify(3)).  This module
 * is a dozen lines of socket code instead of a dependency on libsystemd.
 *
 * Called by tern-master only, from its event loop (not from signal context).
 * Without NOTIFY_SOCKET every call is a no-op that succeeds, so the same
 * master runs under systemd, under another supervisor and by hand.
 * Returns 0 / -1 (errno set); a failed notification is the caller's to log,
 * never fatal: mail keeps flowing if systemd is not listening.
 */
#ifndef TERN_SDNOTIFY_H
#define TERN_SDNOTIFY_H

#include <sys/socket.h>
#include <sys/un.h>

/* sdnotify_address - parse a NOTIFY_SOCKET value into sa and its length
 * (for sendto); -1 when it is empty, relative, or too long for sun_path */
int sdnotify_address(const char *text, struct sockaddr_un *sa, socklen_t *len);

/* sdnotify_send - send state ("READY=1\nSTATUS=...") to $NOTIFY_SOCKET;
 * 0 when sent or when NOTIFY_SOCKET is unset, -1 on error */
int sdnotify_send(const char *state);

#endif
