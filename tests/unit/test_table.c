/*
 * test_table - unit tests for lib/table: every type (lmdb, texthash, inline,
 * static, cidr, regexp, unix), the text format (comments, continuations,
 * alias syntax, duplicates warned, bounds), case folding, the lookup orders
 * of DESIGN §6, lmdb rebuilds seen without a reopen, TEMPFAIL on a vanished
 * file, atomic builds and the text-file delete; sendmail's names for the
 * LMDB files (hash:, btree:, dbm:), a foreign .db file, optional: tables,
 * builds from a stream (replace, append, duplicates) and the new file's
 * permissions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "table.h"

static char tmpdir[] = "/tmp/test_table.XXXXXX";
static char logpath[512];

/* path_in - a file name inside the test directory */
static const char *path_in(const char *name)
{
    static char path[4][512];
    static int next;
    char *p = path[next++ % 4];

    snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
    return p;
}

/* write_file - replace name's contents */
static const char *write_file(const char *name, const char *text)
{
    const char *p = path_in(name);
    FILE *fp = fopen(p, "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    return p;
}

/* read_log - everything logged so far */
static char *read_log(void)
{
    static char text[65536];
    FILE *fp = fopen(logpath, "r");
    size_t n = fp ? fread(text, 1, sizeof(text) - 1, fp) : 0;

    if (fp)
        fclose(fp);
    text[n] = 0;
    return text;
}

/* open_ok - table_open that must succeed */
static struct table *open_ok(const char *spec, int flags)
{
    buf_t err = BUF_INIT;
    struct table *t = table_open(spec, flags, &err);

    if (t == NULL)
        fail_msg("table_open(%s): %s", spec, buf_cstr(&err));
    buf_free(&err);
    return t;
}

/* spec_of - "type:path" */
static const char *spec_of(const char *type, const char *path)
{
    static char spec[1024];

    snprintf(spec, sizeof(spec), "%s:%s", type, path);
    return spec;
}

/* expect - lookup key and compare with want (NULL: not found) */
static void expect(struct table *t, const char *key, const char *want)
{
    buf_t v = BUF_INIT;
    enum table_result r = table_lookup(t, key, &v);

    if (want == NULL) {
        if (r != TABLE_NOTFOUND)
            fail_msg("%s: key \"%s\": expected not found, got %d \"%s\"", table_name(t), key, r,
                     buf_cstr(&v));
    } else {
        if (r != TABLE_FOUND)
            fail_msg("%s: key \"%s\": expected \"%s\", got %d", table_name(t), key, want, r);
        assert_string_equal(buf_cstr(&v), want);
    }
    buf_free(&v);
}

/* build_ok - table_build that must succeed */
static void build_ok(const char *path, int flags, struct table_build_stats *st)
{
    buf_t err = BUF_INIT;

    if (table_build("lmdb", path, flags, st, &err) != 0)
        fail_msg("table_build(%s): %s", path, buf_cstr(&err));
    buf_free(&err);
}

static const char sample[] = "# a comment\n"
                             "Alice@Example.COM   alice-value\n"
                             "\n"
                             "bob  first part\n"
                             "    second part\n"
                             "  # a comment inside continues nothing\n"
                             "\tthird part  \n"
                             "carol\tc1 \n"
                             "ALICE@example.com duplicate\n";

/* test_texthash_reads_the_text_format */
static void test_texthash_reads_the_text_format(void **state)
{
    const char *p = write_file("sample", sample);
    struct table *t = open_ok(spec_of("texthash", p), 0);

    expect(t, "alice@example.com", "alice-value");
    expect(t, "ALICE@EXAMPLE.COM", "alice-value");
    expect(t, "bob", "first part second part third part");
    expect(t, "carol", "c1");
    expect(t, "#", NULL);
    expect(t, "a", NULL);
    assert_non_null(strstr(read_log(), "sample:9: duplicate key \"alice@example.com\""));
    table_close(t);
}

/* test_texthash_case_sensitive_keeps_case */
static void test_texthash_case_sensitive_keeps_case(void **state)
{
    const char *p = write_file("sample", sample);
    struct table *t = open_ok(spec_of("texthash", p), TABLE_CASE_SENSITIVE);

    expect(t, "Alice@Example.COM", "alice-value");
    expect(t, "alice@example.com", NULL);
    expect(t, "ALICE@example.com", "duplicate");
    table_close(t);
}

/* test_alias_syntax_keeps_values_exactly */
static void test_alias_syntax_keeps_values_exactly(void **state)
{
    const char *p = write_file("aliases", "# aliases\n"
                                          "Root: admin, bob\n"
                                          "list: a,\n"
                                          "   \"|/usr/bin/cmd arg\",\n"
                                          "\t/var/mail/file, :include:/etc/list\n"
                                          "spaced  :   x\n");
    struct table *t = open_ok(spec_of("texthash", p), TABLE_ALIASES);

    expect(t, "root", "admin, bob");
    expect(t, "list", "a, \"|/usr/bin/cmd arg\", /var/mail/file, :include:/etc/list");
    expect(t, "spaced", "x");
    table_close(t);
}

/* test_syntax_errors_name_file_and_line */
static void test_syntax_errors_name_file_and_line(void **state)
{
    buf_t err = BUF_INIT;
    const char *p = write_file("bad", "ok value\n  more\nnovalue\n");

    assert_null(table_open(spec_of("texthash", p), 0, &err));
    assert_non_null(strstr(buf_cstr(&err), "bad:3: no value"));
    buf_reset(&err);
    p = write_file("bad", "root admin\n");
    assert_null(table_open(spec_of("texthash", p), TABLE_ALIASES, &err));
    assert_non_null(strstr(buf_cstr(&err), "bad:1: expected \"name: value\""));
    buf_reset(&err);
    p = write_file("bad", "  leading continuation\n");
    assert_null(table_open(spec_of("texthash", p), 0, &err));
    assert_non_null(strstr(buf_cstr(&err), "bad:1: continuation"));
    buf_free(&err);
}

/* test_long_lines_and_keys_are_bounded */
static void test_long_lines_and_keys_are_bounded(void **state)
{
    buf_t text = BUF_INIT, err = BUF_INIT;

    for (int i = 0; i < TABLE_KEY_MAX + 1; i++)
        buf_putc(&text, 'k');
    buf_puts(&text, " v\n");
    const char *p = write_file("long", text.data);
    assert_null(table_open(spec_of("texthash", p), 0, &err));
    assert_non_null(strstr(buf_cstr(&err), "long:1: key longer than"));
    buf_reset(&err);
    buf_set(&text, "k ");
    for (int i = 0; i < TABLE_LINE_MAX; i++)
        buf_putc(&text, 'v');
    p = write_file("long", text.data);
    assert_null(table_open(spec_of("texthash", p), 0, &err));
    assert_non_null(strstr(buf_cstr(&err), "long:1: line longer than"));
    buf_free(&text);
    buf_free(&err);
}

/* test_missing_file_names_the_file */
static void test_missing_file_names_the_file(void **state)
{
    buf_t err = BUF_INIT;
    const char *p = path_in("does-not-exist");

    assert_null(table_open(spec_of("lmdb", p), 0, &err));
    assert_non_null(strstr(buf_cstr(&err), "does-not-exist.lmdb"));
    buf_reset(&err);
    assert_null(table_open(spec_of("texthash", p), 0, &err));
    assert_non_null(strstr(buf_cstr(&err), "does-not-exist"));
    buf_reset(&err);
    assert_null(table_open("nis:mail.aliases", 0, &err));
    assert_non_null(strstr(buf_cstr(&err), "unknown table type"));
    buf_free(&err);
}

/* test_inline_and_static */
static void test_inline_and_static(void **state)
{
    struct table *t = open_ok("inline:{ A=1, b = two words , {c = x, y}, d=}", 0);

    expect(t, "a", "1");
    expect(t, "B", "two words");
    expect(t, "c", "x, y");
    expect(t, "d", "");
    expect(t, "e", NULL);
    table_close(t);
    t = open_ok("static:OK", 0);
    expect(t, "anything", "OK");
    table_close(t);
    t = open_ok("static:{two words}", 0);
    expect(t, "x", "two words");
    table_close(t);
}

/* test_cidr_first_match_wins */
static void test_cidr_first_match_wins(void **state)
{
    const char *p = write_file("cidr", "# networks\n"
                                       "192.0.2.1       host\n"
                                       "192.0.2.0/24    net\n"
                                       "10.0.0.0/8      ten\n"
                                       "[2001:db8::]/32 six\n");
    struct table *t = open_ok(spec_of("cidr", p), 0);

    expect(t, "192.0.2.1", "host");
    expect(t, "192.0.2.77", "net");
    expect(t, "10.1.2.3", "ten");
    expect(t, "[2001:db8::5]", "six");
    expect(t, "2001:db9::5", NULL);
    expect(t, "not-an-address", NULL);
    table_close(t);
}

/* test_regexp_groups_and_flags */
static void test_regexp_groups_and_flags(void **state)
{
    const char *p = write_file("re", "/^(.*)@old\\.example$/   $1@new.example\n"
                                     "/^a\\/b$/  slash\n"
                                     "/^SHOUT/i  quiet ${1}x $$ $0\n"
                                     "/^(x)(y)?$/ [$1][$2]\n");
    struct table *t = open_ok(spec_of("regexp", p), 0);
    buf_t err = BUF_INIT;

    expect(t, "joe@old.example", "joe@new.example");
    expect(t, "a/b", "slash");
    expect(t, "shouting", "quiet x $ $0");
    expect(t, "x", "[x][]");
    expect(t, "joe@old.example.org", NULL);
    table_close(t);
    p = write_file("re", "/[/ x\n");
    assert_null(table_open(spec_of("regexp", p), 0, &err));
    assert_non_null(strstr(buf_cstr(&err), "re:1: bad regular expression"));
    buf_reset(&err);
    p = write_file("re", "/a/q x\n");
    assert_null(table_open(spec_of("regexp", p), 0, &err));
    assert_non_null(strstr(buf_cstr(&err), "re:1: unknown regexp flag"));
    buf_free(&err);
}

/* test_unix_passwd_byname */
static void test_unix_passwd_byname(void **state)
{
    struct table *t = open_ok("unix:passwd.byname", 0);
    buf_t err = BUF_INIT;

    expect(t, "root", "/root");
    expect(t, "ROOT", NULL);
    expect(t, "no-such-user-here", NULL);
    table_close(t);
    assert_null(table_open("unix:group.bygid", 0, &err));
    buf_free(&err);
}

/* list_of - a table list from specs */
static void list_of(struct table_list *l, char *const *specs, size_t n)
{
    buf_t err = BUF_INIT;

    if (table_list_open(l, specs, n, 0, &err) != 0)
        fail_msg("table_list_open: %s", buf_cstr(&err));
    buf_free(&err);
}

/* sa_of - a sockaddr for a literal address */
static const struct sockaddr *sa_of(const char *ip, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    return (const struct sockaddr *)ss;
}

/* ip_value - table_lookup_ip's value, or "-" */
static const char *ip_value(struct table_list *l, const char *ip)
{
    static char out[256];
    struct sockaddr_storage ss;
    buf_t v = BUF_INIT;

    if (table_lookup_ip(l, sa_of(ip, &ss), &v) == TABLE_FOUND)
        snprintf(out, sizeof(out), "%s", v.data);
    else
        snprintf(out, sizeof(out), "-");
    buf_free(&v);
    return out;
}

/* test_ip_lookup_order */
static void test_ip_lookup_order(void **state)
{
    const char *p = write_file("cidr", "172.16.0.0/12 cidr\n");
    char cidr[600];
    char *specs[] = {"inline:{1.2.3.4=host, 1.2.3=net24, 1.2=net16, 1=net8, 2001:db8=v6}", cidr};
    struct table_list l;

    snprintf(cidr, sizeof(cidr), "cidr:%s", p);
    list_of(&l, specs, 2);
    assert_string_equal(ip_value(&l, "1.2.3.4"), "host");
    assert_string_equal(ip_value(&l, "1.2.3.5"), "net24");
    assert_string_equal(ip_value(&l, "1.2.4.5"), "net16");
    assert_string_equal(ip_value(&l, "1.3.4.5"), "net8");
    assert_string_equal(ip_value(&l, "::ffff:1.2.3.4"), "host");
    assert_string_equal(ip_value(&l, "2001:db8::1"), "v6");
    assert_string_equal(ip_value(&l, "172.20.1.1"), "cidr");
    assert_string_equal(ip_value(&l, "9.9.9.9"), "-");
    table_list_close(&l);
}

/* test_lmdb_build_and_lookup */
static void test_lmdb_build_and_lookup(void **state)
{
    const char *p = write_file("map", sample);
    struct table_build_stats st;
    struct table *t;

    build_ok(p, 0, &st);
    assert_int_equal(st.entries, 3);
    assert_int_equal(st.longest, strlen("first part second part third part"));
    assert_int_equal(st.total, strlen("alice@example.comalice-value") +
                                   strlen("bobfirst part second part third part") +
                                   strlen("carolc1"));
    assert_non_null(strstr(read_log(), "map:9: duplicate key \"alice@example.com\""));
    assert_int_equal(table_build_flags("lmdb", p), 0);
    t = open_ok(spec_of("lmdb", p), 0);
    expect(t, "ALICE@example.com", "alice-value");
    expect(t, "bob", "first part second part third part");
    expect(t, "nobody", NULL);
    expect(t, "", NULL);
    table_close(t);
}

/* count_entry - table_walk callback */
static int count_entry(const char *key, const char *value, void *ctx)
{
    (*(int *)ctx)++;
    return 0;
}

/* test_lmdb_alias_build_is_remembered */
static void test_lmdb_alias_build_is_remembered(void **state)
{
    const char *p = write_file("aliases", "Root: admin\npostmaster: root\n");
    struct table_build_stats st;
    struct table *t;
    buf_t err = BUF_INIT;
    int n = 0;

    build_ok(p, TABLE_ALIASES, &st);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.longest, 5);
    assert_int_equal(st.total, 4 + 5 + 10 + 4);
    assert_int_equal(table_build_flags("lmdb", p), TABLE_ALIASES);
    t = open_ok(spec_of("lmdb", p), 0);
    assert_true(table_flags(t) & TABLE_ALIASES);
    expect(t, "ROOT", "admin");
    assert_int_equal(table_walk(t, count_entry, &n, &err), 0);
    assert_int_equal(n, 2); /* the build record is not an entry */
    table_close(t);
    buf_free(&err);
}

