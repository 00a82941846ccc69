/* Augmentation (runtime/data/augment.c, data_image.c's general path): the spec, each transform
 * against an independent reference on synthetic images, the random draws' ranges and
 * independence, and the loader's determinism with every transform on. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data_internal.h"
#include "stb_image_write.h"
#include "test_util.h"

#define PI 3.14159265358979323846

static int contains(const char *s, const char *part) { return s && strstr(s, part) != NULL; }

static void test_parse(void) {
    vkr_augment a;
    char buf[256];
    CHECK_OK(vkr_augment_parse("rotate=15,flip,zoom=0.1,shift=0.125,brightness=0.2,contrast=0.3,crop,resized-crop", &a),
             "full spec parses");
    CHECK(a.flip && a.crop && a.resized_crop && a.rotate == 15 && a.zoom == 0.1 && a.shift == 0.125 &&
              a.brightness == 0.2 && a.contrast == 0.3,
          "every field set");
    vkr_augment_format(&a, buf, sizeof buf);
    CHECK(!strcmp(buf, "flip,crop,rotate=15,zoom=0.1,shift=0.125,brightness=0.2,contrast=0.3,resized-crop"),
          "canonical format: %s", buf);
    vkr_augment b;
    CHECK(vkr_augment_parse(buf, &b) == VKR_OK && !memcmp(&a.rotate, &b.rotate, 5 * sizeof(double)) &&
              a.flip == b.flip && a.resized_crop == b.resized_crop,
          "parse(format(a)) == a");
    CHECK(vkr_augment_parse("none", &a) == VKR_OK && !vkr_augment_any(&a) &&
              !strcmp(vkr_augment_format(&a, buf, sizeof buf), "none"),
          "\"none\" is nothing, formatted as none");
    CHECK(vkr_augment_parse("flip,spin=3", &a) == VKR_ERR_INVALID && contains(vkr_last_error(), "unknown item \"spin=3\"") &&
              contains(vkr_last_error(), "resized-crop"),
          "unknown item named, the valid ones listed: %s", vkr_last_error());
    CHECK(vkr_augment_parse("rotate", &a) == VKR_ERR_INVALID && contains(vkr_last_error(), "'rotate' needs a value"),
          "missing value: %s", vkr_last_error());
    CHECK(vkr_augment_parse("zoom=1", &a) == VKR_ERR_INVALID && contains(vkr_last_error(), "[0, 1)"),
          "zoom 1 out of range: %s", vkr_last_error());
    CHECK(vkr_augment_parse("rotate=-5", &a) == VKR_ERR_INVALID, "negative rotation rejected");
    CHECK(vkr_augment_parse("shift=0.1x", &a) == VKR_ERR_INVALID, "trailing garbage rejected");
    CHECK(vkr_augment_parse("brightness=nan", &a) == VKR_ERR_INVALID, "nan rejected");
    CHECK(vkr_augment_parse("flip=1", &a) == VKR_ERR_INVALID && contains(vkr_last_error(), "takes no value"),
          "a switch takes no value: %s", vkr_last_error());
    vkr_augment bad = {.zoom = 2};
    CHECK(vkr__augment_check(&bad) == VKR_ERR_INVALID && contains(vkr_last_error(), "zoom = 2"),
          "a struct value out of range is caught: %s", vkr_last_error());
}

/* A w x h RGB test image whose channels differ and whose pixels are all distinct-ish. */
static uint8_t *pattern(int w, int h) {
    uint8_t *p = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *q = p + ((size_t)y * w + x) * 3;
            q[0] = (uint8_t)((x * 37 + y * 11) % 251);
            q[1] = (uint8_t)((x * 5 + y * 53 + 7) % 241);
            q[2] = (uint8_t)((x * y * 3 + 29) % 233);
        }
    return p;
}

/* Independent reference of one output pixel: bilinear read of the (unresized) image at the
 * source point of output (x, y) under rotation a (radians), scale s, translation (tx, ty):
 * src = c + R(-a) (p - c - t) / s, in pixel-centre coordinates; NAN outside. */
