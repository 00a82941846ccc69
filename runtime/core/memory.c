/* Device memory: blocks sub-allocated first-fit, buffers, staging copies. */
#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

#define STAGING_SIZE (16ull << 20)

int vkr__find_memtype(const vkr_context *ctx, uint32_t bits, VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < ctx->memprops.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (ctx->memprops.memoryTypes[i].propertyFlags & want) == want) return (int)i;
    return -1;
}

static uint64_t align_up(uint64_t v, uint64_t a) { return a ? (v + a - 1) / a * a : v; }

static int block_take(vkr_mem_block *b, uint64_t size, uint64_t align, uint64_t *off) {
    for (int i = 0; i < b->nfree; i++) {
        uint64_t start = align_up(b->free_off[i], align);
        uint64_t end = b->free_off[i] + b->free_len[i];
        if (start + size > end) continue;
        /* split the free range into [free_off, start) and [start+size, end) */
        uint64_t lo_off = b->free_off[i], lo_len = start - lo_off;
        uint64_t hi_off = start + size, hi_len = end - hi_off;
        if (lo_len && hi_len) {
            if (b->nfree == b->capfree) {
                int cap = b->capfree * 2;
                uint64_t *o = realloc(b->free_off, cap * sizeof *o);
                if (!o) return 0;
                b->free_off = o;
                uint64_t *l = realloc(b->free_len, cap * sizeof *l);
                if (!l) return 0;
                b->free_len = l;
                b->capfree = cap;
            }
            memmove(b->free_off + i + 2, b->free_off + i + 1, (b->nfree - i - 1) * sizeof(uint64_t));
            memmove(b->free_len + i + 2, b->free_len + i + 1, (b->nfree - i - 1) * sizeof(uint64_t));
            b->free_len[i] = lo_len;
            b->free_off[i + 1] = hi_off;
            b->free_len[i + 1] = hi_len;
            b->nfree++;
        } else if (lo_len) {
            b->free_len[i] = lo_len;
        } else if (hi_len) {
            b->free_off[i] = hi_off;
            b->free_len[i] = hi_len;
        } else {
            memmove(b->free_off + i, b->free_off + i + 1, (b->nfree - i - 1) * sizeof(uint64_t));
            memmove(b->free_len + i, b->free_len + i + 1, (b->nfree - i - 1) * sizeof(uint64_t));
            b->nfree--;
        }
        *off = start;
        b->live++;
        return 1;
    }
    return 0;
}

static void block_give(vkr_mem_block *b, uint64_t off, uint64_t len) {
    int i = 0;
    while (i < b->nfree && b->free_off[i] < off) i++;
    /* merge with previous / next */
    int merged_prev = i > 0 && b->free_off[i - 1] + b->free_len[i - 1] == off;
    int merged_next = i < b->nfree && off + len == b->free_off[i];
    if (merged_prev && merged_next) {
        b->free_len[i - 1] += len + b->free_len[i];
        memmove(b->free_off + i, b->free_off + i + 1, (b->nfree - i - 1) * sizeof(uint64_t));
        memmove(b->free_len + i, b->free_len + i + 1, (b->nfree - i - 1) * sizeof(uint64_t));
        b->nfree--;
    } else if (merged_prev) {
        b->free_len[i - 1] += len;
    } else if (merged_next) {
        b->free_off[i] = off;
        b->free_len[i] += len;
    } else {
        if (b->nfree == b->capfree) {
            int cap = b->capfree * 2;
            uint64_t *o = realloc(b->free_off, cap * sizeof *o);
            uint64_t *l = o ? realloc(b->free_len, cap * sizeof *l) : NULL;
            if (o) b->free_off = o;
            if (!l) return; /* leaks the range inside the block; never a crash */
            b->free_len = l;
            b->capfree = cap;
        }
        memmove(b->free_off + i + 1, b->free_off + i, (b->nfree - i) * sizeof(uint64_t));
        memmove(b->free_len + i + 1, b->free_len + i, (b->nfree - i) * sizeof(uint64_t));
        b->free_off[i] = off;
        b->free_len[i] = len;
        b->nfree++;
    }
    b->live--;
}

