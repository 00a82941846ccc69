/* Command streams: many dispatches in one command buffer, barriers inserted
 * from read/write hazards, one submission, fences and timestamps. */
#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETS_PER_POOL 256

typedef struct {
    VkBuffer *v;
    int n, cap;
} buf_set;

struct vkr_cmd {
    vkr_context *ctx;
    VkCommandBuffer cb;
    VkFence fence;
    int recording, submitted;
    VkDescriptorPool *pools;
    int npools, cappools, pool_used; /* sets used in the last pool */
    VkBufferView *views;
    int nviews, capviews;
    buf_set written, read;           /* since the last barrier */
    uint32_t ndispatch, nbarrier;
    VkQueryPool qpool;
    uint32_t qmax, qcount;           /* timed dispatches */
    char **labels;
    char pending_label[128];
    /* scratch for ops' intermediate partial sums (see vkr_cmd_set_scratch) */
    vkr_buffer *scratch;             /* borrowed (vkr_cmd_set_scratch) or owned */
    int scratch_owned;
    vkr_buffer **retired;            /* owned scratch buffers outgrown while recording */
    int nretired;
};

static int set_has(const buf_set *s, VkBuffer b) {
    for (int i = 0; i < s->n; i++)
        if (s->v[i] == b) return 1;
    return 0;
}

static int set_add(buf_set *s, VkBuffer b) {
    if (set_has(s, b)) return 1;
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        VkBuffer *v = realloc(s->v, cap * sizeof *v);
        if (!v) return 0;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = b;
    return 1;
}

static VkDescriptorType desc_type_of(char k) {
    return k == 's' ? VK_DESCRIPTOR_TYPE_STORAGE_BUFFER : VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER;
}

static vkr_status begin_cb(vkr_cmd *c) {
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VK_CHECK_RET(vkBeginCommandBuffer(c->cb, &bi), "vkBeginCommandBuffer");
    c->recording = 1;
    return VKR_OK;
}

vkr_status vkr_cmd_begin(vkr_context *ctx, vkr_cmd **out) {
    *out = NULL;
    vkr_cmd *c = calloc(1, sizeof *c);
    if (!c) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    c->ctx = ctx;
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = ctx->pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    VkResult r = vkAllocateCommandBuffers(ctx->device, &ai, &c->cb);
    if (r == VK_SUCCESS) {
        VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        r = vkCreateFence(ctx->device, &fi, NULL, &c->fence);
    }
    if (r != VK_SUCCESS) {
        vkr_cmd_free(c);
        return vkr_fail(VKR_ERR_VULKAN, "creating a command stream failed: %s", vkr_vk_result_name(r));
    }
    vkr_status s = begin_cb(c);
    if (s) {
        vkr_cmd_free(c);
        return s;
    }
    *out = c;
    return VKR_OK;
}

vkr_status vkr_cmd_enable_timestamps(vkr_cmd *c, uint32_t max_dispatches) {
    if (!c->ctx->info.timestamps)
        return vkr_fail(VKR_ERR_UNSUPPORTED, "device \"%s\" has no timestamp support on its compute queue", c->ctx->info.name);
    if (c->qpool || c->ndispatch) return vkr_fail(VKR_ERR_INVALID, "timestamps must be enabled before the first dispatch");
    VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                .queryCount = 2 * max_dispatches};
    VK_CHECK_RET(vkCreateQueryPool(c->ctx->device, &qi, NULL, &c->qpool), "vkCreateQueryPool");
    c->labels = calloc(max_dispatches, sizeof *c->labels);
    if (!c->labels) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    c->qmax = max_dispatches;
    vkCmdResetQueryPool(c->cb, c->qpool, 0, 2 * max_dispatches);
    return VKR_OK;
}

void vkr_cmd_label(vkr_cmd *c, const char *label) {
    snprintf(c->pending_label, sizeof c->pending_label, "%s", label ? label : "");
}

void vkr_cmd_barrier(vkr_cmd *c) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    VkPipelineStageFlags st = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(c->cb, st, st, 0, 1, &mb, 0, NULL, 0, NULL);
    c->written.n = c->read.n = 0;
    c->nbarrier++;
}

