/* vkrun models: the model file (safetensors + graph JSON, docs/model-format.md),
 * validation, shape inference, editing helpers, and the graph runtime that runs
 * a model on a device for inference and training.
 *
 * A vkr_model is plain host data.  Its structs are public so that tools can read
 * them (names, shapes, fields); change them only through the functions below,
 * which keep the model consistent (every function that edits a model re-validates
 * it).  All functions return a vkr_status and set vkr_last_error() on failure;
 * problems with a file's content are VKR_ERR_FORMAT with a message that names the
 * file and the tensor or layer at fault. */
#ifndef VKRUN_MODEL_H
#define VKRUN_MODEL_H

#include "vkrun.h"
#include "vkrun_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VKR_MAX_DIMS 8

typedef struct {
    char *name;                      /* "<layer>.<param>" */
    int ndim;
    int64_t shape[VKR_MAX_DIMS];
    uint64_t count;                  /* elements (product of shape) */
    float *data;                     /* host copy, owned by the model */
} vkr_tensor;

/* The layer types: X(ENUM_SUFFIX, json_name), one line each, in the order of their values
 * (VKR_LAYER_INPUT = 0, VKR_LAYER_CONV2D = 1, ...; new types go at the end).  The list generates
 * vkr_layer_type below and the table of layer kinds (runtime/layers/layers.c), whose entry for
 * json_name is runtime/layers/json_name.c (docs/layers.md). */
#define VKR_LAYER_LIST(X)   \
    X(INPUT, input)         \
    X(CONV2D, conv2d)       \
    X(BATCHNORM, batchnorm) \
    X(RELU, relu)           \
    X(ADD, add)             \
    X(ZEROPAD, zeropad)     \
    X(MAXPOOL, maxpool)     \
    X(AVGPOOL, avgpool)     \
    X(GAP, gap)             \
    X(DENSE, dense)         \
    X(CONCAT, concat)       \
    X(SOFTMAX, softmax)     \
    X(DROPOUT, dropout)     \
    X(CLIP, clip)           \
    X(SIGMOID, sigmoid)     \
    X(HARD_SIGMOID, hard_sigmoid) \
    X(HARD_SWISH, hard_swish) \
    X(SWISH, swish)         \
    X(MULTIPLY, multiply)   \
    X(FLATTEN, flatten)     \
    /* new types here: one line each */

#define VKR__LAYER_ENUM(NAME, name) VKR_LAYER_##NAME,
typedef enum { VKR_LAYER_LIST(VKR__LAYER_ENUM) VKR_LAYER_TYPE_COUNT } vkr_layer_type;
#undef VKR__LAYER_ENUM

/* "conv2d", "batchnorm", ... (the graph JSON's "type" strings). */
const char *vkr_layer_type_name(vkr_layer_type t);

typedef enum { VKR_PAD_VALID = 0, VKR_PAD_SAME, VKR_PAD_EXPLICIT } vkr_pad_mode;
typedef enum { VKR_ACT_LINEAR = 0, VKR_ACT_RELU, VKR_ACT_SOFTMAX } vkr_activation;

/* Parameter slots of layer.param[]: conv2d/dense use WEIGHT and BIAS;
 * batchnorm uses GAMMA, BETA, MEAN (running_mean) and VAR (running_var). */
enum { VKR_PARAM_WEIGHT = 0, VKR_PARAM_BIAS = 1 };
enum { VKR_PARAM_GAMMA = 0, VKR_PARAM_BETA = 1, VKR_PARAM_MEAN = 2, VKR_PARAM_VAR = 3 };
#define VKR_MAX_PARAMS 4
/* Longest layer name, in bytes (docs/model-format.md); tensor names add ".<param>". */
#define VKR_MAX_NAME 255