static double ref_pixel(const uint8_t *img, int W, int H, int c, double x, double y, double a, double s, double tx,
                        double ty) {
    double px = x + 0.5 - W * 0.5 - tx, py = y + 0.5 - H * 0.5 - ty;
    double sx = (cos(a) * px + sin(a) * py) / s + W * 0.5 - 0.5;
    double sy = (-sin(a) * px + cos(a) * py) / s + H * 0.5 - 0.5;
    if (sx < -0.5 || sy < -0.5 || sx > W - 0.5 || sy > H - 0.5) return NAN;
    int x0 = (int)floor(sx), y0 = (int)floor(sy);
    double fx = sx - x0, fy = sy - y0;
    double v = 0;
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            int xx = x0 + dx, yy = y0 + dy;
            xx = xx < 0 ? 0 : xx > W - 1 ? W - 1 : xx;
            yy = yy < 0 ? 0 : yy > H - 1 ? H - 1 : yy;
            v += (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy) * img[((size_t)yy * W + xx) * 3 + c];
        }
    return v;
}

/* max |out - reference| over the image (fill pixels must be exactly 0) */
static double geo_error(const uint8_t *img, int W, int H, const vkr__aug *g, int *fills) {
    float *out = malloc(sizeof(float) * 3 * W * H);
    vkr__render(img, W, H, H, W, 3, VKR_INTERP_BILINEAR, VKR_PREPROC_NONE, g, out);
    double err = 0;
    *fills = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double r = ref_pixel(img, W, H, c, x, y, g->angle, g->scale, g->tx, g->ty);
                float o = out[((size_t)c * H + y) * W + x];
                double e = isnan(r) ? fabs(o) : fabs(o - r);
                if (isnan(r) && c == 0) ++*fills;
                if (e > err) err = e;
            }
    free(out);
    return err;
}

static vkr__aug identity(void) {
    vkr__aug g = {.general = 1, .scale = 1, .contrast = 1};
    return g;
}

static void test_geometry(void) {
    const int W = 12, H = 12;
    uint8_t *img = pattern(W, H);
    float *out = malloc(sizeof(float) * 3 * W * H), *out2 = malloc(sizeof(float) * 3 * W * H);
    int fills;
    vkr__aug g = identity();
    CHECK(geo_error(img, W, H, &g, &fills) == 0 && fills == 0, "identity map: the image unchanged");

    /* a quarter turn of a square image is a permutation of its pixels */
    g.angle = PI / 2;
    vkr__render(img, W, H, H, W, 3, VKR_INTERP_BILINEAR, VKR_PREPROC_NONE, &g, out);
    double perr = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double e = fabs(out[((size_t)c * H + y) * W + x] - img[((size_t)(W - 1 - x) * W + y) * 3 + c]);
                if (e > perr) perr = e;
            }
    CHECK(perr < 1e-3, "rotate 90 degrees: out(y, x) = in(W-1-x, y), max error %.2g", perr);

    const double angles[] = {0.3, -0.7, 2.5}, scales[] = {2.0, 0.7, 1.3}, shifts[][2] = {{0, 0}, {2.5, -1}, {-3, 4}};
    for (int k = 0; k < 3; k++) {
        g = identity();
        g.angle = angles[k];
        g.scale = scales[k];
        g.tx = shifts[k][0];
        g.ty = shifts[k][1];
        double e = geo_error(img, W, H, &g, &fills);
        CHECK(e < 2e-3 && (k == 0 || fills > 0), "rotate %.1f rad, zoom %.1f, shift (%.1f, %.1f): max error %.2g, %d filled",
              angles[k], scales[k], shifts[k][0], shifts[k][1], e, fills);
    }

    /* whole-pixel shift: exact, zero fill */
    g = identity();
    g.tx = 2;
    g.ty = -1;
    vkr__render(img, W, H, H, W, 3, VKR_INTERP_BILINEAR, VKR_PREPROC_NONE, &g, out);
    int exact = 1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int sx = x - 2, sy = y + 1;
            float want = sx < 0 || sy >= H ? 0.0f : img[((size_t)sy * W + sx) * 3 + 1];
            if (out[((size_t)1 * H + y) * W + x] != want) exact = 0;
        }
    CHECK(exact, "shift by (2, -1) pixels: exact, filled with 0");

    /* flip and crop-shift on the general path equal the integer path */
    vkr__aug fast = {.flip = 1, .dy = 0, .dx = 3, .ph = 2, .pw = 1};
    vkr__aug gen = fast;
    gen.general = 1;
    gen.scale = 1;
    gen.contrast = 1;
    vkr__render(img, W, H, 8, 10, 3, VKR_INTERP_BILINEAR, VKR_PREPROC_CAFFE, &fast, out);
    vkr__render(img, W, H, 8, 10, 3, VKR_INTERP_BILINEAR, VKR_PREPROC_CAFFE, &gen, out2);
    CHECK(!memcmp(out, out2, sizeof(float) * 3 * 8 * 10), "flip + crop: the general path equals the integer path");
    free(out);
    free(out2);
    free(img);
}

