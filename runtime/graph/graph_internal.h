/* Internal structures of the graph runtime (runtime/graph*.c). */
#ifndef VKRUN_GRAPH_INTERNAL_H
#define VKRUN_GRAPH_INTERNAL_H

#include "layers/layer.h"
#include "model/model_internal.h"

/* A planned buffer: one value, gradient or scratch, alive over steps [start, end]. */
typedef struct {
    uint64_t floats;
    int start, end;
    int slot;
} vkr__vbuf;

/* Timeline: forward of layer j at step j, loss at L, backward of j at 2L - j,
 * optimizer updates at 2L + 1 (L = number of layers). */
typedef struct {
    int built;
    int target;          /* requested output layer */
    int loss_layer;      /* loss plans: layer whose value is the logits / seeded output */
    int with_loss, with_backward;
    int nvbufs, cap_vbufs;
    vkr__vbuf *vbufs;    /* planned buffers (values, gradients, scratch) */
    int nslots;
    uint64_t *slot_floats;
    vkr_buffer **slot_buf;
    char *live;          /* the layer's value is needed by the target */
    char *run_backward;  /* the layer's backward runs (live, and its output depends on a trained parameter) */
    char *inplace;       /* the layer writes over its input's value (a ReLU, its input's only consumer) */
    int *value;          /* value vbuf of each layer (-1: the graph input buffer) */
    int *value_grad;     /* vbuf of the gradient of each layer's value (-1: none) */
    int *argmax;         /* maxpool argmax vbuf */
    int *logits;         /* inference dense+softmax: logits scratch vbuf */
    int **grad_scratch;  /* [layer][input]: scratch for accumulated input gradients (-1: none) */
    char **first;        /* [layer][input]: this backward writes the input gradient first */
    /* recomputation (graph_plan.c plan_recompute): values and argmax as backward reads them,
     * the first recomputed layer of the segment a cut ends (-1: none), recomputed layers */
    int *value_bw, *argmax_bw, *recompute_from;
    char *recomputed;
    char *fold;          /* BatchNorm done in its conv's epilogue in this plan: no dispatch, value aliases the conv's */
    char *fused;         /* ReLU done by its producer's epilogue (forward skipped, value in place) */
    char *epi_relu;      /* conv2d / dense / add: ReLU in the epilogue (for a fused ReLU consumer) */
    uint64_t naive_floats, planned_floats;
} vkr__plan;

struct vkr_graph {
    vkr_context *ctx;    /* NULL while only planning */
    vkr_model *m;
    vkr_graph_opts o;
    int nlayers;
    vkr_layer *layers;   /* shallow copy of the model's layers, shapes at the graph's size */
    int batch, h, w;     /* batch: images per submission (the micro-batch; buffers are sized for it) */
    int step_batch;      /* images per call (opts.batch): a call runs ceil(n / batch) micro-batches */
    /* the micro-batch being recorded: its images, and the images of the call after it */
    int mb_n, mb_rest, call_n;
    vkr_graph_grad_hook hook; /* data-parallel: backward in segments (graph_dp.c; hook.cut NULL: none) */
    vkr_graph_bn_sync bn_sync; /* data-parallel --sync-bn (graph_dp.c; exchange NULL: none) */
    vkr_bn_sync bn_lsync;      /* what the BatchNorm kind calls (layers/layer.h), tmp buffers of bn_maxc */
    float *bn_host;            /* 2 * bn_maxc floats */
    int bn_maxc;
    int first_image;     /* data-parallel: index of this rank's first image in the global batch (dropout) */
    int accumulate;      /* weight gradients go to acc_w / acc_b and are added to grad */
    vkr_buffer *acc_w, *acc_b; /* accumulation scratch (largest trained slot-0 / slot-1 tensor) */
    uint64_t acc_floats[2];
    vkr_memory_budget budget; /* at planning time */
    uint64_t usable;     /* the part of it the planner used (safety margin off) */
    int recoveries;      /* re-plans after running out of memory */
    int recompute;       /* training plans recompute activations inside blocks */
    int target;          /* default output / loss layer */
    vkr_loss_kind loss;
    int classes;         /* K of softmax_ce */
    uint64_t target_floats;
    char *trained;       /* [layer]: its parameters are trained in this graph */
    char *batch_stats;   /* [layer]: BatchNorm in batch-statistics mode during training */
    char *needs_grad;    /* [layer]: its output depends on a trained parameter (its backward may run) */
    vkr_buffer *(*param)[VKR_MAX_PARAMS];   /* [layer][slot]: the parameters on the device */
    vkr_buffer *(*grad)[VKR_MAX_PARAMS];    /* [layer][slot]: their gradients (trained slots only) */
    vkr_buffer *(*moment1)[VKR_MAX_PARAMS]; /* [layer][slot]: SGD velocity / Adam first moment */
    vkr_buffer *(*moment2)[VKR_MAX_PARAMS]; /* [layer][slot]: Adam second moment (NULL with SGD) */
    vkr_buffer **save_mean, **save_invstd;  /* [layer]: batch-statistics BatchNorm: the forward's mean, 1/std */
    vkr_buffer *input, *targets, *probs, *result;
    vkr__plan main, infer;   /* main: the training/loss plan (training graphs) or the inference plan */
    vkr_cmd *cmd;
    vkr_buffer *scratch; /* lent to cmd: split-K partials (vkr__graph_scratch_bytes) */
    int cmd_fresh;
    uint32_t step;
    double *fwd_ms, *bwd_ms, upd_ms;
    uint32_t *fwd_ts, *bwd_ts; /* [2*layer]: first/last timestamp index of the layer's forward / backward */
    uint32_t upd_ts[2];  /* first/last timestamp index of the optimizer updates */
    uint32_t last_dispatches, last_barriers;
    vkr_graph_memory mem;
    /* inference BatchNorm folded into the preceding frozen conv (graph_fold.c) */
    int *fold_bn;        /* conv j: the BatchNorm folded into it (-1: none) */
    int *fold_conv;      /* BatchNorm b: the conv it is folded into (-1: none) */
    vkr_buffer **fold_aff;  /* conv j: [4][K] conv bias (or 0), mean, gamma / sqrt(var + eps), beta */
    /* host transfers recorded into the step's submission (graph_stage.c) */
    int staged;
    vkr_buffer *stage_in, *stage_tg, *stage_res;
    /* dynamic loss scaling (graph_scale.c) */
    double ls_scale;
    long ls_skipped;
    int ls_clean;
    vkr_buffer *ls_flag; /* the nonfinite flag of the gradient check */
};