/* test_lmdb_rebuild_is_seen_without_reopen */
static void test_lmdb_rebuild_is_seen_without_reopen(void **state)
{
    const char *p = write_file("live", "key old-value\n");
    struct table *t;

    build_ok(p, 0, NULL);
    t = open_ok(spec_of("lmdb", p), 0);
    expect(t, "key", "old-value");
    write_file("live", "key new-value\nother x\n");
    build_ok(p, 0, NULL);
    expect(t, "key", "new-value");
    expect(t, "other", "x");
    table_close(t);
}

/* test_lmdb_vanished_file_is_tempfail */
static void test_lmdb_vanished_file_is_tempfail(void **state)
{
    const char *p = write_file("gone", "key value\n");
    char lmdb[600];
    struct table *t;
    buf_t v = BUF_INIT;

    build_ok(p, 0, NULL);
    t = open_ok(spec_of("lmdb", p), 0);
    expect(t, "key", "value");
    snprintf(lmdb, sizeof(lmdb), "%s.lmdb", p);
    assert_int_equal(unlink(lmdb), 0);
    assert_int_equal(table_lookup(t, "key", &v), TABLE_TEMPFAIL);
    assert_int_equal(table_lookup(t, "nobody", &v), TABLE_TEMPFAIL);
    build_ok(p, 0, NULL); /* and it comes back */
    expect(t, "key", "value");
    table_close(t);
    buf_free(&v);
}

