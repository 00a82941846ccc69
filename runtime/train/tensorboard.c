/* TensorBoard event files written by vkrun itself: TFRecord framing (uint64 length, masked
 * CRC32C of the length, the data, masked CRC32C of the data; little-endian) around Event
 * protocol buffers (wall_time, step, and a Summary of simple_value scalars), encoded by hand.
 * The file is opened O_APPEND and every record goes out in one write(), so a run that stops
 * leaves whole records (a resumed run appends to its own new file). */
#define _XOPEN_SOURCE 700 /* gethostname */
#include "train/tensorboard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct tb_writer {
    int fd;
    char path[4400];
};

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78). */
static uint32_t crc32c(const uint8_t *p, size_t n) {
    static uint32_t table[256];
    static int ready;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 255] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static uint32_t masked(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

typedef struct {
    uint8_t b[512];
    size_t n;
} pbuf;

static void put_byte(pbuf *p, uint8_t v) {
    if (p->n < sizeof p->b) p->b[p->n++] = v;
}
static void put_varint(pbuf *p, uint64_t v) {
    do {
        put_byte(p, (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)));
        v >>= 7;
    } while (v);
}
static void put_le(pbuf *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) put_byte(p, (uint8_t)(v >> (8 * i)));
}
static void put_bytes(pbuf *p, int field, const void *data, size_t n) {
    put_varint(p, (uint64_t)field << 3 | 2);
    put_varint(p, n);
    for (size_t i = 0; i < n; i++) put_byte(p, ((const uint8_t *)data)[i]);
}

/* One framed record of data in a single write(). */
static vkr_status write_record(tb_writer *w, const pbuf *data) {
    uint8_t rec[600];
    size_t n = 0;
    uint64_t len = data->n;
    for (int i = 0; i < 8; i++) rec[n++] = (uint8_t)(len >> (8 * i));
    uint32_t c = masked(crc32c(rec, 8));
    for (int i = 0; i < 4; i++) rec[n++] = (uint8_t)(c >> (8 * i));
    memcpy(rec + n, data->b, data->n);
    n += data->n;
    c = masked(crc32c(data->b, data->n));
    for (int i = 0; i < 4; i++) rec[n++] = (uint8_t)(c >> (8 * i));
    ssize_t got = write(w->fd, rec, n);
    if (got != (ssize_t)n)
        return vkr_fail(VKR_ERR_IO, "cannot write TensorBoard events to %s: %s", w->path,
                        got < 0 ? strerror(errno) : "short write");
    return VKR_OK;
}

static double wall_time(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Event{wall_time = 1 (double), step = 2 (int64), then field `field` as bytes}. */
static void event_head(pbuf *e, int64_t step) {
    double wt = wall_time();
    uint64_t bits;
    memcpy(&bits, &wt, 8);
    put_varint(e, 1 << 3 | 1);
    put_le(e, bits, 8);
    put_varint(e, 2 << 3 | 0);
    put_varint(e, (uint64_t)step);
}

vkr_status tb_open(const char *dir, tb_writer **out) {
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) != 0 && mkdir(dir, 0755) != 0)
        return vkr_fail(VKR_ERR_IO, "--tensorboard: cannot create %s: %s", dir, strerror(errno));
    tb_writer *w = calloc(1, sizeof *w);
    if (!w) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = 0;
    snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%lld.%s", dir, (long long)time(NULL), host);
    w->fd = open(w->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        vkr_status s = vkr_fail(VKR_ERR_IO, "--tensorboard: cannot create %s: %s", w->path, strerror(errno));
        free(w);
        return s;
    }
    pbuf e = {.n = 0};
    event_head(&e, 0);
    put_bytes(&e, 3, "brain.Event:2", 13); /* file_version */
    vkr_status s = write_record(w, &e);
    if (s) {
        tb_close(w);
        return s;
    }
    *out = w;
    return VKR_OK;
}

vkr_status tb_scalars(tb_writer *w, int64_t step, int n, const char *const *tags, const double *values) {
    pbuf sum = {.n = 0};
    for (int i = 0; i < n; i++) {
        pbuf v = {.n = 0}; /* Summary.Value{tag = 1, simple_value = 2 (float)} */
        put_bytes(&v, 1, tags[i], strlen(tags[i]));
        float f = (float)values[i];
        uint32_t bits;
        memcpy(&bits, &f, 4);
        put_varint(&v, 2 << 3 | 5);
        put_le(&v, bits, 4);
        put_bytes(&sum, 1, v.b, v.n); /* Summary.value = 1 */
    }
    pbuf e = {.n = 0};
    event_head(&e, step);
    put_bytes(&e, 5, sum.b, sum.n); /* Event.summary = 5 */
    return write_record(w, &e);
}

const char *tb_path(const tb_writer *w) { return w->path; }

void tb_close(tb_writer *w) {
    if (!w) return;
    close(w->fd);
    free(w);
}