static vkr_status block_new(vkr_context *ctx, uint32_t type, uint64_t size, vkr_mem_block **out) {
    vkr_mem_block *b = calloc(1, sizeof *b);
    if (!b) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    b->capfree = 8;
    b->free_off = calloc(b->capfree, sizeof(uint64_t));
    b->free_len = calloc(b->capfree, sizeof(uint64_t));
    if (!b->free_off || !b->free_len) {
        free(b->free_off);
        free(b->free_len);
        free(b);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = size, .memoryTypeIndex = type};
    VkResult r = vkAllocateMemory(ctx->device, &ai, NULL, &b->memory);
    if (r != VK_SUCCESS) {
        free(b->free_off);
        free(b->free_len);
        free(b);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY,
                        "device memory allocation of %.1f MiB failed: %s (%.1f MiB already allocated on \"%s\")",
                        size / 1048576.0, vkr_vk_result_name(r), ctx->bytes_allocated / 1048576.0, ctx->info.name);
    }
    VkMemoryPropertyFlags f = ctx->memprops.memoryTypes[type].propertyFlags;
    if ((f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) && (f & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)) {
        /* host buffers are used through this mapping: a block of this type is always mapped */
        r = vkMapMemory(ctx->device, b->memory, 0, VK_WHOLE_SIZE, 0, &b->mapped);
        if (r != VK_SUCCESS) {
            vkFreeMemory(ctx->device, b->memory, NULL);
            free(b->free_off);
            free(b->free_len);
            free(b);
            return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "vkMapMemory of %.1f MiB failed: %s", size / 1048576.0,
                            vkr_vk_result_name(r));
        }
    }
    b->size = size;
    b->type_index = type;
    b->free_off[0] = 0;
    b->free_len[0] = size;
    b->nfree = 1;
    b->next = ctx->blocks;
    ctx->blocks = b;
    ctx->bytes_allocated += size;
    *out = b;
    return VKR_OK;
}

static void block_free(vkr_context *ctx, vkr_mem_block *b) {
    if (b->mapped) vkUnmapMemory(ctx->device, b->memory);
    vkFreeMemory(ctx->device, b->memory, NULL);
    ctx->bytes_allocated -= b->size;
    free(b->free_off);
    free(b->free_len);
    free(b);
}

static vkr_status buffer_create(vkr_context *ctx, uint64_t size, int host, vkr_buffer **out);

vkr_status vkr_buffer_create(vkr_context *ctx, uint64_t size, vkr_buffer **out) {
    return buffer_create(ctx, size, 0, out);
}

vkr_status vkr__buffer_create_host(vkr_context *ctx, uint64_t size, vkr_buffer **out) {
    return buffer_create(ctx, size, 1, out);
}

void *vkr__buffer_map(vkr_buffer *b) { return b && b->block->mapped ? (char *)b->block->mapped + b->offset : NULL; }

