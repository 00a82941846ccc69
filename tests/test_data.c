/* Tests of include/vkrun_data.h: folder datasets, decoding of every format,
 * bad files, resize/preprocessing numbers, splits, shuffling, the threaded
 * loader.  No Vulkan.  Uses ../shared/data/cats_dogs when present (timing only). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"
#include "vkrun_data.h"

#include "stb_image_write.h" /* declarations; implementation in libstb.so */

static char g_root[256];

/* ---------------------------------------------------------------- file helpers */

static void path_of(char *buf, size_t n, const char *rel) { snprintf(buf, n, "%s/%s", g_root, rel); }

static int mkdirs(const char *rel) {
    char p[512];
    path_of(p, sizeof p, rel);
    for (char *s = p + strlen(g_root) + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0755);
            *s = '/';
        }
    return mkdir(p, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

static void write_bytes(const char *rel, const void *data, size_t n) {
    char p[512];
    path_of(p, sizeof p, rel);
    FILE *f = fopen(p, "wb");
    if (!f) {
        printf("  cannot create %s\n", p);
        return;
    }
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static unsigned char *read_bytes(const char *rel, size_t *n) {
    char p[512];
    path_of(p, sizeof p, rel);
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long l = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)(l > 0 ? l : 1));
    *n = fread(b, 1, (size_t)l, f);
    fclose(f);
    return b;
}

static void remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            remove_tree(p);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* deterministic test pattern, `comp` channels */
static unsigned char *pattern(int w, int h, int comp, int seed) {
    unsigned char *p = malloc((size_t)w * h * comp);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < comp; c++)
                p[((size_t)y * w + x) * comp + c] = (unsigned char)((x * 37 + y * 91 + c * 53 + seed * 29) & 255);
    return p;
}

static void write_png(const char *rel, int w, int h, int comp, const unsigned char *px) {
    char p[512];
    path_of(p, sizeof p, rel);
    if (!stbi_write_png(p, w, h, comp, px, w * comp)) printf("  cannot write %s\n", p);
}

/* ---- a 16-bit RGB PNG written by hand (stored deflate blocks) */

static uint32_t crc32_of(const unsigned char *p, size_t n, uint32_t c) {
    c = ~c;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static size_t png_chunk(unsigned char *out, const char *type, const unsigned char *data, uint32_t n) {
    put32(out, n);
    memcpy(out + 4, type, 4);
    if (n) memcpy(out + 8, data, n);
    put32(out + 8 + n, crc32_of(out + 4, n + 4, 0));
    return 12 + n;
}

/* A PNG from filtered rows `raw` (filter byte + samples per row) in one stored zlib block, with
 * an optional palette (color type 3). */
static void write_png_rows(const char *rel, int w, int h, int depth, int color_type, const unsigned char *raw,
                           size_t raw_n, const unsigned char *plte, uint32_t plte_n) {
    /* zlib: header, one stored block, adler32 */
    size_t zn = 2 + 5 + raw_n + 4;
    unsigned char *z = malloc(zn);
    z[0] = 0x78;
    z[1] = 0x01;
    z[2] = 1; /* final, stored */
    z[3] = (unsigned char)raw_n;
    z[4] = (unsigned char)(raw_n >> 8);
    z[5] = (unsigned char)~raw_n;
    z[6] = (unsigned char)(~raw_n >> 8);
    memcpy(z + 7, raw, raw_n);
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < raw_n; i++) {
        a = (a + raw[i]) % 65521;
        b = (b + a) % 65521;
    }
    put32(z + 7 + raw_n, (b << 16) | a);
    unsigned char *png = malloc(zn + plte_n + 100);
    static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    memcpy(png, sig, 8);
    size_t n = 8;
    unsigned char ihdr[13];
    put32(ihdr, (uint32_t)w);
    put32(ihdr + 4, (uint32_t)h);
    ihdr[8] = (unsigned char)depth;
    ihdr[9] = (unsigned char)color_type;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    n += png_chunk(png + n, "IHDR", ihdr, 13);
    if (plte) n += png_chunk(png + n, "PLTE", plte, plte_n);
    n += png_chunk(png + n, "IDAT", z, (uint32_t)zn);
    n += png_chunk(png + n, "IEND", NULL, 0);
    write_bytes(rel, png, n);
    free(z);
    free(png);
}

/* w x h, 16-bit RGB (color type 2) or gray (0) */
static void write_png16(const char *rel, int w, int h, int color_type, const uint16_t *v) {
    int comp = color_type == 2 ? 3 : 1;
    size_t row = 1 + (size_t)w * comp * 2, raw_n = row * h;
    unsigned char *raw = calloc(raw_n, 1);
    for (int y = 0; y < h; y++)
        for (int i = 0; i < w * comp; i++) {
            raw[y * row + 1 + 2 * i] = (unsigned char)(v[y * w * comp + i] >> 8);
            raw[y * row + 2 + 2 * i] = (unsigned char)v[y * w * comp + i];
        }
    write_png_rows(rel, w, h, 16, color_type, raw, raw_n, NULL, 0);
    free(raw);
}

