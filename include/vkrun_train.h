/* vkrun — transfer learning as a library call (docs/training.md).
 *
 * vkr_fit does what `vkrun train` does: it opens an image folder (one subfolder
 * per class), puts a Keras-style head on a base model (the base up to its last
 * feature map -> global average pooling -> Dense+ReLU layers -> Dense(classes,
 * softmax)), trains the head on the frozen base (stage 1; the base's pooled
 * features are computed once and cached when nothing else needs the base),
 * optionally fine-tunes the base (stage 2), validates, and writes the model and, named after it
 * (out = DIR/M.safetensors: M.history.json ... in plots or DIR), M.history.json (Keras's
 * History.history: {"loss": [...], "accuracy": [...], "val_loss": [...], "val_accuracy": [...],
 * "lr": [...], "stage": [...], "epoch_seconds": [...]}, null where an epoch was not validated) /
 * M.history.csv and M.accuracy.png / M.loss.png (a line marks where fine-tuning starts).
 *
 * It never prints, never reads the environment for its own purposes and never
 * exits: progress, epochs, stages and informational lines go to the callbacks;
 * failures return a vkr_status with vkr_last_error() naming the problem (the
 * messages name options by their `vkrun train` flags: --freeze for .freeze).
 * A callback that returns nonzero asks the run to stop: it stops after the
 * current step, writes OUT.checkpoint (model, optimizer state, position and
 * history; OUT.checkpoint.optimizer beside it) and returns VKR_ERR_INTERRUPTED;
 * opts.resume = that checkpoint continues it, bit-identically.  Stopped while
 * caching features, nothing is saved (the features are recomputed next time).
 *
 * Image files the data loader skips are reported through vkr_log (vkrun.h: the default sink
 * writes them to stderr, vkr_set_log redirects them), unless opts.quiet_data. */
#ifndef VKRUN_TRAIN_H
#define VKRUN_TRAIN_H

#include <stdint.h>

#include "vkrun.h"
#include "vkrun_data.h"
#include "vkrun_model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VKR_FIT_MAX_HEAD 16      /* Dense+ReLU layers of a head */
#define VKR_FIT_MAX_EPOCHS 1024  /* epochs of a run, both stages together */

typedef enum {
    VKR_FIT_TRAIN = 0,     /* every layer trained (the base is not frozen) */
    VKR_FIT_HEAD = 1,      /* stage 1: the head on a frozen base */
    VKR_FIT_FINE_TUNE = 2, /* stage 2: the base unfrozen from .ft_from */
} vkr_fit_stage;

/* "train", "head", "fine-tune" (the history's "stage" strings). */
const char *vkr_fit_stage_name(vkr_fit_stage stage);

typedef enum { VKR_MONITOR_VAL_LOSS = 0, VKR_MONITOR_VAL_ACCURACY = 1 } vkr_fit_monitor;
typedef enum {
    VKR_SCHED_CONSTANT = 0, /* the stage's lr at every step */
    VKR_SCHED_COSINE,       /* lr * (1 + cos(pi * s / S)) / 2 after warmup (s of S steps), to 0 */
    VKR_SCHED_STEP,         /* lr * factor^floor(e / epochs), e the epoch within the stage */
    VKR_SCHED_PLATEAU,      /* ReduceLROnPlateau(patience, factor, min_delta 1e-4) on the monitor */
} vkr_fit_schedule;

