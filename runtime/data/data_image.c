/* Image decoding (stb_image), resizing and preprocessing to CHW floats. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data_internal.h"
#include "stb_image.h" /* declarations only: the implementation is libstb.so */

#define MAX_FILE_BYTES (1024L * 1024L * 1024L)

/* ---------------------------------------------------------------- names */

static const char *const k_interp_names[] = {"bilinear", "nearest", "nearest-pil"};
static const char *const k_pre_names[] = {"none", "caffe", "torch", "tf", "unit"};

vkr_status vkr_interp_parse(const char *name, vkr_interp *out) {
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, k_interp_names[i]) == 0) {
            *out = (vkr_interp)i;
            return VKR_OK;
        }
    return vkr_fail(VKR_ERR_INVALID, "unknown interpolation '%s' (expected bilinear, nearest or nearest-pil)",
                    name ? name : "(null)");
}

const char *vkr_interp_name(vkr_interp i) {
    return (unsigned)i < 3 ? k_interp_names[i] : "unknown";
}

vkr_status vkr_preprocess_parse(const char *name, vkr_preprocess *out) {
    for (int i = 0; i < 5; i++)
        if (name && strcmp(name, k_pre_names[i]) == 0) {
            *out = (vkr_preprocess)i;
            return VKR_OK;
        }
    return vkr_fail(VKR_ERR_INVALID, "unknown preprocessing '%s' (expected caffe, torch, tf, unit or none)",
                    name ? name : "(null)");
}

const char *vkr_preprocess_name(vkr_preprocess p) {
    return (unsigned)p < 5 ? k_pre_names[p] : "unknown";
}

/* ---------------------------------------------------------------- decoding */

static int read_whole(const char *path, unsigned char **data, long *len, char *err, size_t errsz) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "'%s': cannot open: %s", path, strerror(errno));
        return VKR__DECODE_IO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errsz, "'%s': not a regular file", path);
        fclose(f);
        return VKR__DECODE_IO;
    }
    if (st.st_size == 0) {
        snprintf(err, errsz, "'%s': empty file (0 bytes)", path);
        fclose(f);
        return VKR__DECODE_FORMAT;
    }
    if (st.st_size > MAX_FILE_BYTES) {
        snprintf(err, errsz, "'%s': file too large for an image (%lld bytes, limit 1 GiB)", path,
                 (long long)st.st_size);
        fclose(f);
        return VKR__DECODE_FORMAT;
    }
    long n = (long)st.st_size;
    unsigned char *buf = malloc((size_t)n);
    if (!buf) {
        snprintf(err, errsz, "'%s': out of memory reading %ld bytes", path, n);
        fclose(f);
        return VKR__DECODE_NOMEM;
    }
    size_t got = fread(buf, 1, (size_t)n, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr || got == 0) {
        snprintf(err, errsz, "'%s': cannot read: %s", path, rerr ? strerror(errno) : "no data");
        free(buf);
        return VKR__DECODE_IO;
    }
    *data = buf;
    *len = (long)got; /* the file may have shrunk since fstat */
    return VKR__DECODE_OK;
}

/* Binary PNM (P5/P6): stb does not notice pixel data cut short and would return
 * garbage, so check the size: returns 1 when the data is shorter than the header says.
 * Returns 2 for a header number of 10 digits or more: Debian's stb_image parses them into an
 * int without an overflow check (undefined behaviour; found by fuzz_image). */
static int pnm_check(const unsigned char *d, long len) {
    if (len < 2 || d[0] != 'P' || (d[1] != '5' && d[1] != '6')) return 0;
    long v[3] = {0, 0, 0}, i = 2;
    for (int k = 0; k < 3; k++) {
        for (;;) { /* whitespace and comments */
            /* stb's whitespace (stbi__pnm_isspace: also \v and \f) and comments (to \n or \r) */
            while (i < len && (d[i] == ' ' || (d[i] >= '\t' && d[i] <= '\r'))) i++;
            if (i < len && d[i] == '#') {
                while (i < len && d[i] != '\n' && d[i] != '\r') i++;
            } else {
                break;
            }
        }
        if (i >= len || d[i] < '0' || d[i] > '9') return 0; /* let stb report a malformed header */
        while (i < len && d[i] >= '0' && d[i] <= '9' && v[k] < 100000000) v[k] = v[k] * 10 + (d[i++] - '0');
        if (i < len && d[i] >= '0' && d[i] <= '9') return 2;
    }
    i++; /* the single whitespace byte after maxval */
    double need = (double)v[0] * (double)v[1] * (d[1] == '6' ? 3 : 1) * (v[2] > 255 ? 2 : 1);
    return (double)(len - i) < need;
}

