/* PNG line plots for training curves: see include/vkrun_plot.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vkrun_plot.h"
#include "model/model_internal.h"

#include "stb_image_write.h" /* declarations only: the implementation is libstb.so */

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wmissing-braces"
#endif
#include "stb_easy_font.h" /* header-only, static functions */
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/* ---------------------------------------------------------------- canvas + coverage masks */

typedef struct {
    int w, h;
    uint8_t *px; /* RGB */
    float *mask; /* coverage 0..1, w*h */
} canvas;

static void mask_put(canvas *cv, int x, int y, float a) {
    if (x < 0 || y < 0 || x >= cv->w || y >= cv->h || a <= 0.0f) return;
    float *m = &cv->mask[(size_t)y * (size_t)cv->w + (size_t)x];
    if (a > 1.0f) a = 1.0f;
    if (a > *m) *m = a;
}

/* Composites the mask in colour rgb with opacity alpha, then clears it. */
static void mask_paint(canvas *cv, uint32_t rgb, float alpha) {
    float c[3] = {(float)((rgb >> 16) & 255), (float)((rgb >> 8) & 255), (float)(rgb & 255)};
    size_t n = (size_t)cv->w * (size_t)cv->h;
    for (size_t i = 0; i < n; i++) {
        float a = cv->mask[i] * alpha;
        if (a <= 0.0f) continue;
        uint8_t *p = &cv->px[i * 3];
        for (int k = 0; k < 3; k++) p[k] = (uint8_t)lrintf((float)p[k] * (1.0f - a) + c[k] * a);
        cv->mask[i] = 0.0f;
    }
}

/* Axis-aligned rectangle with exact area coverage (box filter). */
static void mask_rect(canvas *cv, float x0, float y0, float x1, float y1) {
    if (x1 <= x0 || y1 <= y0) return;
    int ix0 = (int)floorf(x0), ix1 = (int)ceilf(x1), iy0 = (int)floorf(y0), iy1 = (int)ceilf(y1);
    for (int y = iy0; y < iy1; y++) {
        float cy = fminf(y1, (float)y + 1) - fmaxf(y0, (float)y);
        if (cy <= 0) continue;
        for (int x = ix0; x < ix1; x++) {
            float cx = fminf(x1, (float)x + 1) - fmaxf(x0, (float)x);
            if (cx > 0) mask_put(cv, x, y, cx * cy);
        }
    }
}

typedef struct {
    float x0, y0, x1, y1;
} clip_rect;

/* Thick anti-aliased segment: coverage from the distance of the pixel centre to the segment. */
static void mask_segment(canvas *cv, float ax, float ay, float bx, float by, float half, const clip_rect *clip) {
    float minx = fminf(ax, bx) - half - 1, maxx = fmaxf(ax, bx) + half + 1;
    float miny = fminf(ay, by) - half - 1, maxy = fmaxf(ay, by) + half + 1;
    if (clip) {
        minx = fmaxf(minx, clip->x0);
        maxx = fminf(maxx, clip->x1);
        miny = fmaxf(miny, clip->y0);
        maxy = fminf(maxy, clip->y1);
    }
    float dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
    for (int y = (int)floorf(miny); y <= (int)ceilf(maxy); y++)
        for (int x = (int)floorf(minx); x <= (int)ceilf(maxx); x++) {
            float px = (float)x + 0.5f, py = (float)y + 0.5f;
            if (clip && (px < clip->x0 || px > clip->x1 || py < clip->y0 || py > clip->y1)) continue;
            float t = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0.0f;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            float qx = ax + t * dx - px, qy = ay + t * dy - py;
            float d = sqrtf(qx * qx + qy * qy);
            mask_put(cv, x, y, half + 0.5f - d);
        }
}

static void mask_disc(canvas *cv, float cx, float cy, float r) {
    if (!(cx > -r - 2 && cx < (float)cv->w + r + 2 && cy > -r - 2 && cy < (float)cv->h + r + 2)) return;
    for (int y = (int)floorf(cy - r - 1); y <= (int)ceilf(cy + r + 1); y++)
        for (int x = (int)floorf(cx - r - 1); x <= (int)ceilf(cx + r + 1); x++) {
            float dx = (float)x + 0.5f - cx, dy = (float)y + 0.5f - cy;
            mask_put(cv, x, y, r + 0.5f - sqrtf(dx * dx + dy * dy));
        }
}