/* Inserts a barrier if this access conflicts with unbarriered earlier ones. */
static vkr_status track(vkr_cmd *c, const VkBuffer *bufs, const int *writes, int n) {
    int need = 0;
    for (int i = 0; i < n && !need; i++)
        need = set_has(&c->written, bufs[i]) || (writes[i] && set_has(&c->read, bufs[i]));
    if (need) vkr_cmd_barrier(c);
    for (int i = 0; i < n; i++)
        if (!set_add(writes[i] ? &c->written : &c->read, bufs[i]))
            return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    return VKR_OK;
}

static vkr_status alloc_set(vkr_cmd *c, VkDescriptorSetLayout layout, VkDescriptorSet *set) {
    if (c->npools == 0 || c->pool_used >= SETS_PER_POOL) {
        if (c->npools == c->cappools) {
            int cap = c->cappools ? c->cappools * 2 : 4;
            VkDescriptorPool *p = realloc(c->pools, cap * sizeof *p);
            if (!p) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
            c->pools = p;
            c->cappools = cap;
        }
        VkDescriptorPoolSize sz[2] = {{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, SETS_PER_POOL * 8},
                                      {VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, SETS_PER_POOL * 4}};
        VkDescriptorPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                         .maxSets = SETS_PER_POOL,
                                         .poolSizeCount = 2,
                                         .pPoolSizes = sz};
        VK_CHECK_RET(vkCreateDescriptorPool(c->ctx->device, &pi, NULL, &c->pools[c->npools]), "vkCreateDescriptorPool");
        c->npools++;
        c->pool_used = 0;
    }
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = c->pools[c->npools - 1],
                                      .descriptorSetCount = 1,
                                      .pSetLayouts = &layout};
    VkResult r = vkAllocateDescriptorSets(c->ctx->device, &ai, set);
    if (r == VK_ERROR_OUT_OF_POOL_MEMORY || r == VK_ERROR_FRAGMENTED_POOL) {
        c->pool_used = SETS_PER_POOL; /* start a fresh pool */
        return alloc_set(c, layout, set);
    }
    VK_CHECK_RET(r, "vkAllocateDescriptorSets");
    c->pool_used++;
    return VKR_OK;
}

static vkr_status add_view(vkr_cmd *c, VkBufferView v) {
    if (c->nviews == c->capviews) {
        int cap = c->capviews ? c->capviews * 2 : 32;
        VkBufferView *p = realloc(c->views, cap * sizeof *p);
        if (!p) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        c->views = p;
        c->capviews = cap;
    }
    c->views[c->nviews++] = v;
    return VKR_OK;
}

