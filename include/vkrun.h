/* vkrun — deep-learning runtime on Vulkan compute shaders.
 *
 * Device layer: instance, device choice, capability probe, buffers, pipelines,
 * command recording and timestamps.  Every function returns a vkr_status; on
 * failure vkr_last_error() holds a readable, thread-local message.  The library
 * never terminates the process (no exit, no abort). */
#ifndef VKRUN_H
#define VKRUN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    VKR_OK = 0,
    VKR_ERR_VULKAN,      /* a Vulkan call failed (message names the VkResult) */
    VKR_ERR_NO_DEVICE,   /* no Vulkan device, or none matching the selection */
    VKR_ERR_OUT_OF_MEMORY,
    VKR_ERR_INVALID,     /* bad argument, wrong shape */
    VKR_ERR_IO,          /* file could not be read or written */
    VKR_ERR_FORMAT,      /* file content is malformed */
    VKR_ERR_UNSUPPORTED, /* the device lacks something required */
    VKR_ERR_VALIDATION,  /* the validation layer reported an error */
    VKR_ERR_NOT_FOUND,   /* unknown shader, op or name */
    VKR_ERR_INTERRUPTED, /* stopped on request (a vkr_fit callback): state saved where it says */
} vkr_status;

const char *vkr_status_name(vkr_status s);
/* Message of the last failure on this thread ("" if none). */
const char *vkr_last_error(void);

/* Writes n bytes to path atomically: a temporary file next to it, fsync'ed and renamed over it
 * (a reader sees the old file or the new one, never a part).  A symbolic link is written
 * through to its target; the replaced file's permissions are kept (a new file gets 0666 less
 * the umask); temporary files left by an earlier, killed save of the same path are removed. */
vkr_status vkr_file_write_atomic(const char *path, const void *data, size_t n);
/* Checks made before any work on an output: VKR_ERR_INVALID when `out` is the existing file `in`
 * (same device and inode: an output must never replace an input; in may be NULL); VKR_ERR_IO
 * when the folder of `out` does not accept a new file (probed by creating and removing one). */
