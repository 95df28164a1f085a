/*
 * test_queue_list - unit tests for lib/queue_list: a queue tree with files in
 * every queue directory (plus temp, garbage and foreign names) scans into the
 * right entries in arrival order, reasons come from defer/H/ID, and both
 * output formats are byte-exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "qfile.h"
#include "qid.h"
#include "queue_list.h"
#include "safefile.h"

static char top[] = "/tmp/test_queue_list.XXXXXX";

/* put_file - write a whole file under top */
static void put_file(const char *rel, const void *data, size_t len)
{
    buf_t path = BUF_INIT;
    FILE *fp;

    buf_printf(&path, "%s/%s", top, rel);
    fp = fopen(path.data, "we");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
    buf_free(&path);
}

/* put_msg - a complete queue file at rel */
static void put_msg(const char *rel, const char *t, const char *sender, const char *rcpt,
                    const char *content)
{
    buf_t path = BUF_INIT;
    struct qfile_writer w;
    int fd;

    buf_printf(&path, "%s/%s", top, rel);
    fd = safe_create(path.data, O_WRONLY, 0600);
    assert_true(fd >= 0);
    qfile_writer_init(&w, fd);
    qfile_put_str(&w, QFILE_REC_VERSION, "1");
    qfile_put_str(&w, QFILE_REC_TIME, t);
    qfile_put_str(&w, QFILE_REC_SENDER, sender);
    qfile_put_rcpt(&w, rcpt, rcpt, "", "");
    qfile_put_rcpt(&w, "done@example.org", "done@example.org", "", "");
    qfile_content_begin(&w);
    qfile_content_append(&w, content, strlen(content));
    assert_int_equal(qfile_content_end(&w), 0);
    assert_int_equal(qfile_finish(&w), 0);
    qfile_writer_free(&w);
    close(fd);
    buf_free(&path);
}

/* deferred_rel - "deferred/H/ID" (or another hashed top) */
static const char *hashed_rel(const char *dir, const char *id)
{
    static char rel[64];
    snprintf(rel, sizeof(rel), "%s/%c/%s", dir, qid_hash_dir(id), id);
    return rel;
}

/* setup_tree - one message in each queue, and things to skip */
static int setup_tree(void **state)
{
    static const char *dirs[] = {"incoming", "active", "deferred", "defer", "hold", NULL};
    buf_t path = BUF_INIT;
    struct qfile_msg m;
    buf_t err = BUF_INIT;

    setenv("TZ", "UTC", 1);
    tzset();
    assert_non_null(mkdtemp(top));
    for (int i = 0; dirs[i]; i++) {
        buf_reset(&path);
        buf_printf(&path, "%s/%s", top, dirs[i]);
        assert_int_equal(mkdir(path.data, 0700), 0);
        for (int h = 0; h < 16 && (i == 2 || i == 3); h++) {
            buf_reset(&path);
            buf_printf(&path, "%s/%s/%x", top, dirs[i], h);
            assert_int_equal(mkdir(path.data, 0700), 0);
        }
    }
    /* arrival order is C, A, D, B */
    put_msg("incoming/AAAAAAAAAAAA", "1700000100.500000", "a@example.org", "ra@example.net",
            "x\r\n");
    put_msg("active/BBBBBBBBBBBB", "1700000300", "", "rb@example.net", "yy\r\n");
    put_msg(hashed_rel("deferred", "CCCCCCCCCCCC"), "1700000000", "c@example.org", "rc@example.net",
            "zzz\r\n");
    put_msg("hold/DDDDDDDDDDDD", "1700000200", "d\"q@example.org", "rd@example.net", "w\r\n");
    const char *reason = "rc@example.net\t4.4.1\tconnect to x[1.2.3.4]:25: Connection refused\n"
                         "done@example.org\t4.4.1\tignored: not pending\n";
    put_file(hashed_rel("defer", "CCCCCCCCCCCC"), reason, strlen(reason));
    /* skipped: temp file, garbage, a name that is not an ID */
    put_msg("incoming/.tmp.EEEEEEEEEEEE", "1700000400", "e@example.org", "re@x", "v\r\n");
    put_file("active/FFFFFFFFFFFF", "garbage", 7);
    put_msg("incoming/not-an-id", "1700000400", "e@example.org", "re@x", "v\r\n");
    /* mark the second recipient of every message as sent */
    const char *all[] = {"incoming/AAAAAAAAAAAA", "active/BBBBBBBBBBBB",
                         hashed_rel("deferred", "CCCCCCCCCCCC"), "hold/DDDDDDDDDDDD", NULL};
    for (int i = 0; all[i]; i++) {
        buf_reset(&path);
        buf_printf(&path, "%s/%s", top, all[i]);
        int fd = open(path.data, O_RDWR);
        qfile_msg_init(&m);
        assert_int_equal(qfile_read(fd, &m, &err), 0);
        assert_int_equal(qfile_set_rcpt_status(fd, &m.rcpts[1], QFILE_RCPT_SENT), 0);
        qfile_msg_free(&m);
        close(fd);
    }
    buf_free(&path);
    buf_free(&err);
    *state = NULL;
    return 0;
}

static int teardown_tree(void **state)
{
    buf_t cmd = BUF_INIT;

    buf_printf(&cmd, "rm -rf '%s'", top);
    assert_int_equal(system(cmd.data), 0);
    buf_free(&cmd);
    return 0;
}

