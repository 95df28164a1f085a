/*
 * qid - sortable queue IDs (see qid.h).
 */
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "qid.h"

static const char qid_digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* qid_encode - n in base 62, most significant first, exactly width digits */
static void qid_encode(unsigned long long n, char *out, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = qid_digits[n % 62];
        n /= 62;
    }
}

void qid_new(char out[QID_LEN + 1])
{
    static unsigned long seq;
    struct timeval tv;

    gettimeofday(&tv, NULL);
    qid_encode((unsigned long long)tv.tv_sec, out, 6);
    qid_encode((unsigned long long)tv.tv_usec, out + 6, 4);
    qid_encode((unsigned long long)(getpid() * 61u + seq++) % (62 * 62), out + 10, 2);
    out[QID_LEN] = 0;
}

int qid_valid(const char *s)
{
    if (strlen(s) != QID_LEN)
        return 0;
    for (int i = 0; i < QID_LEN; i++)
        if (strchr(qid_digits, s[i]) == NULL || s[i] == 0)
            return 0;
    return 1;
}

char qid_hash_dir(const char *s)
{
    unsigned h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return "0123456789abcdef"[h & 15];
}

long long qid_arrival(const char *s)
{
    unsigned long long n = 0;

    if (!qid_valid(s))
        return -1;
    for (int i = 0; i < 6; i++)
        n = n * 62 + (unsigned long long)(strchr(qid_digits, s[i]) - qid_digits);
    return (long long)n;
}