/* w x h, 8-bit palette indices (color type 3) into `pal` (RGB triples) */
static void write_png_palette(const char *rel, int w, int h, const unsigned char *idx, const unsigned char *pal,
                              int ncolors) {
    size_t row = 1 + (size_t)w, raw_n = row * h;
    unsigned char *raw = calloc(raw_n, 1);
    for (int y = 0; y < h; y++) memcpy(raw + y * row + 1, idx + y * w, (size_t)w);
    write_png_rows(rel, w, h, 8, 3, raw, raw_n, pal, (uint32_t)ncolors * 3);
    free(raw);
}

/* A GIF89a of w x h palette indices (256-colour global table): LZW with 9-bit codes only, a
 * clear code every 254 literals so the code width never grows (a valid, uncompressed stream). */
static void write_gif(const char *rel, int w, int h, const unsigned char *idx, const unsigned char *pal256) {
    size_t cap = 800 + 3 * (size_t)w * h;
    unsigned char *g = calloc(cap, 1), *codes = calloc(2 * (size_t)w * h + 64, 1);
    size_t n = 0;
    memcpy(g, "GIF89a", 6);
    n = 6;
    g[n++] = (unsigned char)w, g[n++] = (unsigned char)(w >> 8), g[n++] = (unsigned char)h, g[n++] = (unsigned char)(h >> 8);
    g[n++] = 0xF7; /* global colour table of 256 entries */
    g[n++] = 0, g[n++] = 0;
    memcpy(g + n, pal256, 768);
    n += 768;
    g[n++] = 0x2C; /* image descriptor at 0,0 */
    memset(g + n, 0, 4);
    n += 4;
    g[n++] = (unsigned char)w, g[n++] = (unsigned char)(w >> 8), g[n++] = (unsigned char)h, g[n++] = (unsigned char)(h >> 8);
    g[n++] = 0;
    g[n++] = 8; /* LZW minimum code size */
    size_t nbits = 0;
#define PUT_CODE(c)                                                                                                    \
    do {                                                                                                               \
        for (int b_ = 0; b_ < 9; b_++, nbits++)                                                                        \
            if (((c) >> b_) & 1) codes[nbits / 8] |= (unsigned char)(1u << (nbits % 8));                               \
    } while (0)
    for (int i = 0; i < w * h; i++) {
        if (i % 254 == 0) PUT_CODE(256);
        PUT_CODE(idx[i]);
    }
    PUT_CODE(257);
#undef PUT_CODE
    size_t bytes = (nbits + 7) / 8;
    for (size_t off = 0; off < bytes; off += 255) {
        size_t k = bytes - off < 255 ? bytes - off : 255;
        g[n++] = (unsigned char)k;
        memcpy(g + n, codes + off, k);
        n += k;
    }
    g[n++] = 0;
    g[n++] = 0x3B;
    write_bytes(rel, g, n);
    free(g);
    free(codes);
}

/* A PNG whose header claims w x h (no pixel data): a decompression-bomb stand-in. */
static void write_png_header_only(const char *rel, uint32_t w, uint32_t h) {
    unsigned char png[64];
    static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    memcpy(png, sig, 8);
    unsigned char ihdr[13] = {0};
    put32(ihdr, w);
    put32(ihdr + 4, h);
    ihdr[8] = 8;
    ihdr[9] = 2;
    size_t n = 8 + png_chunk(png + 8, "IHDR", ihdr, 13);
    n += png_chunk(png + n, "IEND", NULL, 0);
    write_bytes(rel, png, n);
}

/* ---------------------------------------------------------------- fixture */

static const int PW = 6, PH = 4; /* pattern size */

static void build_mixed(void) {
    mkdirs("mixed/a_formats/sub");
    mkdirs("mixed/b_bad");
    mkdirs("mixed/c_third");
    char p[512];
    unsigned char *g = pattern(PW, PH, 1, 1), *ga = pattern(PW, PH, 2, 2), *rgba = pattern(PW, PH, 4, 3),
                  *rgb = pattern(PW, PH, 3, 4);
    write_png("mixed/a_formats/gray.png", PW, PH, 1, g);
    write_png("mixed/a_formats/graya.png", PW, PH, 2, ga);
    write_png("mixed/a_formats/rgba.png", PW, PH, 4, rgba);
    write_png("mixed/a_formats/UPPER.PNG", PW, PH, 3, rgb);
    write_png("mixed/a_formats/.hidden.png", PW, PH, 3, rgb);
    write_png("mixed/a_formats/sub/nested.png", PW, PH, 3, rgb);
    write_bytes("mixed/a_formats/notes.txt", "not an image", 12);
    path_of(p, sizeof p, "mixed/a_formats/bmp.bmp");
    stbi_write_bmp(p, PW, PH, 3, rgb);
    path_of(p, sizeof p, "mixed/a_formats/tga.tga");
    stbi_write_tga(p, PW, PH, 3, rgb);
    /* smooth image for JPEG (lossy) */
    unsigned char smooth[16 * 16 * 3];
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++) {
            smooth[(y * 16 + x) * 3 + 0] = (unsigned char)(40 + x * 8);
            smooth[(y * 16 + x) * 3 + 1] = (unsigned char)(60 + y * 8);
            smooth[(y * 16 + x) * 3 + 2] = 128;
        }
    path_of(p, sizeof p, "mixed/a_formats/jpg.jpg");
    stbi_write_jpg(p, 16, 16, 3, smooth, 95);
    uint16_t v16[PW * PH * 3];
    for (int i = 0; i < PW * PH * 3; i++) v16[i] = (uint16_t)(i * 2749 + 0x0180);
    write_png16("mixed/a_formats/sixteen.png", PW, PH, 2, v16);

    /* class b: 2 good, 4 bad */
    write_png("mixed/b_bad/good1.png", PW, PH, 3, rgb);
    path_of(p, sizeof p, "mixed/b_bad/good2.bmp");
    stbi_write_bmp(p, PW, PH, 3, rgb);
    size_t n;
    unsigned char *png = read_bytes("mixed/a_formats/UPPER.PNG", &n);
    write_bytes("mixed/b_bad/trunc.png", png, n / 2);
    free(png);
    unsigned char *jpg = read_bytes("mixed/a_formats/jpg.jpg", &n);
    /* keep SOI and the first segment header, then garbage */
    unsigned char *bad = malloc(n);
    memcpy(bad, jpg, n);
    for (size_t i = 20; i < n; i++) bad[i] = (unsigned char)(i * 7 + 3);
    write_bytes("mixed/b_bad/corrupt.jpg", bad, n);
    free(bad);
    free(jpg);
    write_bytes("mixed/b_bad/zero.png", "", 0);
    write_bytes("mixed/b_bad/text.jpg", "hello, I am a text file\n", 24);

    write_png("mixed/c_third/x.png", PW, PH, 3, rgb);
    free(g);
    free(ga);
    free(rgba);
    free(rgb);
}

