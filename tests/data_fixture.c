/* Files the data tests build in a temporary folder (tests/data_fixture.h). */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data_fixture.h"
#include "stb_image_write.h" /* declarations; implementation in libstb.so */

char g_root[256];

/* ---------------------------------------------------------------- file helpers */

void path_of(char *buf, size_t n, const char *rel) { snprintf(buf, n, "%s/%s", g_root, rel); }

int mkdirs(const char *rel) {
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

void write_bytes(const char *rel, const void *data, size_t n) {
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

unsigned char *read_bytes(const char *rel, size_t *n) {
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

void remove_tree(const char *path) {
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
unsigned char *pattern(int w, int h, int comp, int seed) {
    unsigned char *p = malloc((size_t)w * h * comp);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < comp; c++)
                p[((size_t)y * w + x) * comp + c] = (unsigned char)((x * 37 + y * 91 + c * 53 + seed * 29) & 255);
    return p;
}

void write_png(const char *rel, int w, int h, int comp, const unsigned char *px) {
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
void write_png16(const char *rel, int w, int h, int color_type, const uint16_t *v) {
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
void write_png_palette(const char *rel, int w, int h, const unsigned char *idx, const unsigned char *pal,
                              int ncolors) {
    size_t row = 1 + (size_t)w, raw_n = row * h;
    unsigned char *raw = calloc(raw_n, 1);
    for (int y = 0; y < h; y++) memcpy(raw + y * row + 1, idx + y * w, (size_t)w);
    write_png_rows(rel, w, h, 8, 3, raw, raw_n, pal, (uint32_t)ncolors * 3);
    free(raw);
}

/* A GIF89a of w x h palette indices (256-colour global table): LZW with 9-bit codes only, a
 * clear code every 254 literals so the code width never grows (a valid, uncompressed stream). */
void write_gif(const char *rel, int w, int h, const unsigned char *idx, const unsigned char *pal256) {
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
void write_png_header_only(const char *rel, uint32_t w, uint32_t h) {
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


void build_mixed(void) {
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
void build_small(void) {
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

int contains(const char *hay, const char *needle) { return hay && needle && strstr(hay, needle) != NULL; }

int fixture_setup(const char *who) {
    snprintf(g_root, sizeof g_root, "/tmp/vkr_test_%s_XXXXXX", who);
    if (!mkdtemp(g_root)) {
        printf("FAIL cannot create a temporary folder: %s\n", strerror(errno));
        return 1;
    }
    build_mixed();
    build_small();
    return 0;
}
