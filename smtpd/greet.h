/*
 * greet - what happens before tern-smtpd's greeting (docs/smtpd.md):
 *
 *   greet.c   the greet pause (sendmail's FEATURE(greet_pause), Postfix
 *             postscreen's pregreet test): the 220 waits smtpd_greet_pause;
 *             a client that sends anything first is an early talker: it
 *             gets "554 HOST ESMTP not accepting messages" at once and from
 *             then on nothing it sends is done (see smtpd_greet_rejecting).
 *   load.c    smtpd_refuse_load (sendmail's RefuseLA): 421 at accept time.
 *   expn.c    EXPN (alias_maps, one level) for mynetworks clients.
 *   privacy.c the smtpd effects of smtpd_privacy_flags (lib/privacy.h).
 *
 * Called from session.c (start, read before the greeting, free), commands.c
 * (each command line) and main.c (accept, start-up).
 */
#ifndef TERN_SMTPD_GREET_H
#define TERN_SMTPD_GREET_H

#include <stddef.h>

#include "proto.h"

struct session;
struct smtpd_listener;
struct smtpd_server;
struct smtpd_config;
struct config;

/* greet.c */
/* smtpd_greet_pause_parse - "0", "1500ms", "2s", "2" (seconds) into ms; -1
 * when malformed or over an hour */
int smtpd_greet_pause_parse(const char *text, long long *ms);
/* smtpd_greet_pause_ms - how long this client waits for the greeting */
long long smtpd_greet_pause_ms(struct session *s);
/* smtpd_greet_start - arm the pause (a greet hold and a timer) if any */
void smtpd_greet_start(struct session *s);
/* smtpd_greet_early_input - input arrived before the greeting was sent */
void smtpd_greet_early_input(struct session *s);
/* smtpd_greet_refusal - text becomes an early talker's greeting */
void smtpd_greet_refusal(struct session *s, buf_t *text);
/* smtpd_greet_session_end - drop the timer (session_free) */
void smtpd_greet_session_end(struct session *s);
/* smtpd_greet_rejecting - the command of an early talker (greet_rejecting
 * set): HELO/EHLO are answered 554 and MAIL/RCPT/DATA 550 here, BDAT 550
 * after its chunk (arg) is dropped (SMTPD_GREET_ANSWERED returned); QUIT is
 * returned to be done as usual; every other command comes back as
 * PROTO_CMD_UNKNOWN (500) */
enum proto_cmd smtpd_greet_rejecting(struct session *s, enum proto_cmd cmd, const char *arg);
#define SMTPD_GREET_ANSWERED PROTO_CMD_COUNT

/* load.c */
/* smtpd_load_open - load_average_file (before chroot and the privilege drop) */
void smtpd_load_open(struct smtpd_server *server);
/* smtpd_load_refuse - the load is above the listener's smtpd_refuse_load:
 * the 421 is written to fd (not for SMTPS) and 1 returned; the caller
 * closes fd.  0 otherwise */
int smtpd_load_refuse(struct smtpd_listener *listener, int fd);
/* smtpd_daemon_name - sendmail's name of the listener in log lines: MTA
 * (smtpd, port 25), MSA (submission), else the listener's own name */
const char *smtpd_daemon_name(const struct smtpd_config *cfg);

/* expn.c */
/* smtpd_expn_open - open alias_maps for EXPN (before the privilege drop),
 * when some listener answers EXPN */
void smtpd_expn_open(struct smtpd_server *server);
/* smtpd_expn_close - release */
void smtpd_expn_close(struct smtpd_server *server);
/* smtpd_expn_offered - EXPN is answered for this client (EHLO lists it) */
int smtpd_expn_offered(const struct session *s);
/* smtpd_expn_command - EXPN arg */
void smtpd_expn_command(struct session *s, const char *arg);
/* vrfy.c: smtpd_vrfy_command - VRFY arg (alias_maps as opened for EXPN) */
void smtpd_vrfy_command(struct session *s, const char *arg);

/* privacy.c */
/* smtpd_privacy_config - smtpd_privacy_flags and disable_expn_command into
 * cfg (fatal on an unknown word, naming file:line) */
void smtpd_privacy_config(struct smtpd_config *cfg, const struct config *conf);
/* smtpd_privacy_refuse - a reply the flags require before cmd is done
 * (503 needvrfyhelo/needexpnhelo, 502 noverb); 1 when it replied */
int smtpd_privacy_refuse(struct session *s, enum proto_cmd cmd);
/* smtpd_privacy_notify - noreceipts: drop SUCCESS from a NOTIFY list
 * (SUCCESS alone becomes NEVER) */
void smtpd_privacy_notify(const struct session *s, buf_t *notify);

#endif