/* 3 classes with 10, 7 and 5 images of 9x7 */
static void build_small(void) {
    static const char *cls[3] = {"cat", "dog", "emu"};
    static const int cnt[3] = {10, 7, 5};
    for (int c = 0; c < 3; c++) {
        char rel[128];
        snprintf(rel, sizeof rel, "small/%s", cls[c]);
        mkdirs(rel);
        for (int i = 0; i < cnt[c]; i++) {
            unsigned char *px = pattern(9, 7, 3, c * 100 + i);
            snprintf(rel, sizeof rel, "small/%s/img%02d.png", cls[c], i);
            write_png(rel, 9, 7, 3, px);
            free(px);
        }
    }
}

static int contains(const char *hay, const char *needle) { return hay && needle && strstr(hay, needle) != NULL; }

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
static void test_odd_entries(void) {
    unsigned char px[3 * 4 * 4];
    memset(px, 90, sizeof px);
    mkdirs("odd/a/folder.jpg");
    mkdirs("odd/b");
    write_png("odd/a/good.png", 4, 4, 3, px);
    write_png("odd/a/folder.jpg/inner.png", 4, 4, 3, px);
    write_png("odd/b/good.png", 4, 4, 3, px);
    char p[512], q[512];
    path_of(p, sizeof p, "odd/a/dangling.png");
    path_of(q, sizeof q, "odd/a/no-such-target.png");
    int ok = symlink(q, p) == 0;
    path_of(p, sizeof p, "odd/a/loop.jpg");
    ok &= symlink(p, p) == 0;
    path_of(p, sizeof p, "odd");
    vkr_dataset_opts o = {.quiet = 1};
    vkr_dataset *ds = NULL;
    vkr_status s = vkr_dataset_open(p, &o, &ds);
    int nw = s ? -1 : vkr_dataset_num_warnings(ds);
    int named = nw == 3;
    const char *want[] = {"dangling.png", "folder.jpg", "loop.jpg"};
    for (int i = 0; named && i < 3; i++) named = contains(vkr_dataset_warning(ds, i), want[i]);
    CHECK(ok && !s && named && vkr_dataset_size(ds) == 3,
          "dangling and looping links and a folder named like an image: 3 warnings naming them, 3 images kept (%d)", nw);
    for (int i = 0; i < nw; i++) printf("  warning: %s\n", vkr_dataset_warning(ds, i));
    vkr_dataset_free(ds);
    o.strict = 1;
    s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_ERR_FORMAT && contains(vkr_last_error(), "dangling.png"), "strict: the first odd entry is an error: %s",
          vkr_last_error());
    if (!s) vkr_dataset_free(ds);
}

/* mutated PNG/JPEG/BMP bytes: each must decode or fail cleanly (run under ASan in CI) */
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