/* host: host-visible coherent memory (mapped); else device-local (any type as a fallback). */
static vkr_status buffer_create(vkr_context *ctx, uint64_t size, int host, vkr_buffer **out) {
    *out = NULL;
    if (size == 0) return vkr_fail(VKR_ERR_INVALID, "buffer of size 0 requested");
    if (ctx->info.max_memory_allocation_size && size > ctx->info.max_memory_allocation_size)
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "buffer of %.1f MiB exceeds the device's maxMemoryAllocationSize (%.1f MiB)",
                        size / 1048576.0, ctx->info.max_memory_allocation_size / 1048576.0);
    if (ctx->mem_limit && ctx->bytes_live + size > ctx->mem_limit)
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY,
                        "device memory allocation of %.1f MiB failed: VK_ERROR_OUT_OF_DEVICE_MEMORY (injected: %.1f MiB "
                        "in use, limit %.1f MiB)",
                        size / 1048576.0, ctx->bytes_live / 1048576.0, ctx->mem_limit / 1048576.0);
    vkr_buffer *b = calloc(1, sizeof *b);
    if (!b) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    b->ctx = ctx;
    b->size = size;
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = align_up(size, 16),
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = vkCreateBuffer(ctx->device, &bi, NULL, &b->buffer);
    if (r != VK_SUCCESS) {
        free(b);
        return vkr_fail(VKR_ERR_VULKAN, "vkCreateBuffer (%llu bytes) failed: %s", (unsigned long long)size,
                        vkr_vk_result_name(r));
    }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx->device, b->buffer, &req);
    VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int type = vkr__find_memtype(ctx, req.memoryTypeBits, host ? hv : VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (type < 0 && !host) type = vkr__find_memtype(ctx, req.memoryTypeBits, 0);
    if (type < 0) {
        vkDestroyBuffer(ctx->device, b->buffer, NULL);
        free(b);
        return vkr_fail(VKR_ERR_UNSUPPORTED, "no %s memory type for a buffer", host ? "host-visible coherent" : "usable");
    }
    uint64_t align = req.alignment;
    if (align < ctx->info.min_storage_buffer_offset_alignment) align = ctx->info.min_storage_buffer_offset_alignment;
    if (align < 256) align = 256;
    uint64_t off = 0;
    vkr_mem_block *blk = NULL;
    for (vkr_mem_block *k = ctx->blocks; k && !blk; k = k->next)
        if (k->type_index == (uint32_t)type && block_take(k, req.size, align, &off)) blk = k;
    if (!blk) {
        uint64_t bsize = req.size > ctx->block_size ? req.size : ctx->block_size;
        vkr_status s = block_new(ctx, (uint32_t)type, bsize, &blk);
        if (s && bsize > req.size) s = block_new(ctx, (uint32_t)type, req.size, &blk); /* try exact size */
        if (s) {
            vkDestroyBuffer(ctx->device, b->buffer, NULL);
            free(b);
            return s;
        }
        if (!block_take(blk, req.size, align, &off)) {
            vkDestroyBuffer(ctx->device, b->buffer, NULL);
            free(b);
            return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "sub-allocation failed in a fresh block");
        }
    }
    r = vkBindBufferMemory(ctx->device, b->buffer, blk->memory, off);
    if (r != VK_SUCCESS) {
        block_give(blk, off, req.size);
        if (blk->live == 0) {
            vkr_mem_block **pp = &ctx->blocks;
            while (*pp && *pp != blk) pp = &(*pp)->next;
            if (*pp) *pp = blk->next;
            block_free(ctx, blk);
        }
        vkDestroyBuffer(ctx->device, b->buffer, NULL);
        free(b);
        return vkr_fail(VKR_ERR_VULKAN, "vkBindBufferMemory failed: %s", vkr_vk_result_name(r));
    }
    b->block = blk;
    b->offset = off;
    b->alloc_size = req.size;
    ctx->bytes_live += req.size;
    *out = b;
    return VKR_OK;
}

void vkr_buffer_destroy(vkr_buffer *b) {
    if (!b) return;
    vkr_context *ctx = b->ctx;
    vkDestroyBuffer(ctx->device, b->buffer, NULL);
    ctx->bytes_live -= b->alloc_size;
    block_give(b->block, b->offset, b->alloc_size);
    if (b->block->live == 0) { /* return empty blocks to the device */
        vkr_mem_block **pp = &ctx->blocks;
        while (*pp && *pp != b->block) pp = &(*pp)->next;
        if (*pp) *pp = b->block->next;
        block_free(ctx, b->block);
    }
    free(b);
}

uint64_t vkr_buffer_size(const vkr_buffer *b) { return b->size; }
uint64_t vkr_device_bytes_allocated(const vkr_context *ctx) { return ctx->bytes_allocated; }
uint64_t vkr_device_bytes_in_use(const vkr_context *ctx) { return ctx->bytes_live; }