/* count_temp_files - files whose name contains ".lmdb." (build leftovers) */
static int count_temp_files(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".lmdb."))
            n++;
    closedir(d);
    return n;
}

/* test_failed_build_keeps_the_old_table */
static void test_failed_build_keeps_the_old_table(void **state)
{
    const char *p = write_file("atomic", "key good\n");
    char lmdb[600];
    struct stat before, after;
    buf_t err = BUF_INIT;
    struct table *t;

    build_ok(p, 0, NULL);
    snprintf(lmdb, sizeof(lmdb), "%s.lmdb", p);
    assert_int_equal(stat(lmdb, &before), 0);
    write_file("atomic", "key changed\nbroken-line-without-value\n");
    assert_int_equal(table_build("lmdb", p, 0, NULL, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "atomic:2:"));
    assert_int_equal(stat(lmdb, &after), 0);
    assert_true(before.st_ino == after.st_ino);
    assert_int_equal(count_temp_files(), 0);
    t = open_ok(spec_of("lmdb", p), 0);
    expect(t, "key", "good");
    table_close(t);
    buf_free(&err);
}

/* test_text_delete_removes_entry_and_continuations */
static void test_text_delete_removes_entry_and_continuations(void **state)
{
    const char *p = write_file("del", "# keep me\n"
                                      "a: 1\n"
                                      "B: 2,\n"
                                      "  3\n"
                                      "# and me\n"
                                      "c: 4\n");
    buf_t err = BUF_INIT;
    char text[256];
    FILE *fp;
    size_t n;

    assert_int_equal(table_text_delete(p, "b", TABLE_ALIASES, &err), 1);
    assert_int_equal(table_text_delete(p, "zzz", TABLE_ALIASES, &err), 0);
    fp = fopen(p, "r");
    n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[n] = 0;
    assert_string_equal(text, "# keep me\na: 1\n# and me\nc: 4\n");
    buf_free(&err);
}