static void test_photometric(void) {
    const int W = 9, H = 7;
    uint8_t *img = pattern(W, H);
    float *out = malloc(sizeof(float) * 3 * W * H);
    vkr__aug g = identity();
    g.photometric = 1;
    g.bright = 50;
    vkr__render(img, W, H, H, W, 3, VKR_INTERP_BILINEAR, VKR_PREPROC_NONE, &g, out);
    int ok = 1;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < W * H; i++) {
            double want = fmin(255, img[(size_t)i * 3 + c] + 50.0);
            if (fabs(out[(size_t)c * W * H + i] - want) > 1e-4) ok = 0;
        }
    CHECK(ok, "brightness +50: min(255, v + 50)");

    g.bright = 0;
    g.contrast = 0.5;
    vkr__render(img, W, H, H, W, 3, VKR_INTERP_BILINEAR, VKR_PREPROC_NONE, &g, out);
    double err = 0;
    for (int c = 0; c < 3; c++) {
        double mean = 0;
        for (int i = 0; i < W * H; i++) mean += img[(size_t)i * 3 + c];
        mean /= W * H;
        for (int i = 0; i < W * H; i++) {
            double want = (img[(size_t)i * 3 + c] - mean) * 0.5 + mean;
            err = fmax(err, fabs(out[(size_t)c * W * H + i] - want));
        }
    }
    CHECK(err < 1e-4, "contrast 0.5 about each channel's mean: max error %.2g", err);

    /* one channel, caffe: fill is 0 after preprocessing, others are gray minus the mean */
    g = identity();
    g.tx = -3;
    vkr__render(img, W, H, H, W, 1, VKR_INTERP_BILINEAR, VKR_PREPROC_CAFFE, &g, out);
    const uint8_t *p = img + (size_t)(2 * W + 1) * 3; /* output (y 2, x 1) reads (2, 4) */
    p += 3 * 3;
    double gray = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2] - (103.939 + 116.779 + 123.68) / 3;
    CHECK(out[2 * W + W - 1] == 0.0f && fabs(out[2 * W + 1] - gray) < 1e-3,
          "one channel, caffe: filled pixel 0, others gray minus the mean (%g vs %g)", out[2 * W + 1], gray);
    free(out);
    free(img);
}

