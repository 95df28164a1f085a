/*
 * timeutil - dates for headers and logs.
 */
#ifndef TERN_TIMEUTIL_H
#define TERN_TIMEUTIL_H

#include <stddef.h>
#include <time.h>
#include "buf.h"

/* time_rfc2822 - append "Sun, 22 Nov 2026 06:10:00 +0000 (UTC)" for t */
void time_rfc2822(time_t t, buf_t *out);
/* time_now_double - wall clock as seconds with microseconds */
double time_now_double(void);
/* time_format_delay - append "0.4" style seconds with one decimal */
void time_format_delay(double seconds, buf_t *out);

#endif
