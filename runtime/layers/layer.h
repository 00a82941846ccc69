/* Layer kinds: everything that is specific to one layer type, in one table entry.
 *
 * Each type is one file, runtime/layers/<type>.c, defining `const vkr_layer_kind
 * vkr_layer_<type>`; the list of types is VKR_LAYER_LIST in include/vkrun_model.h, which
 * generates both the public vkr_layer_type values and the table (layers.c).  The model
 * (parse, save, shape inference, initializers), the graph runtime (planner, recording) and
 * the tests' double-precision reference evaluation dispatch through the table; generic code
 * does not name layer types.  docs/layers.md: adding a layer type.
 *
 * Arrows: model/ and graph/ call into layers/; layers/ calls ops/, ref/ and core/ only. */
#ifndef VKRUN_LAYERS_LAYER_H
#define VKRUN_LAYERS_LAYER_H

#include <stdint.h>

#include "core/util.h"
#include "vkrun_model.h"
#include "vkrun_ops.h"

typedef struct cJSON cJSON;

/* Largest number of inputs the graph runtime records for one layer (concat). */
#define VKR_LAYER_MAX_INPUTS 64

/* Shape inference of one layer (runtime/model/model_shapes.c fills it). */
/* Synchronized BatchNorm (data-parallel training, --sync-bn): between the two halves of a
 * batch-statistics pass the kind calls exchange(graph, backward, c, count, a, b, out_a, out_b),
 * which submits what was recorded, waits, replaces the per-channel values in a, b (c floats:
 * forward mean and M2, backward sum dout and sum dout*xhat) with their combination over the
 * ranks, written to out_a, out_b, and *count (elements per channel) with the count over the
 * ranks, and resets the stream for the rest of the recording.  tmp: 4 buffers of the largest
 * c floats (backward: 0, 1 for the combined sums; 2, 3 for the local sums without dgamma/dbeta). */
typedef struct vkr_bn_sync {
    void *graph;
    vkr_status (*exchange)(void *graph, int backward, int c, double *count, vkr_buffer *a, vkr_buffer *b,
                           vkr_buffer *out_a, vkr_buffer *out_b);
    vkr_buffer *tmp[4];
} vkr_bn_sync;

typedef struct {
    const char *where;         /* message prefix: "<file>: layer 3 \"c1\" (conv2d)" */
    const vkr_layer *layers;   /* the model's layers: input k is layers[L->input_idx[k]] */
    const vkr_layer *x;        /* input 0 (NULL for the input layer) */
    int64_t c, h, w;           /* in: input 0's output shape (the model input for the input layer); out: the layer's */
    int rank;                  /* in / out: 4 for [N, C, H, W], 2 for [N, C] (H = W = 1) */
    int pndim[VKR_MAX_PARAMS]; /* out: shape of each parameter slot (checked or created by the caller) */
    int64_t pshape[VKR_MAX_PARAMS][4];
} vkr_layer_infer;

/* Forward recording of one layer into the graph's command stream (graph_exec.c fills it). */
typedef struct {
    vkr_cmd *cmd;
    const vkr_layer *L;
    const vkr_layer *layers;   /* the graph's layers (inputs' shapes) */
    int n;                     /* images in this submission */
    vkr_buffer *out;           /* the layer's value */
    vkr_buffer *in[VKR_LAYER_MAX_INPUTS]; /* the inputs' values */
    vkr_buffer *const *param;  /* [VKR_MAX_PARAMS] on the device */
    vkr_buffer *aux;           /* .argmax kinds: the index buffer; dense with softmax in inference: logits scratch */
    vkr_buffer *folded;        /* conv2d: constants of the BatchNorm folded into its epilogue (NULL: none) */
    int relu;                  /* apply a ReLU in the epilogue (fused activation or fused ReLU consumer) */
    int batch_stats;           /* .batch_stats kinds: use (and update) batch statistics */
    float momentum;            /* BatchNorm: running-statistics momentum of this micro-batch */
    vkr_buffer *save_mean, *save_invstd; /* BatchNorm in batch-statistics mode */
    const vkr_dropout_key *drop; /* .train_drops kinds in a training step with dropout on (NULL: identity) */
    uint64_t first_image;      /* the first image of this submission in the call's batch */
    const struct vkr_bn_sync *sync; /* BatchNorm with batch statistics: synchronized over ranks (NULL: not) */
} vkr_layer_fwd;

