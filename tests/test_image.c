/* Tests of include/vkrun_data.h's images: decoding of every format to exact pixels, broken
 * and lying files with their messages, mutated files, resize and preprocessing numbers.
 * No Vulkan. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data_fixture.h"
#include "test_util.h"
#include "vkrun_data.h"

#include "stb_image_write.h" /* declarations; implementation in libstb.so */

/* ---------------------------------------------------------------- tests */

static void test_formats(void) {
    char p[512];
    uint8_t *px;
    int w, h;
    unsigned char *g = pattern(PW, PH, 1, 1), *ga = pattern(PW, PH, 2, 2), *rgba = pattern(PW, PH, 4, 3),
                  *rgb = pattern(PW, PH, 3, 4);
    struct {
        const char *rel;
        const unsigned char *src;
        int comp;
    } cases[] = {{"mixed/a_formats/gray.png", g, 1},          {"mixed/a_formats/graya.png", ga, 2},
                 {"mixed/a_formats/rgba.png", rgba, 4},       {"mixed/a_formats/UPPER.PNG", rgb, 3},
                 {"mixed/a_formats/bmp.bmp", rgb, 3},         {"mixed/a_formats/tga.tga", rgb, 3}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        path_of(p, sizeof p, cases[k].rel);
        vkr_status s = vkr_image_read_rgb(p, &px, &w, &h);
        int ok = s == VKR_OK && w == PW && h == PH;
        for (int i = 0; ok && i < PW * PH; i++)
            for (int c = 0; c < 3; c++) {
                int cc = cases[k].comp >= 3 ? c : 0; /* gray and gray+alpha -> R=G=B=gray */
                if (px[i * 3 + c] != cases[k].src[i * cases[k].comp + cc]) ok = 0;
            }
        CHECK(ok, "decode %s (%d channels) -> exact 8-bit RGB", cases[k].rel, cases[k].comp);
        if (s == VKR_OK) free(px);
    }
    /* 16-bit: stb keeps the high byte */
    path_of(p, sizeof p, "mixed/a_formats/sixteen.png");
    vkr_status s = vkr_image_read_rgb(p, &px, &w, &h);
    int ok = s == VKR_OK && w == PW && h == PH;
    for (int i = 0; ok && i < PW * PH * 3; i++)
        if (px[i] != (uint8_t)(((uint16_t)(i * 2749 + 0x0180)) >> 8)) ok = 0;
    CHECK(ok, "decode 16-bit RGB PNG (hand-written) -> high bytes");
    if (s == VKR_OK) free(px);
    /* JPEG: lossy, compare within a tolerance */
    path_of(p, sizeof p, "mixed/a_formats/jpg.jpg");
    s = vkr_image_read_rgb(p, &px, &w, &h);
    int maxd = 999;
    if (s == VKR_OK && w == 16 && h == 16) {
        maxd = 0;
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++) {
                int want[3] = {40 + x * 8, 60 + y * 8, 128};
                for (int c = 0; c < 3; c++) {
                    int d = abs((int)px[(y * 16 + x) * 3 + c] - want[c]);
                    if (d > maxd) maxd = d;
                }
            }
    }
    CHECK(maxd <= 12, "decode JPEG (quality 95) within 12 of the source (max diff %d)", maxd);
    if (s == VKR_OK) free(px);

    /* bad files: status + path in the message, never a crash */
    const char *bads[] = {"mixed/b_bad/trunc.png", "mixed/b_bad/corrupt.jpg", "mixed/b_bad/zero.png",
                          "mixed/b_bad/text.jpg"};
    for (int k = 0; k < 4; k++) {
        path_of(p, sizeof p, bads[k]);
        s = vkr_image_read_rgb(p, &px, &w, &h);
        CHECK(s == VKR_ERR_FORMAT && contains(vkr_last_error(), p), "%s rejected: %s", bads[k], vkr_last_error());
        if (s == VKR_OK) free(px);
    }
    path_of(p, sizeof p, "mixed/b_bad/missing.png");
    s = vkr_image_read_rgb(p, &px, &w, &h);
    CHECK(s == VKR_ERR_IO && contains(vkr_last_error(), p), "missing file -> VKR_ERR_IO: %s", vkr_last_error());
    /* decompression bombs */
    write_png_header_only("bomb_side.png", 20000, 16);
    write_png_header_only("bomb_area.png", 12000, 12000);
    path_of(p, sizeof p, "bomb_side.png");
    s = vkr_image_read_rgb(p, &px, &w, &h);
    CHECK(s == VKR_ERR_FORMAT && contains(vkr_last_error(), "20000x16"), "20000x16 header rejected: %s",
          vkr_last_error());
    path_of(p, sizeof p, "bomb_area.png");
    s = vkr_image_read_rgb(p, &px, &w, &h);
    CHECK(s == VKR_ERR_FORMAT && contains(vkr_last_error(), "12000x12000"), "12000x12000 header rejected: %s",
          vkr_last_error());
    float out[3 * 4 * 4];
    s = vkr_image_load(p, 4, 4, VKR_INTERP_BILINEAR, VKR_PREPROC_CAFFE, out);
    CHECK(s == VKR_ERR_FORMAT, "vkr_image_load rejects the bomb too");
    /* stb refuses these itself ("unknown image type"): the message must say what is wrong */
    write_png_header_only("bomb_60k.png", 60000, 60000);
    path_of(p, sizeof p, "bomb_60k.png");
    s = vkr_image_read_rgb(p, &px, &w, &h);
    CHECK(s == VKR_ERR_FORMAT && contains(vkr_last_error(), "60000x60000") && contains(vkr_last_error(), "too large"),
          "60000x60000 PNG: says too large: %s", vkr_last_error());
    size_t full_n;
    unsigned char *full = read_bytes("mixed/a_formats/UPPER.PNG", &full_n);
    for (int cut = 20; cut <= 30 && full; cut += 10) {
        write_bytes("cut.png", full, (size_t)cut);
        path_of(p, sizeof p, "cut.png");
        s = vkr_image_read_rgb(p, &px, &w, &h);
        const char *e = vkr_last_error();
        CHECK(s == VKR_ERR_FORMAT && contains(e, "cut.png") && (contains(e, "truncated") || contains(e, "corrupt")) &&
                  !contains(e, "()"),
              "PNG cut at %d bytes: says truncated or corrupt: %s", cut, e);
    }
    free(full);
    free(g);
    free(ga);
    free(rgba);
    free(rgb);
}