vkr_status vkr_cmd_dispatch(vkr_cmd *c, vkr_pipeline *p, const vkr_binding *b, uint32_t nbind, uint32_t writes,
                            const void *push, uint32_t gx, uint32_t gy, uint32_t gz) {
    const vkr_device_info *I = &c->ctx->info;
    if (!c->recording) return vkr_fail(VKR_ERR_INVALID, "dispatch on a command stream that is not recording");
    if (nbind != p->nbind)
        return vkr_fail(VKR_ERR_INVALID, "pipeline %s expects %u bindings, got %u", p->key, p->nbind, nbind);
    if (gx == 0 || gy == 0 || gz == 0) return VKR_OK; /* nothing to do */
    if (gx > I->max_workgroup_count[0] || gy > I->max_workgroup_count[1] || gz > I->max_workgroup_count[2])
        return vkr_fail(VKR_ERR_UNSUPPORTED, "pipeline %s: dispatch %ux%ux%u exceeds the device's max workgroup count %ux%ux%u",
                        p->key, gx, gy, gz, I->max_workgroup_count[0], I->max_workgroup_count[1], I->max_workgroup_count[2]);
    VkDescriptorSet set;
    vkr_status s = alloc_set(c, p->set_layout, &set);
    if (s) return s;
    VkDescriptorBufferInfo bi[32];
    VkBufferView bv[32];
    VkWriteDescriptorSet wr[32];
    VkBuffer bufs[32];
    int wflags[32];
    for (uint32_t i = 0; i < nbind; i++) {
        if (!b[i].buf) return vkr_fail(VKR_ERR_INVALID, "pipeline %s: binding %u is NULL", p->key, i);
        uint64_t size = b[i].buf->size;
        if (b[i].offset >= size) return vkr_fail(VKR_ERR_INVALID, "pipeline %s: binding %u offset beyond buffer", p->key, i);
        uint64_t range = b[i].range ? b[i].range : size - b[i].offset;
        if (b[i].offset + range > size) return vkr_fail(VKR_ERR_INVALID, "pipeline %s: binding %u range beyond buffer", p->key, i);
        wr[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                       .dstSet = set,
                                       .dstBinding = i,
                                       .descriptorCount = 1,
                                       .descriptorType = desc_type_of(p->bindings[i])};
        if (p->bindings[i] == 's') {
            if (range > I->max_storage_buffer_range)
                return vkr_fail(VKR_ERR_UNSUPPORTED,
                                "pipeline %s: binding %u spans %llu bytes, over the device's maxStorageBufferRange (%.1f MiB)",
                                p->key, i, (unsigned long long)range, I->max_storage_buffer_range / 1048576.0);
            if (b[i].offset % I->min_storage_buffer_offset_alignment)
                return vkr_fail(VKR_ERR_INVALID, "pipeline %s: binding %u offset %llu not aligned to %llu", p->key, i,
                                (unsigned long long)b[i].offset, (unsigned long long)I->min_storage_buffer_offset_alignment);
            bi[i] = (VkDescriptorBufferInfo){.buffer = b[i].buf->buffer, .offset = b[i].offset, .range = range};
            wr[i].pBufferInfo = &bi[i];
        } else {
            uint32_t texel = p->bindings[i] == 't' ? 16 : 4;
            uint64_t elems = range / texel;
            if (elems == 0) return vkr_fail(VKR_ERR_INVALID, "pipeline %s: texel binding %u smaller than one texel", p->key, i);
            if (elems > I->max_texel_buffer_elements)
                return vkr_fail(VKR_ERR_UNSUPPORTED, "pipeline %s: texel binding %u has %llu texels, over the device's %llu",
                                p->key, i, (unsigned long long)elems, (unsigned long long)I->max_texel_buffer_elements);
            if (b[i].offset % I->min_texel_buffer_offset_alignment)
                return vkr_fail(VKR_ERR_INVALID, "pipeline %s: texel binding %u offset not aligned", p->key, i);
            VkBufferViewCreateInfo vi = {.sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
                                         .buffer = b[i].buf->buffer,
                                         .format = texel == 16 ? VK_FORMAT_R32G32B32A32_SFLOAT : VK_FORMAT_R32_SFLOAT,
                                         .offset = b[i].offset,
                                         .range = elems * texel};
            VK_CHECK_RET(vkCreateBufferView(c->ctx->device, &vi, NULL, &bv[i]), "vkCreateBufferView");
            if ((s = add_view(c, bv[i]))) {
                vkDestroyBufferView(c->ctx->device, bv[i], NULL);
                return s;
            }
            wr[i].pTexelBufferView = &bv[i];
        }
        bufs[i] = b[i].buf->buffer;
        wflags[i] = (writes >> i) & 1;
    }
    vkUpdateDescriptorSets(c->ctx->device, nbind, wr, 0, NULL);
    if ((s = track(c, bufs, wflags, (int)nbind))) return s;
    vkCmdBindPipeline(c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
    vkCmdBindDescriptorSets(c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0, NULL);
    if (p->push_size) vkCmdPushConstants(c->cb, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, p->push_size, push);
    int timed = c->qpool && c->qcount < c->qmax;
    if (timed) vkCmdWriteTimestamp(c->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->qpool, 2 * c->qcount);
    vkCmdDispatch(c->cb, gx, gy, gz);
    if (timed) {
        vkCmdWriteTimestamp(c->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->qpool, 2 * c->qcount + 1);
        c->labels[c->qcount] = strdup(c->pending_label[0] ? c->pending_label : p->key);
        c->qcount++;
    }
    c->pending_label[0] = 0;
    c->ndispatch++;
    return VKR_OK;
}

vkr_status vkr_cmd_copy(vkr_cmd *c, vkr_buffer *dst, uint64_t doff, vkr_buffer *src, uint64_t soff, uint64_t size) {
    if (!c->recording) return vkr_fail(VKR_ERR_INVALID, "copy on a command stream that is not recording");
    if (soff + size > src->size || doff + size > dst->size) return vkr_fail(VKR_ERR_INVALID, "copy range beyond buffer");
    if (size == 0) return VKR_OK;
    VkBuffer bufs[2] = {dst->buffer, src->buffer};
    int w[2] = {1, 0};
    vkr_status s = track(c, bufs, w, src == dst ? 1 : 2); /* src == dst: tracked as a write */
    if (s) return s;
    VkBufferCopy cp = {.srcOffset = soff, .dstOffset = doff, .size = size};
    vkCmdCopyBuffer(c->cb, src->buffer, dst->buffer, 1, &cp);
    return VKR_OK;
}

vkr_status vkr_cmd_fill_zero(vkr_cmd *c, vkr_buffer *dst, uint64_t off, uint64_t size) {
    if (!c->recording) return vkr_fail(VKR_ERR_INVALID, "fill on a command stream that is not recording");
    if (off % 4 || size % 4 || off + size > dst->size) return vkr_fail(VKR_ERR_INVALID, "fill range invalid");
    if (size == 0) return VKR_OK;
    int w = 1;
    vkr_status s = track(c, &dst->buffer, &w, 1);
    if (s) return s;
    vkCmdFillBuffer(c->cb, dst->buffer, off, size, 0);
    return VKR_OK;
}

vkr_status vkr_cmd_submit_async(vkr_cmd *c) {
    if (!c->recording) return vkr_fail(VKR_ERR_INVALID, "submit of a command stream that is not recording");
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(c->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    c->recording = 0;
    VK_CHECK_RET(vkEndCommandBuffer(c->cb), "vkEndCommandBuffer");
    if (c->ctx->mem_limit && c->ctx->bytes_live > c->ctx->mem_limit)
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY,
                        "vkQueueSubmit failed: VK_ERROR_OUT_OF_DEVICE_MEMORY (injected: %.1f MiB in use, limit %.1f MiB)",
                        c->ctx->bytes_live / 1048576.0, c->ctx->mem_limit / 1048576.0);
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &c->cb};
    VK_CHECK_RET(vkQueueSubmit(c->ctx->queue, 1, &si, c->fence), "vkQueueSubmit");
    c->submitted = 1;
    c->ctx->submitted = 1;
    return VKR_OK;
}