/* 1 when a JPEG declares a Huffman table of more than 256 codes.  Debian's stb_image
 * (git 2022-09-08) does not check that count and writes up to 3.8 KB past its table, over the
 * decoder's function pointers (fuzz_image found it; upstream checks it since).  Walks the
 * marker segments as stb does, skipping entropy-coded data, and reads each DHT table as stb
 * would (missing bytes read as 0). */
static int jpeg_bad_huffman(const unsigned char *d, long len) {
    long i = 1;
    while (i < len && d[i] == 0xFF) i++; /* stb skips fill bytes before SOI too */
    if (len < 4 || d[0] != 0xFF || i >= len || d[i] != 0xD8) return 0;
    i++;
    while (i + 3 < len) {
        if (d[i] != 0xFF || d[i + 1] == 0xFF || d[i + 1] == 0x00 || (d[i + 1] >= 0xD0 && d[i + 1] <= 0xD7)) {
            i++; /* entropy-coded data, fill, stuffed 0xFF 0x00 and restart markers have no length */
            continue;
        }
        long seg = (long)d[i + 2] << 8 | d[i + 3];
        if (d[i + 1] == 0xC4)
            for (long L = seg - 2, j = i + 4; L > 0;) {
                long n = 0;
                for (long k = j + 1; k <= j + 16; k++) n += k < len ? d[k] : 0;
                if (n > 256) return 1;
                j += 17 + n;
                L -= 17 + n;
            }
        i += 2 + seg;
    }
    return 0;
}