typedef struct {
    /* inputs */
    const char *model;      /* base: a .safetensors model or a .json architecture (seeded init) */
    const char *resume;     /* instead of model: OUT.checkpoint of an interrupted run with the same options */
    const char *data;       /* training folder (one subfolder per class) */
    const char *val;        /* validation folder, or NULL */
    double val_split;       /* or: this stratified fraction of data for validation (0: none) */
    int val_every;          /* validate every K epochs and after the last (default 1) */
    /* outputs */
    const char *out;        /* trained model (.safetensors), written atomically */
    const char *plots;      /* folder of M.history.json/.csv, M.accuracy.png, M.loss.png (NULL: out's folder) */
    const char *cache_dir;  /* keep the pooled features on disk here (NULL: in memory) */
    /* device: ctx when given (kept open; its validation messages are left to the caller), else a
     * context on `device` (see vkr_select_device; validation from VKRUN_VALIDATION) that vkr_fit
     * creates after the data and model check out, and whose validation messages fail the run */
    vkr_context *ctx;
    const char *device;
    /* images */
    int height, width;      /* input size (0: the model's) */
    vkr_interp interp;      /* resize (default bilinear) */
    vkr_augment augment;    /* random transforms of training images (vkr_augment_parse: flip, crop, rotate=DEG,
                               zoom=F, shift=F, brightness=F, contrast=F, resized-crop); any of them disables
                               the feature cache (the base then runs on every image of every step) */
    int keep_remainder;     /* also train on the last partial batch (default 1, as Keras; 0: --drop-remainder) */
    int strict;             /* an undecodable image file is an error (default: skipped, with a warning) */
    int quiet_data;         /* the data loader does not log its warnings (vkr_log) */
    uint64_t seed;          /* shuffling, split, head initialization (default 1) */
    /* head and schedule */
    int nhead, head[VKR_FIT_MAX_HEAD]; /* Dense+ReLU units before the classifier (default 1024,1024,1024,512) */
    int freeze;             /* freeze layers [0, freeze) (-1, the default: the whole base) */
    int batch;              /* images per optimizer step (default 32) */
    int micro_batch;        /* images per submission (0: the memory planner's choice) */
    int recompute;          /* 1 on, -1 off, 0 auto (see vkr_graph_opts) */
    int bn_train;           /* trainable BatchNorm uses batch statistics */
    int sync_bn;            /* with bn_train under data-parallel training: the batch statistics of the global
                               batch (synchronized over the ranks: two host round trips per BatchNorm per step);
                               not with micro_batch or recompute 1 */
    vkr_precision precision; /* [--precision] of the conv / dense GEMMs (vkr_context_set_precision; default
                               fp32); fp16 trains with dynamic loss scaling (vkr_graph_opts.loss_scaling).
                               A caller's ctx gets its precision back when vkr_fit returns */
    vkr_optimizer optimizer; /* default Adam (Keras defaults: b1 .9, b2 .999, eps 1e-7) */
    double lr, momentum;    /* default 1e-3, 0.9 (SGD) */
    int epochs;             /* stage 1 (default 5) */
    int ft_epochs;          /* stage 2 (default 0: no fine-tuning) */
    double ft_lr;           /* default 1e-5 */
    int ft_from;            /* stage 2 trains layers [ft_from, end) (default 0) */
    int no_cache;           /* never cache the pooled features */

    /* ---- callbacks, learning-rate schedules, loss weighting and regularization (docs/training.md
     * "Callbacks and schedules"; `vkrun train` flags in brackets).  All zero: the behaviour
     * without them, bit for bit. */
    int early_stopping;     /* [--early-stopping P] stop a stage when the monitored value has not
                               improved (min_delta 0) for P validated epochs (0: off) */
    vkr_fit_monitor monitor; /* [--monitor] val_loss (default, lower is better) or val_accuracy */
    int save_best;          /* [--save-best] `out` is the model of the best validated epoch by the
                               monitor over the whole run (written when it improves), not the last */
    vkr_fit_schedule lr_schedule; /* [--lr-schedule] per step, in each stage from its base lr */
    int sched_epochs;       /* step:EPOCHS:FACTOR: lr * FACTOR^floor(stage epoch / EPOCHS) */
    int sched_patience;     /* plateau:PATIENCE:FACTOR: lr *= FACTOR after PATIENCE validated epochs
                               without improvement of the monitor by 1e-4 (ReduceLROnPlateau) */
    double sched_factor;
    int warmup_epochs;      /* [--warmup-epochs N] linear warmup over the stage's first N epochs */
    const char *class_weight; /* [--class-weight] "auto" (n / (K * n_c)) or "NAME=W,NAME=W" (W > 0; others 1) */
    double label_smoothing; /* [--label-smoothing E] targets y * (1 - E) + E / K */
    double weight_decay;    /* [--weight-decay W] decoupled (AdamW / Keras 3): p -= lr * W * p per step */
    double dropout;         /* [--dropout P] Keras Dropout(P) before each Dense of the head (after the
                               pooling and after each Dense+ReLU; layers "dropout", "dropout_1", ...):
                               inverted, training steps only, the mask a hash of (seed, layer, step, element) */
    /* ---- issue 13, data/logs/CLI half (augmentation stages, dataset checks, logs) ---- */
    int augment_fine_tune_only; /* .augment applies to stage 2 only: stage 1 trains the head on cached
                                   features (the head-first recipe; --augment-fine-tune) */
    int split_names_ok;     /* accept class folders named like a split (train/val; vkr_dataset_opts) */
    const char *tensorboard; /* folder of TensorBoard event files (created; NULL: none): per epoch (step =
                               epoch index from 0) loss, accuracy, lr, val_loss, val_accuracy; every
                               .tensorboard_steps steps batch_loss, batch_accuracy (the epoch's running
                               means; step = steps of all epochs before + step) */
    int tensorboard_steps;  /* default 10; 0: epoch scalars only */
    /* ---- data-parallel training (docs/scaling.md; include/vkrun_comm.h) ---- */
    struct vkr_comm *comm;  /* NULL (or a group of 1): one process.  Else this rank of a group of N that
                               all call vkr_fit with the same options (their own .device / .ctx): each
                               trains on its share of every batch (images [c*r/N, c*(r+1)/N) of a batch of
                               c), the weight gradients are summed over the ranks in buckets started during
                               the backward pass (.bucket_mb), every rank
                               takes the same update; loss/accuracy and validation (sharded) are reduced
                               over the ranks; the feature cache is computed in shards and gathered; rank 0
                               alone writes out, the history, plots, checkpoints, TensorBoard and
                               .cache_dir.  --bn-train: each rank's batch statistics are those of its share;
                               the running statistics are averaged over the ranks before validation and
                               saving.  Messages come on every rank (the CLI prints rank 0's). */
    double bucket_mb;       /* [--bucket-mb] gradient bucket of the sums in MiB (0: 25, PyTorch DDP's) */
} vkr_fit_opts;

