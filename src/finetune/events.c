#include "../core/api.h"
#include "../core/platform.h"
#include "api.h"

/* ==== TensorBoard event files ==== */
/* The format tf.summary and torch.utils.tensorboard write: TFRecord framing
   (tensorflow/core/lib/io/record_writer.cc: a little-endian uint64 length,
   its masked CRC-32C, the bytes, their masked CRC-32C) around Event protocol
   buffers (tensorflow/core/util/event.proto; scalars as Summary.Value's
   simple_value). The first record carries file_version "brain.Event:2".
   Only these few fields are needed, so they are encoded here directly;
   Debian packages no CRC-32C library, so that is here too (8 lines). */

/* Seconds since the Unix epoch: an Event's wall_time. */
static double aur__unix_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: the
   records are short and written once per logged step. */
static uint32_t aur__crc32c(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return ~c;
}

/* TFRecord's masked CRC: rotated right by 15 bits, plus a constant. */
static uint32_t aur__masked_crc(const uint8_t *p, size_t n)
{
    uint32_t c = aur__crc32c(p, n);
    return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

typedef struct aur__pb {
    uint8_t b[1024];
    size_t n;
    int overflow;
} aur__pb;

static void aur__pb_bytes(aur__pb *pb, const void *p, size_t n)
{
    if (pb->n + n > sizeof pb->b) {
        pb->overflow = 1;
        return;
    }
    memcpy(pb->b + pb->n, p, n);
    pb->n += n;
}

static void aur__pb_varint(aur__pb *pb, uint64_t v)
{
    do {
        uint8_t byte = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        aur__pb_bytes(pb, &byte, 1);
        v >>= 7;
    } while (v);
}

/* A field's key: (number << 3) | wire type (0 varint, 1 64-bit, 2 length-delimited, 5 32-bit). */
static void aur__pb_key(aur__pb *pb, int field, int wire) { aur__pb_varint(pb, (uint64_t)(field << 3 | wire)); }

static void aur__pb_le(aur__pb *pb, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        uint8_t byte = (uint8_t)(v >> (8 * i));
        aur__pb_bytes(pb, &byte, 1);
    }
}

static void aur__pb_string(aur__pb *pb, int field, const void *s, size_t n)
{
    aur__pb_key(pb, field, 2);
    aur__pb_varint(pb, n);
    aur__pb_bytes(pb, s, n);
}

/* Event { double wall_time = 1; int64 step = 2; string file_version = 3 | Summary summary = 5; } */
static void aur__event_head(aur__pb *pb, double wall_time, int64_t step)
{
    uint64_t bits;
    memcpy(&bits, &wall_time, 8);
    aur__pb_key(pb, 1, 1);
    aur__pb_le(pb, bits, 8);
    if (step) aur__pb_key(pb, 2, 0), aur__pb_varint(pb, (uint64_t)step);
}

/* One record into an open file: 1 if written whole. */
static int aur__record_write(FILE *fp, const aur__pb *ev)
{
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)ev->n >> (8 * i));
    uint32_t crcs[2] = {aur__masked_crc(len, 8), aur__masked_crc(ev->b, ev->n)};
    uint8_t c[2][4];
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 4; i++) c[k][i] = (uint8_t)(crcs[k] >> (8 * i));
    return !ev->overflow && fwrite(len, 1, 8, fp) == 8 && fwrite(c[0], 1, 4, fp) == 4 && fwrite(ev->b, 1, ev->n, fp) == ev->n &&
           fwrite(c[1], 1, 4, fp) == 4;
}