static void fill_rect(canvas *cv, int x0, int y0, int x1, int y1, uint32_t rgb) {
    for (int y = y0 < 0 ? 0 : y0; y < y1 && y < cv->h; y++)
        for (int x = x0 < 0 ? 0 : x0; x < x1 && x < cv->w; x++) {
            uint8_t *p = &cv->px[((size_t)y * (size_t)cv->w + (size_t)x) * 3];
            p[0] = (uint8_t)(rgb >> 16);
            p[1] = (uint8_t)(rgb >> 8);
            p[2] = (uint8_t)rgb;
        }
}

/* ---------------------------------------------------------------- text (stb_easy_font) */

static char *sanitize(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n > 200) n = 200;
    char *t = malloc(n + 1);
    if (!t) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        t[i] = (c >= 32 && c < 127) ? (char)c : '?';
    }
    t[n] = 0;
    return t;
}

/* Width / height in pixels of one line of sanitized text at a scale. */
static float text_width(const char *t, float scale) {
    if (!*t) return 0;
    return (float)(stb_easy_font_width((char *)t) - 1) * scale; /* drop the trailing advance gap */
}
#define TEXT_H(scale) (7.0f * (scale)) /* cap height; descenders reach ~9 */

typedef struct {
    float x, y, z;
    unsigned char c[4];
} ef_vertex;

/* Adds the text's coverage to the mask; (x, y) is the top-left corner.  With
 * `rotate`, the text runs upwards (rotated 90 degrees counter-clockwise) and
 * (x, y) is the bottom-left corner of the rotated box. */
static int text_mask(canvas *cv, const char *t, float x, float y, float scale, int rotate) {
    size_t n = strlen(t);
    if (!n) return 0;
    int bytes = (int)(n * 1200 + 64);
    ef_vertex *vb = malloc((size_t)bytes);
    if (!vb) return -1;
    int quads = stb_easy_font_print(0, 0, (char *)t, NULL, vb, bytes);
    for (int q = 0; q < quads; q++) {
        ef_vertex *v = &vb[q * 4];
        float qx0 = v[0].x, qy0 = v[0].y, qx1 = v[0].x, qy1 = v[0].y;
        for (int k = 1; k < 4; k++) {
            qx0 = fminf(qx0, v[k].x);
            qx1 = fmaxf(qx1, v[k].x);
            qy0 = fminf(qy0, v[k].y);
            qy1 = fmaxf(qy1, v[k].y);
        }
        if (!rotate)
            mask_rect(cv, x + qx0 * scale, y + qy0 * scale, x + qx1 * scale, y + qy1 * scale);
        else /* text (u, v) -> canvas (x + v, y - u) */
            mask_rect(cv, x + qy0 * scale, y - qx1 * scale, x + qy1 * scale, y - qx0 * scale);
    }
    free(vb);
    return 0;
}

static int draw_text(canvas *cv, const char *s, float x, float y, float scale, int rotate, uint32_t rgb) {
    char *t = sanitize(s);
    if (!t) return -1;
    int r = text_mask(cv, t, x, y, scale, rotate);
    free(t);
    mask_paint(cv, rgb, 1.0f);
    return r;
}

static float text_w(const char *s, float scale) {
    char *t = sanitize(s);
    if (!t) return 0;
    float w = text_width(t, scale);
    free(t);
    return w;
}

/* ---------------------------------------------------------------- ticks */

static double nice_num(double x, int round) {
    double e = floor(log10(x)), f = x / pow(10.0, e), nf;
    if (round)
        nf = f < 1.5 ? 1 : f < 2.25 ? 2 : f < 3.5 ? 2.5 : f < 7.5 ? 5 : 10;
    else
        nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
    return nf * pow(10.0, e);
}

typedef struct {
    double lo, hi;   /* axis range */
    double t0, step; /* first tick, tick step */
    int nticks;
    int decimals;
    int use_g;
} axis;

