/*
 * sendmail_follow - sendmail -v after submission: follow the message.
 *
 * The message is first in maildrop/ (asked with `terndrop -s ID`), then in
 * the queue (the JSON listing of `terndrop -p -j`, one object per line);
 * each change of state is printed: which queue, and per recipient its
 * status and delay reason.  When the message has left the queue it was
 * delivered or returned (the mail log says which).  sendmail's SMTP-level
 * transcript is not reproduced: delivery happens in the daemon.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sendmail.h"

#define FOLLOW_TIMEOUT 30
#define FOLLOW_INTERVAL_US 200000

/* follow_json_str - the string value of "key" in text from *pos on; moves
 * *pos past it; -1 when absent */
static int follow_json_str(const char *text, const char *key, const char **pos, buf_t *out)
{
    buf_t pat = BUF_INIT;
    const char *p;

    buf_printf(&pat, "\"%s\":\"", key);
    p = strstr(*pos ? *pos : text, buf_cstr(&pat));
    if (p == NULL) {
        buf_free(&pat);
        return -1;
    }
    p += pat.len;
    buf_reset(out);
    for (; *p && *p != '"'; p++) {
        if (*p == '\\' && p[1])
            p++;
        buf_putc(out, *p);
    }
    *pos = p;
    buf_free(&pat);
    return 0;
}

/* follow_describe - the state of queue_id in a JSON listing; 0 found */
static int follow_describe(const buf_t *listing, const char *queue_id, buf_t *state)
{
    buf_t pat = BUF_INIT, v = BUF_INIT;
    const char *line, *end, *pos = NULL;

    buf_printf(&pat, "\"queue_id\":\"%s\"", queue_id);
    line = strstr(buf_cstr(listing), buf_cstr(&pat));
    buf_free(&pat);
    if (line == NULL)
        return -1;
    end = strchr(line, '\n');
    buf_t one = BUF_INIT;
    buf_append(&one, line, end ? (size_t)(end - line) : strlen(line));
    buf_reset(state);
    if (follow_json_str(buf_cstr(&one), "queue_name", &pos, &v) == 0)
        buf_printf(state, "queue %s", buf_cstr(&v));
    pos = NULL;
    while (follow_json_str(buf_cstr(&one), "address", &pos, &v) == 0) {
        buf_printf(state, "\n  <%s>", buf_cstr(&v));
        const char *save = pos;
        if (follow_json_str(buf_cstr(&one), "status", &pos, &v) == 0)
            buf_printf(state, " %s", buf_cstr(&v));
        const char *next = strstr(save, "\"address\":\"");
        pos = save;
        if (follow_json_str(buf_cstr(&one), "delay_reason", &pos, &v) == 0 &&
            (next == NULL || pos < next) && v.len)
            buf_printf(state, " (%s)", buf_cstr(&v));
        pos = save;
    }
    buf_free(&one);
    buf_free(&v);
    return 0;
}

void sendmail_follow(const char *config_dir, const char *queue_id)
{
    char *wait_args[] = {"-s", (char *)queue_id, NULL};
    char *list_args[] = {"-p", "-j", NULL};
    buf_t listing = BUF_INIT, state = BUF_INIT, last = BUF_INIT;
    time_t deadline = time(NULL) + FOLLOW_TIMEOUT;
    int seen = 0;

    while (time(NULL) < deadline) {
        if (sendmail_run_terndrop(config_dir, wait_args, -1) == 0) {
            buf_set(&state, "waiting in maildrop for pickup");
        } else if (sendmail_capture_terndrop(config_dir, list_args, &listing) != 0) {
            printf("%s: picked up; the queue listing is unavailable, not following further\n",
                   queue_id);
            goto out;
        } else if (follow_describe(&listing, queue_id, &state) < 0) {
            printf("%s: %s\n", queue_id,
                   seen ? "left the queue (delivered or returned; the mail log says which)"
                        : "not in the queue any more (delivered or returned)");
            goto out;
        } else {
            seen = 1;
        }
        if (strcmp(buf_cstr(&state), buf_cstr(&last)) != 0) {
            printf("%s: %s\n", queue_id, buf_cstr(&state));
            fflush(stdout);
            buf_set(&last, buf_cstr(&state));
        }
        usleep(FOLLOW_INTERVAL_US);
    }
    printf("%s: still queued after %d s; mailq shows its status\n", queue_id, FOLLOW_TIMEOUT);
out:
    fflush(stdout);
    buf_free(&listing);
    buf_free(&state);
    buf_free(&last);
}