/* file_exists - path names a file; its size in *size when non-NULL */
static int file_exists(const char *path, off_t *size)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return 0;
    if (size)
        *size = st.st_size;
    return 1;
}

/* with_suffix - path + suffix, in one of four static buffers */
static const char *with_suffix(const char *path, const char *suffix)
{
    static char out[4][1024];
    static int next;
    char *p = out[next++ % 4];

    snprintf(p, sizeof(out[0]), "%s%s", path, suffix);
    return p;
}

/* build_type_ok - table_build of type that must succeed */
static void build_type_ok(const char *type, const char *path, int flags)
{
    buf_t err = BUF_INIT;

    if (table_build(type, path, flags, NULL, &err) != 0)
        fail_msg("table_build(%s, %s): %s", type, path, buf_cstr(&err));
    buf_free(&err);
}

/* test_file_path_uses_sendmails_names */
static void test_file_path_uses_sendmails_names(void **state)
{
    buf_t path = BUF_INIT;

    assert_int_equal(table_file_path("lmdb", "/etc/mail/access", &path), 0);
    assert_string_equal(path.data, "/etc/mail/access.lmdb");
    assert_int_equal(table_file_path("hash", "/etc/mail/access", &path), 0);
    assert_string_equal(path.data, "/etc/mail/access.db");
    assert_int_equal(table_file_path("btree", "access", &path), 0);
    assert_string_equal(path.data, "access.db");
    assert_int_equal(table_file_path("dbm", "/etc/mail/access", &path), 0);
    assert_string_equal(path.data, "/etc/mail/access.dir");
    assert_int_equal(table_file_path("hash", "/etc/mail/mailertable.db", &path), 0);
    assert_string_equal(path.data, "/etc/mail/mailertable.db"); /* named with its suffix */
    assert_int_equal(table_file_path("dbm", "/etc/mail/x.db", &path), 0);
    assert_string_equal(path.data, "/etc/mail/x.db.dir");
    assert_int_equal(table_file_path("texthash", "/etc/mail/access", &path), -1);
    assert_int_equal(table_file_path("regexp", "/etc/mail/access", &path), -1);
    buf_free(&path);
}

