/*
 * mtasts - MTA-STS (RFC 8461): the parsers and the MX matching an SMTP client
 * needs to decide whether a recipient domain demands authenticated TLS.
 * Pure: bytes in, a parsed record out, no DNS, no HTTPS, no clock.  The
 * caller (tern-smtp, later) fetches the "_mta-sts.DOMAIN" TXT record and
 * "https://mta-sts.DOMAIN/.well-known/mta-sts.txt", caches the policy for
 * max_age seconds and asks mtasts_mx_match for each MX host it connects to.
 * Nothing here is trusted: every input may be hostile and is bounded.
 *
 * TXT record (RFC 8461 3.1), case-sensitive as the ABNF's %s strings:
 *   v=STSv1; id=20160831085700Z;
 * "v=STSv1" comes first, exactly; fields follow, each after a ';' with
 * optional spaces or tabs around it; a final ';' and trailing blanks are
 * allowed.  id= (1 to 32 letters and digits) is required once; every other
 * field must be name=value (name: a letter or digit, then at most 31 of
 * letters, digits, '_', '-', '.'; value: printable ASCII without '=', ';'
 * and space) and is ignored.  A second id= is refused (which policy would
 * it name?).
 *
 * Policy file (RFC 8461 3.2): lines "key: value" ended by LF or CRLF (the
 * last one may be unterminated); blanks may follow the ':' and end a line,
 * nothing precedes the key.  Keys and the version and mode values are
 * case-sensitive.
 *   version: STSv1          required, once
 *   mode: enforce|testing|none   required, once
 *   max_age: SECONDS        required, once; 1 to 10 digits, at most 31557600
 *   mx: PATTERN             one or more (none allowed with mode: none);
 *                           a host name (RFC 5321 Domain: labels of letters,
 *                           digits and inner '-', each 1-63 bytes, at most
 *                           253 bytes, no trailing dot) or "*." and one;
 *                           stored lower-cased, at most MTASTS_MAX_MX lines
 * Duplicates: the ABNF says version, mode and max_age are "required once",
 * so a second one makes the policy invalid (neither the first nor the last
 * wins).  Other keys are ignored if they are well-formed (name as in the TXT
 * record, a value without control characters; bytes >= 0x80 are let through
 * for UTF-8).  Empty lines are skipped (the ABNF has none, but they carry
 * nothing).  A policy longer than MTASTS_MAX_POLICY bytes, a NUL or other
 * control character, a bare CR, a malformed line: invalid.
 *
 * Errors: 0 ok; -1 with a one-line reason appended to err (which the caller
 * empties), and nothing to free.
 */
#ifndef TERN_MTASTS_H
#define TERN_MTASTS_H

#include <stddef.h>

#include "buf.h"

#define MTASTS_MAX_POLICY 65536   /* bytes of policy text */
#define MTASTS_MAX_MX 100         /* mx lines in a policy */
#define MTASTS_MAX_AGE 31557600LL /* one year, RFC 8461 3.2 */
#define MTASTS_MAX_ID 32          /* characters of a TXT record's id */

enum mtasts_mode {
    MTASTS_MODE_NONE,    /* the domain withdrew its policy */
    MTASTS_MODE_TESTING, /* report failures, deliver anyway */
    MTASTS_MODE_ENFORCE, /* deliver only over verified TLS to a matching MX */
};

struct mtasts_policy {
    enum mtasts_mode mode;
    char **mx;       /* lower-case patterns: "mx.example.com", "*.example.net" */
    size_t mx_count; /* 0 only with MTASTS_MODE_NONE */
    long long max_age;
};

/* mtasts_txt_parse - parse one _mta-sts TXT record; on 0 id holds the id
 * (replacing its contents) */
int mtasts_txt_parse(const char *txt, buf_t *id, buf_t *err);

/* mtasts_policy_parse - parse len bytes of policy text into p (which need
 * not be initialized); on -1 p is empty (mtasts_policy_free is harmless) */
int mtasts_policy_parse(const char *text, size_t len, struct mtasts_policy *p, buf_t *err);

/* mtasts_policy_free - release the mx list and empty p */
void mtasts_policy_free(struct mtasts_policy *p);
/* mtasts_policy_copy - dst (not initialized) becomes a copy of src */
void mtasts_policy_copy(struct mtasts_policy *dst, const struct mtasts_policy *src);

/* mtasts_mx_match - 1 when mx_host matches one of p's mx patterns (RFC 8461
 * 4.1: case-insensitive, a trailing dot ignored, "*.example.com" stands for
 * exactly one label before example.com), else 0; a host that is not a valid
 * host name matches nothing.  The mode is the caller's to consult. */
int mtasts_mx_match(const struct mtasts_policy *p, const char *mx_host);

#endif