/* Event { wall_time, step, summary { value { tag, simple_value } } }, one scalar. */
static void aur__scalar_event(aur__pb *ev, double wall_time, int64_t step, const char *tag, double value)
{
    aur__pb value_pb = {{0}, 0, 0}, summary = {{0}, 0, 0};
    float f = (float)value; /* simple_value is a float, as TensorBoard stores it */
    uint32_t bits;
    memcpy(&bits, &f, 4);
    aur__pb_string(&value_pb, 1, tag, strlen(tag)); /* Summary.Value { string tag = 1; float simple_value = 2; } */
    aur__pb_key(&value_pb, 2, 5);
    aur__pb_le(&value_pb, bits, 4);
    aur__pb_string(&summary, 1, value_pb.b, value_pb.n); /* Summary { repeated Value value = 1; } */
    aur__event_head(ev, wall_time, step);
    aur__pb_string(ev, 5, summary.b, summary.n);
    ev->overflow |= value_pb.overflow | summary.overflow;
}

/* Writes n events into path (opened with mode), each made by make(ctx, i, &event); an event too large is an error. */
static int aur__events_write(const char *path, const char *mode, int n, void (*make)(const void *ctx, int i, aur__pb *ev), const void *ctx)
{
    FILE *fp = fopen(path, mode);
    if (!fp) return aur__err(AUR_EIO, "cannot write %s: %s", path, strerror(errno));
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        aur__pb ev = {{0}, 0, 0};
        make(ctx, i, &ev);
        if (ev.overflow) rc = aur__err(AUR_EINVAL, "%s: an event record over %zu bytes (a tag too long?)", path, sizeof ev.b);
        else if (!aur__record_write(fp, &ev)) rc = aur__err(AUR_EIO, "cannot write %s", path);
    }
    if (fclose(fp) && !rc) rc = aur__err(AUR_EIO, "cannot write %s", path);
    return rc;
}

static void aur__version_event(const void *ctx, int i, aur__pb *ev)
{
    (void)i;
    aur__event_head(ev, *(const double *)ctx, 0);
    aur__pb_string(ev, 3, "brain.Event:2", 13);
}

AURDEF int aur_events_create(const char *path, double wall_time) { return aur__events_write(path, "wb", 1, aur__version_event, &wall_time); }

/* Scalars to write: tags[i] = values[i] at one step. */
typedef struct aur__scalars {
    double wall_time;
    int64_t step;
    const char *const *tags;
    const double *values;
} aur__scalars;

static void aur__scalars_event(const void *ctx, int i, aur__pb *ev)
{
    const aur__scalars *s = (const aur__scalars *)ctx;
    aur__scalar_event(ev, s->wall_time, s->step, s->tags[i], s->values[i]);
}

AURDEF int aur_events_scalar(const char *path, double wall_time, int64_t step, const char *tag, double value)
{
    if (!tag || !*tag) return aur__err(AUR_EINVAL, "%s: a scalar needs a tag", path);
    aur__scalars s = {wall_time, step, &tag, &value};
    return aur__events_write(path, "ab", 1, aur__scalars_event, &s);
}

/* A metrics line's numbers, written through one open of the file. */
AURDEF int aur_events_from_json(const char *path, double wall_time, const char *json_line)
{
    cJSON *j = aur__cjson_parse(json_line, strlen(json_line), NULL);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "step");
    int rc = cJSON_IsNumber(st) ? 0 : aur__err(AUR_EFORMAT, "%s: a metrics line without a step: %.60s", path, json_line), n = 0;
    int cap = j ? cJSON_GetArraySize(j) : 0;
    const char **tags = (const char **)aur__calloc(sizeof(char *) * (size_t)(cap + 1), "a metrics line's tags");
    double *values = (double *)aur__calloc(sizeof(double) * (size_t)(cap + 1), "a metrics line's values");
    if (!rc && (!tags || !values)) rc = AUR_ENOMEM;
    for (const cJSON *it = j ? j->child : NULL; it && !rc; it = it->next)
        if (cJSON_IsNumber(it) && strcmp(it->string, "step")) tags[n] = it->string, values[n++] = it->valuedouble;
    aur__scalars s = {wall_time, rc ? 0 : (int64_t)st->valuedouble, tags, values};
    if (!rc) rc = aur__events_write(path, "ab", n, aur__scalars_event, &s);
    AUR_FREE(tags);
    AUR_FREE(values);
    cJSON_Delete(j);
    return rc;
}