typedef struct {
    char *name;
    vkr_layer_type type;
    int ninputs;
    char **inputs;                   /* names of earlier layers */
    int *input_idx;                  /* the same, as layer indices */
    int trainable;                   /* the file's flag (default 1) */
    /* type-specific fields (zero when not used by the type) */
    int filters;                     /* conv2d filters, dense units */
    int kernel[2];                   /* conv2d kernel, pool size [h, w] */
    int strides[2];
    int dilation[2];                 /* conv2d dilation [h, w] (default 1, 1) */
    int groups;                      /* conv2d groups (default 1) */
    int ceil_mode;                   /* maxpool / avgpool: output size rounds up (torch) */
    vkr_pad_mode pad_mode;
    int pad[4];                      /* explicit padding t, b, l, r (also zeropad) */
    int use_bias;
    vkr_activation activation;
    double epsilon, momentum;        /* batchnorm (Keras momentum convention) */
    int count_include_pad;           /* avgpool */
    double rate;                     /* dropout */
    double alpha, beta;              /* clip: min, max; hard_sigmoid: alpha, beta */
    int param[VKR_MAX_PARAMS];       /* tensor indices, -1 when absent */
    int nparam;                      /* slots used by the type (2 or 4, else 0) */
    /* filled by vkr_model_infer_shapes (done at load with the default size) */
    int out_c, out_h, out_w;         /* output [N, C, H, W]; for rank 2, H = W = 1 */
    int out_rank;                    /* 4, or 2 for [N, C] (gap, dense, ...) */
    int in_c, in_h, in_w;            /* shape of the first input */
    int rpad[4];                     /* resolved padding t, b, l, r (conv2d, pools) */
} vkr_layer;

typedef struct {
    char *key, *value;
} vkr_meta;

typedef struct {
    char *path;                      /* file it was loaded from ("" for a new model) */
    char *name, *source;
    char *input_name;
    int in_c, in_h, in_w;            /* input channels and default height / width */
    char *preprocess;                /* "caffe", "torch", "none" */
    int nclasses;
    char **classes;
    int nlayers;
    vkr_layer *layers;               /* layers[0] is the input layer */
    int ntensors;
    vkr_tensor *tensors;
    int shape_h, shape_w;            /* input size of the last shape inference */
    int nmeta;
    vkr_meta *meta;                  /* other "__metadata__" entries, kept on save */
} vkr_model;

/* ------------------------------------------------------------ files */
/* Loads and validates a model file (see docs/model-format.md), then infers
 * shapes at the model's default input size. */
vkr_status vkr_model_load(const char *path, vkr_model **out);
/* Writes the model atomically: a temporary file in the same directory, fsync,
 * rename.  On failure the previous file (if any) is untouched. */
vkr_status vkr_model_save(const vkr_model *m, const char *path);
void vkr_model_free(vkr_model *m);
/* An architecture without weights: a graph JSON file (the "vkrun_graph" document
 * of docs/model-format.md on its own) whose parameters are initialized from
 * `seed` (Glorot-uniform weights, zero biases, BN gamma 1 / beta 0 / mean 0 / var 1). */
vkr_status vkr_model_from_graph_file(const char *path, uint64_t seed, vkr_model **out);
/* vkr_model_from_graph_file for "*.json", else vkr_model_load. */
vkr_status vkr_model_open(const char *path, uint64_t seed, vkr_model **out);
/* A new model holding only its input layer (name, channels, default height/width). */
vkr_status vkr_model_new(const char *name, const char *input_name, int channels, int height, int width,
                         const char *preprocess, vkr_model **out);
/* Re-checks names, inputs, tensors and shapes (at m->shape_h x m->shape_w). */
vkr_status vkr_model_validate(vkr_model *m);

/* ------------------------------------------------------------ queries */
int vkr_model_find_layer(const vkr_model *m, const char *name);   /* -1 if absent */
int vkr_model_find_tensor(const vkr_model *m, const char *name);  /* -1 if absent */
/* Parameter slot `slot` of layer i (NULL if absent). */
vkr_tensor *vkr_model_param(const vkr_model *m, int layer, int slot);
/* Name of parameter slot `slot` for a layer type ("weight", "running_mean", ...; NULL if none). */
const char *vkr_param_slot_name(vkr_layer_type t, int slot);
/* Whether a parameter slot is trained by gradient (conv/dense weight+bias, BN gamma+beta). */
int vkr_param_slot_trainable(vkr_layer_type t, int slot);
/* Parameters of layer i: total count; *trainable gets the part counted as trainable
 * by Keras (BN running mean/var never are; nothing is when the layer's flag is false). */