vkr_status vkr_cmd_wait(vkr_cmd *c) {
    if (!c->submitted) return vkr_fail(VKR_ERR_INVALID, "wait on a command stream that was not submitted");
    VkResult r = vkWaitForFences(c->ctx->device, 1, &c->fence, VK_TRUE, UINT64_MAX);
    /* after a failed wait the work may still run, and the caller may free what it uses (a graph
     * re-plans): wait for the whole device; if even that fails, reset and free wait again */
    if (r == VK_SUCCESS || r == VK_ERROR_DEVICE_LOST || vkDeviceWaitIdle(c->ctx->device) == VK_SUCCESS) c->submitted = 0;
    if (r == VK_ERROR_DEVICE_LOST)
        return vkr_fail(VKR_ERR_VULKAN, "the device was lost while running %u dispatches (VK_ERROR_DEVICE_LOST)", c->ndispatch);
    VK_CHECK_RET(r, "vkWaitForFences");
    return VKR_OK;
}

vkr_status vkr_cmd_wait_for(vkr_cmd *c, uint64_t ns, int *done) {
    *done = 0;
    if (!c->submitted) return vkr_fail(VKR_ERR_INVALID, "wait on a command stream that was not submitted");
    VkResult r = vkWaitForFences(c->ctx->device, 1, &c->fence, VK_TRUE, ns);
    if (r == VK_TIMEOUT) return VKR_OK;
    if (r == VK_SUCCESS) {
        c->submitted = 0;
        *done = 1;
        return VKR_OK;
    }
    return vkr_cmd_wait(c); /* an error: waits for the device, says what failed */
}

vkr_status vkr_cmd_submit(vkr_cmd *c) {
    vkr_status s = vkr_cmd_submit_async(c);
    return s ? s : vkr_cmd_wait(c);
}

void vkr_cmd_set_scratch(vkr_cmd *c, vkr_buffer *buf) {
    if (c->scratch_owned) vkr_buffer_destroy(c->scratch);
    c->scratch = buf;
    c->scratch_owned = 0;
}

