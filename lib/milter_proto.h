/*
 * milter_proto - a pure codec of the sendmail milter protocol, version 6
 * (the MTA side: what tern sends to a content filter and what it reads back).
 *
 * Wire format: every packet is a 4-byte big-endian length, then one command
 * byte, then length - 1 bytes of data.  Numbers inside data are big-endian
 * (4 bytes, the connect port 2 bytes); strings end with a NUL.
 *
 * What it covers:
 *  - framing: milter_proto_encode() writes one packet; a milter_proto_reader
 *    takes the milter's bytes in chunks of any size (one byte at a time
 *    works) and yields whole packets.  A length of 0 or over
 *    MILTER_PROTO_MAX_PACKET is an error before anything is allocated for
 *    it, so a malicious milter costs at most that much memory.
 *  - builders for every MTA->milter command (SMFIC_*), including the body
 *    split into chunks of at most MILTER_PROTO_BODY_CHUNK bytes;
 *  - a parser of every milter->MTA reply (SMFIR_* and the OPTNEG answer with
 *    its per-stage macro lists), strict: missing NULs, trailing garbage,
 *    bad codes, control characters where the text reaches SMTP or a header
 *    are errors with a reason text, never a guess;
 *  - negotiation: the agreed version / actions / protocol flags, which
 *    steps are not sent and which are sent without waiting for a reply;
 *  - milter_proto_reply_allowed(): whether a reply is legal after a given
 *    command under the agreed flags (modifications only at end of message
 *    and only when negotiated, skip only for body chunks, ...).
 *
 * Memory: parsed replies point into the packet they came from; they are
 * valid until the packet's buffer changes (for the reader: until the next
 * milter_proto_reader_feed() or milter_proto_reader_free()).  Copy
 * what must outlive it.  Nothing here logs, does I/O or keeps global state.
 *
 * Errors: functions return 0 / -1 (the reader 1 / 0 / -1); on -1 *why (when
 * the caller passed one) is a static English sentence for the log.  After a
 * reader error the stream is out of step: the caller must drop the milter.
 *
 * What a caller (issue 12: smtpd's and cleanup's milter client) still does:
 * the non-blocking I/O and timeouts; sending macros (SMFIC_MACRO) before
 * each step with the names the milter asked for; not sending skipped steps
 * and not waiting for a reply where the flags say so; mapping replies to
 * SMTP answers (421 in a replycode closes the session in sendmail); header
 * indexes against the real header list (insheader index 0 = top, chgheader
 * counts occurrences of the name from 1, an empty value deletes); turning
 * "\n" in header values into its own line endings; parsing the addresses
 * and ESMTP arguments of chgfrom / addrcpt; applying the changes to the
 * message before it is queued; the default action when a milter fails.
 * Negotiation here refuses protocol flags that were not offered (Postfix
 * only logs them); a client that wants Postfix's leniency masks the
 * answer with its offer before calling milter_proto_negotiate().
 */
#ifndef TERN_MILTER_PROTO_H
#define TERN_MILTER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* the protocol version tern speaks */
#define MILTER_PROTO_VERSION 6
/* the oldest version a milter may answer with */
#define MILTER_PROTO_VERSION_MIN 2
/* largest body chunk in one SMFIC_BODY (libmilter's MILTER_CHUNK_SIZE) */
#define MILTER_PROTO_BODY_CHUNK 65535
/* largest packet (command byte + data) accepted from a milter: a 1 MiB
 * replaced-body chunk plus room for the command */
#define MILTER_PROTO_MAX_PACKET (1024u * 1024 + 1024)

/* commands, MTA -> milter */
#define SMFIC_ABORT 'A'
#define SMFIC_BODY 'B'
#define SMFIC_CONNECT 'C'
#define SMFIC_MACRO 'D'
#define SMFIC_BODYEOB 'E'
#define SMFIC_HELO 'H'
#define SMFIC_QUIT_NC 'K'
#define SMFIC_HEADER 'L'
#define SMFIC_MAIL 'M'
#define SMFIC_EOH 'N'
#define SMFIC_OPTNEG 'O'
#define SMFIC_QUIT 'Q'
#define SMFIC_RCPT 'R'
#define SMFIC_DATA 'T'
#define SMFIC_UNKNOWN 'U'

/* replies, milter -> MTA (SMFIC_OPTNEG also answers the negotiation) */
#define SMFIR_ADDRCPT '+'
#define SMFIR_DELRCPT '-'
#define SMFIR_ADDRCPT_PAR '2'
#define SMFIR_SHUTDOWN '4'
#define SMFIR_ACCEPT 'a'
#define SMFIR_REPLBODY 'b'
#define SMFIR_CONTINUE 'c'
#define SMFIR_DISCARD 'd'
#define SMFIR_CHGFROM 'e'
#define SMFIR_CONN_FAIL 'f'
#define SMFIR_ADDHEADER 'h'
#define SMFIR_INSHEADER 'i'
#define SMFIR_CHGHEADER 'm'
#define SMFIR_PROGRESS 'p'
#define SMFIR_QUARANTINE 'q'
#define SMFIR_REJECT 'r'
#define SMFIR_SKIP 's'
#define SMFIR_TEMPFAIL 't'
#define SMFIR_REPLYCODE 'y'

