/* tensorboard.c — TensorBoard event files beside metrics.csv.
 *
 * Lightning's default logger writes lightning_logs/version_N/
 * events.out.tfevents.<time>.<host>.<pid>.0, which `tensorboard --logdir
 * lightning_logs` shows. The file is a sequence of TFRecords (u64 length,
 * masked CRC-32C of the length, the bytes, masked CRC-32C of the bytes),
 * each an Event protocol buffer: the first carries file_version
 * "brain.Event:2", the others one scalar summary (tag, simple_value) at a
 * step. The few protobuf fields needed are encoded by hand here, so no
 * protobuf library is linked. callbacks.c writes every metrics.csv value
 * through lg_tb_scalar as well.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint32_t lg_crc32c(const void *data, size_t n) {
    const unsigned char *p = data;
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
    }
    return crc ^ 0xffffffffu;
}

static uint32_t masked(uint32_t crc) {
    return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

static size_t put_varint(unsigned char *b, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (unsigned char)v;
    return n;
}

static size_t put_le(unsigned char *b, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return (size_t)bytes;
}

static lg_status write_record(lg_tb *tb, const unsigned char *data, size_t n, lg_error *err) {
    unsigned char head[12], tail[4];
    put_le(head, n, 8);
    put_le(head + 8, masked(lg_crc32c(head, 8)), 4);
    put_le(tail, masked(lg_crc32c(data, n)), 4);
    if (fwrite(head, 1, 12, tb->f) != 12 || fwrite(data, 1, n, tb->f) != n ||
        fwrite(tail, 1, 4, tb->f) != 4 || fflush(tb->f) != 0)
        return lg_error_set(err, LG_ERR_IO, "cannot write the TensorBoard event file: %s",
                            strerror(errno));
    return LG_OK;
}

/* Event { double wall_time = 1; int64 step = 2; ... } */
static size_t event_head(unsigned char *b, double wall, int64_t step) {
    uint64_t bits;
    memcpy(&bits, &wall, 8);
    size_t n = 0;
    b[n++] = 0x09; /* field 1, fixed64 */
    n += put_le(b + n, bits, 8);
    b[n++] = 0x10; /* field 2, varint */
    n += put_varint(b + n, (uint64_t)step);
    return n;
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

lg_status lg_tb_open(lg_tb *tb, const char *dir, lg_error *err) {
    memset(tb, 0, sizeof *tb);
    char host[64] = "localhost", path[1024];
    gethostname(host, sizeof host - 1);
    double now = wall_now();
    snprintf(path, sizeof path, "%s/events.out.tfevents.%lld.%s.%ld.0", dir, (long long)now, host,
             (long)getpid());
    tb->f = fopen(path, "wb");
    if (!tb->f)
        return lg_error_set(err, LG_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
    unsigned char b[64];
    size_t n = event_head(b, now, 0);
    static const char version[] = "brain.Event:2";
    b[n++] = 0x1a; /* field 3, string */
    b[n++] = (unsigned char)(sizeof version - 1);
    memcpy(b + n, version, sizeof version - 1);
    n += sizeof version - 1;
    return write_record(tb, b, n, err);
}

lg_status lg_tb_scalar(lg_tb *tb, const char *tag, double value, int64_t step, lg_error *err) {
    if (!tb->f)
        return LG_OK;
    size_t tl = strlen(tag);
    if (tl > 200)
        tl = 200;
    unsigned char b[300];
    size_t n = event_head(b, wall_now(), step);
    /* Summary { repeated Value value = 1 } with Value { string tag = 1;
     * float simple_value = 2 } */
    size_t value_len = 2 + tl + 5, summary_len = 1 + 1 + value_len;
    b[n++] = 0x2a; /* Event.summary, field 5 */
    n += put_varint(b + n, summary_len);
    b[n++] = 0x0a; /* Summary.value */
    n += put_varint(b + n, value_len);
    b[n++] = 0x0a; /* Value.tag */
    b[n++] = (unsigned char)tl;
    memcpy(b + n, tag, tl);
    n += tl;
    b[n++] = 0x15; /* Value.simple_value, fixed32 */
    float f = (float)value;
    uint32_t bits;
    memcpy(&bits, &f, 4);
    n += put_le(b + n, bits, 4);
    return write_record(tb, b, n, err);
}

void lg_tb_close(lg_tb *tb) {
    if (tb->f)
        fclose(tb->f);
    tb->f = NULL;
}