/* GIF, binary PPM/PGM and paletted PNG decode to exactly the pixels written (the README lists
 * them; stb decodes them, vkrun turns them into RGB). */
static void test_more_formats(void) {
    enum { W = 23, H = 17 };
    unsigned char pal[768], idx[W * H], want[W * H * 3], gray[W * H];
    for (int i = 0; i < 256; i++) {
        pal[3 * i] = (unsigned char)(i * 7), pal[3 * i + 1] = (unsigned char)(255 - i), pal[3 * i + 2] = (unsigned char)(i * 13 + 5);
    }
    for (int i = 0; i < W * H; i++) {
        idx[i] = (unsigned char)((i * 37 + i / W * 11) % 256);
        memcpy(want + 3 * i, pal + 3 * idx[i], 3);
        gray[i] = (unsigned char)(i * 5 + 3);
    }
    mkdirs("more");
    write_gif("more/pal.gif", W, H, idx, pal);
    write_png_palette("more/pal.png", W, H, idx, pal, 256);
    char hdr[64];
    size_t hn = (size_t)snprintf(hdr, sizeof hdr, "P6\n# vkrun test\n%d %d\n255\n", W, H);
    unsigned char *ppm = malloc(hn + sizeof want);
    memcpy(ppm, hdr, hn);
    memcpy(ppm + hn, want, sizeof want);
    write_bytes("more/rgb.ppm", ppm, hn + sizeof want);
    hn = (size_t)snprintf(hdr, sizeof hdr, "P5 %d %d 255\n", W, H);
    memcpy(ppm, hdr, hn);
    memcpy(ppm + hn, gray, sizeof gray);
    write_bytes("more/gray.pgm", ppm, hn + sizeof gray);
    free(ppm);
    const char *files[] = {"more/pal.gif", "more/pal.png", "more/rgb.ppm", "more/gray.pgm"};
    for (int f = 0; f < 4; f++) {
        char p[512];
        path_of(p, sizeof p, files[f]);
        uint8_t *px = NULL;
        int w = 0, h = 0;
        vkr_status s = vkr_image_read_rgb(p, &px, &w, &h);
        int same = !s && w == W && h == H;
        for (int i = 0; same && i < W * H; i++)
            for (int c = 0; c < 3; c++)
                if (px[3 * i + c] != (f == 3 ? gray[i] : want[3 * i + c])) same = 0;
        CHECK(same, "%s decodes to the %dx%d pixels written, exactly%s%s", files[f], W, H, s ? ": " : "",
              s ? vkr_last_error() : "");
        free(px);
    }
}