int vkr__decode_file(const char *path, int full, uint8_t **rgb, int *w, int *h, char *err, size_t errsz) {
    if (rgb) *rgb = NULL;
    unsigned char *data;
    long len;
    int r = read_whole(path, &data, &len, err, errsz);
    if (r) return r;
    if (jpeg_bad_huffman(data, len)) {
        snprintf(err, errsz, "'%s': corrupt JPEG (a Huffman table of more than 256 codes)", path);
        free(data);
        return VKR__DECODE_FORMAT;
    }
    int pnm = pnm_check(data, len);
    if (pnm == 2) {
        snprintf(err, errsz, "'%s': corrupt PNM header (a number of 10 digits or more)", path);
        free(data);
        return VKR__DECODE_FORMAT;
    }
    int iw = 0, ih = 0, comp = 0;
    if (!stbi_info_from_memory(data, (int)len, &iw, &ih, &comp)) {
        static const unsigned char png_sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
        const char *why = stbi_failure_reason();
        if (len >= 8 && !memcmp(data, png_sig, 8)) {
            /* stb gives up on PNGs it will not decode with its last decoder's reason ("unknown image
             * type"): say what the header says instead */
            if (len < 24)
                snprintf(err, errsz, "'%s': truncated PNG (%ld bytes: the header is cut)", path, len);
            else {
                uint32_t pw = (uint32_t)data[16] << 24 | (uint32_t)data[17] << 16 | (uint32_t)data[18] << 8 | data[19];
                uint32_t ph = (uint32_t)data[20] << 24 | (uint32_t)data[21] << 16 | (uint32_t)data[22] << 8 | data[23];
                if (pw > VKR_IMAGE_MAX_SIDE || ph > VKR_IMAGE_MAX_SIDE || (double)pw * ph > VKR_IMAGE_MAX_PIXELS)
                    snprintf(err, errsz, "'%s': PNG of %ux%u pixels is too large (limit %d per side, %.0f pixels)", path,
                             pw, ph, VKR_IMAGE_MAX_SIDE, VKR_IMAGE_MAX_PIXELS);
                else
                    snprintf(err, errsz, "'%s': corrupt or truncated PNG (%s)", path, why && *why ? why : "bad header");
            }
        } else {
            snprintf(err, errsz, "'%s': not a recognized image (%s)", path, why && *why ? why : "unknown format");
        }
        free(data);
        return VKR__DECODE_FORMAT;
    }
    if (iw <= 0 || ih <= 0 || iw > VKR_IMAGE_MAX_SIDE || ih > VKR_IMAGE_MAX_SIDE ||
        (double)iw * (double)ih > VKR_IMAGE_MAX_PIXELS) {
        snprintf(err, errsz, "'%s': implausible dimensions %dx%d (limit %d per side, %.0f pixels)", path, iw,
                 ih, VKR_IMAGE_MAX_SIDE, VKR_IMAGE_MAX_PIXELS);
        free(data);
        return VKR__DECODE_FORMAT;
    }
    if (pnm == 1) {
        snprintf(err, errsz, "'%s': cannot decode (PNM pixel data truncated)", path);
        free(data);
        return VKR__DECODE_FORMAT;
    }
    if (w) *w = iw;
    if (h) *h = ih;
    if (!full) {
        free(data);
        return VKR__DECODE_OK;
    }
    int lw = 0, lh = 0, lc = 0;
    /* A binary PGM is decoded as gray and made RGB below: Debian's stb_image (git 2022-09-08)
     * converts a 16-bit one to RGB as if it were 8-bit, then reads past that buffer (heap
     * overflow, found by fuzz_image). */
    int pgm = len >= 2 && data[0] == 'P' && data[1] == '5';
    stbi_uc *px = stbi_load_from_memory(data, (int)len, &lw, &lh, &lc, pgm ? 1 : 3);
    free(data);
    if (!px) {
        const char *why = stbi_failure_reason();
        snprintf(err, errsz, "'%s': cannot decode (%s)", path, why && *why ? why : "truncated or corrupt data");
        return (why && strcmp(why, "outofmem") == 0) ? VKR__DECODE_NOMEM : VKR__DECODE_FORMAT;
    }
    if (lw != iw || lh != ih) { /* should not happen; be defensive */
        snprintf(err, errsz, "'%s': cannot decode (header says %dx%d, data %dx%d)", path, iw, ih, lw, lh);
        stbi_image_free(px);
        return VKR__DECODE_FORMAT;
    }
    /* stbi_image_free is free() in the Debian build, but copy to be independent of that. */
    size_t bytes = (size_t)lw * (size_t)lh * 3;
    uint8_t *copy = malloc(bytes);
    if (!copy) {
        stbi_image_free(px);
        snprintf(err, errsz, "'%s': out of memory decoding %dx%d pixels", path, lw, lh);
        return VKR__DECODE_NOMEM;
    }
    if (pgm)
        for (size_t i = 0; i < bytes; i++) copy[i] = px[i / 3];
    else
        memcpy(copy, px, bytes);
    stbi_image_free(px);
    if (rgb)
        *rgb = copy;
    else
        free(copy);
    if (w) *w = lw;
    if (h) *h = lh;
    return VKR__DECODE_OK;
}

static vkr_status decode_status(int r, const char *msg) {
    switch (r) {
    case VKR__DECODE_OK: return VKR_OK;
    case VKR__DECODE_IO: return vkr_fail(VKR_ERR_IO, "%s", msg);
    case VKR__DECODE_NOMEM: return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "%s", msg);
    default: return vkr_fail(VKR_ERR_FORMAT, "%s", msg);
    }
}

vkr_status vkr_image_read_rgb(const char *path, uint8_t **rgb, int *w, int *h) {
    if (!path || !rgb || !w || !h) return vkr_fail(VKR_ERR_INVALID, "vkr_image_read_rgb: NULL argument");
    char msg[1024];
    int r = vkr__decode_file(path, 1, rgb, w, h, msg, sizeof msg);
    return decode_status(r, msg);
}

/* ---------------------------------------------------------------- resize + preprocess */

typedef struct {
    int i0, i1;
    float t; /* weight of i1 */
} tap;

static void make_taps(tap *taps, int out, int in, vkr_interp interp) {
    float scale = (float)in / (float)out;
    for (int o = 0; o < out; o++) {
        tap *t = &taps[o];
        if (interp == VKR_INTERP_NEAREST || interp == VKR_INTERP_NEAREST_PIL) {
            long long s = interp == VKR_INTERP_NEAREST ? (long long)o * in / out
                                                        : ((2LL * o + 1) * in) / (2LL * out);
            if (s > in - 1) s = in - 1;
            t->i0 = t->i1 = (int)s;
            t->t = 0.0f;
        } else {
            float s = ((float)o + 0.5f) * scale - 0.5f;
            float f = floorf(s);
            int lo = (int)f, hi = (int)ceilf(s);
            if (lo < 0) lo = 0;
            if (lo > in - 1) lo = in - 1;
            if (hi > in - 1) hi = in - 1;
            if (hi < 0) hi = 0;
            t->i0 = lo;
            t->i1 = hi;
            t->t = s - f;
        }
    }
}

