/*
 * test_table - unit tests for lib/table: every type (lmdb, texthash, inline,
 * static, cidr, regexp, unix), the text format (comments, continuations,
 * alias syntax, duplicates warned, bounds), case folding, the lookup orders
 * of DESIGN §6, lmdb rebuilds seen without a reopen, TEMPFAIL on a vanished
 * file, atomic builds and the text-file delete.
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

    if (table_build(path, flags, st, &err) != 0)
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
    assert_null(table_open("hash:/etc/aliases", 0, &err));
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

/* expect_addr - table_lookup_addr result and matched key */
static void expect_addr(struct table_list *l, const char *addr, const char *value, const char *key)
{
    buf_t v = BUF_INIT, k = BUF_INIT;
    enum table_result r = table_lookup_addr(l, addr, "+", &v, &k);

    if (value == NULL) {
        assert_int_equal(r, TABLE_NOTFOUND);
    } else {
        if (r != TABLE_FOUND)
            fail_msg("%s: expected %s, got %d", addr, value, r);
        assert_string_equal(buf_cstr(&v), value);
        assert_string_equal(buf_cstr(&k), key);
    }
    buf_free(&v);
    buf_free(&k);
}

/* test_address_lookup_order */
static void test_address_lookup_order(void **state)
{
    char *specs[] = {"inline:{u+e@d.example=1, u@d.example=2, v+e=3, v=4, @d.example=5}",
                     "inline:{w@d.example=6}"};
    struct table_list l;

    list_of(&l, specs, 2);
    expect_addr(&l, "u+e@d.example", "1", "u+e@d.example");
    expect_addr(&l, "U+x@D.example", "2", "U@D.example");
    expect_addr(&l, "v+e@other.example", "3", "v+e");
    expect_addr(&l, "v+x@other.example", "4", "v");
    expect_addr(&l, "v", "4", "v");
    expect_addr(&l, "nobody@d.example", "5", "@d.example");
    expect_addr(&l, "w@d.example", "6", "w@d.example"); /* each form in every table first */
    expect_addr(&l, "nobody@else.example", NULL, NULL);
    expect_addr(&l, "", NULL, NULL);
    table_list_close(&l);
}

/* test_pattern_tables_see_the_full_key_only */
static void test_pattern_tables_see_the_full_key_only(void **state)
{
    const char *p = write_file("re", "/^u@d\\.example$/ short-form\n/^d\\.example$/ domain\n");
    char spec[600];
    char *specs[] = {spec};
    struct table_list l;
    buf_t v = BUF_INIT;

    snprintf(spec, sizeof(spec), "regexp:%s", p);
    list_of(&l, specs, 1);
    expect_addr(&l, "u+e@d.example", NULL, NULL);
    expect_addr(&l, "u@d.example", "short-form", "u@d.example");
    assert_int_equal(table_lookup_domain(&l, "a.d.example", 1, &v), TABLE_NOTFOUND);
    table_list_close(&l);
    buf_free(&v);
}

/* test_domain_lookup_order */
static void test_domain_lookup_order(void **state)
{
    char *specs[] = {"inline:{a.b.example=exact, .b.example=parent, .example=top}"};
    struct table_list l;
    buf_t v = BUF_INIT;

    list_of(&l, specs, 1);
    assert_int_equal(table_lookup_domain(&l, "A.B.example.", 1, &v), TABLE_FOUND);
    assert_string_equal(v.data, "exact");
    assert_int_equal(table_lookup_domain(&l, "x.b.example", 1, &v), TABLE_FOUND);
    assert_string_equal(v.data, "parent");
    assert_int_equal(table_lookup_domain(&l, "y.example", 1, &v), TABLE_FOUND);
    assert_string_equal(v.data, "top");
    assert_int_equal(table_lookup_domain(&l, "x.b.example", 0, &v), TABLE_NOTFOUND);
    assert_int_equal(table_lookup_domain(&l, "example", 1, &v), TABLE_NOTFOUND);
    table_list_close(&l);
    buf_free(&v);
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
    assert_int_equal(table_build_flags(p), 0);
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
    assert_int_equal(table_build_flags(p), TABLE_ALIASES);
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
    assert_int_equal(table_build(p, 0, NULL, &err), -1);
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
        cmocka_unit_test(test_address_lookup_order),
        cmocka_unit_test(test_pattern_tables_see_the_full_key_only),
        cmocka_unit_test(test_domain_lookup_order),
        cmocka_unit_test(test_ip_lookup_order),
        cmocka_unit_test(test_lmdb_build_and_lookup),
        cmocka_unit_test(test_lmdb_alias_build_is_remembered),
        cmocka_unit_test(test_lmdb_rebuild_is_seen_without_reopen),
        cmocka_unit_test(test_lmdb_vanished_file_is_tempfail),
        cmocka_unit_test(test_failed_build_keeps_the_old_table),
        cmocka_unit_test(test_text_delete_removes_entry_and_continuations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
