/* fuzz_sdo_tables.c - libFuzzer target for the text files of SDO data in the
   reference's layout: the index CSV, the label CSV joined to it, and scalers.yaml.
   make fuzz && ./build/fuzz/fuzz_sdo_tables tests/fuzz_corpus/sdo_tables -max_total_time=60
   The first byte picks the reader, the rest is the file. Any text must be
   refused with a message or give rows by strictly increasing time, each
   with a path (an index) or a label (a join), or finite scalers. */
#define AURORA_IMPLEMENTATION
#include "../surya.h"

#include <stdlib.h>
#include <unistd.h>

static const char *const channels[] = {"aia94", "hmi_m"};
static const char index_text[] = ",path,timestep,present\n0,a.nc,2014-01-07 01:00:00,1\n1,b.nc,2014-01-07 02:00:00,1\n2,c.nc,2014-01-07 03:00:00,1\n";

static void write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size) fwrite(data, 1, size, f);
    fclose(f);
}

/* Times strictly increasing, every path non-empty, every label finite. */
static void check_rows(const aur__sdo_table *t)
{
    for (int i = 0; i < t->n; i++)
        if (!t->rows[i].path || !t->rows[i].path[0] || !isfinite(t->rows[i].label) || (i && t->rows[i].time <= t->rows[i - 1].time)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    char path[64], index_path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_sdo_%d.txt", (int)getpid());
    snprintf(index_path, sizeof index_path, "/tmp/fuzz_sdo_%d_index.csv", (int)getpid());
    write_file(path, data + 1, size - 1);
    aur__sdo_table t = {NULL, 0, 0};
    aur_surya_scaler s[2];
    int rc, which = data[0] % 3;
    if (which == 0) rc = aur__sdo_read_index(path, &t);
    else if (which == 1) {
        write_file(index_path, (const uint8_t *)index_text, sizeof index_text - 1);
        rc = aur__sdo_read_index(index_path, &t);
        if (rc) abort(); /* the fixed index is good */
        rc = aur__sdo_join_labels(&t, path, "label_max");
    } else {
        rc = aur_surya_scalers_load(path, channels, 2, s);
        for (int c = 0; !rc && c < 2; c++)
            if (!isfinite(s[c].mean) || !isfinite(s[c].std) || !isfinite(s[c].epsilon) || !isfinite(s[c].sl_scale_factor)) abort();
    }
    if (rc && !aur_last_error()[0]) abort();
    if (!rc) check_rows(&t);
    aur__sdo_table_free(&t);
    unlink(path);
    unlink(index_path);
    return 0;
}
