/* Private helpers shared by runtime/data/dataset.c, loader.c and data_image.c. */
#ifndef VKRUN_DATA_INTERNAL_H
#define VKRUN_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/util.h"
#include "vkrun_data.h"

#define MAX_THREADS 64

struct vkr_dataset {
    char *root;
    int nclasses;
    char **classes;
    int *class_size;
    int n;
    char **paths;
    int *labels;
    int nwarn;
    char **warnings;
};

/* Independent random streams of one seed: tag names the use, a and b its coordinates
 * (class, epoch, image). */
enum { TAG_PERM = 0x7065726d, TAG_AUG = 0x61756721, TAG_SPLIT = 0x73706c74 };
vkr_rng vkr__data_rng(uint64_t seed, uint64_t tag, uint64_t a, uint64_t b);
void vkr__shuffle_ints(int *a, int n, vkr_rng *r); /* Fisher-Yates */

enum { VKR__DECODE_OK = 0, VKR__DECODE_IO = 1, VKR__DECODE_FORMAT = 2, VKR__DECODE_NOMEM = 3 };

/* Reads PATH and checks its header; when `full`, also decodes it to 8-bit RGB
 * (*rgb malloc'ed, free()).  Thread-safe.  On failure writes a message naming
 * the path to err and returns VKR__DECODE_IO/FORMAT/NOMEM. */
int vkr__decode_file(const char *path, int full, uint8_t **rgb, int *w, int *h, char *err, size_t errsz);

/* Geometric augmentation applied after resizing: the output pixel (y, x)
 * takes the resized pixel (y + dy - ph, x' + dx - pw) with x' = W-1-x when
 * flip, else x; outside the resized image the value is 0 (after preprocessing). */
typedef struct {
    int flip;
    int dy, dx, ph, pw;
} vkr__aug;

/* Resize + (augment) + preprocess.  Returns 0, or -1 when out of memory. */
int vkr__render(const uint8_t *rgb, int w, int h, int H, int W, int C, vkr_interp interp,
                vkr_preprocess pre, const vkr__aug *aug, float *out);

#endif
