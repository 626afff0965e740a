/* events_read.h - reads back the scalars of a TensorBoard event file for the
   tests: checks each record's framing and masked CRC-32C, decodes the Event
   fields the writer uses. An independent reading (the writer's encoder is not
   used); tools/read_tensorboard.py reads the same files with TensorBoard. */
#ifndef EVENTS_READ_H
#define EVENTS_READ_H

typedef struct ev_scalar {
    int64_t step;
    char tag[64];
    float value;
} ev_scalar;

static uint64_t ev_varint(const uint8_t *p, size_t n, size_t *at)
{
    uint64_t v = 0;
    for (int shift = 0; *at < n && shift < 64; shift += 7) {
        uint8_t b = p[(*at)++];
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) break;
    }
    return v;
}

/* The Summary.Value in an Event's bytes: its tag and simple_value. 1 if there is one. */
static int ev_decode(const uint8_t *p, size_t n, ev_scalar *s, int depth)
{
    int found = 0;
    for (size_t at = 0; at < n;) {
        uint64_t key = ev_varint(p, n, &at);
        int field = (int)(key >> 3), wire = (int)(key & 7);
        if (wire == 0) {
            uint64_t v = ev_varint(p, n, &at);
            if (depth == 0 && field == 2) s->step = (int64_t)v;
        } else if (wire == 1) at += 8;
        else if (wire == 5) {
            if (depth == 2 && field == 2 && at + 4 <= n) memcpy(&s->value, p + at, 4), found = 1;
            at += 4;
        } else if (wire == 2) {
            size_t len = (size_t)ev_varint(p, n, &at);
            if (at + len > n) return 0;
            if (depth == 2 && field == 1) snprintf(s->tag, sizeof s->tag, "%.*s", (int)len, (const char *)p + at);
            else if ((depth == 0 && field == 5) || (depth == 1 && field == 1)) found |= ev_decode(p + at, len, s, depth + 1);
            at += len;
        } else return 0;
    }
    return found;
}

static uint32_t ev_masked_crc(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    c = ~c;
    return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

static uint32_t ev_le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* The file's scalars into out (up to cap); returns how many, or -1 if a record is damaged. */
static int ev_read_scalars(const char *path, ev_scalar *out, int cap)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    int n = 0, bad = 0;
    uint8_t head[12], data[4096], tail[4];
    while (!bad && fread(head, 1, 12, fp) == 12) {
        uint64_t len = 0;
        for (int i = 0; i < 8; i++) len |= (uint64_t)head[i] << (8 * i);
        bad = len > sizeof data || ev_masked_crc(head, 8) != ev_le32(head + 8) || fread(data, 1, len, fp) != len || fread(tail, 1, 4, fp) != 4 ||
              ev_masked_crc(data, len) != ev_le32(tail);
        ev_scalar s;
        memset(&s, 0, sizeof s);
        if (!bad && ev_decode(data, len, &s, 0) && n < cap) out[n++] = s;
    }
    fclose(fp);
    return bad ? -1 : n;
}

#endif
