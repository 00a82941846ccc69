/* The data tests' fixture (tests/data_fixture.c): image files of every format, broken ones,
 * and two small datasets, written below g_root. */
#ifndef VKRUN_TEST_DATA_FIXTURE_H
#define VKRUN_TEST_DATA_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#define PW 6 /* the pattern images' size */
#define PH 4

extern char g_root[256];
void path_of(char *buf, size_t n, const char *rel);
int mkdirs(const char *rel);
void write_bytes(const char *rel, const void *data, size_t n);
unsigned char *read_bytes(const char *rel, size_t *n);
void remove_tree(const char *path);
unsigned char *pattern(int w, int h, int comp, int seed);
void write_png(const char *rel, int w, int h, int comp, const unsigned char *px);
void write_png16(const char *rel, int w, int h, int color_type, const uint16_t *v);
void write_png_palette(const char *rel, int w, int h, const unsigned char *idx, const unsigned char *pal, int ncolors);
void write_gif(const char *rel, int w, int h, const unsigned char *idx, const unsigned char *pal256);
void write_png_header_only(const char *rel, uint32_t w, uint32_t h);
/* mixed/: every format, bad files, nested and hidden entries; small/: 3 classes of 9x7 PNGs */
void build_mixed(void);
void build_small(void);
int contains(const char *hay, const char *needle);
/* Makes g_root (mkdtemp below /tmp, named after `who`) and both fixtures; 0 on success. */
int fixture_setup(const char *who);

#endif