static void test_resized_crop(void) {
    const int w = 40, h = 30, H = 16, W = 16;
    uint8_t *img = pattern(w, h);
    vkr__aug g = identity();
    g.cx = 7;
    g.cy = 5;
    g.cw = 20;
    g.ch = 18;
    float *out = malloc(sizeof(float) * 3 * W * H), *ref = malloc(sizeof(float) * 3 * W * H);
    uint8_t *sub = malloc((size_t)g.cw * g.ch * 3);
    for (int y = 0; y < g.ch; y++)
        for (int x = 0; x < g.cw; x++)
            memcpy(sub + ((size_t)y * g.cw + x) * 3, img + ((size_t)(g.cy + y) * w + g.cx + x) * 3, 3);
    vkr__render(img, w, h, H, W, 3, VKR_INTERP_BILINEAR, VKR_PREPROC_TORCH, &g, out);
    vkr_image_to_chw(sub, g.cw, g.ch, H, W, 3, VKR_INTERP_BILINEAR, VKR_PREPROC_TORCH, ref);
    double err = 0;
    for (int i = 0; i < 3 * W * H; i++) err = fmax(err, fabs(out[i] - ref[i]));
    CHECK(err < 1e-5, "resized crop = the cut-out rectangle resized (max error %.2g)", err);

    /* draws: inside the image, torchvision's area and aspect ranges */
    vkr_augment a = {.resized_crop = 1};
    int inside = 1, in_range = 0, n = 2000;
    for (int i = 0; i < n; i++) {
        vkr__augment_draw(&a, 5, 0, i, H, W, w, h, &g);
        if (g.cx < 0 || g.cy < 0 || g.cw < 1 || g.ch < 1 || g.cx + g.cw > w || g.cy + g.ch > h) inside = 0;
        double area = (double)g.cw * g.ch / (w * h), ar = (double)g.cw / g.ch;
        in_range += area >= 0.079 && area <= 1.0 && ar >= 0.74 && ar <= 1.35;
    }
    CHECK(inside && in_range > n * 0.98, "resized-crop draws: all inside, %d of %d in area [0.08, 1] x aspect [3/4, 4/3]",
          in_range, n);
    free(sub);
    free(out);
    free(ref);
    free(img);
}

static void test_draws(void) {
    vkr_augment a = {.rotate = 20, .zoom = 0.25, .shift = 0.1, .brightness = 0.2, .contrast = 0.3, .flip = 1, .crop = 1};
    vkr_augment fc = {.flip = 1, .crop = 1};
    const int n = 4000, H = 32, W = 48;
    double amin = 1e9, amax = -1e9, smin = 1e9, smax = -1e9, asum = 0, txmax = 0, tymax = 0, bmax = 0, cmin = 9, cmax = 0;
    int same_fc = 1, flips = 0;
    for (int i = 0; i < n; i++) {
        vkr__aug g, f;
        vkr__augment_draw(&a, 11, 3, i, H, W, 64, 64, &g);
        vkr__augment_draw(&fc, 11, 3, i, H, W, 64, 64, &f);
        if (g.flip != f.flip || g.dx != f.dx || g.dy != f.dy || f.general) same_fc = 0;
        flips += g.flip;
        amin = fmin(amin, g.angle), amax = fmax(amax, g.angle), asum += g.angle;
        smin = fmin(smin, g.scale), smax = fmax(smax, g.scale);
        txmax = fmax(txmax, fabs(g.tx)), tymax = fmax(tymax, fabs(g.ty));
        bmax = fmax(bmax, fabs(g.bright));
        cmin = fmin(cmin, g.contrast), cmax = fmax(cmax, g.contrast);
    }
    double lim = 20 * PI / 180;
    CHECK(amin >= -lim && amax <= lim && amin < -0.95 * lim && amax > 0.95 * lim && fabs(asum / n) < 0.05 * lim,
          "angles fill [-20, 20] degrees (%.2f..%.2f, mean %.3f)", amin * 180 / PI, amax * 180 / PI, asum / n * 180 / PI);
    CHECK(smin >= 0.75 && smax <= 1.25 && smin < 0.76 && smax > 1.24, "zoom in [0.75, 1.25] (%.3f..%.3f)", smin, smax);
    CHECK(txmax <= 4.8 && txmax > 4.7 && tymax <= 3.2 && tymax > 3.1, "shift up to 0.1 x (48, 32) (%.2f, %.2f)", txmax,
          tymax);
    CHECK(bmax <= 51 && bmax > 50 && cmin >= 0.7 && cmax <= 1.3, "brightness up to 51, contrast in [0.7, 1.3]");
    CHECK(same_fc && flips > n * 0.45 && flips < n * 0.55,
          "flip and crop draw the same with and without the other transforms (%d flips of %d)", flips, n);
    vkr__aug g1, g2, g3;
    vkr__augment_draw(&a, 11, 3, 7, H, W, 64, 64, &g1);
    vkr__augment_draw(&a, 11, 3, 7, H, W, 64, 64, &g2);
    vkr__augment_draw(&a, 11, 4, 7, H, W, 64, 64, &g3);
    CHECK(!memcmp(&g1, &g2, sizeof g1) && g1.angle != g3.angle, "draws depend on (seed, epoch, image) only");
}

