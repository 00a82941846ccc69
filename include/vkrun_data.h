/* vkrun — image datasets for training and prediction (host side, no Vulkan).
 *
 * A dataset is a folder with one subfolder per class, like Keras'
 * flow_from_directory / image_dataset_from_directory:
 *
 *     DIR/cats/cat.1.jpg  DIR/cats/sub/x.png  DIR/dogs/dog.1.jpg ...
 *
 * - Classes are the non-hidden subfolders of DIR sorted by name with strcmp
 *   (byte order, as Keras' sorted()); class index = position in that order.
 * - Inside a class folder, files are collected recursively (subfolders are
 *   walked, symlinked subfolders are not followed), ordered by (folder, name)
 *   with strcmp, as Keras.  Names starting with '.' are skipped.  Files that
 *   are not images (by extension) are ignored silently; files directly in DIR
 *   are ignored.
 * - Image extensions, case-insensitive: jpg jpeg png bmp gif tga psd pgm ppm
 *   pnm hdr (what stb_image decodes; GIF: first frame; HDR: tone-mapped by stb).
 * - Decoding forces RGB: gray, gray+alpha, RGBA (alpha dropped, not
 *   composited), paletted and 16-bit images (reduced to 8 bits) all become
 *   8-bit RGB.  Images wider/taller than VKR_IMAGE_MAX_SIDE or with more than
 *   VKR_IMAGE_MAX_PIXELS pixels are rejected before decoding (decompression
 *   bombs); so are empty files and files over 1 GiB.
 * - Bad files: by default vkr_dataset_open decodes every file once (in
 *   parallel) and drops the ones that fail, with a warning naming the path and
 *   stb's reason; the dataset's lists then hold only good files, so epoch
 *   orders and batch contents do not depend on later decode failures.  With
 *   opts.strict the first bad file is a VKR_ERR_FORMAT error instead.
 *
 * All functions return a vkr_status; on failure vkr_last_error() says why.
 * Nothing here terminates the process or crashes on malformed input. */
#ifndef VKRUN_DATA_H
#define VKRUN_DATA_H

#include <stdint.h>

#include "vkrun.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VKR_IMAGE_MAX_SIDE 16384
#define VKR_IMAGE_MAX_PIXELS 100000000.0

/* ---------------------------------------------------------------- resize + preprocessing */

typedef enum {
    /* Bilinear with half-pixel centres (align_corners=False):
     * src = (dst + 0.5) * in/out - 0.5, clamped to [0, in-1]; no antialiasing.
     * Equals tf.image.resize(method='bilinear', antialias=False) and
     * torch.nn.functional.interpolate(mode='bilinear', align_corners=False);
     * equals PIL BILINEAR when upscaling (PIL widens its filter when downscaling). */
    VKR_INTERP_BILINEAR = 0,
    /* Nearest, src = floor(dst * in/out): OpenCV INTER_NEAREST, torch 'nearest',
     * TF1 resize_nearest_neighbor. */
    VKR_INTERP_NEAREST = 1,
    /* Nearest with pixel centres, src = floor((dst + 0.5) * in/out): PIL NEAREST,
     * hence Keras load_img(target_size=..) default 'nearest'; torch 'nearest-exact'. */
    VKR_INTERP_NEAREST_PIL = 2,
} vkr_interp;

typedef enum {
    VKR_PREPROC_NONE = 0, /* floats 0..255, RGB */
    VKR_PREPROC_CAFFE,    /* RGB->BGR, minus [103.939, 116.779, 123.68] (B,G,R), no scaling */
    VKR_PREPROC_TORCH,    /* x/255, minus mean [0.485,0.456,0.406], / std [0.229,0.224,0.225], RGB */
    VKR_PREPROC_TF,       /* x/127.5 - 1, RGB (Keras 'tf' mode: MobileNet, Inception) */
    VKR_PREPROC_UNIT,     /* x/255, RGB */
} vkr_preprocess;