uint64_t vkr_model_layer_params(const vkr_model *m, int i, uint64_t *trainable);
void vkr_model_param_totals(const vkr_model *m, uint64_t *total, uint64_t *trainable, uint64_t *non_trainable);
/* Forward FLOPs of layer i for one image at the inferred size: conv2d/dense
 * 2*MACs (+bias); other layers 0 (they are memory bound). */
double vkr_model_layer_flops(const vkr_model *m, int i);
/* Output floats per image of layer i at the inferred size. */
uint64_t vkr_model_layer_out_floats(const vkr_model *m, int i);
/* Formats a layer's output shape as "(N, C, H, W)" / "(N, C)". */
void vkr_model_shape_str(const vkr_model *m, int i, char *buf, size_t n);

/* Shape inference at input size height x width (Keras "same": out = ceil(in/s),
 * total = max((out-1)*s + k - in, 0), before = total/2).  Fails naming the
 * layer whose shape becomes invalid. */
vkr_status vkr_model_infer_shapes(vkr_model *m, int height, int width);

/* ------------------------------------------------------------ editing */
/* Appends one layer given as a graph-JSON layer object (same fields as in a
 * file; "inputs" defaults to the last layer).  New parameter tensors are
 * initialized: weights Glorot-uniform from `seed`, biases/beta/running_mean 0,
 * gamma/running_var 1. */
vkr_status vkr_model_append_json(vkr_model *m, const char *layer_json, uint64_t seed);
/* Helpers over append_json: */
vkr_status vkr_model_append_gap(vkr_model *m, const char *name);
vkr_status vkr_model_append_dense(vkr_model *m, const char *name, int units, vkr_activation act, uint64_t seed);
vkr_status vkr_model_append_dropout(vkr_model *m, const char *name, float rate);
/* Drops every layer after the named one (and their tensors); the named layer
 * becomes the output.  Layers that no longer lead to the output stay in the
 * file but are not run. */
vkr_status vkr_model_truncate_after(vkr_model *m, const char *layer);
vkr_status vkr_model_set_classes(vkr_model *m, int n, const char *const *names);
/* Extra "__metadata__" strings kept in the file (e.g. a checkpoint's state).
 * value NULL removes the key; "format" and "vkrun_graph" are reserved. */
vkr_status vkr_model_set_meta(vkr_model *m, const char *key, const char *value);
const char *vkr_model_get_meta(const vkr_model *m, const char *key); /* NULL if absent */
/* Sets the trainable flag of layers [first, last) (clamped to the model). */
void vkr_model_set_trainable(vkr_model *m, int first, int last, int trainable);

/* ------------------------------------------------------------ graph runtime */
typedef struct vkr_graph vkr_graph;

typedef enum { VKR_OPTIM_SGD = 0, VKR_OPTIM_ADAM = 1 } vkr_optimizer;
typedef enum {
    VKR_LOSS_AUTO = 0,      /* softmax_ce when the output is a softmax (dense or layer), else DOT */
    VKR_LOSS_SOFTMAX_CE,    /* categorical cross-entropy on the final softmax, targets one-hot [N, K] */
    VKR_LOSS_DOT,           /* L = sum(output * targets), targets shaped like the output: the
                               gradient seed for tests and benchmarks (loss value not computed) */
} vkr_loss_kind;

