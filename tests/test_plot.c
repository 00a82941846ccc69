/* Tests of include/vkrun_plot.h: writes plots and reads them back with stb_image. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"
#include "vkrun_plot.h"

#include "stb_image.h" /* declarations; implementation in libstb.so */

static int g_keep; /* VKRUN_KEEP_PLOTS=1: leave the PNGs for a look */

/* pixels within `tol` of colour rgb */
static long count_color(const unsigned char *px, int w, int h, uint32_t rgb, int tol) {
    long n = 0;
    int r = (int)(rgb >> 16) & 255, g = (int)(rgb >> 8) & 255, b = (int)rgb & 255;
    for (long i = 0; i < (long)w * h; i++)
        if (abs(px[i * 3] - r) <= tol && abs(px[i * 3 + 1] - g) <= tol && abs(px[i * 3 + 2] - b) <= tol) n++;
    return n;
}

/* dark (text/frame) pixels inside a rectangle */
static long count_dark(const unsigned char *px, int w, int x0, int y0, int x1, int y1) {
    long n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            const unsigned char *p = &px[((long)y * w + x) * 3];
            if (p[0] < 100 && p[1] < 100 && p[2] < 100) n++;
        }
    return n;
}

static unsigned char *load(const char *path, int *w, int *h) {
    int c;
    unsigned char *px = stbi_load(path, w, h, &c, 3);
    return px;
}

static void done_with(const char *path) {
    if (!g_keep) remove(path);
}

/* Columns of the plot area's middle rows [y0, y1) in which at least `frac` of the pixels are exactly rgb:
 * their count, and the first in *first. */
static int columns_of(const unsigned char *px, int w, int y0, int y1, uint32_t rgb, double frac, int *first) {
    int n = 0;
    *first = -1;
    for (int x = 0; x < w; x++) {
        int c = 0;
        for (int y = y0; y < y1; y++) {
            const unsigned char *p = &px[((long)y * w + x) * 3];
            c += p[0] == ((rgb >> 16) & 255) && p[1] == ((rgb >> 8) & 255) && p[2] == (rgb & 255);
        }
        if (c >= frac * (y1 - y0)) {
            if (*first < 0) *first = x;
            n++;
        }
    }
    return n;
}

/* A fine-tuning marker at x = 3.5 on epochs 1..6: one dashed 2-px line, midway between the grid lines
 * of epochs 3 and 4 (found in the picture: light-grey columns), its label in the marker colour right of
 * it; without the marker, no such column. */
static void test_marker(const char *dir) {
    double y[6] = {0.9, 0.7, 0.5, 0.45, 0.3, 0.2};
    vkr_plot_series s = {"train", NULL, y, 6, 0};
    vkr_plot_marker m = {3.5, "fine-tuning"};
    char path[300];
    int w, h, first, grid[16], ng = 0;
    snprintf(path, sizeof path, "%s/marker.png", dir);
    CHECK_OK(vkr_plot_lines_marked(path, "Model loss", "epoch", "loss", &s, 1, &m, 1), "plot with a marker");
    unsigned char *px = load(path, &w, &h);
    if (!px) return;
    int cols = columns_of(px, w, 150, 350, VKR_PLOT_MARKER_COLOR, 0.5, &first);
    for (int x = 0; x < w && ng < 16; x++) { /* grid columns: light grey along most of the middle rows */
        int c = 0;
        for (int yy = 150; yy < 350; yy++) c += px[((long)yy * w + x) * 3] == 0xe6;
        if (c > 100) grid[ng++] = x;
    }
    CHECK(cols == 2 && ng == 6, "one 2-px dashed marker line (%d columns), 6 grid lines (%d)", cols, ng);
    if (cols == 2 && ng == 6) {
        double mid = (grid[2] + grid[3]) / 2.0;
        CHECK(fabs(first + 0.5 - mid) <= 1.0, "marker at x %d..%d, midway between epochs 3 (%d) and 4 (%d)", first,
              first + 1, grid[2], grid[3]);
        long lab = 0; /* the label: marker-coloured text right of the line near the top of the plot area */
        for (int yy = 20; yy < 150; yy++)
            for (int x = first + 4; x < first + 150 && x < w; x++) {
                const unsigned char *p = &px[((long)yy * w + x) * 3];
                lab += p[0] == 0x55 && p[1] == 0x55 && p[2] == 0x55;
            }
        CHECK(lab > 40, "the label is drawn right of the line (%ld pixels)", lab);
    }
    stbi_image_free(px);
    done_with(path);
    snprintf(path, sizeof path, "%s/nomarker.png", dir);
    CHECK_OK(vkr_plot_lines(path, "Model loss", "epoch", "loss", &s, 1), "the same plot without a marker");
    px = load(path, &w, &h);
    if (!px) return;
    CHECK(columns_of(px, w, 150, 350, VKR_PLOT_MARKER_COLOR, 0.2, &first) == 0, "no marker column without a marker");
    stbi_image_free(px);
    done_with(path);
    CHECK(vkr_plot_lines_marked(path, "t", "x", "y", &s, 1, NULL, 1) == VKR_ERR_INVALID, "markers NULL with a count");
}