void vkr__memory_destroy(vkr_context *ctx) {
    if (ctx->staging) vkDestroyBuffer(ctx->device, ctx->staging, NULL);
    if (ctx->staging_mem) {
        vkUnmapMemory(ctx->device, ctx->staging_mem);
        vkFreeMemory(ctx->device, ctx->staging_mem, NULL);
    }
    while (ctx->blocks) {
        vkr_mem_block *b = ctx->blocks;
        ctx->blocks = b->next;
        block_free(ctx, b);
    }
}

static vkr_status staging_ensure(vkr_context *ctx) {
    if (ctx->staging_map) return VKR_OK;
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = STAGING_SIZE,
                             .usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkBuffer buf = VK_NULL_HANDLE;
    VkDeviceMemory mem = VK_NULL_HANDLE;
    void *map = NULL;
    vkr_status s = VKR_OK;
    VkResult r = vkCreateBuffer(ctx->device, &bi, NULL, &buf);
    if (r != VK_SUCCESS) return vkr_fail(VKR_ERR_VULKAN, "vkCreateBuffer (staging) failed: %s", vkr_vk_result_name(r));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx->device, buf, &req);
    int type = vkr__find_memtype(ctx, req.memoryTypeBits,
                                 VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
                                     VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    if (type < 0)
        type = vkr__find_memtype(ctx, req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    if (type < 0) s = vkr_fail(VKR_ERR_UNSUPPORTED, "device has no host-visible coherent memory for staging");
    if (!s) {
        VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
                                   .memoryTypeIndex = (uint32_t)type};
        r = vkAllocateMemory(ctx->device, &ai, NULL, &mem);
        if (r == VK_SUCCESS) r = vkBindBufferMemory(ctx->device, buf, mem, 0);
        if (r == VK_SUCCESS) r = vkMapMemory(ctx->device, mem, 0, VK_WHOLE_SIZE, 0, &map);
        if (r != VK_SUCCESS)
            s = vkr_fail(r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY ? VKR_ERR_OUT_OF_MEMORY
                                                                                                 : VKR_ERR_VULKAN,
                         "creating the %u MiB staging buffer failed: %s", (unsigned)(STAGING_SIZE >> 20),
                         vkr_vk_result_name(r));
    }
    if (s) {
        if (mem) vkFreeMemory(ctx->device, mem, NULL);
        vkDestroyBuffer(ctx->device, buf, NULL);
        return s;
    }
    ctx->staging = buf;
    ctx->staging_mem = mem;
    ctx->staging_map = map;
    ctx->staging_size = STAGING_SIZE;
    return VKR_OK;
}

vkr_status vkr__oneshot_begin(vkr_context *ctx, VkCommandBuffer *cb) {
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = ctx->pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    VK_CHECK_RET(vkAllocateCommandBuffers(ctx->device, &ai, cb), "vkAllocateCommandBuffers");
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VkResult r = vkBeginCommandBuffer(*cb, &bi);
    if (r != VK_SUCCESS) {
        vkFreeCommandBuffers(ctx->device, ctx->pool, 1, cb);
        return vkr_fail(VKR_ERR_VULKAN, "vkBeginCommandBuffer failed: %s", vkr_vk_result_name(r));
    }
    return VKR_OK;
}

vkr_status vkr__oneshot_end(vkr_context *ctx, VkCommandBuffer cb) {
    vkr_status s = VKR_OK;
    /* transfer writes become visible to the host and to later submissions */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0,
                         1, &mb, 0, NULL, 0, NULL);
    VkResult r = vkEndCommandBuffer(cb);
    VkFence fence = VK_NULL_HANDLE;
    if (r == VK_SUCCESS) {
        VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        r = vkCreateFence(ctx->device, &fi, NULL, &fence);
    }
    if (r == VK_SUCCESS) {
        VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb};
        r = vkQueueSubmit(ctx->queue, 1, &si, fence);
        ctx->submitted |= r == VK_SUCCESS;
    }
    if (r == VK_SUCCESS) {
        r = vkWaitForFences(ctx->device, 1, &fence, VK_TRUE, UINT64_MAX);
        /* the fence and command buffer are destroyed below: the copy must have finished */
        if (r != VK_SUCCESS) (void)vkDeviceWaitIdle(ctx->device);
    }
    if (r != VK_SUCCESS) s = vkr_fail(VKR_ERR_VULKAN, "transfer submission failed: %s", vkr_vk_result_name(r));
    if (fence) vkDestroyFence(ctx->device, fence, NULL);
    vkFreeCommandBuffers(ctx->device, ctx->pool, 1, &cb);
    return s;
}