/* graph_size.c: a zero-filled device buffer of `floats` floats (at least one). */
vkr_status vkr__zeros(vkr_context *ctx, uint64_t floats, vkr_buffer **b);
/* Builds the main plan, the input buffers and the accumulation scratch at micro-batch mb
 * (and the memory figures); allocates them when the graph has a device. */
vkr_status vkr__graph_size(vkr_graph *g, int mb);
/* Frees what vkr__graph_size allocated. */
void vkr__graph_unsize(vkr_graph *g);
/* Memory figures at micro-batch mb (builds and frees a plan); *largest: largest buffer. */
vkr_status vkr__graph_measure(vkr_graph *g, int mb, vkr_graph_memory *mem, uint64_t *largest);
/* The memory planner: the micro-batch to use (opts.micro_batch, else the largest that fits). */
vkr_status vkr__graph_choose(vkr_graph *g, int *mb);
/* Largest scratch any trained conv / dense backward of plan P uses at micro-batch mb on g->ctx
 * (bytes; 0 without a device). */
uint64_t vkr__graph_scratch_bytes(const vkr_graph *g, const vkr__plan *P, int mb);
/* graph_fold.c: BatchNorm folding and ReLU epilogues ("less work per step").
 * setup: decides which inference BatchNorms fold into their conv (frozen conv and BN,
 * the conv's only consumer, linear activation), unless opts.no_fuse or VKRUN_NO_FOLD=1. */
vkr_status vkr__fold_setup(vkr_graph *g);
void vkr__fold_free(vkr_graph *g);
/* Uploads each folded conv's epilogue constants (conv bias, mean, gamma / sqrt(var + eps) computed
 * in double, beta) from the model's tensors (graph creation, vkr_graph_upload_weights). */
vkr_status vkr__fold_upload(vkr_graph *g);
/* Plan hooks: marks folded BNs (after liveness, backward); fuses ReLU j into its producer p's epilogue. */
void vkr__plan_fold(const vkr_graph *g, vkr__plan *P);
void vkr__plan_fuse_relu(const vkr_graph *g, vkr__plan *P, int j, int p);

/* graph_stage.c: input / targets in and the loss result out as copies inside the step's
 * command buffer when the graph's buffers are not host-visible (else plain memcpys). */
void vkr__graph_force_staging(int on); /* tests: stage even when mapped (graphs created after) */
vkr_status vkr__stage_create(vkr_graph *g);
void vkr__stage_free(vkr_graph *g);
/* After the stream is reset: uploads or records the copies (targets may be NULL). */
vkr_status vkr__stage_in(vkr_graph *g, const float *input, uint64_t in_bytes, const float *targets, uint64_t tg_bytes);
vkr_status vkr__stage_result_record(vkr_graph *g, uint64_t bytes);   /* before submit */
vkr_status vkr__stage_result_read(vkr_graph *g, void *dst, uint64_t bytes); /* after it */

vkr_status vkr__plan_build(vkr_graph *g, vkr__plan *P, int target, int with_loss, int with_backward);
/* Layer j of plan P drops (opts.dropout, a training plan, a .train_drops kind with a rate > 0,
 * j >= opts.dropout_from): it has its own value buffer, and forward / backward apply the mask. */
int vkr__drops(const vkr_graph *g, const vkr__plan *P, int j);
/* Layer j's planner alias: .alias_input kinds, unless they drop. */
int vkr__aliases(const vkr_graph *g, const vkr__plan *P, int j);
void vkr__plan_free(vkr__plan *P);
vkr_status vkr__plan_alloc(vkr_graph *g, vkr__plan *P);
/* What one submission records; ordered: each mode does what the one before it does, and more. */
typedef enum {
    VKR__RUN_INFER = 0, /* inference forward: the target layer's value downloaded to out */
    VKR__RUN_EVAL,      /* inference forward + loss */
    VKR__RUN_GRADS,     /* training forward + loss + backward (gradients left on the device) */
    VKR__RUN_STEP,      /* VKR__RUN_GRADS + the optimizer update */
} vkr__run_mode;
/* graph_exec.c: records the optimizer update of every trained tensor into g->cmd (step + 1). */
vkr_status vkr__graph_record_updates(vkr_graph *g);
/* graph_scale.c: a train step under dynamic loss scaling (call: the micro-batched run of a mode). */
typedef vkr_status (*vkr__call_fn)(vkr_graph *g, const float *input, const float *targets, int n, float *loss,
                                   int *correct);
vkr_status vkr__graph_scaled_step(vkr_graph *g, vkr__call_fn grads, const float *input, const float *targets, int n,
                                  float *loss, int *correct);
/* The optimizer update alone, one submission (data-parallel steps, graph_dp.c). */
vkr_status vkr__graph_update(vkr_graph *g);
vkr_status vkr__graph_run(vkr_graph *g, vkr__plan *P, const float *input, const float *targets, int n,
                          vkr__run_mode mode, float *loss, int *correct, float *out);

#endif