/* Names: "bilinear", "nearest", "nearest-pil"; "none", "caffe", "torch", "tf", "unit". */
vkr_status vkr_interp_parse(const char *name, vkr_interp *out);
const char *vkr_interp_name(vkr_interp i);
vkr_status vkr_preprocess_parse(const char *name, vkr_preprocess *out);
const char *vkr_preprocess_name(vkr_preprocess p);

/* Resizes an 8-bit RGB image (w x h, rows packed, 3 bytes per pixel) to H x W
 * and writes channels x H x W floats (CHW) preprocessed as asked.
 * channels = 3: RGB (BGR for caffe).  channels = 1: luminance
 * Y = 0.299 R + 0.587 G + 0.114 B (ITU-R 601, as PIL convert('L'); exactly the
 * gray value for gray images) computed after resizing, then preprocessed with
 * the mean of the three channel constants (caffe: Y - 114.799; torch:
 * (Y/255 - 0.449) / 0.226; none/unit/tf as for one channel). */
vkr_status vkr_image_to_chw(const uint8_t *rgb, int w, int h, int H, int W, int channels,
                            vkr_interp interp, vkr_preprocess pre, float *out_chw);

/* Reads and decodes one image file to 8-bit RGB (free *rgb with free()).
 * Errors name the path: VKR_ERR_IO (cannot read), VKR_ERR_FORMAT (not a
 * decodable image, too large, empty). */
vkr_status vkr_image_read_rgb(const char *path, uint8_t **rgb, int *w, int *h);

/* `vkrun predict IMAGE...`: decode + resize + preprocess into 3 x H x W floats. */
vkr_status vkr_image_load(const char *path, int H, int W, vkr_interp interp, vkr_preprocess pre,
                          float *out_chw);
/* Same with channels = 1 or 3 (see vkr_image_to_chw). */
vkr_status vkr_image_load_ex(const char *path, int H, int W, int channels, vkr_interp interp,
                             vkr_preprocess pre, float *out_chw);

/* ---------------------------------------------------------------- datasets */

typedef enum {
    VKR_VALIDATE_DECODE = 0, /* default: fully decode every file at open (parallel) */
    VKR_VALIDATE_HEADER,     /* only read each file's header (stbi_info): catches non-images,
                                empty and oversized files, not truncated ones */
    VKR_VALIDATE_NONE,       /* list files only; bad files surface while loading */
} vkr_validate_mode;

typedef struct {
    int allow_single_class; /* for predict/evaluate; training needs >= 2 classes */
    int strict;             /* a bad image file is an error (VKR_ERR_FORMAT), not a warning */
    vkr_validate_mode validate;
    int threads;            /* validation threads; 0: number of CPU cores */
    int quiet;              /* do not log warnings (vkr_log; they are still recorded) */
    int split_names_ok;     /* accept class folders that look like a split (train + val/validation/test):
                               by default that is VKR_ERR_INVALID, since a folder holding train/ and val/
                               would otherwise train a "train vs val" classifier */
} vkr_dataset_opts;

typedef struct vkr_dataset vkr_dataset;

/* opts may be NULL (defaults).  Errors: VKR_ERR_IO (missing/unreadable folder),
 * VKR_ERR_INVALID (not a folder, no class subfolders, a class folder without
 * images, a single class, no images at all), VKR_ERR_FORMAT (strict, bad file). */
vkr_status vkr_dataset_open(const char *dir, const vkr_dataset_opts *opts, vkr_dataset **out);
void vkr_dataset_free(vkr_dataset *ds);

const char *vkr_dataset_root(const vkr_dataset *ds);
int vkr_dataset_size(const vkr_dataset *ds);        /* number of (good) images */
int vkr_dataset_num_classes(const vkr_dataset *ds);
const char *vkr_dataset_class_name(const vkr_dataset *ds, int c);
int vkr_dataset_class_size(const vkr_dataset *ds, int c);
const char *vkr_dataset_path(const vkr_dataset *ds, int i); /* "DIR/class/file" */
int vkr_dataset_label(const vkr_dataset *ds, int i);
/* Files skipped at open (bad images) and their warnings ("skipping 'PATH': reason"). */
int vkr_dataset_num_warnings(const vkr_dataset *ds);
const char *vkr_dataset_warning(const vkr_dataset *ds, int i);