static void test_dataset_mixed(void) {
    char dir[512];
    path_of(dir, sizeof dir, "mixed");
    vkr_dataset_opts o = {.quiet = 1};
    vkr_dataset *ds = NULL;
    vkr_status s = vkr_dataset_open(dir, &o, &ds);
    CHECK_OK(s, "open mixed dataset (bad files skipped)");
    if (s) return;
    CHECK(vkr_dataset_num_classes(ds) == 3 && !strcmp(vkr_dataset_class_name(ds, 0), "a_formats") &&
              !strcmp(vkr_dataset_class_name(ds, 1), "b_bad") && !strcmp(vkr_dataset_class_name(ds, 2), "c_third"),
          "3 classes in strcmp order");
    CHECK(vkr_dataset_class_size(ds, 0) == 9 && vkr_dataset_class_size(ds, 1) == 2 &&
              vkr_dataset_class_size(ds, 2) == 1 && vkr_dataset_size(ds) == 12,
          "counts 9/2/1 (hidden, .txt skipped; subfolder walked): %d/%d/%d", vkr_dataset_class_size(ds, 0),
          vkr_dataset_class_size(ds, 1), vkr_dataset_class_size(ds, 2));
    static const char *order[] = {"UPPER.PNG", "bmp.bmp", "gray.png", "graya.png", "jpg.jpg",
                                  "rgba.png",  "sixteen.png", "tga.tga", "sub/nested.png"};
    int ok = 1;
    for (int i = 0; i < 9; i++) {
        char want[600];
        snprintf(want, sizeof want, "%s/a_formats/%s", dir, order[i]);
        if (!vkr_dataset_path(ds, i) || strcmp(vkr_dataset_path(ds, i), want) || vkr_dataset_label(ds, i) != 0) {
            ok = 0;
            printf("  #%d: %s (want %s)\n", i, vkr_dataset_path(ds, i), want);
        }
    }
    CHECK(ok, "file order: strcmp within a folder, subfolders after (Keras os.walk order)");
    int nw = vkr_dataset_num_warnings(ds);
    int named = nw == 4;
    const char *bad[] = {"corrupt.jpg", "text.jpg", "trunc.png", "zero.png"};
    for (int i = 0; named && i < 4; i++) named = contains(vkr_dataset_warning(ds, i), bad[i]);
    CHECK(named, "4 skip warnings naming corrupt.jpg, text.jpg, trunc.png, zero.png (got %d)", nw);
    for (int i = 0; i < nw; i++) printf("  warning: %s\n", vkr_dataset_warning(ds, i));
    vkr_dataset_free(ds);

    /* strict: the first bad file is an error */
    o.strict = 1;
    s = vkr_dataset_open(dir, &o, &ds);
    CHECK(s == VKR_ERR_FORMAT && contains(vkr_last_error(), "b_bad/corrupt.jpg") &&
              contains(vkr_last_error(), "3 more"),
          "strict: VKR_ERR_FORMAT naming the first bad file: %s", vkr_last_error());
    o.strict = 0;

    /* header-only validation keeps the truncated PNG (its header is fine) */
    o.validate = VKR_VALIDATE_HEADER;
    s = vkr_dataset_open(dir, &o, &ds);
    CHECK(s == VKR_OK && vkr_dataset_class_size(ds, 1) == 3,
          "header validation: zero-byte and text files dropped, class b keeps 3 (2 good + 1 truncated PNG): %d", s ? -1 : vkr_dataset_class_size(ds, 1));
    if (!s) vkr_dataset_free(ds);

    /* no validation: the loader drops the bad files deterministically, or fails in strict mode */
    o.validate = VKR_VALIDATE_NONE;
    s = vkr_dataset_open(dir, &o, &ds);
    CHECK(s == VKR_OK && vkr_dataset_size(ds) == 16, "no validation: all 16 image-named files listed");
    if (s) return;
    vkr_loader_opts lo = {.batch = 4, .height = 5, .width = 5, .epochs = 1, .threads = 3, .quiet = 1,
                          .flags = VKR_LOAD_KEEP_REMAINDER};
    vkr_loader *ld;
    int total = 0, n, calls = 0;
    float *img = malloc(sizeof(float) * 4 * 75), *tg = malloc(sizeof(float) * 4 * 3);
    s = vkr_loader_create_ex(ds, &lo, &ld);
    CHECK_OK(s, "loader over the folder with bad files");
    if (s == VKR_OK) {
        while (vkr_loader_next(ld, img, tg, &n) == VKR_OK && n > 0) {
            total += n;
            calls++;
        }
        CHECK(total == 12 && vkr_loader_num_dropped(ld) == 4, "loader drops the 4 bad files: %d images, %d dropped",
              total, vkr_loader_num_dropped(ld));
        vkr_loader_destroy(ld);
    }
    lo.strict = 1;
    s = vkr_loader_create_ex(ds, &lo, &ld);
    CHECK_OK(s, "loader over the folder with bad files");
    if (s == VKR_OK) {
        s = VKR_OK;
        n = 1;
        while (s == VKR_OK && n > 0) s = vkr_loader_next(ld, img, tg, &n);
        CHECK(s == VKR_ERR_FORMAT && contains(vkr_last_error(), "b_bad/"), "strict loader: %s", vkr_last_error());
        vkr_loader_destroy(ld);
    }
    free(img);
    free(tg);
    vkr_dataset_free(ds);
}