/* The defaults above (those of `vkrun train`). */
void vkr_fit_defaults(vkr_fit_opts *o);

/* One epoch of the history. */
typedef struct {
    vkr_fit_stage stage;
    double loss, accuracy;         /* training means over the epoch's steps */
    double val_loss, val_accuracy; /* NaN when the epoch was not validated */
    double seconds, images_per_s;
    double lr;                     /* learning rate of the epoch's last step */
    double input_wait_seconds;     /* of `seconds`, the steps' wait for the image loader (decoding,
                                      augmentation); NaN when the epoch ran on cached features */
} vkr_fit_epoch;

typedef struct {
    vkr_fit_epoch epochs[VKR_FIT_MAX_EPOCHS];
    int n;                /* epochs done (those of a resumed run included) */
    double cache_seconds; /* time spent caching features */
} vkr_fit_history;

/* Progress of one training step or one batch of feature caching. */
typedef struct {
    const char *what;   /* "head epoch 2/5", "fine-tune epoch 1/3", "epoch 1/5", "features train" */
    int caching;        /* 1: a batch of feature caching (loss and accuracy NaN) */
    int step, steps;    /* steps of this epoch (caching: images done, images) */
    double loss, accuracy; /* running means over the epoch so far */
    long images;        /* images processed since `what` began (this run) */
    double seconds;     /* since `what` began */
    double lr;          /* learning rate this step was taken with (after schedule and warmup) */
} vkr_fit_step;

typedef struct {
    const char *what;         /* as in vkr_fit_step */
    int index;                /* position in the history (0-based) */
    const vkr_fit_epoch *epoch;
    int validated;            /* val_loss / val_accuracy hold numbers */
} vkr_fit_epoch_end;

