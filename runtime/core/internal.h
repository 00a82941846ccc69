/* Internal structures of the device layer (not part of the public API). */
#ifndef VKRUN_INTERNAL_H
#define VKRUN_INTERNAL_H

#include "vkrun.h"
#include <vulkan/vulkan.h>

#define VK_CHECK_RET(call, what)                                                                   \
    do {                                                                                           \
        VkResult vkr__r = (call);                                                                  \
        if (vkr__r != VK_SUCCESS)                                                                  \
            return vkr_fail(vkr__r == VK_ERROR_OUT_OF_DEVICE_MEMORY || vkr__r == VK_ERROR_OUT_OF_HOST_MEMORY \
                                ? VKR_ERR_OUT_OF_MEMORY : VKR_ERR_VULKAN,                          \
                            "%s failed: %s (%s:%d)", what, vkr_vk_result_name(vkr__r), __FILE__, __LINE__); \
    } while (0)

typedef struct vkr_mem_block vkr_mem_block;

/* A device memory block from which buffers are sub-allocated (first fit). */
struct vkr_mem_block {
    VkDeviceMemory memory;
    uint64_t size;
    uint32_t type_index;
    void *mapped;               /* non-NULL when host visible */
    /* sorted list of free ranges */
    uint64_t *free_off, *free_len;
    int nfree, capfree;
    int live;                   /* allocations in this block */
    vkr_mem_block *next;
};

struct vkr_buffer {
    vkr_context *ctx;
    VkBuffer buffer;
    vkr_mem_block *block;
    uint64_t offset;            /* in block */
    uint64_t alloc_size;        /* size reserved in block */
    uint64_t size;              /* requested size */
};

typedef struct vkr_pipeline_entry vkr_pipeline_entry;

struct vkr_pipeline {
    char key[256];
    char bindings[32];
    uint32_t nbind;
    uint32_t push_size;
    uint32_t local_size[3];
    int stats;                  /* created with VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR */
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout layout;
    VkPipeline pipeline;
    vkr_pipeline *next;
};

struct vkr_context {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    PFN_vkDestroyDebugUtilsMessengerEXT destroy_messenger;
    int validation;
    int quiet_validation;
    volatile uint32_t val_errors, val_warnings;
    VkPhysicalDevice phys;
    vkr_device_info info;
    VkDevice device;
    VkQueue queue;
    uint32_t queue_family;
    VkCommandPool pool;         /* for internal transfers */
    int submitted;              /* anything was ever submitted (vkr_context_destroy waits only then:
                                 * RADV's null-hardware device crashes in vkDeviceWaitIdle) */
    VkPhysicalDeviceMemoryProperties memprops;
    vkr_mem_block *blocks;      /* device-local storage memory */
    uint64_t block_size;
    uint64_t bytes_allocated;
    uint64_t bytes_live;        /* bytes of live buffers (sub-allocations) */
    uint64_t mem_limit;         /* injected limit on bytes_live (0: none), see vkr_context_set_memory_limit */
    int has_budget;             /* VK_EXT_memory_budget enabled */
    int has_exec_props;         /* VK_KHR_pipeline_executable_properties enabled (pipeline_stats.c) */
    int capture_stats;          /* pipelines created with statistics (vkr_context_capture_pipeline_stats) */
    /* staging */
    VkBuffer staging;
    VkDeviceMemory staging_mem;
    void *staging_map;
    uint64_t staging_size;
    /* pipelines */
    VkPipelineCache pcache;
    char pcache_path[1024];
    int pcache_dirty;
    vkr_pipeline *pipelines;
    vkr_precision precision;    /* of the conv / dense GEMMs (vkr_context_set_precision) */
    int tuned_tile;             /* TILED tile index measured by vkrun tune (0: the default; -1: not read yet) */
};

vkr_status vkr__fill_device_info(VkInstance inst, VkPhysicalDevice pd, int index, vkr_device_info *info);
vkr_status vkr__create_instance(int validation, vkr_context *ctx_or_null, VkInstance *out);
void vkr__pipelines_destroy(vkr_context *ctx);
void vkr__pipeline_cache_load(vkr_context *ctx);
void vkr__pipeline_cache_save(vkr_context *ctx);
/* mkdir -p (0 on success). */
int vkr__mkdirs(const char *path);
void vkr__memory_destroy(vkr_context *ctx);
int vkr__find_memtype(const vkr_context *ctx, uint32_t type_bits, VkMemoryPropertyFlags want);
/* A buffer in host-visible coherent memory, mapped: a staging area whose copies are recorded
 * into a command stream (vkr_cmd_copy) instead of synchronous transfers. */
vkr_status vkr__buffer_create_host(vkr_context *ctx, uint64_t size, vkr_buffer **out);
/* Host address of a buffer whose memory is mapped (NULL otherwise). */
void *vkr__buffer_map(vkr_buffer *b);
/* One-shot command buffer on the context's pool. */
vkr_status vkr__oneshot_begin(vkr_context *ctx, VkCommandBuffer *cb);
vkr_status vkr__oneshot_end(vkr_context *ctx, VkCommandBuffer cb);

#endif