/* connect address families */
#define SMFIA_UNKNOWN 'U'
#define SMFIA_UNIX 'L'
#define SMFIA_INET '4'
#define SMFIA_INET6 '6'

/* actions a milter may take (SMFIF_*) */
#define SMFIF_ADDHDRS 0x01u
#define SMFIF_CHGBODY 0x02u
#define SMFIF_ADDRCPT 0x04u
#define SMFIF_DELRCPT 0x08u
#define SMFIF_CHGHDRS 0x10u
#define SMFIF_QUARANTINE 0x20u
#define SMFIF_CHGFROM 0x40u
#define SMFIF_ADDRCPT_PAR 0x80u
#define SMFIF_SETSYMLIST 0x100u
#define MILTER_PROTO_ACTIONS_ALL 0x1ffu

/* protocol steps and flags (SMFIP_*) */
#define SMFIP_NOCONNECT 0x1u
#define SMFIP_NOHELO 0x2u
#define SMFIP_NOMAIL 0x4u
#define SMFIP_NORCPT 0x8u
#define SMFIP_NOBODY 0x10u
#define SMFIP_NOHDRS 0x20u
#define SMFIP_NOEOH 0x40u
#define SMFIP_NR_HDR 0x80u
#define SMFIP_NOUNKNOWN 0x100u
#define SMFIP_NODATA 0x200u
#define SMFIP_SKIP 0x400u
#define SMFIP_RCPT_REJ 0x800u
#define SMFIP_NR_CONN 0x1000u
#define SMFIP_NR_HELO 0x2000u
#define SMFIP_NR_MAIL 0x4000u
#define SMFIP_NR_RCPT 0x8000u
#define SMFIP_NR_DATA 0x10000u
#define SMFIP_NR_UNKN 0x20000u
#define SMFIP_NR_EOH 0x40000u
#define SMFIP_NR_BODY 0x80000u
#define SMFIP_HDR_LEADSPC 0x100000u
#define SMFIP_MDS_256K 0x10000000u
#define SMFIP_MDS_1M 0x20000000u

/* macro stages of the OPTNEG answer (SMFIM_*) */
enum milter_proto_stage {
    SMFIM_CONNECT = 0,
    SMFIM_HELO = 1,
    SMFIM_ENVFROM = 2,
    SMFIM_ENVRCPT = 3,
    SMFIM_DATA = 4,
    SMFIM_EOM = 5,
    SMFIM_EOH = 6,
    MILTER_PROTO_STAGES = 7
};

/* ---- framing ---- */

/* milter_proto_encode - append one packet (cmd + len bytes of data) to out */
void milter_proto_encode(buf_t *out, char cmd, const void *data, size_t len);

struct milter_proto_packet {
    char cmd;
    const char *data; /* len bytes (not NUL-terminated) */
    size_t len;
};

struct milter_proto_reader {
    buf_t in;   /* bytes received */
    size_t off; /* bytes of in already handed out as packets */
};

void milter_proto_reader_init(struct milter_proto_reader *r);
void milter_proto_reader_free(struct milter_proto_reader *r);
/* milter_proto_reader_feed - append len received bytes.  Call
 * milter_proto_reader_next until it returns 0 after each feed: the reader
 * then holds at most one partial packet besides what was just fed. */
void milter_proto_reader_feed(struct milter_proto_reader *r, const void *data, size_t len);
/* milter_proto_reader_next - 1 and *p set when a whole packet is there (it
 * points into the reader: valid until the next feed or free, so several
 * packets can be looked at together); 0 when more bytes are
 * needed; -1 (reason in *why) when the length is 0 or over the bound.  A
 * length is judged as soon as its 4 bytes are in, before the data. */
int milter_proto_reader_next(struct milter_proto_reader *r, struct milter_proto_packet *p,
                             const char **why);

/* ---- MTA -> milter commands (each appends one packet to out) ---- */

void milter_proto_optneg(buf_t *out, uint32_t version, uint32_t actions, uint32_t protocol);
/* milter_proto_macros - SMFIC_MACRO for the step cmd; names[i] / values[i]
 * for i < count (long names in sendmail's braces: "{client_addr}") */
void milter_proto_macros(buf_t *out, char cmd, const char *const *names, const char *const *values,
                         size_t count);
