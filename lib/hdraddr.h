/*
 * hdraddr - the addresses in RFC 5322 header address lists (From:, To:, Cc:
 * ...): find each one, and replace only the address.
 *
 * cleanup rewrites header addresses (canonical maps, masquerading, qualifying
 * "alice" as "alice@example.test"), the smtp client rewrites sender headers
 * on the way out, and sendmail -t takes its recipients from To:/Cc:/Bcc:;
 * they share this one parser.  It is pure (bytes in, bytes out, no I/O, no
 * logging) and trusts nothing: values come from the network.
 *
 * A value is a header field body, the bytes after "Name:".  It may be folded
 * (a line break -- CRLF or a lone LF -- followed by SP or HTAB is white space;
 * folds stay where they are) and may end with one line break.  The list is
 * split into elements at commas outside quoted strings, comments, domain
 * literals and angle brackets.  An element is one of:
 *
 *  - "[display-name] <addr-spec>": fn gets what is inside the brackets minus
 *    a source route ("<@a,@b:user@dom>" gives "user@dom", and only that part
 *    is replaced).  The display name is kept byte for byte whatever words it
 *    holds: atoms, RFC 2047 encoded words ("=?utf-8?q?J=C3=B6rg?=" is just an
 *    atom), quoted strings with commas, even a stray '@'.  "<>" (the null
 *    sender of Return-Path: <>) is never passed to fn.
 *  - a bare addr-spec "local-part[@domain]": the local part is atoms and
 *    quoted strings joined by dots ("john.q", "\"john q\"", "\"a\".b"), the
 *    domain atoms joined by dots or a domain literal ("[192.0.2.1]").
 *    Unqualified addresses ("alice") are passed to fn.  A bare element that
 *    is not an addr-spec ("Undisclosed recipients", "a@b c@d") is left alone
 *    and fn is not called for it.
 *  - a group "name: element, element;" gives its members; "name:;" nothing.
 *    Several groups may follow each other; the last ';' may be left out.
 *  - nothing (",,", a trailing comma): skipped.
 *
 * fn gets the addr-spec as written, without comments, and without white space
 * and line breaks outside quoted strings (a fold inside a quoted string loses
 * its line break, keeps its space or tab): "joe . bloggs (x) @ example.com"
 * gives "joe.bloggs@example.com", "\"john q\"@example.com" keeps its quotes.
 * It is never empty and holds no control character but a tab inside quotes.
 * The bytes replaced run from the addr-spec's first token to its last:
 * comments around or after an address stay ("joe@x (Joe Bloggs)"), a comment
 * inside a bare addr-spec ("joe(c)@x") goes when that address is replaced
 * and stays when it is not.
 *
 * Refused (-1): an unbalanced '<', '"', '(' or '['; a stray '>', ')' or ']';
 * a ';' outside a group; a group inside a group or without a name; a ':' or
 * anything but a comment after "<...>"; a backslash outside quoted strings,
 * comments and literals; a control character other than a tab anywhere
 * (NUL included); a line break that is not a fold.  The whole value is
 * checked before fn is called for the first address, so on -1 fn has not been
 * called at all.
 *
 * Work and memory are linear in len: comments nest by a counter, never by
 * recursion, and each byte is read a bounded number of times.
 */
#ifndef TERN_HDRADDR_H
#define TERN_HDRADDR_H

#include <stddef.h>
#include "buf.h"

/* hdraddr_map_fn - asked about each address: addr is the addr-spec as
 * written (see above; never empty).  Return 1 after putting the replacement
 * into out (an empty out stands for "keep"), 0 to keep the address.  out is
 * empty at each call; the replacement is inserted as given, so it must be a
 * valid addr-spec without line breaks. */
typedef int (*hdraddr_map_fn)(const char *addr, buf_t *out, void *ctx);
/* hdraddr_other_fn - told about each element that gives fn no address
 * although it is not empty: a phrase, a bare element that is no addr-spec,
 * "<>".  text/len is the element as written, from its first token to its
 * last (a group's name is not an element). */
typedef void (*hdraddr_other_fn)(const char *text, size_t len, void *ctx);

/* hdraddr_rewrite - value/len is a header field body.  Calls fn for every
 * address of the list, in order, and copies the body into out (reset first,
 * so value must not point into out) with the replacements and everything
 * else byte for byte.  Returns the number of addresses replaced (0: out
 * holds an unchanged copy), or -1 when the body is not an address list that
 * can be rewritten safely: out then holds an unchanged copy too, and fn has
 * not been called. */
int hdraddr_rewrite(const char *value, size_t len, hdraddr_map_fn fn, void *ctx, buf_t *out);
/* hdraddr_each - the same walk without rewriting (fn's out is ignored):
 * the number of addresses fn was called for, or -1 as above */
int hdraddr_each(const char *value, size_t len, hdraddr_map_fn fn, void *ctx);
/* hdraddr_scan - hdraddr_each that also tells other about each element that
 * is not an address, in order with fn's calls: for callers that must refuse
 * such elements (sendmail -t).  fn and other may be NULL. */
int hdraddr_scan(const char *value, size_t len, hdraddr_map_fn fn, hdraddr_other_fn other,
                 void *ctx);

/* which address class a header belongs to, by its name (Postfix's
 * header_opts): HDRADDR_SENDER for From, Sender, Reply-To, Errors-To,
 * Return-Path, Return-Receipt-To, Disposition-Notification-To,
 * Mail-Followup-To, Resent-From, Resent-Sender; HDRADDR_RECIPIENT for To,
 * Cc, Bcc, Apparently-To, Resent-To, Resent-Cc, Resent-Bcc, Resent-Reply-To */
enum hdraddr_class { HDRADDR_NONE, HDRADDR_SENDER, HDRADDR_RECIPIENT };

/* hdraddr_header_class - the class of the header called name/len (case does
 * not matter; white space before the colon is ignored) */
enum hdraddr_class hdraddr_header_class(const char *name, size_t len);

/* hdraddr_section_fn - asked about each address of a header of a wanted
 * class: like hdraddr_map_fn, with the header's class */
typedef int (*hdraddr_section_fn)(enum hdraddr_class cls, const char *addr, buf_t *out, void *ctx);
/* hdraddr_rewrite_section - hdrs/len is a whole header section (fields
 * ending in LF or CRLF, continuation lines starting with SP or HTAB).  The
 * address lists of the headers whose class is in classes (1 << HDRADDR_SENDER
 * | 1 << HDRADDR_RECIPIENT) are rewritten with fn; everything else, and a
 * field that is not a clean address list, is copied byte for byte into out
 * (appended).  Returns the number of addresses replaced. */
int hdraddr_rewrite_section(const char *hdrs, size_t len, int classes, hdraddr_section_fn fn,
                            void *ctx, buf_t *out);

#endif
