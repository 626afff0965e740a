#include "api.h"
#include "../core/platform.h"

/* ==== Surya: the SDO index and label tables ====
   surya/datasets/helio.py: HelioNetCDFDataset reads an index CSV with
   pandas (",path,timestep,present": one NetCDF file per time), keeps the
   rows with present == 1 and sorts them by time;
   solar_flare_forcasting/dataset.py: SolarFlareDataset inner-joins a label
   CSV ("timestamp,...,label_max") on the time. Times here are nanoseconds
   since 1970, pandas' datetime64[ns]. */

#define AUR__CSV_MAX_FIELDS 64

typedef struct aur__sdo_row {
    int64_t time;
    char *path;   /* as the index has it; owned */
    double label; /* of the joined label table */
    int line;     /* in its CSV, for messages */
} aur__sdo_row;

/* "YYYY-MM-DD", then optionally " HH:MM[:SS[.fraction]]" (or "T" between): the
   forms pandas.to_datetime reads in the reference's CSV files. */
static int aur__parse_time(const char *s, int64_t *ns)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, used = 0;
    long long frac_ns = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3) return AUR_EFORMAT;
    s += used;
    if (*s == ' ' || *s == 'T') {
        if (sscanf(s + 1, "%2d:%2d%n", &h, &mi, &used) != 2) return AUR_EFORMAT;
        s += 1 + used;
        if (*s == ':') {
            if (sscanf(s + 1, "%2d%n", &sec, &used) != 1) return AUR_EFORMAT;
            s += 1 + used;
            if (*s == '.') {
                long long scale = 100000000;
                for (s++; *s >= '0' && *s <= '9'; s++, scale /= 10) frac_ns += scale * (*s - '0');
            }
        }
    }
    /* pandas' datetime64[ns] spans 1677-09-21 to 2262-04-11 */
    static const int days_in[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (*s || y < 1678 || y > 2261 || mo < 1 || mo > 12 || d < 1 || d > days_in[mo - 1] - (mo == 2 && !leap) || h < 0 || h > 23 || mi < 0 ||
        mi > 59 || sec < 0 || sec > 59)
        return AUR_EFORMAT;
    *ns = ((aur__days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 * 1000000000LL + sec * 1000000000LL + frac_ns;
    return 0;
}

/* Splits one CSV record in place (RFC 4180: quoted fields, "" inside them).
   Returns the number of fields, or -1 for an unclosed quote or too many fields. */
static int aur__csv_split(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max) return -1;
        char *out = p;
        fields[n++] = p;
        if (*p == '"') {
            for (p++;; p++) {
                if (!*p) return -1;
                if (*p == '"' && p[1] == '"') *out++ = '"', p++;
                else if (*p == '"') { p++; break; }
                else *out++ = *p;
            }
        }
        while (*p && *p != ',') *out++ = *p++;
        int more = *p == ',';
        *out = 0;
        if (!more) return n;
        p++;
    }
}

/* The column named `name` in a header's fields, or -1. */
static int aur__csv_column(char **head, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(head[i], name)) return i;
    return -1;
}

/* Reads a CSV: calls row(ctx, fields, n, line) for each record after the
   header, whose columns `want` (NULL-ended) are found first into cols. */
typedef int (*aur__csv_row_fn)(void *ctx, char **fields, int n, int line, const int *cols, const char *path);
static int aur__csv_read(const char *path, const char *const *want, aur__csv_row_fn row, void *ctx)
{
    size_t size = 0;
    char *text = aur__read_text_file(path, (size_t)1 << 30, "a CSV file", &size);
    if (!text) return AUR_EIO;
    size_t nul = strlen(text);
    if (nul != size) {
        AUR_FREE(text);
        return aur__err(AUR_EFORMAT, "%s: a NUL byte at byte %zu; a CSV file is text", path, nul);
    }
    char *fields[AUR__CSV_MAX_FIELDS], *next = NULL;
    int cols[8], rc = 0, line = 0, header = 1;
    char *start = !strncmp(text, "\xef\xbb\xbf", 3) ? text + 3 : text; /* a UTF-8 byte-order mark, as pandas skips it */
    for (char *ln = start; ln && !rc; ln = next) {
        if ((next = strchr(ln, '\n'))) *next++ = 0;
        line++;
        size_t len = strlen(ln);
        if (len && ln[len - 1] == '\r') ln[--len] = 0;
        if (!len) continue;
        int n = aur__csv_split(ln, fields, AUR__CSV_MAX_FIELDS);
        if (n < 0) rc = aur__err(AUR_EFORMAT, "%s line %d: an unclosed quote or more than %d fields", path, line, AUR__CSV_MAX_FIELDS);
        else if (header) {
            for (int k = 0; want[k] && !rc; k++)
                if ((cols[k] = aur__csv_column(fields, n, want[k])) < 0)
                    rc = aur__err(AUR_EFORMAT, "%s: no column '%s' in its header line", path, want[k]);
            header = 0;
        } else rc = row(ctx, fields, n, line, cols, path);
    }
    if (!rc && header) rc = aur__err(AUR_EFORMAT, "%s: empty (a header line and rows were expected)", path);
    AUR_FREE(text);
    return rc;
}

typedef struct aur__sdo_table {
    aur__sdo_row *rows;
    int n, cap;
} aur__sdo_table;

static void aur__sdo_table_free(aur__sdo_table *t)
{
    for (int i = 0; t && i < t->n; i++) AUR_FREE(t->rows[i].path);
    if (t) AUR_FREE(t->rows), memset(t, 0, sizeof *t);
}

