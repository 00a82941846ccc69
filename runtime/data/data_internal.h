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
enum { TAG_PERM = 0x7065726d, TAG_AUG = 0x61756721, TAG_SPLIT = 0x73706c74, TAG_AUG2 = 0x61756732 };
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
    /* the general path (vkr_augment beyond flip and crop): */
    int general;
    double angle, scale, tx, ty; /* radians; content scale; translation in output pixels */
    double bright, contrast;     /* added to 0..255 values; contrast factor (1: none) */
    int photometric;             /* brightness or contrast drawn: clamp to 0..255 */
    int cx, cy, cw, ch;          /* resized crop of the decoded image (cw = 0: whole image) */
} vkr__aug;

/* VKR_ERR_INVALID naming the first value outside its range. */
vkr_status vkr__augment_check(const vkr_augment *a);
/* Draws image i's transforms for `epoch` (w x h: the decoded image, for the resized crop).
 * Flip and crop come from the stream they always came from; the others from a second one. */
void vkr__augment_draw(const vkr_augment *a, uint64_t seed, int epoch, int i, int H, int W, int w, int h,
                       vkr__aug *out);

/* Resize + (augment) + preprocess.  Returns 0, or -1 when out of memory. */
int vkr__render(const uint8_t *rgb, int w, int h, int H, int W, int C, vkr_interp interp,
                vkr_preprocess pre, const vkr__aug *aug, float *out);

#endif