static void test_dataset_errors(void) {
    char p[512];
    vkr_dataset *ds = NULL;
    vkr_dataset_opts o = {.quiet = 1};
    path_of(p, sizeof p, "nope");
    vkr_status s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_ERR_IO && contains(vkr_last_error(), p) && contains(vkr_last_error(), "does not exist"),
          "missing folder: %s", vkr_last_error());
    path_of(p, sizeof p, "mixed/c_third/x.png");
    s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_ERR_INVALID && contains(vkr_last_error(), "not a folder"), "file instead of folder: %s",
          vkr_last_error());
    mkdirs("flat");
    unsigned char *px = pattern(4, 4, 3, 9);
    write_png("flat/a.png", 4, 4, 3, px);
    path_of(p, sizeof p, "flat");
    s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_ERR_INVALID && contains(vkr_last_error(), "no class subfolders"), "no class subfolders: %s",
          vkr_last_error());
    mkdirs("emptycls/one");
    mkdirs("emptycls/two");
    path_of(p, sizeof p, "emptycls");
    s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_ERR_INVALID && contains(vkr_last_error(), "no images at all"), "no images at all: %s",
          vkr_last_error());
    write_png("emptycls/one/a.png", 4, 4, 3, px);
    s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_ERR_INVALID && contains(vkr_last_error(), "two") && contains(vkr_last_error(), "no images"),
          "empty class named: %s", vkr_last_error());
    mkdirs("single/only");
    write_png("single/only/a.png", 4, 4, 3, px);
    path_of(p, sizeof p, "single");
    s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_ERR_INVALID && contains(vkr_last_error(), "at least 2 classes"), "single class: %s",
          vkr_last_error());
    o.allow_single_class = 1;
    s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_OK && vkr_dataset_num_classes(ds) == 1, "single class allowed for predict/evaluate");
    if (!s) vkr_dataset_free(ds);
    o.allow_single_class = 0;
    mkdirs("allbad/good");
    mkdirs("allbad/bad");
    write_png("allbad/good/a.png", 4, 4, 3, px);
    write_bytes("allbad/bad/x.jpg", "nope", 4);
    path_of(p, sizeof p, "allbad");
    s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_ERR_INVALID && contains(vkr_last_error(), "bad") && contains(vkr_last_error(), "decodable"),
          "class with only bad files: %s", vkr_last_error());
    free(px);

    /* class list comparison */
    vkr_dataset *a = NULL, *b = NULL;
    path_of(p, sizeof p, "small");
    vkr_dataset_open(p, &o, &a);
    path_of(p, sizeof p, "mixed");
    vkr_dataset_open(p, &o, &b);
    CHECK(a && b && vkr_dataset_check_classes(a, a) == VKR_OK && vkr_dataset_check_classes(a, b) == VKR_ERR_INVALID,
          "check_classes: %s", vkr_last_error());
    vkr_dataset_free(a);
    vkr_dataset_free(b);
}

static int same_dataset(const vkr_dataset *a, const vkr_dataset *b) {
    if (vkr_dataset_size(a) != vkr_dataset_size(b)) return 0;
    for (int i = 0; i < vkr_dataset_size(a); i++)
        if (strcmp(vkr_dataset_path(a, i), vkr_dataset_path(b, i)) || vkr_dataset_label(a, i) != vkr_dataset_label(b, i))
            return 0;
    return 1;
}

static void test_split(const vkr_dataset *ds) {
    vkr_dataset *tr, *va, *tr2, *va2, *tr3, *va3;
    vkr_dataset_split(ds, 0.3, 42, &tr, &va);
    vkr_dataset_split(ds, 0.3, 42, &tr2, &va2);
    vkr_dataset_split(ds, 0.3, 43, &tr3, &va3);
    if (!tr || !va || !tr2 || !va2 || !tr3 || !va3) {
        CHECK(0, "split failed: %s", vkr_last_error());
        return;
    }
    CHECK(same_dataset(tr, tr2) && same_dataset(va, va2), "split is deterministic for a seed");
    CHECK(vkr_dataset_class_size(va, 0) == 3 && vkr_dataset_class_size(va, 1) == 2 && vkr_dataset_class_size(va, 2) == 2 &&
              vkr_dataset_class_size(tr, 0) == 7 && vkr_dataset_class_size(tr, 1) == 5 &&
              vkr_dataset_class_size(tr, 2) == 3,
          "stratified: val 3/2/2 of 10/7/5");
    int disjoint = 1;
    for (int i = 0; i < vkr_dataset_size(va); i++)
        for (int j = 0; j < vkr_dataset_size(tr); j++)
            if (!strcmp(vkr_dataset_path(va, i), vkr_dataset_path(tr, j))) disjoint = 0;
    int sorted = 1;
    for (int i = 1; i < vkr_dataset_size(tr); i++)
        if (strcmp(vkr_dataset_path(tr, i - 1), vkr_dataset_path(tr, i)) > 0) sorted = 0;
    CHECK(disjoint && sorted && vkr_dataset_size(tr) + vkr_dataset_size(va) == vkr_dataset_size(ds) &&
              vkr_dataset_num_classes(va) == 3,
          "split is a partition, keeps dataset order and all classes");
    CHECK(!same_dataset(va, va3), "another seed picks other files");
    vkr_dataset *t0, *v0;
    vkr_dataset_split(ds, 0.0, 1, &t0, &v0);
    CHECK(t0 && v0 && vkr_dataset_size(v0) == 0 && same_dataset(t0, ds), "fraction 0: everything in train");
    vkr_dataset_free(t0);
    vkr_dataset_free(v0);
    CHECK(vkr_dataset_split(ds, 1.0, 1, &t0, &v0) == VKR_ERR_INVALID, "fraction 1 rejected");
    vkr_dataset_free(tr);
    vkr_dataset_free(va);
    vkr_dataset_free(tr2);
    vkr_dataset_free(va2);
    vkr_dataset_free(tr3);
    vkr_dataset_free(va3);
}

typedef struct {
    int nb;
    int n[64];
    int idx[64][16];
    float *img; /* [nb][batch][chw] */
    float *tg;
} run_result;

