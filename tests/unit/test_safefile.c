/*
 * test_safefile - unit tests for lib/safefile: safe_create never follows or
 * reuses a name (O_EXCL|O_NOFOLLOW), safe_open_regular refuses symlinks,
 * hard-linked files and non-regular files; write_all, fsync_dir and
 * mkdir_owned do what they say.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "safefile.h"

struct sf_fixture {
    char dir[64];
    char path[128];   /* dir/file */
    char target[128]; /* dir/target */
    char other[128];  /* dir/other */
};

static int sf_setup(void **state)
{
    struct sf_fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/tern-test-safefile.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/file", f->dir);
    snprintf(f->target, sizeof(f->target), "%s/target", f->dir);
    snprintf(f->other, sizeof(f->other), "%s/other", f->dir);
    *state = f;
    return 0;
}

static int sf_teardown(void **state)
{
    struct sf_fixture *f = *state;

    unlink(f->path);
    unlink(f->target);
    unlink(f->other);
    rmdir(f->other);
    rmdir(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* file_size - st_size of path without following links, -1 when missing */
static long long file_size(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* test_safe_create_makes_a_new_file_with_the_mode */
static void test_safe_create_makes_a_new_file_with_the_mode(void **state)
{
    struct sf_fixture *f = *state;
    struct stat st;
    mode_t old = umask(0);

    int fd = safe_create(f->path, O_WRONLY, 0640);
    umask(old);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, "hello", 5), 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(st.st_size, 5);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
}

/* test_safe_create_refuses_an_existing_name */
static void test_safe_create_refuses_an_existing_name(void **state)
{
    struct sf_fixture *f = *state;
    int fd = safe_create(f->path, O_WRONLY, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, "keep", 4), 0);
    close(fd);
    errno = 0;
    assert_int_equal(safe_create(f->path, O_WRONLY | O_TRUNC, 0600), -1);
    assert_int_equal(errno, EEXIST);
    assert_int_equal(file_size(f->path), 4); /* not truncated */
}

/* test_safe_create_does_not_follow_a_symlink */
static void test_safe_create_does_not_follow_a_symlink(void **state)
{
    struct sf_fixture *f = *state;

    /* a dangling symlink: following it would create target */
    assert_int_equal(symlink(f->target, f->path), 0);
    errno = 0;
    assert_int_equal(safe_create(f->path, O_WRONLY, 0600), -1);
    assert_int_equal(errno, EEXIST);
    assert_int_equal(file_size(f->target), -1);

    /* a symlink to an existing file: it must not be opened or truncated */
    int fd = open(f->target, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, "secret", 6), 0);
    close(fd);
    assert_int_equal(safe_create(f->path, O_WRONLY | O_TRUNC, 0600), -1);
    assert_int_equal(file_size(f->target), 6);
}

/* test_safe_open_regular_opens_a_plain_file */
static void test_safe_open_regular_opens_a_plain_file(void **state)
{
    struct sf_fixture *f = *state;
    char got[8] = {0};
    int fd = safe_create(f->path, O_WRONLY, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, "data", 4), 0);
    close(fd);
    fd = safe_open_regular(f->path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, got, sizeof(got)), 4);
    assert_string_equal(got, "data");
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
}

/* test_safe_open_regular_refuses_a_symlink */
static void test_safe_open_regular_refuses_a_symlink(void **state)
{
    struct sf_fixture *f = *state;
    int fd = open(f->target, O_WRONLY | O_CREAT, 0600);

    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(symlink(f->target, f->path), 0);
    errno = 0;
    assert_int_equal(safe_open_regular(f->path, O_RDONLY), -1);
    assert_int_equal(errno, ELOOP);
}

/* test_safe_open_regular_refuses_a_hard_linked_file */
static void test_safe_open_regular_refuses_a_hard_linked_file(void **state)
{
    struct sf_fixture *f = *state;
    int fd = safe_create(f->path, O_WRONLY, 0600);

    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(link(f->path, f->other), 0);
    errno = 0;
    assert_int_equal(safe_open_regular(f->path, O_RDONLY), -1);
    assert_int_equal(errno, EPERM);
}