/* Image-named entries that are not files are warned about and counted, never dropped
 * silently; --strict makes them an error. */

static void test_fuzz(void) {
    const char *srcs[] = {"mixed/a_formats/UPPER.PNG", "mixed/a_formats/jpg.jpg", "mixed/a_formats/bmp.bmp",
                          "mixed/a_formats/tga.tga", "mixed/a_formats/graya.png"};
    uint64_t st = 12345;
    int decoded = 0, failed = 0, sources = 0, bad_dims = 0, unnamed = 0;
    char p[512];
    path_of(p, sizeof p, "fuzz.png");
    for (int k = 0; k < 5; k++) {
        size_t n;
        unsigned char *orig = read_bytes(srcs[k], &n);
        if (!orig) continue;
        sources++;
        unsigned char *m = malloc(n);
        for (int it = 0; it < 80; it++) {
            memcpy(m, orig, n);
            size_t len = n;
            int muts = 1 + it % 4;
            for (int j = 0; j < muts; j++) {
                st = st * 6364136223846793005ULL + 1442695040888963407ULL;
                size_t pos = (size_t)(st >> 33) % n;
                m[pos] = (unsigned char)(st >> 17);
            }
            if (it % 5 == 4) len = (size_t)(st >> 40) % n; /* truncate too */
            write_bytes("fuzz.png", m, len);
            uint8_t *px;
            int w, h;
            if (vkr_image_read_rgb(p, &px, &w, &h) == VKR_OK) {
                decoded++;
                if (w <= 0 || h <= 0 || w > 65535 || h > 65535) bad_dims++;
                free(px);
            } else {
                failed++;
                if (!contains(vkr_last_error(), "fuzz.png")) unnamed++;
            }
        }
        free(m);
        free(orig);
    }
    CHECK(sources == 5 && decoded + failed == 400 && decoded > 0 && failed > 0,
          "400 mutated files from 5 sources (%d read): %d decoded, %d rejected, no crash", sources, decoded, failed);
    CHECK(bad_dims == 0 && unnamed == 0,
          "decoded mutants have sane sizes (%d do not); every rejection names the file (%d do not)", bad_dims, unnamed);
}

