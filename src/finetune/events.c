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

static int aur__record_append(const char *path, const aur__pb *ev, const char *mode)
{
    if (ev->overflow) return aur__err(AUR_EINVAL, "%s: an event record over %zu bytes (a tag too long?)", path, sizeof ev->b);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)ev->n >> (8 * i));
    uint32_t crcs[2] = {aur__masked_crc(len, 8), aur__masked_crc(ev->b, ev->n)};
    uint8_t c[2][4];
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 4; i++) c[k][i] = (uint8_t)(crcs[k] >> (8 * i));
    FILE *fp = fopen(path, mode);
    if (!fp) return aur__err(AUR_EIO, "cannot write %s: %s", path, strerror(errno));
    int ok = fwrite(len, 1, 8, fp) == 8 && fwrite(c[0], 1, 4, fp) == 4 && fwrite(ev->b, 1, ev->n, fp) == ev->n && fwrite(c[1], 1, 4, fp) == 4;
    return fclose(fp) || !ok ? aur__err(AUR_EIO, "cannot write %s", path) : 0;
}

AURDEF int aur_events_create(const char *path, double wall_time)
{
    aur__pb ev = {{0}, 0, 0};
    aur__event_head(&ev, wall_time, 0);
    aur__pb_string(&ev, 3, "brain.Event:2", 13);
    return aur__record_append(path, &ev, "wb");
}

AURDEF int aur_events_scalar(const char *path, double wall_time, int64_t step, const char *tag, double value)
{
    if (!tag || !*tag) return aur__err(AUR_EINVAL, "%s: a scalar needs a tag", path);
    aur__pb value_pb = {{0}, 0, 0}, summary = {{0}, 0, 0}, ev = {{0}, 0, 0};
    float f = (float)value; /* simple_value is a float, as TensorBoard stores it */
    uint32_t bits;
    memcpy(&bits, &f, 4);
    aur__pb_string(&value_pb, 1, tag, strlen(tag)); /* Summary.Value { string tag = 1; float simple_value = 2; } */
    aur__pb_key(&value_pb, 2, 5);
    aur__pb_le(&value_pb, bits, 4);
    aur__pb_string(&summary, 1, value_pb.b, value_pb.n); /* Summary { repeated Value value = 1; } */
    aur__event_head(&ev, wall_time, step);
    aur__pb_string(&ev, 5, summary.b, summary.n);
    ev.overflow |= value_pb.overflow | summary.overflow;
    return aur__record_append(path, &ev, "ab");
}

AURDEF int aur_events_from_json(const char *path, double wall_time, const char *json_line)
{
    cJSON *j = aur__cjson_parse(json_line, strlen(json_line), NULL);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "step");
    int rc = cJSON_IsNumber(st) ? 0 : aur__err(AUR_EFORMAT, "%s: a metrics line without a step: %.60s", path, json_line);
    for (const cJSON *it = j ? j->child : NULL; it && !rc; it = it->next)
        if (cJSON_IsNumber(it) && strcmp(it->string, "step")) rc = aur_events_scalar(path, wall_time, (int64_t)st->valuedouble, it->string, it->valuedouble);
    cJSON_Delete(j);
    return rc;
}
