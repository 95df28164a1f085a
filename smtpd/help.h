/*
 * help - HELP [topic] of tern-smtpd from a help file (docs/smtpd.md "HELP").
 *
 * help_file names a file in sendmail's helpfile format (lib/smtp_ext.h
 * smtp_ext_helpfile_parse); it is read once per listener when the config is
 * loaded.  An empty help_file keeps the built-in text.  A help file that is
 * set but cannot be read is logged once at start, and HELP then answers
 * "502 5.3.0 HELP not implemented" as sendmail does without its file.
 */
#ifndef TERN_SMTPD_HELP_H
#define TERN_SMTPD_HELP_H

struct config;
struct session;
struct smtpd_config;

/* smtpd_help_load - read help_file into cfg (a warning when it fails) */
void smtpd_help_load(struct smtpd_config *cfg, const struct config *conf);
/* smtpd_help_free - release what smtpd_help_load read */
void smtpd_help_free(struct smtpd_config *cfg);
/* smtpd_help_command - the reply to HELP arg */
void smtpd_help_command(struct session *s, const char *arg);

#endif
