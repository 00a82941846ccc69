/* Private helpers shared by runtime/data/data.c and runtime/data/data_image.c. */
#ifndef VKRUN_DATA_INTERNAL_H
#define VKRUN_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "vkrun_data.h"

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
