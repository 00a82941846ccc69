/* Float32 .npy files (NumPy format 1.0-3.0, little-endian '<f4', C order). */
#ifndef VKRUN_NPY_H
#define VKRUN_NPY_H

#include "vkrun.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VKR_NPY_MAX_DIMS 8

typedef struct {
    int ndim;
    int64_t shape[VKR_NPY_MAX_DIMS];
    uint64_t count;   /* product of shape */
    float *data;      /* malloc'ed */
} vkr_npy;

/* Reads a float32 C-order array.  Anything else (another dtype, Fortran order,
 * a size that does not match the file, a malformed header) is VKR_ERR_FORMAT
 * with a message naming the file. */
vkr_status vkr_npy_read(const char *path, vkr_npy *out);
/* Writes atomically (temporary file, fsync, rename). */
vkr_status vkr_npy_write(const char *path, const float *data, int ndim, const int64_t *shape);
void vkr_npy_free(vkr_npy *a);

#ifdef __cplusplus
}
#endif
#endif