/* A field of a row as a number (pandas reads the column as numbers). */
static int aur__csv_number(char **f, int n, int col, int line, const char *path, const char *what, double *v)
{
    *v = 0;
    if (col >= n || !aur__text_number(f[col], v))
        return aur__err(AUR_EFORMAT, "%s line %d: %s '%s' is not a finite number", path, line, what, col < n ? f[col] : "");
    return 0;
}

static int aur__csv_time(char **f, int n, int col, int line, const char *path, int64_t *t)
{
    if (col < n && !aur__parse_time(f[col], t)) return 0;
    return aur__err(AUR_EFORMAT, "%s line %d: '%s' is not a time (YYYY-MM-DD HH:MM:SS, years 1678 to 2261)", path, line, col < n ? f[col] : "");
}

/* One index row: kept when present == 1, as the reference's filter. */
static int aur__sdo_index_row(void *ctx, char **f, int n, int line, const int *cols, const char *path)
{
    aur__sdo_table *t = (aur__sdo_table *)ctx;
    double present;
    int64_t time;
    if (cols[2] < n && !f[cols[2]][0]) return 0; /* pandas reads an empty field as NaN, which is not 1 */
    int rc = aur__csv_number(f, n, cols[2], line, path, "present", &present);
    if (rc || present != 1) return rc;
    rc = aur__csv_time(f, n, cols[1], line, path, &time);
    if (rc) return rc;
    if (cols[0] >= n || !f[cols[0]][0]) return aur__err(AUR_EFORMAT, "%s line %d: the path is empty", path, line);
    if (aur__grow((void **)&t->rows, &t->cap, t->n + 1, sizeof *t->rows)) return AUR_ENOMEM;
    aur__sdo_row *r = &t->rows[t->n];
    if (!(r->path = aur__strdup(f[cols[0]]))) return AUR_ENOMEM;
    r->time = time, r->label = 0, r->line = line, t->n++;
    return 0;
}

/* One label row: its time and the label column. */
static int aur__sdo_label_row(void *ctx, char **f, int n, int line, const int *cols, const char *path)
{
    aur__sdo_table *t = (aur__sdo_table *)ctx;
    if (aur__grow((void **)&t->rows, &t->cap, t->n + 1, sizeof *t->rows)) return AUR_ENOMEM;
    aur__sdo_row *r = &t->rows[t->n];
    memset(r, 0, sizeof *r);
    int rc = aur__csv_time(f, n, cols[0], line, path, &r->time);
    if (!rc) rc = aur__csv_number(f, n, cols[1], line, path, "the label", &r->label);
    if (!rc) r->line = line, t->n++;
    return rc;
}

static int aur__sdo_row_cmp(const void *a, const void *b)
{
    int64_t x = ((const aur__sdo_row *)a)->time, y = ((const aur__sdo_row *)b)->time;
    return (x > y) - (x < y);
}

/* Sorted by time; a time twice is an error (the reference's .loc lookups, and its
   one-to-one join, fail on it). */
static int aur__sdo_table_sort(aur__sdo_table *t, const char *path)
{
    if (t->n > 1) qsort(t->rows, (size_t)t->n, sizeof *t->rows, aur__sdo_row_cmp);
    for (int i = 1; i < t->n; i++)
        if (t->rows[i].time == t->rows[i - 1].time) {
            char when[64];
            return aur__err(AUR_EFORMAT, "%s: time %s is on lines %d and %d; one row per time", path,
                            aur__format_time(t->rows[i].time, when, sizeof when), t->rows[i - 1].line, t->rows[i].line);
        }
    return 0;
}

/* The row at time t of a sorted table, or NULL. */
static aur__sdo_row *aur__sdo_find(const aur__sdo_table *t, int64_t time)
{
    int lo = 0, hi = t->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (t->rows[mid].time == time) return &t->rows[mid];
        if (t->rows[mid].time < time) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

static int aur__sdo_read_index(const char *path, aur__sdo_table *t)
{
    static const char *const want[] = {"path", "timestep", "present", NULL};
    memset(t, 0, sizeof *t);
    int rc = aur__csv_read(path, want, aur__sdo_index_row, t);
    if (!rc) rc = aur__sdo_table_sort(t, path);
    if (!rc && !t->n) rc = aur__err(AUR_EFORMAT, "%s: no row has present == 1", path);
    if (rc) aur__sdo_table_free(t);
    return rc;
}

/* The inner join on the time with a label table (column `column`): index rows
   without a label are dropped, as SolarFlareDataset's join. */
static int aur__sdo_join_labels(aur__sdo_table *index, const char *path, const char *column)
{
    const char *const want[] = {"timestamp", column, NULL};
    aur__sdo_table labels = {NULL, 0, 0};
    int rc = aur__csv_read(path, want, aur__sdo_label_row, &labels), kept = 0;
    if (!rc) rc = aur__sdo_table_sort(&labels, path);
    for (int i = 0; !rc && i < index->n; i++) {
        const aur__sdo_row *l = aur__sdo_find(&labels, index->rows[i].time);
        if (!l) { AUR_FREE(index->rows[i].path); continue; }
        index->rows[kept] = index->rows[i];
        index->rows[kept++].label = l->label;
    }
    if (!rc) index->n = kept;
    if (!rc && !kept) rc = aur__err(AUR_EFORMAT, "%s: none of its times is in the index", path);
    aur__sdo_table_free(&labels);
    return rc;
}