static void make_axis(axis *a, double lo, double hi, int integer, int target) {
    if (!isfinite(hi - lo) || fmax(fabs(lo), fabs(hi)) > 1e300) { /* absurd data: keep the arithmetic finite */
        lo = fmax(fmin(lo, 1e300), -1e300) / 4;
        hi = fmax(fmin(hi, 1e300), -1e300) / 4;
    }
    if (!(hi > lo)) {
        double pad = lo != 0 ? fabs(lo) * 0.1 : 1.0;
        if (integer && pad < 1) pad = 1;
        lo -= pad;
        hi += pad;
    }
    double step = nice_num(nice_num(hi - lo, 0) / (target - 1), 1);
    if (integer && step < 1) step = 1;
    if (integer) step = floor(step); /* 2.5 -> 2 */
    double t0 = floor(lo / step + 1e-9) * step, t1 = ceil(hi / step - 1e-9) * step;
    double margin = (t1 - t0) * 0.02;
    a->lo = t0 - margin;
    a->hi = t1 + margin;
    a->t0 = t0;
    a->step = step;
    a->nticks = (int)floor((t1 - t0) / step + 0.5) + 1;
    if (a->nticks > 50) a->nticks = 50;
    double mx = fmax(fabs(t0), fabs(t1));
    a->use_g = mx >= 1e6 || step < 1e-4;
    int d = (int)ceil(-log10(step) - 1e-9);
    if (step / pow(10.0, -d) != floor(step / pow(10.0, -d))) d++; /* 2.5, 0.25 */
    a->decimals = d < 0 ? 0 : d;
}

static void tick_label(const axis *a, double v, char *buf, size_t n) {
    if (fabs(v) < a->step * 1e-6) v = 0; /* no "-0.0" */
    if (a->use_g) { /* 1.2e+07 -> 1.2e7, 5e-05 -> 5e-5 */
        char t[64];
        snprintf(t, sizeof t, "%.3g", v);
        char *e = strchr(t, 'e');
        if (e) {
            char *d = e + 1, *src = e + 1;
            if (*src == '+') src++;
            if (*src == '-') *d++ = *src++;
            while (*src == '0' && src[1]) src++;
            memmove(d, src, strlen(src) + 1);
        }
        snprintf(buf, n, "%s", t);
    } else
        snprintf(buf, n, "%.*f", a->decimals, v);
}

/* ---------------------------------------------------------------- PNG output */

typedef struct {
    FILE *f;
    int err;
} png_sink_state;

typedef struct {
    int w, h;
    const uint8_t *px;
} png_job;

static void sink_write(void *ctx, void *data, int size) {
    png_sink_state *s = ctx;
    if (size > 0 && fwrite(data, 1, (size_t)size, s->f) != (size_t)size) s->err = 1;
}

static vkr_status write_png(FILE *f, void *ud) {
    const png_job *j = ud;
    png_sink_state s = {f, 0};
    if (!stbi_write_png_to_func(sink_write, &s, j->w, j->h, 3, j->px, j->w * 3))
        return vkr_fail(VKR_ERR_IO, "PNG encoder failed");
    return s.err ? vkr_fail(VKR_ERR_IO, "write failed: %s", strerror(errno)) : VKR_OK;
}

static vkr_status write_png_atomic(const char *path, int w, int h, const uint8_t *px) {
    png_job j = {w, h, px};
    vkr_status s = vkr__atomic_write(path, write_png, &j);
    return s ? vkr_fail(s, "cannot write plot '%s': %s", path, vkr_last_error()) : VKR_OK;
}

/* ---------------------------------------------------------------- the plot */

uint32_t vkr_plot_palette(int i) {
    static const uint32_t pal[] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                   0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};
    if (i < 0) i = -i;
    return pal[i % 10];
}

/* data value -> pixel coordinate, clamped far outside the canvas (absurd values stay finite) */
static double px_of(double v, const axis *a, double p0, double p1) {
    double r = p0 + (v - a->lo) / (a->hi - a->lo) * (p1 - p0);
    return r != r ? -1e5 : r < -1e5 ? -1e5 : r > 1e5 ? 1e5 : r;
}

vkr_status vkr_plot_lines(const char *path, const char *title, const char *xlabel, const char *ylabel,
                          const vkr_plot_series *series, int nseries) {
    return vkr_plot_lines_marked(path, title, xlabel, ylabel, series, nseries, NULL, 0);
}