typedef struct {
    int batch;              /* largest n per call (default 1): the batch of one optimizer step */
    int micro_batch;        /* images per submission: 0 = the memory planner's choice (the largest that
                               fits the device budget with a safety margin), N = forced (<= batch) */
    int recompute;          /* training: keep only block-boundary activations and recompute inside a
                               block before its backward: 1 = on, -1 = off, 0 = when micro-batches
                               alone would be smaller than 8 images and recomputation allows larger */
    int height, width;      /* input size (0: the model's default) */
    int training;           /* allocate gradients, optimizer state, keep activations */
    int freeze;             /* layers [0, freeze) are frozen: no parameter gradients, BN in inference mode */
    int bn_train;           /* trainable BatchNorm uses batch statistics (and updates running stats) */
    vkr_optimizer optimizer;
    vkr_optim_params optim; /* lr, momentum, ... (step is managed by the graph) */
    vkr_loss_kind loss;
    const char *output;     /* default output layer of forward (NULL: the last layer) */
    int timing;             /* record GPU timestamps per layer */
    int no_fuse;            /* 1: run every layer as written: no inference BatchNorm folded into the frozen
                               conv before it, no ReLU in the GEMM / add epilogue (also VKRUN_NO_FOLD=1) */
    /* dropout: 0 (default), every dropout layer is the identity, as in inference; 1: in training
     * steps (train_step, backward_only) the dropout layers from index dropout_from on drop with their
     * rate (vkr_dropout: inverted, the mask a hash of dropout_seed, the layer's name, the optimizer
     * step and the element's index in the call's batch, so micro-batches and recomputation see the
     * mask of the whole batch) */
    int dropout;
    int dropout_from;
    uint64_t dropout_seed;
    /* dynamic loss scaling (the fp16 path, vkr_context_set_precision; as Keras's LossScaleOptimizer
     * and PyTorch's GradScaler): 0 off; 1: train_step multiplies the loss gradient by the scale S,
     * then checks every trained gradient for inf / NaN (vkr_nonfinite).  A step with any skips the
     * update (the optimizer's step counter too) and halves S (backoff 0.5); otherwise the gradients
     * are divided by S and applied, and after loss_scale_interval clean steps in a row S doubles
     * (growth 2).  Defaults (0): S = 2^15 (Keras; GradScaler starts at 2^16), interval 2000 (both). */
    int loss_scaling;
    double loss_scale_init;
    int loss_scale_interval;
} vkr_graph_opts;

typedef struct {
    uint64_t weights;       /* parameters (+ BN running stats) */
    uint64_t train_state;   /* gradients, optimizer moments, BN saves, loss buffers */
    uint64_t activations;   /* planned activation/gradient buffers (after reuse) */
    uint64_t naive;         /* the same without reuse (one buffer per value) */
    uint64_t input;         /* input (+ targets) buffers */
    uint64_t total;         /* weights + train_state + activations + input (+ scratch) */
    uint64_t scratch;       /* split-K partials of the weight/bias gradients: one buffer, the
                               largest any layer uses on the device (0 from vkr_graph_plan) */
} vkr_graph_memory;

/* Plans the buffers of a graph without a device: bytes it would allocate (at
 * opts.micro_batch when set, else at opts.batch). */
vkr_status vkr_graph_plan(vkr_model *m, const vkr_graph_opts *opts, vkr_graph_memory *mem);
/* Creates the graph: uploads the weights once, plans and allocates the buffers.
 *
 * Memory plan: a call of n <= batch images runs as micro-batches of at most
 * vkr_graph_micro_batch(g) images, the largest that fits in 90% of the device's
 * free budget (VK_EXT_memory_budget where the device has it, else the heap size
 * minus what this context allocated), with every buffer within
 * maxMemoryAllocationSize and one image of every tensor within
 * maxStorageBufferRange (opts.micro_batch forces the size).  Training
 * accumulates the weight gradients of the micro-batches on the device and
 * applies one optimizer update per call: with BatchNorm in inference mode
 * the step equals the whole-batch step up to summation order.  With bn_train,
 * batch statistics are those of each micro-batch; the running statistics are
 * updated once per micro-batch with momenta chosen so that a step moves them
 * by (1 - momentum) toward the size-weighted mean of the micro-batch statistics
 * (the batch mean exactly; the variance as the mean of the micro-batch variances).
 * An allocation or submission that fails with out-of-memory re-plans with half
 * the micro-batch and runs the call again from its start (a forced size is kept
 * at creation).  Fails with VKR_ERR_OUT_OF_MEMORY naming the bytes needed when
 * not even one image fits.  The model must outlive the graph; its shapes are
 * re-inferred at the graph's size. */
