/*
 * bdat_state - the CHUNKING (RFC 3030) state of one tern-smtpd session,
 * without any I/O: what a BDAT command line means in the transaction, how
 * the octets of a chunk are counted and turned into message content.
 *
 * Callers: smtpd/bdat.c (the session glue) and fuzz/fuzz_smtpd_bdat.c.
 * bdat_state_command decides on one "BDAT <size> [LAST]" line, given what
 * the session knows of the transaction; then exactly size octets follow on
 * the connection, which the session hands to bdat_state_octets in pieces of
 * any length until bdat_state_chunk_left is 0.  Every reply text lives here
 * (or in lib/smtp_ext.c) and is unit-tested.
 *
 * Content: with BODY=BINARYMIME the octets are the message, unchanged (CR,
 * LF and NUL survive byte for byte).  Otherwise the content is line text
 * as with DATA: a bare LF or bare CR becomes CRLF, so the queue file holds
 * what DATA would have stored (docs/smtpd.md, "CHUNKING"); a CRLF split
 * between two chunks stays one CRLF.  There is no dot-stuffing and no
 * end-of-data search: a line "." is content.
 *
 * Trust: none; every count is bounded.  Memory: the reply buffer only,
 * released by bdat_state_free.  No global state.
 */
#ifndef TERN_SMTPD_BDAT_STATE_H
#define TERN_SMTPD_BDAT_STATE_H

#include <stddef.h>

#include "buf.h"

/* what the session knows of the transaction when BDAT arrives */
struct bdat_txn {
    int have_mail;        /* MAIL was accepted */
    long long rcpt_count; /* accepted recipients */
    long long size_limit; /* message_size_limit; 0: none */
    int binary;           /* MAIL had BODY=BINARYMIME */
};

/* what the session must do with the chunk announced by a BDAT line */
enum bdat_action {
    BDAT_FIRST,  /* the transaction's first chunk: start the message, then read */
    BDAT_APPEND, /* read the chunk into the message */
    BDAT_SKIP,   /* read and drop the chunk, then send reply; see failed */
    BDAT_CLOSE,  /* send reply and close: the chunk cannot be skipped */
};

struct bdat_state {
    /* the transaction */
    int open;        /* a chunk was accepted and the message is being built */
    int failed;      /* a chunk failed: BDAT gets 503 until RSET, HELO or MAIL */
    long long total; /* octets of the accepted chunks */
    int binary;      /* BINARYMIME: octets pass unchanged */
    int cr;          /* text: the last octet was a CR whose LF may follow */
    int bare_seen;   /* text: a bare LF or bare CR was turned into CRLF */
    /* the session: octets dropped for failed chunks, bounded (see .c) */
    long long skipped;
    /* the chunk being read */
    int reading;    /* octets of a chunk are expected */
    int skipping;   /* they are dropped */
    int last;       /* the chunk is LAST */
    long long size; /* its announced size */
    long long left; /* its octets not read yet */
    buf_t reply;    /* BDAT_SKIP: the reply after the chunk (may be empty) */
};

void bdat_state_init(struct bdat_state *b);
void bdat_state_free(struct bdat_state *b);
/* bdat_state_reset - a new transaction (RSET, HELO, MAIL, a message
 * ended): everything but the session's skipped count */
void bdat_state_reset(struct bdat_state *b);
/* bdat_state_command - one BDAT line's argument (after the verb).  Sets
 * the chunk (reading, size, left, last) for every action but BDAT_CLOSE;
 * reply holds the line for BDAT_SKIP and BDAT_CLOSE.  A BDAT_SKIP that
 * fails the transaction (no recipient, too big) sets failed; the session
 * then forgets the transaction.  BDAT_FIRST sets open: the session opens
 * the message and calls bdat_state_fail if it cannot */
enum bdat_action bdat_state_command(struct bdat_state *b, const char *arg, const struct bdat_txn *t,
                                    buf_t *reply);
/* bdat_state_refuse - a BDAT line refused before its command is looked
 * at (no EHLO, STARTTLS required, an early talker): BDAT_SKIP with the
 * chunk set to be dropped and refusal in reply for afterwards, or
 * BDAT_CLOSE (a syntax error, or the session dropped too much already)
 * with the reply to send before closing.  The transaction is untouched */
enum bdat_action bdat_state_refuse(struct bdat_state *b, const char *arg, const char *refusal,
                                   long long size_limit, buf_t *reply);
/* bdat_state_fail - the chunk being read failed after all (the first
 * chunk's policy, milters or cleanup said no): skip it, reply afterwards
 * (reply may be "" when it was already sent) */
void bdat_state_fail(struct bdat_state *b, const char *reply);
/* bdat_state_octets - take up to len octets of the chunk from in; the
 * content (none while skipping) is appended to out.  Returns the octets
 * taken: less than len once the chunk is complete */
size_t bdat_state_octets(struct bdat_state *b, const char *in, size_t len, buf_t *out);
/* bdat_state_chunk_end - the chunk is complete: reading stops; for the
 * LAST chunk of text content a pending CR is closed with LF */
void bdat_state_chunk_end(struct bdat_state *b, buf_t *out);
/* bdat_state_ok_reply - "250 2.0.0 <size> octets received" into reply */
void bdat_state_ok_reply(const struct bdat_state *b, buf_t *reply);

#endif