/* Dashed vertical lines at the markers' x, their labels at the top right of each line. */
static void draw_markers(canvas *cv, const vkr_plot_marker *mk, int nm, const axis *ax, int left, int right, int top,
                         int bottom) {
    for (int k = 0; k < nm; k++) {
        if (!isfinite(mk[k].x)) continue;
        int x = (int)lround(px_of(mk[k].x, ax, left, right));
        if (x <= left || x >= right - 1) continue;
        for (int y = top + 1; y < bottom; y += 10) fill_rect(cv, x, y, x + 2, y + 6 < bottom ? y + 6 : bottom,
                                                             VKR_PLOT_MARKER_COLOR);
        if (mk[k].label && *mk[k].label) {
            float tw = text_w(mk[k].label, 2.0f), lx = (float)x + 6;
            if (lx + tw > (float)right - 4) lx = (float)x - 6 - tw; /* no room on the right: left of the line */
            draw_text(cv, mk[k].label, lx, (float)top + 6, 2.0f, 0, VKR_PLOT_MARKER_COLOR);
        }
    }
}

/* Frame, ticks and tick labels, the title and the axis labels. */
static void draw_axes(canvas *cv, const axis *axp, const axis *ayp, int left, int right, int top, int bottom,
                      const char *title, const char *xlabel, const char *ylabel) {
    const float ts = 2.0f;
    const int W = cv->w;
    const axis ax = *axp, ay = *ayp;
    char buf[64];
    /* frame, ticks, tick labels */
    const uint32_t ink = 0x333333;
    fill_rect(cv, left, top, right + 1, top + 1, ink);
    fill_rect(cv, left, bottom, right + 1, bottom + 1, ink);
    fill_rect(cv, left, top, left + 1, bottom + 1, ink);
    fill_rect(cv, right, top, right + 1, bottom + 1, ink);
    for (int i = 0; i < ax.nticks; i++) {
        double v = ax.t0 + i * ax.step;
        int x = (int)lround(px_of(v, &ax, left, right));
        fill_rect(cv, x, bottom, x + 1, bottom + 6, ink);
        tick_label(&ax, v, buf, sizeof buf);
        float lw = text_w(buf, ts), lx = fminf((float)x - lw / 2, (float)W - 4 - lw);
        draw_text(cv, buf, fmaxf(2, lx), (float)bottom + 12, ts, 0, ink);
    }
    for (int i = 0; i < ay.nticks; i++) {
        double v = ay.t0 + i * ay.step;
        int y = (int)lround(px_of(v, &ay, bottom, top));
        fill_rect(cv, left - 6, y, left, y + 1, ink);
        tick_label(&ay, v, buf, sizeof buf);
        draw_text(cv, buf, (float)left - 10 - text_w(buf, ts), (float)y - TEXT_H(ts) / 2, ts, 0, ink);
    }

    /* title and axis labels */
    if (*title) { /* 3x, or smaller when long, or cut with "..." */
        char *t = sanitize(title);
        if (t) {
            float sc = 3.0f, tw = text_width(t, sc);
            if (tw > W - 16) {
                sc = 2.0f;
                tw = text_width(t, sc);
            }
            for (size_t l = strlen(t); tw > W - 16 && l > 4; l--) {
                memcpy(t + l - 4, "...", 4);
                tw = text_width(t, sc);
            }
            float y = 16 + (3.0f - sc) * 3.5f;
            float x = (float)(left + right) / 2 - tw / 2; /* centred on the plot area, kept on the canvas */
            if (x + tw > W - 8) x = W - 8 - tw;
            if (x < 8) x = 8;
            draw_text(cv, t, x, y, sc, 0, 0x111111);
            free(t);
        }
    }
    if (*xlabel) {
        float tw = text_w(xlabel, ts);
        draw_text(cv, xlabel, (float)(left + right) / 2 - tw / 2, (float)bottom + 12 + TEXT_H(ts) + 14, ts, 0,
                  ink);
    }
    if (*ylabel) {
        float tw = text_w(ylabel, ts);
        draw_text(cv, ylabel, 12, (float)(top + bottom) / 2 + tw / 2, ts, 1, ink);
    }

}