/* Backward recording of one layer (graph_exec.c fills it). */
typedef struct {
    vkr_cmd *cmd;
    const vkr_layer *L;
    const vkr_layer *layers;
    int n;
    vkr_buffer *dout;          /* gradient of the layer's value (a fused activation's backward may overwrite it) */
    vkr_buffer *out;           /* the layer's value as backward reads it */
    vkr_buffer *in;            /* input 0's value as backward reads it */
    vkr_buffer *in1;           /* input 1's value (kinds with bwd_reads_input1; else NULL) */
    vkr_buffer *const *param;
    vkr_buffer *dparam[2];     /* gradients of parameter slots 0 and 1 (NULL: not trained) */
    vkr_buffer *din[VKR_LAYER_MAX_INPUTS]; /* where input k's gradient goes (NULL: not needed) */
    char din_add[VKR_LAYER_MAX_INPUTS];    /* .pass_grad kinds: add into din[k] (an earlier backward wrote it) */
    vkr_buffer *aux;           /* .argmax kinds: the forward's index buffer */
    int batch_stats;
    vkr_buffer *save_mean, *save_invstd;
    const vkr_dropout_key *drop; /* as in vkr_layer_fwd */
    uint64_t first_image;
    const struct vkr_bn_sync *sync; /* as in vkr_layer_fwd */
} vkr_layer_bwd;

/* The plain-C double reference of one layer (the tests' evaluation; runtime/ref/ does the math). */
typedef struct {
    const vkr_layer *L;
    const vkr_layer *layers;
    int n;
    int batch_stats;           /* BatchNorm: batch statistics */
    double *const *param;      /* [VKR_MAX_PARAMS] (NULL where absent) */
    const double *const *in;   /* [ninputs] the inputs' values (the input layer: the images, in[0]) */
    double *out;               /* the value */
    int32_t *argmax;           /* .argmax kinds: written by forward, read by backward */
    /* backward only */
    double *dout;              /* gradient of the value (a fused activation's backward may overwrite it) */
    double *const *din;        /* [ninputs] zeroed: the kind writes input k's share of the gradient (the
                                  caller adds it to that input's gradient) */
    double *const *dparam;     /* [VKR_MAX_PARAMS] zeroed: gradients of the parameters (NULL where absent) */
} vkr_layer_ref;

/* How a parameter slot is initialized for a new model (vkr_model_append_json). */
typedef enum { VKR_INIT_ZERO = 0, VKR_INIT_ONE, VKR_INIT_GLOROT } vkr_layer_init;

/* When a layer's backward reads the value of its input 0. */
typedef enum { VKR_READS_NEVER = 0, VKR_READS_ALWAYS, VKR_READS_WHEN_TRAINED } vkr_layer_reads;

typedef struct vkr_layer_kind {
    const char *name;                            /* the graph JSON's "type" */
    int min_inputs, max_inputs;                  /* 0, 0: a graph input */
    int nparam;                                  /* parameter slots, tensors "<layer>.<slot name>" */
    const char *param_names[VKR_MAX_PARAMS];
    vkr_layer_init param_init[VKR_MAX_PARAMS];
    unsigned trainable_slots;                    /* bit k: slot k is trained by gradient */
    unsigned has_bias_slot : 1;                  /* slot VKR_PARAM_BIAS exists only with use_bias */
    unsigned needs_rank4 : 1;                    /* input must be [N, C, H, W] */
    /* planner */
    unsigned graph_input : 1;                    /* its value is the graph's input buffer */
    unsigned alias_input : 1;                    /* its value is input 0's, unchanged (no buffer, no dispatch) */
    unsigned train_drops : 1;                    /* dropout: with opts.dropout, a real op in training steps (its
                                                    own buffer; not an alias then: vkr__drops) */
    unsigned in_place : 1;                       /* elementwise: may write over input 0 when it is its only consumer */
    unsigned pass_grad : 1;                      /* backward adds dout into each din[k] itself (no scratch) */
    unsigned argmax : 1;                         /* forward writes an index buffer shaped like the output */
    unsigned relu_epilogue : 1;                  /* can apply a ReLU in its epilogue when its activation is linear */
    unsigned batch_stats : 1;                    /* has a batch-statistics training mode (opts.bn_train) */
    unsigned softmax : 1;                        /* its value is softmax(input 0): softmax_ce takes input 0 as logits */
    unsigned bwd_reads_output : 1;               /* backward reads the layer's own value */
    vkr_layer_reads bwd_reads_input;             /* backward reads input 0's value */
    unsigned bwd_reads_input1 : 1;               /* backward reads input 1's value as well (multiply) */
    /* model */
    vkr_status (*parse)(const cJSON *obj, vkr_layer *L, const char *where); /* type-specific fields */
    int (*to_json)(const vkr_layer *L, cJSON *o); /* the same, written: 0, or nonzero when an allocation failed */
    vkr_status (*infer)(vkr_layer *L, vkr_layer_infer *I);                  /* NULL: shape unchanged */
    double (*flops)(const vkr_layer *L);                                     /* NULL: 0 (memory bound) */
    /* graph runtime: NULL forward records nothing; NULL backward is an error (not trainable through) */
    vkr_status (*forward)(const vkr_layer_fwd *f);
    vkr_status (*backward)(const vkr_layer_bwd *b);
    /* split-K scratch bytes of a trained backward at n images (NULL: none) */
    uint64_t (*bwd_scratch)(const vkr_context *ctx, const vkr_layer *L, int n);
    /* reference (tests): forward writes out (and argmax); backward writes din / dparam (NULL: nothing) */
    void (*ref_forward)(const vkr_layer_ref *r);
    void (*ref_backward)(const vkr_layer_ref *r);
} vkr_layer_kind;

