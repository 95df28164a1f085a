/*
 * fuzz_config - libFuzzer target for lib/config: tern.conf is parsed by
 * every daemon at start-up.  The input becomes DIR/tern.conf and is loaded
 * with config_load; a config that loads is read through every typed getter.
 * The first line is also fed to the unit parsers used for command-line flags.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"

static char fuzz_dir[64];
static char fuzz_path[128];

/* fuzz_config_cleanup - remove the private directory at exit */
static void fuzz_config_cleanup(void)
{
    unlink(fuzz_path);
    rmdir(fuzz_dir);
}

/* fuzz_config_dir - a private directory, made once */
static const char *fuzz_config_dir(void)
{
    if (!fuzz_dir[0]) {
        snprintf(fuzz_dir, sizeof(fuzz_dir), "/tmp/tern-fuzz-config.XXXXXX");
        if (mkdtemp(fuzz_dir) == NULL)
            abort();
        snprintf(fuzz_path, sizeof(fuzz_path), "%s/tern.conf", fuzz_dir);
        atexit(fuzz_config_cleanup);
    }
    return fuzz_dir;
}

/* fuzz_config_read_all - every getter on every parameter */
static void fuzz_config_read_all(const struct config *cfg)
{
    size_t n;

    for (size_t i = 0; param_table[i].name; i++) {
        const char *name = param_table[i].name;
        (void)config_str(cfg, name);
        (void)config_raw(cfg, name);
        switch (param_table[i].type) {
        case PARAM_INT:
            (void)config_int(cfg, name);
            break;
        case PARAM_BOOL:
            (void)config_bool(cfg, name);
            break;
        case PARAM_TIME:
            if (config_time(cfg, name) < 0)
                abort();
            break;
        case PARAM_SIZE:
            if (config_size(cfg, name) < 0)
                abort();
            break;
        case PARAM_LIST:
            if (config_list(cfg, name, &n)[n] != NULL)
                abort();
            break;
        case PARAM_STR:
            break;
        }
    }
}

/* fuzz_config_helpers - the flag parsers on the first line */
static void fuzz_config_helpers(const uint8_t *data, size_t size)
{
    char *s = strndup((const char *)data, size);
    long long v;
    int b;

    if (s == NULL)
        return;
    s[strcspn(s, "\n")] = 0;
    if (config_parse_time(s, &v) == 0 && v < 0)
        abort();
    if (config_parse_size(s, &v) == 0 && v < 0)
        abort();
    (void)config_parse_bool(s, &b);
    (void)config_parse_int(s, &v);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_config_dir();
    struct config *cfg = NULL;
    buf_t err = BUF_INIT;
    FILE *fp;

    fuzz_config_helpers(data, size);
    fp = fopen(fuzz_path, "w");
    if (fp == NULL || fwrite(data, 1, size, fp) != size || fclose(fp) != 0)
        abort();
    if (config_load(dir, &cfg, &err) == 0) {
        fuzz_config_read_all(cfg);
        config_free(cfg);
    } else if (err.len == 0) {
        abort(); /* a refusal must say why */
    }
    buf_free(&err);
    return 0;
}
