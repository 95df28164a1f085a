/*
 * fuzz_mcimport - libFuzzer target for `tern import-sendmail`'s pure stages
 * (tools/mcimport_m4.c, mcimport_map.c, mcimport_feature.c,
 * mcimport_define.c): any bytes as a .mc file, tokenized, mapped and
 * written out.  Promises checked: every item has a line within the input's
 * line count, every report line names one, and the written config has no
 * line break inside a value (a .mc value never becomes two tern.conf lines).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mcimport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mcimport_options opt = {"/m", "texthash:/r"};
    struct mcimport_doc doc;
    struct mcimport_result res;
    buf_t conf = BUF_INIT, report = BUF_INIT;
    int lines = 1;

    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    mcimport_parse((const char *)data, size, &doc);
    for (size_t i = 0; i < doc.count; i++)
        if (doc.items[i].line < 1 || doc.items[i].line > lines || doc.items[i].name == NULL)
            abort();
    mcimport_map(&doc, &opt, &res);
    for (size_t i = 0; i < res.nreport; i++)
        if (res.report[i].line < 0 || res.report[i].line > lines)
            abort();
    mcimport_write_conf(&res, "f.mc", &conf);
    for (size_t i = 0; i < res.nsettings; i++)
        if (strpbrk(buf_cstr(&res.settings[i].value), "\r\n") != NULL)
            abort();
    mcimport_write_report(&res, "f.mc", &report);
    mcimport_result_free(&res);
    mcimport_doc_free(&doc);
    buf_free(&conf);
    buf_free(&report);
    return 0;
}