/* test_hash_btree_dbm_build_and_lookup */
static void test_hash_btree_dbm_build_and_lookup(void **state)
{
    const char *p = write_file("virtusertable", "@Example.COM bob@example.net\n"
                                                "info@example.com  alice\n");
    off_t size = -1;
    struct table *t;

    build_type_ok("hash", p, 0);
    assert_true(file_exists(with_suffix(p, ".db"), NULL));
    assert_false(file_exists(with_suffix(p, ".lmdb"), NULL));
    assert_int_equal(table_build_flags("hash", p), 0);
    t = open_ok(spec_of("hash", p), 0);
    expect(t, "@example.com", "bob@example.net");
    expect(t, "INFO@example.com", "alice");
    table_close(t);
    t = open_ok(spec_of("btree", p), 0); /* btree: is the same .db file */
    expect(t, "info@example.com", "alice");
    table_close(t);
    t = open_ok(spec_of("hash", with_suffix(p, ".db")), 0); /* "hash -o /x/map.db" */
    expect(t, "info@example.com", "alice");
    table_close(t);

    build_type_ok("dbm", p, TABLE_CASE_SENSITIVE);
    assert_true(file_exists(with_suffix(p, ".dir"), NULL));
    assert_true(file_exists(with_suffix(p, ".pag"), &size));
    assert_int_equal(size, 0); /* only there for Makefiles */
    assert_int_equal(table_build_flags("dbm", p), TABLE_CASE_SENSITIVE);
    t = open_ok(spec_of("dbm", p), 0);
    expect(t, "@Example.COM", "bob@example.net");
    expect(t, "@example.com", NULL); /* built with -f: no folding */
    table_close(t);
}