/* The image files below dir (by extension, as in a class folder: nested folders included,
 * sorted per folder), for predicting a folder.  *paths and each path are malloc'ed: free()
 * them.  Odd entries (folders named like images, dangling links) are logged and left out. */
vkr_status vkr_find_images(const char *dir, char ***paths, int *n);

/* VKR_OK when `other` has exactly the classes of `ref` in the same order
 * (e.g. a separate val/ folder against train/); else VKR_ERR_INVALID naming the difference. */
vkr_status vkr_dataset_check_classes(const vkr_dataset *ref, const vkr_dataset *other);

/* Stratified, deterministic split: in each class, the files are shuffled with a
 * generator seeded by (seed, class index) and round(fraction * class size)
 * of them go to *val (at least 1 when fraction > 0 and the class has >= 2
 * files; at least 1 stays in *train), the rest to *train.  Both keep the
 * dataset order (class, then file name) and all class names.  fraction in
 * [0, 1).  Free both with vkr_dataset_free; they do not depend on ds. */
vkr_status vkr_dataset_split(const vkr_dataset *ds, double fraction, uint64_t seed,
                             vkr_dataset **train, vkr_dataset **val);

/* ---------------------------------------------------------------- batch loader */

enum {
    VKR_LOAD_SHUFFLE = 1u << 0,        /* epoch order = permutation seeded by (seed, epoch) */
    VKR_LOAD_FLIP = 1u << 1,           /* horizontal flip with p = 0.5 */
    VKR_LOAD_CROP = 1u << 2,           /* pad by P = round(H/8) x round(W/8) (value 0 after
                                          preprocessing: the mean for caffe/torch, black for
                                          none/unit, gray for tf), crop H x W back at a
                                          random offset (a shift by up to +-P) */
    VKR_LOAD_KEEP_REMAINDER = 1u << 3, /* last partial batch kept: steps = ceil(n/batch)
                                          (default: steps = floor(n/batch), rest dropped) */
};

/* Random transforms of training images (Keras's preprocessing layers, torchvision's
 * RandomResizedCrop), drawn per (seed, epoch, image) so a run is reproducible.  Order: the
 * resized crop (on the decoded image), the resize, brightness and contrast (on 0..255 values,
 * clamped), then one geometric map of the resized image -- flip, rotation and zoom about the
 * centre, shift, crop-shift -- sampled bilinearly.  A pixel that maps outside the image is 0
 * after preprocessing (the mean colour for caffe/torch), as for VKR_LOAD_CROP.  With only flip
 * and crop, images are exactly those of VKR_LOAD_FLIP / VKR_LOAD_CROP. */
typedef struct {
    int flip;          /* horizontal flip with p = 0.5 (= VKR_LOAD_FLIP) */
    int crop;          /* shift by up to round(H/8), round(W/8) whole pixels (= VKR_LOAD_CROP) */
    double rotate;     /* degrees, [0, 180]: angle uniform in [-rotate, rotate] */
    double zoom;       /* [0, 1): content scale uniform in [1 - zoom, 1 + zoom] (> 1 enlarges) */
    double shift;      /* [0, 1]: translation uniform in [-shift, shift] * (W, H) */
    double brightness; /* [0, 1]: adds uniform [-brightness, brightness] * 255 */
    double contrast;   /* [0, 1): per channel (v - mean) * f + mean, f uniform in [1 - c, 1 + c] */
    int resized_crop;  /* area fraction in [0.08, 1], aspect in [3/4, 4/3] of the decoded image,
                          resized to H x W (torchvision's defaults) */
} vkr_augment;

/* Parses "flip,crop,rotate=15,zoom=0.1,shift=0.1,brightness=0.2,contrast=0.2,resized-crop"
 * (any subset, any order; "none" or "" for nothing).  VKR_ERR_INVALID names the bad item. */
vkr_status vkr_augment_parse(const char *spec, vkr_augment *out);
/* The canonical spec of a (the same items in a fixed order; "none"): parse(format(a)) == a. */
const char *vkr_augment_format(const vkr_augment *a, char *buf, size_t n);
/* Whether a does anything. */
int vkr_augment_any(const vkr_augment *a);

