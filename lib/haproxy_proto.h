/*
 * haproxy_proto - the PROXY protocol header (HAProxy's proxy-protocol.txt,
 * versions 1 and 2) that a load balancer sends before anything else on a
 * connection, without the socket: a listener that trusts its peer to send
 * one hands the first bytes it reads to haproxy_proto_parse until it stops
 * asking for more, then drops h->used bytes and starts the SMTP dialogue
 * with the addresses it was given.
 *
 * Wire formats:
 *   v1  one text line of at most HAPROXY_PROTO_V1_MAX bytes, CR LF included:
 *           "PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\n"
 *           "PROXY TCP6 2001:db8::1 2001:db8::2 56324 25\r\n"
 *           "PROXY UNKNOWN[ anything]\r\n"
 *       single spaces; ports decimal 0-65535 without leading zeros;
 *       addresses of the family named (TCP4: IPv4, TCP6: IPv6).
 *   v2  the 12-byte signature "\r\n\r\n\0\r\nQUIT\n", a byte version (high
 *       nibble, must be 2) and command (low: 0 LOCAL, 1 PROXY), a byte
 *       family/transport (0x00 UNSPEC, 0x11 TCP4, 0x21 TCP6, 0x31 UNIX
 *       stream), a 16-bit big-endian length of what follows: the addresses
 *       (12 bytes for TCP4, 36 for TCP6, 216 for UNIX: source, destination,
 *       source port, destination port) then TLVs (type, 16-bit length,
 *       value), which are walked, bounded and skipped.
 *
 * Outcomes (h->kind when DONE):
 *   HAPROXY_PROTO_PROXIED  v1 TCP4/TCP6, v2 PROXY over TCP4/TCP6:
 *                          h->source and h->destination are the client and
 *                          the address it connected to, ports set.
 *   HAPROXY_PROTO_LOCAL    v2 LOCAL (the balancer's own health check): keep
 *                          the real peer; the block after the 16 bytes is
 *                          skipped unread, as the spec asks.
 *   HAPROXY_PROTO_UNKNOWN  v1 UNKNOWN, v2 PROXY with UNSPEC or UNIX
 *                          addresses: keep the real peer.
 *
 * Strict: the wrong first bytes, a v1 line over 107 bytes or without
 * CR LF, a bad field, port or address, an unknown v2 version, command or
 * family/transport (datagram transports too: mail is a stream), a v2
 * length over HAPROXY_PROTO_V2_MAX_BLOCK or shorter than its addresses, a
 * TLV that runs past the block: HAPROXY_PROTO_ERROR with h->why for the
 * log; the caller drops the connection.  Errors show as early as the bytes
 * allow (a wrong signature byte at once), so a peer cannot hold the
 * listener with junk; NEED_MORE never asks for more than
 * HAPROXY_PROTO_MAX_HEADER bytes in all, which is the buffer a caller needs.
 *
 * Pure function: no allocation, no I/O; it trusts nothing in the input and
 * may be called again on the same bytes with more appended.
 */
#ifndef TERN_HAPROXY_PROTO_H
#define TERN_HAPROXY_PROTO_H

#include <sys/socket.h>
#include <stddef.h>

#define HAPROXY_PROTO_V1_MAX 107       /* a v1 line, CR LF included */
#define HAPROXY_PROTO_V2_FIXED 16      /* signature, version/command, family, length */
#define HAPROXY_PROTO_V2_MAX_BLOCK 536 /* addresses + TLVs after the fixed part */
#define HAPROXY_PROTO_MAX_HEADER (HAPROXY_PROTO_V2_FIXED + HAPROXY_PROTO_V2_MAX_BLOCK)

enum haproxy_proto_status {
    HAPROXY_PROTO_NEED_MORE = 0, /* only part of the header has arrived */
    HAPROXY_PROTO_DONE,
    HAPROXY_PROTO_ERROR /* malformed: h->why says why; drop the connection */
};

enum haproxy_proto_kind {
    HAPROXY_PROTO_PROXIED, /* source and destination set */
    HAPROXY_PROTO_LOCAL,   /* v2 LOCAL: keep the real peer */
    HAPROXY_PROTO_UNKNOWN  /* v1 UNKNOWN, v2 UNSPEC or UNIX: keep the real peer */
};

struct haproxy_proto_header {
    int version;                         /* 1 or 2, once known */
    enum haproxy_proto_kind kind;        /* DONE only */
    struct sockaddr_storage source;      /* PROXIED: the client, its port set */
    struct sockaddr_storage destination; /* PROXIED: where the client connected */
    size_t used;                         /* DONE: bytes of input the header took */
    const char *why;                     /* ERROR: what was wrong (static) */
};

/* haproxy_proto_parse - the PROXY header at the front of data[0..len);
 * returns the status, h filled as described above (NEED_MORE: call again
 * with the same bytes and more) */
enum haproxy_proto_status haproxy_proto_parse(const void *data, size_t len,
                                              struct haproxy_proto_header *h);
/* haproxy_proto_kind_name - "PROXIED", "LOCAL", "UNKNOWN" for logs */
const char *haproxy_proto_kind_name(enum haproxy_proto_kind kind);

#endif
