/*
 * throttle - the pace of accepts under smtpd_connection_rate_throttle
 * (throttle.h).
 */
#include <stdio.h>

#include "throttle.h"

int smtpd_throttle_worker_parse(const char *text, long long *index, long long *count)
{
    char tail;

    if (text == NULL || sscanf(text, "%lld/%lld%c", index, count, &tail) != 2)
        return -1;
    return *index >= 0 && *index < *count ? 0 : -1;
}

long long smtpd_throttle_share(long long rate, long long index, long long count)
{
    if (rate <= 0 || count <= 0)
        return 0;
    return rate / count + (index < rate % count ? 1 : 0);
}

void smtpd_throttle_init(struct smtpd_throttle *t, long long rate, long long index, long long count)
{
    long long share = smtpd_throttle_share(rate, index, count);

    t->interval = share > 0 ? 1.0 / (double)share : 0;
    t->closed = rate > 0 && share == 0;
    t->next = 0;
}

double smtpd_throttle_take(struct smtpd_throttle *t, double now)
{
    if (t->interval <= 0)
        return 0;
    /* an accept a little late (the timer fired a few ms late) keeps the
     * schedule, so the lateness does not add up over a long queue; later
     * than a tenth of the interval (no one was waiting), the schedule
     * starts again from now, and no two accepts come closer than 0.9 of it */
    if (t->next < now - t->interval / 10)
        t->next = now;
    t->next += t->interval;
    return t->next > now ? t->next - now : 0;
}