typedef struct {
    vkr_fit_stage stage;
    int first_epoch, epochs;  /* epochs [first_epoch, first_epoch + epochs) of the history */
    int trained_from, nlayers; /* layers [trained_from, nlayers) of the model are trained */
    double lr;
    int cached;               /* the head trains on cached features */
} vkr_fit_stage_begin;

/* Every callback may be NULL.  A nonzero return asks the run to stop (see above). */
typedef struct {
    void *user;
    int (*on_step)(void *user, const vkr_fit_step *s);
    int (*on_epoch)(void *user, const vkr_fit_epoch_end *e);
    int (*on_stage)(void *user, const vkr_fit_stage_begin *s);
    /* One line for the user, without a newline: what was read, the model, the device, memory
     * plans, the feature cache, what was written ("data: 200 training images in 2 classes ..."). */
    void (*on_message)(void *user, const char *line);
} vkr_fit_callbacks;

typedef struct {
    vkr_fit_history history;
    char plots[4096];         /* where the history and curves went */
    char checkpoint[4200];    /* OUT.checkpoint */
    /* On failure: the part that failed ("train data", "model", "device", "train", "save", ...) for
     * a message that needs it, "options" for invalid options, "" when the message says it all. */
    const char *failed_at;
    /* VKR_ERR_INTERRUPTED: where, and whether the checkpoint was written */
    int interrupted_caching;  /* stopped while caching features: nothing saved */
    char interrupted_at[64];  /* `what` of the epoch */
    int step, steps;
    vkr_status checkpoint_status;
    char checkpoint_error[1024]; /* vkr_last_error() of a failed checkpoint */
} vkr_fit_result;

/* Runs the whole job (see above).  cb may be NULL; res may be NULL.  Returns VKR_OK,
 * VKR_ERR_INTERRUPTED after a stop, VKR_ERR_VALIDATION when a context vkr_fit created
 * counted validation messages (the outputs are written), or the failure's status. */
vkr_status vkr_fit(const vkr_fit_opts *opts, const vkr_fit_callbacks *cb, vkr_fit_result *res);

/* Resuming from a checkpoint alone: a checkpoint records the options of its run (paths made
 * absolute).  vkr_fit_checkpoint_options sets *o to vkr_fit_defaults, then those options, with
 * .resume = path; the strings point into *strings (malloc'ed; free it after the run).
 * VKR_ERR_FORMAT when path is no checkpoint, or one written before checkpoints recorded their
 * options (the message says to give the original flags); VKR_ERR_INVALID when a recorded option
 * is malformed or out of range.  The paths it writes to (out, plots, cache_dir, tensorboard) are
 * not taken as recorded: out is path less ".checkpoint" (NULL when it has no such ending), the
 * others keep their place relative to it (one outside its folder stays as recorded, and
 * vkr_fit_options_match refuses it unless `given` holds another pointer: a flag given).
 * vkr_fit_options_match fails (VKR_ERR_INVALID, naming the flag and both values) when `given`
 * differs from the checkpoint's
 * options in anything that shapes the results (not --out, --plots, --cache, --device,
 * --micro-batch, --recompute, --strict, --no-cache); paths compare by the files they name. Call
 * it before vkr_fit on options from vkr_fit_checkpoint_options. */
vkr_status vkr_fit_checkpoint_options(const char *path, vkr_fit_opts *o, char **strings);
vkr_status vkr_fit_options_match(const vkr_fit_opts *given, const vkr_fit_opts *checkpoint);

/* The head vkr_fit puts on a base: cuts m after its last layer with a rank-4 output, appends
 * "global_average_pooling2d", Dense+ReLU layers of units[0..nunits) and a Dense softmax of
 * nclasses (named "dense", "dense_1", ...; Glorot-uniform from seed * 1000003 + k for the k-th),
 * and sets the class names.  *base_layers gets the base's layer count (the pooling layer's index). */
vkr_status vkr_fit_add_head(vkr_model *m, const int *units, int nunits, int nclasses, const char *const *classes,
                            uint64_t seed, int *base_layers);

#ifdef __cplusplus
}
#endif
#endif