/* The legend box in the corner of the plot area where it hides the least data (occ). */
static void draw_legend(canvas *cv, const vkr_plot_series *series, int nseries, const unsigned char *occ, int left,
                        int right, int top, int bottom) {
    const float ts = 2.0f;
    const int W = cv->w, H = cv->h;
    /* legend */
    int nleg = 0;
    float legw = 0;
    for (int s = 0; s < nseries; s++)
        if (series[s].name) {
            nleg++;
            legw = fmaxf(legw, text_w(series[s].name, ts));
        }
    if (nleg) {
        const int row = 24, pad = 10, sample = 28;
        int bw = (int)(pad + sample + 8 + legw + pad), bh = pad * 2 + row * nleg - 8;
        int cands[4][2] = {{right - 10 - bw, top + 10},
                           {left + 10, top + 10},
                           {right - 10 - bw, bottom - 10 - bh},
                           {left + 10, bottom - 10 - bh}};
        long best = -1;
        int bx = cands[0][0], by = cands[0][1];
        for (int c = 0; c < 4; c++) {
            long cnt = 0;
            for (int y = cands[c][1]; y < cands[c][1] + bh; y++)
                for (int x = cands[c][0]; x < cands[c][0] + bw; x++)
                    if (x >= 0 && y >= 0 && x < W && y < H) cnt += occ[(size_t)y * W + x];
            if (best < 0 || cnt < best) {
                best = cnt;
                bx = cands[c][0];
                by = cands[c][1];
            }
        }
        fill_rect(cv, bx, by, bx + bw, by + bh, 0xffffff);
        fill_rect(cv, bx, by, bx + bw, by + 1, 0xb0b0b0);
        fill_rect(cv, bx, by + bh - 1, bx + bw, by + bh, 0xb0b0b0);
        fill_rect(cv, bx, by, bx + 1, by + bh, 0xb0b0b0);
        fill_rect(cv, bx + bw - 1, by, bx + bw, by + bh, 0xb0b0b0);
        int k = 0;
        for (int s = 0; s < nseries; s++) {
            if (!series[s].name) continue;
            uint32_t col = series[s].color ? series[s].color : vkr_plot_palette(s);
            float cy = (float)(by + pad + k * row) + TEXT_H(ts) / 2;
            mask_segment(cv, (float)(bx + pad), cy, (float)(bx + pad + sample), cy, 1.25f, NULL);
            mask_disc(cv, (float)(bx + pad) + sample / 2.0f, cy, 3.5f);
            mask_paint(cv, col, 1.0f);
            draw_text(cv, series[s].name, (float)(bx + pad + sample + 8), (float)(by + pad + k * row), ts, 0,
                      0x222222);
            k++;
        }
    }
}