static void test_loader(void) {
    char dir[] = "/tmp/vkr_augment_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    char p[512];
    for (int c = 0; c < 2; c++) {
        snprintf(p, sizeof p, "%s/%s", dir, c ? "b" : "a");
        mkdir(p, 0777);
        for (int i = 0; i < 6; i++) {
            uint8_t *img = pattern(20 + i, 16 + c);
            img[0] = (uint8_t)(i * 40 + c);
            snprintf(p, sizeof p, "%s/%s/%d.png", dir, c ? "b" : "a", i);
            stbi_write_png(p, 20 + i, 16 + c, 3, img, (20 + i) * 3);
            free(img);
        }
    }
    vkr_dataset *ds = NULL;
    vkr_dataset_opts dopt = {.quiet = 1};
    CHECK_OK(vkr_dataset_open(dir, &dopt, &ds), "synthetic dataset");
    if (ds) {
        vkr_loader_opts o = {.batch = 4, .height = 10, .width = 12, .epochs = 2, .seed = 9, .flags = VKR_LOAD_SHUFFLE};
        CHECK_OK(vkr_augment_parse("flip,crop,rotate=30,zoom=0.2,shift=0.1,brightness=0.3,contrast=0.3,resized-crop",
                                   &o.augment),
                 "spec");
        size_t per = 3 * 10 * 12, total = per * 4 * 6;
        float *r[3];
        for (int k = 0; k < 3; k++) {
            r[k] = calloc(total, sizeof(float));
            o.threads = k == 0 ? 1 : 4;
            if (k == 2) o.epoch = 1, o.epochs = 1;
            vkr_loader *ld = NULL;
            CHECK_OK(vkr_loader_create_ex(ds, &o, &ld), "loader %d", k);
            int n, b = 0;
            float *dst = k == 2 ? r[k] + per * 4 * 3 : r[k];
            while (ld && !vkr_loader_next(ld, dst + per * 4 * b, NULL, &n) && n > 0) b++;
            vkr_loader_destroy(ld);
        }
        size_t half = per * 4 * 3;
        CHECK(!memcmp(r[0], r[1], total * sizeof(float)), "every transform on: 1 and 4 threads give the same batches");
        CHECK(!memcmp(r[0] + half, r[2] + half, half * sizeof(float)), "epoch 1 alone equals epoch 1 of a 2-epoch run");
        CHECK(memcmp(r[0], r[0] + half, half * sizeof(float)) != 0, "epochs differ");
        for (int k = 0; k < 3; k++) free(r[k]);
        o.augment.zoom = 1.5;
        vkr_loader *ld = NULL;
        CHECK(vkr_loader_create_ex(ds, &o, &ld) == VKR_ERR_INVALID && contains(vkr_last_error(), "zoom"),
              "loader rejects zoom 1.5: %s", vkr_last_error());
        vkr_dataset_free(ds);
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) printf("  could not remove %s\n", dir);
}

int main(void) {
    test_parse();
    test_geometry();
    test_photometric();
    test_resized_crop();
    test_draws();
    test_loader();
    return test_finish();
}