static int run_loader(const vkr_dataset *ds, const vkr_loader_opts *o, run_result *r, int max_batches) {
    memset(r, 0, sizeof *r);
    size_t chw = (size_t)(o->channels ? o->channels : 3) * o->height * o->width;
    int K = vkr_dataset_num_classes(ds);
    r->img = calloc((size_t)max_batches * o->batch * chw, sizeof(float));
    r->tg = calloc((size_t)max_batches * o->batch * K, sizeof(float));
    vkr_loader *ld;
    if (vkr_loader_create_ex(ds, o, &ld)) {
        printf("  loader: %s\n", vkr_last_error());
        return -1;
    }
    int n;
    while (r->nb < max_batches &&
           vkr_loader_next(ld, r->img + (size_t)r->nb * o->batch * chw, r->tg + (size_t)r->nb * o->batch * K, &n) ==
               VKR_OK &&
           n > 0) {
        r->n[r->nb] = n;
        memcpy(r->idx[r->nb], vkr_loader_batch_indices(ld), sizeof(int) * (size_t)n);
        r->nb++;
    }
    vkr_loader_destroy(ld);
    return 0;
}

static void free_run(run_result *r) {
    free(r->img);
    free(r->tg);
}

static int same_run(const run_result *a, const run_result *b, size_t floats) {
    if (a->nb != b->nb) return 0;
    for (int i = 0; i < a->nb; i++)
        if (a->n[i] != b->n[i] || memcmp(a->idx[i], b->idx[i], sizeof(int) * (size_t)a->n[i])) return 0;
    return memcmp(a->img, b->img, floats * sizeof(float)) == 0;
}

/* order, threads, determinism, resuming, targets and pixels */
static void test_loader(const vkr_dataset *ds) {
    const int B = 5, H = 6, W = 8, N = vkr_dataset_size(ds), K = 3;
    const size_t chw = 3 * H * W;
    vkr_loader_opts o = {.batch = B, .height = H, .width = W, .preprocess = VKR_PREPROC_CAFFE, .epoch = 3,
                         .epochs = 1, .seed = 7, .flags = VKR_LOAD_SHUFFLE | VKR_LOAD_KEEP_REMAINDER, .threads = 1};
    run_result r1, r4, r4b, rp;
    run_loader(ds, &o, &r1, 64);
    o.threads = 4;
    run_loader(ds, &o, &r4, 64);
    o.threads = 7;
    o.prefetch = 5;
    run_loader(ds, &o, &r4b, 64);
    size_t floats = (size_t)64 * B * chw;
    CHECK(r1.nb == 5 && r1.n[4] == 2, "22 images, batch 5, keep remainder: 5 batches, last has 2 (%d, %d)", r1.nb,
          r1.n[r1.nb ? r1.nb - 1 : 0]);
    CHECK(same_run(&r1, &r4, floats) && same_run(&r1, &r4b, floats),
          "identical batches with 1, 4 and 7 threads, prefetch 2 and 5");
    /* permutation + one-hot targets + equality with single-image decode */
    int seen[64] = {0}, perm_ok = 1, tg_ok = 1, img_ok = 1, shuffled = 0;
    float *ref = malloc(sizeof(float) * chw);
    for (int b = 0; b < r1.nb; b++)
        for (int k = 0; k < r1.n[b]; k++) {
            int i = r1.idx[b][k];
            if (i < 0 || i >= N || seen[i]++) perm_ok = 0;
            if (i != b * B + k) shuffled = 1;
            const float *t = r1.tg + ((size_t)b * B + k) * K;
            for (int c = 0; c < K; c++)
                if (t[c] != (c == vkr_dataset_label(ds, i) ? 1.0f : 0.0f)) tg_ok = 0;
            vkr_image_load(vkr_dataset_path(ds, i), H, W, VKR_INTERP_BILINEAR, VKR_PREPROC_CAFFE, ref);
            if (memcmp(ref, r1.img + ((size_t)b * B + k) * chw, sizeof(float) * chw)) img_ok = 0;
        }
    CHECK(perm_ok && shuffled, "an epoch is a shuffled permutation of all images");
    CHECK(tg_ok, "targets are one-hot labels");
    CHECK(img_ok, "loader images equal single-threaded vkr_image_load");

    /* the same (seed, epoch) in a multi-epoch loader: resumable */
    o.epoch = 2;
    o.epochs = 3;
    o.threads = 3;
    o.prefetch = 0;
    run_result m;
    run_loader(ds, &o, &m, 64);
    int resumed = m.nb == 15;
    for (int b = 0; resumed && b < 5; b++)
        if (m.n[5 + b] != r1.n[b] || memcmp(m.idx[5 + b], r1.idx[b], sizeof(int) * (size_t)r1.n[b]) ||
            memcmp(m.img + (size_t)(5 + b) * B * chw, r1.img + (size_t)b * B * chw, sizeof(float) * chw * r1.n[b]))
            resumed = 0;
    CHECK(resumed, "epoch 3 of a loader started at epoch 2 equals a loader started at epoch 3 (%d batches)", m.nb);
    int differs = memcmp(m.idx[0], m.idx[5], sizeof(int) * B) != 0;
    CHECK(differs, "epochs 2 and 3 have different orders");
    free_run(&m);

    /* steps without remainder, no shuffle = dataset order */
    o.epoch = 0;
    o.epochs = 1;
    o.flags = 0;
    run_loader(ds, &o, &rp, 64);
    int inorder = rp.nb == 4;
    for (int b = 0; inorder && b < 4; b++)
        for (int k = 0; k < B; k++)
            if (rp.idx[b][k] != b * B + k) inorder = 0;
    CHECK(inorder, "no shuffle, remainder dropped: 4 batches in dataset order");
    free_run(&rp);

    free(ref);
    free_run(&r1);
    free_run(&r4);
    free_run(&r4b);
}

