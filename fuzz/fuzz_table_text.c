/*
 * fuzz_table_text - libFuzzer target for lib/table_text.c: the text table
 * and alias-file parser behind texthash: and `tern map` (the files are
 * written by users and admins).  The first input byte chooses the flags
 * (TABLE_ALIASES, TABLE_CASE_SENSITIVE), the rest is the file.  An opened
 * table must answer a lookup of every key it lists with the listed value,
 * and a successful table_build must give an lmdb: table that agrees.
 */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "safefile.h"
#include "table.h"

struct fuzz_walk {
    struct table *self;  /* the texthash: table */
    struct table *other; /* the lmdb: table, or NULL */
    int flags;
    size_t count;
};

/* fuzz_table_dir - a private temp directory, made once */
static const char *fuzz_table_dir(void)
{
    static char dir[64];

    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/fuzz_table.XXXXXX");
        if (mkdtemp(dir) == NULL)
            abort();
        log_init("fuzz", LOG_TARGET_FILE, "/dev/null");
    }
    return dir;
}

/* fuzz_table_clean - remove every file in dir */
static void fuzz_table_clean(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    buf_t path = BUF_INIT;

    if (d == NULL)
        abort();
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        buf_reset(&path);
        buf_printf(&path, "%s/%s", dir, e->d_name);
        unlink(buf_cstr(&path));
    }
    closedir(d);
    buf_free(&path);
}

/* fuzz_table_entry - a listed entry is well formed and found again */
static int fuzz_table_entry(const char *key, const char *value, void *ctx)
{
    struct fuzz_walk *w = ctx;
    size_t n = strlen(key);
    buf_t got = BUF_INIT;

    if (n == 0 || n > TABLE_KEY_MAX || value[0] == 0 || strchr(value, '\n'))
        abort();
    if ((w->flags & TABLE_ALIASES) && strpbrk(key, " \t"))
        abort();
    if (table_lookup(w->self, key, &got) != TABLE_FOUND || strcmp(buf_cstr(&got), value) != 0)
        abort();
    if (w->other) {
        buf_reset(&got);
        if (table_lookup(w->other, key, &got) != TABLE_FOUND || strcmp(buf_cstr(&got), value) != 0)
            abort();
    }
    w->count++;
    buf_free(&got);
    return 0;
}

/* fuzz_table_build - table_build the file; open the result when it worked */
static struct table *fuzz_table_build(const char *path, int flags, size_t *entries)
{
    struct table_build_stats st = {0, 0, 0};
    buf_t err = BUF_INIT, spec = BUF_INIT;
    struct table *t = NULL;

    if (table_build("lmdb", path, flags, &st, &err) == 0) {
        buf_printf(&spec, "lmdb:%s", path);
        t = table_open(buf_cstr(&spec), flags, &err);
        if (t == NULL)
            abort(); /* what we just built must open */
        *entries = st.entries;
    } else if (err.len == 0) {
        abort();
    }
    buf_free(&err);
    buf_free(&spec);
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_table_dir();
    buf_t path = BUF_INIT, spec = BUF_INIT, err = BUF_INIT, value = BUF_INIT;
    struct fuzz_walk w = {NULL, NULL, 0, 0};
    size_t built = 0;
    FILE *fp;

    if (size == 0)
        return 0;
    w.flags = data[0] & (TABLE_ALIASES | TABLE_CASE_SENSITIVE);
    buf_printf(&path, "%s/table", dir);
    if ((fp = fopen(buf_cstr(&path), "w")) == NULL ||
        fwrite(data + 1, 1, size - 1, fp) != size - 1 || fclose(fp) != 0)
        abort();
    buf_printf(&spec, "texthash:%s", buf_cstr(&path));
    w.self = table_open(buf_cstr(&spec), w.flags, &err);
    if (w.self == NULL && err.len == 0)
        abort(); /* a refusal says why */
    w.other = fuzz_table_build(buf_cstr(&path), w.flags, &built);
    if ((w.self == NULL) != (w.other == NULL))
        abort(); /* texthash: and tern map accept the same files */
    if (w.self) {
        if (table_walk(w.self, fuzz_table_entry, &w, &err) < 0 || w.count != built)
            abort();
        (void)table_lookup(w.self, "postmaster", &value);
        (void)table_lookup(w.self, "", &value);
        table_close(w.self);
    }
    if (w.other)
        table_close(w.other);
    fuzz_table_clean(dir);
    buf_free(&path);
    buf_free(&spec);
    buf_free(&err);
    buf_free(&value);
    return 0;
}