vkr_status vkr_graph_create(vkr_context *ctx, vkr_model *m, const vkr_graph_opts *opts, vkr_graph **out);
void vkr_graph_destroy(vkr_graph *g);
/* Memory figures at the current micro-batch. */
vkr_status vkr_graph_memory_info(const vkr_graph *g, vkr_graph_memory *mem);
int vkr_graph_micro_batch(const vkr_graph *g);  /* images per submission now */
int vkr_graph_recoveries(const vkr_graph *g);   /* re-plans after out-of-memory so far */
/* One line for the user: weights, activations, training state, input, micro-batch
 * size and count, device heap, budget and the part the planner used. */
void vkr_graph_plan_line(const vkr_graph *g, char *buf, size_t n);

/* Inference (BN with running stats): input [n, C, H, W] (NCHW, preprocessed),
 * n <= batch; writes the output of `layer` (NULL: opts.output / last layer),
 * n * vkr_graph_out_floats(g, layer) floats.  Asking for another layer than the
 * previous call replans the inference buffers. */
vkr_status vkr_graph_forward(vkr_graph *g, const float *input, int n, const char *layer, float *out);
uint64_t vkr_graph_out_floats(const vkr_graph *g, const char *layer); /* per image; 0 if unknown */
/* Training (graph created with training=1): forward, loss, backward, optimizer
 * step in one submission.  targets: [n, K] one-hot (softmax_ce) or shaped like
 * the output (DOT).  loss = mean loss, correct = rows whose argmax matches
 * (either may be NULL; with DOT they are NaN / 0). */
vkr_status vkr_graph_train_step(vkr_graph *g, const float *input, const float *targets, int n, float *loss,
                                int *correct);
/* Forward in inference mode + loss, no update. */
vkr_status vkr_graph_eval_batch(vkr_graph *g, const float *input, const float *targets, int n, float *loss,
                                int *correct);
/* Like train_step without the optimizer update: gradients stay readable with
 * vkr_graph_download_grad (for tests; multiplied by the loss scale under loss scaling). */
vkr_status vkr_graph_backward_only(vkr_graph *g, const float *input, const float *targets, int n, float *loss,
                                   int *correct);
/* Dynamic loss scaling (vkr_graph_opts.loss_scaling): the scale the next step uses, the steps
 * skipped for inf / NaN gradients so far, and the clean steps since the scale last changed. */
typedef struct {
    double scale;
    long skipped;
    int clean;
} vkr_loss_scale_state;
void vkr_graph_loss_scale(const vkr_graph *g, vkr_loss_scale_state *out);
/* Copies device weights (and BN running stats) back into the model's tensors. */
vkr_status vkr_graph_download_weights(vkr_graph *g);
/* Re-uploads the model's tensors (after editing them on the host). */
vkr_status vkr_graph_upload_weights(vkr_graph *g);
/* Gradient of a trainable tensor from the last train step / backward_only. */
vkr_status vkr_graph_download_grad(vkr_graph *g, const char *tensor, float *out);
/* Optimizer state (step counter, SGD velocities / Adam moments of every trained
 * tensor) to a safetensors file, written atomically, and back.  Loading checks
 * that the optimizer and the trained tensors match this graph. */
vkr_status vkr_graph_save_optimizer(vkr_graph *g, const char *path);
vkr_status vkr_graph_load_optimizer(vkr_graph *g, const char *path);
void vkr_graph_set_lr(vkr_graph *g, float lr);

/* Data-parallel steps (runtime/train/fit_dp.c): vkr_graph_backward_only on this rank's share,
 * the gradients read, summed over the ranks and written back, then vkr_graph_apply_update.
 * The trained tensors' gradients are numbered in backward order (the last layer's first: they
 * are ready first); each has vkr_graph_grad_floats(g, i) floats. */