static void test_resize_preprocess(void) {
    /* 2x1 gray [0, 100] -> 4x1 bilinear: src x = -0.25, 0.25, 0.75, 1.25 -> 0, 25, 75, 100 */
    uint8_t two[6] = {0, 0, 0, 100, 100, 100};
    float o4[3 * 4];
    vkr_image_to_chw(two, 2, 1, 1, 4, 3, VKR_INTERP_BILINEAR, VKR_PREPROC_NONE, o4);
    CHECK(o4[0] == 0 && fabsf(o4[1] - 25) < 1e-4f && fabsf(o4[2] - 75) < 1e-4f && o4[3] == 100 && o4[4] == 0 &&
              o4[11] == 100,
          "bilinear 2->4 upscale (half-pixel): %g %g %g %g", o4[0], o4[1], o4[2], o4[3]);
    /* 4x1 [10,20,30,40] -> 2x1 bilinear: src 0.5, 2.5 -> 15, 35 */
    uint8_t four[12] = {10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40};
    float o2[3 * 3];
    vkr_image_to_chw(four, 4, 1, 1, 2, 3, VKR_INTERP_BILINEAR, VKR_PREPROC_NONE, o2);
    CHECK(fabsf(o2[0] - 15) < 1e-4f && fabsf(o2[1] - 35) < 1e-4f, "bilinear 4->2 downscale: %g %g", o2[0], o2[1]);
    /* nearest 4 -> 3: floor(o*4/3) = 0,1,2; PIL floor((o+.5)*4/3) = 0,2,3 */
    vkr_image_to_chw(four, 4, 1, 1, 3, 3, VKR_INTERP_NEAREST, VKR_PREPROC_NONE, o2);
    CHECK(o2[0] == 10 && o2[1] == 20 && o2[2] == 30, "nearest 4->3 = 10 20 30: %g %g %g", o2[0], o2[1], o2[2]);
    vkr_image_to_chw(four, 4, 1, 1, 3, 3, VKR_INTERP_NEAREST_PIL, VKR_PREPROC_NONE, o2);
    CHECK(o2[0] == 10 && o2[1] == 30 && o2[2] == 40, "nearest-pil 4->3 = 10 30 40: %g %g %g", o2[0], o2[1], o2[2]);

    /* 2-D bilinear on a 3x2 image to 5x4 against a direct double formula */
    uint8_t img[2 * 3 * 3];
    for (int i = 0; i < 18; i++) img[i] = (uint8_t)(i * 14 + 3);
    float o[3 * 4 * 5];
    vkr_image_to_chw(img, 3, 2, 4, 5, 3, VKR_INTERP_BILINEAR, VKR_PREPROC_NONE, o);
    double maxerr = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 5; x++) {
                double sy = (y + 0.5) * 2 / 4 - 0.5, sx = (x + 0.5) * 3 / 5 - 0.5;
                sy = sy < 0 ? 0 : sy > 1 ? 1 : sy;
                sx = sx < 0 ? 0 : sx > 2 ? 2 : sx;
                int y0 = (int)floor(sy), x0 = (int)floor(sx);
                int y1 = y0 + 1 > 1 ? 1 : y0 + 1, x1 = x0 + 1 > 2 ? 2 : x0 + 1;
                double fy = sy - y0, fx = sx - x0;
#define PX(yy, xx) img[((yy) * 3 + (xx)) * 3 + c]
                double v = (1 - fy) * ((1 - fx) * PX(y0, x0) + fx * PX(y0, x1)) +
                           fy * ((1 - fx) * PX(y1, x0) + fx * PX(y1, x1));
#undef PX
                double e = fabs(v - o[c * 20 + y * 5 + x]);
                if (e > maxerr) maxerr = e;
            }
    CHECK(maxerr < 1e-3, "bilinear 3x2 -> 5x4 vs direct formula (max err %.2e)", maxerr);
    /* identity size: exact copy for every interpolation */
    int same = 1;
    for (int m = 0; m < 3; m++) {
        vkr_image_to_chw(img, 3, 2, 2, 3, 3, (vkr_interp)m, VKR_PREPROC_NONE, o);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 6; i++)
                if (o[c * 6 + i] != img[i * 3 + c]) same = 0;
    }
    CHECK(same, "same-size resize is the identity (all interpolations)");

    /* preprocessing of one pixel (R,G,B) = (200,100,50) */
    uint8_t px[3] = {200, 100, 50};
    float v[3];
    vkr_image_to_chw(px, 1, 1, 1, 1, 3, VKR_INTERP_BILINEAR, VKR_PREPROC_CAFFE, v);
    CHECK(fabsf(v[0] - (50 - 103.939f)) < 1e-4f && fabsf(v[1] - (100 - 116.779f)) < 1e-4f &&
              fabsf(v[2] - (200 - 123.68f)) < 1e-4f,
          "caffe: BGR minus mean = %.4f %.4f %.4f", v[0], v[1], v[2]);
    vkr_image_to_chw(px, 1, 1, 1, 1, 3, VKR_INTERP_BILINEAR, VKR_PREPROC_TORCH, v);
    double t0 = (200 / 255.0 - 0.485) / 0.229, t1 = (100 / 255.0 - 0.456) / 0.224, t2 = (50 / 255.0 - 0.406) / 0.225;
    CHECK(fabs(v[0] - t0) < 1e-5 && fabs(v[1] - t1) < 1e-5 && fabs(v[2] - t2) < 1e-5,
          "torch: %.5f %.5f %.5f (want %.5f %.5f %.5f)", v[0], v[1], v[2], t0, t1, t2);
    vkr_image_to_chw(px, 1, 1, 1, 1, 3, VKR_INTERP_BILINEAR, VKR_PREPROC_TF, v);
    CHECK(fabs(v[0] - (200 / 127.5 - 1)) < 1e-6 && fabs(v[2] - (50 / 127.5 - 1)) < 1e-6, "tf: %.5f %.5f %.5f", v[0],
          v[1], v[2]);
    vkr_image_to_chw(px, 1, 1, 1, 1, 3, VKR_INTERP_BILINEAR, VKR_PREPROC_UNIT, v);
    CHECK(fabs(v[0] - 200 / 255.0) < 1e-6 && fabs(v[1] - 100 / 255.0) < 1e-6, "unit: %.5f %.5f %.5f", v[0], v[1],
          v[2]);
    vkr_image_to_chw(px, 1, 1, 1, 1, 3, VKR_INTERP_BILINEAR, VKR_PREPROC_NONE, v);
    CHECK(v[0] == 200 && v[1] == 100 && v[2] == 50, "none: RGB 0..255");
    vkr_image_to_chw(px, 1, 1, 1, 1, 1, VKR_INTERP_BILINEAR, VKR_PREPROC_NONE, v);
    CHECK(fabsf(v[0] - 124.2f) < 1e-3f, "channels=1: luminance 0.299R+0.587G+0.114B = %.4f", v[0]);
    vkr_image_to_chw(px, 1, 1, 1, 1, 1, VKR_INTERP_BILINEAR, VKR_PREPROC_CAFFE, v);
    CHECK(fabsf(v[0] - (124.2f - 114.79933f)) < 1e-3f, "channels=1 caffe: Y - 114.799 = %.4f", v[0]);
    uint8_t gray[3] = {77, 77, 77};
    vkr_image_to_chw(gray, 1, 1, 1, 1, 1, VKR_INTERP_BILINEAR, VKR_PREPROC_NONE, v);
    CHECK(fabsf(v[0] - 77) < 1e-4f, "channels=1 of a gray pixel is its value (%.5f)", v[0]);

    vkr_preprocess pp;
    vkr_interp ii;
    CHECK(vkr_preprocess_parse("torch", &pp) == VKR_OK && pp == VKR_PREPROC_TORCH &&
              vkr_preprocess_parse("bogus", &pp) == VKR_ERR_INVALID && vkr_interp_parse("nearest-pil", &ii) == VKR_OK &&
              ii == VKR_INTERP_NEAREST_PIL,
          "name parsing");
    CHECK(vkr_image_to_chw(px, 1, 1, 0, 4, 3, VKR_INTERP_BILINEAR, VKR_PREPROC_NONE, v) == VKR_ERR_INVALID &&
              vkr_image_to_chw(px, 1, 1, 1, 1, 2, VKR_INTERP_BILINEAR, VKR_PREPROC_NONE, v) == VKR_ERR_INVALID,
          "bad sizes / channels rejected");
}