/* milter_proto_connect - family SMFIA_*; port and address are not sent for
 * SMFIA_UNKNOWN (address is the socket path for SMFIA_UNIX, port 0) */
void milter_proto_connect(buf_t *out, const char *hostname, char family, uint16_t port,
                          const char *address);
void milter_proto_helo(buf_t *out, const char *helo);
/* milter_proto_mail / _rcpt - the address ("<a@b>") then each ESMTP
 * argument ("SIZE=100") as its own NUL-terminated string */
void milter_proto_mail(buf_t *out, const char *sender, const char *const *args, size_t nargs);
void milter_proto_rcpt(buf_t *out, const char *rcpt, const char *const *args, size_t nargs);
void milter_proto_data(buf_t *out);
void milter_proto_header(buf_t *out, const char *name, const char *value);
void milter_proto_eoh(buf_t *out);
/* milter_proto_body - one SMFIC_BODY per MILTER_PROTO_BODY_CHUNK bytes of
 * data (none when len is 0) */
void milter_proto_body(buf_t *out, const void *data, size_t len);
void milter_proto_body_end(buf_t *out);
void milter_proto_abort(buf_t *out);
void milter_proto_quit(buf_t *out);
/* milter_proto_quit_new_connection - end this session, keep the socket */
void milter_proto_quit_new_connection(buf_t *out);
void milter_proto_unknown(buf_t *out, const char *command);

/* ---- milter -> MTA replies ---- */

struct milter_proto_optneg {
    uint32_t version;
    uint32_t actions;
    uint32_t protocol;
    /* space-separated macro names the milter wants at each stage, NULL
     * where it asked for nothing (then the configured lists apply) */
    const char *macros[MILTER_PROTO_STAGES];
};

struct milter_proto_reply {
    char cmd; /* SMFIR_* (SMFIC_OPTNEG for the negotiation answer) */
    /* SMFIR_INSHEADER / SMFIR_CHGHEADER: the index as sent (at most
     * INT32_MAX; its meaning is the caller's, see the top of this file) */
    uint32_t index;
    /* header name (add/ins/chgheader); the address (addrcpt, addrcpt_par,
     * delrcpt, chgfrom); the reason (quarantine); the whole text, lines
     * separated by "\r\n" (replycode) */
    const char *text;
    /* header value ("" in chgheader = delete); ESMTP arguments of
     * addrcpt_par / chgfrom (NULL when absent or empty) */
    const char *value;
    const char *body; /* SMFIR_REPLBODY: body_len bytes, may hold NULs */
    size_t body_len;
    int code;                          /* SMFIR_REPLYCODE: 400..599 */
    char enhanced[16];                 /* SMFIR_REPLYCODE: "5.7.1" of the first line or "" */
    struct milter_proto_optneg optneg; /* SMFIC_OPTNEG */
};

/* milter_proto_reply_parse - parse one packet from the milter into *r
 * (pointers into p's data).  0 ok; -1 with *why for an unknown command or
 * malformed data. */
int milter_proto_reply_parse(const struct milter_proto_packet *p, struct milter_proto_reply *r,
                             const char **why);

/* ---- negotiation ---- */

struct milter_proto_agreed {
    uint32_t version;  /* the milter's version (2..6) */
    uint32_t actions;  /* what the milter may do */
    uint32_t protocol; /* steps not sent / not answered, and other flags */
};

/* milter_proto_negotiate - from what tern offered (version, actions,
 * protocol flags) and the milter's OPTNEG answer, the agreed set.  -1 with
 * *why when the milter's version is below 2 or above the offer, or it asks
 * for an action or a protocol flag that was not offered.  A version 2 or 3
 * milter is not sent DATA (and a version 2 one not UNKNOWN), which older
 * libmilters do not know. */
int milter_proto_negotiate(uint32_t version, uint32_t actions, uint32_t protocol,
                           const struct milter_proto_optneg *answer,
                           struct milter_proto_agreed *agreed, const char **why);
/* milter_proto_step_sent - 0 when the agreed flags say not to send cmd at
 * all (connect, helo, mail, rcpt, data, header, eoh, body, unknown) */
int milter_proto_step_sent(const struct milter_proto_agreed *a, char cmd);
/* milter_proto_step_replies - 1 when the milter answers cmd (0 for macro,
 * abort, quit, quit-nc and the steps with an SMFIP_NR_* flag) */
int milter_proto_step_replies(const struct milter_proto_agreed *a, char cmd);
/* milter_proto_reply_allowed - 0 when reply r may come after command cmd
 * under the agreed flags, -1 with *why otherwise (a modification outside
 * end of message or not negotiated, skip outside the body, ...) */
int milter_proto_reply_allowed(const struct milter_proto_agreed *a, char cmd,
                               const struct milter_proto_reply *r, const char **why);

#endif