vkr_status vkr_file_check_not_input(const char *in, const char *out);
vkr_status vkr_file_check_writable(const char *out);
/* Sets the thread-local message; returns s so callers can `return vkr_fail(...)`. */
vkr_status vkr_fail(vkr_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Name of a VkResult value (e.g. "VK_ERROR_OUT_OF_DEVICE_MEMORY"). */
const char *vkr_vk_result_name(int vk_result);

/* Messages that are not failures (a skipped image, a validation-layer report) go to one log
 * sink; the library writes nothing else.  The default sink writes "vkrun: warning: MSG" (or
 * "error") to stderr; vkr_set_log(fn, ud) replaces it for the whole process (fn NULL: back to
 * the default).  fn may be called from loader threads. */
typedef enum { VKR_LOG_WARNING = 1, VKR_LOG_ERROR = 2 } vkr_log_level;
typedef void (*vkr_log_fn)(vkr_log_level level, const char *msg, void *ud);
void vkr_set_log(vkr_log_fn fn, void *ud);
void vkr_log(vkr_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---------------------------------------------------------------- devices */

typedef enum {
    VKR_DEVICE_OTHER = 0,
    VKR_DEVICE_INTEGRATED = 1,
    VKR_DEVICE_DISCRETE = 2,
    VKR_DEVICE_VIRTUAL = 3,
    VKR_DEVICE_CPU = 4,
} vkr_device_type;

#define VKR_MAX_HEAPS 16
#define VKR_MAX_MEMTYPES 32

typedef struct {
    int index;
    char name[256];
    vkr_device_type type;
    const char *type_name;
    uint32_t vendor_id, device_id;
    uint32_t api_version, driver_version;
    char driver_name[256];
    char driver_info[256];
    /* limits */
    uint64_t max_storage_buffer_range;
    uint64_t max_memory_allocation_size;
    uint64_t max_texel_buffer_elements;
    uint64_t min_storage_buffer_offset_alignment;
    uint64_t min_texel_buffer_offset_alignment;
    uint32_t max_compute_shared_memory_size;
    uint32_t max_workgroup_size[3];
    uint32_t max_workgroup_invocations;
    uint32_t max_workgroup_count[3];
    uint32_t max_push_constants_size;
    uint32_t subgroup_size;
    int fp16_arithmetic;   /* shaderFloat16 */
    int storage_16bit;     /* storageBuffer16BitAccess */
    int timestamps;        /* compute queue supports timestamps */
    float timestamp_period_ns;
    uint32_t heap_count;
    uint64_t heap_size[VKR_MAX_HEAPS];
    int heap_device_local[VKR_MAX_HEAPS];
    uint32_t memtype_count;
    uint32_t memtype_flags[VKR_MAX_MEMTYPES]; /* VkMemoryPropertyFlags */
    uint32_t memtype_heap[VKR_MAX_MEMTYPES];
} vkr_device_info;

/* Lists all Vulkan devices without creating a logical device.
 * *infos is malloc'ed; free() it. */
vkr_status vkr_enumerate_devices(vkr_device_info **infos, int *count);
/* The Vulkan version the loader (libvulkan) supports (VK_MAKE_API_VERSION; vkEnumerateInstanceVersion). */
vkr_status vkr_loader_version(uint32_t *api_version);
/* vkrun's own version ("0.1.0") and the git commit it was built from ("08a274f", "unknown" outside git). */
const char *vkr_version(void);
const char *vkr_git_commit(void);
/* Picks a device: `selector` is an index ("0"), a case-insensitive name
 * substring ("llvmpipe"), or NULL/"" for the default (env VKRUN_DEVICE, else
 * discrete > integrated > virtual > CPU > other). */
vkr_status vkr_select_device(const vkr_device_info *infos, int count, const char *selector, int *chosen);

/* ---------------------------------------------------------------- context */

typedef struct vkr_context vkr_context;

typedef struct {
    const char *device;     /* selector, see vkr_select_device */
    int validation;         /* 1: enable VK_LAYER_KHRONOS_validation; -1: from env VKRUN_VALIDATION */
    int quiet_validation;   /* 1: count validation messages but do not print them */
    int no_pipeline_cache;  /* 1: do not read/write the on-disk VkPipelineCache */
} vkr_context_opts;

vkr_status vkr_context_create(const vkr_context_opts *opts, vkr_context **out);
void vkr_context_destroy(vkr_context *ctx);
const vkr_device_info *vkr_context_device(const vkr_context *ctx);
/* Messages counted by the debug messenger since creation. */
uint32_t vkr_validation_errors(const vkr_context *ctx);
uint32_t vkr_validation_warnings(const vkr_context *ctx);
int vkr_validation_enabled(const vkr_context *ctx);

/* ---------------------------------------------------------------- buffers */

typedef struct vkr_buffer vkr_buffer;

/* A device-local storage buffer (also usable as a uniform texel buffer).
 * Sub-allocated from memory blocks that respect maxMemoryAllocationSize. */
vkr_status vkr_buffer_create(vkr_context *ctx, uint64_t size, vkr_buffer **out);
void vkr_buffer_destroy(vkr_buffer *buf);
uint64_t vkr_buffer_size(const vkr_buffer *buf);
/* Host <-> device copies through a staging buffer (synchronous). */
vkr_status vkr_buffer_upload(vkr_buffer *buf, uint64_t offset, const void *src, uint64_t size);
vkr_status vkr_buffer_download(vkr_buffer *buf, uint64_t offset, void *dst, uint64_t size);
vkr_status vkr_buffer_fill_zero(vkr_buffer *buf);
/* Convenience: create and upload floats. */
vkr_status vkr_buffer_from_floats(vkr_context *ctx, const float *data, size_t n, vkr_buffer **out);
/* Bytes currently allocated from the device by this context. */
uint64_t vkr_device_bytes_allocated(const vkr_context *ctx);
/* Bytes of the live buffers (sub-allocations) of this context. */
uint64_t vkr_device_bytes_in_use(const vkr_context *ctx);

/* Device-local memory of the context's device (its largest device-local heap). */
typedef struct {
    uint64_t heap;       /* heap size */
    uint64_t budget;     /* what this process may use: VK_EXT_memory_budget's heapBudget, else the heap size */
    uint64_t usage;      /* in use: heapUsage (all of this process), else what this context allocated */
    uint64_t available;  /* budget - usage */
    int from_ext;        /* budget and usage come from VK_EXT_memory_budget */
    int from_env;        /* budget lowered by the environment variable VKRUN_MEMORY_BUDGET (MiB) */
} vkr_memory_budget;
void vkr_device_memory_budget(const vkr_context *ctx, vkr_memory_budget *out);
/* Fault injection for tests: from now on, a buffer allocation that would take the
 * context's live buffers over `bytes`, and a submission while they are over it, fail
 * with VKR_ERR_OUT_OF_MEMORY as VK_ERROR_OUT_OF_DEVICE_MEMORY would (0: no limit).
 * The environment variable VKRUN_DEVICE_MEMORY_LIMIT (MiB) sets it at context creation.
 * The memory budget above does not see it: it stands for memory taken by others. */
void vkr_context_set_memory_limit(vkr_context *ctx, uint64_t bytes);

/* ---------------------------------------------------------------- precision */

/* Mixed precision of the conv / dense GEMMs recorded on a context (--precision).
 * FP32: everything in fp32 (the default).  FP16: the GEMM inputs (weights, activations,
 * gradients) are rounded to float16 as the kernels load them, every GEMM accumulates in
 * fp32; tensors stay fp32 in memory, so master weights, optimizer state, batch-norm
 * statistics, softmax and the loss are fp32 (training then needs loss scaling, vkr_fit).
 * Needs shaderFloat16.  BF16: the same with bfloat16 rounding (on the fp32 bit pattern, any
 * device; fp32's range, so no loss scaling).  AUTO: the fastest precision with a verified
 * kernel that the device supports -- fp32 on every device today, as no fp16 / bf16 kernel
 * has been measured faster than fp32 (README: lavapipe's ratios). */
typedef enum { VKR_PRECISION_FP32 = 0, VKR_PRECISION_FP16, VKR_PRECISION_BF16, VKR_PRECISION_AUTO } vkr_precision;
const char *vkr_precision_name(vkr_precision p);
/* "fp32" | "fp16" | "bf16" | "auto" (VKR_ERR_INVALID naming the accepted words otherwise). */
vkr_status vkr_precision_parse(const char *s, vkr_precision *out);
/* What `p` means on this context's device (AUTO resolved); VKR_ERR_UNSUPPORTED with the
 * reason when the device cannot run it. */
vkr_status vkr_precision_resolve(const vkr_context *ctx, vkr_precision p, vkr_precision *out);
/* Resolves p and makes it the precision of the GEMMs recorded from now on. */
vkr_status vkr_context_set_precision(vkr_context *ctx, vkr_precision p);
vkr_precision vkr_context_precision(const vkr_context *ctx);

/* ---------------------------------------------------------------- shaders */

typedef struct {
    const char *name;
    const uint32_t *words;
    size_t size_bytes;
} vkr_spirv;

/* The table of embedded SPIR-V modules generated at build time. */
const vkr_spirv *vkr_shader_find(const char *name);
size_t vkr_shader_count(void);
const vkr_spirv *vkr_shader_at(size_t i);

/* -------------------------------------------------------------- pipelines */

/* Binding kinds, given as a string with one character per binding, in
 * binding order: 's' storage buffer, 't' uniform texel buffer (RGBA32F),
 * 'r' uniform texel buffer (R32F). */
typedef struct vkr_pipeline vkr_pipeline;

typedef struct {
    const char *shader;          /* name in the embedded table */
    const char *bindings;        /* e.g. "sss" */
    uint32_t push_size;          /* bytes of push constants (multiple of 4, ≤ 128) */
    uint32_t spec_count;         /* specialization constants ids 0..spec_count-1 */
    const uint32_t *spec;        /* 32-bit values (ints or float bits) */
} vkr_pipeline_desc;

/* Returns a cached pipeline (created on first use; owned by ctx). */
vkr_status vkr_pipeline_get(vkr_context *ctx, const vkr_pipeline_desc *desc, vkr_pipeline **out);
/* Workgroup size of the pipeline: the shader's, with its local_size_*_id spec constants applied. */
void vkr_pipeline_local_size(const vkr_pipeline *p, uint32_t out[3]);
/* The context's pipelines in creation order, and each one's cache key
 * ("shader|bindings|push size|spec values..."). */
size_t vkr_pipeline_count(const vkr_context *ctx);
const vkr_pipeline *vkr_pipeline_at(const vkr_context *ctx, size_t i);
const char *vkr_pipeline_key(const vkr_pipeline *p);

/* Compile statistics (VK_KHR_pipeline_executable_properties): what the driver reports of the
 * code it built, e.g. RADV's "VGPRs", "Spilled VGPRs", "LDS size", plus "Subgroup size" of
 * each executable.  vkr_context_capture_pipeline_stats makes the pipelines created from then on
 * keep them (VKR_ERR_UNSUPPORTED where the device lacks the extension: nothing changes). */
typedef struct {
    char name[64];  /* the driver's name; "exe N: " before it where a pipeline has several executables */
    double value;
} vkr_pipeline_stat;
vkr_status vkr_context_capture_pipeline_stats(vkr_context *ctx);
/* Up to max statistics of p into out, *n = how many the driver gives; VKR_ERR_UNSUPPORTED
 * where p was created without capture. */
vkr_status vkr_pipeline_statistics(vkr_context *ctx, const vkr_pipeline *p, vkr_pipeline_stat *out, size_t max,
                                   size_t *n);

/* --------------------------------------------------------------- commands */

typedef struct vkr_cmd vkr_cmd;

typedef struct {
    vkr_buffer *buf;
    uint64_t offset;  /* bytes; must respect the device's offset alignment */
    uint64_t range;   /* bytes; 0 = to the end of the buffer */
} vkr_binding;

/* A command stream: many dispatches recorded into one command buffer and
 * submitted once.  Barriers are inserted where a dispatch reads or writes a
 * buffer that an earlier, unbarriered dispatch wrote (or writes one it read). */
vkr_status vkr_cmd_begin(vkr_context *ctx, vkr_cmd **out);
/* Enables per-dispatch GPU timestamps (if the device supports them). */
vkr_status vkr_cmd_enable_timestamps(vkr_cmd *cmd, uint32_t max_dispatches);
/* Records one dispatch.  `writes` is a bitmask over bindings that the shader
 * writes (bit i = binding i); the rest are read-only. */
vkr_status vkr_cmd_dispatch(vkr_cmd *cmd, vkr_pipeline *pipe, const vkr_binding *bindings, uint32_t nbind,
                            uint32_t writes, const void *push, uint32_t gx, uint32_t gy, uint32_t gz);
/* Label for the next dispatch's timing entry (copied). */
void vkr_cmd_label(vkr_cmd *cmd, const char *label);
/* Full barrier: everything before is visible to everything after. */
void vkr_cmd_barrier(vkr_cmd *cmd);
/* Copy between buffers inside the stream. */
vkr_status vkr_cmd_copy(vkr_cmd *cmd, vkr_buffer *dst, uint64_t dst_off, vkr_buffer *src, uint64_t src_off, uint64_t size);
vkr_status vkr_cmd_fill_zero(vkr_cmd *cmd, vkr_buffer *dst, uint64_t offset, uint64_t size);
/* Scratch memory for ops that reduce in two passes (split-K weight / bias
 * gradients): one buffer per stream, shared by every op recorded into it (the
 * automatic barriers order their uses).  set_scratch lends a buffer (not owned;
 * it must outlive the stream's use; NULL withdraws it) — the graph lends one
 * sized by its memory plan; reserve_scratch makes the stream own one of at
 * least `bytes` (kept across resets).  An op that needs more than the stream
 * holds reserves it itself (once per stream, not per call). */
void vkr_cmd_set_scratch(vkr_cmd *cmd, vkr_buffer *buf);
vkr_status vkr_cmd_reserve_scratch(vkr_cmd *cmd, uint64_t bytes);
/* Ends, submits and waits on a fence. The stream can then be read (timings)
 * and must be freed with vkr_cmd_free. */
vkr_status vkr_cmd_submit(vkr_cmd *cmd);
/* Split submit: vkr_cmd_submit_async then vkr_cmd_wait. */
vkr_status vkr_cmd_submit_async(vkr_cmd *cmd);
/* After vkr_cmd_submit_async: waits at most ns nanoseconds; *done = 1 when the stream finished
 * (as vkr_cmd_wait), 0 when it still runs. */
vkr_status vkr_cmd_wait_for(vkr_cmd *cmd, uint64_t ns, int *done);
vkr_status vkr_cmd_wait(vkr_cmd *cmd);
/* Resets a finished stream for re-recording (keeps its allocations). */
vkr_status vkr_cmd_reset(vkr_cmd *cmd);
void vkr_cmd_free(vkr_cmd *cmd);
uint32_t vkr_cmd_dispatch_count(const vkr_cmd *cmd);
uint32_t vkr_cmd_barrier_count(const vkr_cmd *cmd);
/* After completion: GPU milliseconds of timed dispatch i and its label. */
vkr_status vkr_cmd_timing(const vkr_cmd *cmd, uint32_t i, double *ms, const char **label);
uint32_t vkr_cmd_timing_count(const vkr_cmd *cmd);

/* Helper: number of workgroups to cover n items with groups of size g. */
static inline uint32_t vkr_div_up(uint64_t n, uint32_t g) { return (uint32_t)((n + g - 1) / g); }
/* Grid for n items in groups of `local` invocations, spread over x and y so
 * that neither exceeds 65535 (shaders use vkr_flat_index() from common.glsl). */
static inline void vkr_grid_1d(uint64_t n, uint32_t local, uint32_t *gx, uint32_t *gy) {
    uint64_t groups = (n + local - 1) / local;
    if (groups == 0) groups = 1;
    *gy = (uint32_t)((groups + 65534) / 65535);
    *gx = (uint32_t)((groups + *gy - 1) / *gy);
}

#ifdef __cplusplus
}
#endif
/* ---- the one random number generator (splitmix64; runtime/core/rng.c) ---- */
typedef struct { uint64_t s; } vkr_rng;
uint64_t vkr_mix64(uint64_t z); /* splitmix64's output function of z + golden ratio: a hash */
void vkr_rng_seed(vkr_rng *r, uint64_t seed);
uint64_t vkr_rng_next(vkr_rng *r);
double vkr_rng_uniform(vkr_rng *r, double lo, double hi); /* [lo, hi) */
uint64_t vkr_rng_below(vkr_rng *r, uint64_t n);            /* [0, n), n > 0, exactly uniform */
void vkr_rng_fill(vkr_rng *r, float *x, size_t n, double lo, double hi);

#endif