/* test_foreign_db_file_names_the_rebuild_command */
static void test_foreign_db_file_names_the_rebuild_command(void **state)
{
    const char *p = write_file("access", "spam.example REJECT\n");
    char want[1400];
    buf_t err = BUF_INIT;

    write_file("access.db", "\x00\x06\x15\x61 a Berkeley DB hash file, or garbage \xff\xfe");
    assert_null(table_open(spec_of("hash", p), 0, &err));
    snprintf(want, sizeof(want),
             "%s.db: not a tern (LMDB) table -- rebuild it with: makemap hash %s < %s", p, p, p);
    if (strstr(buf_cstr(&err), want) == NULL)
        fail_msg("got: %s", buf_cstr(&err));
    buf_reset(&err);
    assert_null(table_open(spec_of("optional:hash", p), 0, &err)); /* only missing is forgiven */
    assert_non_null(strstr(buf_cstr(&err), "not a tern (LMDB) table"));

    write_file("access.dir", ""); /* an ndbm .dir is often empty */
    buf_reset(&err);
    assert_null(table_open(spec_of("dbm", p), 0, &err));
    snprintf(want, sizeof(want), "%s.dir: not a tern (LMDB) table -- rebuild it with: makemap dbm",
             p);
    assert_non_null(strstr(buf_cstr(&err), want));

    write_file("access.lmdb", "garbage");
    buf_reset(&err);
    assert_null(table_open(spec_of("lmdb", p), 0, &err));
    snprintf(want, sizeof(want), "rebuild it with: tern map %s", p);
    assert_non_null(strstr(buf_cstr(&err), want));

    buf_reset(&err);
    assert_null(table_open(spec_of("hash", with_suffix(p, ".db")), 0, &err)); /* name.db */
    snprintf(want, sizeof(want), "rebuild it with: makemap hash %s < %s", p, p);
    assert_non_null(strstr(buf_cstr(&err), want));
    buf_reset(&err);
    assert_int_equal(table_build("hash", with_suffix(p, ".db"), 0, NULL, &err), -1);
    assert_non_null(strstr(buf_cstr(&err), "name the text file"));

    build_type_ok("hash", p, 0); /* the rebuild replaces the foreign file */
    struct table *t = open_ok(spec_of("hash", p), 0);
    expect(t, "spam.example", "REJECT");
    table_close(t);
    buf_free(&err);
}

/* count_in_log - how often needle was logged */
static int count_in_log(const char *needle)
{
    const char *p = read_log();
    int n = 0;

    while ((p = strstr(p, needle)) != NULL) {
        n++;
        p += strlen(needle);
    }
    return n;
}