int main(void) {
    g_keep = getenv("VKRUN_KEEP_PLOTS") && atoi(getenv("VKRUN_KEEP_PLOTS"));
    char dir[] = "/tmp/vkr_test_plot_XXXXXX";
    if (!mkdtemp(dir)) {
        printf("FAIL mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    char path[256];
    int w, h;

    /* a typical training history: train/val loss with a NaN in val */
    double tl[12], vl[12];
    for (int i = 0; i < 12; i++) {
        tl[i] = 2.3 * exp(-i / 4.0) + 0.1;
        vl[i] = 2.2 * exp(-i / 5.0) + 0.3;
    }
    vl[5] = NAN;
    const uint32_t red = 0xd62728, blue = 0x1f77b4;
    vkr_plot_series s[2] = {{"train", NULL, tl, 12, blue}, {"val", NULL, vl, 12, red}};
    snprintf(path, sizeof path, "%s/loss.png", dir);
    CHECK_OK(vkr_plot_lines(path, "Loss", "epoch", "loss", s, 2), "write loss plot");
    unsigned char *px = load(path, &w, &h);
    CHECK(px && w == VKR_PLOT_WIDTH && h == VKR_PLOT_HEIGHT, "PNG reads back as %dx%d", px ? w : 0, px ? h : 0);
    if (px) {
        long nb = count_color(px, w, h, blue, 10), nr = count_color(px, w, h, red, 10);
        CHECK(nb > 300 && nr > 300, "both series colours present (%ld blue, %ld red pixels)", nb, nr);
        long white = count_color(px, w, h, 0xffffff, 0);
        CHECK(white > (long)w * h / 2, "mostly white background (%ld)", white);
        CHECK(count_dark(px, w, 0, 0, w, 50) > 50, "title text drawn at the top");
        CHECK(count_dark(px, w, 0, 60, 60, h - 60) > 50, "y tick labels / y label drawn on the left");
        CHECK(count_dark(px, w, 60, h - 60, w, h) > 50, "x tick labels / x label drawn at the bottom");
        /* anti-aliasing: intermediate shades of blue exist */
        long mid = 0;
        for (long i = 0; i < (long)w * h; i++) {
            int r = px[i * 3], g = px[i * 3 + 1], b = px[i * 3 + 2];
            if (b > r + 20 && b < 250 && r > 40 && r < 220 && abs((r - 31) * 100 / 224 - (g - 119) * 100 / 136) < 15)
                mid++;
        }
        CHECK(mid > 50, "anti-aliased edges (%ld blended blue pixels)", mid);
        stbi_image_free(px);
    }
    struct stat st;
    char tmpname[300];
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld.0", path, (long)getpid());
    CHECK(stat(tmpname, &st) != 0, "no temporary file left behind");
    done_with(path);

    /* edge cases: one point, constant series, all-NaN series, explicit x, default colours */
    double one = 0.5;
    vkr_plot_series s1 = {"only", NULL, &one, 1, 0};
    snprintf(path, sizeof path, "%s/one.png", dir);
    CHECK_OK(vkr_plot_lines(path, "One point", "epoch", "loss", &s1, 1), "single point");
    px = load(path, &w, &h);
    CHECK(px && count_color(px, w, h, vkr_plot_palette(0), 10) > 20, "single point marker drawn in palette colour");
    if (px) stbi_image_free(px);
    done_with(path);

    double c[5] = {0.7, 0.7, 0.7, 0.7, 0.7}, nan5[5] = {NAN, NAN, NAN, NAN, NAN};
    double xs[5] = {0.1, 0.2, 0.4, 0.8, 1.6};
    vkr_plot_series s3[3] = {{"const", xs, c, 5, 0}, {"nan", xs, nan5, 5, 0}, {NULL, NULL, c, 0, 0}};
    snprintf(path, sizeof path, "%s/const.png", dir);
    CHECK_OK(vkr_plot_lines(path, "Constant", "lr", "acc", s3, 3), "constant series, all-NaN series, empty series");
    px = load(path, &w, &h);
    CHECK(px && count_color(px, w, h, vkr_plot_palette(0), 10) > 200, "constant series drawn");
    if (px) stbi_image_free(px);
    done_with(path);

    double big[200], bx[200];
    for (int i = 0; i < 200; i++) {
        bx[i] = i * 1000.0;
        big[i] = 1e7 + 3e6 * sin(i / 10.0);
    }
    vkr_plot_series sb = {"large values \xe2\x9c\x93 non-ASCII", bx, big, 200, 0x2ca02c};
    snprintf(path, sizeof path, "%s/big.png", dir);
    CHECK_OK(vkr_plot_lines(path, "Big numbers, 200 points, a title that is quite long indeed", NULL, NULL, &sb, 1),
             "large values, many points, non-ASCII legend, no axis labels");
    px = load(path, &w, &h);
    CHECK(px && count_color(px, w, h, 0x2ca02c, 10) > 300, "green series drawn");
    if (px) stbi_image_free(px);
    done_with(path);

    /* no series at all still makes a valid (empty) plot */
    snprintf(path, sizeof path, "%s/empty.png", dir);
    CHECK_OK(vkr_plot_lines(path, "Empty", "x", "y", NULL, 0), "no series");
    done_with(path);

    test_marker(dir);

    /* errors */
    CHECK(vkr_plot_lines("/nonexistent-dir/x.png", "t", "x", "y", s, 2) == VKR_ERR_IO &&
              strstr(vkr_last_error(), "/nonexistent-dir/x.png"),
          "unwritable path -> VKR_ERR_IO naming it: %s", vkr_last_error());
    vkr_plot_series bad = {"bad", NULL, NULL, 3, 0};
    CHECK(vkr_plot_lines("/tmp/x.png", "t", "x", "y", &bad, 1) == VKR_ERR_INVALID, "series without y rejected");

    if (g_keep)
        printf("plots kept in %s\n", dir);
    else
        rmdir(dir);
    return test_finish();
}