int vkr_graph_grad_count(const vkr_graph *g);
uint64_t vkr_graph_grad_floats(const vkr_graph *g, int i);
vkr_status vkr_graph_grad_read(vkr_graph *g, int i, float *out);
vkr_status vkr_graph_grad_write(vkr_graph *g, int i, const float *in);
/* One optimizer update with the gradients on the device (the step counter advances). */
vkr_status vkr_graph_apply_update(vkr_graph *g);
/* Overlap of the gradient sums with the backward pass: with a hook set, the backward pass of a
 * call's last micro-batch (vkr_graph_backward_only) is submitted in segments.  After recording a
 * trained layer's backward, cut(user, k) is asked (gradients [0, k) in backward order are then
 * final); when it returns 1 the segment is submitted, and once it finished ready(user, k) may
 * read those gradients (vkr_graph_grad_read) and start their sums, while the device runs the next
 * segment; progress(user) is called every ~0.2 ms while the device runs (MPI progress).  Not
 * with opts.timing.  NULL removes the hook. */
typedef struct {
    void *user;
    int (*cut)(void *user, int k);
    vkr_status (*ready)(void *user, int k);
    vkr_status (*progress)(void *user);
} vkr_graph_grad_hook;
void vkr_graph_set_grad_hook(vkr_graph *g, const vkr_graph_grad_hook *hook);
/* Synchronized BatchNorm (data-parallel --sync-bn): with an exchange set, every BatchNorm in
 * batch-statistics mode of a training call submits the stream in its forward after its local
 * statistics and in its backward after its local sums, waits, and calls
 * exchange(user, backward, c, &count, a, b): forward a = mean, b = M2 (sum of squared deviations)
 * of this rank's batch per channel, count its elements per channel, all to be replaced by those
 * of the global batch; backward a = sum dout, b = sum dout*xhat of this rank, to be replaced by
 * the sums the input gradient uses, count by the global count.  dgamma / dbeta keep this
 * rank's own sums.  The calls come in layer order (forward) then reverse layer order (backward),
 * the same on every rank.  Not with micro-batches, recomputation or opts.timing (the call fails).
 * NULL removes it. */
typedef struct {
    void *user;
    vkr_status (*exchange)(void *user, int backward, int c, double *count, float *a, float *b);
} vkr_graph_bn_sync;
vkr_status vkr_graph_set_bn_sync(vkr_graph *g, const vkr_graph_bn_sync *sync);
/* A rank without images in a step: the exchanges its training call would make, with count 0 and
 * zeros (the results are dropped). */
vkr_status vkr_graph_bn_sync_idle(vkr_graph *g);
/* Index of this rank's first image in the global batch: dropout masks are keyed by it, so that
 * N ranks drop what one process would. */
void vkr_graph_set_first_image(vkr_graph *g, int first);
uint32_t vkr_graph_step(const vkr_graph *g);  /* optimizer steps taken */

/* Per-layer GPU time of the last submission (opts.timing), in ms; 0 for layers
 * not run.  Returns VKR_ERR_INVALID when timing is off. */
vkr_status vkr_graph_layer_times(const vkr_graph *g, double *forward_ms, double *backward_ms);
/* Time of the optimizer updates and of the loss in the last submission. */
double vkr_graph_update_ms(const vkr_graph *g);
/* FLOPs per image of layer j at the graph's size (conv2d/dense: 2*MACs); *backward
 * gets those of its backward in the training plan (dinput and/or dweight; 0 if not run). */
double vkr_graph_layer_flops(const vkr_graph *g, int j, double *backward);
/* Shape of layer j's output at the graph's size (rank 4: [C, H, W]; rank 2: H = W = 1). */
void vkr_graph_layer_shape(const vkr_graph *g, int j, int *c, int *h, int *w, int *rank);
/* Dispatches and barriers of the last submission. */
void vkr_graph_last_counts(const vkr_graph *g, uint32_t *dispatches, uint32_t *barriers);

#ifdef __cplusplus
}
#endif
#endif