/* test_optional_lmdb_table_follows_its_file */
static void test_optional_lmdb_table_follows_its_file(void **state)
{
    const char *p = path_in("mailertable");
    char spec[700], warning[700];
    struct table *t;
    buf_t v = BUF_INIT, err = BUF_INIT;
    int n = 0;

    snprintf(spec, sizeof(spec), "optional:hash:%s", p);
    snprintf(warning, sizeof(warning), "%s.db does not exist", p);
    t = open_ok(spec, 0);
    assert_string_equal(table_name(t), spec);
    assert_true(table_flags(t) & TABLE_OPTIONAL);
    expect(t, "example.com", NULL); /* missing: empty, not TEMPFAIL */
    expect(t, "other.example", NULL);
    assert_int_equal(table_walk(t, count_entry, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(count_in_log(warning), 1); /* once per process */

    write_file("mailertable", "example.com smtp:[relay.example]\n");
    build_type_ok("hash", p, 0);
    expect(t, "example.com", "smtp:[relay.example]"); /* appeared: used */
    assert_int_equal(unlink(with_suffix(p, ".db")), 0);
    assert_int_equal(table_lookup(t, "example.com", &v), TABLE_NOTFOUND); /* gone: empty */
    build_type_ok("hash", p, 0);
    expect(t, "example.com", "smtp:[relay.example]");
    assert_true(table_flags(t) & TABLE_OPTIONAL);
    table_close(t);
    assert_int_equal(count_in_log(warning), 1);
    buf_free(&v);
    buf_free(&err);
}

/* test_optional_text_tables_missing_are_empty */
static void test_optional_text_tables_missing_are_empty(void **state)
{
    static const char *const types[] = {"texthash", "cidr", "regexp"};
    const char *p = path_in("never-written");
    char spec[700];
    buf_t err = BUF_INIT;

    for (int i = 0; i < 3; i++) {
        snprintf(spec, sizeof(spec), "optional:%s:%s", types[i], p);
        struct table *t = open_ok(spec, 0);
        expect(t, "192.0.2.1", NULL);
        assert_string_equal(table_name(t), spec);
        table_close(t);
        assert_null(table_open(spec + strlen("optional:"), 0, &err)); /* without it: error */
        assert_non_null(strstr(buf_cstr(&err), "never-written"));
        buf_reset(&err);
    }
    assert_int_equal(count_in_log("never-written does not exist"), 1);
    p = write_file("present", "key value\n"); /* present: read as usual */
    snprintf(spec, sizeof(spec), "optional:texthash:%s", p);
    struct table *t = open_ok(spec, 0);
    expect(t, "KEY", "value");
    table_close(t);
    buf_free(&err);
}

/* test_spec_split */
static void test_spec_split(void **state)
{
    buf_t type = BUF_INIT;
    const char *name;
    int optional;

    assert_int_equal(table_spec_split("optional:dbm:/etc/mail/x", &type, &name, &optional), 0);
    assert_string_equal(type.data, "dbm");
    assert_string_equal(name, "/etc/mail/x");
    assert_true(optional);
    assert_int_equal(table_spec_split("hash:/a:b", &type, &name, &optional), 0);
    assert_string_equal(type.data, "hash");
    assert_string_equal(name, "/a:b");
    assert_false(optional);
    assert_int_equal(table_spec_split("hashx:/a", &type, &name, &optional), -1);
    assert_int_equal(table_spec_split("optional:/a", &type, &name, &optional), -1);
    buf_free(&type);
}

/* a table_build_source over an array of "key", "value" pairs */
struct pairs {
    const char *const *kv;
    size_t next;
    int duplicates;
};

static int pairs_next(void *ctx, buf_t *key, buf_t *value, buf_t *where, buf_t *err)
{
    struct pairs *p = ctx;

    if (p->kv[p->next] == NULL)
        return 0;
    buf_set(key, p->kv[p->next]);
    buf_set(value, p->kv[p->next + 1]);
    buf_reset(where);
    buf_printf(where, "pair %zu", p->next / 2 + 1);
    p->next += 2;
    return 1;
}

static void pairs_duplicate(void *ctx, const char *key, const char *where)
{
    ((struct pairs *)ctx)->duplicates++;
}

/* build_pairs - table_build_from over kv; the status */
static enum table_build_status build_pairs(const char *name, const char *const *kv, int replace,
                                           int append, struct pairs *p)
{
    struct table_build_request req = {"hash", name, 0, replace, append};
    struct table_build_source src = {pairs_next, pairs_duplicate, p, 0};
    buf_t err = BUF_INIT;
    enum table_build_status rc;

    memset(p, 0, sizeof(*p));
    p->kv = kv;
    rc = table_build_from(&req, &src, NULL, &err);
    buf_free(&err);
    return rc;
}

/* test_build_from_a_stream_replace_and_append */
static void test_build_from_a_stream_replace_and_append(void **state)
{
    static const char *const first[] = {"a", "1", "b", "2", "a", "3", NULL};
    static const char *const more[] = {"c", "4", "b", "5", NULL};
    const char *name = path_in("stream"); /* no text file: the input is the array */
    struct pairs p;
    struct table *t;

    assert_int_equal(build_pairs(name, first, 0, 0, &p), TABLE_BUILD_OK);
    assert_int_equal(p.duplicates, 1);
    t = open_ok(spec_of("hash", name), 0);
    expect(t, "a", "1"); /* the first one wins */
    assert_int_equal(build_pairs(name, first, 1, 0, &p), TABLE_BUILD_OK);
    assert_int_equal(p.duplicates, 0);
    expect(t, "a", "3"); /* replace: the last one wins */
    assert_int_equal(build_pairs(name, more, 0, 1, &p), TABLE_BUILD_OK);
    assert_int_equal(p.duplicates, 1);
    expect(t, "a", "3"); /* appended: the old entries stay */
    expect(t, "b", "2");
    expect(t, "c", "4");
    assert_int_equal(build_pairs(name, more, 1, 1, &p), TABLE_BUILD_OK);
    expect(t, "b", "5");
    table_close(t);
    assert_int_equal(build_pairs(path_in("no-such-map"), more, 0, 1, &p), TABLE_BUILD_CREATE);
    assert_int_equal(build_pairs(path_in("no-such-dir/map"), more, 0, 0, &p), TABLE_BUILD_CREATE);
}

/* mode_of - permission bits and group of path */
static mode_t mode_of(const char *path, gid_t *gid)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    if (gid)
        *gid = st.st_gid;
    return st.st_mode & 07777;
}

/* test_built_file_permissions */
static void test_built_file_permissions(void **state)
{
    static const char *const kv[] = {"k", "v", NULL};
    const char *p = write_file("perm", "k v\n");
    char dir[600], name[700];
    struct pairs pairs;
    gid_t gid;

    assert_int_equal(chmod(p, 0664), 0);
    build_type_ok("hash", p, 0);
    assert_int_equal(mode_of(with_suffix(p, ".db"), NULL), 0644); /* never group-writable */
    assert_int_equal(chmod(p, 0640), 0);
    build_type_ok("dbm", p, 0);
    assert_int_equal(mode_of(with_suffix(p, ".dir"), NULL), 0640);
    assert_int_equal(mode_of(with_suffix(p, ".pag"), NULL), 0640);

    assert_int_equal(build_pairs(path_in("plain"), kv, 0, 0, &pairs), TABLE_BUILD_OK);
    assert_int_equal(mode_of(path_in("plain.db"), NULL), 0644); /* no text file */

    snprintf(dir, sizeof(dir), "%s/setgid", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(chown(dir, (uid_t)-1, 12345), 0);
    assert_int_equal(chmod(dir, 02750), 0);
    snprintf(name, sizeof(name), "%s/access", dir);
    assert_int_equal(build_pairs(name, kv, 0, 0, &pairs), TABLE_BUILD_OK);
    assert_int_equal(mode_of(with_suffix(name, ".db"), &gid), 0640);
    assert_int_equal(gid, 12345); /* the directory's group */
}

static int setup(void **state)
{
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
    log_init("test", LOG_TARGET_FILE, logpath);
    return 0;
}

static int teardown(void **state)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_texthash_reads_the_text_format),
        cmocka_unit_test(test_texthash_case_sensitive_keeps_case),
        cmocka_unit_test(test_alias_syntax_keeps_values_exactly),
        cmocka_unit_test(test_syntax_errors_name_file_and_line),
        cmocka_unit_test(test_long_lines_and_keys_are_bounded),
        cmocka_unit_test(test_missing_file_names_the_file),
        cmocka_unit_test(test_inline_and_static),
        cmocka_unit_test(test_cidr_first_match_wins),
        cmocka_unit_test(test_regexp_groups_and_flags),
        cmocka_unit_test(test_unix_passwd_byname),
        cmocka_unit_test(test_ip_lookup_order),
        cmocka_unit_test(test_lmdb_build_and_lookup),
        cmocka_unit_test(test_lmdb_alias_build_is_remembered),
        cmocka_unit_test(test_lmdb_rebuild_is_seen_without_reopen),
        cmocka_unit_test(test_lmdb_vanished_file_is_tempfail),
        cmocka_unit_test(test_failed_build_keeps_the_old_table),
        cmocka_unit_test(test_text_delete_removes_entry_and_continuations),
        cmocka_unit_test(test_file_path_uses_sendmails_names),
        cmocka_unit_test(test_hash_btree_dbm_build_and_lookup),
        cmocka_unit_test(test_foreign_db_file_names_the_rebuild_command),
        cmocka_unit_test(test_optional_lmdb_table_follows_its_file),
        cmocka_unit_test(test_optional_text_tables_missing_are_empty),
        cmocka_unit_test(test_spec_split),
        cmocka_unit_test(test_build_from_a_stream_replace_and_append),
        cmocka_unit_test(test_built_file_permissions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
