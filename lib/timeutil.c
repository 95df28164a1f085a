/*
 * timeutil - dates for headers and logs (see timeutil.h).
 */
#include <stdio.h>
#include <sys/time.h>

#include "timeutil.h"

void time_rfc2822(time_t t, buf_t *out)
{
    struct tm tm;
    char date[64], zone[32];
    int off;

    localtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S", &tm);
    off = (int)(tm.tm_gmtoff / 60) % 10000;
    snprintf(zone, sizeof(zone), "%c%02d%02d", off < 0 ? '-' : '+', (off < 0 ? -off : off) / 60,
             (off < 0 ? -off : off) % 60);
    buf_printf(out, "%s %s (%s)", date, zone, tm.tm_zone ? tm.tm_zone : "UTC");
}

double time_now_double(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

void time_format_delay(double seconds, buf_t *out)
{
    if (seconds < 0)
        seconds = 0;
    if (seconds < 10)
        buf_printf(out, "%.2g", seconds < 0.01 ? 0.01 : seconds);
    else
        buf_printf(out, "%.0f", seconds);
}