/* augmentation: flips and shifts, deterministic */
static void test_loader_augment(const vkr_dataset *ds) {
    const int B = 5, H = 6, W = 8;
    const size_t chw = 3 * H * W;
    size_t floats = (size_t)64 * B * chw;
    vkr_loader_opts o = {.batch = B, .height = H, .width = W, .preprocess = VKR_PREPROC_CAFFE, .epochs = 4,
                         .seed = 7, .threads = 2};
    float *ref = malloc(sizeof(float) * chw);
    o.flags = VKR_LOAD_FLIP | VKR_LOAD_SHUFFLE;
    o.epochs = 4;
    o.threads = 2;
    run_result fa, fb;
    run_loader(ds, &o, &fa, 64);
    o.threads = 5;
    run_loader(ds, &o, &fb, 64);
    CHECK(same_run(&fa, &fb, floats), "flip augmentation is deterministic across thread counts");
    int flips = 0, plain = 0, other = 0;
    for (int b = 0; b < fa.nb; b++)
        for (int k = 0; k < fa.n[b]; k++) {
            vkr_image_load(vkr_dataset_path(ds, fa.idx[b][k]), H, W, VKR_INTERP_BILINEAR, VKR_PREPROC_CAFFE, ref);
            const float *a = fa.img + ((size_t)b * B + k) * chw;
            int same = !memcmp(a, ref, sizeof(float) * chw), mirror = 1;
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++)
                        if (a[(c * H + y) * W + x] != ref[(c * H + y) * W + (W - 1 - x)]) mirror = 0;
            if (same)
                plain++;
            else if (mirror)
                flips++;
            else
                other++;
        }
    CHECK(other == 0 && flips >= 20 && plain >= 20, "flip: %d mirrored, %d unchanged, %d other (of %d)", flips, plain,
          other, flips + plain + other);
    free_run(&fa);
    free_run(&fb);

    o.flags = VKR_LOAD_CROP;
    o.epochs = 2;
    run_result cr;
    run_loader(ds, &o, &cr, 64);
    int ph = (H + 4) / 8, pw = (W + 4) / 8, shifted = 0, bad = 0, moved = 0;
    for (int b = 0; b < cr.nb; b++)
        for (int k = 0; k < cr.n[b]; k++) {
            vkr_image_load(vkr_dataset_path(ds, cr.idx[b][k]), H, W, VKR_INTERP_BILINEAR, VKR_PREPROC_CAFFE, ref);
            const float *a = cr.img + ((size_t)b * B + k) * chw;
            int found = 0;
            for (int dy = -ph; !found && dy <= ph; dy++)
                for (int dx = -pw; !found && dx <= pw; dx++) {
                    int ok = 1;
                    for (int c = 0; ok && c < 3; c++)
                        for (int y = 0; ok && y < H; y++)
                            for (int x = 0; ok && x < W; x++) {
                                int sy = y + dy, sx = x + dx;
                                float want = sy < 0 || sy >= H || sx < 0 || sx >= W ? 0.0f : ref[(c * H + sy) * W + sx];
                                if (a[(c * H + y) * W + x] != want) ok = 0;
                            }
                    if (ok) {
                        found = 1;
                        if (dy || dx) moved++;
                    }
                }
            if (found)
                shifted++;
            else
                bad++;
        }
    CHECK(bad == 0 && moved > shifted / 2, "crop = shift by up to (%d,%d) with zero padding: %d ok (%d moved), %d bad",
          ph, pw, shifted, moved, bad);
    free_run(&cr);

    free(ref);
}