static void test_scan_lists_each_queue_in_arrival_order(void **state)
{
    struct queue_list ql;
    buf_t err = BUF_INIT;

    queue_list_init(&ql);
    assert_int_equal(queue_list_scan(top, &ql, &err), 0);
    assert_int_equal(ql.count, 4);
    assert_string_equal(ql.v[0].id, "CCCCCCCCCCCC");
    assert_int_equal(ql.v[0].queue, QUEUE_DEFERRED);
    assert_string_equal(ql.v[1].id, "AAAAAAAAAAAA");
    assert_int_equal(ql.v[1].queue, QUEUE_INCOMING);
    assert_int_equal(ql.v[1].arrival_usec, 500000);
    assert_string_equal(ql.v[2].id, "DDDDDDDDDDDD");
    assert_int_equal(ql.v[2].queue, QUEUE_HOLD);
    assert_string_equal(ql.v[3].id, "BBBBBBBBBBBB");
    assert_int_equal(ql.v[3].queue, QUEUE_ACTIVE);
    assert_string_equal(ql.v[0].rcpts[0].reason, "connect to x[1.2.3.4]:25: Connection refused");
    assert_null(ql.v[0].rcpts[1].reason);
    assert_int_equal(ql.v[0].size, 5);
    queue_list_free(&ql);
    buf_free(&err);
}

static void test_sendmail_format_is_exact(void **state)
{
    struct queue_list ql;
    buf_t err = BUF_INIT, out = BUF_INIT;

    queue_list_init(&ql);
    assert_int_equal(queue_list_scan(top, &ql, &err), 0);
    queue_list_format_sendmail(&ql, "/var/spool/tern", &out);
    assert_string_equal(
        out.data,
        "\t\t/var/spool/tern (4 requests)\n"
        "-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------\n"
        "CCCCCCCCCCCC          5 Tue Nov 14 22:13 <c@example.org>\n"
        "                 (connect to x[1.2.3.4]:25: Connection refused)\n"
        "\t\t\t\t\t <rc@example.net>\n"
        "AAAAAAAAAAAA          3 Tue Nov 14 22:15 <a@example.org>\n"
        "\t\t\t\t\t <ra@example.net>\n"
        "DDDDDDDDDDDD!         3 Tue Nov 14 22:16 <d\"q@example.org>\n"
        "\t\t\t\t\t <rd@example.net>\n"
        "BBBBBBBBBBBB*         4 Tue Nov 14 22:18 <>\n"
        "\t\t\t\t\t <rb@example.net>\n"
        "\t\tTotal requests: 4\n");
    queue_list_free(&ql);
    buf_free(&err);
    buf_free(&out);
}

static void test_json_format_is_exact(void **state)
{
    struct queue_list ql;
    buf_t err = BUF_INIT, out = BUF_INIT;

    queue_list_init(&ql);
    assert_int_equal(queue_list_scan(top, &ql, &err), 0);
    queue_list_format_json(&ql, &out);
    const char *first = "{\"queue_id\":\"CCCCCCCCCCCC\",\"queue_name\":\"deferred\","
                        "\"arrival_time\":1700000000,\"message_size\":5,\"sender\":"
                        "\"c@example.org\",\"recipients\":[{\"address\":\"rc@example.net\","
                        "\"status\":\"pending\",\"delay_reason\":\"connect to x[1.2.3.4]:25: "
                        "Connection refused\"},{\"address\":\"done@example.org\",\"status\":"
                        "\"sent\"}]}\n";
    assert_memory_equal(out.data, first, strlen(first));
    assert_non_null(strstr(out.data, "\"sender\":\"d\\\"q@example.org\""));
    assert_non_null(strstr(out.data, "\"queue_name\":\"hold\""));
    queue_list_free(&ql);
    buf_free(&err);
    buf_free(&out);
}

static void test_empty_queue_says_empty(void **state)
{
    struct queue_list ql;
    buf_t out = BUF_INIT;

    queue_list_init(&ql);
    queue_list_format_sendmail(&ql, "/q", &out);
    assert_string_equal(out.data, "/q is empty\n\t\tTotal requests: 0\n");
    queue_list_free(&ql);
    buf_free(&out);
}

static void test_find_locates_every_queue(void **state)
{
    buf_t path = BUF_INIT;
    enum queue_name q;

    assert_int_equal(queue_list_find(top, "DDDDDDDDDDDD", &path, &q), 0);
    assert_int_equal(q, QUEUE_HOLD);
    assert_int_equal(queue_list_find(top, "CCCCCCCCCCCC", &path, &q), 0);
    assert_int_equal(q, QUEUE_DEFERRED);
    assert_int_equal(queue_list_find(top, "ZZZZZZZZZZZZ", &path, &q), -1);
    assert_int_equal(queue_list_find(top, "../incoming", &path, &q), -1);
    buf_free(&path);
}

static void test_missing_queue_directory_is_an_error(void **state)
{
    struct queue_list ql;
    buf_t err = BUF_INIT;

    queue_list_init(&ql);
    assert_int_equal(queue_list_scan("/nonexistent/queue", &ql, &err), -1);
    assert_non_null(strstr(err.data, "/nonexistent/queue"));
    queue_list_free(&ql);
    buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_lists_each_queue_in_arrival_order),
        cmocka_unit_test(test_sendmail_format_is_exact),
        cmocka_unit_test(test_json_format_is_exact),
        cmocka_unit_test(test_empty_queue_says_empty),
        cmocka_unit_test(test_find_locates_every_queue),
        cmocka_unit_test(test_missing_queue_directory_is_an_error),
    };
    return cmocka_run_group_tests(tests, setup_tree, teardown_tree);
}