/* test_safe_open_regular_refuses_a_directory_and_a_missing_file */
static void test_safe_open_regular_refuses_a_directory_and_a_missing_file(void **state)
{
    struct sf_fixture *f = *state;

    errno = 0;
    assert_int_equal(safe_open_regular(f->path, O_RDONLY), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(mkdir(f->path, 0700), 0);
    errno = 0;
    assert_int_equal(safe_open_regular(f->path, O_RDONLY), -1);
    assert_int_equal(errno, EPERM);
}

/* test_safe_open_regular_refuses_a_fifo - opened non-blocking, then refused */
static void test_safe_open_regular_refuses_a_fifo(void **state)
{
    struct sf_fixture *f = *state;

    assert_int_equal(mkfifo(f->path, 0600), 0);
    errno = 0;
    assert_int_equal(safe_open_regular(f->path, O_RDONLY | O_NONBLOCK), -1);
    assert_int_equal(errno, EPERM);
}

/* test_fsync_dir_accepts_a_directory_and_fails_on_missing */
static void test_fsync_dir_accepts_a_directory_and_fails_on_missing(void **state)
{
    struct sf_fixture *f = *state;

    assert_int_equal(fsync_dir(f->dir), 0);
    assert_int_equal(fsync_dir(f->path), -1);
}

/* test_write_all_writes_a_large_buffer_completely */
static void test_write_all_writes_a_large_buffer_completely(void **state)
{
    struct sf_fixture *f = *state;
    size_t n = 1 << 20;
    char *big = malloc(n);
    int fd = safe_create(f->path, O_WRONLY, 0600);

    assert_non_null(big);
    assert_true(fd >= 0);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)i;
    assert_int_equal(write_all(fd, big, n), 0);
    close(fd);
    assert_int_equal(file_size(f->path), (long long)n);
    assert_int_equal(write_all(-1, "x", 1), -1);
    free(big);
}

/* test_mkdir_owned_creates_and_fixes_mode */
static void test_mkdir_owned_creates_and_fixes_mode(void **state)
{
    struct sf_fixture *f = *state;
    struct stat st;

    assert_int_equal(mkdir_owned(f->path, 0750, getuid(), getgid()), 0);
    assert_int_equal(lstat(f->path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0750);
    assert_int_equal(chmod(f->path, 0777), 0);
    assert_int_equal(mkdir_owned(f->path, 0700, getuid(), getgid()), 0);
    assert_int_equal(lstat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
}

/* test_mkdir_owned_refuses_a_symlink_or_file_in_the_way */
static void test_mkdir_owned_refuses_a_symlink_or_file_in_the_way(void **state)
{
    struct sf_fixture *f = *state;
    struct stat st;

    assert_int_equal(mkdir(f->target, 0755), 0);
    assert_int_equal(symlink(f->target, f->path), 0);
    errno = 0;
    assert_int_equal(mkdir_owned(f->path, 0700, getuid(), getgid()), -1);
    assert_int_equal(errno, ENOTDIR);
    assert_int_equal(lstat(f->target, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755); /* target untouched */
    rmdir(f->target);
    int fd = open(f->other, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(mkdir_owned(f->other, 0700, getuid(), getgid()), -1);
}

#define SF_TEST(t) cmocka_unit_test_setup_teardown(t, sf_setup, sf_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        SF_TEST(test_safe_create_makes_a_new_file_with_the_mode),
        SF_TEST(test_safe_create_refuses_an_existing_name),
        SF_TEST(test_safe_create_does_not_follow_a_symlink),
        SF_TEST(test_safe_open_regular_opens_a_plain_file),
        SF_TEST(test_safe_open_regular_refuses_a_symlink),
        SF_TEST(test_safe_open_regular_refuses_a_hard_linked_file),
        SF_TEST(test_safe_open_regular_refuses_a_directory_and_a_missing_file),
        SF_TEST(test_safe_open_regular_refuses_a_fifo),
        SF_TEST(test_fsync_dir_accepts_a_directory_and_fails_on_missing),
        SF_TEST(test_write_all_writes_a_large_buffer_completely),
        SF_TEST(test_mkdir_owned_creates_and_fixes_mode),
        SF_TEST(test_mkdir_owned_refuses_a_symlink_or_file_in_the_way),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
