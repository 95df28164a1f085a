/*
 * local_rcpt - smtpd's check of local recipients against
 * local_recipient_maps (Postfix's "User unknown in local recipient table").
 *
 * local_rcpt_init opens the tables once per worker, before privileges are
 * dropped (a table that cannot be opened is logged and retried at each
 * check, which then answers 451).  local_rcpt_check is called by the RCPT
 * handler for every recipient.  Tables that are also in alias_maps are
 * opened with alias syntax ("name: value").
 */
#ifndef TERN_SMTPD_LOCAL_RCPT_H
#define TERN_SMTPD_LOCAL_RCPT_H

#include "buf.h"

struct config;

/* local_rcpt_init - read the parameters and open the tables */
void local_rcpt_init(const struct config *cfg);
/* local_rcpt_check - 0 when addr is acceptable (not local, no tables, or
 * found); -1 with the reply line ("550 5.1.1 ..." / "451 4.3.0 ...") */
int local_rcpt_check(const char *addr, buf_t *reply);

#endif