/* The kind of a layer type, NULL when t is not one. */
const vkr_layer_kind *vkr__layer_kind(vkr_layer_type t);
/* The kind named `name` (the JSON "type"), NULL if none; *type gets its value. */
const vkr_layer_kind *vkr__layer_kind_find(const char *name, vkr_layer_type *type);
/* The layer computes a softmax: a softmax layer, or a dense layer with softmax activation. */
int vkr__layer_is_softmax(const vkr_layer *L);
/* Output floats per image. */
static inline uint64_t vkr__layer_out_floats(const vkr_layer *L) { return (uint64_t)L->out_c * L->out_h * L->out_w; }

/* ------------------------------------------------------------ layer_json.c, layer_fields.c */
/* Parses one layer object of the graph JSON into *L (zeroed first); `where` prefixes
 * messages ("file.vkr: layer 12"). */
vkr_status vkr__parse_layer(const cJSON *obj, vkr_layer *L, const char *where);
void vkr__layer_clear(vkr_layer *L);
/* The layer as a graph-JSON object (caller frees with cJSON_Delete). */
cJSON *vkr__layer_to_json(const vkr_layer *L);
/* Field readers for parse functions: VKR_ERR_FORMAT with `where` and the field on error. */
vkr_status vkr__json_fail(const char *where, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
vkr_status vkr__json_int(const cJSON *o, const char *key, int def, int required, long long lo, long long hi, int *out,
                         const char *where);
vkr_status vkr__json_num(const cJSON *o, const char *key, double def, double lo, double hi, double *out,
                         const char *where);
vkr_status vkr__json_bool(const cJSON *o, const char *key, int def, int *out, const char *where);
/* int or [a, b] (both >= lo); def NULL: required. */
vkr_status vkr__json_pair(const cJSON *o, const char *key, const int *def, int lo, int out[2], const char *where);
/* n or [t, b, l, r]. */
vkr_status vkr__json_pad4(const cJSON *v, int out[4], const char *key, const char *where);
/* "padding": "valid" (default), "same" or [t, b, l, r] into pad_mode / pad. */
vkr_status vkr__json_padding(const cJSON *o, vkr_layer *L, const char *where);
vkr_status vkr__json_activation(const cJSON *o, vkr_layer *L, int allow_softmax, const char *where);
/* Writers of fields: 0, or nonzero when an allocation failed (the field is then missing). */
int vkr__json_add_pair(cJSON *o, const char *key, const int v[2]);
int vkr__json_add_padding(cJSON *o, const vkr_layer *L);
int vkr__json_add_activation(cJSON *o, const vkr_layer *L);
int vkr__json_add_num(cJSON *o, const char *key, double v);
int vkr__json_add_bool(cJSON *o, const char *key, int v);

/* ------------------------------------------------------------ layer_common.c: shared by kinds */
/* Resolves L->rpad from pad_mode (Keras "same") and computes the window output size. */
vkr_status vkr__infer_window(vkr_layer *L, const vkr_layer_infer *I, int64_t *oh, int64_t *ow);
/* Inputs of add / concat: same H, W, rank (and C when same_c); *csum gets the channel sum. */
vkr_status vkr__infer_inputs_match(const vkr_layer *L, const vkr_layer_infer *I, int same_c, int64_t *csum);
vkr_conv2d_shape vkr__conv_shape(const vkr_layer *L, int n);
vkr_pool_shape vkr__pool_shape(const vkr_layer *L, int n);
/* Pools (maxpool, avgpool): "pool", "strides", "padding". */
vkr_status vkr__pool_parse(const cJSON *obj, vkr_layer *L, const char *where);
int vkr__pool_to_json(const vkr_layer *L, cJSON *o);
vkr_status vkr__pool_infer(vkr_layer *L, vkr_layer_infer *I);
/* Pass-through gradients (add, dropout): dout copied or added into each din[k]. */
vkr_status vkr__pass_grad(const vkr_layer_bwd *b);
/* References shared by kinds: out = in[0] (input, dropout); din[0] += dout. */
void vkr__ref_copy_forward(const vkr_layer_ref *r);
void vkr__ref_pass_backward(const vkr_layer_ref *r);

#endif