/* one channel; errors; destroying a loader with batches in flight */
static void test_loader_misc(const vkr_dataset *ds) {
    const int B = 5, H = 6, W = 8;
    const size_t chw = 3 * H * W;
    vkr_loader_opts o = {.batch = B, .height = H, .width = W, .preprocess = VKR_PREPROC_CAFFE, .epochs = 2,
                         .seed = 7, .threads = 2};
    float *ref = malloc(sizeof(float) * chw);
    o.flags = 0;
    o.channels = 1;
    o.preprocess = VKR_PREPROC_UNIT;
    run_result g1;
    run_loader(ds, &o, &g1, 64);
    vkr_image_load_ex(vkr_dataset_path(ds, g1.idx[0][1]), H, W, 1, VKR_INTERP_BILINEAR, VKR_PREPROC_UNIT, ref);
    CHECK(g1.nb == 8 && !memcmp(g1.img + (size_t)H * W, ref, sizeof(float) * H * W), "channels=1 loader");
    free_run(&g1);

    /* errors, early destroy */
    o.channels = 3;
    o.batch = 30;
    vkr_loader *ld = NULL;
    CHECK(vkr_loader_create_ex(ds, &o, &ld) == VKR_ERR_INVALID && contains(vkr_last_error(), "fewer than one batch"),
          "batch larger than the dataset: %s", vkr_last_error());
    o.batch = 0;
    CHECK(vkr_loader_create_ex(ds, &o, &ld) == VKR_ERR_INVALID, "batch 0 rejected");
    CHECK(vkr_loader_create(ds, 4, H, W, VKR_PREPROC_TORCH, 0, 1, VKR_LOAD_SHUFFLE, &ld) == VKR_OK,
          "positional create");
    if (ld) {
        float *img = malloc(sizeof(float) * 4 * chw);
        int n, ep, st;
        vkr_loader_next(ld, img, NULL, &n);
        vkr_loader_position(ld, &ep, &st);
        CHECK(n == 4 && ep == 0 && st == 1 && vkr_loader_steps_per_epoch(ld) == 5, "position after one batch");
        vkr_loader_destroy(ld); /* with prefetch in flight */
        free(img);
    }
    free(ref);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void test_cats_dogs(void) {
    const char *cands[4] = {getenv("VKRUN_SHARED_DIR"), NULL, "../shared", "../../shared"};
#ifdef VKR_SOURCE_DIR
    cands[1] = VKR_SOURCE_DIR "/../shared";
#endif
    char base[512] = "";
    for (int i = 0; i < 4; i++) {
        if (!cands[i]) continue;
        char p[600];
        snprintf(p, sizeof p, "%s/data/cats_dogs/train", cands[i]);
        struct stat st;
        if (stat(p, &st) == 0) {
            snprintf(base, sizeof base, "%s/data/cats_dogs", cands[i]);
            break;
        }
    }
    if (!base[0]) {
        SKIP_CHECK("cats_dogs: ../shared/data/cats_dogs not found");
        return;
    }
    char p[600];
    vkr_dataset *tr = NULL, *va = NULL;
    snprintf(p, sizeof p, "%s/train", base);
    double t0 = now_s();
    vkr_status s = vkr_dataset_open(p, NULL, &tr);
    double t1 = now_s();
    snprintf(p, sizeof p, "%s/val", base);
    if (!s) s = vkr_dataset_open(p, NULL, &va);
    CHECK(s == VKR_OK && vkr_dataset_size(tr) == 200 && vkr_dataset_size(va) == 50 &&
              vkr_dataset_num_warnings(tr) == 0 && vkr_dataset_num_warnings(va) == 0 &&
              vkr_dataset_check_classes(tr, va) == VKR_OK && !strcmp(vkr_dataset_class_name(tr, 0), "cats"),
          "cats_dogs: 200 train + 50 val, all decode, classes cats/dogs");
    if (s) {
        vkr_dataset_free(tr);
        return;
    }
    printf("  open+validate of 200 JPEGs: %.2f s (%.0f images/s, %d threads)\n", t1 - t0, 200 / (t1 - t0),
           vkr_cpu_count());
    for (int threads = 1; threads <= vkr_cpu_count(); threads *= 2) {
        vkr_loader_opts o = {.batch = 32, .height = 224, .width = 224, .preprocess = VKR_PREPROC_CAFFE, .epochs = 1,
                             .seed = 1, .flags = VKR_LOAD_SHUFFLE | VKR_LOAD_KEEP_REMAINDER | VKR_LOAD_FLIP,
                             .threads = threads};
        float *img = malloc(sizeof(float) * 32 * 3 * 224 * 224);
        vkr_loader *ld;
        int total = 0, n;
        double a = now_s();
        for (int d = 0; d < 2; d++) {
            vkr_dataset *ds = d ? va : tr;
            if (vkr_loader_create_ex(ds, &o, &ld)) break;
            while (vkr_loader_next(ld, img, NULL, &n) == VKR_OK && n > 0) total += n;
            vkr_loader_destroy(ld);
        }
        double b = now_s();
        printf("  loader 224x224 caffe, %d thread(s): %d images in %.2f s = %.0f images/s\n", threads, total, b - a,
               total / (b - a));
        CHECK(total == 250, "cats_dogs loader delivered all 250 images (%d threads)", threads);
        free(img);
    }
    vkr_dataset_free(tr);
    vkr_dataset_free(va);
}

int main(void) {
    snprintf(g_root, sizeof g_root, "/tmp/vkr_test_data_XXXXXX");
    if (!mkdtemp(g_root)) {
        printf("FAIL cannot create a temporary folder: %s\n", strerror(errno));
        return 1;
    }
    build_mixed();
    build_small();
    test_formats();
    test_more_formats();
    test_odd_entries();
    test_fuzz();
    test_resize_preprocess();
    test_dataset_mixed();
    test_dataset_errors();
    char p[512];
    path_of(p, sizeof p, "small");
    vkr_dataset *ds = NULL;
    vkr_dataset_opts o = {.threads = 3};
    if (vkr_dataset_open(p, &o, &ds) == VKR_OK) {
        test_split(ds);
        test_loader(ds);
        test_loader_augment(ds);
        test_loader_misc(ds);
        vkr_dataset_free(ds);
    } else {
        CHECK(0, "open small dataset: %s", vkr_last_error());
    }
    test_cats_dogs();
    remove_tree(g_root);
    return test_finish();
}