static vkr_status check_range(const vkr_buffer *b, uint64_t off, uint64_t size, const char *what) {
    if (off > b->size || size > b->size - off)
        return vkr_fail(VKR_ERR_INVALID, "%s of %llu bytes at offset %llu exceeds the buffer's %llu bytes", what,
                        (unsigned long long)size, (unsigned long long)off, (unsigned long long)b->size);
    return VKR_OK;
}

vkr_status vkr_buffer_upload(vkr_buffer *b, uint64_t off, const void *src, uint64_t size) {
    vkr_status s = check_range(b, off, size, "upload");
    if (s) return s;
    if (b->block->mapped) {
        memcpy((char *)b->block->mapped + b->offset + off, src, size);
        return VKR_OK;
    }
    vkr_context *ctx = b->ctx;
    if ((s = staging_ensure(ctx))) return s;
    for (uint64_t done = 0; done < size;) {
        uint64_t n = size - done < ctx->staging_size ? size - done : ctx->staging_size;
        memcpy(ctx->staging_map, (const char *)src + done, n);
        VkCommandBuffer cb;
        if ((s = vkr__oneshot_begin(ctx, &cb))) return s;
        VkBufferCopy c = {.srcOffset = 0, .dstOffset = off + done, .size = n};
        vkCmdCopyBuffer(cb, ctx->staging, b->buffer, 1, &c);
        if ((s = vkr__oneshot_end(ctx, cb))) return s;
        done += n;
    }
    return VKR_OK;
}

vkr_status vkr_buffer_download(vkr_buffer *b, uint64_t off, void *dst, uint64_t size) {
    vkr_status s = check_range(b, off, size, "download");
    if (s) return s;
    if (b->block->mapped) {
        memcpy(dst, (const char *)b->block->mapped + b->offset + off, size);
        return VKR_OK;
    }
    vkr_context *ctx = b->ctx;
    if ((s = staging_ensure(ctx))) return s;
    for (uint64_t done = 0; done < size;) {
        uint64_t n = size - done < ctx->staging_size ? size - done : ctx->staging_size;
        VkCommandBuffer cb;
        if ((s = vkr__oneshot_begin(ctx, &cb))) return s;
        VkBufferCopy c = {.srcOffset = off + done, .dstOffset = 0, .size = n};
        vkCmdCopyBuffer(cb, b->buffer, ctx->staging, 1, &c);
        if ((s = vkr__oneshot_end(ctx, cb))) return s;
        memcpy((char *)dst + done, ctx->staging_map, n);
        done += n;
    }
    return VKR_OK;
}

vkr_status vkr_buffer_fill_zero(vkr_buffer *b) {
    VkCommandBuffer cb;
    vkr_status s = vkr__oneshot_begin(b->ctx, &cb);
    if (s) return s;
    vkCmdFillBuffer(cb, b->buffer, 0, VK_WHOLE_SIZE, 0);
    return vkr__oneshot_end(b->ctx, cb);
}

vkr_status vkr_buffer_from_floats(vkr_context *ctx, const float *data, size_t n, vkr_buffer **out) {
    vkr_status s = vkr_buffer_create(ctx, n * sizeof(float), out);
    if (s) return s;
    if (data && (s = vkr_buffer_upload(*out, 0, data, n * sizeof(float)))) {
        vkr_buffer_destroy(*out);
        *out = NULL;
    }
    return s;
}