typedef struct {
    int batch, height, width; /* required, > 0 */
    int channels;             /* 3 (default when 0) or 1 */
    vkr_interp interp;        /* default bilinear */
    vkr_preprocess preprocess;
    int epoch;                /* first epoch produced */
    int epochs;               /* number of epochs to produce (prefetch runs across epoch
                                 boundaries); <= 0: unlimited */
    uint64_t seed;
    unsigned flags;           /* VKR_LOAD_* */
    int threads;              /* decoding threads; 0: number of CPU cores */
    int prefetch;             /* batches decoded ahead; 0: default (2, or more with many
                                 threads); minimum 2 */
    int strict;               /* an image failing to decode while loading is an error */
    int quiet;                /* no warnings logged (vkr_log) */
    vkr_augment augment;      /* more augmentation (flags' FLIP and CROP are added to it) */
    /* data-parallel: this loader produces shard `shard` of `shards` of every batch (images
     * [c * shard / shards, c * (shard + 1) / shards) of a batch of c), and a batch whose share is
     * empty (or whose images all failed to decode) comes back as *n = 0 in its place rather than
     * being skipped: the caller counts vkr_loader_steps_per_epoch calls.  0: shard 0 of 1. */
    int shard, shards;
} vkr_loader_opts;

typedef struct vkr_loader vkr_loader;

/* Batches are deterministic functions of (dataset, options, seed, epoch,
 * step): the order depends on (seed, epoch) only, augmentation of image i in
 * epoch e on (seed, e, i) only, never on thread timing or thread count; a run
 * resumed at epoch e sees the same batches.  The dataset must outlive the loader.
 * An image that fails to decode during loading (possible only when the dataset
 * was opened without full validation, or a file changed since) is dropped from
 * its batch with a warning (so that batch has fewer images), or is an error
 * with opts.strict.  Fails (VKR_ERR_INVALID) when the dataset has fewer images
 * than one batch and KEEP_REMAINDER is not set. */
vkr_status vkr_loader_create_ex(const vkr_dataset *ds, const vkr_loader_opts *opts, vkr_loader **out);
/* One epoch (`epoch`), 3 channels, bilinear, default threads. */
vkr_status vkr_loader_create(const vkr_dataset *ds, int batch, int H, int W, vkr_preprocess pre,
                             int epoch, uint64_t seed, unsigned flags, vkr_loader **out);
/* Next batch, in order: images [batch][C][H][W] floats, targets one-hot
 * [batch][num_classes] floats (either may be NULL); *n = images in this batch
 * (batch, or fewer for a remainder batch or after dropped files).
 * *n = 0 and VKR_OK once all epochs have been produced. */
vkr_status vkr_loader_next(vkr_loader *ld, float *images, float *targets, int *n);
/* Dataset indices of the images of the last batch returned (*n of them). */
const int *vkr_loader_batch_indices(const vkr_loader *ld);
int vkr_loader_steps_per_epoch(const vkr_loader *ld);
/* Epoch and step (0-based within the epoch) of the batch the next call returns. */
void vkr_loader_position(const vkr_loader *ld, int *epoch, int *step);
/* Images dropped so far because they failed to decode during loading. */
int vkr_loader_num_dropped(const vkr_loader *ld);
/* Seconds vkr_loader_next spent blocked on a batch its workers had not finished: the time the
 * consumer (the training step) was held back by decoding, resizing and augmentation. */
double vkr_loader_wait_seconds(const vkr_loader *ld);
void vkr_loader_destroy(vkr_loader *ld);

/* The image order of epoch `epoch` under VKR_LOAD_SHUFFLE: perm[k] = dataset
 * index of the k-th image (the loader uses exactly this; feature caching too). */
void vkr_epoch_permutation(int n, uint64_t seed, int epoch, int *perm);
/* steps per epoch for n images: n / batch, or ceil(n / batch) with keep_remainder. */
int vkr_steps_per_epoch(int n, int batch, int keep_remainder);
/* Number of CPU cores (>= 1). */
int vkr_cpu_count(void);

#ifdef __cplusplus
}
#endif

#endif
