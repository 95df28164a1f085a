/*
 * privacy - smtpd_privacy_flags, sendmail's PrivacyOptions: the one table of
 * flag words and what each turns on (docs/smtpd.md "Privacy flags").
 *
 * smtpd reads it per listener (HELO requirements, VRFY, EXPN, VERB, DSN
 * NOTIFY=SUCCESS and RET=FULL); qmgr (restrictqrun), showq (restrictmailq)
 * and sendmail -bv (restrictexpand) read the global value.  "goaway" is
 * the set sendmail defines: needmailhelo, needexpnhelo, needvrfyhelo,
 * noexpn, novrfy, noverb, authwarnings.  "public" is no flag at all.
 *
 * privacy_flags_parse is pure; privacy_flags_get reads the parameter and
 * reports an unknown word as "file:line: smtpd_privacy_flags: unknown flag
 * 'x' (known: ...)" in err.
 */
#ifndef TERN_PRIVACY_H
#define TERN_PRIVACY_H

#include <stddef.h>

#include "buf.h"

struct config;

enum privacy_flag {
    PRIVACY_NEEDMAILHELO = 1u << 0,   /* MAIL needs HELO/EHLO first (503) */
    PRIVACY_NEEDEXPNHELO = 1u << 1,   /* EXPN needs HELO/EHLO first (503) */
    PRIVACY_NEEDVRFYHELO = 1u << 2,   /* VRFY needs HELO/EHLO first (503) */
    PRIVACY_NOEXPN = 1u << 3,         /* EXPN refused (502), not in EHLO */
    PRIVACY_NOVRFY = 1u << 4,         /* VRFY answers 252 */
    PRIVACY_NOVERB = 1u << 5,         /* VERB: 502 Verbose unavailable */
    PRIVACY_NOETRN = 1u << 6,         /* ETRN refused (smtpd_disable_etrn_command) */
    PRIVACY_NORECEIPTS = 1u << 7,     /* NOTIFY=SUCCESS is dropped */
    PRIVACY_NOBODYRETURN = 1u << 8,   /* DSNs return headers only (RET=HDRS) */
    PRIVACY_AUTHWARNINGS = 1u << 9,   /* X-Authentication-Warning (tern: always) */
    PRIVACY_RESTRICTMAILQ = 1u << 10, /* restrict_queue_listing */
    PRIVACY_RESTRICTQRUN = 1u << 11,  /* restrict_queue_run */
    PRIVACY_RESTRICTEXPAND = 1u << 12 /* sendmail -bv for root and mail_owner only */
};

#define PRIVACY_GOAWAY                                                                             \
    (PRIVACY_NEEDMAILHELO | PRIVACY_NEEDEXPNHELO | PRIVACY_NEEDVRFYHELO | PRIVACY_NOEXPN |         \
     PRIVACY_NOVRFY | PRIVACY_NOVERB | PRIVACY_AUTHWARNINGS)

/* privacy_flags_parse - OR the flags of words[0..count) into *flags; -1
 * with *bad set to the first unknown word */
int privacy_flags_parse(char *const *words, size_t count, unsigned *flags, const char **bad);
/* privacy_flags_get - smtpd_privacy_flags of cfg (a listener's view or the
 * global config); -1 with err naming file:line and the word */
int privacy_flags_get(const struct config *cfg, unsigned *flags, buf_t *err);
/* privacy_flags_known - append the accepted words, comma-separated */
void privacy_flags_known(buf_t *out);

#endif