/* out = v * scale[c] + bias[c]; output channel c reads input channel src[c]. */
static void pre_consts(vkr_preprocess pre, int C, float scale[3], float bias[3], int src[3]) {
    static const double caffe_bgr[3] = {103.939, 116.779, 123.68};
    static const double tmean[3] = {0.485, 0.456, 0.406}, tstd[3] = {0.229, 0.224, 0.225};
    for (int c = 0; c < 3; c++) {
        src[c] = c;
        scale[c] = 1.0f;
        bias[c] = 0.0f;
    }
    switch (pre) {
    case VKR_PREPROC_CAFFE:
        if (C == 1) {
            bias[0] = (float)(-(caffe_bgr[0] + caffe_bgr[1] + caffe_bgr[2]) / 3.0);
        } else {
            for (int c = 0; c < 3; c++) {
                src[c] = 2 - c;
                bias[c] = (float)-caffe_bgr[c];
            }
        }
        break;
    case VKR_PREPROC_TORCH:
        if (C == 1) {
            double m = (tmean[0] + tmean[1] + tmean[2]) / 3.0, s = (tstd[0] + tstd[1] + tstd[2]) / 3.0;
            scale[0] = (float)(1.0 / (255.0 * s));
            bias[0] = (float)(-m / s);
        } else {
            for (int c = 0; c < 3; c++) {
                scale[c] = (float)(1.0 / (255.0 * tstd[c]));
                bias[c] = (float)(-tmean[c] / tstd[c]);
            }
        }
        break;
    case VKR_PREPROC_TF:
        for (int c = 0; c < 3; c++) {
            scale[c] = (float)(1.0 / 127.5);
            bias[c] = -1.0f;
        }
        break;
    case VKR_PREPROC_UNIT:
        for (int c = 0; c < 3; c++) scale[c] = (float)(1.0 / 255.0);
        break;
    case VKR_PREPROC_NONE:
    default: break;
    }
}

/* The resized image, 0..255 floats [3][H][W] (the same taps and arithmetic as vkr__render). */
static float *resize_rgb(const uint8_t *rgb, int w, int h, int H, int W, vkr_interp interp) {
    tap *xt = malloc(sizeof(tap) * (size_t)W), *yt = malloc(sizeof(tap) * (size_t)H);
    float *img = malloc(sizeof(float) * 3 * (size_t)H * (size_t)W);
    if (!xt || !yt || !img) {
        free(xt);
        free(yt);
        free(img);
        return NULL;
    }
    make_taps(xt, W, w, interp);
    make_taps(yt, H, h, interp);
    const size_t plane = (size_t)H * (size_t)W, stride = (size_t)w * 3;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const tap *ty = &yt[y], *tx = &xt[x];
            const uint8_t *r0 = rgb + (size_t)ty->i0 * stride, *r1 = rgb + (size_t)ty->i1 * stride;
            size_t x0 = (size_t)tx->i0 * 3, x1 = (size_t)tx->i1 * 3;
            for (int c = 0; c < 3; c++) {
                float tl = r0[x0 + c], tr = r0[x1 + c], bl = r1[x0 + c], br = r1[x1 + c];
                float top = tl + (tr - tl) * tx->t;
                float bot = bl + (br - bl) * tx->t;
                img[(size_t)c * plane + (size_t)y * W + x] = top + (bot - top) * ty->t;
            }
        }
    free(xt);
    free(yt);
    return img;
}