/* PNM header numbers stb_image would overflow (undefined behaviour in Debian's stb): refused
 * with a message, whatever whitespace stb accepts between them (\v and \f too, found by
 * fuzz_image) */
static void test_pnm_header_overflow(void) {
    static const char *const heads[] = {"P5\n1234567890 2\n255\n", "P5\v\v8888888888888888 2 255\n",
                                        "P6 2\f\f99999999999 255\n", "P5 2 2\r# c\r77777777777\n"};
    for (int k = 0; k < 4; k++) {
        char rel[64], p[512];
        snprintf(rel, sizeof rel, "pnm_overflow_%d.pgm", k);
        unsigned char buf[128];
        size_t n = strlen(heads[k]);
        memcpy(buf, heads[k], n);
        memset(buf + n, 7, sizeof buf - n);
        write_bytes(rel, buf, sizeof buf);
        path_of(p, sizeof p, rel);
        uint8_t *rgb = NULL;
        int w = 0, h = 0;
        vkr_status s = vkr_image_read_rgb(p, &rgb, &w, &h);
        CHECK(s == VKR_ERR_FORMAT && contains(vkr_last_error(), "10 digits or more") && contains(vkr_last_error(), rel),
              "PNM header number too long (%d): %s", k, vkr_last_error());
        free(rgb);
    }
}

int main(void) {
    if (fixture_setup("image")) return 1;
    test_formats();
    test_more_formats();
    test_fuzz();
    test_pnm_header_overflow();
    test_resize_preprocess();
    remove_tree(g_root);
    return test_finish();
}