vkr_status vkr_plot_lines_marked(const char *path, const char *title, const char *xlabel, const char *ylabel,
                                 const vkr_plot_series *series, int nseries, const vkr_plot_marker *markers,
                                 int nmarkers) {
    if (nmarkers < 0 || (nmarkers > 0 && !markers)) return vkr_fail(VKR_ERR_INVALID, "vkr_plot_lines: bad markers");
    if (!path || !*path) return vkr_fail(VKR_ERR_INVALID, "vkr_plot_lines: no output path");
    if (nseries < 0 || (nseries > 0 && !series)) return vkr_fail(VKR_ERR_INVALID, "vkr_plot_lines: bad series");
    for (int s = 0; s < nseries; s++)
        if (series[s].n < 0 || (series[s].n > 0 && !series[s].y))
            return vkr_fail(VKR_ERR_INVALID, "vkr_plot_lines: series %d has no y values", s);
    if (!title) title = "";
    if (!xlabel) xlabel = "";
    if (!ylabel) ylabel = "";

    const int W = VKR_PLOT_WIDTH, H = VKR_PLOT_HEIGHT;
    canvas cv = {W, H, malloc((size_t)W * H * 3), calloc((size_t)W * H, sizeof(float))};
    if (!cv.px || !cv.mask) {
        free(cv.px);
        free(cv.mask);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
    }
    memset(cv.px, 255, (size_t)W * H * 3);

    /* data ranges */
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    int xint = 1, npts = 0;
    for (int s = 0; s < nseries; s++)
        for (int i = 0; i < series[s].n; i++) {
            double x = series[s].x ? series[s].x[i] : i + 1, y = series[s].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            xmin = fmin(xmin, x);
            xmax = fmax(xmax, x);
            ymin = fmin(ymin, y);
            ymax = fmax(ymax, y);
            if (x != floor(x)) xint = 0;
            npts++;
        }
    if (!npts) {
        xmin = 0;
        xmax = 1;
        ymin = 0;
        ymax = 1;
    }
    for (int k = 0; k < nmarkers; k++)
        if (isfinite(markers[k].x)) {
            xmin = fmin(xmin, markers[k].x);
            xmax = fmax(xmax, markers[k].x);
            if (markers[k].x != floor(markers[k].x) && xint && npts) { /* keep integer ticks (epochs) */
                xmin = fmin(xmin, floor(markers[k].x));
                xmax = fmax(xmax, ceil(markers[k].x));
            }
        }
    axis ax, ay;
    make_axis(&ax, xmin, xmax, xint && npts, 8);
    make_axis(&ay, ymin, ymax, 0, 7);

    /* layout */
    const float ts = 2.0f;
    char buf[64];
    float ylab_w = 0;
    for (int i = 0; i < ay.nticks; i++) {
        tick_label(&ay, ay.t0 + i * ay.step, buf, sizeof buf);
        ylab_w = fmaxf(ylab_w, text_w(buf, ts));
    }
    int left = (int)(12 + (*ylabel ? TEXT_H(ts) + 14 : 0) + ylab_w + 12);
    int right = W - 24;
    int top = *title ? 16 + (int)TEXT_H(3.0f) + 16 : 24;
    int bottom = H - (int)(12 + TEXT_H(ts) + 12 + (*xlabel ? TEXT_H(ts) + 14 : 0));
    if (right - left < 100) left = right - 100; /* absurd labels: keep a plot area */
    clip_rect plot = {(float)left, (float)top, (float)right, (float)bottom};

    /* grid */
    for (int i = 0; i < ax.nticks; i++) {
        int x = (int)lround(px_of(ax.t0 + i * ax.step, &ax, left, right));
        fill_rect(&cv, x, top, x + 1, bottom, 0xe6e6e6);
    }
    for (int i = 0; i < ay.nticks; i++) {
        int y = (int)lround(px_of(ay.t0 + i * ay.step, &ay, bottom, top));
        fill_rect(&cv, left, y, right, y + 1, 0xe6e6e6);
    }

    draw_markers(&cv, markers, nmarkers, &ax, left, right, top, bottom);

    /* series: lines then markers, clipped to the plot area (plus the marker radius) */
    clip_rect dclip = {plot.x0 + 1, plot.y0 + 1, plot.x1 - 1, plot.y1 - 1};
    unsigned char *occ = calloc((size_t)W * H, 1); /* data occupancy, for the legend placement */
    if (!occ) {
        free(cv.px);
        free(cv.mask);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int s = 0; s < nseries; s++) {
        uint32_t col = series[s].color ? series[s].color : vkr_plot_palette(s);
        float px0 = 0, py0 = 0;
        int have = 0;
        for (int i = 0; i < series[s].n; i++) {
            double x = series[s].x ? series[s].x[i] : i + 1, y = series[s].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            float px = (float)px_of(x, &ax, left, right), py = (float)px_of(y, &ay, bottom, top);
            if (have) mask_segment(&cv, px0, py0, px, py, 1.25f, &dclip);
            px0 = px;
            py0 = py;
            have = 1;
        }
        for (size_t k = 0; k < (size_t)W * H; k++)
            if (cv.mask[k] > 0) occ[k] = 1;
        mask_paint(&cv, col, 1.0f);
        int nfin = 0;
        for (int i = 0; i < series[s].n; i++) {
            double x = series[s].x ? series[s].x[i] : i + 1, y = series[s].y[i];
            if (isfinite(x) && isfinite(y)) nfin++;
        }
        float r = nfin > 60 ? 2.0f : 3.5f;
        for (int i = 0; i < series[s].n; i++) {
            double x = series[s].x ? series[s].x[i] : i + 1, y = series[s].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            mask_disc(&cv, (float)px_of(x, &ax, left, right), (float)px_of(y, &ay, bottom, top), r);
        }
        for (size_t k = 0; k < (size_t)W * H; k++)
            if (cv.mask[k] > 0) occ[k] = 1;
        mask_paint(&cv, col, 1.0f);
    }

    draw_axes(&cv, &ax, &ay, left, right, top, bottom, title, xlabel, ylabel);

    draw_legend(&cv, series, nseries, occ, left, right, top, bottom);
    free(occ);

    vkr_status st = write_png_atomic(path, W, H, cv.px);
    free(cv.px);
    free(cv.mask);
    return st;
}