vkr_status vkr_cmd_reserve_scratch(vkr_cmd *c, uint64_t bytes) {
    if (c->scratch && c->scratch->size >= bytes) return VKR_OK;
    vkr_buffer *b = NULL;
    vkr_status s = vkr_buffer_create(c->ctx, bytes, &b);
    if (s) return s;
    if (c->scratch_owned) { /* dispatches recorded so far may bind it: keep it until reset / free */
        vkr_buffer **r = realloc(c->retired, (size_t)(c->nretired + 1) * sizeof *r);
        if (!r) {
            vkr_buffer_destroy(b);
            return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        }
        c->retired = r;
        c->retired[c->nretired++] = c->scratch;
    }
    c->scratch = b;
    c->scratch_owned = 1;
    return VKR_OK;
}

vkr_status vkr__cmd_scratch(vkr_cmd *c, uint64_t bytes, vkr_buffer **out) {
    *out = NULL;
    vkr_status s = vkr_cmd_reserve_scratch(c, bytes);
    if (!s) *out = c->scratch;
    return s;
}

uint64_t vkr__cmd_scratch_size(const vkr_cmd *c) { return c->scratch ? c->scratch->size : 0; }

static void release_transient(vkr_cmd *c) {
    VkDevice d = c->ctx->device;
    for (int i = 0; i < c->nretired; i++) vkr_buffer_destroy(c->retired[i]);
    c->nretired = 0;
    for (int i = 0; i < c->nviews; i++) vkDestroyBufferView(d, c->views[i], NULL);
    c->nviews = 0;
    for (int i = 0; i < c->npools; i++) vkDestroyDescriptorPool(d, c->pools[i], NULL);
    c->npools = 0;
    c->pool_used = 0;
    for (uint32_t i = 0; i < c->qcount; i++) free(c->labels[i]);
    c->qcount = 0;
    c->written.n = c->read.n = 0;
    c->ndispatch = c->nbarrier = 0;
}

vkr_status vkr_cmd_reset(vkr_cmd *c) {
    if (c->submitted) {
        vkr_status s = vkr_cmd_wait(c);
        if (s) return s;
    }
    release_transient(c);
    VK_CHECK_RET(vkResetFences(c->ctx->device, 1, &c->fence), "vkResetFences");
    VK_CHECK_RET(vkResetCommandBuffer(c->cb, 0), "vkResetCommandBuffer");
    vkr_status s = begin_cb(c);
    if (s) return s;
    if (c->qpool) vkCmdResetQueryPool(c->cb, c->qpool, 0, 2 * c->qmax);
    return VKR_OK;
}

void vkr_cmd_free(vkr_cmd *c) {
    if (!c) return;
    VkDevice d = c->ctx->device;
    if (c->submitted) vkWaitForFences(d, 1, &c->fence, VK_TRUE, UINT64_MAX);
    release_transient(c);
    if (c->scratch_owned) vkr_buffer_destroy(c->scratch);
    free(c->retired);
    free(c->pools);
    free(c->views);
    free(c->written.v);
    free(c->read.v);
    free(c->labels);
    if (c->qpool) vkDestroyQueryPool(d, c->qpool, NULL);
    if (c->fence) vkDestroyFence(d, c->fence, NULL);
    if (c->cb) vkFreeCommandBuffers(d, c->ctx->pool, 1, &c->cb);
    free(c);
}

uint32_t vkr_cmd_dispatch_count(const vkr_cmd *c) { return c->ndispatch; }
uint32_t vkr_cmd_barrier_count(const vkr_cmd *c) { return c->nbarrier; }
uint32_t vkr_cmd_timing_count(const vkr_cmd *c) { return c->qcount; }

vkr_status vkr_cmd_timing(const vkr_cmd *c, uint32_t i, double *ms, const char **label) {
    if (!c->qpool || i >= c->qcount) return vkr_fail(VKR_ERR_INVALID, "no timing entry %u", i);
    if (c->recording || c->submitted) return vkr_fail(VKR_ERR_INVALID, "timings are available after the stream completed");
    uint64_t t[2];
    VK_CHECK_RET(vkGetQueryPoolResults(c->ctx->device, c->qpool, 2 * i, 2, sizeof t, t, sizeof t[0],
                                       VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT),
                 "vkGetQueryPoolResults");
    *ms = (double)(t[1] - t[0]) * c->ctx->info.timestamp_period_ns * 1e-6;
    if (label) *label = c->labels[i];
    return VKR_OK;
}

vkr_context *vkr__cmd_context(vkr_cmd *c) { return c->ctx; }