/* Brightness, then contrast about each channel's mean, clamped to 0..255. */
static void photometric(float *img, size_t plane, const vkr__aug *g) {
    for (int c = 0; c < 3; c++) {
        float *p = img + (size_t)c * plane;
        double mean = 0;
        for (size_t i = 0; i < plane; i++) mean += (double)p[i] + g->bright;
        mean /= (double)plane;
        for (size_t i = 0; i < plane; i++) {
            double v = ((double)p[i] + g->bright - mean) * g->contrast + mean;
            p[i] = (float)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

/* Bilinear sample of plane p (H x W) at index coordinates (sx, sy); 0 with *out set when the
 * point lies beyond the image's outer pixel edges. */
static float sample(const float *p, int H, int W, double sx, double sy, int *out) {
    if (sx < -0.5 || sy < -0.5 || sx > W - 0.5 || sy > H - 0.5) {
        *out = 1;
        return 0;
    }
    *out = 0;
    double fx = floor(sx), fy = floor(sy), tx = sx - fx, ty = sy - fy;
    int x0 = (int)fx, y0 = (int)fy, x1 = x0 + 1, y1 = y0 + 1;
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > W - 1 ? W - 1 : x1;
    y1 = y1 > H - 1 ? H - 1 : y1;
    double top = p[(size_t)y0 * W + x0] + (p[(size_t)y0 * W + x1] - p[(size_t)y0 * W + x0]) * tx;
    double bot = p[(size_t)y1 * W + x0] + (p[(size_t)y1 * W + x1] - p[(size_t)y1 * W + x0]) * tx;
    return (float)(top + (bot - top) * ty);
}

/* The general augmentation path (see vkrun_data.h's vkr_augment for the order).  Output pixel
 * p (pixel-centre coordinates, c the image centre) reads the resized image at
 * F(R(-angle) (p - c - t) / scale) + c + crop shift, F the flip. */
static int render_general(const uint8_t *rgb, int w, int h, int H, int W, int C, vkr_interp interp,
                          vkr_preprocess pre, const vkr__aug *g, float *out) {
    uint8_t *sub = NULL;
    if (g->cw > 0) { /* resized crop: cut the rectangle out of the decoded image */
        sub = malloc((size_t)g->cw * (size_t)g->ch * 3);
        if (!sub) return -1;
        for (int y = 0; y < g->ch; y++)
            memcpy(sub + (size_t)y * g->cw * 3, rgb + ((size_t)(g->cy + y) * w + (size_t)g->cx) * 3, (size_t)g->cw * 3);
        rgb = sub;
        w = g->cw;
        h = g->ch;
    }
    float *img = resize_rgb(rgb, w, h, H, W, interp);
    free(sub);
    if (!img) return -1;
    const size_t plane = (size_t)H * (size_t)W;
    if (g->photometric) photometric(img, plane, g);
    float scale[3], bias[3];
    int src[3];
    pre_consts(pre, C, scale, bias, src);
    double cs = cos(g->angle) / g->scale, sn = sin(g->angle) / g->scale;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double u = x + 0.5 - W / 2.0 - g->tx, v = y + 0.5 - H / 2.0 - g->ty;
            double su = cs * u + sn * v, sv = -sn * u + cs * v; /* R(-angle) / scale */
            if (g->flip) su = -su;
            double sx = su + W / 2.0 - 0.5 + (g->dx - g->pw), sy = sv + H / 2.0 - 0.5 + (g->dy - g->ph);
            float vals[3];
            int outside = 0;
            for (int c = 0; c < 3; c++) vals[c] = sample(img + (size_t)c * plane, H, W, sx, sy, &outside);
            size_t o = (size_t)y * W + x;
            if (outside) {
                for (int c = 0; c < C; c++) out[(size_t)c * plane + o] = 0.0f;
            } else if (C == 1) {
                float gray = 0.299f * vals[0] + 0.587f * vals[1] + 0.114f * vals[2];
                out[o] = gray * scale[0] + bias[0];
            } else {
                for (int c = 0; c < 3; c++) out[(size_t)c * plane + o] = vals[src[c]] * scale[c] + bias[c];
            }
        }
    free(img);
    return 0;
}

int vkr__render(const uint8_t *rgb, int w, int h, int H, int W, int C, vkr_interp interp, vkr_preprocess pre,
                const vkr__aug *aug, float *out) {
    if (aug && aug->general) return render_general(rgb, w, h, H, W, C, interp, pre, aug, out);
    tap *xt = malloc(sizeof(tap) * (size_t)W), *yt = malloc(sizeof(tap) * (size_t)H);
    if (!xt || !yt) {
        free(xt);
        free(yt);
        return -1;
    }
    make_taps(xt, W, w, interp);
    make_taps(yt, H, h, interp);
    float scale[3], bias[3];
    int src[3];
    pre_consts(pre, C, scale, bias, src);
    const size_t plane = (size_t)H * (size_t)W;
    const size_t stride = (size_t)w * 3;
    for (int y = 0; y < H; y++) {
        int ry = aug ? y + aug->dy - aug->ph : y;
        for (int x = 0; x < W; x++) {
            int rx = aug && aug->flip ? W - 1 - x : x;
            if (aug) rx += aug->dx - aug->pw;
            size_t o = (size_t)y * (size_t)W + (size_t)x;
            if (ry < 0 || ry >= H || rx < 0 || rx >= W) {
                for (int c = 0; c < C; c++) out[(size_t)c * plane + o] = 0.0f;
                continue;
            }
            const tap *ty = &yt[ry], *tx = &xt[rx];
            const uint8_t *r0 = rgb + (size_t)ty->i0 * stride, *r1 = rgb + (size_t)ty->i1 * stride;
            size_t x0 = (size_t)tx->i0 * 3, x1 = (size_t)tx->i1 * 3;
            float v[3];
            for (int c = 0; c < 3; c++) {
                /* TF's formulation: top + (bottom - top) * y_lerp */
                float tl = r0[x0 + c], tr = r0[x1 + c], bl = r1[x0 + c], br = r1[x1 + c];
                float top = tl + (tr - tl) * tx->t;
                float bot = bl + (br - bl) * tx->t;
                v[c] = top + (bot - top) * ty->t;
            }
            if (C == 1) {
                float g = 0.299f * v[0] + 0.587f * v[1] + 0.114f * v[2];
                out[o] = g * scale[0] + bias[0];
            } else {
                for (int c = 0; c < 3; c++) out[(size_t)c * plane + o] = v[src[c]] * scale[c] + bias[c];
            }
        }
    }
    free(xt);
    free(yt);
    return 0;
}

static vkr_status check_geometry(const char *fn, int H, int W, int C) {
    if (H <= 0 || W <= 0 || H > VKR_IMAGE_MAX_SIDE || W > VKR_IMAGE_MAX_SIDE)
        return vkr_fail(VKR_ERR_INVALID, "%s: bad output size %dx%d", fn, W, H);
    if (C != 1 && C != 3) return vkr_fail(VKR_ERR_INVALID, "%s: channels must be 1 or 3, not %d", fn, C);
    return VKR_OK;
}

vkr_status vkr_image_to_chw(const uint8_t *rgb, int w, int h, int H, int W, int channels, vkr_interp interp,
                            vkr_preprocess pre, float *out_chw) {
    vkr_status s = check_geometry("vkr_image_to_chw", H, W, channels);
    if (s) return s;
    if (!rgb || !out_chw || w <= 0 || h <= 0)
        return vkr_fail(VKR_ERR_INVALID, "vkr_image_to_chw: bad input image (%dx%d)", w, h);
    if ((unsigned)interp > VKR_INTERP_NEAREST_PIL || (unsigned)pre > VKR_PREPROC_UNIT)
        return vkr_fail(VKR_ERR_INVALID, "vkr_image_to_chw: bad interpolation or preprocessing value");
    if (vkr__render(rgb, w, h, H, W, channels, interp, pre, NULL, out_chw))
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "vkr_image_to_chw: out of memory");
    return VKR_OK;
}

vkr_status vkr_image_load_ex(const char *path, int H, int W, int channels, vkr_interp interp, vkr_preprocess pre,
                             float *out_chw) {
    vkr_status s = check_geometry("vkr_image_load", H, W, channels);
    if (s) return s;
    if (!path || !out_chw) return vkr_fail(VKR_ERR_INVALID, "vkr_image_load: NULL argument");
    uint8_t *rgb;
    int w, h;
    s = vkr_image_read_rgb(path, &rgb, &w, &h);
    if (s) return s;
    s = vkr_image_to_chw(rgb, w, h, H, W, channels, interp, pre, out_chw);
    free(rgb);
    return s;
}

vkr_status vkr_image_load(const char *path, int H, int W, vkr_interp interp, vkr_preprocess pre, float *out_chw) {
    return vkr_image_load_ex(path, H, W, 3, interp, pre, out_chw);
}
