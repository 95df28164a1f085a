/*
 * qid - queue IDs: 12 characters from [0-9A-Za-z], sortable by arrival
 * (6 chars of seconds, 4 of microseconds, 2 of a per-process sequence mixed
 * with the pid).  Uniqueness is finally guaranteed by O_EXCL creation of the
 * queue file; qid_new is called again on a clash.
 */
#ifndef TERN_QID_H
#define TERN_QID_H

#include <stddef.h>

#define QID_LEN 12

/* qid_new - write a new NUL-terminated ID into out (QID_LEN + 1 bytes) */
void qid_new(char out[QID_LEN + 1]);
/* qid_valid - 1 when s is a well-formed queue ID */
int qid_valid(const char *s);
/* qid_hash_dir - the hashed subdirectory for s: one hex digit "0".."f" */
char qid_hash_dir(const char *s);
/* qid_arrival - the arrival second a queue ID carries; -1 when s is not one */
long long qid_arrival(const char *s);

#endif
